//! Web form submissions: the body a browser or a script posts to
//! `POST /f/{channel_key}`, mapped onto a ticket's fields by the channel's
//! settings. No I/O: the server reads the body and hands the fields here.
//!
//! Settings of a `form` channel (all optional):
//! - `fields`: which submitted field holds each ticket field, e.g.
//!   `{"email": "your_email", "name": "full_name", "subject": "topic",
//!   "message": "body", "phone": "tel"}`; by default each is named after
//!   the ticket field (`email`, `name`, `subject`, `message`, `phone`);
//! - `required`: ticket fields that must be present, default
//!   `["email", "message"]` (without an address or a phone nobody can be
//!   answered);
//! - `properties`: the other submitted fields to keep as ticket properties.
//!   Without it **every** other field becomes a property (so a `language`
//!   select feeds skill routing with no configuration); with it only the
//!   listed ones are kept and the rest are dropped silently, which lets a
//!   page carry inputs (a submit button's name, a CSRF token) that are none
//!   of our business.
//!
//! A `visitor_token` field is the visitor's tracking-cookie value; it never
//! becomes a property. Errors name the field **as submitted** (`your_email`,
//! not `email`), since that is what the page's author can find.

use serde_json::{Map, Value};
use switchboard_domain::{E164, EmailAddress, Name, input::ContactRef};

use crate::ChannelError;

/// The field that carries the visitor's tracking-cookie value.
pub const VISITOR_TOKEN_FIELD: &str = "visitor_token";

/// Longest kept property value, in characters.
const MAX_PROPERTY_CHARS: usize = 2_000;
/// Most properties one submission may add.
const MAX_PROPERTIES: usize = 50;
/// Longest subject, in characters (a subject is one line, not a message).
const MAX_SUBJECT_CHARS: usize = 200;
/// Length of a subject taken from the message's first line.
const DERIVED_SUBJECT_CHARS: usize = 80;
/// Longest accepted visitor token.
const MAX_VISITOR_TOKEN: usize = 200;

/// A ticket field a submitted field can be mapped to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketField {
    /// The contact's e-mail address.
    Email,
    /// The contact's phone number (E.164).
    Phone,
    /// The contact's name.
    Name,
    /// The ticket's subject.
    Subject,
    /// The customer's message.
    Message,
}

impl TicketField {
    /// Every field, in the order submissions are checked (so the first error
    /// reported is always the same one).
    pub const ALL: [TicketField; 5] = [
        TicketField::Email,
        TicketField::Phone,
        TicketField::Name,
        TicketField::Subject,
        TicketField::Message,
    ];

    /// Its name in settings (and the default submitted name).
    pub fn as_str(self) -> &'static str {
        match self {
            TicketField::Email => "email",
            TicketField::Phone => "phone",
            TicketField::Name => "name",
            TicketField::Subject => "subject",
            TicketField::Message => "message",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == s)
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// How a form channel reads submissions, from its settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormSettings {
    /// The submitted name of each [`TicketField`], indexed by the field.
    sources: [String; 5],
    /// Fields that must be present.
    required: Vec<TicketField>,
    /// When set, the only other fields kept as properties.
    properties: Option<Vec<String>>,
}

impl Default for FormSettings {
    fn default() -> Self {
        Self {
            sources: TicketField::ALL.map(|f| f.as_str().to_owned()),
            required: vec![TicketField::Email, TicketField::Message],
            properties: None,
        }
    }
}

impl FormSettings {
    /// Reads `fields`, `required` and `properties` from a channel's
    /// settings. A malformed value is an error on `settings.<key>`: the
    /// channel is misconfigured, which is not the visitor's fault.
    pub fn from_settings(settings: &Map<String, Value>) -> Result<Self, ChannelError> {
        let mut out = Self::default();
        if let Some(fields) = settings.get("fields").filter(|v| !v.is_null()) {
            let Value::Object(fields) = fields else {
                return Err(ChannelError::invalid(
                    "settings.fields",
                    "expected an object such as {\"email\": \"your_email\"}",
                ));
            };
            for (key, value) in fields {
                let field = TicketField::parse(key).ok_or_else(|| {
                    ChannelError::invalid(
                        format!("settings.fields.{key}"),
                        "not a ticket field (email, phone, name, subject, message)",
                    )
                })?;
                let source = value.as_str().map(str::trim).filter(|s| !s.is_empty());
                let Some(source) = source else {
                    return Err(ChannelError::invalid(
                        format!("settings.fields.{key}"),
                        "expected the name of a submitted field",
                    ));
                };
                out.sources[field.index()] = source.to_owned();
            }
            // Two ticket fields read from one submitted field would make
            // its errors ambiguous.
            for (i, a) in out.sources.iter().enumerate() {
                if out.sources[..i].contains(a) {
                    return Err(ChannelError::invalid(
                        "settings.fields",
                        format!("{a:?} is mapped to two ticket fields"),
                    ));
                }
            }
        }
        if let Some(required) = settings.get("required").filter(|v| !v.is_null()) {
            out.required = string_list(required, "settings.required")?
                .iter()
                .map(|name| {
                    TicketField::parse(name).ok_or_else(|| {
                        ChannelError::invalid(
                            "settings.required",
                            format!("{name:?} is not a ticket field"),
                        )
                    })
                })
                .collect::<Result<_, _>>()?;
        }
        if let Some(properties) = settings.get("properties").filter(|v| !v.is_null()) {
            out.properties = Some(string_list(properties, "settings.properties")?);
        }
        Ok(out)
    }

    /// The submitted name of `field`.
    pub fn source(&self, field: TicketField) -> &str {
        &self.sources[field.index()]
    }
}

fn string_list(value: &Value, field: &str) -> Result<Vec<String>, ChannelError> {
    let items = value
        .as_array()
        .ok_or_else(|| ChannelError::invalid(field, "expected a list of field names"))?;
    items
        .iter()
        .map(|v| {
            v.as_str()
                .map(str::to_owned)
                .ok_or_else(|| ChannelError::invalid(field, "expected a list of field names"))
        })
        .collect()
}

/// A submission mapped and validated: what the server turns into a ticket.
#[derive(Debug, Clone, PartialEq)]
pub struct Submission {
    /// The contact's address.
    pub email: Option<EmailAddress>,
    /// The contact's phone.
    pub phone: Option<E164>,
    /// The contact's name.
    pub name: Option<Name>,
    /// The subject: the submitted one, or the message's first line.
    pub subject: String,
    /// The message (empty only when the form does not require one).
    pub message: String,
    /// The `visitor_token` field, normalised by [`normalize_visitor_token`].
    pub visitor_token: Option<String>,
    /// The other fields kept (see the module documentation).
    pub properties: Map<String, Value>,
}

impl Submission {
    /// The contact to find or create, when there is an address or a phone
    /// to find it by (a name alone identifies nobody).
    pub fn contact(&self) -> Option<ContactRef> {
        (self.email.is_some() || self.phone.is_some()).then(|| ContactRef {
            email: self.email.clone(),
            phone: self.phone.clone(),
            name: self.name.clone(),
        })
    }
}

/// Maps submitted `fields` (in submission order; a repeated name already
/// merged into an array, as [`parse_urlencoded`] does) into a
/// [`Submission`]. Empty values count as absent, as browsers send every
/// input of a form, filled or not.
pub fn map_submission(
    settings: &FormSettings,
    fields: Vec<(String, Value)>,
) -> Result<Submission, ChannelError> {
    let mut mapped: [Option<String>; 5] = Default::default();
    let mut visitor_token = None;
    let mut properties = Map::new();
    for (name, value) in fields {
        if let Some(field) = TicketField::ALL
            .into_iter()
            .find(|f| settings.source(*f) == name)
        {
            mapped[field.index()] = text(&name, value)?;
        } else if name == VISITOR_TOKEN_FIELD {
            visitor_token = match text(&name, value)? {
                Some(raw) => Some(normalize_visitor_token(&raw)?),
                None => None,
            };
        } else if settings
            .properties
            .as_ref()
            .is_none_or(|keep| keep.contains(&name))
            && let Some(value) = property(&name, value)?
        {
            if properties.len() == MAX_PROPERTIES {
                return Err(ChannelError::invalid(
                    name,
                    format!("a submission keeps at most {MAX_PROPERTIES} extra fields"),
                ));
            }
            properties.insert(name, value);
        }
    }
    for field in &settings.required {
        if mapped[field.index()].is_none() {
            return Err(ChannelError::invalid(
                settings.source(*field),
                "is required",
            ));
        }
    }
    let [email, phone, name, subject, message] = mapped;
    let parsed = |field: TicketField, e: switchboard_domain::DomainError| {
        let why = match e {
            switchboard_domain::DomainError::Invalid { reason, .. }
            | switchboard_domain::DomainError::InvalidAt { reason, .. } => reason,
        };
        ChannelError::invalid(settings.source(field), why)
    };
    let email = email
        .map(|e| EmailAddress::try_from(e).map_err(|e| parsed(TicketField::Email, e)))
        .transpose()?;
    let phone = phone
        .map(|p| E164::try_from(p).map_err(|e| parsed(TicketField::Phone, e)))
        .transpose()?;
    let name = name
        .map(|n| Name::try_from(n).map_err(|e| parsed(TicketField::Name, e)))
        .transpose()?;
    let message = message.unwrap_or_default();
    let subject = match subject {
        Some(s) if s.chars().count() > MAX_SUBJECT_CHARS => {
            return Err(ChannelError::invalid(
                settings.source(TicketField::Subject),
                format!("at most {MAX_SUBJECT_CHARS} characters"),
            ));
        }
        Some(s) => s,
        None => first_line_subject(&message, "Form submission"),
    };
    Ok(Submission {
        email,
        phone,
        name,
        subject,
        message,
        visitor_token,
        properties,
    })
}

/// A subject made of the first non-empty line of `message`, shortened to
/// 80 characters; `fallback` when there is none. (Chat uses it too: a
/// conversation's first message is the best summary there is.)
pub fn first_line_subject(message: &str, fallback: &str) -> String {
    let Some(line) = message.lines().map(str::trim).find(|l| !l.is_empty()) else {
        return fallback.to_owned();
    };
    if line.chars().count() <= DERIVED_SUBJECT_CHARS {
        line.to_owned()
    } else {
        let cut: String = line.chars().take(DERIVED_SUBJECT_CHARS - 1).collect();
        format!("{}…", cut.trim_end())
    }
}

/// A mapped field's text: trimmed, `None` when empty. Numbers are accepted
/// as their text (a JSON client may send a numeric field as a number).
fn text(name: &str, value: Value) -> Result<Option<String>, ChannelError> {
    let s = match value {
        Value::Null => return Ok(None),
        Value::String(s) => s,
        Value::Number(n) => n.to_string(),
        Value::Array(_) => {
            return Err(ChannelError::invalid(name, "given more than once"));
        }
        _ => return Err(ChannelError::invalid(name, "expected text")),
    };
    let trimmed = s.trim();
    Ok((!trimmed.is_empty()).then(|| trimmed.to_owned()))
}

/// An extra field as a property: a name of letters, digits, `_`, `-` and
/// `.`, and a value of text, a number, a boolean or a list of those. Empty
/// values are dropped.
fn property(name: &str, value: Value) -> Result<Option<Value>, ChannelError> {
    let valid_name = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if !valid_name {
        return Err(ChannelError::invalid(
            name,
            "a field name has 1 to 64 letters, digits, '_', '-' or '.'",
        ));
    }
    let scalar = |v: Value| -> Result<Option<Value>, ChannelError> {
        match v {
            Value::Null => Ok(None),
            Value::String(s) if s.trim().is_empty() => Ok(None),
            Value::String(s) if s.chars().count() > MAX_PROPERTY_CHARS => Err(
                ChannelError::invalid(name, format!("at most {MAX_PROPERTY_CHARS} characters")),
            ),
            Value::String(s) => Ok(Some(Value::String(s.trim().to_owned()))),
            v @ (Value::Number(_) | Value::Bool(_)) => Ok(Some(v)),
            _ => Err(ChannelError::invalid(
                name,
                "expected text, a number, a boolean or a list of those",
            )),
        }
    };
    match value {
        Value::Array(items) => {
            let kept: Vec<Value> = items
                .into_iter()
                .map(scalar)
                .filter_map(Result::transpose)
                .collect::<Result<_, _>>()?;
            Ok((!kept.is_empty()).then_some(Value::Array(kept)))
        }
        other => scalar(other),
    }
}

/// A visitor's tracking value, as kept on tickets and contacts: trimmed,
/// 1 to 200 visible ASCII characters without `;`, `,`, `"` or `\`. A signed
/// chat token (`<32 hex>.<43 base64url>`) is reduced to its visitor id
/// before the dot, so a form on the same site as the chat widget names the
/// same visitor, and the signature (a credential for the chat) is never
/// stored where agents can read it.
pub fn normalize_visitor_token(raw: &str) -> Result<String, ChannelError> {
    let token = raw.trim();
    let valid = !token.is_empty()
        && token.len() <= MAX_VISITOR_TOKEN
        && token
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b';' | b',' | b'"' | b'\\'));
    if !valid {
        return Err(ChannelError::invalid(
            VISITOR_TOKEN_FIELD,
            "expected 1 to 200 visible characters",
        ));
    }
    if let Some((id, signature)) = token.split_once('.') {
        let is_id = id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit());
        let is_signature = signature.len() == 43
            && signature
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'));
        if is_id && is_signature {
            return Ok(id.to_owned());
        }
    }
    Ok(token.to_owned())
}

/// Parses an `application/x-www-form-urlencoded` body into fields in order
/// of first appearance; a name given several times (checkboxes) becomes an
/// array of its values. Malformed escapes or bytes that are not UTF-8 are
/// an error on `body`.
pub fn parse_urlencoded(body: &[u8]) -> Result<Vec<(String, Value)>, ChannelError> {
    let mut fields: Vec<(String, Value)> = Vec::new();
    for pair in body.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
        let (name, value) = match pair.iter().position(|b| *b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &[][..]),
        };
        let (name, value) = (decode(name)?, decode(value)?);
        match fields.iter_mut().find(|(n, _)| *n == name) {
            Some((_, Value::Array(values))) => values.push(Value::String(value)),
            Some((_, first)) => *first = Value::Array(vec![first.take(), Value::String(value)]),
            None => fields.push((name, Value::String(value))),
        }
    }
    Ok(fields)
}

/// Percent-decoding with `+` as a space.
fn decode(raw: &[u8]) -> Result<String, ChannelError> {
    let bad = || ChannelError::invalid("body", "malformed application/x-www-form-urlencoded body");
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = raw.get(i + 1..i + 3).ok_or_else(bad)?;
                out.push(crate::voice::hex_byte(hex).ok_or_else(bad)?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| bad())
}

/// A JSON submission's fields: the body must be an object.
pub fn json_fields(body: Value) -> Result<Vec<(String, Value)>, ChannelError> {
    match body {
        Value::Object(map) => Ok(map.into_iter().collect()),
        _ => Err(ChannelError::invalid(
            "body",
            "expected a JSON object of fields",
        )),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn settings(v: Value) -> FormSettings {
        FormSettings::from_settings(v.as_object().unwrap()).unwrap()
    }

    fn fields(v: Value) -> Vec<(String, Value)> {
        json_fields(v).unwrap()
    }

    fn field_of(e: ChannelError) -> String {
        match e {
            ChannelError::Invalid { field, .. } => field,
            other => panic!("{other}"),
        }
    }

    #[test]
    fn default_names_map_and_the_rest_become_properties() {
        let s = map_submission(
            &FormSettings::default(),
            fields(json!({"email": " Cleo@Example.COM ", "name": "Cleo", "message": "Charged twice\nsee invoice",
                "plan": "pro", "seats": 3, "phone": "", "visitor_token": "utk-1"})),
        )
        .unwrap();
        assert_eq!(s.email.unwrap().as_str(), "Cleo@example.com");
        assert_eq!(s.name.unwrap().as_str(), "Cleo");
        assert_eq!(s.phone, None, "an empty input is absent");
        assert_eq!(s.subject, "Charged twice", "subject from the first line");
        assert_eq!(s.visitor_token.as_deref(), Some("utk-1"));
        assert_eq!(
            Value::Object(s.properties),
            json!({"plan": "pro", "seats": 3})
        );
    }

    #[test]
    fn custom_mapping_names_the_submitted_field_in_errors() {
        let st = settings(
            json!({"fields": {"email": "your_email", "message": "body", "subject": "topic"}}),
        );
        let ok = map_submission(
            &st,
            fields(json!({"your_email": "a@b.example", "body": "Hi", "topic": "Billing"})),
        )
        .unwrap();
        assert_eq!(ok.subject, "Billing");
        assert_eq!(ok.message, "Hi");
        assert!(ok.properties.is_empty(), "mapped fields are not properties");
        let bad = map_submission(&st, fields(json!({"your_email": "nope", "body": "Hi"})));
        assert_eq!(field_of(bad.unwrap_err()), "your_email");
        let missing = map_submission(
            &st,
            fields(json!({"your_email": "a@b.example", "body": "  "})),
        );
        assert_eq!(field_of(missing.unwrap_err()), "body");
        // Under its default name, `email` is now just a property.
        let unmapped = map_submission(&st, fields(json!({"email": "a@b.example", "body": "x"})));
        assert_eq!(field_of(unmapped.unwrap_err()), "your_email");
    }

    #[test]
    fn an_allow_list_keeps_only_the_listed_properties() {
        let st = settings(json!({"properties": ["plan"], "required": ["message"]}));
        let s = map_submission(
            &st,
            fields(
                json!({"message": "x", "plan": "pro", "submit": "Send", "weird name!": "ignored"}),
            ),
        )
        .unwrap();
        assert_eq!(Value::Object(s.properties.clone()), json!({"plan": "pro"}));
        assert!(s.contact().is_none());
        assert_eq!(s.email, None, "email is not required here");
    }

    #[test]
    fn bad_property_names_and_values_are_named() {
        let st = FormSettings::default();
        let base = json!({"email": "a@b.example", "message": "x"});
        let with = |k: &str, v: Value| {
            let mut b = base.clone();
            b[k] = v;
            map_submission(&st, fields(b))
        };
        assert_eq!(
            field_of(with("weird name!", json!("v")).unwrap_err()),
            "weird name!"
        );
        assert_eq!(
            field_of(with("nested", json!({"a": 1})).unwrap_err()),
            "nested"
        );
        assert_eq!(
            field_of(with("long", json!("x".repeat(2001))).unwrap_err()),
            "long"
        );
        assert_eq!(
            field_of(with("email", json!(["a@b.example", "c@d.example"])).unwrap_err()),
            "email"
        );
        assert_eq!(field_of(with("phone", json!("0612")).unwrap_err()), "phone");
        assert_eq!(
            field_of(with("subject", json!("s".repeat(201))).unwrap_err()),
            "subject"
        );
        assert_eq!(
            with("tags", json!(["a", "", "b"])).unwrap().properties["tags"],
            json!(["a", "b"])
        );
    }

    #[test]
    fn too_many_properties_are_refused() {
        let mut body = json!({"email": "a@b.example", "message": "x"});
        for i in 0..51 {
            body[format!("p{i:02}")] = json!("v");
        }
        let e = map_submission(&FormSettings::default(), fields(body)).unwrap_err();
        assert_eq!(field_of(e), "p50");
    }

    #[test]
    fn settings_errors_name_the_setting() {
        let err =
            |v: Value| field_of(FormSettings::from_settings(v.as_object().unwrap()).unwrap_err());
        assert_eq!(
            err(json!({"fields": {"mail": "x"}})),
            "settings.fields.mail"
        );
        assert_eq!(
            err(json!({"fields": {"email": 3}})),
            "settings.fields.email"
        );
        assert_eq!(
            err(json!({"fields": {"email": "x", "name": "x"}})),
            "settings.fields"
        );
        assert_eq!(err(json!({"fields": []})), "settings.fields");
        assert_eq!(err(json!({"required": ["age"]})), "settings.required");
        assert_eq!(err(json!({"properties": "plan"})), "settings.properties");
        assert_eq!(
            FormSettings::from_settings(json!({"other": 1}).as_object().unwrap()).unwrap(),
            FormSettings::default()
        );
    }

    #[test]
    fn long_first_lines_are_shortened_into_the_subject() {
        let s = map_submission(
            &FormSettings::default(),
            fields(json!({"email": "a@b.example", "message": format!("\n  {}\nmore", "word ".repeat(40))})),
        )
        .unwrap();
        assert!(s.subject.ends_with('…'), "{}", s.subject);
        assert_eq!(s.subject.chars().count(), 80);
        assert_eq!(first_line_subject(" \n ", "Chat"), "Chat");
    }

    #[test]
    fn urlencoded_bodies_decode_and_merge_repeats() {
        let f =
            parse_urlencoded(b"name=Cl%C3%A9o+L&email=c%40x.example&tag=a&tag=b&tag=c&empty=&flag")
                .unwrap();
        assert_eq!(
            f,
            vec![
                ("name".into(), json!("Cléo L")),
                ("email".into(), json!("c@x.example")),
                ("tag".into(), json!(["a", "b", "c"])),
                ("empty".into(), json!("")),
                ("flag".into(), json!("")),
            ]
        );
        // `%+1` was taken for 0x01 (found by the `form_submission` fuzz target).
        for bad in [&b"a=%zz"[..], b"a=%4", b"a=%FF", b"a=%+1", b"a=%-1"] {
            assert_eq!(field_of(parse_urlencoded(bad).unwrap_err()), "body");
        }
        assert!(parse_urlencoded(b"").unwrap().is_empty());
        assert_eq!(field_of(json_fields(json!([1])).unwrap_err()), "body");
    }

    #[test]
    fn visitor_tokens_are_checked_and_signed_ones_reduced_to_the_visitor() {
        assert_eq!(normalize_visitor_token(" utk-1 ").unwrap(), "utk-1");
        let id = "0123456789abcdef0123456789abcdef";
        let signed = format!("{id}.{}", "A".repeat(43));
        assert_eq!(normalize_visitor_token(&signed).unwrap(), id);
        // Other dotted values (analytics cookies) are kept whole.
        assert_eq!(
            normalize_visitor_token("GA1.2.345.678").unwrap(),
            "GA1.2.345.678"
        );
        for bad in ["", "a b", "a;b", &"x".repeat(201)] {
            assert_eq!(
                field_of(normalize_visitor_token(bad).unwrap_err()),
                VISITOR_TOKEN_FIELD,
                "{bad}"
            );
        }
        let e = map_submission(
            &FormSettings::default(),
            fields(json!({"email": "a@b.example", "message": "x", "visitor_token": "a b"})),
        );
        assert_eq!(field_of(e.unwrap_err()), "visitor_token");
    }

    #[test]
    fn the_contact_needs_an_address_or_a_phone() {
        let st = settings(json!({"required": []}));
        let s = map_submission(
            &st,
            fields(json!({"name": "Cleo", "phone": "+33 6 12 34 56 78"})),
        )
        .unwrap();
        let c = s.contact().unwrap();
        assert_eq!(c.phone.unwrap().as_str(), "+33612345678");
        assert_eq!(c.name.unwrap().as_str(), "Cleo");
        let anonymous = map_submission(&st, fields(json!({"name": "Cleo"}))).unwrap();
        assert!(anonymous.contact().is_none());
        assert_eq!(anonymous.subject, "Form submission");
    }
}
