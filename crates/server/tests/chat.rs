//! Live chat over real HTTP on both backends: a visitor starts a
//! conversation, sends and lists messages with a signed token; forged and
//! other visitors' tokens are refused; agent replies reach the visitor live
//! over SSE while internal notes never do; a known visitor is routed to the
//! contact's owner; rate limits; the widget script.

#[macro_use]
mod common;

use std::time::Duration;

use common::{TestApp, assert_problem, spawn_app};
use reqwest::{StatusCode, header};
use serde_json::{Value, json};

/// Creates a chat channel with `settings` and `routing`; returns id and key.
async fn chat(app: &TestApp, settings: Value, routing: Value) -> (i64, String) {
    let (status, ch) = app
        .post(
            "/api/v1/channels",
            &app.admin,
            json!({"kind": "chat", "name": "Website chat", "settings": settings}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{ch}");
    if !routing.is_null() {
        let (status, body) = app
            .patch(
                &format!("/api/v1/channels/{}", ch["id"]),
                &app.admin,
                json!({"routing": routing}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    (
        ch["id"].as_i64().unwrap(),
        ch["key"].as_str().unwrap().to_owned(),
    )
}

/// A visitor-side request: JSON body, optional token header, extra headers.
async fn visitor(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> (StatusCode, header::HeaderMap, Value) {
    let mut req = app.client.request(method, format!("{}{path}", app.base));
    if let Some(t) = token {
        req = req.header("x-visitor-token", t);
    }
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.unwrap();
    let (status, h) = (res.status(), res.headers().clone());
    let text = res.text().await.unwrap();
    (
        status,
        h,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Starts a conversation; returns the whole answer.
async fn start(app: &TestApp, key: &str, token: Option<&str>, body: Value) -> Value {
    let (status, _, started) = visitor(
        app,
        reqwest::Method::POST,
        &format!("/chat/{key}/conversations"),
        token,
        &[],
        Some(body),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{started}");
    started
}

fn conversation_path(key: &str, started: &Value, rest: &str) -> String {
    format!(
        "/chat/{key}/conversations/{}/{rest}",
        started["conversation_id"]
    )
}

async fn ticket(app: &TestApp, id: &Value) -> Value {
    let (status, t) = app.get(&format!("/api/v1/tickets/{id}"), &app.admin).await;
    assert_eq!(status, StatusCode::OK, "{t}");
    t
}

/// A Server-Sent Events stream read event by event.
struct Events {
    res: reqwest::Response,
    buf: String,
}

/// One event: its id, name and data.
#[derive(Debug)]
struct Event {
    id: Option<String>,
    name: String,
    data: Value,
}

impl Events {
    async fn open(app: &TestApp, path: &str, headers: &[(&str, &str)]) -> Self {
        let mut req = app.client.get(format!("{}{path}", app.base));
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert!(
            res.headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream")
        );
        Self {
            res,
            buf: String::new(),
        }
    }

    /// The next event (comments skipped), or `None` after `wait` of silence.
    async fn next(&mut self, wait: Duration) -> Option<Event> {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let mut event = Event {
                    id: None,
                    name: "message".into(),
                    data: Value::Null,
                };
                let mut data = String::new();
                for line in block.lines() {
                    let field = |p: &str| line.strip_prefix(p).map(|v| v.trim_start().to_owned());
                    if let Some(v) = field("id:") {
                        event.id = Some(v);
                    } else if let Some(v) = field("event:") {
                        event.name = v;
                    } else if let Some(v) = field("data:") {
                        data.push_str(&v);
                    }
                }
                if data.is_empty() {
                    continue; // a keep-alive comment
                }
                event.data = serde_json::from_str(&data).unwrap();
                return Some(event);
            }
            match tokio::time::timeout(wait, self.res.chunk()).await {
                Ok(Ok(Some(chunk))) => self.buf.push_str(&String::from_utf8_lossy(&chunk)),
                _ => return None,
            }
        }
    }
}

async fn visitors_start_send_and_list_with_a_signed_token() {
    let app = spawn_app().await;
    let (ana, ana_token) = app.user("Ana", "agent", json!({})).await;
    let (ch, key) = chat(
        &app,
        json!({}),
        json!({"assign_to": "users_and_teams", "users": [ana]}),
    )
    .await;

    let (status, headers, started) = visitor(
        &app,
        reqwest::Method::POST,
        &format!("/chat/{key}/conversations"),
        None,
        &[],
        Some(json!({"message": "Is the blue one in stock?\nSize M", "name": "Cleo", "email": "cleo@x.example", "client_id": "m1"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{started}");
    let token = started["visitor_token"].as_str().unwrap().to_owned();
    let (visitor_id, signature) = token.split_once('.').unwrap();
    assert_eq!(visitor_id.len(), 32);
    assert_eq!(signature.len(), 43, "base64url of an HMAC-SHA256");
    let cookie = headers[header::SET_COOKIE].to_str().unwrap();
    assert!(
        cookie.starts_with(&format!("sb_visitor={token};")),
        "{cookie}"
    );
    assert!(cookie.contains("HttpOnly") && cookie.contains(&format!("Path=/chat/{key}")));
    assert_eq!(started["message"]["from"], "visitor");
    assert_eq!(started["status"], "open");

    // The conversation is a message ticket routed by the channel's rule,
    // with the visitor id (never the signature) as its visitor token.
    let t = ticket(&app, &started["conversation_id"]).await;
    assert_eq!(t["type"], "message");
    assert_eq!(t["source"], "chat");
    assert_eq!(t["channel_id"], ch);
    assert_eq!(t["subject"], "Is the blue one in stock?");
    assert_eq!(t["owner"]["user_id"], ana);
    assert_eq!(t["properties"]["visitor_token"], visitor_id);
    let (_, contact) = app
        .get(&format!("/api/v1/contacts/{}", t["contact_id"]), &app.admin)
        .await;
    assert_eq!(contact["email"], "cleo@x.example");
    // The signing key was created and is shown only as set.
    let (_, channel) = app.get(&format!("/api/v1/channels/{ch}"), &app.admin).await;
    assert_eq!(
        channel["settings"]["secrets"]["visitor_signing_key"],
        "(set)"
    );

    // Retrying the start with the same client id opens nothing new.
    let (status, _, again) = visitor(
        &app,
        reqwest::Method::POST,
        &format!("/chat/{key}/conversations"),
        Some(&token),
        &[],
        Some(json!({"message": "Is the blue one in stock?\nSize M", "client_id": "m1"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["conversation_id"], started["conversation_id"]);
    assert_eq!(again["message"]["id"], started["message"]["id"]);

    // Send, and retry the send: one message.
    let send = |client_id: &'static str| {
        let (app, key, started, token) = (&app, &key, &started, &token);
        async move {
            visitor(
                app,
                reqwest::Method::POST,
                &conversation_path(key, started, "messages"),
                Some(token),
                &[],
                Some(json!({"message": "Also, do you ship to Lyon?", "client_id": client_id})),
            )
            .await
        }
    };
    let (status, _, sent) = send("m2").await;
    assert_eq!(status, StatusCode::CREATED, "{sent}");
    let (status, _, resent) = send("m2").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(resent["message"]["id"], sent["message"]["id"]);

    // The agent answers and leaves a note.
    let reply = json!({"kind": "reply", "body": "Yes, and we ship to Lyon."});
    let (status, _) = app
        .post(
            &format!("/api/v1/tickets/{}/messages", t["id"]),
            &ana_token,
            reply,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let note = json!({"kind": "note", "body": "VIP customer, offer free shipping"});
    app.post(
        &format!("/api/v1/tickets/{}/messages", t["id"]),
        &ana_token,
        note,
    )
    .await;

    // The list: both visitor messages and the reply, never the note; the
    // sb_visitor cookie works as well as the header.
    let (status, _, list) = visitor(
        &app,
        reqwest::Method::GET,
        &conversation_path(&key, &started, "messages"),
        None,
        &[("cookie", &format!("sb_visitor={token}"))],
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let items = list["items"].as_array().unwrap();
    let bodies: Vec<&str> = items.iter().map(|m| m["body"].as_str().unwrap()).collect();
    assert_eq!(
        bodies,
        [
            "Is the blue one in stock?\nSize M",
            "Also, do you ship to Lyon?",
            "Yes, and we ship to Lyon."
        ]
    );
    assert_eq!(items[2]["from"], "agent");
    assert_eq!(items[2]["author_name"], "Ana");
    assert!(
        !list.to_string().contains("VIP"),
        "notes never reach visitors"
    );
    // `after` lists only what is newer.
    let (_, _, newer) = visitor(
        &app,
        reqwest::Method::GET,
        &format!(
            "{}?after={}",
            conversation_path(&key, &started, "messages"),
            items[1]["id"]
        ),
        Some(&token),
        &[],
        None,
    )
    .await;
    assert_eq!(newer["items"].as_array().unwrap().len(), 1);

    // Bad messages are named.
    let (status, _, body) = visitor(
        &app,
        reqwest::Method::POST,
        &conversation_path(&key, &started, "messages"),
        Some(&token),
        &[],
        Some(json!({"message": "   "})),
    )
    .await;
    assert_problem(&(status, body), 422, Some("message"));
    let (status, _, body) = visitor(
        &app,
        reqwest::Method::POST,
        &format!("/chat/{key}/conversations"),
        None,
        &[],
        Some(json!({"message": "hi", "email": "nope"})),
    )
    .await;
    assert_problem(&(status, body), 422, Some("email"));

    // Without a rule the conversation stays unassigned (the chatflow's
    // assignment toggle is the routing rule).
    let (_, unrouted) = chat(&app, json!({}), Value::Null).await;
    let s = start(&app, &unrouted, None, json!({"message": "Anyone there?"})).await;
    assert_eq!(
        ticket(&app, &s["conversation_id"]).await["owner"]["user_id"],
        Value::Null
    );
}

async fn forged_and_other_visitors_tokens_are_refused() {
    let app = spawn_app().await;
    let (_, key) = chat(&app, json!({}), Value::Null).await;
    let (_, other_key) = chat(&app, json!({}), Value::Null).await;
    let first = start(
        &app,
        &key,
        None,
        json!({"message": "I am the first visitor"}),
    )
    .await;
    let mine = first["visitor_token"].as_str().unwrap();
    let second = start(&app, &key, None, json!({"message": "I am another visitor"})).await;
    let theirs = second["visitor_token"].as_str().unwrap();
    assert_ne!(mine, theirs);
    let elsewhere = start(&app, &other_key, None, json!({"message": "hi"})).await;
    let elsewhere_token = elsewhere["visitor_token"].as_str().unwrap();

    let (visitor_id, signature) = mine.split_once('.').unwrap();
    let mut flipped = signature.to_owned();
    flipped.replace_range(..1, if signature.starts_with('A') { "B" } else { "A" });
    let forged = [
        format!("{visitor_id}.{flipped}"),
        visitor_id.to_owned(),
        format!("{}.{signature}", "f".repeat(32)),
        elsewhere_token.to_owned(),
        "garbage".to_owned(),
    ];
    let path = |rest: &str| conversation_path(&key, &first, rest);
    for token in &forged {
        for (method, rest, body) in [
            (reqwest::Method::GET, "messages", None),
            (
                reqwest::Method::POST,
                "messages",
                Some(json!({"message": "let me in"})),
            ),
            (reqwest::Method::GET, "events", None),
        ] {
            let got = visitor(&app, method, &path(rest), Some(token), &[], body).await;
            assert_problem(&(got.0, got.2), 401, None);
        }
    }
    let got = visitor(
        &app,
        reqwest::Method::GET,
        &path("messages"),
        None,
        &[],
        None,
    )
    .await;
    assert_problem(&(got.0, got.2), 401, None);
    // A real token of another visitor: the conversation does not exist for them.
    for (method, rest, body) in [
        (reqwest::Method::GET, "messages", None),
        (
            reqwest::Method::POST,
            "messages",
            Some(json!({"message": "let me in"})),
        ),
        (reqwest::Method::GET, "events", None),
    ] {
        let got = visitor(&app, method, &path(rest), Some(theirs), &[], body).await;
        assert_problem(&(got.0, got.2), 404, None);
    }
    // Nor for its real owner on another channel's URL.
    let got = visitor(
        &app,
        reqwest::Method::GET,
        &conversation_path(&other_key, &first, "messages"),
        Some(elsewhere_token),
        &[],
        None,
    )
    .await;
    assert_problem(&(got.0, got.2), 404, None);
    // Nothing was added, and the owner still reads it.
    let (_, messages) = app
        .get(
            &format!("/api/v1/tickets/{}/messages", first["conversation_id"]),
            &app.admin,
        )
        .await;
    assert_eq!(messages["items"].as_array().unwrap().len(), 1);
    let got = visitor(
        &app,
        reqwest::Method::GET,
        &path("messages"),
        Some(mine),
        &[],
        None,
    )
    .await;
    assert_eq!(got.0, StatusCode::OK);
    // Starting with a forged token just makes a new visitor.
    let fresh = start(&app, &key, Some(&forged[0]), json!({"message": "hello"})).await;
    assert!(
        !fresh["visitor_token"]
            .as_str()
            .unwrap()
            .starts_with(visitor_id)
    );
    // A form is not a chat: its key is 404 here.
    let (_, form) = app
        .post(
            "/api/v1/channels",
            &app.admin,
            json!({"kind": "form", "name": "Form"}),
        )
        .await;
    let got = visitor(
        &app,
        reqwest::Method::POST,
        &format!("/chat/{}/conversations", form["key"].as_str().unwrap()),
        None,
        &[],
        Some(json!({"message": "hi"})),
    )
    .await;
    assert_problem(&(got.0, got.2), 404, None);
}

async fn agent_replies_reach_the_visitor_live_and_notes_do_not() {
    let app = spawn_app().await;
    let (_, agent) = app.user("Ana", "agent", json!({})).await;
    let (_, key) = chat(&app, json!({}), Value::Null).await;
    let started = start(&app, &key, None, json!({"message": "Hello?"})).await;
    let token = started["visitor_token"].as_str().unwrap().to_owned();
    let ticket_id = started["conversation_id"].clone();
    // EventSource cannot send headers: the token goes in the query.
    let events_path = format!(
        "{}?visitor_token={token}",
        conversation_path(&key, &started, "events")
    );
    let mut events = Events::open(&app, &events_path, &[]).await;
    // Another conversation's activity must not show up here.
    let other = start(&app, &key, None, json!({"message": "Unrelated"})).await;
    let post = |kind: &'static str, body: &'static str| {
        let (app, agent, ticket_id) = (&app, &agent, &ticket_id);
        async move {
            let (status, added) = app
                .post(
                    &format!("/api/v1/tickets/{ticket_id}/messages"),
                    agent,
                    json!({"kind": kind, "body": body}),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{added}");
            added["message"]["id"].as_i64().unwrap()
        }
    };
    app.post(
        &format!("/api/v1/tickets/{}/messages", other["conversation_id"]),
        &agent,
        json!({"kind": "reply", "body": "Reply to someone else"}),
    )
    .await;
    post("note", "Internal: check the refund first").await;
    let reply_id = post("reply", "Hi! How can I help?").await;

    let event = events
        .next(Duration::from_secs(10))
        .await
        .expect("the reply arrives");
    assert_eq!(event.name, "message");
    assert_eq!(event.id, Some(reply_id.to_string()));
    assert_eq!(event.data["body"], "Hi! How can I help?", "{event:?}");
    assert_eq!(event.data["from"], "agent");
    assert_eq!(event.data["author_name"], "Ana");

    // The visitor's own messages come through too (a second tab sees them).
    let (status, _, _) = visitor(
        &app,
        reqwest::Method::POST,
        &conversation_path(&key, &started, "messages"),
        Some(&token),
        &[],
        Some(json!({"message": "My order is late"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let event = events.next(Duration::from_secs(10)).await.unwrap();
    assert_eq!(event.data["body"], "My order is late");
    assert_eq!(event.data["from"], "visitor");

    // Closing the conversation is announced.
    app.patch(
        &format!("/api/v1/tickets/{ticket_id}"),
        &agent,
        json!({"status": "closed"}),
    )
    .await;
    let event = events.next(Duration::from_secs(10)).await.unwrap();
    assert_eq!(event.name, "status");
    assert_eq!(event.data["status"], "closed");
    // Nothing else was sent: not the note, not the other conversation.
    assert!(events.next(Duration::from_millis(500)).await.is_none());
    drop(events);

    // While disconnected, the agent replies; reconnecting with
    // Last-Event-ID (as EventSource does) replays what was missed, first.
    post("note", "Internal: another note").await;
    let missed = post("reply", "Sorry, it ships tomorrow.").await;
    let mut events = Events::open(
        &app,
        &events_path,
        &[("last-event-id", &reply_id.to_string())],
    )
    .await;
    let mut replayed = Vec::new();
    while let Some(e) = events.next(Duration::from_millis(800)).await {
        replayed.push(e);
    }
    let bodies: Vec<&str> = replayed
        .iter()
        .map(|e| e.data["body"].as_str().unwrap())
        .collect();
    assert_eq!(bodies, ["My order is late", "Sorry, it ships tomorrow."]);
    assert_eq!(replayed[1].id, Some(missed.to_string()));
}

async fn a_known_visitor_is_routed_to_the_contact_owner() {
    let app = spawn_app().await;
    let (ana, _) = app.user("Ana", "agent", json!({})).await;
    let (_, key) = chat(
        &app,
        json!({}),
        json!({"assign_to": "contact_owner", "fallback": {"assign_to": "nobody"}}),
    )
    .await;
    let first = start(&app, &key, None, json!({"message": "Hi"})).await;
    assert_eq!(
        ticket(&app, &first["conversation_id"]).await["owner"]["user_id"],
        Value::Null,
        "an unknown visitor: the fallback (nobody)"
    );
    // The site tells Switchboard who the visitor is (the id before the dot,
    // as in the sb_visitor cookie the widget writes on the site).
    let token = first["visitor_token"].as_str().unwrap();
    let visitor_id = token.split('.').next().unwrap();
    let (status, cleo) = app
        .post(
            "/api/v1/contacts",
            &app.admin,
            json!({"email": "cleo@x.example", "owner_user_id": ana, "visitor_tokens": [visitor_id]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{cleo}");
    let second = start(&app, &key, Some(token), json!({"message": "Back again"})).await;
    assert_eq!(second["visitor_token"], token, "the same visitor");
    let t = ticket(&app, &second["conversation_id"]).await;
    assert_eq!(t["owner"]["user_id"], ana);
    assert_eq!(t["contact_id"], cleo["id"]);
}

async fn chat_requests_are_rate_limited_and_the_widget_is_served() {
    let app = spawn_app().await;
    let (_, key) = chat(
        &app,
        json!({"rate_limit": {"per_ip_per_minute": 2}}),
        Value::Null,
    )
    .await;
    let ip = [("x-forwarded-for", "203.0.113.5")];
    let path = format!("/chat/{key}/conversations");
    let body = json!({"message": "hi"});
    let (status, _, started) = visitor(
        &app,
        reqwest::Method::POST,
        &path,
        None,
        &ip,
        Some(body.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let token = started["visitor_token"].as_str().unwrap();
    let list = conversation_path(&key, &started, "messages");
    let (status, _, _) = visitor(&app, reqwest::Method::GET, &list, Some(token), &ip, None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, headers, problem) =
        visitor(&app, reqwest::Method::GET, &list, Some(token), &ip, None).await;
    assert_problem(&(status, problem), 429, None);
    let retry: u64 = headers[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=30).contains(&retry), "{retry}");
    // Another client is not affected.
    let (status, _, _) = visitor(
        &app,
        reqwest::Method::POST,
        &path,
        None,
        &[("x-forwarded-for", "203.0.113.6")],
        Some(body),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);

    let res = app
        .client
        .get(format!("{}/chat/widget.js", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    let js = res.text().await.unwrap();
    assert!(js.contains("EventSource") && js.contains("X-Visitor-Token"));
}

on_both_backends!(
    visitors_start_send_and_list_with_a_signed_token,
    forged_and_other_visitors_tokens_are_refused,
    agent_replies_reach_the_visitor_live_and_notes_do_not,
    a_known_visitor_is_routed_to_the_contact_owner,
    chat_requests_are_rate_limited_and_the_widget_is_served,
);
