//! The transactional outbox: rows written with the reply, claimed once under
//! a lease, outcomes fenced by the attempt count, manual retries.

use std::{collections::BTreeSet, sync::Arc, time::Duration};

use switchboard_domain::{input::*, outbox::*, *};

use super::*;
use crate::{NewMessage, OutboxOutcome, StoreError};

const LEASE: Duration = Duration::from_secs(60);

async fn channel(store: &dyn Store, a: AccountId, kind: ChannelKind, key: &str) -> Channel {
    store
        .create_channel(
            a,
            NewChannel {
                kind,
                name: name(key),
                settings: Default::default(),
            },
            key.into(),
        )
        .await
        .unwrap()
}

async fn ticket_on(
    store: &dyn Store,
    a: AccountId,
    who: &User,
    channel: Option<&Channel>,
) -> Ticket {
    let mut input = new_ticket("Help");
    input.channel_id = channel.map(|c| c.id);
    store
        .create_ticket(a, input, None, by(who))
        .await
        .unwrap()
        .value
}

async fn write(
    store: &dyn Store,
    a: AccountId,
    who: &User,
    t: TicketId,
    kind: MessageKind,
) -> Message {
    store
        .add_message(
            a,
            t,
            NewMessage {
                kind,
                author: by(who),
                body: "Hello".into(),
                external_id: None,
            },
        )
        .await
        .unwrap()
        .0
}

/// A reply on an e-mail or WhatsApp ticket writes one pending
/// `deliver_reply` row, in the account; notes, chat and API tickets do not.
pub async fn replies_on_sending_channels_enqueue_a_delivery(store: &dyn Store) {
    let (a, admin) = account(store, "acme").await;
    let (b, _) = account(store, "globex").await;
    let email = channel(store, a, ChannelKind::Email, "mail").await;
    let whatsapp = channel(store, a, ChannelKind::Whatsapp, "wa").await;
    let chat = channel(store, a, ChannelKind::Chat, "chat").await;
    let on_email = ticket_on(store, a, &admin, Some(&email)).await;
    let on_whatsapp = ticket_on(store, a, &admin, Some(&whatsapp)).await;
    let on_chat = ticket_on(store, a, &admin, Some(&chat)).await;
    let plain = ticket_on(store, a, &admin, None).await;
    let r1 = write(store, a, &admin, on_email.id, MessageKind::Reply).await;
    write(store, a, &admin, on_email.id, MessageKind::Note).await;
    let r2 = write(store, a, &admin, on_whatsapp.id, MessageKind::Reply).await;
    write(store, a, &admin, on_chat.id, MessageKind::Reply).await;
    write(store, a, &admin, plain.id, MessageKind::Reply).await;

    let rows = store
        .list_outbox(a, Some(OutboxState::Pending), 50)
        .await
        .unwrap();
    let topics: Vec<_> = rows.iter().map(|r| r.topic.clone()).collect();
    assert_eq!(
        topics,
        [
            OutboxTopic::DeliverReply {
                ticket_id: on_whatsapp.id,
                message_id: r2.id
            },
            OutboxTopic::DeliverReply {
                ticket_id: on_email.id,
                message_id: r1.id
            },
        ],
        "newest first"
    );
    assert!(rows.iter().all(|r| r.attempts == 0 && r.account_id == a));
    assert!(
        store
            .list_outbox(a, Some(OutboxState::Done), 50)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.list_outbox(a, None, 50).await.unwrap().len(), 2);
    assert!(store.list_outbox(b, None, 50).await.unwrap().is_empty());
}

/// Claims take due rows once (the lease hides them), outcomes need the
/// claim's attempt, retries come back, failures wait for a manual retry.
pub async fn claims_lease_rows_and_outcomes_are_fenced(store: &dyn Store) {
    let (a, admin) = account(store, "acme").await;
    let (b, _) = account(store, "globex").await;
    let email = channel(store, a, ChannelKind::Email, "mail").await;
    let t = ticket_on(store, a, &admin, Some(&email)).await;
    write(store, a, &admin, t.id, MessageKind::Reply).await;

    let claimed = store.claim_outbox(10, LEASE).await.unwrap();
    assert_eq!(claimed.len(), 1);
    let row = &claimed[0];
    assert_eq!(row.attempts, 1);
    assert!(row.run_at > row.created_at, "leased into the future");
    assert!(
        store.claim_outbox(10, LEASE).await.unwrap().is_empty(),
        "leased"
    );

    // A stale claim (another attempt number) records nothing.
    assert!(
        !store
            .complete_outbox(row.id, 7, OutboxOutcome::Done)
            .await
            .unwrap()
    );
    let retry = OutboxOutcome::Retry {
        after: Duration::ZERO,
        error: "relay: connection refused".into(),
    };
    assert!(store.complete_outbox(row.id, 1, retry).await.unwrap());
    let again = store.claim_outbox(10, LEASE).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempts, 2);
    assert_eq!(
        again[0].last_error.as_deref(),
        Some("relay: connection refused")
    );

    let later = OutboxOutcome::Retry {
        after: Duration::from_secs(3600),
        error: "still refused".into(),
    };
    assert!(store.complete_outbox(row.id, 2, later).await.unwrap());
    assert!(
        store.claim_outbox(10, LEASE).await.unwrap().is_empty(),
        "not due yet"
    );
    let pending = store
        .list_outbox(a, Some(OutboxState::Pending), 10)
        .await
        .unwrap();
    assert_eq!(pending[0].last_error.as_deref(), Some("still refused"));

    // Only a failed row can be retried by hand.
    assert!(matches!(
        store.retry_outbox(a, row.id).await,
        Err(StoreError::Conflict { field: "state", .. })
    ));
    let failed = OutboxOutcome::Failed {
        error: "550 no such user".into(),
    };
    assert!(store.complete_outbox(row.id, 2, failed).await.unwrap());
    let failed = store
        .list_outbox(a, Some(OutboxState::Failed), 10)
        .await
        .unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].last_error.as_deref(), Some("550 no such user"));
    assert_eq!(store.count_outbox(OutboxState::Failed).await.unwrap(), 1);
    assert!(
        store.claim_outbox(10, LEASE).await.unwrap().is_empty(),
        "failed rows stay"
    );

    assert!(matches!(
        store.retry_outbox(b, row.id).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.retry_outbox(a, row.id + 1000).await,
        Err(StoreError::NotFound(_))
    ));
    let retried = store.retry_outbox(a, row.id).await.unwrap();
    assert_eq!((retried.state, retried.attempts), (OutboxState::Pending, 0));
    assert_eq!(store.count_outbox(OutboxState::Failed).await.unwrap(), 0);
    let claimed = store.claim_outbox(10, LEASE).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert!(
        store
            .complete_outbox(row.id, 1, OutboxOutcome::Done)
            .await
            .unwrap()
    );
    let done = store
        .list_outbox(a, Some(OutboxState::Done), 10)
        .await
        .unwrap();
    assert_eq!(done.len(), 1);
    assert!(
        !store
            .complete_outbox(row.id, 1, OutboxOutcome::Done)
            .await
            .unwrap(),
        "done is final"
    );
}

/// A claim whose lease ran out (its runner died) is claimed again, and the
/// first runner can no longer record an outcome.
pub async fn an_expired_lease_comes_back(store: &dyn Store) {
    let (a, admin) = account(store, "acme").await;
    let email = channel(store, a, ChannelKind::Email, "mail").await;
    let t = ticket_on(store, a, &admin, Some(&email)).await;
    write(store, a, &admin, t.id, MessageKind::Reply).await;
    let first = store.claim_outbox(10, Duration::ZERO).await.unwrap();
    assert_eq!(first.len(), 1);
    let second = store.claim_outbox(10, LEASE).await.unwrap();
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].id, first[0].id);
    assert_eq!(second[0].attempts, 2);
    assert!(
        !store
            .complete_outbox(first[0].id, 1, OutboxOutcome::Done)
            .await
            .unwrap()
    );
    assert!(
        store
            .complete_outbox(first[0].id, 2, OutboxOutcome::Done)
            .await
            .unwrap()
    );
}

/// Runners claiming at the same time never take the same row.
pub async fn concurrent_claims_take_each_row_once(store: &dyn Store) {
    let (a, admin) = account(store, "acme").await;
    let email = channel(store, a, ChannelKind::Email, "mail").await;
    let t = ticket_on(store, a, &admin, Some(&email)).await;
    for _ in 0..20 {
        write(store, a, &admin, t.id, MessageKind::Reply).await;
    }
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    // The store is borrowed; run the claimers on this task, interleaved.
    let claim = |seen: Arc<std::sync::Mutex<Vec<i64>>>| async move {
        loop {
            let rows = store.claim_outbox(3, LEASE).await.unwrap();
            if rows.is_empty() {
                return;
            }
            seen.lock().unwrap().extend(rows.iter().map(|r| r.id));
        }
    };
    tokio::join!(
        claim(seen.clone()),
        claim(seen.clone()),
        claim(seen.clone()),
        claim(seen.clone()),
    );
    let seen = seen.lock().unwrap().clone();
    let unique: BTreeSet<_> = seen.iter().copied().collect();
    assert_eq!(seen.len(), 20, "{seen:?}");
    assert_eq!(unique.len(), 20, "{seen:?}");
}

/// A sent message's channel id is recorded once; another message cannot
/// take it, and other accounts' messages are not found.
pub async fn a_sent_reply_records_its_channel_id_once(store: &dyn Store) {
    let (a, admin) = account(store, "acme").await;
    let (b, _) = account(store, "globex").await;
    let wa = channel(store, a, ChannelKind::Whatsapp, "wa").await;
    let t = ticket_on(store, a, &admin, Some(&wa)).await;
    let first = write(store, a, &admin, t.id, MessageKind::Reply).await;
    let second = write(store, a, &admin, t.id, MessageKind::Reply).await;
    assert!(
        store
            .set_message_external_id(a, first.id, "wamid.A".into())
            .await
            .unwrap()
    );
    assert!(
        !store
            .set_message_external_id(a, first.id, "wamid.B".into())
            .await
            .unwrap()
    );
    assert!(matches!(
        store
            .set_message_external_id(a, second.id, "wamid.A".into())
            .await,
        Err(StoreError::Conflict {
            field: "external_id",
            ..
        })
    ));
    assert!(matches!(
        store
            .set_message_external_id(b, second.id, "wamid.C".into())
            .await,
        Err(StoreError::NotFound(_))
    ));
    let messages = store.list_messages(a, t.id).await.unwrap();
    assert_eq!(messages[0].external_id.as_deref(), Some("wamid.A"));
    assert_eq!(messages[1].external_id, None);
    assert_eq!(
        store
            .find_by_external_id(a, vec!["wamid.A".into()])
            .await
            .unwrap(),
        Some((t.id, first.id))
    );
}
