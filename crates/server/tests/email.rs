//! The team e-mail channel end to end, on both backends: real SMTP to the
//! listener over a socket (lettre's client and a hand-written one), the raw
//! MIME route over HTTP, and agent replies delivered through a local SMTP
//! sink that records what it receives.

#[macro_use]
mod common;

use std::net::SocketAddr;

use common::{
    TestApp, assert_problem, eventually, outbox_settled,
    sink::{self, Delivery, Received},
    spawn_app,
};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor, address::Envelope};
use reqwest::StatusCode;
use serde_json::{Value, json};
use switchboard_domain::{AccountId, Actor, MessageKind, TicketId};
use switchboard_server::{AppState, outbound, smtp};
use switchboard_store::NewMessage;
use switchboard_store::OutboxState;
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::{
        TcpListener, TcpStream,
        tcp::{OwnedReadHalf, OwnedWriteHalf},
    },
};

const ADDRESS: &str = "support@acme.example";
const CLEO: &str = "cleo@customer.example";
/// The listener's size limit in these tests (small, to test `552`).
const MAX_BYTES: usize = 64 * 1024;

/// The app, its SMTP listener, and the e-mail channel.
struct Desk {
    app: TestApp,
    smtp: SocketAddr,
    account: AccountId,
    channel: i64,
}

/// Starts the app and an SMTP listener on the same store, and creates the
/// e-mail channel (with a relay to `relay`, when given).
async fn desk(relay: Option<SocketAddr>) -> Desk {
    let app = spawn_app().await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let smtp = listener.local_addr().unwrap();
    let config = smtp::SmtpConfig {
        max_message_bytes: MAX_BYTES,
        ..Default::default()
    };
    tokio::spawn(smtp::serve_with(
        listener,
        AppState::new(app.store.clone()),
        config,
        std::future::pending(),
    ));
    let mut settings = json!({});
    if let Some(relay) = relay {
        settings["smtp_relay"] = json!({"host": "127.0.0.1", "port": relay.port(), "tls": "none"});
        settings["secrets"] = json!({"smtp_username": "relay-user", "smtp_password": "relay-pass"});
    }
    let channel = email_channel(&app, &app.admin, ADDRESS, settings).await;
    let account = app.store.first_account().await.unwrap().unwrap().id;
    Desk {
        app,
        smtp,
        account,
        channel,
    }
}

/// Creates an e-mail channel for `address` (with more `settings`).
async fn email_channel(app: &TestApp, token: &str, address: &str, mut settings: Value) -> i64 {
    settings["address"] = json!(address);
    let body = json!({"kind": "email", "name": address, "settings": settings});
    let (status, channel) = app.post("/api/v1/channels", token, body).await;
    assert_eq!(status, StatusCode::CREATED, "{channel}");
    channel["id"].as_i64().unwrap()
}

/// A message with `headers` (From defaults to Cleo) and `body`.
fn mail(headers: &[(&str, &str)], body: &str) -> String {
    let mut out = String::new();
    if !headers.iter().any(|(h, _)| *h == "From") {
        out.push_str("From: Cleo Martin <cleo@customer.example>\r\n");
    }
    out.push_str(&format!("To: {ADDRESS}\r\n"));
    for (h, v) in headers {
        out.push_str(&format!("{h}: {v}\r\n"));
    }
    out.push_str("\r\n");
    out.push_str(body);
    out.push_str("\r\n");
    out
}

/// A message with just a subject and a Message-ID.
fn simple(subject: &str, message_id: &str, body: &str) -> String {
    mail(&[("Subject", subject), ("Message-ID", message_id)], body)
}

/// Sends with lettre's SMTP client, as any mail server would.
async fn send_lettre(desk: &Desk, to: &str, raw: &str) {
    let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(desk.smtp.port())
        .build();
    let envelope = Envelope::new(
        Some("cleo@customer.example".parse().unwrap()),
        vec![to.parse().unwrap()],
    )
    .unwrap();
    let response = transport.send_raw(&envelope, raw.as_bytes()).await.unwrap();
    assert!(response.is_positive(), "{response:?}");
}

/// A hand-written SMTP client: one command, one reply.
struct Client {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
}

impl Client {
    async fn connect(addr: SocketAddr) -> Self {
        let (r, w) = TcpStream::connect(addr).await.unwrap().into_split();
        let mut client = Self {
            reader: BufReader::new(r),
            writer: w,
        };
        assert_eq!(client.reply().await.0, 220);
        client
    }

    /// A reply, its lines joined.
    async fn reply(&mut self) -> (u16, String) {
        let mut text = String::new();
        loop {
            let mut line = String::new();
            assert!(
                self.reader.read_line(&mut line).await.unwrap() > 0,
                "closed"
            );
            text.push_str(&line);
            if line.as_bytes().get(3) != Some(&b'-') {
                return (line[..3].parse().unwrap(), text);
            }
        }
    }

    async fn cmd(&mut self, line: &str) -> (u16, String) {
        self.writer
            .write_all(format!("{line}\r\n").as_bytes())
            .await
            .unwrap();
        self.reply().await
    }

    /// DATA with `raw`, dot-stuffed; the reply to the final dot.
    async fn data(&mut self, raw: &str) -> (u16, String) {
        assert_eq!(self.cmd("DATA").await.0, 354);
        let mut out = String::new();
        for line in raw.split_inclusive("\r\n") {
            if line.starts_with('.') {
                out.push('.');
            }
            out.push_str(line);
        }
        if !out.ends_with("\r\n") {
            out.push_str("\r\n");
        }
        out.push_str(".\r\n");
        self.writer.write_all(out.as_bytes()).await.unwrap();
        self.reply().await
    }
}

/// One whole transaction with the hand-written client; the final reply.
async fn send_raw(desk: &Desk, sender: &str, to: &[&str], raw: &str) -> (u16, String) {
    let mut c = Client::connect(desk.smtp).await;
    assert_eq!(c.cmd("EHLO client.example").await.0, 250);
    assert_eq!(c.cmd(&format!("MAIL FROM:<{sender}>")).await.0, 250);
    for rcpt in to {
        let (code, text) = c.cmd(&format!("RCPT TO:<{rcpt}>")).await;
        assert_eq!(code, 250, "{text}");
    }
    let result = c.data(raw).await;
    assert_eq!(c.cmd("QUIT").await.0, 221);
    result
}

impl Desk {
    /// The ticket holding the message with this Message-ID.
    async fn ticket_of(&self, message_id: &str) -> Option<TicketId> {
        self.app
            .store
            .find_by_external_id(self.account, vec![message_id.to_owned()])
            .await
            .unwrap()
            .map(|(t, _)| t)
    }

    async fn ticket(&self, id: TicketId) -> Value {
        let (status, t) = self
            .app
            .get(&format!("/api/v1/tickets/{id}"), &self.app.admin)
            .await;
        assert_eq!(status, StatusCode::OK, "{t}");
        t
    }

    async fn messages(&self, id: TicketId) -> Vec<Value> {
        let (status, m) = self
            .app
            .get(&format!("/api/v1/tickets/{id}/messages"), &self.app.admin)
            .await;
        assert_eq!(status, StatusCode::OK, "{m}");
        m["items"]
            .as_array()
            .or(m.as_array())
            .cloned()
            .unwrap_or_else(|| panic!("messages: {m}"))
    }

    /// An agent's reply or note on `ticket`; the response body.
    async fn write(&self, token: &str, ticket: TicketId, kind: &str, body: &str) -> Value {
        let path = format!("/api/v1/tickets/{ticket}/messages");
        let (status, added) = self
            .app
            .post(&path, token, json!({"kind": kind, "body": body}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{added}");
        added
    }

    async fn ticket_count(&self) -> usize {
        let (_, page) = self.app.get("/api/v1/tickets", &self.app.admin).await;
        page["items"].as_array().unwrap().len()
    }

    /// Posts a raw message to a channel's inbound route.
    async fn post_raw(&self, token: &str, content_type: &str, raw: &str) -> (StatusCode, Value) {
        self.post_raw_to(self.channel, Some(token), content_type, raw)
            .await
    }

    async fn post_raw_to(
        &self,
        channel: i64,
        token: Option<&str>,
        content_type: &str,
        raw: &str,
    ) -> (StatusCode, Value) {
        let url = format!("{}/api/v1/channels/{channel}/inbound/email", self.app.base);
        let mut req = self
            .app
            .client
            .post(url)
            .header("Content-Type", content_type);
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        let res = req.body(raw.to_owned()).send().await.unwrap();
        let status = res.status();
        let text = res.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, body)
    }
}

async fn threads_by_header_subject_token_and_plus_address() {
    let desk = desk(None).await;
    let first = simple(
        "Charged twice",
        "<a1@customer.example>",
        "My invoice was charged twice.",
    );
    send_lettre(&desk, ADDRESS, &first).await;
    let t1 = desk
        .ticket_of("<a1@customer.example>")
        .await
        .expect("a ticket");
    let ticket = desk.ticket(t1).await;
    assert_eq!(ticket["subject"], "Charged twice");
    assert_eq!(ticket["content"], "My invoice was charged twice.");
    assert_eq!(ticket["channel_id"], desk.channel);
    assert_eq!(ticket["type"], "email_other");
    assert!(ticket["properties"].get("automated").is_none(), "{ticket}");
    let (_, contact) = desk
        .app
        .get(
            &format!("/api/v1/contacts/{}", ticket["contact_id"]),
            &desk.app.admin,
        )
        .await;
    assert_eq!(contact["email"], "cleo@customer.example");
    assert_eq!(contact["name"], "Cleo Martin");

    // In-Reply-To, under a new subject.
    let by_in_reply_to = mail(
        &[
            ("Subject", "Something else"),
            ("Message-ID", "<a2@customer.example>"),
            ("In-Reply-To", "<a1@customer.example>"),
        ],
        "second",
    );
    // References only, the match not the newest.
    let by_references = mail(
        &[
            ("Subject", "Third"),
            ("Message-ID", "<a3@customer.example>"),
            (
                "References",
                "<a1@customer.example> <unknown@elsewhere.example>",
            ),
        ],
        "third",
    );
    let by_token = simple(
        &format!("Any news? [#{t1}]"),
        "<a4@customer.example>",
        "fourth",
    );
    for raw in [&by_in_reply_to, &by_references, &by_token] {
        let (code, text) = send_raw(&desk, CLEO, &[ADDRESS], raw).await;
        assert_eq!(code, 250, "{text}");
    }
    // Plus-addressing, in the envelope only.
    let plus = format!("support+{t1}@acme.example");
    let by_plus = simple("Hello again", "<a5@customer.example>", "fifth");
    send_lettre(&desk, &plus, &by_plus).await;
    // A token naming no ticket gives way to the plus address.
    let bad_token = simple("Old ticket [#9999]", "<a6@customer.example>", "sixth");
    let (code, _) = send_raw(&desk, CLEO, &[&plus], &bad_token).await;
    assert_eq!(code, 250);

    let bodies: Vec<Value> = desk
        .messages(t1)
        .await
        .iter()
        .map(|m| m["body"].clone())
        .collect();
    assert_eq!(
        bodies,
        [
            "My invoice was charged twice.",
            "second",
            "third",
            "fourth",
            "fifth",
            "sixth"
        ]
    );
    // Nothing matches: a new ticket.
    let fresh = simple("New question", "<b1@customer.example>", "Unrelated.");
    send_lettre(&desk, ADDRESS, &fresh).await;
    let t2 = desk.ticket_of("<b1@customer.example>").await.unwrap();
    assert_ne!(t1, t2);
    assert_eq!(desk.ticket_count().await, 2);
}

async fn a_duplicate_message_id_makes_one_message() {
    let desk = desk(None).await;
    let raw = simple(
        "Twice",
        "<dup@customer.example>",
        "Delivered twice by a retrying server.",
    );
    for _ in 0..2 {
        let (code, text) = send_raw(&desk, CLEO, &[ADDRESS], &raw).await;
        assert_eq!(code, 250, "{text}");
    }
    let (status, body) = desk.post_raw(&desk.app.admin, "message/rfc822", &raw).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["duplicate"], true);
    assert_eq!(body["message"], Value::Null);
    let ticket = desk.ticket_of("<dup@customer.example>").await.unwrap();
    assert_eq!(body["ticket"]["id"], ticket.0);
    assert_eq!(desk.messages(ticket).await.len(), 1);
    assert_eq!(desk.ticket_count().await, 1);
}

/// A local SMTP sink that accepts everything and records it.
async fn sink() -> (SocketAddr, Received) {
    sink::start("127.0.0.1:0".parse().unwrap()).await
}

/// Waits for the dispatcher to hand the sink a message, and takes it.
async fn next_delivery(sent: &Received) -> Delivery {
    eventually("a delivery at the relay", || async {
        sent.lock().unwrap().pop()
    })
    .await
}

fn parsed(data: &str) -> mail_parser::Message<'_> {
    mail_parser::MessageParser::default()
        .parse(data.as_bytes())
        .unwrap()
}

fn address(a: Option<&mail_parser::Address<'_>>) -> Option<String> {
    a?.first()?.address.as_deref().map(str::to_owned)
}

fn ids(value: &mail_parser::HeaderValue<'_>) -> Vec<String> {
    match value {
        mail_parser::HeaderValue::Text(t) => vec![format!("<{t}>")],
        mail_parser::HeaderValue::TextList(l) => l.iter().map(|t| format!("<{t}>")).collect(),
        other => panic!("not ids: {other:?}"),
    }
}

async fn agent_replies_go_out_threaded_and_the_answer_comes_back() {
    let (relay, sent) = sink().await;
    let desk = desk(Some(relay)).await;
    let (_, agent) = desk.app.user("Ana", "agent", json!({})).await;
    let first = simple(
        "Charged twice",
        "<c1@customer.example>",
        "My invoice was charged twice.",
    );
    send_lettre(&desk, ADDRESS, &first).await;
    let t1 = desk.ticket_of("<c1@customer.example>").await.unwrap();

    let body = desk
        .write(
            &agent,
            t1,
            "reply",
            "Sorry about that, the refund is on its way.",
        )
        .await;
    let reply_id = body["message"]["external_id"].as_str().unwrap().to_owned();
    assert!(
        reply_id.starts_with("<sb.") && reply_id.ends_with("@acme.example>"),
        "{reply_id}"
    );

    // The dispatcher sends it after the commit.
    let delivery = next_delivery(&sent).await;
    assert_eq!(delivery.from, ADDRESS);
    assert_eq!(delivery.to, ["cleo@customer.example"]);
    assert_eq!(delivery.auth.as_deref(), Some("\0relay-user\0relay-pass"));
    let out = parsed(&delivery.data);
    assert_eq!(
        out.message_id().map(|id| format!("<{id}>")),
        Some(reply_id.clone())
    );
    assert_eq!(ids(out.in_reply_to()), ["<c1@customer.example>"]);
    assert_eq!(ids(out.references()), ["<c1@customer.example>"]);
    assert_eq!(
        out.subject(),
        Some(format!("Re: Charged twice [#{t1}]").as_str())
    );
    assert_eq!(address(out.from()).as_deref(), Some(ADDRESS));
    assert_eq!(address(out.to()).as_deref(), Some(CLEO));
    assert!(
        out.header_raw("Auto-Submitted").is_none(),
        "{}",
        delivery.data
    );
    assert_eq!(
        out.body_text(0).as_deref().map(str::trim),
        Some("Sorry about that, the refund is on its way.")
    );

    // The customer's client answers the reply: headers as it writes them,
    // under a subject it shortened (the headers thread it).
    let answer = mail(
        &[
            ("Subject", "Re: Charged twice"),
            ("Message-ID", "<c2@customer.example>"),
            ("In-Reply-To", &reply_id),
            ("References", &format!("<c1@customer.example> {reply_id}")),
        ],
        "Thanks! When will it arrive?",
    );
    send_lettre(&desk, ADDRESS, &answer).await;
    assert_eq!(desk.ticket_of("<c2@customer.example>").await, Some(t1));
    assert_eq!(desk.ticket_count().await, 1);

    // The next reply answers the newest message and carries the chain.
    desk.write(&agent, t1, "reply", "Within three days.").await;
    let delivery = next_delivery(&sent).await;
    let out = parsed(&delivery.data);
    assert_eq!(ids(out.in_reply_to()), ["<c2@customer.example>"]);
    assert_eq!(
        ids(out.references()),
        [
            "<c1@customer.example>".to_owned(),
            reply_id,
            "<c2@customer.example>".to_owned()
        ]
    );
    // A note stays inside.
    desk.write(&agent, t1, "note", "Refund ticket FIN-12.")
        .await;
    outbox_settled(desk.app.store.as_ref(), desk.account).await;
    assert!(sent.lock().unwrap().is_empty());
    let done = desk
        .app
        .store
        .list_outbox(desk.account, Some(OutboxState::Done), 10)
        .await
        .unwrap();
    assert_eq!(done.len(), 2, "one row per reply, none for the note");
}

async fn automated_mail_is_flagged_and_never_answered_automatically() {
    let (relay, sent) = sink().await;
    let desk = desk(Some(relay)).await;
    let auto_reply = mail(
        &[
            ("Subject", "Out of office"),
            ("Message-ID", "<ooo@customer.example>"),
            ("Auto-Submitted", "auto-replied"),
        ],
        "I am away until Monday.",
    );
    send_lettre(&desk, ADDRESS, &auto_reply).await;
    let bounce = simple(
        "Delivery Status Notification",
        "<dsn@mx.customer.example>",
        "Your message could not be delivered.",
    );
    // The null reverse-path of a bounce.
    let (code, text) = send_raw(&desk, "", &[ADDRESS], &bounce).await;
    assert_eq!(code, 250, "{text}");
    let person = simple("A real question", "<q@customer.example>", "Can you help?");
    send_lettre(&desk, ADDRESS, &person).await;

    let auto = desk.ticket_of("<ooo@customer.example>").await.unwrap();
    let dsn = desk.ticket_of("<dsn@mx.customer.example>").await.unwrap();
    let human = desk.ticket_of("<q@customer.example>").await.unwrap();
    let props = |t: Value| t["properties"].clone();
    assert_eq!(
        props(desk.ticket(auto).await),
        json!({"automated": true, "automated_reason": "Auto-Submitted: auto-replied"})
    );
    assert_eq!(
        props(desk.ticket(dsn).await),
        json!({"automated": true, "automated_reason": "empty return path (<>)"})
    );
    assert_eq!(props(desk.ticket(human).await), json!({}));

    // An automatic reply (written by Switchboard, not a user) to each; the
    // store queues their delivery and the dispatcher sends them.
    let channel = desk
        .app
        .store
        .get_channel(desk.account, switchboard_domain::ChannelId(desk.channel))
        .await
        .unwrap();
    for ticket in [auto, dsn, human] {
        let id = outbound::external_id_for_reply(
            &channel,
            &desk
                .app
                .store
                .get_ticket(desk.account, ticket)
                .await
                .unwrap(),
        );
        desk.app
            .store
            .add_message(
                desk.account,
                ticket,
                NewMessage {
                    kind: MessageKind::Reply,
                    author: Actor::System,
                    body: "We received your message.".into(),
                    external_id: id,
                },
            )
            .await
            .unwrap();
    }
    outbox_settled(desk.app.store.as_ref(), desk.account).await;
    let failed = desk
        .app
        .store
        .list_outbox(desk.account, Some(OutboxState::Failed), 10)
        .await
        .unwrap();
    assert_eq!(failed.len(), 2, "{failed:?}");
    assert!(
        failed.iter().all(|f| f
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("no automatic e-mail to an automated sender"))),
        "{failed:?}"
    );
    let deliveries = sent.lock().unwrap().clone();
    assert_eq!(
        deliveries.len(),
        1,
        "only the person gets an automatic answer"
    );
    let out = parsed(&deliveries[0].data);
    assert_eq!(ids(out.in_reply_to()), ["<q@customer.example>"]);
    assert_eq!(
        out.header_raw("Auto-Submitted").map(str::trim),
        Some("auto-replied")
    );
}

async fn a_malformed_message_is_refused_and_nothing_is_written() {
    let desk = desk(None).await;
    let no_sender = "To: support@acme.example\r\nSubject: Who am I\r\nMessage-ID: <anon@x.example>\r\n\r\nNo From header.\r\n";
    let (code, text) = send_raw(&desk, "someone@x.example", &[ADDRESS], no_sender).await;
    assert_eq!(code, 550, "{text}");
    assert!(text.contains("5.6.0") && text.contains("from"), "{text}");
    let bad_sender = mail(
        &[
            ("From", "not an address"),
            ("Message-ID", "<bad@x.example>"),
        ],
        "Broken From.",
    );
    let (code, text) = send_raw(&desk, "someone@x.example", &[ADDRESS], &bad_sender).await;
    assert_eq!(code, 550, "{text}");

    let got = desk
        .post_raw(&desk.app.admin, "message/rfc822", no_sender)
        .await;
    assert_problem(&got, 422, Some("from"));
    let got = desk.post_raw(&desk.app.admin, "text/plain", "").await;
    assert_problem(&got, 422, Some("message"));
    let got = desk
        .post_raw(&desk.app.admin, "application/json", "{}")
        .await;
    assert_problem(&got, 415, Some("Content-Type"));

    assert_eq!(desk.ticket_count().await, 0);
    assert_eq!(desk.ticket_of("<anon@x.example>").await, None);
    assert_eq!(desk.ticket_of("<bad@x.example>").await, None);
    let (_, contacts) = desk.app.get("/api/v1/contacts", &desk.app.admin).await;
    assert_eq!(contacts["items"], json!([]), "{contacts}");
}

async fn raw_mime_over_http_stores_attachments() {
    let desk = desk(None).await;
    let (_, agent) = desk.app.user("Ana", "agent", json!({})).await;
    let raw = "From: Cleo Martin <cleo@customer.example>\r\nTo: support@acme.example\r\n\
        Subject: Invoice attached\r\nMessage-ID: <att@customer.example>\r\nMIME-Version: 1.0\r\n\
        Content-Type: multipart/mixed; boundary=\"xyz\"\r\n\r\n\
        --xyz\r\nContent-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n\
        --alt\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nThe invoice is attached.\r\n\
        --alt\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>The invoice is <b>attached</b>.</p>\r\n\
        --alt--\r\n\
        --xyz\r\nContent-Type: application/pdf; name=\"invoice.pdf\"\r\n\
        Content-Disposition: attachment; filename=\"invoice.pdf\"\r\n\
        Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQKJcOkw7zDtsOfCg==\r\n--xyz--\r\n";
    let (status, body) = desk.post_raw(&agent, "message/rfc822", raw).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["created"], true);
    assert_eq!(body["ticket"]["subject"], "Invoice attached");
    assert_eq!(body["message"]["body"], "The invoice is attached.");
    assert_eq!(body["message"]["external_id"], "<att@customer.example>");
    let message = switchboard_domain::MessageId(body["message"]["id"].as_i64().unwrap());
    let files = desk
        .app
        .store
        .attachments(desk.account, message)
        .await
        .unwrap();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(files[0].filename.as_deref(), Some("invoice.pdf"));
    assert_eq!(files[0].content_type, "application/pdf");
    assert_eq!(files[0].size, 19);

    // Plus-addressing in the headers joins the ticket (no envelope here).
    let ticket = body["ticket"]["id"].as_i64().unwrap();
    let follow_up = format!(
        "From: cleo@customer.example\r\nTo: support+{ticket}@acme.example\r\nSubject: One more\r\n\
         Message-ID: <att2@customer.example>\r\n\r\nAnd another thing.\r\n"
    );
    let (status, body) = desk
        .post_raw(&agent, "text/plain; charset=utf-8", &follow_up)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["ticket"]["id"], ticket);
    assert_eq!(body["created"], false);

    // Mail is larger than JSON: 3 MiB is accepted (the default cap is 2 MiB).
    let big = format!(
        "From: cleo@customer.example\r\nSubject: Logs\r\nMessage-ID: <big@customer.example>\r\n\r\n{}\r\n",
        "x".repeat(3 * 1024 * 1024)
    );
    let (status, body) = desk.post_raw(&agent, "message/rfc822", &big).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // A token is needed, and an e-mail channel.
    let (status, _) = desk
        .post_raw_to(desk.channel, None, "message/rfc822", raw)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (_, form) = desk
        .app
        .post(
            "/api/v1/channels",
            &desk.app.admin,
            json!({"kind": "form", "name": "Web"}),
        )
        .await;
    let form = form["id"].as_i64().unwrap();
    let got = desk
        .post_raw_to(form, Some(&agent), "message/rfc822", raw)
        .await;
    assert_problem(&got, 422, Some("id"));
}

async fn the_listener_speaks_smtp_and_enforces_its_limits() {
    let desk = desk(None).await;
    let mut c = Client::connect(desk.smtp).await;
    assert_eq!(c.cmd("MAIL FROM:<a@x.example>").await.0, 503, "EHLO first");
    let (code, ehlo) = c.cmd("EHLO client.example").await;
    assert_eq!(code, 250);
    assert!(ehlo.contains(&format!("SIZE {MAX_BYTES}")), "{ehlo}");
    assert!(
        ehlo.contains("PIPELINING") && ehlo.contains("8BITMIME"),
        "{ehlo}"
    );
    assert_eq!(
        c.cmd("RCPT TO:<support@acme.example>").await.0,
        503,
        "MAIL first"
    );
    assert_eq!(c.cmd("MAIL FROM:<a@x.example> SIZE=99999999").await.0, 552);
    assert_eq!(c.cmd("MAIL FROM:<a@x.example>").await.0, 250);
    assert_eq!(c.cmd("MAIL FROM:<a@x.example>").await.0, 503, "nested");
    let (code, text) = c.cmd("RCPT TO:<sales@acme.example>").await;
    assert_eq!(code, 550, "{text}");
    assert!(text.contains("5.1.1"), "{text}");
    assert_eq!(c.cmd("RCPT TO:<support@other.example>").await.0, 550);
    assert_eq!(c.cmd("DATA").await.0, 554, "no valid recipient");
    assert_eq!(c.cmd("RCPT TO:<Support+7@ACME.example>").await.0, 250);
    assert_eq!(c.cmd("RSET").await.0, 250);
    assert_eq!(c.cmd("DATA").await.0, 503, "the transaction was reset");
    assert_eq!(c.cmd("NOOP").await.0, 250);
    assert_eq!(c.cmd("FROB").await.0, 500);
    assert_eq!(c.cmd("").await.0, 500);
    assert_eq!(c.cmd("EHLO").await.0, 501, "EHLO needs a domain");
    assert_eq!(c.cmd("HELO client.example").await.0, 250);

    // Too big: refused after the data, and the session stays in step.
    assert_eq!(c.cmd("MAIL FROM:<a@x.example>").await.0, 250);
    assert_eq!(c.cmd(&format!("RCPT TO:<{ADDRESS}>")).await.0, 250);
    let big = simple(
        "Huge",
        "<huge@x.example>",
        &"0123456789abcdef\r\n".repeat(MAX_BYTES / 16),
    );
    let (code, text) = c.data(&big).await;
    assert_eq!(code, 552, "{text}");
    assert_eq!(c.cmd("NOOP").await.0, 250);

    // Dot-stuffing is undone; the session takes a second message.
    assert_eq!(c.cmd("MAIL FROM:<a@x.example>").await.0, 250);
    assert_eq!(c.cmd(&format!("RCPT TO:<{ADDRESS}>")).await.0, 250);
    let dotted = simple(
        "Dots",
        "<dots@x.example>",
        "line one\r\n.leading dot\r\n..two dots",
    );
    let (code, text) = c.data(&dotted).await;
    assert_eq!(code, 250, "{text}");
    assert_eq!(c.cmd("QUIT").await.0, 221);

    assert_eq!(desk.ticket_of("<huge@x.example>").await, None);
    let t = desk.ticket_of("<dots@x.example>").await.unwrap();
    assert_eq!(
        desk.ticket(t).await["content"],
        "line one\r\n.leading dot\r\n..two dots"
    );
    assert_eq!(desk.ticket_count().await, 1);
}

async fn each_account_receives_mail_for_its_own_channels() {
    let desk = desk(None).await;
    // The first message builds the listener's directory.
    let first = simple("Acme", "<acme@c.example>", "For Acme.");
    send_lettre(&desk, ADDRESS, &first).await;
    // Another account, and a second channel of the first, created after.
    let (globex, _, globex_token) = switchboard_server::setup::create_account(
        desk.app.store.as_ref(),
        "Globex",
        "Gina",
        "gina@globex.example",
    )
    .await
    .unwrap();
    email_channel(&desk.app, &globex_token, "help@globex.example", json!({})).await;
    email_channel(&desk.app, &desk.app.admin, "sales@acme.example", json!({})).await;
    // An unknown address reloads the directory, at most once a second.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let to_globex = simple("Globex", "<globex@c.example>", "For Globex.");
    let (code, text) = send_raw(&desk, CLEO, &["help@globex.example"], &to_globex).await;
    assert_eq!(code, 250, "{text}");
    let to_sales = simple("Sales", "<sales@c.example>", "For sales.");
    let (code, text) = send_raw(&desk, CLEO, &["sales@acme.example"], &to_sales).await;
    assert_eq!(code, 250, "{text}");

    let found = |account, id: &str| {
        let store = desk.app.store.clone();
        let id = id.to_owned();
        async move { store.find_by_external_id(account, vec![id]).await.unwrap() }
    };
    assert!(found(globex.id, "<globex@c.example>").await.is_some());
    assert!(found(desk.account, "<globex@c.example>").await.is_none());
    let (sales_ticket, _) = found(desk.account, "<sales@c.example>").await.unwrap();
    assert_ne!(desk.ticket(sales_ticket).await["channel_id"], desk.channel);
    assert!(found(globex.id, "<sales@c.example>").await.is_none());
}

async fn idle_clients_and_a_shutdown_are_told_421() {
    let desk = desk(None).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let config = smtp::SmtpConfig {
        idle_timeout: std::time::Duration::from_millis(300),
        ..Default::default()
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(smtp::serve_with(
        listener,
        AppState::new(desk.app.store.clone()),
        config,
        async move {
            let _ = stopped.await;
        },
    ));
    let mut idle = Client::connect(addr).await;
    let (code, text) = idle.reply().await;
    assert_eq!(code, 421, "{text}");
    assert!(text.contains("4.4.2"), "{text}");

    let mut busy = Client::connect(addr).await;
    assert_eq!(busy.cmd("EHLO client.example").await.0, 250);
    stop.send(()).unwrap();
    let (code, text) = busy.reply().await;
    assert_eq!(code, 421, "{text}");
    assert!(text.contains("4.3.2"), "{text}");
    server.await.unwrap().unwrap();
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "no longer listening"
    );
}

/// E-mail settings are typed and checked when set: a bad relay is a 422
/// naming the field, on create and on patch, and nothing is stored; the
/// accepted shape is returned as given, secrets shown as set.
async fn bad_email_settings_are_refused_when_set() {
    let app = spawn_app().await;
    let bad = app
        .post(
            "/api/v1/channels",
            &app.admin,
            json!({"kind": "email", "name": "Mail", "settings": {
                "address": "support@acme.example",
                "smtp_relay": {"host": "smtp.example.net", "port": 70000}}}),
        )
        .await;
    assert_problem(&bad, 422, Some("settings.smtp_relay.port"));
    let (_, list) = app.get("/api/v1/channels", &app.admin).await;
    assert_eq!(list["items"].as_array().map(Vec::len), Some(0), "{list}");
    let (status, ch) = app
        .post(
            "/api/v1/channels",
            &app.admin,
            json!({"kind": "email", "name": "Mail", "settings": {
                "address": "support@acme.example",
                "smtp_relay": {"host": "smtp.example.net", "port": 587, "tls": "starttls"},
                "secrets": {"smtp_username": "u", "smtp_password": "p"}}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{ch}");
    assert_eq!(ch["settings"]["smtp_relay"]["port"], 587);
    assert_eq!(ch["settings"]["secrets"]["smtp_password"], "(set)");
    let patched = app
        .patch(
            &format!("/api/v1/channels/{}", ch["id"]),
            &app.admin,
            json!({"settings": {"address": "support@acme.example",
                "smtp_relay": {"host": "smtp.example.net", "tls": "ssl"}}}),
        )
        .await;
    assert_problem(&patched, 422, Some("settings.smtp_relay.tls"));
    let (_, again) = app
        .get(&format!("/api/v1/channels/{}", ch["id"]), &app.admin)
        .await;
    assert_eq!(
        again["settings"]["smtp_relay"]["tls"], "starttls",
        "{again}"
    );
}

on_both_backends!(
    bad_email_settings_are_refused_when_set,
    threads_by_header_subject_token_and_plus_address,
    a_duplicate_message_id_makes_one_message,
    agent_replies_go_out_threaded_and_the_answer_comes_back,
    automated_mail_is_flagged_and_never_answered_automatically,
    a_malformed_message_is_refused_and_nothing_is_written,
    raw_mime_over_http_stores_attachments,
    the_listener_speaks_smtp_and_enforces_its_limits,
    each_account_receives_mail_for_its_own_channels,
    idle_clients_and_a_shutdown_are_told_421,
);
