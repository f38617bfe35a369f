//! The outbox dispatcher: runs the transactional outbox's due rows (sending
//! agent replies, notification e-mails and digests, workflow steps and
//! webhooks) after the change that wrote them has committed.
//!
//! A workflow step is run by the store in a transaction of its own
//! (`Workflows::run_workflow_step`), which checks the enrollment's step
//! count first: a row run twice runs its step once. A step row given up
//! after its retries ends the enrollment `failed`, recorded in the ticket's
//! history.
//!
//! It wakes every [`DispatcherConfig::poll`] or as soon as a local write
//! calls [`AppState::wake_dispatcher`], claims as many due rows as it has
//! free slots (each claim leases the row, see `switchboard_store::Outbox`),
//! and runs each one in its own task, bounded by
//! [`DispatcherConfig::attempt_timeout`], so a relay that accepts the
//! connection and never answers holds one slot for that long and delays
//! nothing else.
//!
//! Delivery is **at least once**: the outcome is recorded after the send,
//! so a crash between the two resends the reply once the lease has run out.
//! An e-mail resent that way carries the Message-ID fixed when the reply was
//! stored, so receivers can drop the duplicate; a WhatsApp reply records its
//! wamid right after sending, and a run that finds it sends nothing.
//!
//! Every node runs one; on PostgreSQL the claims (`FOR UPDATE SKIP LOCKED`)
//! keep two nodes off the same row.

use std::{sync::Arc, time::Duration};

use switchboard_domain::outbox::{AfterFailure, OutboxEntry, OutboxTopic, RetryPolicy};
use switchboard_domain::{ChannelKind, MessageId, TicketId};
use switchboard_store::{OutboxOutcome, OutboxState, StoreError};
use tokio::sync::Semaphore;

use crate::{AppState, outbound::DeliveryError};

/// How the dispatcher runs. `Default` is the production setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DispatcherConfig {
    /// Backoff between attempts and when to give up.
    pub policy: RetryPolicy,
    /// The longest one attempt may take (a hanging relay is cut off then,
    /// and retried).
    pub attempt_timeout: Duration,
    /// How long a claim keeps other runners off a row. Longer than an
    /// attempt, so a live runner always records its outcome first.
    pub lease: Duration,
    /// How often to look for due rows without being woken.
    pub poll: Duration,
    /// How many rows run at once.
    pub concurrency: usize,
    /// The most workflow steps one ticket runs in any hour (across its
    /// workflows); a step past it waits for the window to move.
    pub workflow_steps_per_hour: u32,
}

impl Default for DispatcherConfig {
    fn default() -> Self {
        Self {
            policy: RetryPolicy::default(),
            attempt_timeout: Duration::from_secs(10),
            lease: Duration::from_secs(30),
            poll: Duration::from_millis(200),
            concurrency: 16,
            workflow_steps_per_hour:
                switchboard_domain::workflows::execution::DEFAULT_STEPS_PER_TICKET_PER_HOUR,
        }
    }
}

/// How often the gauge of failed rows is refreshed.
const GAUGE_EVERY: Duration = Duration::from_secs(5);

/// Runs the dispatcher until the server starts shutting down, then waits
/// (at most one attempt's timeout) for the rows in flight to finish.
pub async fn run(state: AppState) {
    let config = state.dispatcher;
    let slots = Arc::new(Semaphore::new(config.concurrency.max(1)));
    let stopping = state.stopping();
    tokio::pin!(stopping);
    let mut gauge = tokio::time::interval(GAUGE_EVERY);
    gauge.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = &mut stopping => break,
            () = state.outbox_wake.notified() => {}
            () = tokio::time::sleep(config.poll) => {}
            _ = gauge.tick() => refresh_gauge(&state).await,
        }
        if !claim_and_spawn(&state, &slots).await {
            break;
        }
    }
    // Rows in flight finish (each is bounded by the attempt timeout) before
    // the store is closed, so their outcomes are recorded.
    let all = u32::try_from(config.concurrency.max(1)).unwrap_or(u32::MAX);
    let _ = slots.acquire_many(all).await;
}

/// Claims due rows while there are free slots; `false` once the store is
/// shutting down.
async fn claim_and_spawn(state: &AppState, slots: &Arc<Semaphore>) -> bool {
    loop {
        let free = slots.available_permits();
        if free == 0 {
            // Every slot is busy: claim nothing, so no lease runs out unused.
            return true;
        }
        let rows = match state
            .store
            .claim_outbox(
                u32::try_from(free).unwrap_or(u32::MAX),
                state.dispatcher.lease,
            )
            .await
        {
            Ok(rows) => rows,
            Err(StoreError::ShuttingDown) => return false,
            Err(e) => {
                tracing::error!(error = %e, "cannot claim outbox rows");
                return true;
            }
        };
        if rows.is_empty() {
            return true;
        }
        for row in rows {
            let Ok(permit) = slots.clone().try_acquire_owned() else {
                // Cannot happen (only this loop takes slots, and it claimed
                // no more than were free); the lease brings the row back.
                tracing::warn!(row = row.id, "no free dispatcher slot for a claimed row");
                continue;
            };
            let state = state.clone();
            tokio::spawn(async move {
                run_row(&state, row).await;
                drop(permit);
            });
        }
    }
}

async fn refresh_gauge(state: &AppState) {
    if let Ok(n) = state.store.count_outbox(OutboxState::Failed).await {
        metrics::gauge!("switchboard_outbox_failed_rows").set(n as f64);
    }
}

/// Runs one claimed row and records how it went.
async fn run_row(state: &AppState, row: OutboxEntry) {
    let topic = row.topic.name();
    let outcome = match run_topic(state, &row).await {
        Ok(()) => {
            metrics::counter!("switchboard_outbox_delivered_total", "topic" => topic).increment(1);
            OutboxOutcome::Done
        }
        Err(e) => {
            let error = e.to_string();
            let after = match &e {
                DeliveryError::Transient(_) => state
                    .dispatcher
                    .policy
                    .after_failure(row.attempts, rand::random::<f64>()),
                DeliveryError::Permanent(_) => AfterFailure::GiveUp,
            };
            match after {
                AfterFailure::RetryIn(after) => {
                    metrics::counter!("switchboard_outbox_retries_total", "topic" => topic)
                        .increment(1);
                    tracing::warn!(row = row.id, topic, attempt = row.attempts, retry_in_ms = after.as_millis() as u64, %error, "outbox row failed; will retry");
                    OutboxOutcome::Retry { after, error }
                }
                AfterFailure::GiveUp => {
                    metrics::counter!("switchboard_outbox_failed_total", "topic" => topic)
                        .increment(1);
                    tracing::error!(row = row.id, topic, attempt = row.attempts, %error, "outbox row failed for good");
                    OutboxOutcome::Failed { error }
                }
            }
        }
    };
    let failed = matches!(outcome, OutboxOutcome::Failed { .. });
    if let (OutboxOutcome::Failed { error }, OutboxTopic::WorkflowStep { enrollment_id, seq }) =
        (&outcome, &row.topic)
        && let Err(e) = state
            .store
            .fail_workflow_step(row.account_id, *enrollment_id, *seq, error.clone())
            .await
    {
        tracing::error!(row = row.id, error = %e, "cannot record a failed workflow step");
    }
    let more = matches!(row.topic, OutboxTopic::WorkflowStep { .. });
    match state
        .store
        .complete_outbox(row.id, row.attempts, outcome)
        .await
    {
        Ok(true) => {}
        // Our lease ran out and another runner has the row: its outcome wins.
        Ok(false) => tracing::warn!(row = row.id, "outbox row was claimed again meanwhile"),
        // The lease brings the row back; at worst it runs once more.
        Err(e) => tracing::error!(row = row.id, error = %e, "cannot record an outbox outcome"),
    }
    if failed {
        refresh_gauge(state).await;
    }
    if more {
        // A step often queues the next one (or a webhook) due now.
        state.outbox_wake.notify_one();
    }
}

async fn run_topic(state: &AppState, row: &OutboxEntry) -> Result<(), DeliveryError> {
    match row.topic {
        OutboxTopic::DeliverReply {
            ticket_id,
            message_id,
        } => deliver_reply(state, row, ticket_id, message_id).await,
        OutboxTopic::NotifyEmail { notification_id } => {
            let send = crate::outbound::notify::send_one(
                state.store.as_ref(),
                row.account_id,
                notification_id,
                state.public_url.as_deref(),
            );
            bounded(state, send).await
        }
        OutboxTopic::NotifyDigest {
            user_id,
            ref notification_ids,
        } => {
            let send = crate::outbound::notify::send_digest(
                state.store.as_ref(),
                row.account_id,
                user_id,
                notification_ids.clone(),
                state.public_url.as_deref(),
            );
            bounded(state, send).await
        }
        OutboxTopic::WorkflowStep { enrollment_id, seq } => {
            let run = async {
                state
                    .store
                    .run_workflow_step(
                        row.account_id,
                        enrollment_id,
                        seq,
                        state.dispatcher.workflow_steps_per_hour,
                    )
                    .await
                    .map_err(|e| DeliveryError::Transient(format!("workflow step: {e}")))
            };
            bounded(state, run).await
        }
        OutboxTopic::WorkflowWebhook {
            workflow_id,
            ref action_id,
            ref url,
            ref body,
        } => {
            let secret = match state
                .store
                .workflow_secret(row.account_id, workflow_id, action_id.clone())
                .await
            {
                Ok(secret) => secret,
                Err(e) => return Err(load_failed("workflow", e)),
            };
            let send = crate::outbound::webhook::post(url, body, secret.as_deref(), row.id);
            bounded(state, send).await
        }
    }
}

/// Runs one attempt under the dispatcher's attempt timeout.
async fn bounded(
    state: &AppState,
    attempt: impl std::future::Future<Output = Result<(), DeliveryError>>,
) -> Result<(), DeliveryError> {
    match tokio::time::timeout(state.dispatcher.attempt_timeout, attempt).await {
        Ok(result) => result,
        Err(_) => Err(DeliveryError::Transient(format!(
            "no answer within {} s",
            state.dispatcher.attempt_timeout.as_secs_f64()
        ))),
    }
}

/// A store failure while loading what a row needs: a missing record will
/// not come back, anything else may pass later.
fn load_failed(what: &str, e: StoreError) -> DeliveryError {
    match e {
        StoreError::NotFound(_) => DeliveryError::Permanent(format!("{what} not found")),
        e => DeliveryError::Transient(format!("cannot read the {what}: {e}")),
    }
}

async fn deliver_reply(
    state: &AppState,
    row: &OutboxEntry,
    ticket_id: TicketId,
    message_id: MessageId,
) -> Result<(), DeliveryError> {
    let account = row.account_id;
    let store = state.store.as_ref();
    let ticket = store
        .get_ticket(account, ticket_id)
        .await
        .map_err(|e| load_failed("ticket", e))?;
    let channel_id = ticket
        .channel_id
        .ok_or_else(|| DeliveryError::Permanent("the ticket has no channel".into()))?;
    let channel = store
        .get_channel(account, channel_id)
        .await
        .map_err(|e| load_failed("channel", e))?;
    let message = store
        .list_messages(account, ticket_id)
        .await
        .map_err(|e| load_failed("conversation", e))?
        .into_iter()
        .find(|m| m.id == message_id)
        .ok_or_else(|| DeliveryError::Permanent("the reply no longer exists".into()))?;
    if channel.kind == ChannelKind::Whatsapp && message.external_id.is_some() {
        // Sent before (its wamid is recorded) and the outcome was lost.
        return Ok(());
    }
    let kind = channel.kind.as_str();
    let attempt = state
        .deliver
        .deliver(store, account, &channel, &ticket, &message);
    let result = match tokio::time::timeout(state.dispatcher.attempt_timeout, attempt).await {
        Ok(result) => result,
        Err(_) => Err(DeliveryError::Transient(format!(
            "no answer within {} s",
            state.dispatcher.attempt_timeout.as_secs_f64()
        ))),
    };
    let delivered = match result {
        Ok(delivered) => delivered,
        Err(e) => {
            metrics::counter!("switchboard_replies_failed_total", "channel" => kind).increment(1);
            return Err(e);
        }
    };
    metrics::counter!("switchboard_replies_delivered_total", "channel" => kind).increment(1);
    if let Some(external_id) = delivered.external_id {
        // The reply is out: failing now would send it again, so a problem
        // recording its id is only logged.
        match store
            .set_message_external_id(account, message.id, external_id)
            .await
        {
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(ticket = %ticket.id, message = %message.id, error = %e, "cannot record the sent reply's id")
            }
        }
    }
    Ok(())
}
