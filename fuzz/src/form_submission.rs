//! Form submissions (`POST /f/{key}`): [`forms::parse_urlencoded`] and
//! [`forms::json_fields`] for the two body types, the channel's
//! [`FormSettings::from_settings`], [`forms::map_submission`] onto ticket
//! fields, and [`forms::normalize_visitor_token`].
//!
//! Checked: a body the strict decoder accepts decodes as the WHATWG parser
//! does (repeated names merged into arrays); a mapped submission respects
//! its limits (subject length, property count, names) and holds values
//! that parse again to themselves; normalising a visitor token twice
//! changes nothing.

use serde_json::{Map, Value};
use switchboard_channels::forms::{self, FormSettings, Submission};
use switchboard_domain::{E164, EmailAddress};

fn custom_settings() -> FormSettings {
    let settings = serde_json::json!({
        "fields": {"email": "your_email", "name": "full_name", "subject": "topic",
                   "message": "body", "phone": "tel"},
        "required": ["email"],
        "properties": ["plan", "language"],
    });
    FormSettings::from_settings(settings.as_object().expect("object")).expect("valid settings")
}

fn check(settings: &FormSettings, fields: Vec<(String, Value)>) {
    let Ok(s) = forms::map_submission(settings, fields) else {
        return;
    };
    check_submission(&s);
}

fn check_submission(s: &Submission) {
    assert!(s.subject.chars().count() <= 200, "subject too long");
    assert!(!s.subject.trim().is_empty() || s.subject.is_empty());
    assert!(s.properties.len() <= 50);
    for (name, value) in &s.properties {
        assert!(!name.is_empty() && name.len() <= 64);
        assert!(!matches!(value, Value::Null | Value::Object(_)));
        assert_ne!(name, forms::VISITOR_TOKEN_FIELD);
    }
    if let Some(email) = &s.email {
        assert_eq!(
            EmailAddress::try_from(email.to_string()).as_ref(),
            Ok(email)
        );
    }
    if let Some(phone) = &s.phone {
        assert_eq!(E164::try_from(phone.to_string()).as_ref(), Ok(phone));
    }
    if let Some(token) = &s.visitor_token {
        assert_eq!(
            forms::normalize_visitor_token(token).ok().as_ref(),
            Some(token)
        );
    }
    let _ = s.contact();
}

/// The fields the WHATWG parser finds, merged as `parse_urlencoded` does.
fn reference_fields(data: &[u8]) -> Vec<(String, Value)> {
    let mut fields: Vec<(String, Value)> = Vec::new();
    for (name, value) in form_urlencoded::parse(data) {
        let value = Value::String(value.into_owned());
        match fields.iter_mut().find(|(n, _)| *n == name) {
            Some((_, Value::Array(values))) => values.push(value),
            Some((_, first)) => *first = Value::Array(vec![first.take(), value]),
            None => fields.push((name.into_owned(), value)),
        }
    }
    fields
}

/// One input: a form body, url-encoded or JSON. A JSON object with a
/// `settings` object is also tried as a channel's settings for its
/// `fields` object.
pub fn run(data: &[u8]) {
    if let Ok(fields) = forms::parse_urlencoded(data) {
        assert_eq!(
            fields,
            reference_fields(data),
            "decoding differs from the WHATWG parser"
        );
        check(&FormSettings::default(), fields.clone());
        check(&custom_settings(), fields);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(token) = forms::normalize_visitor_token(text) {
            assert!(!token.is_empty() && token.len() <= 200);
            assert_eq!(forms::normalize_visitor_token(&token).ok(), Some(token));
        }
        let subject = forms::first_line_subject(text, "Form submission");
        assert!(subject.chars().count() <= 80, "{subject:?}");
    }
    let Ok(body) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let object = body.as_object().cloned();
    match forms::json_fields(body) {
        Ok(fields) => {
            check(&FormSettings::default(), fields.clone());
            check(&custom_settings(), fields);
        }
        Err(_) => assert!(object.is_none()),
    }
    let Some(object) = object else { return };
    let _ = FormSettings::from_settings(&object);
    if let Some(Value::Object(settings)) = object.get("settings")
        && let Ok(settings) = FormSettings::from_settings(settings)
    {
        let fields = match object.get("fields") {
            Some(Value::Object(f)) => f.clone().into_iter().collect(),
            _ => Map::new().into_iter().collect(),
        };
        check(&settings, fields);
    }
}
