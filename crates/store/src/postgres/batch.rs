//! Routed creates of one account, run together: group commit at the
//! application level, the way SQLite's writer thread batches its writes.
//!
//! # Why
//!
//! Every routed create of an account holds the account's routing lock
//! from its first decision to its commit (the lock is what keeps loads exact
//! across nodes; see `routing`). So an account's routed creates run one
//! after the other, and their rate is one over the time one of them holds
//! the lock. Of that time, a good part is not the ticket's own work: the
//! `BEGIN`, taking the lock, reading the routing version, bumping it, and
//! the `COMMIT` with its WAL flush. Run together, the creates waiting on one
//! node share all of that: one transaction, one lock, one version read and
//! bump, one commit, for as many tickets as were waiting.
//!
//! # How
//!
//! Each account has a queue and a leader slot on this node. A create puts
//! itself in the queue, then waits for the slot. Whoever gets the slot
//! either finds its create already done by the previous leader (it was
//! queued in time to be taken), or takes everything queued, its own create
//! included, and runs it in one transaction, then whatever was queued
//! meanwhile, until the queue is empty. That runs on a task of its own, so
//! that a caller who goes away (a client that hangs up) cannot abandon the
//! others' creates halfway, nor leave its own queued with no one to run it.
//!
//! If any create of a batch fails (a rule of the ticket's, a lost race on
//! a contact's e-mail), the batch's transaction is rolled back and each of
//! its creates runs again in a transaction of its own, so one bad request
//! fails alone, exactly as it would unbatched. (Per-create savepoints would
//! cost two round trips each, under the lock, to save work only on the rare
//! failure.)

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use switchboard_domain::{AccountId, Actor, Ticket, input::NewTicket};
use tokio::sync::oneshot;

use super::{PgStore, routing_state, tickets, writes};
use crate::{Created, Result, StoreError};

/// One routed create waiting for its batch.
struct Pending {
    input: NewTicket,
    actor: Actor,
    answer: oneshot::Sender<Result<Created<Ticket>>>,
}

/// One account's queue on this node.
#[derive(Default)]
struct Queue {
    pending: Mutex<Vec<Pending>>,
    /// Held by the batch that is running; the next leader waits for it.
    leader: Arc<tokio::sync::Mutex<()>>,
}

/// The queues of routed creates on this node, by account.
#[derive(Default)]
pub struct RoutedCreates {
    queues: Mutex<HashMap<AccountId, Arc<Queue>>>,
    /// Transactions that ran more than one create, and those creates.
    batches: AtomicU64,
    batched: AtomicU64,
}

/// The most creates one transaction runs: a batch holds the account's lock
/// (and other nodes' routed creates of the account) for its whole length.
const MAX_BATCH: usize = 64;

impl RoutedCreates {
    fn queue(&self, account: AccountId) -> Arc<Queue> {
        let mut queues = self.queues.lock().unwrap_or_else(|e| e.into_inner());
        queues.entry(account).or_default().clone()
    }

    /// How many transactions ran several creates, and how many creates
    /// they ran.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.batches.load(Ordering::Relaxed),
            self.batched.load(Ordering::Relaxed),
        )
    }
}

impl PgStore {
    /// Creates a ticket on a routed channel, batched with the routed creates
    /// of the same account waiting on this node (see the module comment).
    pub(super) async fn create_routed(
        &self,
        account: AccountId,
        input: NewTicket,
        actor: Actor,
    ) -> Result<Created<Ticket>> {
        let queue = self.batches.queue(account);
        let (answer, mut answered) = oneshot::channel();
        queue
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Pending {
                input,
                actor,
                answer,
            });
        let slot = queue.leader.clone().lock_owned().await;
        // The previous leader took ours if it was queued before its batch
        // began; it answered before it let go of the slot.
        if let Ok(result) = answered.try_recv() {
            return result;
        }
        let take = |queue: &Queue| -> Vec<Pending> {
            let mut pending = queue.pending.lock().unwrap_or_else(|e| e.into_inner());
            let n = pending.len().min(MAX_BATCH);
            pending.drain(..n).collect()
        };
        let mut batch = take(&queue);
        let store = self.clone();
        tokio::spawn(async move {
            // Until the queue is empty: a create whose caller went away
            // while it waited for the slot is still queued, and must not
            // wait for the account's next create to run.
            while !batch.is_empty() {
                store.run_batch(account, batch).await;
                batch = take(&queue);
            }
            drop(slot);
        });
        answered.await.unwrap_or_else(|_| {
            Err(StoreError::Backend(
                "the routed create's batch ended without an answer".into(),
            ))
        })
    }

    /// Runs `batch` in one transaction, or each of its creates alone if any
    /// fails; answers every create.
    async fn run_batch(&self, account: AccountId, batch: Vec<Pending>) {
        metrics::histogram!("switchboard_postgres_routed_batch_size").record(batch.len() as f64);
        if batch.len() > 1
            && let Ok(created) = self
                .together(account, &batch)
                .await
                .inspect_err(|e| { tracing::debug!(error = %e, "a batch of routed creates failed; running them one by one") })
        {
            self.batches.batches.fetch_add(1, Ordering::Relaxed);
            (self.batches.batched).fetch_add(batch.len() as u64, Ordering::Relaxed);
            for (p, one) in batch.into_iter().zip(created) {
                let _ = p.answer.send(Ok(one));
            }
            return;
        }
        for p in batch {
            let one = self.alone(account, &p).await;
            let _ = p.answer.send(one);
        }
    }

    /// The creates of `batch` in one transaction (one lock, one commit).
    async fn together(
        &self,
        account: AccountId,
        batch: &[Pending],
    ) -> Result<Vec<Created<Ticket>>> {
        transaction!(self, |c, now| {
            routing_state::share_reads();
            let emails = batch
                .iter()
                .filter(|p| p.input.visitor_token.is_none())
                .filter_map(|p| p.input.contact.as_ref()?.email.as_ref())
                .map(|e| e.as_str().to_lowercase())
                .collect();
            tickets::prefetch_contacts(c, account, emails).await?;
            let mut created = Vec::with_capacity(batch.len());
            let mut rng = self.rng();
            for p in batch {
                let one =
                    tickets::create(c, now, account, p.input.clone(), None, p.actor, &mut rng);
                created.push(one.await?);
            }
            let deferred = routing_state::shared(|s| std::mem::take(&mut s.deferred));
            writes::flush_deferred(c, account, deferred.unwrap_or_default()).await?;
            Ok(created)
        })
    }

    /// One create in its own transaction.
    async fn alone(&self, account: AccountId, p: &Pending) -> Result<Created<Ticket>> {
        transaction!(self, |c, now| {
            tickets::create(
                c,
                now,
                account,
                p.input.clone(),
                None,
                p.actor,
                &mut self.rng(),
            )
            .await
        })
    }
}
