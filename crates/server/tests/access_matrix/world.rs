//! The access matrix's inputs: the operations read from the document, and
//! a world to call them in (account A with one of each resource, an agent,
//! a deactivated user, account B with a chat conversation), with the
//! samples that fill path parameters and bodies.

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use reqwest::StatusCode;
use serde_json::{Value, json};
use switchboard_domain::SystemClock;

use crate::common::{TestApp, eventually, fast_dispatcher, spawn_app_with};

/// In every name and address of account A's data, and in nothing of B's:
/// an answer to B that holds it leaks A's data.
pub const MARKER: &str = "acme";

const METHODS: [&str; 7] = ["get", "post", "put", "patch", "delete", "options", "head"];

/// A request body, as the document describes it.
#[derive(Debug, Clone)]
pub enum Body {
    /// JSON of the named component schema.
    Json(String),
    /// A free-form JSON object (no named schema, nothing required).
    AnyObject,
    /// Another media type (the first the operation lists).
    Raw(String),
}

/// One operation of the document.
#[derive(Debug, Clone)]
pub struct Op {
    pub method: String,
    pub path: String,
    /// Tagged `public`, with no security requirement.
    pub public: bool,
    /// Lists a `403`: a role check stands between a caller and it.
    pub admin_only: bool,
    /// Its 200 answer is an event stream.
    pub stream: bool,
    /// Names of the path parameters.
    pub params: Vec<String>,
    pub body: Option<Body>,
    /// Required query or header parameters (which the walk cannot fill).
    pub required: Vec<String>,
}

impl Op {
    /// Whether a path parameter names a record (`{name}` of a workflow
    /// template does not: such a route is a collection route).
    pub fn has_path_params(&self) -> bool {
        self.params.iter().any(|p| p != "name")
    }

    /// Whether `g` reads this operation's resource: a GET (with a token,
    /// not a stream) under the same collection.
    pub fn family_includes(&self, g: &Op) -> bool {
        if g.method != "GET" || g.public || g.stream {
            return false;
        }
        let collection = self.path.split("/{").next().unwrap_or_default();
        g.path == collection || g.path.starts_with(&format!("{collection}/"))
    }
}

/// The `$ref` name of the first schema reference under `v`.
fn first_ref(v: &Value) -> Option<String> {
    match v {
        Value::Object(m) => m
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.rsplit('/').next())
            .map(str::to_owned)
            .or_else(|| m.values().find_map(first_ref)),
        Value::Array(items) => items.iter().find_map(first_ref),
        _ => None,
    }
}

/// Every operation of the document, in its order.
pub fn operations(doc: &Value) -> Vec<Op> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("the document has paths") {
        for m in METHODS {
            let Some(op) = item.get(m) else { continue };
            let tagged_public = op["tags"]
                .as_array()
                .is_some_and(|t| t.iter().any(|t| t == "public"));
            let no_security = op["security"].as_array().is_some_and(|s| {
                s.is_empty()
                    || s.iter()
                        .all(|r| r.as_object().is_some_and(|r| r.is_empty()))
            });
            assert_eq!(
                tagged_public, no_security,
                "{m} {path}: tagged public exactly when it has no security requirement"
            );
            let params = op["parameters"].as_array().cloned().unwrap_or_default();
            let named = |place: &str| {
                params
                    .iter()
                    .filter(|p| p["in"] == place)
                    .filter_map(|p| p["name"].as_str().map(str::to_owned))
                    .collect::<Vec<_>>()
            };
            let required = params
                .iter()
                .filter(|p| p["in"] != "path" && p["required"] == true)
                .filter_map(|p| Some(format!("{} ({})", p["name"].as_str()?, p["in"].as_str()?)))
                .collect();
            let content = op["requestBody"]["content"].as_object();
            let body = content.map(|c| match c.iter().find(|(k, _)| k.ends_with("json")) {
                Some((media, v)) => match first_ref(&v["schema"]) {
                    Some(name) => Body::Json(name),
                    None if v["schema"]["type"] == "object"
                        && v["schema"].get("required").is_none() =>
                    {
                        Body::AnyObject
                    }
                    None => panic!("{m} {path}: the {media} body has no named schema to sample"),
                },
                None => Body::Raw(c.keys().next().cloned().unwrap_or_default()),
            });
            let stream = op["responses"]["200"]["content"]
                .as_object()
                .is_some_and(|c| c.contains_key("text/event-stream"));
            ops.push(Op {
                method: m.to_uppercase(),
                path: path.clone(),
                public: tagged_public,
                admin_only: op["responses"].get("403").is_some(),
                stream,
                params: named("path"),
                body,
                required,
            });
        }
    }
    ops
}

/// Account A and B, and what the walk needs of them.
pub struct World {
    pub app: TestApp,
    /// An agent of A.
    pub agent: String,
    /// The token of a deactivated user of A.
    pub deactivated: String,
    /// The super admin of B.
    pub b_admin: String,
    /// B's super admin (whom B's template bodies name).
    pub b_user: i64,
    /// An id of A's for each resource name (the path segment before `{id}`).
    pub ids: BTreeMap<&'static str, i64>,
    /// A's channel key of each kind.
    pub keys: BTreeMap<&'static str, String>,
    /// The signed token of A's chat visitor (who started `ids["conversations"]`).
    pub visitor: String,
    /// A conversation of another visitor of A's chat channel.
    pub other_visitor_conversation: i64,
    /// A conversation of B's chat channel.
    pub b_conversation: i64,
    counter: AtomicU64,
}

async fn created(app: &TestApp, path: &str, token: &str, body: Value) -> Value {
    let (status, v) = app.post(path, token, body).await;
    assert!(status.is_success(), "{path}: {status} {v}");
    v
}

fn id(v: &Value) -> i64 {
    v["id"].as_i64().unwrap_or_else(|| panic!("no id in {v}"))
}

impl World {
    pub async fn build() -> World {
        // Replies go to a relay that is not there; one attempt and the
        // outbox row is `failed` for good, so it no longer changes.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let relay_port = closed.local_addr().unwrap().port();
        drop(closed);
        let app = spawn_app_with(Arc::new(SystemClock), fast_dispatcher(1)).await;
        let admin = app.admin.clone();
        let (_, users) = app.get("/api/v1/users", &admin).await;
        let super_admin = crate::common::TestApp::ids(&users)[0];
        let (_, agent) = app.user("Acmeagent", "agent", json!({})).await;
        let (gone, deactivated) = app.user("Acmegone", "agent", json!({})).await;
        let (status, v) = app
            .patch(
                &format!("/api/v1/users/{gone}"),
                &admin,
                json!({"deactivated": true}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{v}");
        let team = created(&app, "/api/v1/teams", &admin, json!({"name": "Acme team"})).await;
        created(
            &app,
            "/api/v1/skills",
            &admin,
            json!({"name": "Acme skill", "category": "acme"}),
        )
        .await;
        let contact = created(
            &app,
            "/api/v1/contacts",
            &admin,
            json!({"name": "Acme contact", "email": "contact@acme.example"}),
        )
        .await;
        let mut keys = BTreeMap::new();
        let mut channels = BTreeMap::new();
        for (kind, settings) in [
            (
                "email",
                json!({"address": "support@acme.example",
                "smtp_relay": {"host": "127.0.0.1", "port": relay_port, "tls": "none"}}),
            ),
            ("chat", json!({})),
            ("form", json!({})),
            ("whatsapp", json!({"phone_number_id": "123"})),
            ("calls", json!({})),
        ] {
            let ch = created(
                &app,
                "/api/v1/channels",
                &admin,
                json!({"kind": kind, "name": format!("Acme {kind}"), "settings": settings}),
            )
            .await;
            keys.insert(kind, ch["key"].as_str().unwrap().to_owned());
            channels.insert(kind, id(&ch));
        }
        let ticket = created(
            &app,
            "/api/v1/tickets",
            &admin,
            json!({"subject": "Acme ticket", "channel_id": channels["email"],
                "contact": {"email": "cleo@acme.example", "name": "Acme Cleo"}}),
        )
        .await;
        let ticket = id(&ticket);
        created(
            &app,
            &format!("/api/v1/tickets/{ticket}/messages"),
            &admin,
            json!({"kind": "reply", "body": "Acme reply"}),
        )
        .await;
        let outbox_row = eventually("the reply's outbox row to fail", || async {
            let (_, page) = app.get("/api/v1/outbox?state=failed", &admin).await;
            page["items"].as_array()?.first().map(id)
        })
        .await;
        let chat = format!("/chat/{}/conversations", keys["chat"]);
        let (status, started) = app
            .send(
                reqwest::Method::POST,
                &chat,
                None,
                Some(json!({"message": "Acme hello"})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{started}");
        let (_, other) = app
            .send(
                reqwest::Method::POST,
                &chat,
                None,
                Some(json!({"message": "Acme other"})),
            )
            .await;
        let (_, _, b_admin) = switchboard_server::setup::create_account(
            app.store.as_ref(),
            "Globex",
            "Gina",
            "gina@globex.example",
        )
        .await
        .unwrap();
        let b_chat = created(
            &app,
            "/api/v1/channels",
            &b_admin,
            json!({"kind": "chat", "name": "Globex chat"}),
        )
        .await;
        let (status, b_started) = app
            .send(
                reqwest::Method::POST,
                &format!("/chat/{}/conversations", b_chat["key"].as_str().unwrap()),
                None,
                Some(json!({"message": "Globex hello"})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{b_started}");
        let (_, b_users) = app.get("/api/v1/users", &b_admin).await;
        let b_user = crate::common::TestApp::ids(&b_users)[0];
        let workflow = created(
            &app,
            "/api/v1/workflows",
            &admin,
            json!({"name": "Acme workflow", "triggers": [{"kind": "status_changed"}],
                "actions": [{"type": "add_note", "body": "Acme note"}]}),
        )
        .await;
        let ids = BTreeMap::from([
            ("workflows", id(&workflow)),
            ("users", super_admin),
            ("teams", id(&team)),
            ("contacts", id(&contact)),
            ("channels", channels["email"]),
            ("tickets", ticket),
            ("outbox", outbox_row),
            (
                "conversations",
                started["conversation_id"].as_i64().unwrap(),
            ),
        ]);
        World {
            app,
            agent,
            deactivated,
            b_admin,
            b_user,
            ids,
            keys,
            visitor: started["visitor_token"].as_str().unwrap().to_owned(),
            other_visitor_conversation: other["conversation_id"].as_i64().unwrap(),
            b_conversation: b_started["conversation_id"].as_i64().unwrap(),
            counter: AtomicU64::new(0),
        }
    }

    /// A's id of `resource`.
    pub fn id(&self, resource: &str) -> i64 {
        self.ids[resource]
    }

    /// The kind of channel whose key a public path takes.
    pub fn channel_kind_of(&self, op: &Op) -> &'static str {
        const KINDS: [(&str, &str); 4] = [
            ("/chat/", "chat"),
            ("/f/", "form"),
            ("/webhooks/whatsapp/", "whatsapp"),
            ("/webhooks/twilio/", "calls"),
        ];
        KINDS
            .iter()
            .find(|(prefix, _)| op.path.starts_with(prefix))
            .map(|(_, kind)| *kind)
            .unwrap_or_else(|| {
                panic!(
                    "{} {}: which kind of channel's key does it take? Add its prefix to KINDS",
                    op.method, op.path
                )
            })
    }

    /// `op`'s path with A's ids and keys in it.
    pub fn concrete(&self, op: &Op) -> String {
        assert!(
            op.required.is_empty() || op.public,
            "{} {}: the walk cannot fill the required parameters {:?}",
            op.method,
            op.path,
            op.required
        );
        let mut path = op.path.clone();
        for name in &op.params {
            let value = match name.as_str() {
                "id" => {
                    let before = op.path.split("/{id}").next().unwrap_or_default();
                    let resource = before.rsplit('/').next().unwrap_or_default();
                    let id = self.ids.get(resource).unwrap_or_else(|| {
                        panic!(
                            "{} {}: no sample `{resource}` to stand for {{id}}; create one in World::build",
                            op.method, op.path
                        )
                    });
                    id.to_string()
                }
                "channel_key" => self.keys[self.channel_kind_of(op)].clone(),
                "name" if op.path.starts_with("/api/v1/workflows/templates/") => {
                    "reassign_without_first_reply".to_owned()
                }
                other => panic!(
                    "{} {}: no sample for the path parameter {{{other}}}",
                    op.method, op.path
                ),
            };
            path = path.replace(&format!("{{{name}}}"), &value);
        }
        path
    }

    /// A valid body for `op` (media type and bytes), or `None` if it takes none.
    pub fn body_for(&self, op: &Op, b_caller: bool) -> Option<(String, Vec<u8>)> {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let name = format!("Matrix {n}");
        let email = format!("matrix{n}@example.com");
        let json = match op.body.as_ref()? {
            Body::AnyObject => json!({}),
            Body::Json(schema) => match schema.as_str() {
                "NewUser" => json!({"name": name, "email": email, "role": "agent"}),
                "UserPatch" | "TeamPatch" | "ContactPatch" | "ChannelPatch" => {
                    json!({"name": name})
                }
                "NewToken" => json!({"name": "matrix"}),
                "NewTeam" => json!({"name": name}),
                "NewSkill" => json!({"name": name, "category": "matrix"}),
                "NewContact" => json!({"name": name, "email": email}),
                "NewChannel" => json!({"kind": "custom", "name": name}),
                "NewTicket" => json!({"subject": name}),
                "TicketPatch" => json!({"priority": "low"}),
                "OwnerRequest" => json!({}),
                "MessageRequest" => json!({"kind": "note", "body": name}),
                "AvailabilityRequest" => json!({"status": "away"}),
                "WorkingHoursRequest" => json!({"shifts": null}),
                "OutOfOffice" => {
                    json!({"start": "2031-01-01T00:00:00Z", "end": "2031-01-02T00:00:00Z"})
                }
                "StartRequest" | "SendRequest" => json!({"message": name}),
                "SettingsChange" => json!({"settings": []}),
                "MarkRead" => json!({"all": true}),
                // Valid in any account: names no record.
                "WorkflowSpec" => json!({"name": name, "triggers": [{"kind": "ticket_created"}],
                    "actions": [{"type": "set_priority", "value": "high"}]}),
                "WorkflowPatch" => json!({"name": name}),
                "TicketRef" => json!({"ticket_id": self.ids["tickets"]}),
                "Handoff" => json!({}),
                // The caller's own user: a template names whom to rotate to.
                "TemplateInput" => {
                    let user = if b_caller {
                        self.b_user
                    } else {
                        self.ids["users"]
                    };
                    json!({"after_seconds": 600, "targets": {"users": [user]}})
                }
                other => panic!(
                    "{} {}: no sample body for the schema `{other}`; add one to World::body_for",
                    op.method, op.path
                ),
            },
            Body::Raw(media) => {
                let bytes = match media.as_str() {
                    "message/rfc822" => format!(
                        "From: Matrix <{email}>\r\nTo: support@acme.example\r\nSubject: {name}\r\n\
                         Message-ID: <matrix-{n}@example.com>\r\n\r\nHello\r\n"
                    ),
                    "application/x-www-form-urlencoded" => format!("message={n}"),
                    other => panic!(
                        "{} {}: no sample body of type `{other}`; add one to World::body_for",
                        op.method, op.path
                    ),
                };
                return Some((media.clone(), bytes.into_bytes()));
            }
        };
        Some(("application/json".into(), json.to_string().into_bytes()))
    }

    /// Every GET with a token (not a stream), read with A's admin token.
    pub async fn snapshot_all(&self, ops: &[Op]) -> Vec<(String, u16, Value)> {
        let mut out = Vec::new();
        for g in ops
            .iter()
            .filter(|g| g.method == "GET" && !g.public && !g.stream)
        {
            let path = self.concrete(g);
            let (status, body) = self.app.get(&path, &self.app.admin).await;
            out.push((path, status.as_u16(), body));
        }
        out
    }
}
