//! WhatsApp (Cloud API) end to end over real HTTP: Meta's verification
//! request, signed notifications (text, interactive replies, media,
//! statuses), refused signatures storing nothing, redeliveries, the
//! conversation staying on one ticket, and agent replies reaching a fake
//! Graph API (URL, token, body), or refused outside the 24-hour window.

#[macro_use]
mod common;

use std::sync::{Arc, Mutex};

use axum::{
    Json, Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, Uri},
    routing::post,
};
use common::{
    TestApp, assert_problem, eventually, outbox_settled, spawn_app, spawn_app_with_clock,
};
use hmac::{Hmac, Mac};
use jiff::SignedDuration;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::Sha256;
use switchboard_domain::{AccountId, FixedClock, MessageId};

const APP_SECRET: &str = "app-secret-123";
const VERIFY_TOKEN: &str = "verify-me";
const ACCESS_TOKEN: &str = "EAAG-access-token";
const WA_ID: &str = "33612345678";

/// One request the fake Graph API received.
#[derive(Debug, Clone)]
struct Recorded {
    path: String,
    authorization: Option<String>,
    content_type: Option<String>,
    body: Value,
}

/// A local stand-in for `graph.facebook.com`: records what it is sent and
/// answers like the Cloud API does.
struct FakeGraph {
    base: String,
    requests: Arc<Mutex<Vec<Recorded>>>,
}

impl FakeGraph {
    async fn start() -> Self {
        let requests: Arc<Mutex<Vec<Recorded>>> = Arc::default();
        let app = Router::new()
            .route(
                "/{version}/{phone_number_id}/messages",
                post(graph_messages),
            )
            .with_state(requests.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { base, requests }
    }

    fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    /// Waits until `n` requests have arrived (the dispatcher sends replies
    /// after they are committed), and returns them.
    async fn wait_for(&self, n: usize) -> Vec<Recorded> {
        eventually("the Graph API requests", || async {
            let got = self.requests();
            (got.len() >= n).then_some(got)
        })
        .await
    }
}

async fn graph_messages(
    State(requests): State<Arc<Mutex<Vec<Recorded>>>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Json<Value> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let mut requests = requests.lock().unwrap();
    requests.push(Recorded {
        path: uri.path().to_owned(),
        authorization: header("authorization"),
        content_type: header("content-type"),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    });
    // A fresh wamid per message, as the Cloud API gives.
    let wamid = format!("wamid.OUT{}", requests.len());
    Json(json!({"messaging_product": "whatsapp",
        "contacts": [{"input": WA_ID, "wa_id": WA_ID}],
        "messages": [{"id": wamid}]}))
}

/// Creates a WhatsApp channel pointing at `graph` and returns its id and key.
async fn channel(app: &TestApp, graph: &str) -> (i64, String) {
    let (status, ch) = app
        .post(
            "/api/v1/channels",
            &app.admin,
            json!({"kind": "whatsapp", "name": "WhatsApp", "settings": {
                "phone_number_id": "PNID", "graph_base_url": graph,
                "secrets": {"app_secret": APP_SECRET, "verify_token": VERIFY_TOKEN,
                            "access_token": ACCESS_TOKEN}}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{ch}");
    // Secrets are never shown back.
    assert_eq!(ch["settings"]["secrets"]["app_secret"], "(set)");
    (
        ch["id"].as_i64().unwrap(),
        ch["key"].as_str().unwrap().to_owned(),
    )
}

/// `sha256=<hex>` of `body` keyed by `secret`, computed here rather than
/// with the code under test.
fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// A notification with one change of field `messages`.
fn notification(value: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({"object": "whatsapp_business_account", "entry": [
        {"id": "102290129340398", "changes": [{"field": "messages", "value": value}]}]}))
    .unwrap()
}

/// A notification carrying one message from Cleo.
fn message(id: &str, fields: Value) -> Vec<u8> {
    let mut m = json!({"from": WA_ID, "id": id, "timestamp": "1774605600"});
    m.as_object_mut()
        .unwrap()
        .extend(fields.as_object().unwrap().clone());
    notification(json!({
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": "PNID"},
        "contacts": [{"profile": {"name": "Cleo"}, "wa_id": WA_ID}],
        "messages": [m]
    }))
}

fn text(id: &str, body: &str) -> Vec<u8> {
    message(id, json!({"type": "text", "text": {"body": body}}))
}

/// Posts raw `body` with `signature` (if any) to the channel's webhook.
async fn post_raw(
    app: &TestApp,
    key: &str,
    body: Vec<u8>,
    signature: Option<String>,
) -> (StatusCode, Value) {
    let mut req = app
        .client
        .post(format!("{}/webhooks/whatsapp/{key}", app.base))
        .header("content-type", "application/json")
        .body(body);
    if let Some(s) = signature {
        req = req.header("x-hub-signature-256", s);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    let text = res.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Posts a correctly signed notification and expects the 200.
async fn deliver(app: &TestApp, key: &str, body: Vec<u8>) {
    let signature = sign(APP_SECRET, &body);
    let (status, answer) = post_raw(app, key, body, Some(signature)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
}

async fn tickets(app: &TestApp) -> Vec<Value> {
    let (status, page) = app.get("/api/v1/tickets", &app.admin).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["items"].as_array().unwrap().clone()
}

async fn messages(app: &TestApp, ticket: &Value) -> Vec<Value> {
    let (status, page) = app
        .get(
            &format!("/api/v1/tickets/{}/messages", ticket["id"]),
            &app.admin,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["items"].as_array().unwrap().clone()
}

async fn verification_get_echoes_the_challenge_for_the_right_token() {
    let app = spawn_app().await;
    let (_, key) = channel(&app, "http://127.0.0.1:9").await;
    let url = |mode: &str, token: &str| {
        format!(
            "{}/webhooks/whatsapp/{key}?hub.mode={mode}&hub.verify_token={token}&hub.challenge=1158201444",
            app.base
        )
    };
    let res = app
        .client
        .get(url("subscribe", VERIFY_TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    assert_eq!(res.text().await.unwrap(), "1158201444");
    for (mode, token) in [
        ("subscribe", "wrong"),
        ("unsubscribe", VERIFY_TOKEN),
        ("subscribe", ""),
    ] {
        let res = app.client.get(url(mode, token)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{mode} {token}");
    }
    let res = app
        .client
        .get(format!(
            "{}/webhooks/whatsapp/nope?hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=1",
            app.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

async fn bad_signatures_are_refused_and_store_nothing() {
    let app = spawn_app().await;
    let (_, key) = channel(&app, "http://127.0.0.1:9").await;
    let body = text("wamid.SIG", "Hello");
    // Signed with another secret.
    let got = post_raw(
        &app,
        &key,
        body.clone(),
        Some(sign("not-the-secret", &body)),
    )
    .await;
    assert_problem(&got, 401, None);
    // No signature at all.
    assert_problem(&post_raw(&app, &key, body.clone(), None).await, 401, None);
    // Signed, then changed by one byte (the signature covers the raw bytes).
    let signature = sign(APP_SECRET, &body);
    let mut changed = body.clone();
    changed.push(b'\n');
    assert_problem(
        &post_raw(&app, &key, changed, Some(signature)).await,
        401,
        None,
    );
    // Not hexadecimal.
    let got = post_raw(&app, &key, body.clone(), Some("sha256=xyz".into())).await;
    assert_problem(&got, 401, None);
    assert!(tickets(&app).await.is_empty());
    // A key that is no WhatsApp channel.
    let got = post_raw(&app, "nope", body.clone(), Some(sign(APP_SECRET, &body))).await;
    assert_problem(&got, 404, None);
    // A valid signature over a body that is no notification is a 422.
    let junk = br#"{"object":"page","entry":[]}"#.to_vec();
    let got = post_raw(&app, &key, junk.clone(), Some(sign(APP_SECRET, &junk))).await;
    assert_problem(&got, 422, Some("object"));
    assert!(tickets(&app).await.is_empty());
}

async fn a_text_message_opens_a_message_ticket_once() {
    let app = spawn_app().await;
    let (channel_id, key) = channel(&app, "http://127.0.0.1:9").await;
    let body = text(
        "wamid.HBgLMzM2MTIzNDU2NzgVAgASGBQzQTdB",
        "My order never arrived\nOrder 1234",
    );
    deliver(&app, &key, body.clone()).await;
    // Meta redelivers: same wamid, nothing new.
    deliver(&app, &key, body).await;
    let all = tickets(&app).await;
    assert_eq!(all.len(), 1, "{all:?}");
    let t = &all[0];
    assert_eq!(t["type"], "message");
    assert_eq!(t["source"], "whatsapp");
    assert_eq!(t["channel_id"], channel_id);
    assert_eq!(t["subject"], "My order never arrived");
    assert_eq!(t["properties"]["whatsapp_wa_id"], WA_ID);
    let msgs = messages(&app, t).await;
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    assert_eq!(msgs[0]["kind"], "inbound");
    assert_eq!(msgs[0]["body"], "My order never arrived\nOrder 1234");
    assert_eq!(
        msgs[0]["external_id"],
        "wamid.HBgLMzM2MTIzNDU2NzgVAgASGBQzQTdB"
    );
    let (status, contact) = app
        .get(&format!("/api/v1/contacts/{}", t["contact_id"]), &app.admin)
        .await;
    assert_eq!(status, StatusCode::OK, "{contact}");
    assert_eq!(contact["phone"], "+33612345678");
    assert_eq!(contact["name"], "Cleo");

    // The next message of the conversation joins the open ticket.
    deliver(&app, &key, text("wamid.SECOND", "Any news?")).await;
    let all = tickets(&app).await;
    assert_eq!(all.len(), 1, "{all:?}");
    let bodies: Vec<Value> = messages(&app, &all[0])
        .await
        .iter()
        .map(|m| m["body"].clone())
        .collect();
    assert_eq!(
        bodies,
        [
            json!("My order never arrived\nOrder 1234"),
            json!("Any news?")
        ]
    );

    // Once it is closed, the customer's next message opens a new ticket.
    let (status, body) = app
        .patch(
            &format!("/api/v1/tickets/{}", all[0]["id"]),
            &app.admin,
            json!({"status": "closed"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    deliver(&app, &key, text("wamid.THIRD", "Another question")).await;
    assert_eq!(tickets(&app).await.len(), 2);
}

async fn interactive_replies_media_and_locations_are_stored() {
    let app = spawn_app().await;
    let (_, key) = channel(&app, "http://127.0.0.1:9").await;
    // Several messages of one conversation in one notification.
    let body = notification(json!({
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": "PNID"},
        "contacts": [{"profile": {"name": "Cleo"}, "wa_id": WA_ID}],
        "messages": [
            {"from": WA_ID, "id": "wamid.BTN", "timestamp": "1774605600", "type": "interactive",
             "context": {"from": "15550783881", "id": "wamid.MENU"},
             "interactive": {"type": "button_reply", "button_reply": {"id": "refund-yes", "title": "Yes, refund me"}}},
            {"from": WA_ID, "id": "wamid.IMG", "timestamp": "1774605601", "type": "image",
             "image": {"caption": "The damaged box", "mime_type": "image/jpeg",
                       "sha256": "kcHasVHXBPU/vKvP2jCYn+X3oEUA2RMcb3qNp6LxhTk=", "id": "1234567890123456"}},
            {"from": WA_ID, "id": "wamid.LIST", "timestamp": "1774605602", "type": "interactive",
             "interactive": {"type": "list_reply", "list_reply": {"id": "slot-2", "title": "Tuesday 10:00", "description": "Morning"}}},
            {"from": WA_ID, "id": "wamid.LOC", "timestamp": "1774605603", "type": "location",
             "location": {"latitude": 48.8584, "longitude": 2.2945, "name": "Eiffel Tower"}},
            {"from": WA_ID, "id": "wamid.STK", "timestamp": "1774605604", "type": "system",
             "system": {"body": "changed number"}}
        ]
    }));
    deliver(&app, &key, body).await;
    let all = tickets(&app).await;
    assert_eq!(all.len(), 1, "{all:?}");
    // The first message names the ticket and its button id is kept.
    assert_eq!(all[0]["properties"]["whatsapp_reply_id"], "refund-yes");
    assert_eq!(all[0]["subject"], "WhatsApp from Cleo (+33612345678)");
    let msgs = messages(&app, &all[0]).await;
    let bodies: Vec<&str> = msgs.iter().map(|m| m["body"].as_str().unwrap()).collect();
    assert_eq!(
        bodies,
        [
            "Yes, refund me",
            "The damaged box",
            "Tuesday 10:00",
            "Location: Eiffel Tower (48.8584, 2.2945)",
            "[WhatsApp message of type system, not shown here]"
        ]
    );
    let image = MessageId(msgs[1]["id"].as_i64().unwrap());
    let files = app.store.attachments(AccountId(1), image).await.unwrap();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(files[0].provider_ref.as_deref(), Some("1234567890123456"));
    assert_eq!(files[0].content_type, "image/jpeg");
    let text_only = MessageId(msgs[0]["id"].as_i64().unwrap());
    assert!(
        app.store
            .attachments(AccountId(1), text_only)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn statuses_store_nothing_but_a_failure_leaves_a_note() {
    let app = spawn_app().await;
    let (_, key) = channel(&app, "http://127.0.0.1:9").await;
    let status = |id: &str, status: &str, errors: Value| {
        notification(json!({"messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": "PNID"},
            "statuses": [{"id": id, "status": status, "timestamp": "1774605700",
                          "recipient_id": WA_ID, "errors": errors}]}))
    };
    // Statuses for a conversation we do not have: counted, nothing stored.
    for s in ["sent", "delivered", "read", "failed"] {
        deliver(&app, &key, status("wamid.OUT", s, json!([]))).await;
    }
    assert!(tickets(&app).await.is_empty());

    deliver(&app, &key, text("wamid.IN", "Hello?")).await;
    let t = tickets(&app).await.remove(0);
    let failed = status(
        "wamid.OUT2",
        "failed",
        json!([{"code": 131047, "title": "Re-engagement message",
                "message": "Re-engagement message",
                "error_data": {"details": "Message failed to send because more than 24 hours have passed"}}]),
    );
    deliver(&app, &key, failed.clone()).await;
    // Redelivered: still one note.
    deliver(&app, &key, failed).await;
    deliver(&app, &key, status("wamid.OUT3", "delivered", json!([]))).await;
    let msgs = messages(&app, &t).await;
    assert_eq!(msgs.len(), 2, "{msgs:?}");
    assert_eq!(msgs[1]["kind"], "note");
    assert_eq!(
        msgs[1]["body"],
        "WhatsApp could not deliver message wamid.OUT2: 131047: Re-engagement message: \
         Message failed to send because more than 24 hours have passed"
    );
}

async fn an_agent_reply_reaches_the_graph_api() {
    let graph = FakeGraph::start().await;
    let app = spawn_app().await;
    let (_, key) = channel(&app, &graph.base).await;
    deliver(&app, &key, text("wamid.FIRST", "Hi")).await;
    deliver(&app, &key, text("wamid.LAST", "Is anyone there?")).await;
    let t = tickets(&app).await.remove(0);
    let (status, added) = app
        .post(
            &format!("/api/v1/tickets/{}/messages", t["id"]),
            &app.admin,
            json!({"kind": "reply", "body": "Yes! Looking into it now."}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{added}");
    let sent = graph.wait_for(1).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].path, "/v21.0/PNID/messages");
    assert_eq!(
        sent[0].authorization.as_deref(),
        Some(format!("Bearer {ACCESS_TOKEN}").as_str())
    );
    assert!(
        sent[0]
            .content_type
            .as_deref()
            .is_some_and(|c| c.starts_with("application/json"))
    );
    assert_eq!(
        sent[0].body,
        json!({"messaging_product": "whatsapp", "recipient_type": "individual",
            "to": WA_ID, "type": "text", "text": {"body": "Yes! Looking into it now."},
            "context": {"message_id": "wamid.LAST"}})
    );
    // A note is internal: nothing is sent.
    let (status, _) = app
        .post(
            &format!("/api/v1/tickets/{}/messages", t["id"]),
            &app.admin,
            json!({"kind": "note", "body": "Checked the carrier."}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let account = app.store.first_account().await.unwrap().unwrap().id;
    outbox_settled(app.store.as_ref(), account).await;
    assert_eq!(graph.requests().len(), 1);
    // The reply carries the wamid the Graph API gave it, so statuses find it.
    let reply = messages(&app, &t)
        .await
        .into_iter()
        .find(|m| m["kind"] == "reply")
        .unwrap();
    assert_eq!(reply["external_id"], "wamid.OUT1");
}

async fn replies_outside_the_24_hour_window_are_not_sent() {
    let graph = FakeGraph::start().await;
    let clock = Arc::new(FixedClock::new("2026-03-27T10:00:00Z".parse().unwrap()));
    let app = spawn_app_with_clock(clock.clone()).await;
    let (_, key) = channel(&app, &graph.base).await;
    deliver(&app, &key, text("wamid.OLD", "Hello")).await;
    let t = tickets(&app).await.remove(0);
    let path = format!("/api/v1/tickets/{}/messages", t["id"]);
    let reply =
        |body: &'static str| app.post(&path, &app.admin, json!({"kind": "reply", "body": body}));
    let account = app.store.first_account().await.unwrap().unwrap().id;
    clock.advance(SignedDuration::from_hours(23));
    assert_eq!(reply("Within the window").await.0, StatusCode::CREATED);
    graph.wait_for(1).await;
    clock.advance(SignedDuration::from_hours(2));
    // Stored for the agent, but not sent: WhatsApp requires a template now.
    let (status, added) = reply("Too late").await;
    assert_eq!(status, StatusCode::CREATED, "{added}");
    assert_eq!(added["message"]["body"], "Too late");
    outbox_settled(app.store.as_ref(), account).await;
    assert_eq!(graph.requests().len(), 1, "{:?}", graph.requests());
    // The refusal is permanent: the row failed at once, with the reason.
    let (_, failed) = app.get("/api/v1/outbox?state=failed", &app.admin).await;
    assert_eq!(failed["items"].as_array().unwrap().len(), 1, "{failed}");
    assert!(
        failed["items"][0]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("template")),
        "{failed}"
    );
    // The customer writes again: the window reopens.
    deliver(&app, &key, text("wamid.NEW", "Still waiting")).await;
    assert_eq!(reply("Sorry for the wait").await.0, StatusCode::CREATED);
    let sent = graph.wait_for(2).await;
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[1].body["context"]["message_id"], "wamid.NEW");
    assert_eq!(sent[1].body["text"]["body"], "Sorry for the wait");
}

on_both_backends!(
    verification_get_echoes_the_challenge_for_the_right_token,
    bad_signatures_are_refused_and_store_nothing,
    a_text_message_opens_a_message_ticket_once,
    interactive_replies_media_and_locations_are_stored,
    statuses_store_nothing_but_a_failure_leaves_a_note,
    an_agent_reply_reaches_the_graph_api,
    replies_outside_the_24_hour_window_are_not_sent,
);
