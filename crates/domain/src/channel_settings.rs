//! Channel settings typed per channel kind, parsed when they are set.
//!
//! A channel's `settings` stay a JSON object in the API and the store (the
//! shape the README documents); this module is what they mean. A channel is
//! created or patched only if [`parse`] accepts its settings, so a bad relay
//! port is a problem naming `settings.smtp_relay.port` when it is typed, not
//! a failed delivery later. Handlers read the typed structs instead of
//! looking keys up.
//!
//! Typed so far: e-mail and WhatsApp. The other kinds keep their settings
//! as they are ([`ChannelSettings::Untyped`]). Top-level keys that are not
//! known are kept and ignored (settings of other features share the
//! object); inside a known nested object (`smtp_relay`, `secrets`) an
//! unknown key is refused.

use serde_json::{Map, Value};

use crate::{ChannelKind, DomainError};

/// How to reach an SMTP relay: `settings.smtp_relay`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpRelay {
    /// The relay's host name.
    pub host: String,
    /// Its port; `None` for the default of [`SmtpRelay::tls`].
    pub port: Option<u16>,
    /// How the connection is secured.
    pub tls: SmtpTls,
}

impl SmtpRelay {
    /// The port to connect to: the one set, else 25, 587 or 465 by TLS mode.
    pub fn port_or_default(&self) -> u16 {
        self.port.unwrap_or(match self.tls {
            SmtpTls::None => 25,
            SmtpTls::Starttls => 587,
            SmtpTls::Tls => 465,
        })
    }
}

/// `settings.smtp_relay.tls`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain text (`none`).
    None,
    /// Upgraded with STARTTLS (`starttls`, the default).
    #[default]
    Starttls,
    /// TLS from the first byte (`tls`).
    Tls,
}

/// The settings of an e-mail channel.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EmailSettings {
    /// The mailbox (`settings.address`), trimmed; `None` when unset or empty.
    pub address: Option<String>,
    /// The relay replies go through.
    pub smtp_relay: Option<SmtpRelay>,
    /// `settings.secrets.smtp_username`.
    pub smtp_username: Option<String>,
    /// `settings.secrets.smtp_password`.
    pub smtp_password: Option<String>,
}

/// The settings of a WhatsApp channel.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WhatsappSettings {
    /// The number's id (a string, or a number as pasted).
    pub phone_number_id: Option<String>,
    /// Where the Graph API is.
    pub graph_base_url: Option<String>,
    /// The Graph API version.
    pub api_version: Option<String>,
    /// `settings.secrets.verify_token`.
    pub verify_token: Option<String>,
    /// `settings.secrets.app_secret`.
    pub app_secret: Option<String>,
    /// `settings.secrets.access_token`.
    pub access_token: Option<String>,
}

/// A channel's settings, by kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelSettings {
    /// An e-mail channel.
    Email(EmailSettings),
    /// A WhatsApp channel.
    Whatsapp(WhatsappSettings),
    /// A kind whose settings are not typed yet (calls, forms, chat).
    Untyped,
}

/// Parses `settings` for a channel of `kind`; the error names the field at
/// fault (`settings.smtp_relay.port`).
pub fn parse(
    kind: ChannelKind,
    settings: &Map<String, Value>,
) -> Result<ChannelSettings, DomainError> {
    // Whatever the kind, secrets are an object of strings: the API shows
    // each as set without its value, which it could not do for another shape.
    if let Some(secrets) = object(settings, "secrets", "settings.secrets")?
        && let Some((k, _)) = secrets
            .iter()
            .find(|(_, v)| !(v.is_string() || v.is_null()))
    {
        return Err(DomainError::invalid(
            "settings.secrets",
            format!("the secret {k:?} must be a string (or null)"),
        ));
    }
    match kind {
        ChannelKind::Email => email(settings).map(ChannelSettings::Email),
        ChannelKind::Whatsapp => whatsapp(settings).map(ChannelSettings::Whatsapp),
        _ => Ok(ChannelSettings::Untyped),
    }
}

/// Parses the settings of an e-mail channel.
pub fn email(settings: &Map<String, Value>) -> Result<EmailSettings, DomainError> {
    let secrets = object(settings, "secrets", "settings.secrets")?;
    only(
        secrets,
        &["smtp_username", "smtp_password"],
        "settings.secrets",
    )?;
    let smtp_relay = match object(settings, "smtp_relay", "settings.smtp_relay")? {
        None => None,
        Some(relay) => {
            only(Some(relay), &["host", "port", "tls"], "settings.smtp_relay")?;
            let host = text(Some(relay), "host", "settings.smtp_relay.host")?
                .ok_or_else(|| DomainError::invalid("settings.smtp_relay.host", "is required"))?;
            let tls = match text(Some(relay), "tls", "settings.smtp_relay.tls")?.as_deref() {
                None | Some("starttls") => SmtpTls::Starttls,
                Some("none") => SmtpTls::None,
                Some("tls") => SmtpTls::Tls,
                Some(other) => {
                    return Err(DomainError::invalid(
                        "settings.smtp_relay.tls",
                        format!("must be none, starttls or tls, not {other:?}"),
                    ));
                }
            };
            let port = match relay.get("port") {
                None | Some(Value::Null) => None,
                Some(p) => Some(
                    p.as_u64()
                        .and_then(|p| u16::try_from(p).ok())
                        .filter(|p| *p > 0)
                        .ok_or_else(|| {
                            DomainError::invalid(
                                "settings.smtp_relay.port",
                                format!("is not a port: {p}"),
                            )
                        })?,
                ),
            };
            Some(SmtpRelay { host, port, tls })
        }
    };
    Ok(EmailSettings {
        address: text(Some(settings), "address", "settings.address")?,
        smtp_relay,
        smtp_username: secret(secrets, "smtp_username", "settings.secrets.smtp_username")?,
        smtp_password: secret(secrets, "smtp_password", "settings.secrets.smtp_password")?,
    })
}

/// Parses the settings of a WhatsApp channel.
pub fn whatsapp(settings: &Map<String, Value>) -> Result<WhatsappSettings, DomainError> {
    let secrets = object(settings, "secrets", "settings.secrets")?;
    only(
        secrets,
        &["verify_token", "app_secret", "access_token"],
        "settings.secrets",
    )?;
    let phone_number_id = match settings.get("phone_number_id") {
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => text(
            Some(settings),
            "phone_number_id",
            "settings.phone_number_id",
        )?,
    };
    Ok(WhatsappSettings {
        phone_number_id,
        graph_base_url: text(Some(settings), "graph_base_url", "settings.graph_base_url")?,
        api_version: text(Some(settings), "api_version", "settings.api_version")?,
        verify_token: secret(secrets, "verify_token", "settings.secrets.verify_token")?,
        app_secret: secret(secrets, "app_secret", "settings.secrets.app_secret")?,
        access_token: secret(secrets, "access_token", "settings.secrets.access_token")?,
    })
}

/// The object under `key`, if set (`null` counts as unset).
fn object<'a>(
    m: &'a Map<String, Value>,
    key: &str,
    field: &'static str,
) -> Result<Option<&'a Map<String, Value>>, DomainError> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(o)) => Ok(Some(o)),
        Some(_) => Err(DomainError::invalid(field, "must be an object")),
    }
}

/// A string under `key`, trimmed; `None` when unset, `null` or empty.
fn text(
    m: Option<&Map<String, Value>>,
    key: &str,
    field: &'static str,
) -> Result<Option<String>, DomainError> {
    match m.and_then(|m| m.get(key)) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim().to_owned()).filter(|s| !s.is_empty())),
        Some(_) => Err(DomainError::invalid(field, "must be a string")),
    }
}

/// A secret under `key`, as given (not trimmed); `None` when unset, `null`
/// or empty.
fn secret(
    m: Option<&Map<String, Value>>,
    key: &str,
    field: &'static str,
) -> Result<Option<String>, DomainError> {
    match m.and_then(|m| m.get(key)) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone()).filter(|s| !s.is_empty())),
        Some(_) => Err(DomainError::invalid(field, "must be a string")),
    }
}

/// Refuses keys of `m` outside `known`.
fn only(
    m: Option<&Map<String, Value>>,
    known: &[&str],
    field: &'static str,
) -> Result<(), DomainError> {
    match m.and_then(|m| m.keys().find(|k| !known.contains(&k.as_str()))) {
        Some(k) => Err(DomainError::invalid(
            field,
            format!("unknown key {k:?} (known: {})", known.join(", ")),
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn email_settings_parse_and_name_the_bad_field() {
        let ok = email(&map(json!({"address": " support@acme.example ",
            "smtp_relay": {"host": "smtp.example.net", "tls": "tls"},
            "secrets": {"smtp_username": "u", "smtp_password": "p"}})))
        .unwrap();
        assert_eq!(ok.address.as_deref(), Some("support@acme.example"));
        let relay = ok.smtp_relay.unwrap();
        assert_eq!((relay.tls, relay.port_or_default()), (SmtpTls::Tls, 465));
        let field = |v: Value| match email(&map(v)) {
            Err(DomainError::Invalid { field, .. }) => field,
            Err(DomainError::InvalidAt { .. }) => "nested",
            Ok(_) => "accepted",
        };
        assert_eq!(
            field(json!({"smtp_relay": {"host": "h", "port": 70000}})),
            "settings.smtp_relay.port"
        );
        assert_eq!(
            field(json!({"smtp_relay": {"host": "h", "tls": "ssl"}})),
            "settings.smtp_relay.tls"
        );
        assert_eq!(
            field(json!({"smtp_relay": {"port": 25}})),
            "settings.smtp_relay.host"
        );
        assert_eq!(
            field(json!({"smtp_relay": {"host": "h", "user": "x"}})),
            "settings.smtp_relay"
        );
        assert_eq!(field(json!({"address": 7})), "settings.address");
    }

    #[test]
    fn whatsapp_ids_may_be_numbers() {
        let s = whatsapp(&map(json!({"phone_number_id": 106540352242922u64,
            "secrets": {"verify_token": "v"}})))
        .unwrap();
        assert_eq!(s.phone_number_id.as_deref(), Some("106540352242922"));
        assert_eq!(s.verify_token.as_deref(), Some("v"));
        assert!(whatsapp(&map(json!({"secrets": {"app_secret": 1}}))).is_err());
    }
}
