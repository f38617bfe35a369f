//! Notifications: preferences and defaults stored and resolved, rows
//! written in the change's transaction (in-app, outbox e-mail, held for the
//! digest), read marks, isolation.

use switchboard_domain::{
    notifications::{Method, NotifyEvent, PreferenceSetting, Setting, Source, Topic},
    outbox::OutboxTopic,
    *,
};

use super::*;
use crate::{NotificationQuery, OutboxState};

fn setting(topic: Topic, method: Method, setting: Setting) -> PreferenceSetting {
    PreferenceSetting {
        topic,
        method,
        setting,
    }
}

fn all() -> NotificationQuery {
    NotificationQuery {
        unread_only: false,
        cursor: None,
        limit: 100,
    }
}

async fn topics(store: &dyn Store, a: AccountId, u: &User) -> Vec<(Topic, TicketId)> {
    let mut items: Vec<_> = store
        .notifications(a, u.id, all())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|n| (n.topic, n.ticket_id))
        .collect();
    items.reverse();
    items
}

/// The notification e-mails in the outbox, as notification ids.
async fn emailed(store: &dyn Store, a: AccountId) -> Vec<i64> {
    let mut ids: Vec<i64> = store
        .list_outbox(a, Some(OutboxState::Pending), 200)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|r| match r.topic {
            OutboxTopic::NotifyEmail { notification_id } => Some(notification_id),
            _ => None,
        })
        .collect();
    ids.sort();
    ids
}

pub async fn preferences_resolve_user_over_default_over_built_in(store: &dyn Store) {
    let (a, _) = account(store, "acme").await;
    let ana = agent(store, a, "Ana").await;
    let (b, _) = account(store, "other").await;
    let p = store.notification_preferences(a, ana.id).await.unwrap();
    assert_eq!(
        p.resolve(ana.id, Topic::NewUnassigned, Method::Email).1,
        Source::BuiltIn
    );
    store
        .set_notification_defaults(
            a,
            vec![setting(Topic::NewUnassigned, Method::Email, Setting::On)],
        )
        .await
        .unwrap();
    let p = store
        .set_notification_preferences(
            a,
            ana.id,
            vec![setting(Topic::Mentioned, Method::InApp, Setting::Off)],
        )
        .await
        .unwrap();
    assert_eq!(
        p.resolve(ana.id, Topic::NewUnassigned, Method::Email),
        (true, Source::AccountDefault)
    );
    assert_eq!(
        p.resolve(ana.id, Topic::Mentioned, Method::InApp),
        (false, Source::User)
    );
    // Unset goes back to the default; defaults of one account stay there.
    let p = store
        .set_notification_preferences(
            a,
            ana.id,
            vec![setting(Topic::Mentioned, Method::InApp, Setting::Unset)],
        )
        .await
        .unwrap();
    assert!(p.users.is_empty());
    assert!(
        store
            .notification_defaults(b)
            .await
            .unwrap()
            .defaults
            .is_empty()
    );
    assert!(matches!(
        store.notification_preferences(b, ana.id).await,
        Err(crate::StoreError::NotFound(_))
    ));
    store
        .set_notification_preferences(
            a,
            ana.id,
            vec![setting(Topic::Mentioned, Method::Email, Setting::Off)],
        )
        .await
        .unwrap();
    assert_eq!(store.apply_notification_defaults(b).await.unwrap(), 0);
    assert_eq!(store.apply_notification_defaults(a).await.unwrap(), 1);
    assert!(
        store
            .notification_preferences(a, ana.id)
            .await
            .unwrap()
            .users
            .is_empty()
    );
}

pub async fn changes_write_notifications_in_their_transaction(store: &dyn Store) {
    let (a, admin) = account(store, "acme").await;
    let ana = agent(store, a, "Ana").await;
    let bob = agent(store, a, "Bob").await;
    // E-mails are planned once the account has its e-mail settings.
    let mut relay = serde_json::Map::new();
    relay.insert("hourly_cap".into(), serde_json::json!(20));
    store.set_notification_email(a, relay).await.unwrap();
    store
        .set_notification_preferences(
            a,
            bob.id,
            vec![setting(Topic::AssignedToMe, Method::Email, Setting::Off)],
        )
        .await
        .unwrap();
    let t = ticket(store, a, &admin, "Refund").await;
    assert_eq!(topics(store, a, &ana).await, [(Topic::NewUnassigned, t.id)]);
    assert!(topics(store, a, &admin).await.is_empty(), "not the creator");
    assert!(
        emailed(store, a).await.is_empty(),
        "no e-mail for new tickets by default"
    );
    store
        .set_owner(
            a,
            t.id,
            Owner {
                user_id: Some(ana.id),
                team_id: None,
            },
            by(&bob),
        )
        .await
        .unwrap();
    store
        .set_owner(
            a,
            t.id,
            Owner {
                user_id: Some(bob.id),
                team_id: None,
            },
            by(&ana),
        )
        .await
        .unwrap();
    let ana_page = store.notifications(a, ana.id, all()).await.unwrap();
    assert_eq!(ana_page.items[0].topic, Topic::AssignedToMe);
    assert_eq!(ana_page.items[0].actor_user_id, Some(bob.id));
    assert_eq!(ana_page.items[0].subject, "Refund");
    assert_eq!(
        emailed(store, a).await,
        [ana_page.items[0].id],
        "Bob turned assignment e-mails off"
    );
    assert_eq!(
        topics(store, a, &bob).await.last(),
        Some(&(Topic::AssignedToMe, t.id))
    );
    store
        .add_message(
            a,
            t.id,
            crate::NewMessage {
                kind: MessageKind::Note,
                author: by(&bob),
                body: "@Ana see this".into(),
                external_id: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        topics(store, a, &ana).await.last(),
        Some(&(Topic::Mentioned, t.id))
    );
    store
        .raise_notification(a, t.id, Actor::System, NotifyEvent::FirstReplyOverdue)
        .await
        .unwrap();
    assert_eq!(
        topics(store, a, &bob).await.last(),
        Some(&(Topic::FirstReplyOverdue, t.id))
    );
    let emails = store
        .notification_emails(a, emailed(store, a).await)
        .await
        .unwrap();
    assert!(
        emails
            .iter()
            .all(|e| e.to.as_str().ends_with("@acme.example"))
    );
    let (b, _) = account(store, "other").await;
    assert!(
        store
            .notification_emails(b, emailed(store, a).await)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        store
            .raise_notification(b, t.id, Actor::System, NotifyEvent::FirstReplyOverdue)
            .await,
        Err(crate::StoreError::NotFound(_))
    ));
}

pub async fn read_marks_count_and_stream_order(store: &dyn Store) {
    let (a, admin) = account(store, "acme").await;
    let ana = agent(store, a, "Ana").await;
    for s in ["A", "B", "C"] {
        ticket(store, a, &admin, s).await;
    }
    let page = store.notifications(a, ana.id, all()).await.unwrap();
    assert_eq!(page.unread, 3);
    let since = store.notifications_since(a, ana.id, 0, 10).await.unwrap();
    let ids: Vec<i64> = since.iter().map(|n| n.id).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(
        store.latest_notification_id(a, ana.id).await.unwrap(),
        ids[2]
    );
    assert_eq!(
        store
            .mark_notifications_read(a, admin.id, Some(vec![ids[0]]))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .mark_notifications_read(a, ana.id, Some(vec![ids[0]]))
            .await
            .unwrap(),
        1
    );
    let unread = NotificationQuery {
        unread_only: true,
        ..all()
    };
    assert_eq!(
        store
            .notifications(a, ana.id, unread)
            .await
            .unwrap()
            .items
            .len(),
        2
    );
    assert_eq!(
        store
            .mark_notifications_read(a, ana.id, None)
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        store.notifications(a, ana.id, all()).await.unwrap().unread,
        0
    );
    let first = NotificationQuery { limit: 2, ..all() };
    let p1 = store.notifications(a, ana.id, first).await.unwrap();
    let cursor = p1.next_cursor.unwrap().parse().unwrap();
    let p2 = store
        .notifications(
            a,
            ana.id,
            NotificationQuery {
                cursor: Some(cursor),
                ..first
            },
        )
        .await
        .unwrap();
    assert_eq!(p2.items.len(), 1);
}

pub async fn e_mails_over_the_cap_wait_for_one_digest(f: &Fixture) {
    let store = f.store.as_ref();
    let (a, admin) = account(store, "acme").await;
    let ana = agent(store, a, "Ana").await;
    let mut relay = serde_json::Map::new();
    relay.insert("hourly_cap".into(), serde_json::json!(1));
    store.set_notification_email(a, relay).await.unwrap();
    for s in ["A", "B", "C"] {
        let t = ticket(store, a, &admin, s).await;
        store
            .set_owner(
                a,
                t.id,
                Owner {
                    user_id: Some(ana.id),
                    team_id: None,
                },
                by(&admin),
            )
            .await
            .unwrap();
    }
    assert_eq!(emailed(store, a).await.len(), 1);
    store.run_due_jobs().await.unwrap();
    f.clock.advance(jiff::SignedDuration::from_hours(1));
    store.run_due_jobs().await.unwrap();
    let digests: Vec<_> = store
        .list_outbox(a, Some(OutboxState::Pending), 200)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|r| match r.topic {
            OutboxTopic::NotifyDigest {
                user_id,
                notification_ids,
            } => Some((user_id, notification_ids.len())),
            _ => None,
        })
        .collect();
    assert_eq!(digests, [(ana.id, 2)]);
}

/// Who is told follows users written after an earlier notification: a new
/// user, a deactivation and a new name are seen by the next one (the
/// SQLite writer keeps the account's people between changes).
pub async fn the_audience_follows_users_written_since_the_last_notification(store: &dyn Store) {
    let (a, admin) = account(store, "acme").await;
    let ana = agent(store, a, "Ana").await;
    let t1 = ticket(store, a, &admin, "First").await;
    assert_eq!(
        topics(store, a, &ana).await,
        [(Topic::NewUnassigned, t1.id)]
    );
    let cy = agent(store, a, "Cy").await;
    let t2 = ticket(store, a, &admin, "Second").await;
    assert_eq!(topics(store, a, &cy).await, [(Topic::NewUnassigned, t2.id)]);
    store
        .update_user(
            a,
            ana.id,
            UserPatch {
                deactivated: Some(true),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    store
        .update_user(
            a,
            cy.id,
            UserPatch {
                name: Some("Dee".to_string().try_into().unwrap()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let t3 = ticket(store, a, &admin, "Third").await;
    assert_eq!(
        topics(store, a, &ana).await,
        [(Topic::NewUnassigned, t1.id), (Topic::NewUnassigned, t2.id)],
        "a deactivated user is not told"
    );
    store
        .add_message(
            a,
            t3.id,
            crate::NewMessage {
                kind: MessageKind::Note,
                author: by(&admin),
                body: "@Dee have a look".into(),
                external_id: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        topics(store, a, &cy).await.last(),
        Some(&(Topic::Mentioned, t3.id)),
        "mentioned by the new name"
    );
}
