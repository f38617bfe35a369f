//! Notification rows: raised in the transaction of the change that caused
//! them (`raise`), the held e-mails' digest (`digest`), the in-app list,
//! preferences and defaults. Who is told and how is decided by
//! `switchboard_domain::notifications`; this module loads the facts and
//! writes what the domain returned. Same statements as
//! `postgres::notifications`, except that the people a notification may
//! tell come from the writer's kept copy (`kept`), not from a query each time.

use std::collections::HashMap;

use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Map, Value};
use switchboard_domain::notifications::{
    self as n, Candidates, EmailPlan, EmailState, Method, NotifyEvent, Person, PreferenceSetting,
    Preferences, Topic,
};
use switchboard_domain::{outbox::OutboxTopic, *};

use super::{backend, kept, rows, writes};
use crate::{EmailNotice, NotificationPage, NotificationQuery, Result};

/// The account's preferences and e-mail cap (see [`n::account_cap`]),
/// read once and kept until they change.
fn settings(c: &Connection, account: AccountId) -> Result<std::rc::Rc<kept::NotifySettings>> {
    if let Some(k) = kept::notify(account) {
        return Ok(k);
    }
    let prefs = preferences(c, account, None)?;
    let cap = n::account_cap(&email_settings(c, account)?);
    let k = std::rc::Rc::new((prefs, cap));
    kept::keep_notify(account, k.clone());
    Ok(k)
}

/// Every user of the account, by id, read once and kept until a user or a
/// team is written (`directory` drops the copy).
fn people(c: &Connection, account: AccountId) -> Result<std::rc::Rc<Vec<Person>>> {
    if let Some(k) = kept::people(account) {
        return Ok(k);
    }
    let list: Vec<Person> = c
        .prepare_cached(
            "SELECT u.id, u.name, u.email, u.help_desk_seat, u.deactivated,
                (SELECT group_concat(m.team_id) FROM team_members m WHERE m.user_id = u.id)
             FROM users u WHERE u.account_id = ?1 ORDER BY u.id",
        )?
        .query_map(params![account.0], person)?
        .collect::<rusqlite::Result<_>>()?;
    let k = std::rc::Rc::new(list);
    kept::keep_people(account, k.clone());
    Ok(k)
}

fn person(r: &rusqlite::Row<'_>) -> rusqlite::Result<Person> {
    let teams: Option<String> = r.get(5)?;
    Ok(Person {
        id: UserId(r.get(0)?),
        name: rows::value(r, 1)?,
        email: rows::value(r, 2)?,
        seated: r.get(3)?,
        deactivated: r.get(4)?,
        teams: teams
            .unwrap_or_default()
            .split(',')
            .filter_map(|t| t.parse().ok().map(TeamId))
            .collect(),
    })
}

/// Tells whoever `event` on `t` concerns, as the domain decides: one row
/// per user told, an outbox row per e-mail to send now, a digest job for
/// e-mails over the cap.
pub(super) fn raise(
    c: &Connection,
    now: Timestamp,
    account: AccountId,
    t: &Ticket,
    actor: Actor,
    event: &NotifyEvent,
) -> Result<()> {
    let candidates = n::candidates(event, t.owner.user_id);
    if matches!(candidates, Candidates::Nobody) {
        return Ok(());
    }
    let everyone = people(c, account)?;
    let people: &[Person] = match candidates {
        Candidates::One(user) => match everyone.binary_search_by_key(&user, |p| p.id) {
            Ok(i) => std::slice::from_ref(&everyone[i]),
            Err(_) => &[],
        },
        _ => &everyone,
    };
    let actor_user = match actor {
        Actor::User { user_id } => Some(user_id),
        _ => None,
    };
    let facts = n::TicketFacts {
        owner_user: t.owner.user_id,
        owner_team: t.owner.team_id,
        people,
        actor: actor_user,
    };
    let told = n::audience(event, &facts);
    if told.is_empty() {
        return Ok(());
    }
    let kept = settings(c, account)?;
    let (prefs, cap) = (&kept.0, kept.1);
    let (window, _) = n::cap_window(now);
    let mut sent = HashMap::new();
    // Without e-mail settings nobody is e-mailed: nothing to count.
    for (user, topic) in told.iter().filter(|_| cap.is_some()) {
        let count: u32 = c
            .prepare_cached(
                "SELECT count(*) FROM notifications WHERE user_id = ?1 AND topic = ?2 AND email_state = 'sent' AND at >= ?3",
            )?
            .query_row(params![user.0, topic.as_str(), rows::ms(window)], |r| r.get(0))?;
        sent.insert((*user, *topic), count);
    }
    for p in n::plan(&told, prefs, &sent, cap, now) {
        let state = match p.email {
            None => EmailState::None,
            Some(EmailPlan::Send) => EmailState::Sent,
            Some(EmailPlan::Hold { .. }) => EmailState::Held,
        };
        c.prepare_cached(
            "INSERT INTO notifications (account_id, user_id, ticket_id, topic, subject, actor_user_id, in_app, email_state, at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?
        .execute(params![
            account.0,
            p.user.0,
            t.id.0,
            p.topic.as_str(),
            t.subject,
            actor_user.map(|u| u.0),
            p.in_app,
            state.as_str(),
            rows::ms(now),
        ])?;
        let id = c.last_insert_rowid();
        match p.email {
            None => {}
            Some(EmailPlan::Send) => {
                let topic = OutboxTopic::NotifyEmail {
                    notification_id: id,
                };
                super::outbox::enqueue(c, now, account, &topic)?;
            }
            Some(EmailPlan::Hold { digest_at }) => {
                writes::schedule(c, account, JobKind::NotifyDigest, p.user.0, digest_at)?;
            }
        }
    }
    Ok(())
}

/// The digest job of `user`: every held e-mail becomes part of one digest
/// outbox row.
pub(super) fn digest(
    c: &Connection,
    now: Timestamp,
    account: AccountId,
    user: UserId,
) -> Result<()> {
    let ids: Vec<i64> = c
        .prepare_cached(
            "SELECT id FROM notifications WHERE user_id = ?1 AND account_id = ?2 AND email_state = 'held' ORDER BY id",
        )?
        .query_map(params![user.0, account.0], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    if ids.is_empty() {
        return Ok(());
    }
    c.prepare_cached(
        "UPDATE notifications SET email_state = 'digested' WHERE user_id = ?1 AND account_id = ?2 AND email_state = 'held'",
    )?
    .execute(params![user.0, account.0])?;
    let topic = OutboxTopic::NotifyDigest {
        user_id: user,
        notification_ids: ids,
    };
    super::outbox::enqueue(c, now, account, &topic)
}

const COLUMNS: &str = "id, ticket_id, topic, subject, actor_user_id, at, read_at";

fn notification(r: &rusqlite::Row<'_>) -> rusqlite::Result<Notification> {
    Ok(Notification {
        id: r.get(0)?,
        ticket_id: TicketId(r.get(1)?),
        topic: rows::parsed(r, 2)?,
        subject: r.get(3)?,
        actor_user_id: r.get::<_, Option<i64>>(4)?.map(UserId),
        at: rows::ts(r.get(5)?),
        read_at: r.get::<_, Option<i64>>(6)?.map(rows::ts),
    })
}

pub(super) fn list(
    c: &Connection,
    account: AccountId,
    user: UserId,
    q: NotificationQuery,
) -> Result<NotificationPage> {
    let sql = format!(
        "SELECT {COLUMNS} FROM notifications WHERE user_id = ?1 AND account_id = ?2 AND in_app = 1
           AND (?3 = 0 OR read_at IS NULL) AND id < ?4 ORDER BY id DESC LIMIT ?5"
    );
    let items = c
        .prepare_cached(&sql)?
        .query_map(
            params![
                user.0,
                account.0,
                q.unread_only,
                q.cursor.unwrap_or(i64::MAX),
                i64::from(q.limit) + 1
            ],
            notification,
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let page = crate::paginate(items, q.limit, |n| n.id);
    let unread: i64 = c
        .prepare_cached(
            "SELECT count(*) FROM notifications WHERE user_id = ?1 AND account_id = ?2 AND in_app = 1 AND read_at IS NULL",
        )?
        .query_row(params![user.0, account.0], |r| r.get(0))?;
    let unread = unread as u64;
    Ok(NotificationPage {
        items: page.items,
        next_cursor: page.next_cursor,
        unread,
    })
}

pub(super) fn since(
    c: &Connection,
    account: AccountId,
    user: UserId,
    after: i64,
    limit: u32,
) -> Result<Vec<Notification>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM notifications WHERE user_id = ?1 AND account_id = ?2 AND in_app = 1 AND id > ?3
         ORDER BY id LIMIT ?4"
    );
    let items = c
        .prepare_cached(&sql)?
        .query_map(params![user.0, account.0, after, limit], notification)?
        .collect::<rusqlite::Result<_>>()?;
    Ok(items)
}

pub(super) fn latest(c: &Connection, account: AccountId, user: UserId) -> Result<i64> {
    Ok(c.prepare_cached(
        "SELECT coalesce(max(id), 0) FROM notifications WHERE user_id = ?1 AND account_id = ?2",
    )?
    .query_row(params![user.0, account.0], |r| r.get(0))?)
}

pub(super) fn mark_read(
    c: &Connection,
    now: Timestamp,
    account: AccountId,
    user: UserId,
    ids: Option<Vec<i64>>,
) -> Result<u64> {
    let sql = "UPDATE notifications SET read_at = ?1 WHERE user_id = ?2 AND account_id = ?3 AND read_at IS NULL";
    let changed = match ids {
        None => c
            .prepare_cached(sql)?
            .execute(params![rows::ms(now), user.0, account.0])?,
        Some(ids) => {
            let mut changed = 0;
            let mut stmt = c.prepare_cached(&format!("{sql} AND id = ?4"))?;
            for id in ids {
                changed += stmt.execute(params![rows::ms(now), user.0, account.0, id])?;
            }
            changed
        }
    };
    Ok(changed as u64)
}

/// The account's defaults, and `user`'s own settings when given.
pub(super) fn preferences(
    c: &Connection,
    account: AccountId,
    user: Option<UserId>,
) -> Result<Preferences> {
    let mut prefs = Preferences::default();
    let mut stmt = c.prepare_cached(
        "SELECT topic, method, enabled FROM notification_defaults WHERE account_id = ?1",
    )?;
    let defaults = stmt.query_map([account.0], |r| {
        Ok((
            (rows::parsed::<Topic>(r, 0)?, rows::parsed::<Method>(r, 1)?),
            r.get(2)?,
        ))
    })?;
    for d in defaults {
        let (key, on) = d?;
        prefs.defaults.insert(key, on);
    }
    // Every user's settings when none is named: the audience of one event
    // is read with one statement rather than one per user.
    let mut stmt = c.prepare_cached(
        "SELECT user_id, topic, method, enabled FROM notification_preferences WHERE account_id = ?1 AND (?2 IS NULL OR user_id = ?2)",
    )?;
    let own = stmt.query_map(params![account.0, user.map(|u| u.0)], |r| {
        Ok((
            (
                UserId(r.get(0)?),
                rows::parsed::<Topic>(r, 1)?,
                rows::parsed::<Method>(r, 2)?,
            ),
            r.get(3)?,
        ))
    })?;
    for o in own {
        let (key, on) = o?;
        prefs.users.insert(key, on);
    }
    Ok(prefs)
}

pub(super) fn set_defaults(
    c: &Connection,
    account: AccountId,
    settings: &[PreferenceSetting],
) -> Result<()> {
    kept::forget_notify(account);
    for s in settings {
        match s.setting.as_bool() {
            Some(on) => c
                .prepare_cached(
                    "INSERT INTO notification_defaults (account_id, topic, method, enabled) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (account_id, topic, method) DO UPDATE SET enabled = ?4",
                )?
                .execute(params![account.0, s.topic.as_str(), s.method.as_str(), on])?,
            None => c
                .prepare_cached("DELETE FROM notification_defaults WHERE account_id = ?1 AND topic = ?2 AND method = ?3")?
                .execute(params![account.0, s.topic.as_str(), s.method.as_str()])?,
        };
    }
    Ok(())
}

pub(super) fn set_user(
    c: &Connection,
    account: AccountId,
    user: UserId,
    settings: &[PreferenceSetting],
) -> Result<()> {
    super::directory::get_user(c, account, user)?;
    kept::forget_notify(account);
    for s in settings {
        match s.setting.as_bool() {
            Some(on) => c
                .prepare_cached(
                    "INSERT INTO notification_preferences (account_id, user_id, topic, method, enabled) VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (user_id, topic, method) DO UPDATE SET enabled = ?5",
                )?
                .execute(params![account.0, user.0, s.topic.as_str(), s.method.as_str(), on])?,
            None => c
                .prepare_cached("DELETE FROM notification_preferences WHERE user_id = ?1 AND account_id = ?2 AND topic = ?3 AND method = ?4")?
                .execute(params![user.0, account.0, s.topic.as_str(), s.method.as_str()])?,
        };
    }
    Ok(())
}

pub(super) fn apply_defaults(c: &Connection, account: AccountId) -> Result<u64> {
    kept::forget_notify(account);
    Ok(
        c.prepare_cached("DELETE FROM notification_preferences WHERE account_id = ?1")?
            .execute([account.0])? as u64,
    )
}

pub(super) fn email_settings(c: &Connection, account: AccountId) -> Result<Map<String, Value>> {
    let stored: Option<String> = c
        .prepare_cached("SELECT settings FROM notification_email WHERE account_id = ?1")?
        .query_row([account.0], |r| r.get(0))
        .optional()?;
    match stored {
        Some(s) => serde_json::from_str(&s).map_err(backend),
        None => Ok(Map::new()),
    }
}

pub(super) fn set_email_settings(
    c: &Connection,
    account: AccountId,
    settings: &Map<String, Value>,
) -> Result<()> {
    kept::forget_notify(account);
    c.prepare_cached(
        "INSERT INTO notification_email (account_id, settings) VALUES (?1, ?2)
         ON CONFLICT (account_id) DO UPDATE SET settings = ?2",
    )?
    .execute(params![
        account.0,
        serde_json::to_string(settings).map_err(backend)?
    ])?;
    Ok(())
}

pub(super) fn emails(c: &Connection, account: AccountId, ids: &[i64]) -> Result<Vec<EmailNotice>> {
    let sql = "SELECT n.id, n.ticket_id, n.topic, n.subject, n.actor_user_id, n.at, n.read_at, u.id, u.email, u.name
         FROM notifications n JOIN users u ON u.id = n.user_id WHERE n.id = ?1 AND n.account_id = ?2";
    let mut out = Vec::new();
    let mut stmt = c.prepare_cached(sql)?;
    for id in ids {
        let found = stmt
            .query_row(params![id, account.0], |r| {
                Ok(EmailNotice {
                    notification: notification(r)?,
                    user_id: UserId(r.get(7)?),
                    to: rows::value(r, 8)?,
                    to_name: rows::value(r, 9)?,
                })
            })
            .optional()?;
        out.extend(found);
    }
    Ok(out)
}

#[async_trait::async_trait]
impl crate::Notifications for super::SqliteStore {
    async fn raise_notification(
        &self,
        account: AccountId,
        ticket: TicketId,
        actor: Actor,
        event: NotifyEvent,
    ) -> Result<()> {
        self.write(move |c, now| {
            let t = writes::get(c, account, ticket)?;
            raise(c, now, account, &t, actor, &event)
        })
        .await
    }

    async fn notifications(
        &self,
        account: AccountId,
        user: UserId,
        query: NotificationQuery,
    ) -> Result<NotificationPage> {
        self.read(move |c| list(c, account, user, query)).await
    }

    async fn notifications_since(
        &self,
        account: AccountId,
        user: UserId,
        after: i64,
        limit: u32,
    ) -> Result<Vec<Notification>> {
        self.read(move |c| since(c, account, user, after, limit))
            .await
    }

    async fn latest_notification_id(&self, account: AccountId, user: UserId) -> Result<i64> {
        self.read(move |c| latest(c, account, user)).await
    }

    async fn mark_notifications_read(
        &self,
        account: AccountId,
        user: UserId,
        ids: Option<Vec<i64>>,
    ) -> Result<u64> {
        self.write(move |c, now| mark_read(c, now, account, user, ids))
            .await
    }

    async fn notification_defaults(&self, account: AccountId) -> Result<Preferences> {
        self.read(move |c| {
            let mut p = preferences(c, account, Some(UserId(0)))?;
            p.users.clear();
            Ok(p)
        })
        .await
    }

    async fn set_notification_defaults(
        &self,
        account: AccountId,
        settings: Vec<PreferenceSetting>,
    ) -> Result<Preferences> {
        self.write(move |c, _| {
            set_defaults(c, account, &settings)?;
            let mut p = preferences(c, account, Some(UserId(0)))?;
            p.users.clear();
            Ok(p)
        })
        .await
    }

    async fn notification_preferences(
        &self,
        account: AccountId,
        user: UserId,
    ) -> Result<Preferences> {
        self.read(move |c| {
            super::directory::get_user(c, account, user)?;
            preferences(c, account, Some(user))
        })
        .await
    }

    async fn set_notification_preferences(
        &self,
        account: AccountId,
        user: UserId,
        settings: Vec<PreferenceSetting>,
    ) -> Result<Preferences> {
        self.write(move |c, _| {
            set_user(c, account, user, &settings)?;
            preferences(c, account, Some(user))
        })
        .await
    }

    async fn apply_notification_defaults(&self, account: AccountId) -> Result<u64> {
        self.write(move |c, _| apply_defaults(c, account)).await
    }

    async fn notification_email(&self, account: AccountId) -> Result<Map<String, Value>> {
        self.read(move |c| email_settings(c, account)).await
    }

    async fn set_notification_email(
        &self,
        account: AccountId,
        settings: Map<String, Value>,
    ) -> Result<()> {
        self.write(move |c, _| set_email_settings(c, account, &settings))
            .await
    }

    async fn notification_emails(
        &self,
        account: AccountId,
        ids: Vec<i64>,
    ) -> Result<Vec<EmailNotice>> {
        self.read(move |c| emails(c, account, &ids)).await
    }
}
