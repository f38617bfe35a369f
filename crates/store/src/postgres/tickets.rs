//! Tickets, their conversation and their history, on PostgreSQL.
//!
//! Writes that can route or move an owner's counters run under the
//! account's routing lock (`routing::lock_account`, see the `routing`
//! module): `mod.rs` takes it for updates, assignments and messages, and
//! [`create`] takes it itself, only for a ticket that will be routed, so
//! unrouted creates stay parallel.
//!
//! Events: every history line is also a [`TicketEvent`], stored in the
//! `events` table (numbered after commit by `super::events`) and published
//! (`pg_notify` on `switchboard_events`, through `super::publish`) inside
//! the writing transaction, so listeners on every node hear of it only once
//! the change commits, and never for a rolled-back or retried attempt. One
//! event per history line, exactly as the SQLite writer records them.

use jiff::Timestamp;
use sqlx::PgConnection;
use switchboard_domain::notifications::{self, NotifyEvent};
use switchboard_domain::routing::{Counted, RandomSource, RoutingTrigger, counter_moves};
use switchboard_domain::workflows::Change;
use switchboard_domain::{input::*, ticket, triage, *};

use super::{backend, directory, routing, routing_state, rows, unique, writes};
use crate::{Created, Idempotency, NewMessage, Page, Result, StoreError, TicketQuery, View};

/// The class id (first key) of idempotency locks, taken with the two-key
/// form of `pg_advisory_xact_lock`, whose key space does not overlap the
/// one-key form of the routing locks ("SI").
const IDEMPOTENCY_LOCK_CLASS: i32 = 0x5349;

/// The contact with this e-mail, else with this phone.
async fn find_contact(
    c: &mut PgConnection,
    account: AccountId,
    who: &ContactRef,
) -> Result<Option<ContactId>> {
    // E-mail addresses compare case-insensitively (the unique index is on
    // lower(email)), as SQLite's COLLATE NOCASE does.
    if let Some(email) = &who.email {
        let key = email.as_str().to_lowercase();
        if let Some(Some(known)) = routing_state::shared(|s| s.contacts.get(&key).copied()) {
            return Ok(Some(known));
        }
        let id: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM contacts WHERE account_id = $1 AND lower(email) = lower($2)",
        )
        .bind(account.0)
        .bind(email.as_str())
        .fetch_optional(&mut *c)
        .await?;
        if let Some(id) = id {
            routing_state::shared(|s| s.contacts.insert(key, ContactId(id)));
            return Ok(Some(ContactId(id)));
        }
    }
    if let Some(phone) = &who.phone {
        let id: Option<i64> =
            sqlx::query_scalar("SELECT id FROM contacts WHERE account_id = $1 AND phone = $2")
                .bind(account.0)
                .bind(phone.as_str())
                .fetch_optional(&mut *c)
                .await?;
        if let Some(id) = id {
            return Ok(Some(ContactId(id)));
        }
    }
    Ok(None)
}

/// Finds the contact by e-mail, then by phone, or creates it.
///
/// Two tickets from a new customer may be created at once on two nodes:
/// both miss the lookup and both insert. `ON CONFLICT DO NOTHING` makes the
/// second insert wait for the first transaction and then insert nothing
/// (instead of failing, which would abort the whole transaction), and the
/// lookup run again then sees the committed contact.
async fn resolve_contact(
    c: &mut PgConnection,
    now: Timestamp,
    account: AccountId,
    who: ContactRef,
) -> Result<ContactId> {
    if let Some(id) = find_contact(c, account, &who).await? {
        return Ok(id);
    }
    if who.email.is_none() && who.phone.is_none() {
        return Err(DomainError::invalid("contact", "needs an email or a phone").into());
    }
    // What `directory::create_contact` inserts for a contact with only a
    // name, an e-mail and a phone (no owner, no visitor tokens).
    let id: Option<i64> = sqlx::query_scalar(
        "INSERT INTO contacts (account_id, name, email, phone, created_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT DO NOTHING RETURNING id",
    )
    .bind(account.0)
    .bind(who.name.as_ref().map(Name::as_str))
    .bind(who.email.as_ref().map(EmailAddress::as_str))
    .bind(who.phone.as_ref().map(E164::as_str))
    .bind(rows::ms(now))
    .fetch_optional(&mut *c)
    .await?;
    match id {
        Some(id) => {
            if let Some(email) = &who.email {
                let key = email.as_str().to_lowercase();
                routing_state::shared(|s| s.contacts.insert(key, ContactId(id)));
            }
            Ok(ContactId(id))
        }
        None => find_contact(c, account, &who)
            .await?
            .ok_or_else(|| StoreError::Conflict {
                field: "contact",
                message: "a contact with this email or phone was just created".into(),
            }),
    }
}

/// Finds the known contacts of `emails` in one statement, for a batch of
/// creates (see `batch`): each create then finds its contact without a
/// round trip of its own.
pub async fn prefetch_contacts(
    c: &mut PgConnection,
    account: AccountId,
    emails: Vec<String>,
) -> Result<()> {
    if emails.is_empty() {
        return Ok(());
    }
    let found: Vec<(i64, String)> = sqlx::query_as(
        "SELECT id, lower(email) FROM contacts WHERE account_id = $1 AND lower(email) = ANY($2)",
    )
    .bind(account.0)
    .bind(emails)
    .fetch_all(&mut *c)
    .await?;
    routing_state::shared(|s| {
        for (id, email) in found {
            s.contacts.insert(email, ContactId(id));
        }
    });
    Ok(())
}

/// Whether `channel` has a routing rule (false for no such channel: the
/// create itself then says what is wrong). Read outside any transaction, to
/// choose the path a create takes; the create reads it again under the lock.
pub async fn channel_routed(
    pool: &sqlx::PgPool,
    account: AccountId,
    channel: ChannelId,
) -> Result<bool> {
    let routed: Option<bool> = sqlx::query_scalar(
        "SELECT routing IS NOT NULL FROM channels WHERE id = $1 AND account_id = $2",
    )
    .bind(channel.0)
    .bind(account.0)
    .fetch_optional(pool)
    .await?;
    Ok(routed.unwrap_or(false))
}

/// Creates a ticket (see `Store::create_ticket`), routing it inline when its
/// channel has a rule.
///
/// Idempotency: a retry may arrive on another node while the first call is
/// still running. The idempotency key is locked first (an advisory lock on a
/// hash of account and key), so the second call waits for the first to
/// commit and then, READ COMMITTED giving its next statement a fresh
/// snapshot, finds the key and returns the original ticket.
pub async fn create(
    c: &mut PgConnection,
    now: Timestamp,
    account: AccountId,
    input: NewTicket,
    idempotency: Option<Idempotency>,
    actor: Actor,
    rng: &mut (dyn RandomSource + Send),
) -> Result<Created<Ticket>> {
    if let Some(idem) = &idempotency {
        // A hash collision only makes two unrelated creates wait for each
        // other. Taken before the routing lock, always in this order.
        sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
            .bind(IDEMPOTENCY_LOCK_CLASS)
            .bind(format!("{}:{}", account.0, idem.key))
            .execute(&mut *c)
            .await?;
        let earlier = sqlx::query(
            "SELECT fingerprint, ticket_id FROM idempotency_keys WHERE account_id = $1 AND key = $2",
        )
        .bind(account.0)
        .bind(&idem.key)
        .fetch_optional(&mut *c)
        .await?;
        if let Some(row) = earlier {
            let fingerprint: String = rows::get(&row, 0)?;
            if fingerprint != idem.fingerprint {
                return Err(StoreError::Conflict {
                    field: "Idempotency-Key",
                    message: "this key was used with a different request".into(),
                });
            }
            return Ok(Created {
                value: writes::get(c, account, TicketId(rows::get(&row, 1)?)).await?,
                created: false,
            });
        }
    }
    let (source, routed) = match input.channel_id {
        Some(channel) => {
            let (kind, routed) = match routing_state::shared(|s| s.channels.get(&channel).copied())
            {
                Some(Some(known)) => known,
                _ => {
                    let row = sqlx::query(
                        "SELECT kind, routing IS NOT NULL FROM channels WHERE id = $1 AND account_id = $2",
                    )
                    .bind(channel.0)
                    .bind(account.0)
                    .fetch_optional(&mut *c)
                    .await?
                    .ok_or_else(|| {
                        DomainError::invalid("channel_id", format!("no such channel: {channel}"))
                    })?;
                    let known: (ChannelKind, bool) = (rows::parsed(&row, 0)?, rows::get(&row, 1)?);
                    routing_state::shared(|s| s.channels.insert(channel, known));
                    known
                }
            };
            (TicketSource::from(kind), routed)
        }
        None => (TicketSource::Api, false),
    };
    if routed {
        // Before anything routing reads (contacts, visitor tokens, loads):
        // statements after the lock see every decision committed before it.
        // A ticket whose channel had no rule at this point is not routed at
        // all, so it never reads routing state without the lock; it counts
        // as created before a rule set concurrently.
        routing::lock_account(c, account).await?;
    }
    let mut properties = input.properties;
    let visitor_contact = match input.visitor_token {
        Some(token) => {
            let token = token.trim().to_owned();
            let known: Option<i64> = sqlx::query_scalar(
                "SELECT contact_id FROM contact_visitor_tokens WHERE account_id = $1 AND token = $2",
            )
            .bind(account.0)
            .bind(&token)
            .fetch_optional(&mut *c)
            .await?;
            properties.insert("visitor_token".into(), serde_json::Value::String(token));
            known.map(ContactId)
        }
        None => None,
    };
    let contact_id = match (visitor_contact, input.contact) {
        (Some(known), _) => Some(known),
        (None, Some(who)) => Some(resolve_contact(c, now, account, who).await?),
        (None, None) => None,
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
    let mut decided = match routed {
        true => routing::decide_for(c, now, account, &ticket, RoutingTrigger::Created, rng).await?,
        false => None,
    };
    let moved = decided
        .as_ref()
        .and_then(|r| r.effects.owner)
        .and_then(|to| ticket::move_owner(&mut ticket, to, now, OwnerReason::Routing));
    let counts = counter_moves(Counted::NEW, &ticket, now);
    // The decision's record goes in with the ticket: one round trip less
    // under the routing lock.
    let (trigger, explanation) = decided.as_mut().and_then(|r| r.take_record()).unzip();
    let id: i64 = sqlx::query_scalar(
        "WITH t AS (
             INSERT INTO tickets (account_id, subject, content, channel_id, source, type, status, stage, priority,
                 contact_id, properties, created_at, updated_at, owner_user_id, owner_team_id, assigned_at, load_counted, waiting)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12, $13, $14, $15, $16, $17)
             RETURNING id
         ), decision AS (
             INSERT INTO routing_decisions (account_id, ticket_id, at, trigger, explanation)
             SELECT $1, t.id, $12, $18, $19 FROM t WHERE $19::text IS NOT NULL
         )
         SELECT id FROM t",
    )
    .bind(account.0)
    .bind(&ticket.subject)
    .bind(&ticket.content)
    .bind(ticket.channel_id.map(|c| c.0))
    .bind(ticket.source.as_str())
    .bind(ticket.ticket_type.as_str())
    .bind(ticket.status.as_str())
    .bind(ticket.stage.as_str())
    .bind(ticket.priority.as_str())
    .bind(ticket.contact_id.map(|c| c.0))
    .bind(serde_json::to_string(&ticket.properties).map_err(backend)?)
    .bind(rows::ms(now))
    .bind(ticket.owner.user_id.map(|u| u.0))
    .bind(ticket.owner.team_id.map(|u| u.0))
    .bind(ticket.assigned_at.map(rows::ms))
    .bind(i32::from(counts.in_load))
    .bind(i32::from(decided.as_ref().is_some_and(|r| r.effects.waiting)))
    .bind(trigger)
    .bind(explanation)
    .fetch_one(&mut *c)
    .await?;
    ticket.id = TicketId(id);
    let created = HistoryEvent::Created {
        source,
        owner: Owner::default(),
    };
    if let Some(idem) = idempotency {
        // Cannot clash while we hold the key's lock; mapped all the same.
        sqlx::query(
            "INSERT INTO idempotency_keys (account_id, key, fingerprint, ticket_id, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(account.0)
        .bind(&idem.key)
        .bind(&idem.fingerprint)
        .bind(ticket.id.0)
        .bind(rows::ms(now))
        .execute(&mut *c)
        .await
        .map_err(|e| unique(e, "Idempotency-Key", "this key is being used"))?;
    }
    let events: Vec<HistoryEvent> = moved.iter().map(|m| m.event.clone()).collect();
    if let Some(user) = moved.as_ref().and_then(|m| m.assigned) {
        writes::assigned(c, account, user, now).await?;
    }
    // The creation, then the routed owner: one statement for both lines.
    let mut lines = vec![(actor, &created)];
    lines.extend(moved.as_ref().map(|m| (Actor::System, &m.event)));
    writes::record_lines(c, account, ticket.id, now, &lines).await?;
    writes::apply_counter_moves(c, account, &counts).await?;
    if let Some(decided) = decided {
        routing::apply_rest(c, now, account, &ticket, decided).await?;
    }
    if ticket.owner.user_id.is_none() {
        let event = NotifyEvent::NewUnassigned;
        super::notifications::raise(c, now, account, &ticket, actor, &event).await?;
    }
    let change = Change {
        before: None,
        events: &events,
        handoff: false,
    };
    super::workflows::after_change(c, now, account, &ticket, &change).await?;
    Ok(Created {
        value: ticket,
        created: true,
    })
}

/// A bind parameter of a dynamically built query.
enum Arg {
    Int(i64),
    Text(&'static str),
}

/// Tickets, newest first, by view and filters (see [`TicketQuery`]).
pub async fn list(
    c: &mut PgConnection,
    account: AccountId,
    caller: UserId,
    q: &TicketQuery,
) -> Result<Page<Ticket>> {
    let mut sql = format!(
        "SELECT {} FROM tickets WHERE account_id = $1",
        rows::TICKET_COLUMNS
    );
    let mut args = vec![Arg::Int(account.0)];
    // `clause` holds at most one `?`, numbered here as the next parameter.
    let mut and = |clause: &str, arg: Option<Arg>| {
        sql.push_str(" AND ");
        match arg {
            Some(arg) => {
                args.push(arg);
                sql.push_str(&clause.replace('?', &format!("${}", args.len())));
            }
            None => sql.push_str(clause),
        }
    };
    const MY_TEAMS: &str = "owner_team_id IN (SELECT team_id FROM team_members WHERE user_id = ?)";
    match q.view {
        None => {}
        Some(View::Unassigned) => and("status = 'open' AND owner_user_id IS NULL", None),
        Some(View::Mine) => and(
            "status = 'open' AND owner_user_id = ?",
            Some(Arg::Int(caller.0)),
        ),
        Some(View::TeamUnassigned) => and(
            &format!("status = 'open' AND owner_user_id IS NULL AND {MY_TEAMS}"),
            Some(Arg::Int(caller.0)),
        ),
        Some(View::TeamOpen) => and(
            &format!("status = 'open' AND {MY_TEAMS}"),
            Some(Arg::Int(caller.0)),
        ),
        Some(View::Open) => and("status = 'open'", None),
        Some(View::Closed) => and("status = 'closed'", None),
    }
    if let Some(v) = q.channel_id {
        and("channel_id = ?", Some(Arg::Int(v.0)));
    }
    if let Some(v) = q.ticket_type {
        and("type = ?", Some(Arg::Text(v.as_str())));
    }
    if let Some(v) = q.owner_user_id {
        and("owner_user_id = ?", Some(Arg::Int(v.0)));
    }
    if let Some(v) = q.team_id {
        and("owner_team_id = ?", Some(Arg::Int(v.0)));
    }
    if let Some(v) = q.priority {
        and("priority = ?", Some(Arg::Text(v.as_str())));
    }
    and("id < ?", Some(Arg::Int(q.cursor.unwrap_or(i64::MAX))));
    args.push(Arg::Int(i64::from(q.limit) + 1));
    sql.push_str(&format!(" ORDER BY id DESC LIMIT ${}", args.len()));
    let mut query = sqlx::query(&sql);
    for arg in args {
        query = match arg {
            Arg::Int(v) => query.bind(v),
            Arg::Text(v) => query.bind(v),
        };
    }
    let found = query.fetch_all(&mut *c).await?;
    let items = found.iter().map(rows::ticket).collect::<Result<Vec<_>>>()?;
    Ok(crate::paginate(items, q.limit, |t| t.id.0))
}

/// Changes a ticket's fields, status or stage (see `Store::update_ticket`).
/// The caller holds the account's routing lock.
pub async fn update(
    c: &mut PgConnection,
    now: Timestamp,
    account: AccountId,
    id: TicketId,
    patch: TicketPatch,
    actor: Actor,
    rng: &mut (dyn RandomSource + Send),
) -> Result<Ticket> {
    let mut t = writes::get(c, account, id).await?;
    if let Some(Some(contact)) = patch.contact_id {
        directory::ensure_exists(c, "contacts", account, contact.0, "contact_id").await?;
    }
    let before = t.clone();
    let patched = ticket::patch(&mut t, patch, now)?;
    for event in &patched.history {
        writes::record(c, account, id, now, actor, event).await?;
    }
    writes::save(c, now, account, &t).await?;
    if patched.closed {
        // The owner dropped below a capacity limit, maybe.
        routing::drain_waiting(c, now, account, 0, rng).await?;
    }
    let t = writes::get(c, account, id).await?;
    let change = Change {
        before: Some(&before),
        events: &patched.history,
        handoff: false,
    };
    super::workflows::after_change(c, now, account, &t, &change).await?;
    Ok(t)
}

/// Assigns, reassigns or unassigns by hand (see `Store::set_owner`). The
/// caller holds the account's routing lock.
pub async fn set_owner(
    c: &mut PgConnection,
    now: Timestamp,
    account: AccountId,
    id: TicketId,
    requested: Owner,
    actor: Actor,
    rng: &mut (dyn RandomSource + Send),
) -> Result<Ticket> {
    let mut t = writes::get(c, account, id).await?;
    let user = match requested.user_id {
        Some(u) => Some(
            directory::get_user(c, account, u)
                .await
                .map_err(|e| match e {
                    StoreError::NotFound(_) => {
                        DomainError::invalid("user_id", format!("no such user: {u}")).into()
                    }
                    e => e,
                })?,
        ),
        None => None,
    };
    let to = triage::manual_owner(requested, t.owner, user.as_ref());
    let old = t.clone();
    let before = t.owner;
    writes::move_owner(c, account, &mut t, to, now, actor, OwnerReason::Manual).await?;
    // Someone else gave you a ticket: you are told.
    if let Some(user) = ticket::told_of_assignment(before, to, actor) {
        let event = NotifyEvent::Assigned { user_id: user };
        super::notifications::raise(c, now, account, &t, actor, &event).await?;
    }
    t.updated_at = now;
    writes::save(c, now, account, &t).await?;
    // A hand assignment takes the ticket out of the waiting queue, and may
    // free capacity for waiting tickets.
    sqlx::query("UPDATE tickets SET waiting = 0 WHERE id = $1 AND account_id = $2")
        .bind(id.0)
        .bind(account.0)
        .execute(&mut *c)
        .await?;
    routing::drain_waiting(c, now, account, 0, rng).await?;
    let t = writes::get(c, account, id).await?;
    let events: Vec<HistoryEvent> = ticket::owner_changed(before, t.owner, OwnerReason::Manual)
        .into_iter()
        .collect();
    let change = Change {
        before: Some(&old),
        events: &events,
        handoff: false,
    };
    super::workflows::after_change(c, now, account, &t, &change).await?;
    Ok(t)
}

/// Adds a message (see `Store::add_message`). The caller holds the account's
/// routing lock: a reply can make its author the owner.
pub async fn add_message(
    c: &mut PgConnection,
    now: Timestamp,
    account: AccountId,
    id: TicketId,
    m: NewMessage,
) -> Result<(Message, Ticket)> {
    let mut t = writes::get(c, account, id).await?;
    let before = t.clone();
    let message_id: i64 = sqlx::query_scalar(
        "INSERT INTO messages (account_id, ticket_id, kind, author, body, external_id, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(account.0)
    .bind(id.0)
    .bind(m.kind.as_str())
    .bind(serde_json::to_string(&m.author).map_err(backend)?)
    .bind(&m.body)
    .bind(&m.external_id)
    .bind(rows::ms(now))
    .fetch_one(&mut *c)
    .await
    // The only unique index on messages: a delivery seen before.
    .map_err(|e| super::duplicate(e, "external_id", "a message with this external id exists"))?;
    let message = Message {
        id: MessageId(message_id),
        ticket_id: id,
        kind: m.kind,
        author: m.author,
        body: m.body,
        external_id: m.external_id,
        created_at: now,
    };
    let author = match m.author {
        Actor::User { user_id } => Some(directory::get_user(c, account, user_id).await?),
        _ => None,
    };
    let added = ticket::add_message(&mut t, message.id, m.kind, author.as_ref(), now);
    for event in &added.history {
        writes::record(c, account, id, now, m.author, event).await?;
    }
    if let Some(user) = added.assigned {
        writes::assigned(c, account, user, now).await?;
    }
    if m.kind == MessageKind::Reply {
        enqueue_delivery(c, now, account, &t, message.id).await?;
    }
    writes::save(c, now, account, &t).await?;
    let first: bool = sqlx::query_scalar(
        "SELECT NOT EXISTS (SELECT 1 FROM messages WHERE ticket_id = $1 AND account_id = $2 AND id < $3)",
    )
    .bind(id.0)
    .bind(account.0)
    .bind(message.id.0)
    .fetch_one(&mut *c)
    .await?;
    if let Some(event) = notifications::message_event(m.kind, &message.body, first) {
        super::notifications::raise(c, now, account, &t, m.author, &event).await?;
    }
    let change = Change {
        before: Some(&before),
        events: &added.history,
        handoff: false,
    };
    super::workflows::after_change(c, now, account, &t, &change).await?;
    Ok((message, t))
}

/// Writes the reply's `deliver_reply` outbox row when the ticket's channel
/// sends replies out: in this transaction, so a committed reply is always
/// sent eventually, even if the node dies right after the commit.
async fn enqueue_delivery(
    c: &mut PgConnection,
    now: Timestamp,
    account: AccountId,
    t: &Ticket,
    message: MessageId,
) -> Result<()> {
    let Some(channel) = t.channel_id else {
        return Ok(());
    };
    let kind: Option<String> =
        sqlx::query_scalar("SELECT kind FROM channels WHERE id = $1 AND account_id = $2")
            .bind(channel.0)
            .bind(account.0)
            .fetch_optional(&mut *c)
            .await?;
    let kind: Option<ChannelKind> = kind.and_then(|k| k.parse().ok());
    if kind.is_some_and(outbox::delivers_replies) {
        let topic = outbox::OutboxTopic::DeliverReply {
            ticket_id: t.id,
            message_id: message,
        };
        super::outbox::enqueue(c, now, account, &topic).await?;
    }
    Ok(())
}

/// A ticket's conversation, oldest first.
pub async fn messages(
    c: &mut PgConnection,
    account: AccountId,
    id: TicketId,
) -> Result<Vec<Message>> {
    writes::get(c, account, id).await?;
    let sql = format!(
        "SELECT {} FROM messages WHERE ticket_id = $1 AND account_id = $2 ORDER BY id",
        rows::MESSAGE_COLUMNS
    );
    let found = sqlx::query(&sql)
        .bind(id.0)
        .bind(account.0)
        .fetch_all(&mut *c)
        .await?;
    found.iter().map(rows::message).collect()
}

/// A ticket's history, oldest first.
pub async fn history(
    c: &mut PgConnection,
    account: AccountId,
    id: TicketId,
) -> Result<Vec<HistoryEntry>> {
    writes::get(c, account, id).await?;
    let found = sqlx::query(
        "SELECT id, ticket_id, at, actor, event FROM ticket_history WHERE ticket_id = $1 AND account_id = $2 ORDER BY id",
    )
    .bind(id.0)
    .bind(account.0)
    .fetch_all(&mut *c)
    .await?;
    found.iter().map(rows::history).collect()
}
