//! Notifications: the caller's in-app list and its read marks, its live
//! stream, personal preferences, the account defaults, and the account's
//! notification e-mail relay.
//!
//! - `GET /notifications` (`unread=true` for unread only), with the
//!   unread count; `POST /notifications/read` marks some or all read;
//! - `GET /notifications/stream`: the caller's new notifications as
//!   Server-Sent Events, `id` = notification id, resumable with
//!   `Last-Event-ID` (the console's bell and desktop pop-ups);
//! - `GET/PUT /users/{id}/notification-settings`: a user's effective
//!   preferences and where each comes from (agents: only their own; admins:
//!   users they may manage);
//! - `GET/PUT /notification-settings/defaults` and
//!   `POST /notification-settings/defaults/apply` (clear every user's own
//!   choices): super admins only;
//! - `GET/PUT /notification-settings/email`: the relay, From address and
//!   hourly cap; the SMTP password is never returned (super admins only).

use std::{collections::VecDeque, convert::Infallible, sync::Arc, time::Duration};

use axum::{
    Router,
    extract::State,
    http::HeaderMap,
    response::sse::{Event, KeepAlive, Sse},
    routing::{get, post},
};
use futures_util::Stream;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use switchboard_domain::{
    AccountId, Notification, Role, UserId,
    notifications::{self, EffectivePreference, PreferenceSetting, Preferences},
};
use switchboard_store::{NotificationPage, NotificationQuery, Store};

use super::directory::{SECRET_SET, page_limit};
use crate::{
    AppState,
    auth::Caller,
    extract::{Json, Path, Query},
    problem::{ApiError, Problem},
};

type Reply<T> = Result<axum::Json<T>, ApiError>;

/// How often a stream re-reads without news.
const POLL: Duration = Duration::from_secs(1);

/// The routes of this area.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/notifications", get(list))
        .route("/notifications/read", post(mark_read))
        .route("/notifications/stream", get(stream))
        .route(
            "/users/{id}/notification-settings",
            get(user_settings).put(set_user_settings),
        )
        .route(
            "/notification-settings/defaults",
            get(defaults).put(set_defaults),
        )
        .route(
            "/notification-settings/defaults/apply",
            post(apply_defaults),
        )
        .route(
            "/notification-settings/email",
            get(email_settings).put(set_email_settings),
        )
}

fn require_super_admin(caller: &Caller) -> Result<(), ApiError> {
    if caller.0.role == Role::SuperAdmin {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "only super admins can change notification defaults and e-mail settings",
        ))
    }
}

/// Filters of the notification list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct NotificationParams {
    /// Only unread notifications.
    pub unread: Option<bool>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<i64>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
}

/// The caller's in-app notifications, newest first, with the unread count.
#[utoipa::path(get, path = "/api/v1/notifications", tag = "notifications", params(NotificationParams),
    responses((status = 200, body = NotificationPage), (status = 400, description = "A bad limit", body = Problem)))]
pub(crate) async fn list(
    State(s): State<AppState>,
    Caller(me): Caller,
    Query(q): Query<NotificationParams>,
) -> Reply<NotificationPage> {
    let query = NotificationQuery {
        unread_only: q.unread.unwrap_or(false),
        cursor: q.cursor,
        limit: page_limit(q.limit)?,
    };
    Ok(axum::Json(
        s.store
            .notifications(me.account_id, me.user_id, query)
            .await?,
    ))
}

/// Body of `POST /notifications/read`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MarkRead {
    /// The notifications to mark read; all unread ones when `all` is true.
    #[serde(default)]
    pub ids: Vec<i64>,
    /// Mark every unread notification read.
    #[serde(default)]
    pub all: bool,
}

/// What `POST /notifications/read` did.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Marked {
    /// How many notifications changed from unread to read.
    pub marked: u64,
    /// How many are still unread.
    pub unread: u64,
}

/// Marks the caller's notifications read: the ones listed, or all.
#[utoipa::path(post, path = "/api/v1/notifications/read", tag = "notifications", request_body = MarkRead,
    responses((status = 200, body = Marked), (status = 422, description = "Neither ids nor all, or both", body = Problem)))]
pub(crate) async fn mark_read(
    State(s): State<AppState>,
    Caller(me): Caller,
    Json(req): Json<MarkRead>,
) -> Reply<Marked> {
    let ids = match (req.all, req.ids.is_empty()) {
        (true, true) => None,
        (false, false) if req.ids.len() <= 1000 => Some(req.ids),
        (false, false) => return Err(ApiError::invalid("ids", "at most 1000 at a time")),
        (true, false) => return Err(ApiError::invalid("ids", "give ids or all, not both")),
        (false, true) => return Err(ApiError::invalid("ids", "give ids, or all: true")),
    };
    let marked = s
        .store
        .mark_notifications_read(me.account_id, me.user_id, ids)
        .await?;
    let page = s
        .store
        .notifications(
            me.account_id,
            me.user_id,
            NotificationQuery {
                unread_only: true,
                cursor: None,
                limit: 1,
            },
        )
        .await?;
    Ok(axum::Json(Marked {
        marked,
        unread: page.unread,
    }))
}

/// A user's preferences: every topic and method, the user's own setting,
/// the effective value and where it comes from.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserSettings {
    /// The user.
    pub user_id: UserId,
    /// One entry per topic and method.
    pub settings: Vec<EffectivePreference>,
}

/// Body of the `PUT`s of settings: the entries to change (others keep
/// their value); `unset` goes back to the next level.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsChange {
    /// The changes.
    pub settings: Vec<PreferenceSetting>,
}

/// The account defaults for every topic and method.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DefaultSettings {
    /// One entry per topic and method: `setting` as the super admin set it
    /// (`unset`: the built-in default), `enabled` the default that applies.
    pub settings: Vec<EffectivePreference>,
}

/// Agents see and change only their own settings; admins those of users
/// they may manage. 404 for a user of another account.
async fn may_see(s: &AppState, caller: &Caller, id: UserId) -> Result<(), ApiError> {
    let user = s.store.get_user(caller.0.account_id, id).await?;
    if caller.0.user_id != id {
        caller.require_can_manage(user.role)?;
    }
    Ok(())
}

fn user_reply(id: UserId, prefs: &Preferences) -> axum::Json<UserSettings> {
    axum::Json(UserSettings {
        user_id: id,
        settings: prefs.effective(id),
    })
}

/// A user's notification settings, with the effective value of each.
#[utoipa::path(get, path = "/api/v1/users/{id}/notification-settings", tag = "notifications", params(("id" = i64, Path, description = "The user")),
    responses((status = 200, body = UserSettings), (status = 403, description = "Agents see only their own settings", body = Problem)))]
pub(crate) async fn user_settings(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<UserId>,
) -> Reply<UserSettings> {
    may_see(&s, &caller, id).await?;
    let prefs = s
        .store
        .notification_preferences(caller.0.account_id, id)
        .await?;
    Ok(user_reply(id, &prefs))
}

/// Changes a user's own settings (`unset` follows the account default).
#[utoipa::path(put, path = "/api/v1/users/{id}/notification-settings", tag = "notifications", params(("id" = i64, Path, description = "The user")), request_body = SettingsChange,
    responses((status = 200, body = UserSettings), (status = 403, description = "Agents change only their own settings", body = Problem), (status = 422, description = "A topic and method given twice", body = Problem)))]
pub(crate) async fn set_user_settings(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<UserId>,
    Json(req): Json<SettingsChange>,
) -> Reply<UserSettings> {
    may_see(&s, &caller, id).await?;
    notifications::check_settings(&req.settings)?;
    let prefs = s
        .store
        .set_notification_preferences(caller.0.account_id, id, req.settings)
        .await?;
    Ok(user_reply(id, &prefs))
}

/// The account's default notification settings.
#[utoipa::path(get, path = "/api/v1/notification-settings/defaults", tag = "notifications",
    responses((status = 200, body = DefaultSettings)))]
pub(crate) async fn defaults(
    State(s): State<AppState>,
    Caller(me): Caller,
) -> Reply<DefaultSettings> {
    let prefs = s.store.notification_defaults(me.account_id).await?;
    Ok(axum::Json(DefaultSettings {
        settings: prefs.default_settings(),
    }))
}

/// Changes account defaults; users who set nothing for a topic and method
/// follow them.
#[utoipa::path(put, path = "/api/v1/notification-settings/defaults", tag = "notifications", request_body = SettingsChange,
    responses((status = 200, body = DefaultSettings), (status = 403, description = "Only super admins set defaults", body = Problem), (status = 422, description = "A topic and method given twice", body = Problem)))]
pub(crate) async fn set_defaults(
    State(s): State<AppState>,
    caller: Caller,
    Json(req): Json<SettingsChange>,
) -> Reply<DefaultSettings> {
    require_super_admin(&caller)?;
    notifications::check_settings(&req.settings)?;
    let prefs = s
        .store
        .set_notification_defaults(caller.0.account_id, req.settings)
        .await?;
    Ok(axum::Json(DefaultSettings {
        settings: prefs.default_settings(),
    }))
}

/// What "apply the defaults to everyone" did.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Applied {
    /// How many personal settings were cleared.
    pub cleared: u64,
}

/// Applies the defaults to everyone: clears every user's own settings.
#[utoipa::path(post, path = "/api/v1/notification-settings/defaults/apply", tag = "notifications",
    responses((status = 200, body = Applied), (status = 403, description = "Only super admins apply defaults", body = Problem)))]
pub(crate) async fn apply_defaults(State(s): State<AppState>, caller: Caller) -> Reply<Applied> {
    require_super_admin(&caller)?;
    let cleared = s
        .store
        .apply_notification_defaults(caller.0.account_id)
        .await?;
    Ok(axum::Json(Applied { cleared }))
}

/// The notification e-mail settings as served: secrets show only that
/// they are set.
fn redact(mut settings: Map<String, Value>) -> Map<String, Value> {
    if let Some(Value::Object(secrets)) = settings.get_mut("secrets") {
        for value in secrets.values_mut() {
            *value = Value::String(SECRET_SET.into());
        }
    }
    settings
}

/// The account's notification e-mail settings: `address` (From),
/// `smtp_relay` (`host`, `port`, `tls`: `none`, `starttls` or `tls`),
/// `secrets` (`smtp_username`, `smtp_password`: shown as `(set)`), and
/// `hourly_cap` (e-mails per user and topic per hour, default 20).
#[utoipa::path(get, path = "/api/v1/notification-settings/email", tag = "notifications",
    responses((status = 200, body = Object), (status = 403, description = "Only super admins see the relay", body = Problem)))]
pub(crate) async fn email_settings(
    State(s): State<AppState>,
    caller: Caller,
) -> Reply<Map<String, Value>> {
    require_super_admin(&caller)?;
    let stored = s.store.notification_email(caller.0.account_id).await?;
    Ok(axum::Json(redact(stored)))
}

/// Replaces the account's notification e-mail settings. In `secrets`, a
/// string sets, `null` removes and `(set)` (or leaving it out) keeps.
#[utoipa::path(put, path = "/api/v1/notification-settings/email", tag = "notifications", request_body = Object,
    responses((status = 200, body = Object), (status = 403, description = "Only super admins set the relay", body = Problem), (status = 422, description = "A bad setting, naming it", body = Problem)))]
pub(crate) async fn set_email_settings(
    State(s): State<AppState>,
    caller: Caller,
    Json(mut given): Json<Map<String, Value>>,
) -> Reply<Map<String, Value>> {
    require_super_admin(&caller)?;
    let account = caller.0.account_id;
    let stored = s.store.notification_email(account).await?;
    let mut secrets = match stored.get("secrets") {
        Some(Value::Object(m)) => m.clone(),
        _ => Map::new(),
    };
    match given.get("secrets") {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => {
            for (k, v) in m {
                match v {
                    Value::Null => {
                        secrets.remove(k);
                    }
                    Value::String(v) if v == SECRET_SET => {}
                    v => {
                        secrets.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        Some(_) => return Err(ApiError::invalid("secrets", "must be an object")),
    }
    if secrets.is_empty() {
        given.remove("secrets");
    } else {
        given.insert("secrets".into(), Value::Object(secrets));
    }
    // Parsed before it is stored: a bad port is a 422 now, not a failed
    // e-mail later.
    notifications::email_settings::parse(&given)?;
    s.store
        .set_notification_email(account, given.clone())
        .await?;
    Ok(axum::Json(redact(given)))
}

/// The caller's new in-app notifications, as they are committed.
#[utoipa::path(
    get,
    path = "/api/v1/notifications/stream",
    tag = "notifications",
    params(("Last-Event-ID" = Option<i64>, Header,
        description = "Resume after this notification id; without it, the stream starts with the next notification")),
    responses(
        (status = 200, description = "A stream of `text/event-stream` events named `notification`, each a Notification in JSON with its id as `id`", body = Notification, content_type = "text/event-stream"),
        (status = 422, description = "Last-Event-ID is not a notification id", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn stream(
    State(state): State<AppState>,
    Caller(me): Caller,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let wake = state.store.subscribe();
    let after = match headers.get("last-event-id") {
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse::<i64>().ok())
            .ok_or_else(|| ApiError::invalid("Last-Event-ID", "must be a notification id"))?,
        None => {
            state
                .store
                .latest_notification_id(me.account_id, me.user_id)
                .await?
        }
    };
    let cursor = Cursor {
        store: state.store.clone(),
        account: me.account_id,
        user: me.user_id,
        after,
        queued: VecDeque::new(),
        wake,
    };
    let stream = futures_util::stream::unfold(cursor, |mut c| async move {
        let event = c.next().await;
        Some((Ok(event), c))
    });
    let stream = futures_util::StreamExt::take_until(stream, state.stopping());
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// Where one client's notification stream stands.
struct Cursor {
    store: Arc<dyn Store>,
    account: AccountId,
    user: UserId,
    after: i64,
    queued: VecDeque<Event>,
    /// Ticket events wake the stream up (a notification is written in the
    /// transaction of a ticket change, whose event follows its commit);
    /// it also re-reads every [`POLL`].
    wake: tokio::sync::broadcast::Receiver<switchboard_store::TicketEvent>,
}

impl Cursor {
    async fn next(&mut self) -> Event {
        loop {
            if let Some(e) = self.queued.pop_front() {
                return e;
            }
            match self
                .store
                .notifications_since(self.account, self.user, self.after, 100)
                .await
            {
                Ok(batch) if !batch.is_empty() => {
                    for n in batch {
                        self.after = n.id;
                        match Event::default()
                            .event("notification")
                            .id(n.id.to_string())
                            .json_data(&n)
                        {
                            Ok(e) => self.queued.push_back(e),
                            Err(err) => {
                                tracing::warn!(id = n.id, error = %err, "notification not serialisable")
                            }
                        }
                    }
                }
                Ok(_) => self.wait().await,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read notifications; retrying");
                    tokio::time::sleep(POLL).await;
                }
            }
        }
    }

    async fn wait(&mut self) {
        let deadline = tokio::time::Instant::now() + POLL;
        loop {
            match tokio::time::timeout_at(deadline, self.wake.recv()).await {
                Err(_) => return,
                Ok(Ok(e)) if e.account_id != self.account => continue,
                Ok(Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => return,
                Ok(Err(tokio::sync::broadcast::error::RecvError::Closed)) => {
                    tokio::time::sleep_until(deadline).await;
                    return;
                }
            }
        }
    }
}
