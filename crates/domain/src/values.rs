//! Parsed values: once one of these exists it is valid, so the rest of the
//! code never re-checks. Each deserialises through `TryFrom<String>`, so a
//! bad value in a request body is refused at the edge with the field's path.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::DomainError;

/// An e-mail address: `local@domain`, domain lower-cased, at most 254 bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EmailAddress(String);

impl EmailAddress {
    /// The address as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part after `@`.
    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map_or("", |(_, d)| d)
    }
}

impl TryFrom<String> for EmailAddress {
    type Error = DomainError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        let bad = |why: &str| DomainError::invalid("email", format!("{why}: {value:?}"));
        let trimmed = value.trim();
        if trimmed.len() > 254 {
            return Err(bad("an e-mail address has at most 254 characters"));
        }
        let Some((local, domain)) = trimmed.rsplit_once('@') else {
            return Err(bad("an e-mail address needs an @"));
        };
        let valid_part = |s: &str| {
            !s.is_empty()
                && !s
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || "<>()[],;:\"@".contains(c))
        };
        if !valid_part(local)
            || !valid_part(domain)
            || domain.starts_with('.')
            || domain.ends_with('.')
        {
            return Err(bad("not an e-mail address"));
        }
        Ok(Self(format!("{local}@{}", domain.to_ascii_lowercase())))
    }
}

impl From<EmailAddress> for String {
    fn from(value: EmailAddress) -> Self {
        value.0
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A phone number in E.164 form: `+` then 7 to 15 digits, the first not 0.
/// Spaces, dots, dashes and parentheses in the input are dropped.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct E164(String);

impl E164 {
    /// The number as text, with its leading `+`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for E164 {
    type Error = DomainError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        let compact: String = value
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
            .collect();
        let digits = compact.strip_prefix('+').unwrap_or("");
        let ok = (7..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0');
        if ok {
            Ok(Self(compact))
        } else {
            Err(DomainError::invalid(
                "phone",
                format!("expected an E.164 number such as +33612345678, got {value:?}"),
            ))
        }
    }
}

impl From<E164> for String {
    fn from(value: E164) -> Self {
        value.0
    }
}

impl fmt::Display for E164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An IANA time zone name known to this build (`Europe/Paris`, `UTC`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TimeZoneName(String);

impl TimeZoneName {
    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The zone's rules.
    pub fn zone(&self) -> jiff::tz::TimeZone {
        // Parsing already proved the name resolves; UTC is never reached.
        jiff::tz::TimeZone::get(&self.0).unwrap_or(jiff::tz::TimeZone::UTC)
    }

    /// Coordinated Universal Time.
    pub fn utc() -> Self {
        Self("UTC".into())
    }
}

impl TryFrom<String> for TimeZoneName {
    type Error = DomainError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        match jiff::tz::TimeZone::get(value.trim()) {
            Ok(_) => Ok(Self(value.trim().to_owned())),
            Err(_) => Err(DomainError::invalid(
                "time_zone",
                format!("unknown IANA time zone {value:?}"),
            )),
        }
    }
}

impl From<TimeZoneName> for String {
    fn from(value: TimeZoneName) -> Self {
        value.0
    }
}

/// A display name or subject: trimmed, not empty, at most 500 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Name(String);

impl Name {
    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Name {
    type Error = DomainError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        let trimmed = value.trim();
        if trimmed.is_empty() {
            Err(DomainError::invalid("name", "must not be empty"))
        } else if trimmed.chars().count() > 500 {
            Err(DomainError::invalid("name", "at most 500 characters"))
        } else {
            Ok(Self(trimmed.to_owned()))
        }
    }
}

impl From<Name> for String {
    fn from(value: Name) -> Self {
        value.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_addresses_are_parsed_and_normalised() {
        let e = EmailAddress::try_from(" Ana@Example.COM ".to_owned()).unwrap();
        assert_eq!(e.as_str(), "Ana@example.com");
        assert_eq!(e.domain(), "example.com");
        for bad in [
            "",
            "ana",
            "@example.com",
            "ana@",
            "a b@example.com",
            "ana@.com",
        ] {
            assert!(EmailAddress::try_from(bad.to_owned()).is_err(), "{bad}");
        }
    }

    #[test]
    fn phone_numbers_must_be_e164() {
        assert_eq!(
            E164::try_from("+33 6 12-34-56-78".to_owned())
                .unwrap()
                .as_str(),
            "+33612345678"
        );
        for bad in [
            "0612345678",
            "+0612345678",
            "+1",
            "+1234567890123456",
            "+33abc45678",
        ] {
            assert!(E164::try_from(bad.to_owned()).is_err(), "{bad}");
        }
    }

    #[test]
    fn time_zones_must_be_known() {
        assert!(TimeZoneName::try_from("Europe/Paris".to_owned()).is_ok());
        assert!(TimeZoneName::try_from("Mars/Olympus".to_owned()).is_err());
    }

    #[test]
    fn names_are_trimmed_and_not_empty() {
        assert_eq!(
            Name::try_from("  Billing ".to_owned()).unwrap().as_str(),
            "Billing"
        );
        assert!(Name::try_from("   ".to_owned()).is_err());
    }
}

/// The OpenAPI schemas of these values: strings with the constraints their
/// `TryFrom<String>` checks, so a client generated from the document sends
/// what the server takes.
mod schemas {
    use std::borrow::Cow;

    use utoipa::{
        PartialSchema, ToSchema,
        openapi::{ObjectBuilder, RefOr, Schema, schema::Type},
    };

    use super::{E164, EmailAddress, Name, TimeZoneName};

    /// Characters an e-mail address part never has (beside white space and
    /// control characters).
    const NOT_IN_PART: &str = r#"\s\x00-\x1f\x7f-\x9f<>()\[\],;:"@"#;

    fn string(description: &str) -> ObjectBuilder {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(description))
    }

    impl PartialSchema for EmailAddress {
        fn schema() -> RefOr<Schema> {
            let p = NOT_IN_PART;
            string("An e-mail address: `local@domain`; the domain is lower-cased.")
                .max_length(Some(254))
                .pattern(Some(format!(
                    "^\\s*[^{p}]+@[^{p}.](?:[^{p}]*[^{p}.])?\\s*$"
                )))
                .examples(["ana@example.com"])
                .into()
        }
    }

    impl ToSchema for EmailAddress {
        fn name() -> Cow<'static, str> {
            Cow::Borrowed("EmailAddress")
        }
    }

    impl PartialSchema for E164 {
        fn schema() -> RefOr<Schema> {
            string("A phone number in E.164 form: `+` then 7 to 15 digits, the first not 0.")
                .pattern(Some("^\\+[1-9][0-9]{6,14}$"))
                .examples(["+33612345678"])
                .into()
        }
    }

    impl ToSchema for E164 {
        fn name() -> Cow<'static, str> {
            Cow::Borrowed("E164")
        }
    }

    impl PartialSchema for Name {
        fn schema() -> RefOr<Schema> {
            string("A display name or subject: not blank, at most 500 characters.")
                .min_length(Some(1))
                .max_length(Some(500))
                .pattern(Some("\\S"))
                .into()
        }
    }

    impl ToSchema for Name {
        fn name() -> Cow<'static, str> {
            Cow::Borrowed("Name")
        }
    }

    impl PartialSchema for TimeZoneName {
        fn schema() -> RefOr<Schema> {
            let mut names: Vec<String> =
                jiff::tz::db().available().map(|n| n.to_string()).collect();
            names.sort();
            names.dedup();
            string("An IANA time zone name known to this server.")
                .enum_values(Some(names))
                .examples(["Europe/Paris"])
                .into()
        }
    }

    impl ToSchema for TimeZoneName {
        fn name() -> Cow<'static, str> {
            Cow::Borrowed("TimeZoneName")
        }
    }
}
