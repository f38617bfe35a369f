//! Web forms over real HTTP on both backends: urlencoded and JSON posts with
//! field mapping, the visitor token linking a submission to a known contact
//! (and so to contact-owner routing), rate limits, the size limit, bad
//! submissions refused without storing anything, browser answers
//! (thank-you page, redirect) and CORS.

#[macro_use]
mod common;

use common::{TestApp, assert_problem, spawn_app};
use reqwest::{StatusCode, header};
use serde_json::{Value, json};

/// Creates a form channel with `settings` and returns its id and key.
async fn form(app: &TestApp, settings: Value) -> (i64, String) {
    let (status, ch) = app
        .post(
            "/api/v1/channels",
            &app.admin,
            json!({"kind": "form", "name": "Contact us", "settings": settings}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{ch}");
    (
        ch["id"].as_i64().unwrap(),
        ch["key"].as_str().unwrap().to_owned(),
    )
}

/// A client that does not follow redirects (to see the 303).
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Posts `body` to the form with `content_type` and extra headers.
async fn post_raw(
    app: &TestApp,
    key: &str,
    content_type: &str,
    headers: &[(&str, &str)],
    body: impl Into<reqwest::Body>,
) -> reqwest::Response {
    let mut req = client()
        .post(format!("{}/f/{key}", app.base))
        .header(header::CONTENT_TYPE, content_type)
        .body(body);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    req.send().await.unwrap()
}

/// Posts JSON and returns status, headers and body.
async fn post_json(
    app: &TestApp,
    key: &str,
    headers: &[(&str, &str)],
    body: Value,
) -> (StatusCode, header::HeaderMap, Value) {
    let res = post_raw(app, key, "application/json", headers, body.to_string()).await;
    let (status, h) = (res.status(), res.headers().clone());
    let text = res.text().await.unwrap();
    (
        status,
        h,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// The channel's tickets, newest first.
async fn tickets(app: &TestApp, channel: i64) -> Vec<Value> {
    let (status, page) = app
        .get(&format!("/api/v1/tickets?channel={channel}"), &app.admin)
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["items"].as_array().unwrap().clone()
}

/// The `Retry-After` header, in seconds.
fn retry_after(headers: &header::HeaderMap) -> u64 {
    headers[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

async fn ticket(app: &TestApp, id: &Value) -> Value {
    let (status, t) = app.get(&format!("/api/v1/tickets/{id}"), &app.admin).await;
    assert_eq!(status, StatusCode::OK, "{t}");
    t
}

async fn contact(app: &TestApp, id: &Value) -> Value {
    app.get(&format!("/api/v1/contacts/{id}"), &app.admin)
        .await
        .1
}

async fn urlencoded_and_json_submissions_follow_the_field_mapping() {
    let app = spawn_app().await;
    let (ch, key) = form(
        &app,
        json!({"fields": {"email": "your_email", "name": "full_name", "subject": "topic", "message": "body"}}),
    )
    .await;

    // A browser form: urlencoded, answered with a thank-you page.
    let res = post_raw(
        &app,
        &key,
        "application/x-www-form-urlencoded",
        &[],
        "your_email=cleo%40x.example&full_name=Cl%C3%A9o+Lune&topic=Charged+twice&body=My+invoice%0Atwice&plan=pro&tag=a&tag=b&empty=",
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(res.text().await.unwrap().contains("Thank you"));
    let stored = tickets(&app, ch).await;
    assert_eq!(stored.len(), 1);
    let t = &stored[0];
    assert_eq!(t["subject"], "Charged twice");
    assert_eq!(t["content"], "My invoice\ntwice");
    assert_eq!(t["source"], "form");
    assert_eq!(t["type"], "email_other");
    assert_eq!(
        t["properties"],
        json!({"plan": "pro", "tag": ["a", "b"]}),
        "unmapped fields become properties, empty ones are dropped"
    );
    let c = contact(&app, &t["contact_id"]).await;
    assert_eq!(c["email"], "cleo@x.example");
    assert_eq!(c["name"], "Cléo Lune");
    let (_, messages) = app
        .get(&format!("/api/v1/tickets/{}/messages", t["id"]), &app.admin)
        .await;
    assert_eq!(messages["items"][0]["kind"], "inbound");
    assert_eq!(messages["items"][0]["body"], "My invoice\ntwice");

    // A script: JSON in, 201 {ticket_id} out; no subject means the
    // message's first line.
    let (status, _, body) = post_json(
        &app,
        &key,
        &[],
        json!({"your_email": "dan@x.example", "body": "Where is my order?\nOrder 42", "order": 42}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let t = ticket(&app, &body["ticket_id"]).await;
    assert_eq!(t["subject"], "Where is my order?");
    assert_eq!(t["properties"], json!({"order": 42}));

    // Urlencoded but asking for JSON (a fetch with FormData-like body).
    let res = post_raw(
        &app,
        &key,
        "application/x-www-form-urlencoded",
        &[("accept", "application/json")],
        "your_email=eve%40x.example&body=hi",
    )
    .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let body: Value = res.json().await.unwrap();
    assert!(body["ticket_id"].is_i64(), "{body}");

    // An allow-list keeps only the listed properties; a redirect URL turns
    // the browser answer into a 303.
    let (ch2, key2) = form(
        &app,
        json!({"properties": ["plan"], "redirect_url": "https://shop.example/thanks"}),
    )
    .await;
    let res = post_raw(
        &app,
        &key2,
        "application/x-www-form-urlencoded",
        &[],
        "email=f%40x.example&message=hello&plan=pro&submit=Send",
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        res.headers()[header::LOCATION],
        "https://shop.example/thanks"
    );
    assert_eq!(
        tickets(&app, ch2).await[0]["properties"],
        json!({"plan": "pro"})
    );
}

async fn a_known_visitor_token_routes_to_the_contact_owner() {
    let app = spawn_app().await;
    let (ana, _) = app.user("Ana", "agent", json!({})).await;
    let (bob, _) = app.user("Bob", "agent", json!({})).await;
    let (status, cleo) = app
        .post(
            "/api/v1/contacts",
            &app.admin,
            json!({"email": "cleo@x.example", "owner_user_id": ana, "visitor_tokens": ["utk-cleo"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{cleo}");
    let (ch, key) = form(&app, json!({"required": ["message"]})).await;
    let (status, body) = app
        .patch(
            &format!("/api/v1/channels/{ch}"),
            &app.admin,
            json!({"routing": {"assign_to": "contact_owner", "fallback": {"assign_to": "users_and_teams", "users": [bob]}}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // The token as a field: Cleo's ticket, routed to her owner, even
    // without an e-mail address in the submission.
    let (status, _, body) = post_json(
        &app,
        &key,
        &[],
        json!({"message": "Hello again", "visitor_token": "utk-cleo"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let t = ticket(&app, &body["ticket_id"]).await;
    assert_eq!(t["owner"]["user_id"], ana);
    assert_eq!(t["contact_id"], cleo["id"]);
    assert_eq!(t["properties"]["visitor_token"], "utk-cleo");

    // The same from the tracking cookie of a browser form post.
    let res = post_raw(
        &app,
        &key,
        "application/x-www-form-urlencoded",
        &[
            ("accept", "application/json"),
            ("cookie", "theme=dark; sb_visitor=utk-cleo"),
        ],
        "message=From+the+cookie",
    )
    .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        ticket(&app, &body["ticket_id"]).await["owner"]["user_id"],
        ana
    );

    // An unknown token does not identify Cleo, even with her address: the
    // fallback applies.
    let (status, _, body) = post_json(
        &app,
        &key,
        &[],
        json!({"message": "Hi", "email": "cleo@x.example", "visitor_token": "utk-stranger"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let t = ticket(&app, &body["ticket_id"]).await;
    assert_eq!(t["owner"]["user_id"], bob);
    assert_eq!(t["contact_id"], cleo["id"], "found by e-mail");
}

async fn bad_submissions_are_refused_naming_the_field_and_store_nothing() {
    let app = spawn_app().await;
    let (ch, key) = form(
        &app,
        json!({"fields": {"email": "your_email", "message": "body"}}),
    )
    .await;
    let refuse = |body: Value, status: u16, field: Option<&'static str>| {
        let (app, key) = (&app, &key);
        async move {
            let (s, h, b) = post_json(app, key, &[], body).await;
            assert_eq!(h[header::CONTENT_TYPE], "application/problem+json");
            assert_problem(&(s, b), status, field);
        }
    };
    refuse(
        json!({"your_email": "nope", "body": "hi"}),
        422,
        Some("your_email"),
    )
    .await;
    refuse(json!({"your_email": "a@x.example"}), 422, Some("body")).await;
    refuse(json!({"body": "hi"}), 422, Some("your_email")).await;
    refuse(
        json!({"your_email": "a@x.example", "body": "hi", "visitor_token": "has space"}),
        422,
        Some("visitor_token"),
    )
    .await;
    refuse(
        json!({"your_email": "a@x.example", "body": "hi", "address": {"city": "Lyon"}}),
        422,
        Some("address"),
    )
    .await;
    refuse(json!(["not", "an", "object"]), 422, Some("body")).await;
    let res = post_raw(&app, &key, "application/json", &[], "{\"body\": ").await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let res = post_raw(
        &app,
        &key,
        "application/x-www-form-urlencoded",
        &[("accept", "application/json")],
        "body=%zz",
    )
    .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let res = post_raw(&app, &key, "multipart/form-data; boundary=x", &[], "--x--").await;
    assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    // A browser form gets the same status with a page naming the field.
    let res = post_raw(
        &app,
        &key,
        "application/x-www-form-urlencoded",
        &[],
        "your_email=nope&body=hi",
    )
    .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = res.text().await.unwrap();
    assert!(
        page.contains("your_email") && page.contains("not sent"),
        "{page}"
    );

    // Unknown keys and keys of other kinds of channel are 404.
    let (_, chat) = app
        .post(
            "/api/v1/channels",
            &app.admin,
            json!({"kind": "chat", "name": "Chat"}),
        )
        .await;
    for k in ["0123456789abcdef", chat["key"].as_str().unwrap()] {
        let (s, _, b) = post_json(
            &app,
            k,
            &[],
            json!({"your_email": "a@x.example", "body": "hi"}),
        )
        .await;
        assert_problem(&(s, b), 404, None);
    }
    assert!(tickets(&app, ch).await.is_empty(), "nothing was stored");
    let (_, contacts) = app.get("/api/v1/contacts", &app.admin).await;
    assert_eq!(contacts["items"], json!([]), "no contact either");
}

async fn submissions_are_rate_limited_per_client_and_channel() {
    let app = spawn_app().await;
    let (ch, key) = form(
        &app,
        json!({"rate_limit": {"per_ip_per_minute": 3, "per_channel_per_minute": 5}}),
    )
    .await;
    let submit = |ip: &'static str| {
        let (app, key) = (&app, &key);
        async move {
            post_json(
                app,
                key,
                &[("x-forwarded-for", ip)],
                json!({"email": "a@x.example", "message": "hi"}),
            )
            .await
        }
    };
    for _ in 0..3 {
        assert_eq!(submit("203.0.113.1").await.0, StatusCode::CREATED);
    }
    let (status, headers, body) = submit("203.0.113.1").await;
    // 3 a minute: one every 20 s (less whatever time the test took).
    assert!((15..=20).contains(&retry_after(&headers)), "{headers:?}");
    assert_problem(&(status, body), 429, None);
    // Another client still gets through until the channel's limit.
    for _ in 0..2 {
        assert_eq!(submit("203.0.113.2").await.0, StatusCode::CREATED);
    }
    let (status, headers, _) = submit("203.0.113.3").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    // 5 a minute: one every 12 s.
    assert!((8..=12).contains(&retry_after(&headers)), "{headers:?}");
    assert_eq!(
        tickets(&app, ch).await.len(),
        5,
        "refused posts stored nothing"
    );

    // Defaults: 10 a minute per client.
    let (_, key) = form(&app, json!({})).await;
    for i in 0..11 {
        let (status, _, _) = post_json(
            &app,
            &key,
            &[("x-forwarded-for", "198.51.100.7")],
            json!({"email": "a@x.example", "message": "hi"}),
        )
        .await;
        let expected = if i < 10 {
            StatusCode::CREATED
        } else {
            StatusCode::TOO_MANY_REQUESTS
        };
        assert_eq!(status, expected, "submission {i}");
    }
    // A browser is told to wait on a page, with the same Retry-After.
    let res = post_raw(
        &app,
        &key,
        "application/x-www-form-urlencoded",
        &[("x-forwarded-for", "198.51.100.7")],
        "email=a%40x.example&message=hi",
    )
    .await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!((1..=6).contains(&retry_after(res.headers())));
}

async fn oversized_submissions_are_refused() {
    let app = spawn_app().await;
    let (ch, key) = form(&app, json!({})).await;
    let big = json!({"email": "a@x.example", "message": "x".repeat(64 * 1024)});
    let (status, _, body) = post_json(&app, &key, &[], big).await;
    assert_problem(&(status, body), 413, None);
    let fits = json!({"email": "a@x.example", "message": "x".repeat(60 * 1024)});
    let (status, _, body) = post_json(&app, &key, &[], fits).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(tickets(&app, ch).await.len(), 1);
}

async fn cors_follows_allowed_origins() {
    let app = spawn_app().await;
    let (_, open) = form(&app, json!({})).await;
    let (status, headers, _) = post_json(
        &app,
        &open,
        &[("origin", "https://anywhere.example")],
        json!({"email": "a@x.example", "message": "hi"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");

    let (ch, key) = form(&app, json!({"allowed_origins": ["https://shop.example"]})).await;
    let preflight = client()
        .request(reqwest::Method::OPTIONS, format!("{}/f/{key}", app.base))
        .header("origin", "https://shop.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), StatusCode::NO_CONTENT);
    let h = preflight.headers();
    assert_eq!(
        h[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        "https://shop.example"
    );
    assert!(
        h[header::ACCESS_CONTROL_ALLOW_METHODS]
            .to_str()
            .unwrap()
            .contains("POST")
    );
    assert!(
        h[header::ACCESS_CONTROL_ALLOW_HEADERS]
            .to_str()
            .unwrap()
            .contains("Content-Type")
    );
    let (status, headers, body) = post_json(
        &app,
        &key,
        &[("origin", "https://shop.example")],
        json!({"email": "nope", "message": "hi"}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(
        headers[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        "https://shop.example",
        "errors carry CORS headers too, so the page can show them"
    );
    let (status, _, body) = post_json(
        &app,
        &key,
        &[("origin", "https://evil.example")],
        json!({"email": "a@x.example", "message": "hi"}),
    )
    .await;
    assert_problem(&(status, body), 403, None);
    let res = client()
        .request(reqwest::Method::OPTIONS, format!("{}/f/{key}", app.base))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(tickets(&app, ch).await.is_empty());
}

on_both_backends!(
    urlencoded_and_json_submissions_follow_the_field_mapping,
    a_known_visitor_token_routes_to_the_contact_owner,
    bad_submissions_are_refused_naming_the_field_and_store_nothing,
    submissions_are_rate_limited_per_client_and_channel,
    oversized_submissions_are_refused,
    cors_follows_allowed_origins,
);
