//! The transactional outbox: work that must happen *after* a commit (send an
//! agent's reply by e-mail or WhatsApp; later: notifications, workflow steps,
//! customer-agent turns) is written as a row in the same transaction as the
//! change that calls for it, and a dispatcher runs it afterwards, retrying
//! with backoff. A crash between the commit and the work loses nothing: the
//! row is still there.
//!
//! This module holds the pure parts: what a row asks for ([`OutboxTopic`]),
//! where it stands ([`OutboxState`]), the stored record ([`OutboxEntry`]) and
//! the retry policy ([`RetryPolicy`]), a pure function of the attempt number
//! and an injected random fraction.

use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{AccountId, ChannelKind, MessageId, TicketId, UserId};

/// What an outbox row asks to be done. Serialised (tagged by `topic`) as the
/// row's payload; [`OutboxTopic::name`] is also stored in its own column so
/// rows can be listed and counted by topic without parsing JSON.
///
/// New kinds of deferred work (notifications, workflow steps, customer-agent
/// turns) are new variants; a dispatcher that does not know a variant fails
/// that row for good with a clear error rather than guessing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "topic", rename_all = "snake_case", deny_unknown_fields)]
pub enum OutboxTopic {
    /// Send a stored agent reply out through its ticket's channel.
    DeliverReply {
        /// The ticket.
        ticket_id: TicketId,
        /// The reply (a message of kind `reply`).
        message_id: MessageId,
    },
    /// E-mail one notification to its user through the account's relay.
    NotifyEmail {
        /// The notification (its user, ticket and topic are read from it).
        notification_id: i64,
    },
    /// E-mail one digest of the notifications held back by the hourly cap.
    NotifyDigest {
        /// Whom it is for.
        user_id: UserId,
        /// The notifications it summarises.
        notification_ids: Vec<i64>,
    },
    /// Run an enrollment's next workflow step. `seq` is how many steps the
    /// enrollment had run when this row was written: a step runs only if
    /// the enrollment is still there, so a row run twice (a lease that ran
    /// out, two nodes) changes nothing the second time.
    WorkflowStep {
        /// The enrollment.
        enrollment_id: crate::workflows::EnrollmentId,
        /// The enrollment's step count this row is for.
        seq: u32,
    },
    /// POST a workflow webhook (signed with the action's stored secret).
    WorkflowWebhook {
        /// The workflow.
        workflow_id: crate::workflows::WorkflowId,
        /// The webhook action (its secret is stored under this id).
        action_id: String,
        /// Where.
        url: String,
        /// The JSON body, fixed when the step ran.
        #[schema(value_type = Object)]
        body: serde_json::Value,
    },
}

impl OutboxTopic {
    /// The topic's name, as stored in the `topic` column.
    pub fn name(&self) -> &'static str {
        match self {
            Self::DeliverReply { .. } => "deliver_reply",
            Self::NotifyEmail { .. } => "notify_email",
            Self::NotifyDigest { .. } => "notify_digest",
            Self::WorkflowStep { .. } => "workflow_step",
            Self::WorkflowWebhook { .. } => "workflow_webhook",
        }
    }
}

/// Whether replies on a channel of `kind` are sent out by the outbox.
/// E-mail and WhatsApp replies leave Switchboard; chat visitors read replies
/// from their own event stream, and the other kinds have nowhere to send to.
pub fn delivers_replies(kind: ChannelKind) -> bool {
    matches!(kind, ChannelKind::Email | ChannelKind::Whatsapp)
}

/// Where an outbox row stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OutboxState {
    /// Waiting to run at `run_at` (first time, or again after a failure).
    Pending,
    /// Ran successfully.
    Done,
    /// Gave up: a permanent error or too many attempts. Retried only by hand.
    Failed,
}

impl OutboxState {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Done => "done",
            Self::Failed => "failed",
        }
    }
}

impl std::str::FromStr for OutboxState {
    type Err = crate::DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pending" => Ok(Self::Pending),
            "done" => Ok(Self::Done),
            "failed" => Ok(Self::Failed),
            other => Err(crate::DomainError::invalid(
                "state",
                format!("must be pending, done or failed, not {other:?}"),
            )),
        }
    }
}

/// One outbox row, as stored and as served by `GET /api/v1/outbox`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct OutboxEntry {
    /// Its id.
    pub id: i64,
    /// The account it belongs to.
    pub account_id: AccountId,
    /// What it asks for (with its parameters).
    pub topic: OutboxTopic,
    /// Pending, done or failed.
    pub state: OutboxState,
    /// How many times it has been started (a claim counts, so a node that
    /// crashes mid-run uses up an attempt).
    pub attempts: u32,
    /// When it is due next (while pending; while being run, the end of the
    /// runner's lease).
    #[schema(value_type = String, format = DateTime)]
    pub run_at: Timestamp,
    /// The last failure, if any (never contains secrets).
    pub last_error: Option<String>,
    /// When it was written.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// When it last changed.
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    /// Try again after this delay.
    RetryIn(Duration),
    /// Stop: the row is `failed`.
    GiveUp,
}

/// Exponential backoff with jitter, capped, and a maximum number of attempts.
///
/// Attempt `n` (1-based) that failed waits `min(max_delay, base * 2^(n-1))`,
/// of which the upper half is randomised ("equal jitter"): the delay is never
/// below half the nominal one, so a relay that is down is not hammered, and
/// rows that failed together do not all come back at the same instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The nominal delay after the first failure.
    pub base: Duration,
    /// No delay is longer than this.
    pub max_delay: Duration,
    /// After this many failed attempts the row is `failed`.
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    /// 2 s, doubling, at most 1 h apart, 15 attempts (about 8 hours in all).
    fn default() -> Self {
        Self {
            base: Duration::from_secs(2),
            max_delay: Duration::from_secs(3600),
            max_attempts: 15,
        }
    }
}

impl RetryPolicy {
    /// What to do after attempt `attempt` (1-based) failed, given a random
    /// `fraction` in `[0, 1)` (values outside are clamped).
    pub fn after_failure(&self, attempt: u32, fraction: f64) -> AfterFailure {
        if attempt >= self.max_attempts {
            return AfterFailure::GiveUp;
        }
        // In nanoseconds, saturating: a huge attempt number just hits the cap.
        let exponent = attempt.saturating_sub(1).min(64);
        let nominal = self
            .base
            .as_nanos()
            .saturating_mul(1u128 << exponent)
            .min(self.max_delay.as_nanos());
        let nominal = Duration::from_nanos(u64::try_from(nominal).unwrap_or(u64::MAX));
        let fraction = if fraction.is_finite() {
            fraction.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let half = nominal / 2;
        AfterFailure::RetryIn(half + half.mul_f64(fraction))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            base: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
            max_attempts: 5,
        }
    }

    fn delay(p: &RetryPolicy, attempt: u32, fraction: f64) -> Duration {
        match p.after_failure(attempt, fraction) {
            AfterFailure::RetryIn(d) => d,
            AfterFailure::GiveUp => panic!("gave up after attempt {attempt}"),
        }
    }

    #[test]
    fn delays_double_with_jitter_in_the_upper_half() {
        let p = policy();
        assert_eq!(delay(&p, 1, 0.0), Duration::from_millis(500));
        let almost = delay(&p, 1, 0.999_999);
        assert!(almost > Duration::from_millis(999) && almost < Duration::from_secs(1));
        assert_eq!(delay(&p, 2, 0.0), Duration::from_secs(1));
        assert_eq!(delay(&p, 3, 0.5), Duration::from_secs(3));
        assert_eq!(delay(&p, 4, 1.0), Duration::from_secs(8));
    }

    #[test]
    fn delays_are_capped_even_for_huge_attempt_numbers() {
        let p = RetryPolicy {
            max_attempts: u32::MAX,
            ..policy()
        };
        assert_eq!(delay(&p, 7, 1.0), Duration::from_secs(60));
        assert_eq!(delay(&p, 40, 0.0), Duration::from_secs(30));
        assert_eq!(delay(&p, u32::MAX - 1, 1.0), Duration::from_secs(60));
    }

    #[test]
    fn the_last_attempt_gives_up() {
        let p = policy();
        assert!(matches!(p.after_failure(4, 0.3), AfterFailure::RetryIn(_)));
        assert_eq!(p.after_failure(5, 0.3), AfterFailure::GiveUp);
        assert_eq!(p.after_failure(9, 0.3), AfterFailure::GiveUp);
    }

    #[test]
    fn bad_fractions_are_clamped() {
        let p = policy();
        assert_eq!(delay(&p, 2, -3.0), Duration::from_millis(1000));
        assert_eq!(delay(&p, 2, 7.0), Duration::from_millis(2000));
        assert_eq!(delay(&p, 2, f64::NAN), Duration::from_millis(1000));
    }

    #[test]
    fn topics_round_trip_through_their_payload() {
        let t = OutboxTopic::DeliverReply {
            ticket_id: TicketId(3),
            message_id: MessageId(9),
        };
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(
            json,
            r#"{"topic":"deliver_reply","ticket_id":3,"message_id":9}"#
        );
        assert_eq!(serde_json::from_str::<OutboxTopic>(&json).unwrap(), t);
        assert_eq!(t.name(), "deliver_reply");
        assert!(delivers_replies(ChannelKind::Email));
        assert!(!delivers_replies(ChannelKind::Chat));
        assert_eq!(
            "failed".parse::<OutboxState>().unwrap(),
            OutboxState::Failed
        );
        assert!("nope".parse::<OutboxState>().is_err());
    }
}
