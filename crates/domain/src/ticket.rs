//! How a ticket changes, decided once for every backend.
//!
//! Each function takes the ticket as stored, changes it in place and
//! returns the history lines the change makes (and anything else the store
//! must carry out). The store loads the ticket, calls one of these inside
//! its write transaction, then saves the ticket and records the lines, so
//! the rule and the data it reads can never disagree, and SQLite and
//! PostgreSQL apply the same rule.

use jiff::Timestamp;

use crate::{
    DomainError, HistoryEvent, MessageId, MessageKind, Owner, OwnerReason, Status, Ticket, User,
    UserId, input::TicketPatch, triage,
};

/// An owner change, as [`move_owner`] made it.
#[derive(Debug, Clone, PartialEq)]
pub struct OwnerMoved {
    /// The history line.
    pub event: HistoryEvent,
    /// The user who was just given the ticket (their last assignment time
    /// moves: round robin and load balancing break ties by it).
    pub assigned: Option<UserId>,
}

/// Gives `t` the owner `to` at `now`; `None` when it already has it.
pub fn move_owner(
    t: &mut Ticket,
    to: Owner,
    now: Timestamp,
    reason: OwnerReason,
) -> Option<OwnerMoved> {
    if t.owner == to {
        return None;
    }
    let event = HistoryEvent::OwnerChanged {
        from: t.owner,
        to,
        reason,
    };
    let mut assigned = None;
    if to.user_id != t.owner.user_id {
        t.assigned_at = to.user_id.map(|_| now);
        assigned = to.user_id;
    }
    t.owner = to;
    Some(OwnerMoved { event, assigned })
}

/// Moves `t` to a status and stage pair at `now`, keeping `closed_at` in
/// step; `None` when it is already there.
pub fn move_status(
    t: &mut Ticket,
    to: (Status, crate::Stage),
    now: Timestamp,
) -> Option<HistoryEvent> {
    if (t.status, t.stage) == to {
        return None;
    }
    let event = HistoryEvent::StatusChanged {
        from_status: t.status,
        from_stage: t.stage,
        to_status: to.0,
        to_stage: to.1,
    };
    t.closed_at = match (t.status, to.0) {
        (Status::Open, Status::Closed) => Some(now),
        (_, Status::Open) => None,
        _ => t.closed_at,
    };
    (t.status, t.stage) = to;
    Some(event)
}

/// What a patch did.
#[derive(Debug, Clone, PartialEq)]
pub struct Patched {
    /// The history lines, in order (fields, then status).
    pub history: Vec<HistoryEvent>,
    /// The ticket was closed by it (its owner may be below a capacity
    /// limit now: the waiting queue should be drained).
    pub closed: bool,
}

/// Applies `patch` to `t` at `now`. The caller has checked that a contact
/// it names belongs to the account.
pub fn patch(t: &mut Ticket, patch: TicketPatch, now: Timestamp) -> Result<Patched, DomainError> {
    // Checked first: a refused status change must change nothing.
    let to = triage::change_status((t.status, t.stage), patch.status, patch.stage)?;
    let mut fields = Vec::new();
    if let Some(v) = patch.subject {
        t.subject = v.into();
        fields.push("subject".to_owned());
    }
    if let Some(v) = patch.content {
        t.content = v;
        fields.push("content".to_owned());
    }
    if let Some(v) = patch.priority {
        t.priority = v;
        fields.push("priority".to_owned());
    }
    if let Some(props) = patch.properties {
        for (key, value) in props {
            if value.is_null() {
                t.properties.remove(&key);
            } else {
                t.properties.insert(key, value);
            }
        }
        fields.push("properties".to_owned());
    }
    if let Some(v) = patch.contact_id {
        t.contact_id = v;
        fields.push("contact_id".to_owned());
    }
    let mut history = Vec::new();
    if !fields.is_empty() {
        history.push(HistoryEvent::Updated { fields });
    }
    let closed = t.status == Status::Open && to.0 == Status::Closed;
    history.extend(move_status(t, to, now));
    t.updated_at = now;
    Ok(Patched { history, closed })
}

/// What adding a message did.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageAdded {
    /// The history lines, in order: the message, an owner change (a reply
    /// to a ticket without owner user), a status change.
    pub history: Vec<HistoryEvent>,
    /// The user the message made owner, if any.
    pub assigned: Option<UserId>,
}

/// Adds message `id` of `kind` to `t` at `now`; `author` is the user who
/// wrote it, if a user did. A public reply to a ticket with no owner user
/// makes the replier its owner; the first public reply sets
/// `first_reply_at`; status and stage follow the message
/// ([`triage::stage_after_message`]).
pub fn add_message(
    t: &mut Ticket,
    id: MessageId,
    kind: MessageKind,
    author: Option<&User>,
    now: Timestamp,
) -> MessageAdded {
    let mut history = vec![HistoryEvent::MessageAdded {
        message_id: id,
        kind,
    }];
    let mut assigned = None;
    if let Some(to) = author.and_then(|a| triage::owner_after_message(t.owner, kind, a))
        && let Some(moved) = move_owner(t, to, now, OwnerReason::Reply)
    {
        history.push(moved.event);
        assigned = moved.assigned;
    }
    if kind == MessageKind::Reply && t.first_reply_at.is_none() {
        t.first_reply_at = Some(now);
    }
    let to = triage::stage_after_message(t.status, t.stage, kind);
    history.extend(move_status(t, to, now));
    t.updated_at = now;
    MessageAdded { history, assigned }
}

/// The history line of an owner move already carried out (`from` to `to`),
/// as triggers see it; `None` when the owner did not change.
pub fn owner_changed(from: Owner, to: Owner, reason: OwnerReason) -> Option<HistoryEvent> {
    (from != to).then_some(HistoryEvent::OwnerChanged { from, to, reason })
}

/// Whom to tell after `actor` moved a ticket from `before` to `after` by
/// hand: the new owner user, unless they gave it to themself or already
/// had it.
pub fn told_of_assignment(before: Owner, after: Owner, actor: crate::Actor) -> Option<UserId> {
    after
        .user_id
        .filter(|u| Some(*u) != before.user_id && actor != (crate::Actor::User { user_id: *u }))
}
