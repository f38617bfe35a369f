//! How a ticket save moves its owners' open and load counters.
//!
//! Loads are counters, not queries: per user and ticket type, the open
//! tickets owned and those of them assigned in the last 30 days. Every
//! ticket save moves the counters from the ticket's stored state to its new
//! one; [`counter_moves`] says by how much, once for every backend.

use jiff::{SignedDuration, Timestamp};

use crate::{Status, Ticket, TicketType, UserId};

/// Loads count tickets assigned in the last 30 days.
pub const LOAD_WINDOW: SignedDuration = SignedDuration::from_hours(24 * 30);

/// What the store has for a ticket before a save.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counted {
    /// Its owner user.
    pub owner: Option<UserId>,
    /// Whether it is open.
    pub open: bool,
    /// Whether it counts in its owner's load.
    pub in_load: bool,
}

impl Counted {
    /// A ticket as created: open, no owner user, not in any load.
    pub const NEW: Counted = Counted {
        owner: None,
        open: true,
        in_load: false,
    };
}

/// One change to a user's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CounterDelta {
    /// Whose counters.
    pub user: UserId,
    /// For which ticket type.
    pub ticket_type: TicketType,
    /// Added to the open count.
    pub open: i64,
    /// Added to the load count.
    pub load: i64,
}

/// What a save changes in the counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterMoves {
    /// The deltas to apply (none of them zero on both counts).
    pub deltas: Vec<CounterDelta>,
    /// Whether the ticket counts in its owner's load after the save.
    pub in_load: bool,
    /// When it leaves the load (the load-expiry job), if it counts.
    pub expires_at: Option<Timestamp>,
}

/// The counter moves of saving `new` over the stored `old`, at `now`.
pub fn counter_moves(old: Counted, new: &Ticket, now: Timestamp) -> CounterMoves {
    let ty = new.ticket_type;
    let new_open = new.status == Status::Open && new.owner.user_id.is_some();
    let in_load = new_open
        && new
            .assigned_at
            .is_some_and(|a| now.duration_since(a) < LOAD_WINDOW);
    let mut deltas = Vec::with_capacity(2);
    let mut push = |user, open: i64, load: i64| {
        if open != 0 || load != 0 {
            deltas.push(CounterDelta {
                user,
                ticket_type: ty,
                open,
                load,
            });
        }
    };
    if let Some(user) = old.owner {
        push(user, -i64::from(old.open), -i64::from(old.in_load));
    }
    if let Some(user) = new.owner.user_id {
        push(user, i64::from(new_open), i64::from(in_load));
    }
    CounterMoves {
        deltas,
        in_load,
        expires_at: match (in_load, new.assigned_at) {
            (true, Some(at)) => Some(at + LOAD_WINDOW),
            _ => None,
        },
    }
}
