//! The durable event sequence: every change numbered in order, per account,
//! never skipped by a reader that resumes, and reset after retention.

use std::time::{Duration, Instant};

use switchboard_domain::*;

use super::*;
use crate::{EventsSince, SequencedEvent};

/// Reads the account's events after `after` until at least `n` arrived
/// (PostgreSQL numbers committed rows a moment after the commit).
async fn read_until(store: &dyn Store, a: AccountId, after: i64, n: usize) -> Vec<SequencedEvent> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut got = Vec::new();
    let mut cursor = after;
    loop {
        match store.events_since(a, cursor, 100).await.unwrap() {
            EventsSince::Events(batch) => {
                if let Some(last) = batch.last() {
                    cursor = last.seq;
                }
                got.extend(batch);
            }
            EventsSince::Reset { latest } => panic!("unexpected reset (latest {latest})"),
        }
        if got.len() >= n {
            return got;
        }
        assert!(
            Instant::now() < deadline,
            "only {} of {n} events: {got:?}",
            got.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Each history line is an event with a number; an account reads only its
/// own, in order, and can resume after any of them.
pub async fn the_event_log_numbers_every_change_in_order(store: &dyn Store) {
    let (a, admin) = account(store, "acme").await;
    let (b, other) = account(store, "globex").await;
    let start = store.latest_event_seq().await.unwrap();
    let t = ticket(store, a, &admin, "First").await;
    ticket(store, b, &other, "Theirs").await;
    store
        .set_owner(
            a,
            t.id,
            Owner {
                user_id: Some(admin.id),
                team_id: None,
            },
            by(&admin),
        )
        .await
        .unwrap();
    let events = read_until(store, a, start, 2).await;
    let kinds: Vec<_> = events.iter().map(|e| e.event.kind.as_str()).collect();
    assert_eq!(kinds, ["created", "assigned"], "{events:?}");
    assert!(events.iter().all(|e| e.event.account_id == a));
    assert!(events[0].seq < events[1].seq);
    // Resuming after the first gives exactly the second.
    let rest = read_until(store, a, events[0].seq, 1).await;
    assert_eq!(rest, events[1..]);
    assert!(store.latest_event_seq().await.unwrap() >= events[1].seq);
    let theirs = read_until(store, b, start, 1).await;
    assert_eq!(theirs.len(), 1);
    assert_eq!(theirs[0].event.account_id, b);
}

/// Writers committing concurrently (out of id order, on PostgreSQL) never
/// make a resuming reader skip an event.
pub async fn a_resuming_reader_never_skips_a_concurrent_commit(store: &dyn Store) {
    let (a, admin) = account(store, "acme").await;
    let start = store.latest_event_seq().await.unwrap();
    let writers = (0..8).map(|w| {
        let admin = admin.clone();
        async move {
            for n in 0..15 {
                ticket(store, a, &admin, &format!("t{w}-{n}")).await;
            }
        }
    });
    // The reader follows while the writers write.
    let reader = read_until(store, a, start, 120);
    let (seen, ()) = tokio::join!(reader, async {
        join_all(writers.collect()).await;
    });
    assert_eq!(seen.len(), 120, "{seen:?}");
    assert!(seen.windows(2).all(|w| w[0].seq < w[1].seq));
    let mut tickets: Vec<_> = seen.iter().map(|e| e.event.ticket_id).collect();
    tickets.sort();
    tickets.dedup();
    assert_eq!(tickets.len(), 120, "every ticket's creation, once");
}

/// Runs the futures concurrently on this task.
async fn join_all<F: std::future::Future<Output = ()>>(futures: Vec<F>) {
    let mut pinned: Vec<_> = futures.into_iter().map(Box::pin).collect();
    std::future::poll_fn(|cx| {
        pinned.retain_mut(|f| f.as_mut().poll(cx).is_pending());
        if pinned.is_empty() {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await
}

/// Retention deletes old events; a reader resuming from before them is
/// told to reset, one resuming from the newest number is not. (Moves the
/// fixture's clock past the old event rather than sleeping.)
pub async fn purged_events_reset_resuming_readers(f: &Fixture) {
    let store = f.store.as_ref();
    let (a, admin) = account(store, "acme").await;
    let start = store.latest_event_seq().await.unwrap();
    ticket(store, a, &admin, "Old").await;
    let old = read_until(store, a, start, 1).await;
    f.clock.advance(jiff::SignedDuration::from_millis(20));
    assert!(store.purge_events(Duration::ZERO).await.unwrap() >= 1);
    let latest = store.latest_event_seq().await.unwrap();
    assert!(latest >= old[0].seq);
    for stale in [start, old[0].seq - 1] {
        assert_eq!(
            store.events_since(a, stale, 10).await.unwrap(),
            EventsSince::Reset { latest },
            "resuming from {stale}"
        );
    }
    assert!(matches!(
        store.events_since(a, latest + 1000, 10).await.unwrap(),
        EventsSince::Reset { .. }
    ));
    assert_eq!(
        store.events_since(a, latest, 10).await.unwrap(),
        EventsSince::Events(vec![])
    );
    ticket(store, a, &admin, "New").await;
    let new = read_until(store, a, latest, 1).await;
    assert!(new[0].seq > latest, "numbers are never reused");
    assert_eq!(
        store.purge_events(Duration::from_secs(3600)).await.unwrap(),
        0,
        "recent events are kept"
    );
}
