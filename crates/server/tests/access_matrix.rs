//! The access matrix, on both backends, generated from the served OpenAPI
//! document: every operation it lists is called, so a new route is covered
//! the day it is documented (and `tests/openapi.rs` makes sure every route
//! is). For every operation that takes a token:
//!
//! - without a token, and with a malformed one: `401`;
//! - with the token of a deactivated user: `401`;
//! - with another account's admin token: `404` on this account's ids, and
//!   nothing readable changed (the operation's resource family is read with
//!   the owner's token before and after); a collection read shows none of
//!   this account's data, a collection create creates in the caller's
//!   account only;
//! - with an agent's token: `403` exactly on the operations whose answers
//!   list `403` (the document's mark of a role check; ids point at the
//!   super admin, whom an agent may not manage), nothing changed then; any
//!   other operation answers the agent with a success.
//!
//! Public operations (tag `public`, no security requirement) take no
//! token; the checks there are that a channel key only opens its own kind
//! of channel (any other key is `404`), and that a visitor of account A's
//! channel asking for account B's conversation (or another visitor's) gets
//! `404`. No answer of the whole walk may be a `5xx`.
//!
//! An operation the walk cannot build a request for (an unknown path
//! parameter or resource, a body schema or media type without a sample, a
//! required query or header parameter) fails the test, naming it.

#[macro_use]
mod common;

#[path = "access_matrix/world.rs"]
mod world;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use world::{MARKER, Op, World, operations};

/// What a case sends: the token and the substitutions.
#[derive(Clone, Copy, PartialEq)]
enum Who<'a> {
    Nobody,
    Token(&'a str),
}

/// The answer to one request: status and body (empty for event streams,
/// which are not read).
struct Answer {
    status: StatusCode,
    body: Value,
}

impl World {
    /// Sends `op` at `path` with `who`, with the op's sample body; panics on
    /// a 5xx. Event streams are answered by their status line only.
    async fn call(&self, op: &Op, path: &str, who: Who<'_>, extra: &[(&str, &str)]) -> Answer {
        let method = Method::from_bytes(op.method.as_bytes()).unwrap();
        let mut req = self
            .app
            .client
            .request(method, format!("{}{path}", self.app.base))
            .timeout(std::time::Duration::from_secs(15));
        if let Who::Token(t) = who {
            req = req.bearer_auth(t);
        }
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        let b_caller = who == Who::Token(&self.b_admin);
        if let Some((media, bytes)) = self.body_for(op, b_caller) {
            req = req.header(reqwest::header::CONTENT_TYPE, media).body(bytes);
        }
        let res = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("{} {path}: {e}", op.method));
        let status = res.status();
        let is_stream = res
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        let body = if is_stream {
            // A live stream never ends; its status is the answer.
            Value::Null
        } else {
            let text = res.text().await.unwrap();
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        assert!(
            !status.is_server_error(),
            "{} {path} answered {status}: {body}",
            op.method
        );
        Answer { status, body }
    }

    /// Reads every GET of `op`'s resource family with the owner's token.
    async fn snapshot(&self, ops: &[Op], op: &Op) -> Vec<(String, u16, Value)> {
        let mut out = Vec::new();
        for g in ops.iter().filter(|g| op.family_includes(g)) {
            let path = self.concrete(g);
            let a = self.call(g, &path, Who::Token(&self.app.admin), &[]).await;
            out.push((path, a.status.as_u16(), a.body));
        }
        out
    }
}

/// Asserts `a` is a problem with `status`.
fn expect(op: &Op, case: &str, a: &Answer, status: u16) {
    assert_eq!(
        a.status.as_u16(),
        status,
        "{} {} ({case}): expected {status}, got {}: {}",
        op.method,
        op.path,
        a.status,
        a.body
    );
    if a.body != Value::Null {
        assert_eq!(
            a.body["status"],
            json!(status),
            "{} {} ({case}): not a problem: {}",
            op.method,
            op.path,
            a.body
        );
    }
}

/// Asserts the body shows none of account A's data.
fn no_marker(op: &Op, case: &str, a: &Answer) {
    let text = a.body.to_string().to_lowercase();
    assert!(
        !text.contains(MARKER),
        "{} {} ({case}) shows account A's data: {}",
        op.method,
        op.path,
        a.body
    );
}

/// Counts of what the walk checked, printed at the end.
#[derive(Default, Debug)]
struct Counts {
    token_ops: usize,
    public_ops: usize,
    admin_only: usize,
    cases: usize,
}

async fn access_matrix_from_the_document() {
    let started = std::time::Instant::now();
    let w = World::build().await;
    let (status, doc) = w
        .app
        .send(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let ops = operations(&doc);
    // Every operation must be exercisable before any case runs.
    for op in &ops {
        let _ = w.concrete(op);
        let _ = w.body_for(op, false);
    }
    let mut n = Counts::default();
    let before_all = w.snapshot_all(&ops).await;

    // 1. No token, a malformed one, a deactivated user's: 401.
    for op in ops.iter().filter(|o| !o.public) {
        n.token_ops += 1;
        n.admin_only += usize::from(op.admin_only);
        let path = w.concrete(op);
        for (case, who) in [
            ("no token", Who::Nobody),
            ("unknown token", Who::Token("sb_not-a-token")),
            ("deactivated user", Who::Token(&w.deactivated)),
        ] {
            let a = w.call(op, &path, who, &[]).await;
            expect(op, case, &a, 401);
            n.cases += 1;
        }
    }

    // 2. Another account's admin.
    for op in ops.iter().filter(|o| !o.public) {
        let path = w.concrete(op);
        let case = "another account";
        let before = w.snapshot(&ops, op).await;
        let a = w.call(op, &path, Who::Token(&w.b_admin), &[]).await;
        if op.has_path_params() {
            expect(op, case, &a, 404);
        } else {
            assert!(
                a.status.is_success(),
                "{} {path} ({case}): a collection route should answer the other account, got {}: {}",
                op.method,
                a.status,
                a.body
            );
        }
        // What another account creates is its own: its list shows it.
        let list = ops
            .iter()
            .find(|g| g.method == "GET" && g.path == op.path && !g.stream);
        if op.method == "POST"
            && !op.has_path_params()
            && let Some(list) = list
        {
            let new_id = &a.body["id"];
            let mine = w.call(list, &path, Who::Token(&w.b_admin), &[]).await;
            assert!(
                mine.body["items"]
                    .as_array()
                    .is_some_and(|items| items.iter().any(|i| &i["id"] == new_id)),
                "{} {path} ({case}): the created {new_id} is not in the creator's list: {}",
                op.method,
                mine.body
            );
        }
        no_marker(op, case, &a);
        assert_eq!(
            before,
            w.snapshot(&ops, op).await,
            "{} {path} ({case}) changed account A's data",
            op.method
        );
        n.cases += 1;
    }
    assert_eq!(
        before_all,
        w.snapshot_all(&ops).await,
        "the failed calls changed account A's data"
    );

    // 3. An agent: 403 exactly where the document lists it.
    for op in ops.iter().filter(|o| !o.public) {
        let path = w.concrete(op);
        let case = "agent";
        if op.admin_only {
            let before = w.snapshot(&ops, op).await;
            let a = w.call(op, &path, Who::Token(&w.agent), &[]).await;
            expect(op, case, &a, 403);
            assert_eq!(
                before,
                w.snapshot(&ops, op).await,
                "{} {path} ({case}) changed data",
                op.method
            );
        } else {
            let a = w.call(op, &path, Who::Token(&w.agent), &[]).await;
            assert!(
                a.status.is_success(),
                "{} {path}: the document lists no 403, so an agent may call it; got {}: {}",
                op.method,
                a.status,
                a.body
            );
        }
        n.cases += 1;
    }

    // 4. Public operations: keys open their own kind of channel only, and
    // conversations only for their own visitor.
    for op in ops.iter().filter(|o| o.public) {
        n.public_ops += 1;
        if op.params.iter().any(|p| p == "channel_key") {
            let own = w.channel_kind_of(op);
            for (kind, key) in w.keys.iter().filter(|(k, _)| **k != own) {
                let path = w.concrete(op).replace(&w.keys[own], key);
                let a = w.call(op, &path, Who::Nobody, &[]).await;
                expect(op, &format!("a {kind} channel's key"), &a, 404);
                n.cases += 1;
            }
            let path = w
                .concrete(op)
                .replace(&w.keys[own], "0123456789abcdef0123456789abcdef");
            expect(
                op,
                "unknown key",
                &w.call(op, &path, Who::Nobody, &[]).await,
                404,
            );
            n.cases += 1;
        }
        // A preflight answers CORS only and reads no conversation.
        if op.params.iter().any(|p| p == "id") && op.method != "OPTIONS" {
            let visitor = [("x-visitor-token", w.visitor.as_str())];
            for (case, id) in [
                ("account B's conversation", w.b_conversation),
                (
                    "another visitor's conversation",
                    w.other_visitor_conversation,
                ),
            ] {
                let path = w
                    .concrete(op)
                    .replace(&format!("/{}/", w.id("conversations")), &format!("/{id}/"));
                let a = w.call(op, &path, Who::Nobody, &visitor).await;
                expect(op, case, &a, 404);
                no_marker(op, case, &a);
                n.cases += 1;
            }
        }
        if !op.has_path_params() && op.method == "GET" {
            // Account-less pages (health, metrics, the document, the widget).
            let a = w.call(op, &op.path, Who::Nobody, &[]).await;
            no_marker(op, "public page", &a);
            n.cases += 1;
        }
    }
    eprintln!(
        "access matrix ({:?}): {} operations ({} with a token, {} of them admin-only; {} public), {} cases, {:.1?}",
        common::BACKEND.get(),
        ops.len(),
        n.token_ops,
        n.admin_only,
        n.public_ops,
        n.cases,
        started.elapsed()
    );
    assert!(n.token_ops > 30 && n.public_ops > 10, "{n:?}");
}

on_both_backends!(access_matrix_from_the_document);
