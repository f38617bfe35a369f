//! Request extraction that fails with problem bodies instead of axum's plain
//! text: JSON bodies (with the path of the offending field), paths and
//! query strings.

use axum::{
    body::Bytes,
    extract::{FromRequest, FromRequestParts, Request},
    http::{HeaderMap, header},
};
use serde::de::DeserializeOwned;

use crate::problem::ApiError;

/// A path parameter; one that cannot be an id is a 404 problem naming it.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

/// Query parameters; an unknown or malformed one is a 400 problem.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);

/// A JSON body parsed into `T`. Syntax errors are 400; values of the wrong
/// type or form, missing or unknown fields are 422 naming the field.
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        let bytes = Bytes::from_request(Request::from_parts(parts.clone(), body), state).await?;
        parse_json(&parts.headers, &bytes).map(Json)
    }
}

/// Parses a JSON body; exposed for handlers that also need the raw bytes.
pub fn parse_json<T: DeserializeOwned>(headers: &HeaderMap, bytes: &[u8]) -> Result<T, ApiError> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| {
            let mime = mime.trim();
            mime.eq_ignore_ascii_case("application/json") || mime.ends_with("+json")
        });
    if !is_json {
        return Err(ApiError::UnsupportedMediaType);
    }
    // Every JSON body of this API is an object; serde would also read a
    // struct from an array of its fields in order, which no client means.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        return Err(ApiError::Invalid {
            field: None,
            detail: "expected a JSON object".into(),
        });
    }
    // No text of this API may hold U+0000 (PostgreSQL cannot store it);
    // JSON can only spell it as an escape, so the bytes tell.
    if has_nul_escape(bytes)
        && let Ok(any) = serde_json::from_slice::<serde_json::Value>(bytes)
        && let Some(path) = nul_path(&any)
    {
        return Err(ApiError::invalid(
            path,
            "text cannot contain the NUL character (U+0000)",
        ));
    }
    // The plain parser is faster; only a failed body is parsed again with
    // path tracking, to name the field at fault.
    if let Ok(value) = serde_json::from_slice(bytes) {
        return Ok(value);
    }
    // JSON has one number type: `3.0` is the integer 3 (JSON Schema says
    // so too), though serde's integer fields refuse it as written.
    if let Ok(mut any) = serde_json::from_slice::<serde_json::Value>(bytes)
        && integral_floats_to_integers(&mut any)
        && let Ok(value) = serde_json::from_value(any)
    {
        return Ok(value);
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(json_problem)?;
    // Trailing characters after the value are a syntax error too.
    de.end().map_err(|e| ApiError::BadRequest {
        field: None,
        detail: format!("malformed JSON: {e}"),
    })?;
    Ok(value)
}

/// Whether the JSON text spells `\u0000` (an unescaped backslash before it).
fn has_nul_escape(bytes: &[u8]) -> bool {
    bytes.windows(6).enumerate().any(|(i, w)| {
        w.eq_ignore_ascii_case(b"\\u0000")
            && bytes[..i].iter().rev().take_while(|b| **b == b'\\').count() % 2 == 0
    })
}

/// The path (`a.b[2]`) of the first string or key holding U+0000; `body`
/// when it is the top-level value.
fn nul_path(value: &serde_json::Value) -> Option<String> {
    use serde_json::Value;
    fn walk(value: &Value, at: &str) -> Option<String> {
        let here = || {
            Some(if at.is_empty() {
                "body".to_owned()
            } else {
                at.to_owned()
            })
        };
        match value {
            Value::String(s) if s.contains('\0') => here(),
            Value::Array(items) => items
                .iter()
                .enumerate()
                .find_map(|(i, v)| walk(v, &format!("{at}[{i}]"))),
            Value::Object(map) => map.iter().find_map(|(k, v)| {
                let path = if at.is_empty() {
                    k.clone()
                } else {
                    format!("{at}.{k}")
                };
                if k.contains('\0') {
                    here()
                } else {
                    walk(v, &path)
                }
            }),
            _ => None,
        }
    }
    walk(value, "")
}

/// Rewrites every float with no fraction (within the 64-bit range) as an
/// integer; whether anything changed.
fn integral_floats_to_integers(value: &mut serde_json::Value) -> bool {
    use serde_json::Value;
    match value {
        Value::Number(n) if n.is_f64() => {
            let f = n.as_f64().unwrap_or(f64::NAN);
            // The bounds are exact powers of two, so the casts below are exact.
            // Both are excluded: an integer literal outside the 64-bit range
            // (say -9223372036854775809) reaches here as a float rounded
            // onto the bound, and must stay refused.
            let integral = f.fract() == 0.0 && f > -(2f64.powi(63)) && f < 2f64.powi(64);
            if !integral {
                return false;
            }
            *value = if f < 0.0 {
                Value::from(f as i64)
            } else {
                Value::from(f as u64)
            };
            true
        }
        Value::Array(items) => items
            .iter_mut()
            .fold(false, |changed, v| integral_floats_to_integers(v) | changed),
        Value::Object(map) => map
            .values_mut()
            .fold(false, |changed, v| integral_floats_to_integers(v) | changed),
        _ => false,
    }
}

fn json_problem(e: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    use serde_json::error::Category;
    let path = e.path().to_string();
    let inner = e.into_inner();
    let message = inner.to_string();
    // For missing and unknown fields serde names the field in backquotes;
    // the path points at the object holding it.
    let named = ["missing field `", "unknown field `"]
        .iter()
        .find_map(|prefix| message.strip_prefix(prefix))
        .and_then(|rest| rest.split('`').next());
    let field = match (path.as_str(), named) {
        (".", Some(name)) => Some(name.to_owned()),
        (".", None) => None,
        // An unknown field is already the last segment of the path.
        (p, Some(name)) if p == name || p.ends_with(&format!(".{name}")) => Some(p.to_owned()),
        (p, Some(name)) => Some(format!("{p}.{name}")),
        (p, None) => Some(p.to_owned()),
    };
    match inner.classify() {
        Category::Data => ApiError::Invalid {
            field,
            detail: unquote_strings(&strip_position(&message)),
        },
        Category::Syntax | Category::Eof | Category::Io => ApiError::BadRequest {
            field,
            detail: format!("malformed JSON: {message}"),
        },
    }
}

/// serde quotes a refused string (`invalid type: string "…", expected a
/// map`); the problem names the field instead, since the string may be a
/// secret (a channel's settings) or personal data, and problems end up in
/// clients' and proxies' logs.
fn unquote_strings(message: &str) -> String {
    const QUOTED: &str = "string \"";
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(i) = rest.find(QUOTED) {
        out.push_str(&rest[..i]);
        out.push_str("string");
        let quoted = &rest[i + QUOTED.len()..];
        // The string is Debug-escaped: it ends at the first unescaped quote.
        let mut escaped = false;
        let end = quoted.char_indices().find_map(|(j, c)| {
            let close = c == '"' && !escaped;
            escaped = c == '\\' && !escaped;
            close.then_some(j)
        });
        match end {
            Some(j) => rest = &quoted[j + 1..],
            None => return out,
        }
    }
    out.push_str(rest);
    out
}

/// serde_json appends " at line 1 column 42"; for a data error the field
/// path says more.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::{integral_floats_to_integers, unquote_strings};

    #[test]
    fn integers_out_of_range_stay_refused() {
        let mut below: serde_json::Value = serde_json::from_str("[-9223372036854775809]").unwrap();
        assert!(!integral_floats_to_integers(&mut below));
        let mut whole: serde_json::Value = serde_json::from_str("[3.0]").unwrap();
        assert!(integral_floats_to_integers(&mut whole));
        assert_eq!(whole, serde_json::json!([3]));
    }

    #[test]
    fn refused_strings_are_not_quoted_back() {
        assert_eq!(
            unquote_strings(r#"invalid type: string "s3cr3t \"x\" \\", expected a map"#),
            "invalid type: string, expected a map"
        );
        assert_eq!(
            unquote_strings("invalid type: integer `5`, expected a string"),
            "invalid type: integer `5`, expected a string"
        );
        assert_eq!(
            unquote_strings(r#"string "a" and string "b""#),
            "string and string"
        );
    }
}
