//! The served OpenAPI document against the server, on both backends: every
//! route the routers declare is documented with its methods (the routes are
//! read from the router code, so a new route without an annotation fails
//! here), every documented operation is answered by a real route (probed),
//! every `$ref` resolves, enums are spelt as served, ids are integers and
//! error bodies are problems.

#[macro_use]
mod common;

use std::collections::BTreeSet;

use common::spawn_app;
use reqwest::{Method, StatusCode};
use serde_json::Value;

const METHODS: [&str; 7] = ["get", "post", "put", "patch", "delete", "options", "head"];

/// `(METHOD, path)` for every operation of the document.
fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for m in METHODS {
            if item.get(m).is_some() {
                ops.insert((m.to_uppercase(), path.clone()));
            }
        }
    }
    ops
}

/// The body of every `fn NAME() -> Router<AppState>` in `source`, by name.
fn router_fns(source: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = source;
    while let Some(i) = rest.find("() -> Router<AppState> {") {
        let head = &rest[..i];
        let name = head
            .rsplit(|c: char| !(c.is_alphanumeric() || c == '_'))
            .next()
            .unwrap_or_default()
            .to_owned();
        let body_start = i + "() -> Router<AppState> {".len();
        let body_end = rest[body_start..]
            .find("\n}\n")
            .map_or(rest.len(), |e| body_start + e);
        out.push((name, rest[body_start..body_end].to_owned()));
        rest = &rest[body_end..];
    }
    out
}

/// The string a route path expression stands for: a literal, or a
/// `&format!("{var}/more")` over `let var = "...";` bindings of the body.
fn path_of(expr: &str, body: &str) -> String {
    let expr = expr.trim();
    let literal = |s: &str| s.trim().trim_matches('"').to_owned();
    if let Some(inner) = expr.strip_prefix("&format!(") {
        let template = literal(inner.trim_end_matches(')'));
        let mut path = template.clone();
        for line in body.lines() {
            let line = line.trim();
            if let Some(binding) = line.strip_prefix("let ")
                && let Some((var, value)) = binding.split_once(" = ")
                && value.trim_end_matches(';').starts_with('"')
            {
                path = path.replace(&format!("{{{var}}}"), &literal(value.trim_end_matches(';')));
            }
        }
        path
    } else {
        literal(expr)
    }
}

/// `(METHOD, path)` for every `.route(path, method(handler)...)` in one
/// router function body.
fn routes_in(body: &str, prefix: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for chunk in body.split(".route(").skip(1) {
        // The call's arguments, up to its closing parenthesis.
        let mut depth = 1;
        let mut end = chunk.len();
        for (i, c) in chunk.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        end = i;
                        break;
                    }
                }
                _ => {}
            }
        }
        let args = &chunk[..end];
        // The path is the first argument (a format! call has commas inside
        // parentheses only).
        let mut depth = 0;
        let mut split = args.len();
        for (i, c) in args.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                ',' if depth == 0 => {
                    split = i;
                    break;
                }
                _ => {}
            }
        }
        let path = format!("{prefix}{}", path_of(&args[..split], body));
        let handlers = &args[split + 1..];
        for m in METHODS {
            let calls = [format!(" {m}("), format!("\n{m}("), format!(".{m}(")];
            let trimmed = format!(" {}", handlers.trim_start());
            if calls.iter().any(|c| trimmed.contains(c.as_str())) {
                out.push((m.to_uppercase(), path.clone()));
            }
        }
    }
    out
}

/// `(METHOD, path)` for every route the router code declares: the routers
/// merged into the `/api/v1` router in `lib.rs` get that prefix.
fn declared() -> BTreeSet<(String, String)> {
    let src = concat!(env!("CARGO_MANIFEST_DIR"), "/src");
    let lib = std::fs::read_to_string(format!("{src}/lib.rs")).unwrap();
    let api_block = lib
        .split("let api = Router::new()")
        .nth(1)
        .and_then(|rest| rest.split(';').next())
        .expect("lib.rs builds the /api/v1 router as `let api = Router::new()...;`");
    let mut routes = BTreeSet::new();
    let mut files = Vec::new();
    for entry in std::fs::read_dir(format!("{src}/routes")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    assert!(files.len() > 5, "the route modules are found");
    // The document serves itself from `openapi.rs`, beside the routes.
    files.push(format!("{src}/openapi.rs").into());
    for file in files {
        let module = file.file_stem().unwrap().to_str().unwrap().to_owned();
        let source = std::fs::read_to_string(&file).unwrap();
        let module = if module == "openapi" {
            module
        } else {
            format!("routes::{module}")
        };
        for (name, body) in router_fns(&source) {
            let nested = api_block.contains(&format!("{module}::{name}()"));
            let prefix = if nested { "/api/v1" } else { "" };
            routes.extend(routes_in(&body, prefix));
        }
    }
    routes
}

/// Every `$ref` in `value`.
fn refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("$ref", Value::String(r)) => out.push(r),
                    _ => refs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

/// Every string `enum` in `value`, with where it is.
fn enums(value: &Value, at: &str, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                if k == "enum"
                    && let Value::Array(values) = v
                {
                    out.extend(
                        values
                            .iter()
                            .filter_map(Value::as_str)
                            .map(|s| (at.to_owned(), s.to_owned())),
                    );
                } else {
                    enums(v, &format!("{at}/{k}"), out);
                }
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                enums(v, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

async fn document(app: &common::TestApp) -> Value {
    let (status, doc) = app
        .send(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    doc
}

async fn every_declared_route_is_documented_and_every_documented_one_served() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let documented = documented(&doc);
    let declared = declared();
    assert!(declared.len() > 40, "the routes are read: {declared:?}");
    let missing: Vec<_> = declared.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "routes not in the document: {missing:?}"
    );
    let extra: Vec<_> = documented.difference(&declared).collect();
    assert!(extra.is_empty(), "documented but not declared: {extra:?}");
    // Every documented operation reaches a handler: neither the API's
    // fallback (404 naming the route) nor a 405. Path parameters get a
    // placeholder; the handler then answers 4xx of its own.
    for (method, path) in &documented {
        if (path.ends_with("/events") || path.ends_with("/stream")) && method == "GET" {
            continue; // streams; reached, but they would not end
        }
        let concrete = path
            .replace("{id}", "1")
            .replace("{channel_key}", "no-such-key");
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let (status, body) = app
            .send(method.clone(), &concrete, Some(&app.admin), None)
            .await;
        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        let fallback = status == StatusCode::NOT_FOUND
            && (body == Value::String(String::new()) || body["detail"] == "route not found");
        assert!(!fallback, "{method} {path} is not routed: {status} {body}");
    }
}

async fn every_reference_resolves_and_enums_are_spelt_as_served() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(!all.is_empty());
    for r in all {
        let pointer = r
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("external ref {r}"));
        assert!(doc.pointer(pointer).is_some(), "unresolved reference {r}");
    }
    let mut values = Vec::new();
    enums(&doc["components"]["schemas"], "", &mut values);
    enums(&doc["paths"], "", &mut values);
    let names = |v: &str| {
        v.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    };
    for (at, value) in &values {
        if at.starts_with("/TimeZoneName") {
            continue; // IANA names are capitalised
        }
        assert!(
            names(value),
            "enum value {value:?} at {at} is not as served"
        );
    }
    // The served spellings, checked against a served value.
    let schemas = &doc["components"]["schemas"];
    assert!(
        schemas["ChannelKind"]["enum"]
            .as_array()
            .unwrap()
            .contains(&"email".into())
    );
    assert!(
        schemas["TicketSource"]["enum"]
            .as_array()
            .unwrap()
            .contains(&"api".into())
    );
    let (_, ticket) = app
        .post(
            "/api/v1/tickets",
            &app.admin,
            serde_json::json!({"subject": "Hi"}),
        )
        .await;
    for (field, schema) in [
        ("source", "TicketSource"),
        ("type", "TicketType"),
        ("stage", "Stage"),
    ] {
        let served = &ticket[field];
        assert!(
            schemas[schema]["enum"].as_array().unwrap().contains(served),
            "{field} {served} is not in {schema}"
        );
    }
}

async fn ids_are_integers_and_errors_are_problems() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for m in METHODS {
            let Some(op) = item.get(m) else { continue };
            for p in op["parameters"].as_array().into_iter().flatten() {
                if p["in"] == "path" && p["name"] == "id" {
                    assert_eq!(p["schema"]["type"], "integer", "{m} {path}");
                    assert_eq!(p["schema"]["format"], "int64", "{m} {path}");
                }
            }
            let responses = op["responses"].as_object().unwrap();
            for (status, response) in responses {
                if status.starts_with('4') {
                    assert!(
                        response["content"]["application/problem+json"].is_object(),
                        "{m} {path} {status} is not a problem"
                    );
                }
            }
            let public = op["tags"].as_array().unwrap().contains(&"public".into());
            if public {
                assert_eq!(op["security"], Value::Array(vec![]), "{m} {path}");
            } else {
                assert!(responses.contains_key("401"), "{m} {path} documents 401");
            }
        }
    }
    // The request bodies that refuse unknown fields say so.
    let schemas = &doc["components"]["schemas"];
    for name in [
        "NewUser",
        "NewTicket",
        "TicketPatch",
        "NewChannel",
        "OwnerRequest",
    ] {
        assert_eq!(schemas[name]["additionalProperties"], false, "{name}");
    }
    // And the server does refuse them.
    let (status, body) = app
        .post(
            "/api/v1/tickets",
            &app.admin,
            serde_json::json!({"subject": "Hi", "surprise": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
}

on_both_backends!(
    every_declared_route_is_documented_and_every_documented_one_served,
    every_reference_resolves_and_enums_are_spelt_as_served,
    ids_are_integers_and_errors_are_problems,
);
