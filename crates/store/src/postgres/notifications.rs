//! Notification rows on PostgreSQL: the same statements as
//! `sqlite::notifications` (see there), with one addition. A stream resumes
//! with `id > last`, so a user's notification ids must become visible in
//! order; identity values are handed out at insert and visible at commit,
//! so `raise` takes a per-account advisory lock before its first insert,
//! held until commit: ids of one account are then handed out and committed
//! in the same order. It is taken after the routing lock (if any), never
//! before, so the two cannot deadlock.

use std::collections::HashMap;

use jiff::Timestamp;
use serde_json::{Map, Value};
use sqlx::{PgConnection, postgres::PgRow};
use switchboard_domain::notifications::{
    self as n, Candidates, EmailPlan, EmailState, NotifyEvent, Person, PreferenceSetting,
    Preferences,
};
use switchboard_domain::{outbox::OutboxTopic, *};

use super::account_settings::{self, email_settings, preferences};
use super::{backend, routing_state, rows, writes};
use crate::{EmailNotice, NotificationPage, NotificationQuery, Result};

/// The class of the per-account notification lock ("noti" in ASCII).
const NOTIFY_LOCK_CLASS: i64 = 0x6e6f_7469 << 32;

const PERSON: &str = "SELECT u.id, u.name, u.email, u.help_desk_seat, u.deactivated,
    (SELECT string_agg(m.team_id::text, ',') FROM team_members m WHERE m.user_id = u.id) FROM users u";

fn person(r: &PgRow) -> Result<Person> {
    let teams: Option<String> = rows::get(r, 5)?;
    Ok(Person {
        id: UserId(rows::get(r, 0)?),
        name: rows::value(r, 1)?,
        email: rows::value(r, 2)?,
        seated: rows::flag(r, 3)?,
        deactivated: rows::flag(r, 4)?,
        teams: teams
            .unwrap_or_default()
            .split(',')
            .filter_map(|t| t.parse().ok().map(TeamId))
            .collect(),
    })
}

/// See `sqlite::notifications::raise`.
pub(super) async fn raise(
    c: &mut PgConnection,
    now: Timestamp,
    account: AccountId,
    t: &Ticket,
    actor: Actor,
    event: &NotifyEvent,
) -> Result<()> {
    let people: Vec<Person> = match n::candidates(event, t.owner.user_id) {
        Candidates::Nobody => return Ok(()),
        Candidates::One(user) => match routing_state::shared(|s| s.people.get(&user).cloned()) {
            Some(Some(known)) => known.into_iter().collect(),
            _ => {
                let found = sqlx::query(&format!("{PERSON} WHERE u.id = $1 AND u.account_id = $2"))
                    .bind(user.0)
                    .bind(account.0)
                    .fetch_optional(&mut *c)
                    .await?
                    .map(|r| person(&r))
                    .transpose()?;
                routing_state::shared(|s| s.people.insert(user, found.clone()));
                found.into_iter().collect()
            }
        },
        Candidates::Everyone => {
            sqlx::query(&format!("{PERSON} WHERE u.account_id = $1 ORDER BY u.id"))
                .bind(account.0)
                .fetch_all(&mut *c)
                .await?
                .iter()
                .map(person)
                .collect::<Result<Vec<_>>>()?
        }
    };
    let actor_user = match actor {
        Actor::User { user_id } => Some(user_id),
        _ => None,
    };
    let facts = n::TicketFacts {
        owner_user: t.owner.user_id,
        owner_team: t.owner.team_id,
        people: &people,
        actor: actor_user,
    };
    let told = n::audience(event, &facts);
    if told.is_empty() {
        return Ok(());
    }
    let lock = NOTIFY_LOCK_CLASS | account.0;
    if !routing_state::lock_held(lock) {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(lock)
            .execute(&mut *c)
            .await?;
        routing_state::note_lock_held(lock);
    }
    let kept = account_settings::get(c, account).await?;
    let (prefs, cap) = (&kept.prefs, kept.cap);
    let (window, _) = n::cap_window(now);
    let mut sent = HashMap::new();
    for (user, topic) in told.iter().filter(|_| cap.is_some()) {
        let count: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM notifications WHERE user_id = $1 AND topic = $2 AND email_state = 'sent' AND at >= $3",
        )
        .bind(user.0)
        .bind(topic.as_str())
        .bind(rows::ms(window))
        .fetch_one(&mut *c)
        .await?;
        sent.insert((*user, *topic), u32::try_from(count).unwrap_or(u32::MAX));
    }
    for p in n::plan(&told, prefs, &sent, cap, now) {
        let state = match p.email {
            None => EmailState::None,
            Some(EmailPlan::Send) => EmailState::Sent,
            Some(EmailPlan::Hold { .. }) => EmailState::Held,
        };
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO notifications (account_id, user_id, ticket_id, topic, subject, actor_user_id, in_app, email_state, at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
        )
        .bind(account.0)
        .bind(p.user.0)
        .bind(t.id.0)
        .bind(p.topic.as_str())
        .bind(&t.subject)
        .bind(actor_user.map(|u| u.0))
        .bind(i32::from(p.in_app))
        .bind(state.as_str())
        .bind(rows::ms(now))
        .fetch_one(&mut *c)
        .await?;
        match p.email {
            None => {}
            Some(EmailPlan::Send) => {
                let topic = OutboxTopic::NotifyEmail {
                    notification_id: id,
                };
                super::outbox::enqueue(c, now, account, &topic).await?;
            }
            Some(EmailPlan::Hold { digest_at }) => {
                writes::schedule(c, account, JobKind::NotifyDigest, p.user.0, digest_at).await?;
            }
        }
    }
    Ok(())
}

/// See `sqlite::notifications::digest`.
pub(super) async fn digest(
    c: &mut PgConnection,
    now: Timestamp,
    account: AccountId,
    user: UserId,
) -> Result<()> {
    let ids: Vec<i64> = sqlx::query_scalar(
        "SELECT id FROM notifications WHERE user_id = $1 AND account_id = $2 AND email_state = 'held' ORDER BY id",
    )
    .bind(user.0)
    .bind(account.0)
    .fetch_all(&mut *c)
    .await?;
    if ids.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "UPDATE notifications SET email_state = 'digested' WHERE user_id = $1 AND account_id = $2 AND email_state = 'held'",
    )
    .bind(user.0)
    .bind(account.0)
    .execute(&mut *c)
    .await?;
    let topic = OutboxTopic::NotifyDigest {
        user_id: user,
        notification_ids: ids,
    };
    super::outbox::enqueue(c, now, account, &topic).await
}

const COLUMNS: &str = "id, ticket_id, topic, subject, actor_user_id, at, read_at";

fn notification(r: &PgRow) -> Result<Notification> {
    Ok(Notification {
        id: rows::get(r, 0)?,
        ticket_id: TicketId(rows::get(r, 1)?),
        topic: rows::parsed(r, 2)?,
        subject: rows::get(r, 3)?,
        actor_user_id: rows::get::<Option<i64>>(r, 4)?.map(UserId),
        at: rows::ts(rows::get(r, 5)?),
        read_at: rows::opt_ts(r, 6)?,
    })
}

pub(super) async fn list(
    c: &mut PgConnection,
    account: AccountId,
    user: UserId,
    q: NotificationQuery,
) -> Result<NotificationPage> {
    let sql = format!(
        "SELECT {COLUMNS} FROM notifications WHERE user_id = $1 AND account_id = $2 AND in_app = 1
           AND ($3 = 0 OR read_at IS NULL) AND id < $4 ORDER BY id DESC LIMIT $5"
    );
    let found = sqlx::query(&sql)
        .bind(user.0)
        .bind(account.0)
        .bind(i32::from(q.unread_only))
        .bind(q.cursor.unwrap_or(i64::MAX))
        .bind(i64::from(q.limit) + 1)
        .fetch_all(&mut *c)
        .await?;
    let items = found.iter().map(notification).collect::<Result<Vec<_>>>()?;
    let page = crate::paginate(items, q.limit, |n| n.id);
    let unread: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM notifications WHERE user_id = $1 AND account_id = $2 AND in_app = 1 AND read_at IS NULL",
    )
    .bind(user.0)
    .bind(account.0)
    .fetch_one(&mut *c)
    .await?;
    Ok(NotificationPage {
        items: page.items,
        next_cursor: page.next_cursor,
        unread: unread as u64,
    })
}

pub(super) async fn since(
    c: &mut PgConnection,
    account: AccountId,
    user: UserId,
    after: i64,
    limit: u32,
) -> Result<Vec<Notification>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM notifications WHERE user_id = $1 AND account_id = $2 AND in_app = 1 AND id > $3
         ORDER BY id LIMIT $4"
    );
    let found = sqlx::query(&sql)
        .bind(user.0)
        .bind(account.0)
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&mut *c)
        .await?;
    found.iter().map(notification).collect()
}

pub(super) async fn latest(c: &mut PgConnection, account: AccountId, user: UserId) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT coalesce(max(id), 0) FROM notifications WHERE user_id = $1 AND account_id = $2",
    )
    .bind(user.0)
    .bind(account.0)
    .fetch_one(&mut *c)
    .await?)
}

pub(super) async fn mark_read(
    c: &mut PgConnection,
    now: Timestamp,
    account: AccountId,
    user: UserId,
    ids: Option<Vec<i64>>,
) -> Result<u64> {
    let sql = "UPDATE notifications SET read_at = $1 WHERE user_id = $2 AND account_id = $3 AND read_at IS NULL";
    let changed = match ids {
        None => sqlx::query(sql)
            .bind(rows::ms(now))
            .bind(user.0)
            .bind(account.0)
            .execute(&mut *c)
            .await?
            .rows_affected(),
        Some(ids) => sqlx::query(&format!("{sql} AND id = ANY($4)"))
            .bind(rows::ms(now))
            .bind(user.0)
            .bind(account.0)
            .bind(ids)
            .execute(&mut *c)
            .await?
            .rows_affected(),
    };
    Ok(changed)
}

pub(super) async fn set_defaults(
    c: &mut PgConnection,
    account: AccountId,
    settings: &[PreferenceSetting],
) -> Result<()> {
    routing_state::settings_changed(c, account).await?;
    for s in settings {
        match s.setting.as_bool() {
            Some(on) => sqlx::query(
                "INSERT INTO notification_defaults (account_id, topic, method, enabled) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (account_id, topic, method) DO UPDATE SET enabled = $4",
            )
            .bind(account.0)
            .bind(s.topic.as_str())
            .bind(s.method.as_str())
            .bind(i32::from(on))
            .execute(&mut *c)
            .await?,
            None => sqlx::query(
                "DELETE FROM notification_defaults WHERE account_id = $1 AND topic = $2 AND method = $3",
            )
            .bind(account.0)
            .bind(s.topic.as_str())
            .bind(s.method.as_str())
            .execute(&mut *c)
            .await?,
        };
    }
    Ok(())
}

pub(super) async fn set_user(
    c: &mut PgConnection,
    account: AccountId,
    user: UserId,
    settings: &[PreferenceSetting],
) -> Result<()> {
    routing_state::settings_changed(c, account).await?;
    super::directory::get_user(c, account, user).await?;
    for s in settings {
        match s.setting.as_bool() {
            Some(on) => sqlx::query(
                "INSERT INTO notification_preferences (account_id, user_id, topic, method, enabled) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (user_id, topic, method) DO UPDATE SET enabled = $5",
            )
            .bind(account.0)
            .bind(user.0)
            .bind(s.topic.as_str())
            .bind(s.method.as_str())
            .bind(i32::from(on))
            .execute(&mut *c)
            .await?,
            None => sqlx::query(
                "DELETE FROM notification_preferences WHERE user_id = $1 AND account_id = $2 AND topic = $3 AND method = $4",
            )
            .bind(user.0)
            .bind(account.0)
            .bind(s.topic.as_str())
            .bind(s.method.as_str())
            .execute(&mut *c)
            .await?,
        };
    }
    Ok(())
}

pub(super) async fn apply_defaults(c: &mut PgConnection, account: AccountId) -> Result<u64> {
    routing_state::settings_changed(c, account).await?;
    Ok(
        sqlx::query("DELETE FROM notification_preferences WHERE account_id = $1")
            .bind(account.0)
            .execute(&mut *c)
            .await?
            .rows_affected(),
    )
}

pub(super) async fn set_email_settings(
    c: &mut PgConnection,
    account: AccountId,
    settings: &Map<String, Value>,
) -> Result<()> {
    routing_state::settings_changed(c, account).await?;
    sqlx::query(
        "INSERT INTO notification_email (account_id, settings) VALUES ($1, $2)
         ON CONFLICT (account_id) DO UPDATE SET settings = $2",
    )
    .bind(account.0)
    .bind(serde_json::to_string(settings).map_err(backend)?)
    .execute(&mut *c)
    .await?;
    Ok(())
}

pub(super) async fn emails(
    c: &mut PgConnection,
    account: AccountId,
    ids: &[i64],
) -> Result<Vec<EmailNotice>> {
    let found = sqlx::query(
        "SELECT n.id, n.ticket_id, n.topic, n.subject, n.actor_user_id, n.at, n.read_at, u.id, u.email, u.name
         FROM notifications n JOIN users u ON u.id = n.user_id WHERE n.id = ANY($1) AND n.account_id = $2 ORDER BY n.id",
    )
    .bind(ids)
    .bind(account.0)
    .fetch_all(&mut *c)
    .await?;
    found
        .iter()
        .map(|r| {
            Ok(EmailNotice {
                notification: notification(r)?,
                user_id: UserId(rows::get(r, 7)?),
                to: rows::value(r, 8)?,
                to_name: rows::value(r, 9)?,
            })
        })
        .collect()
}

#[async_trait::async_trait]
impl crate::Notifications for super::PgStore {
    async fn raise_notification(
        &self,
        account: AccountId,
        ticket: TicketId,
        actor: Actor,
        event: NotifyEvent,
    ) -> Result<()> {
        transaction!(self, |c, now| {
            let t = writes::get(c, account, ticket).await?;
            raise(c, now, account, &t, actor, &event).await
        })
    }

    async fn notifications(
        &self,
        account: AccountId,
        user: UserId,
        query: NotificationQuery,
    ) -> Result<NotificationPage> {
        let mut c = self.pool.acquire().await?;
        list(&mut c, account, user, query).await
    }

    async fn notifications_since(
        &self,
        account: AccountId,
        user: UserId,
        after: i64,
        limit: u32,
    ) -> Result<Vec<Notification>> {
        let mut c = self.pool.acquire().await?;
        since(&mut c, account, user, after, limit).await
    }

    async fn latest_notification_id(&self, account: AccountId, user: UserId) -> Result<i64> {
        let mut c = self.pool.acquire().await?;
        latest(&mut c, account, user).await
    }

    async fn mark_notifications_read(
        &self,
        account: AccountId,
        user: UserId,
        ids: Option<Vec<i64>>,
    ) -> Result<u64> {
        transaction!(self, |c, now| mark_read(c, now, account, user, ids.clone())
            .await)
    }

    async fn notification_defaults(&self, account: AccountId) -> Result<Preferences> {
        let mut c = self.pool.acquire().await?;
        let mut p = preferences(&mut c, account, Some(UserId(0))).await?;
        p.users.clear();
        Ok(p)
    }

    async fn set_notification_defaults(
        &self,
        account: AccountId,
        settings: Vec<PreferenceSetting>,
    ) -> Result<Preferences> {
        transaction!(self, |c, _now| {
            set_defaults(c, account, &settings).await?;
            let mut p = preferences(c, account, Some(UserId(0))).await?;
            p.users.clear();
            Ok(p)
        })
    }

    async fn notification_preferences(
        &self,
        account: AccountId,
        user: UserId,
    ) -> Result<Preferences> {
        let mut c = self.pool.acquire().await?;
        super::directory::get_user(&mut c, account, user).await?;
        preferences(&mut c, account, Some(user)).await
    }

    async fn set_notification_preferences(
        &self,
        account: AccountId,
        user: UserId,
        settings: Vec<PreferenceSetting>,
    ) -> Result<Preferences> {
        transaction!(self, |c, _now| {
            set_user(c, account, user, &settings).await?;
            preferences(c, account, Some(user)).await
        })
    }

    async fn apply_notification_defaults(&self, account: AccountId) -> Result<u64> {
        transaction!(self, |c, _now| apply_defaults(c, account).await)
    }

    async fn notification_email(&self, account: AccountId) -> Result<Map<String, Value>> {
        let mut c = self.pool.acquire().await?;
        email_settings(&mut c, account).await
    }

    async fn set_notification_email(
        &self,
        account: AccountId,
        settings: Map<String, Value>,
    ) -> Result<()> {
        transaction!(self, |c, _now| set_email_settings(c, account, &settings)
            .await)
    }

    async fn notification_emails(
        &self,
        account: AccountId,
        ids: Vec<i64>,
    ) -> Result<Vec<EmailNotice>> {
        let mut c = self.pool.acquire().await?;
        emails(&mut c, account, &ids).await
    }
}
