//! What applying a routing decision changes, decided once for every backend.
//!
//! The engine ([`super::decide`]) says who gets the ticket; [`effects`]
//! turns that into the writes the store carries out in the same
//! transaction: the new owner, the waiting flag, the round-robin position,
//! the skill-relaxation job, whether the explanation is kept, and whom to
//! notify of what.

use super::{AssignTo, Decision, Outcome, RoutingRule};
use crate::{Owner, TeamId, UserId};
use jiff::{SignedDuration, Timestamp};

crate::model::wire_enum!(
    /// What asked routing for a decision.
    RoutingTrigger {
        /// The ticket was just created.
        Created = "created",
        /// The ticket waited in the queue and a target may have become eligible.
        WaitingQueue = "waiting_queue",
        /// The ticket waited long enough for optional skills to be dropped.
        SkillRelaxation = "skill_relaxation",
        /// Its owner became away and the rule rebalances.
        RebalanceOnAway = "rebalance_on_away",
    }
);

/// The writes that carry out one decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effects {
    /// The ticket's new owner, when the decision gives it one.
    pub owner: Option<Owner>,
    /// Whether the ticket now waits in the queue.
    pub waiting: bool,
    /// The round-robin position to store: this user was served in this cycle.
    pub round_robin: Option<(UserId, u64)>,
    /// When to retry with optional skills dropped.
    pub relax_at: Option<Timestamp>,
    /// Whether the explanation is worth storing.
    pub record: bool,
    /// The user the ticket was just given to: told of it (see
    /// `crate::notifications`), whether or not they are away (contact-owner
    /// routing may assign an away owner; the explanation says so).
    pub notify: Option<UserId>,
}

/// The effects of `decision`, taken for a ticket created at `created_at`
/// under `rule` because of `trigger`.
pub fn effects(
    rule: &RoutingRule,
    decision: &Decision,
    trigger: RoutingTrigger,
    created_at: Timestamp,
) -> Effects {
    let outcome = decision.outcome();
    let owner = match outcome {
        Outcome::Assign { user_id, team_id } => Some(owner(Some(user_id), team_id)),
        Outcome::Team { team_id } => Some(owner(None, Some(team_id))),
        Outcome::Unassigned => None,
    };
    let round_robin = match (decision.rr_cycle, outcome) {
        (Some(cycle), Outcome::Assign { user_id, .. }) => Some((user_id, cycle)),
        _ => None,
    };
    let notify = match outcome {
        Outcome::Assign { user_id, .. } => Some(user_id),
        _ => None,
    };
    Effects {
        owner,
        waiting: outcome == Outcome::Unassigned
            && rule.waiting_queue
            && rule.assign_to != AssignTo::Nobody,
        round_robin,
        relax_at: decision
            .relax_at_seconds
            .map(|after| created_at + SignedDuration::from_secs(after as i64)),
        // A queue re-route that changed nothing is not worth a row (the
        // queue may be re-tried often); every decision that assigned is kept.
        record: !(trigger == RoutingTrigger::WaitingQueue && outcome == Outcome::Unassigned),
        notify,
    }
}

fn owner(user_id: Option<UserId>, team_id: Option<TeamId>) -> Owner {
    Owner { user_id, team_id }
}
