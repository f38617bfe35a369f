//! Tickets, their conversation and their history.

use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter, types::Value as Sql};
use switchboard_domain::notifications::{self, NotifyEvent};
use switchboard_domain::routing::{Counted, RoutingTrigger, counter_moves};
use switchboard_domain::workflows::Change;
use switchboard_domain::{input::*, ticket, triage, *};

use super::{directory, rows, writes};
use crate::{Created, Idempotency, NewMessage, Page, Result, StoreError, TicketQuery, View};

/// Finds the contact by e-mail, then by phone, or creates it.
fn resolve_contact(
    c: &Connection,
    now: Timestamp,
    account: AccountId,
    who: ContactRef,
) -> Result<ContactId> {
    let find = |column: &str, value: Option<&str>| -> Result<Option<i64>> {
        let Some(value) = value else { return Ok(None) };
        let sql = format!("SELECT id FROM contacts WHERE account_id = ?1 AND {column} = ?2");
        Ok(c.prepare_cached(&sql)?
            .query_row(params![account.0, value], |r| r.get(0))
            .optional()?)
    };
    if let Some(id) = find("email", who.email.as_ref().map(EmailAddress::as_str))? {
        return Ok(ContactId(id));
    }
    if let Some(id) = find("phone", who.phone.as_ref().map(E164::as_str))? {
        return Ok(ContactId(id));
    }
    if who.email.is_none() && who.phone.is_none() {
        return Err(DomainError::invalid("contact", "needs an email or a phone").into());
    }
    let contact = directory::create_contact(
        c,
        now,
        account,
        NewContact {
            name: who.name,
            email: who.email,
            phone: who.phone,
            ..NewContact::default()
        },
    )?;
    Ok(contact.id)
}

pub fn create(
    c: &Connection,
    now: Timestamp,
    account: AccountId,
    input: NewTicket,
    idempotency: Option<Idempotency>,
    actor: Actor,
    rng: &mut dyn switchboard_domain::routing::RandomSource,
) -> Result<Created<Ticket>> {
    if let Some(idem) = &idempotency {
        let earlier: Option<(String, i64)> = c
            .prepare_cached("SELECT fingerprint, ticket_id FROM idempotency_keys WHERE account_id = ?1 AND key = ?2")?
            .query_row(params![account.0, idem.key], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        if let Some((fingerprint, ticket)) = earlier {
            if fingerprint != idem.fingerprint {
                return Err(StoreError::Conflict {
                    field: "Idempotency-Key",
                    message: "this key was used with a different request".into(),
                });
            }
            return Ok(Created {
                value: writes::get(c, account, TicketId(ticket))?,
                created: false,
            });
        }
    }
    let source = match input.channel_id {
        Some(channel) => {
            let kind: ChannelKind = c
                .prepare_cached("SELECT kind FROM channels WHERE id = ?1 AND account_id = ?2")?
                .query_row(params![channel.0, account.0], |r| rows::parsed(r, 0))
                .optional()?
                .ok_or_else(|| {
                    DomainError::invalid("channel_id", format!("no such channel: {channel}"))
                })?;
            TicketSource::from(kind)
        }
        None => TicketSource::Api,
    };
    let mut properties = input.properties;
    let visitor_contact = match input.visitor_token {
        Some(token) => {
            let token = token.trim().to_owned();
            let known: Option<i64> = c
                .prepare_cached("SELECT contact_id FROM contact_visitor_tokens WHERE account_id = ?1 AND token = ?2")?
                .query_row(params![account.0, token], |r| r.get(0))
                .optional()?;
            properties.insert("visitor_token".into(), serde_json::Value::String(token));
            known.map(ContactId)
        }
        None => None,
    };
    let contact_id = match visitor_contact {
        Some(known) => Some(known),
        None => input
            .contact
            .map(|who| resolve_contact(c, now, account, who))
            .transpose()?,
    };
    let mut ticket = Ticket {
        id: TicketId(0),
        subject: input.subject.into(),
        content: input.content,
        channel_id: input.channel_id,
        source,
        ticket_type: TicketType::from(source),
        status: Status::Open,
        stage: Stage::New,
        priority: input.priority,
        owner: Owner::default(),
        assigned_at: None,
        contact_id,
        properties,
        first_reply_at: None,
        created_at: now,
        updated_at: now,
        closed_at: None,
    };
    // Routing is inline (the 201 already carries the chosen owner) and
    // decided before the insert, so the ticket is written once, with its
    // owner, instead of inserted and then rewritten.
    let routed =
        super::routing::decide_for(c, now, account, &ticket, RoutingTrigger::Created, rng)?;
    let moved = routed
        .as_ref()
        .and_then(|r| r.effects.owner)
        .and_then(|to| ticket::move_owner(&mut ticket, to, now, OwnerReason::Routing));
    let counts = counter_moves(Counted::NEW, &ticket, now);
    c.prepare_cached(
        "INSERT INTO tickets (account_id, subject, content, channel_id, source, type, status, stage, priority,
            contact_id, properties, created_at, updated_at, owner_user_id, owner_team_id, assigned_at, load_counted, waiting)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12, ?13, ?14, ?15, ?16, ?17)",
    )?
    .execute(params![
        account.0,
        ticket.subject,
        ticket.content,
        ticket.channel_id.map(|c| c.0),
        ticket.source.as_str(),
        ticket.ticket_type.as_str(),
        ticket.status.as_str(),
        ticket.stage.as_str(),
        ticket.priority.as_str(),
        ticket.contact_id.map(|c| c.0),
        serde_json::to_string(&ticket.properties).map_err(super::backend)?,
        rows::ms(now),
        ticket.owner.user_id.map(|u| u.0),
        ticket.owner.team_id.map(|u| u.0),
        ticket.assigned_at.map(rows::ms),
        counts.in_load,
        routed.as_ref().is_some_and(|r| r.effects.waiting),
    ])?;
    ticket.id = TicketId(c.last_insert_rowid());
    writes::record(
        c,
        account,
        ticket.id,
        now,
        actor,
        &HistoryEvent::Created {
            source,
            owner: Owner::default(),
        },
    )?;
    if let Some(idem) = idempotency {
        c.prepare_cached(
            "INSERT INTO idempotency_keys (account_id, key, fingerprint, ticket_id, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![account.0, idem.key, idem.fingerprint, ticket.id.0, rows::ms(now)])?;
    }
    let events: Vec<HistoryEvent> = moved.iter().map(|m| m.event.clone()).collect();
    if let Some(moved) = moved {
        if let Some(user) = moved.assigned {
            writes::assigned(c, account, user, now)?;
        }
        writes::record(c, account, ticket.id, now, Actor::System, &moved.event)?;
    }
    writes::apply_counter_moves(c, account, &counts)?;
    if let Some(routed) = routed {
        super::routing::apply_rest(c, now, account, &ticket, routed)?;
    }
    if ticket.owner.user_id.is_none() {
        super::notifications::raise(c, now, account, &ticket, actor, &NotifyEvent::NewUnassigned)?;
    }
    let change = Change {
        before: None,
        events: &events,
        handoff: false,
    };
    super::workflows::after_change(c, now, account, &ticket, &change)?;
    Ok(Created {
        value: ticket,
        created: true,
    })
}

pub fn list(
    c: &Connection,
    account: AccountId,
    caller: UserId,
    q: &TicketQuery,
) -> Result<Page<Ticket>> {
    const MY_TEAMS: &str = "owner_team_id IN (SELECT team_id FROM team_members WHERE user_id = ?)";
    let mut sql = format!(
        "SELECT {} FROM tickets WHERE account_id = ?",
        rows::TICKET_COLUMNS
    );
    let mut args: Vec<Sql> = vec![Sql::Integer(account.0)];
    let mut and = |clause: &str, arg: Option<Sql>| {
        sql.push_str(" AND ");
        sql.push_str(clause);
        args.extend(arg);
    };
    match q.view {
        None => {}
        Some(View::Unassigned) => and("status = 'open' AND owner_user_id IS NULL", None),
        Some(View::Mine) => and(
            "status = 'open' AND owner_user_id = ?",
            Some(Sql::Integer(caller.0)),
        ),
        Some(View::TeamUnassigned) => and(
            &format!("status = 'open' AND owner_user_id IS NULL AND {MY_TEAMS}"),
            Some(Sql::Integer(caller.0)),
        ),
        Some(View::TeamOpen) => and(
            &format!("status = 'open' AND {MY_TEAMS}"),
            Some(Sql::Integer(caller.0)),
        ),
        Some(View::Open) => and("status = 'open'", None),
        Some(View::Closed) => and("status = 'closed'", None),
    }
    if let Some(v) = q.channel_id {
        and("channel_id = ?", Some(Sql::Integer(v.0)));
    }
    if let Some(v) = q.ticket_type {
        and("type = ?", Some(Sql::Text(v.as_str().into())));
    }
    if let Some(v) = q.owner_user_id {
        and("owner_user_id = ?", Some(Sql::Integer(v.0)));
    }
    if let Some(v) = q.team_id {
        and("owner_team_id = ?", Some(Sql::Integer(v.0)));
    }
    if let Some(v) = q.priority {
        and("priority = ?", Some(Sql::Text(v.as_str().into())));
    }
    and("id < ?", Some(Sql::Integer(q.cursor.unwrap_or(i64::MAX))));
    sql.push_str(" ORDER BY id DESC LIMIT ?");
    args.push(Sql::Integer(i64::from(q.limit) + 1));
    let mut stmt = c.prepare_cached(&sql)?;
    let items = stmt
        .query_map(params_from_iter(args), rows::ticket)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(crate::paginate(items, q.limit, |t| t.id.0))
}

pub fn update(
    c: &Connection,
    now: Timestamp,
    account: AccountId,
    id: TicketId,
    patch: TicketPatch,
    actor: Actor,
    rng: &mut dyn switchboard_domain::routing::RandomSource,
) -> Result<Ticket> {
    let mut t = writes::get(c, account, id)?;
    if let Some(Some(contact)) = patch.contact_id {
        directory::ensure_exists(c, "contacts", account, contact.0, "contact_id")?;
    }
    let before = t.clone();
    let patched = ticket::patch(&mut t, patch, now)?;
    for event in &patched.history {
        writes::record(c, account, id, now, actor, event)?;
    }
    writes::save(c, now, account, &t)?;
    if patched.closed {
        // The owner dropped below a capacity limit, maybe.
        super::routing::drain_waiting(c, now, account, 0, rng)?;
    }
    let t = writes::get(c, account, id)?;
    let change = Change {
        before: Some(&before),
        events: &patched.history,
        handoff: false,
    };
    super::workflows::after_change(c, now, account, &t, &change)?;
    Ok(t)
}

pub fn set_owner(
    c: &Connection,
    now: Timestamp,
    account: AccountId,
    id: TicketId,
    requested: Owner,
    actor: Actor,
    rng: &mut dyn switchboard_domain::routing::RandomSource,
) -> Result<Ticket> {
    let mut t = writes::get(c, account, id)?;
    let user = requested
        .user_id
        .map(|u| {
            directory::get_user(c, account, u).map_err(|e| match e {
                StoreError::NotFound(_) => {
                    DomainError::invalid("user_id", format!("no such user: {u}")).into()
                }
                e => e,
            })
        })
        .transpose()?;
    let to = triage::manual_owner(requested, t.owner, user.as_ref());
    let old = t.clone();
    let before = t.owner;
    writes::move_owner(c, account, &mut t, to, now, actor, OwnerReason::Manual)?;
    // Someone else gave you a ticket: you are told.
    if let Some(user) = ticket::told_of_assignment(before, to, actor) {
        let event = NotifyEvent::Assigned { user_id: user };
        super::notifications::raise(c, now, account, &t, actor, &event)?;
    }
    t.updated_at = now;
    writes::save(c, now, account, &t)?;
    // A hand assignment takes the ticket out of the waiting queue, and may
    // free capacity for waiting tickets.
    c.prepare_cached("UPDATE tickets SET waiting = 0 WHERE id = ?1 AND account_id = ?2")?
        .execute(params![id.0, account.0])?;
    super::routing::drain_waiting(c, now, account, 0, rng)?;
    let t = writes::get(c, account, id)?;
    let events: Vec<HistoryEvent> = ticket::owner_changed(before, t.owner, OwnerReason::Manual)
        .into_iter()
        .collect();
    let change = Change {
        before: Some(&old),
        events: &events,
        handoff: false,
    };
    super::workflows::after_change(c, now, account, &t, &change)?;
    Ok(t)
}

pub fn add_message(
    c: &Connection,
    now: Timestamp,
    account: AccountId,
    id: TicketId,
    m: NewMessage,
) -> Result<(Message, Ticket)> {
    let mut t = writes::get(c, account, id)?;
    let before = t.clone();
    c.prepare_cached(
        "INSERT INTO messages (account_id, ticket_id, kind, author, body, external_id, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        account.0,
        id.0,
        m.kind.as_str(),
        serde_json::to_string(&m.author).map_err(super::backend)?,
        m.body,
        m.external_id,
        rows::ms(now),
    ])
    .map_err(|e| {
        // The only unique index on messages: a delivery seen before.
        super::duplicate(e, "external_id", "a message with this external id exists")
    })?;
    let message = Message {
        id: MessageId(c.last_insert_rowid()),
        ticket_id: id,
        kind: m.kind,
        author: m.author,
        body: m.body,
        external_id: m.external_id,
        created_at: now,
    };
    let author = match m.author {
        Actor::User { user_id } => Some(directory::get_user(c, account, user_id)?),
        _ => None,
    };
    let added = ticket::add_message(&mut t, message.id, m.kind, author.as_ref(), now);
    for event in &added.history {
        writes::record(c, account, id, now, m.author, event)?;
    }
    if let Some(user) = added.assigned {
        writes::assigned(c, account, user, now)?;
    }
    if m.kind == MessageKind::Reply {
        enqueue_delivery(c, now, account, &t, message.id)?;
    }
    writes::save(c, now, account, &t)?;
    let first: bool = c
        .prepare_cached("SELECT NOT EXISTS (SELECT 1 FROM messages WHERE ticket_id = ?1 AND account_id = ?2 AND id < ?3)")?
        .query_row(params![id.0, account.0, message.id.0], |r| r.get(0))?;
    if let Some(event) = notifications::message_event(m.kind, &message.body, first) {
        super::notifications::raise(c, now, account, &t, m.author, &event)?;
    }
    let change = Change {
        before: Some(&before),
        events: &added.history,
        handoff: false,
    };
    super::workflows::after_change(c, now, account, &t, &change)?;
    Ok((message, t))
}

/// Writes the reply's `deliver_reply` outbox row when the ticket's channel
/// sends replies out: in this transaction, so a committed reply is always
/// sent eventually, even if the process dies right after the commit.
fn enqueue_delivery(
    c: &Connection,
    now: Timestamp,
    account: AccountId,
    t: &Ticket,
    message: MessageId,
) -> Result<()> {
    let Some(channel) = t.channel_id else {
        return Ok(());
    };
    let kind: Option<ChannelKind> = c
        .prepare_cached("SELECT kind FROM channels WHERE id = ?1 AND account_id = ?2")?
        .query_row(params![channel.0, account.0], |r| rows::parsed(r, 0))
        .optional()?;
    if kind.is_some_and(outbox::delivers_replies) {
        let topic = outbox::OutboxTopic::DeliverReply {
            ticket_id: t.id,
            message_id: message,
        };
        super::outbox::enqueue(c, now, account, &topic)?;
    }
    Ok(())
}

pub fn messages(c: &Connection, account: AccountId, id: TicketId) -> Result<Vec<Message>> {
    writes::get(c, account, id)?;
    let sql = format!(
        "SELECT {} FROM messages WHERE ticket_id = ?1 AND account_id = ?2 ORDER BY id",
        rows::MESSAGE_COLUMNS
    );
    let mut stmt = c.prepare_cached(&sql)?;
    let items = stmt
        .query_map(params![id.0, account.0], rows::message)?
        .collect::<rusqlite::Result<_>>()?;
    Ok(items)
}

pub fn history(c: &Connection, account: AccountId, id: TicketId) -> Result<Vec<HistoryEntry>> {
    writes::get(c, account, id)?;
    let mut stmt = c.prepare_cached(
        "SELECT id, ticket_id, at, actor, event FROM ticket_history WHERE ticket_id = ?1 AND account_id = ?2 ORDER BY id",
    )?;
    let items = stmt
        .query_map(params![id.0, account.0], rows::history)?
        .collect::<rusqlite::Result<_>>()?;
    Ok(items)
}
