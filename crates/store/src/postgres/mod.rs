//! The PostgreSQL backend, for several server nodes on one database.
//!
//! - [`schema`]: versioned migrations (`migrations/postgres`), applied under
//!   an advisory lock so nodes starting together migrate once;
//! - [`rows`]: row mapping;
//! - [`directory`]: accounts, tokens, users, teams, skills, contacts, channels;
//! - [`tickets`]: tickets, messages and history;
//! - [`writes`]: the writes every change is made of (ticket saved with its
//!   counters, owner moved, history line and event, job, notification),
//!   below both `tickets` and `routing`;
//! - [`channels`]: external ids, channels by key, attachments;
//! - [`events`]: the durable event sequence (numbered by one assigner at a
//!   time) and its retention;
//! - [`outbox`]: the transactional outbox (claims with `SKIP LOCKED` and a
//!   lease, outcomes, manual retries);
//! - [`testing`]: a fresh schema per test on the test server;
//! - [`routing`]: counters, decisions, the waiting queue and the scheduler;
//! - [`routing_state`]: each account's routing state, kept per node and
//!   checked against `accounts.routing_version`;
//! - [`batch`]: a node's routed creates of one account run in one
//!   transaction (one lock, one version bump, one commit for all).
//!
//! Every write is one transaction ([`transaction!`]). Writes that can route
//! first take the account's routing lock ([`routing::lock_account`]), so
//! decisions for one account made on different nodes at the same instant run
//! one after the other, each seeing the loads and round-robin state the
//! previous one committed. PostgreSQL decides the order *before* the snapshot
//! is read, which is what the naive "SELECT least loaded FOR UPDATE" gets
//! wrong. A transaction PostgreSQL aborts (deadlock, serialisation failure)
//! is retried from the start.

mod channels;
mod directory;
mod events;
mod outbox;
mod routing;
pub(crate) mod routing_state;
mod rows;
mod schema;
pub mod testing;
mod tickets;
mod writes;

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use sqlx::{
    PgPool,
    postgres::{PgConnectOptions, PgPoolOptions},
};
use switchboard_domain::{
    Account, AccountId, Actor, Channel, ChannelId, ChannelKind, Clock, Contact, ContactId,
    HistoryEntry, Message, Name, Owner, Principal, Skill, Team, TeamId, Ticket, TicketId, User,
    UserId, input::*,
};

use crate::{
    AvailabilityChange, AvailabilityState, Created, Directory, EventLog, EventsSince, Idempotency,
    NewMessage, Outbox, OutboxEntry, OutboxOutcome, OutboxState, Page, Result, Routing,
    RoutingRecord, SplitMix, StoreError, TicketQuery, Tickets, TokenInfo,
};

/// The PostgreSQL store: a connection pool and the clock. Clones share
/// everything (a batch of routed creates runs on a task of its own).
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    clock: Arc<dyn Clock>,
    /// Ticket events from every node, fed by [`listen`].
    events: tokio::sync::broadcast::Sender<crate::TicketEvent>,
    /// Seeds one generator per routed transaction (a transaction may be
    /// retried, and a lock must not be held across an await).
    seeds: Arc<Mutex<SplitMix>>,
    /// The routing state this node keeps per account (see `routing_state`).
    routing: Arc<routing_state::Kept>,
    /// Routed creates waiting to run together, by account (see `batch`).
    batches: Arc<batch::RoutedCreates>,
}

/// Wraps a database error as [`StoreError::Backend`].
pub(crate) fn backend(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Backend(Box::new(e))
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        backend(e)
    }
}

/// The SQLSTATE of a database error, if `e` is one.
pub(crate) fn sqlstate(e: &StoreError) -> Option<String> {
    let StoreError::Backend(inner) = e else {
        return None;
    };
    let sqlx::Error::Database(db) = inner.downcast_ref::<sqlx::Error>()? else {
        return None;
    };
    db.code().map(|c| c.into_owned())
}

/// Like [`unique`], for a message's provider id: a clash there is the same
/// delivery stored again ([`StoreError::Duplicate`]).
pub(crate) fn duplicate(e: sqlx::Error, field: &'static str, message: &str) -> StoreError {
    match unique(e, field, message) {
        StoreError::Conflict { field, message } => StoreError::Duplicate { field, message },
        other => other,
    }
}

/// Maps a uniqueness violation (23505) to a [`StoreError::Conflict`] on
/// `field`, and any other error to a backend error.
pub(crate) fn unique(e: sqlx::Error, field: &'static str, message: &str) -> StoreError {
    let e = backend(e);
    match sqlstate(&e).as_deref() {
        Some("23505") => StoreError::Conflict {
            field,
            message: message.to_owned(),
        },
        _ => e,
    }
}

/// Whether PostgreSQL aborted the transaction and it may simply be re-run:
/// serialisation failure (40001) or deadlock (40P01).
pub(crate) fn retryable(e: &StoreError) -> bool {
    matches!(sqlstate(e).as_deref(), Some("40001" | "40P01"))
}

/// Runs `$body` inside one transaction, with `$c` bound to the transaction's
/// `&mut PgConnection` and `$now` to the store's time, then commits. The whole
/// transaction is re-run (up to 10 times) if PostgreSQL aborts it for a
/// deadlock or a serialisation failure; `$body` must therefore clone what it
/// consumes.
macro_rules! transaction {
    ($store:expr, |$c:ident, $now:ident| $body:expr) => {{
        let mut attempt = 0u32;
        loop {
            let mut tx = $store
                .pool
                .begin()
                .await
                .map_err($crate::postgres::backend)?;
            let $now = $store.now();
            // The routing code reaches this transaction's routing state
            // through a task-local (see `routing_state`).
            let routing = $crate::postgres::routing_state::Tx::new($store.routing.clone());
            let result: $crate::Result<_> = routing
                .scope(async {
                    let $c: &mut sqlx::PgConnection = &mut tx;
                    let result: $crate::Result<_> = $body;
                    result
                })
                .await;
            let result = match result {
                Ok(value) => match routing.before_commit(&mut tx).await {
                    Ok(()) => tx.commit().await.map(|()| value).map_err(Into::into),
                    Err(e) => Err(e),
                },
                Err(e) => Err(e),
            };
            if result.is_ok() {
                routing.after_commit();
            }
            match result {
                Err(e) if $crate::postgres::retryable(&e) && attempt < 10 => {
                    attempt += 1;
                    tracing::debug!(attempt, "transaction aborted by PostgreSQL; retrying");
                }
                other => break other,
            }
        }
    }};
}

mod account_settings;
// After `transaction!`, which they use.
mod batch;
mod notifications;
mod workflow_steps;
mod workflows;

/// The prefix of the `NOTIFY` channel ticket events travel on. The channel
/// is this plus the schema (`switchboard_events:public`): notifications are
/// per database, not per schema, and deployments (or tests) sharing a
/// database in different schemas must not see each other's events.
pub(crate) const EVENTS_CHANNEL: &str = "switchboard_events:";

/// Forwards every ticket event any node commits to this node's sequencer
/// (`events::sequencer`), which numbers it before subscribers hear of it.
/// `NOTIFY` is transactional, so an event arrives only once its change is
/// committed, on every node. If the connection drops, `PgListener`
/// reconnects and listens again; notifications sent meanwhile are lost, but
/// only as wake-ups: the events are in the `events` table, the sequencer
/// numbers them at its next tick, and event streams read them from there.
async fn listen(
    mut listener: sqlx::postgres::PgListener,
    events: tokio::sync::mpsc::UnboundedSender<crate::TicketEvent>,
) {
    loop {
        match listener.try_recv().await {
            Ok(Some(n)) => match serde_json::from_str::<crate::TicketEvent>(n.payload()) {
                Ok(event) => {
                    if events.send(event).is_err() {
                        return;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "unreadable ticket event"),
            },
            Ok(None) => tracing::warn!(
                "event listener reconnected; live wake-ups may have been missed (streams catch up from the table)"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "event listener failed");
                if matches!(e, sqlx::Error::PoolClosed) {
                    return; // the store was closed
                }
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        }
    }
}

impl PgStore {
    /// Connects to `url`, and migrates the database.
    pub async fn connect(url: &str, clock: Arc<dyn Clock>) -> Result<Self> {
        let options: PgConnectOptions = url.parse().map_err(backend)?;
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .connect_with(options)
            .await
            .map_err(backend)?;
        schema::migrate(&pool).await?;
        let (events, _) = tokio::sync::broadcast::channel(crate::EVENT_BUFFER);
        let mut listener = sqlx::postgres::PgListener::connect_with(&pool)
            .await
            .map_err(backend)?;
        let schema: String = sqlx::query_scalar("SELECT current_schema()")
            .fetch_one(&pool)
            .await
            .map_err(backend)?;
        listener
            .listen(&format!("{EVENTS_CHANNEL}{schema}"))
            .await
            .map_err(backend)?;
        let (notified, to_sequence) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(listen(listener, notified));
        tokio::spawn(events::sequencer(pool.clone(), to_sequence, events.clone()));
        Ok(Self {
            pool,
            clock,
            events,
            seeds: Arc::new(Mutex::new(SplitMix(
                jiff::Timestamp::now().as_nanosecond() as u64
            ))),
            routing: Arc::default(),
            batches: Arc::default(),
        })
    }

    /// Seeds the random distribution, so tests are deterministic.
    pub fn with_seed(self, seed: u64) -> Self {
        *self.seeds.lock().unwrap_or_else(|e| e.into_inner()) = SplitMix(seed);
        self
    }

    /// How many times this node read an account's routing state whole, and
    /// how many times it caught a kept copy up from the deltas other nodes
    /// stored (see `routing_state`).
    pub fn routing_state_counts(&self) -> (u64, u64) {
        self.routing.counts()
    }

    /// How many transactions of this node ran several routed creates
    /// together, and how many creates they ran (see `batch`).
    pub fn routed_batch_counts(&self) -> (u64, u64) {
        self.batches.counts()
    }

    /// The connection pool (for the event listener and tests).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Closes the pool: waits for checked-out connections to come back.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    fn now(&self) -> jiff::Timestamp {
        crate::stored_time(self.clock.now())
    }

    /// A generator for one routed transaction.
    fn rng(&self) -> SplitMix {
        use switchboard_domain::routing::RandomSource;
        let mut seeds = self.seeds.lock().unwrap_or_else(|e| e.into_inner());
        SplitMix(seeds.below(usize::MAX) as u64)
    }
}

#[async_trait]
impl Outbox for PgStore {
    async fn claim_outbox(
        &self,
        limit: u32,
        lease: std::time::Duration,
    ) -> Result<Vec<OutboxEntry>> {
        outbox::claim(&self.pool, self.now(), limit, lease).await
    }

    async fn complete_outbox(&self, id: i64, attempt: u32, outcome: OutboxOutcome) -> Result<bool> {
        outbox::complete(&self.pool, self.now(), id, attempt, outcome).await
    }

    async fn list_outbox(
        &self,
        account: AccountId,
        state: Option<OutboxState>,
        limit: u32,
    ) -> Result<Vec<OutboxEntry>> {
        let mut c = self.pool.acquire().await?;
        outbox::list(&mut c, account, state, limit).await
    }

    async fn retry_outbox(&self, account: AccountId, id: i64) -> Result<OutboxEntry> {
        transaction!(self, |c, now| outbox::retry(c, now, account, id).await)
    }

    async fn count_outbox(&self, state: OutboxState) -> Result<u64> {
        outbox::count(&self.pool, state).await
    }

    async fn set_message_external_id(
        &self,
        account: AccountId,
        message: switchboard_domain::MessageId,
        external_id: String,
    ) -> Result<bool> {
        transaction!(self, |c, _now| {
            outbox::set_external_id(c, account, message, &external_id).await
        })
    }
}

#[async_trait]
impl EventLog for PgStore {
    async fn events_since(
        &self,
        account: AccountId,
        after: i64,
        limit: u32,
    ) -> Result<EventsSince> {
        let mut c = self.pool.acquire().await?;
        events::since(&mut c, account, after, limit).await
    }

    async fn latest_event_seq(&self) -> Result<i64> {
        let mut c = self.pool.acquire().await?;
        events::latest(&mut c).await
    }

    async fn purge_events(&self, retention: std::time::Duration) -> Result<u64> {
        transaction!(self, |c, now| events::purge(c, now, retention).await)
    }
}

#[async_trait]
impl Directory for PgStore {
    async fn create_account(
        &self,
        name: Name,
        admin: NewUser,
        admin_token_hash: String,
    ) -> Result<(Account, User)> {
        transaction!(self, |c, now| {
            directory::create_account(
                c,
                now,
                name.clone(),
                admin.clone(),
                admin_token_hash.clone(),
            )
            .await
        })
    }

    async fn account_count(&self) -> Result<u64> {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM accounts")
            .fetch_one(&self.pool)
            .await?;
        Ok(n as u64)
    }

    async fn first_account(&self) -> Result<Option<Account>> {
        let mut c = self.pool.acquire().await?;
        directory::first_account(&mut c).await
    }

    async fn create_token(
        &self,
        account: AccountId,
        user: UserId,
        name: String,
        token_hash: String,
    ) -> Result<TokenInfo> {
        transaction!(self, |c, now| {
            directory::create_token(c, now, account, user, name.clone(), token_hash.clone()).await
        })
    }

    async fn authenticate(&self, token_hash: String) -> Result<Option<Principal>> {
        let mut c = self.pool.acquire().await?;
        directory::authenticate(&mut c, &token_hash).await
    }

    async fn create_user(&self, account: AccountId, input: NewUser) -> Result<User> {
        transaction!(self, |c, now| {
            routing::lock_account(c, account).await?;
            let user = directory::create_user(c, now, account, input.clone()).await?;
            routing::drain_waiting(c, now, account, 0, &mut self.rng()).await?;
            Ok(user)
        })
    }

    async fn get_user(&self, account: AccountId, id: UserId) -> Result<User> {
        let mut c = self.pool.acquire().await?;
        directory::get_user(&mut c, account, id).await
    }

    async fn list_users(&self, account: AccountId) -> Result<Vec<User>> {
        let mut c = self.pool.acquire().await?;
        directory::list_users(&mut c, account).await
    }

    async fn update_user(&self, account: AccountId, id: UserId, patch: UserPatch) -> Result<User> {
        transaction!(self, |c, now| {
            routing::lock_account(c, account).await?;
            let zone_changed = patch.time_zone.is_some();
            let before = routing::availability_settings(c, account, id).await?;
            let user = directory::update_user(c, account, id, patch.clone()).await?;
            let mut rng = self.rng();
            if zone_changed {
                // Working hours are read in the new zone: reschedule.
                let was = before.0.at(&before.1.zone(), now).is_available();
                routing::availability_changed(c, now, account, id, was, &mut rng).await?;
            }
            // A seat, capacity or reactivation may make waiting tickets assignable.
            routing::drain_waiting(c, now, account, 0, &mut rng).await?;
            Ok(user)
        })
    }

    async fn create_team(&self, account: AccountId, input: NewTeam) -> Result<Team> {
        transaction!(self, |c, now| {
            directory::create_team(c, now, account, input.clone()).await
        })
    }

    async fn get_team(&self, account: AccountId, id: TeamId) -> Result<Team> {
        let mut c = self.pool.acquire().await?;
        directory::get_team(&mut c, account, id).await
    }

    async fn list_teams(&self, account: AccountId) -> Result<Vec<Team>> {
        let mut c = self.pool.acquire().await?;
        directory::list_teams(&mut c, account).await
    }

    async fn update_team(&self, account: AccountId, id: TeamId, patch: TeamPatch) -> Result<Team> {
        transaction!(self, |c, now| {
            routing::lock_account(c, account).await?;
            let team = directory::update_team(c, account, id, patch.clone()).await?;
            routing::drain_waiting(c, now, account, 0, &mut self.rng()).await?;
            Ok(team)
        })
    }

    async fn create_skill(&self, account: AccountId, input: NewSkill) -> Result<Skill> {
        transaction!(self, |c, _now| {
            directory::create_skill(c, account, input.clone()).await
        })
    }

    async fn list_skills(&self, account: AccountId) -> Result<Vec<Skill>> {
        let mut c = self.pool.acquire().await?;
        directory::list_skills(&mut c, account).await
    }

    async fn create_contact(&self, account: AccountId, input: NewContact) -> Result<Contact> {
        transaction!(self, |c, now| {
            directory::create_contact(c, now, account, input.clone()).await
        })
    }

    async fn get_contact(&self, account: AccountId, id: ContactId) -> Result<Contact> {
        let mut c = self.pool.acquire().await?;
        directory::get_contact(&mut c, account, id).await
    }

    async fn list_contacts(
        &self,
        account: AccountId,
        cursor: Option<i64>,
        limit: u32,
    ) -> Result<Page<Contact>> {
        let mut c = self.pool.acquire().await?;
        directory::list_contacts(&mut c, account, cursor, limit).await
    }

    async fn update_contact(
        &self,
        account: AccountId,
        id: ContactId,
        patch: ContactPatch,
    ) -> Result<Contact> {
        transaction!(self, |c, _now| {
            directory::update_contact(c, account, id, patch.clone()).await
        })
    }

    async fn create_channel(
        &self,
        account: AccountId,
        input: NewChannel,
        key: String,
    ) -> Result<Channel> {
        transaction!(self, |c, now| {
            directory::create_channel(c, now, account, input.clone(), key.clone()).await
        })
    }

    async fn get_channel(&self, account: AccountId, id: ChannelId) -> Result<Channel> {
        let mut c = self.pool.acquire().await?;
        directory::get_channel(&mut c, account, id).await
    }

    async fn list_channels(&self, account: AccountId) -> Result<Vec<Channel>> {
        let mut c = self.pool.acquire().await?;
        directory::list_channels(&mut c, account).await
    }

    async fn update_channel(
        &self,
        account: AccountId,
        id: ChannelId,
        patch: ChannelPatch,
    ) -> Result<Channel> {
        transaction!(self, |c, now| {
            routing::lock_account(c, account).await?;
            let channel = directory::update_channel(c, account, id, patch.clone()).await?;
            routing::drain_waiting(c, now, account, 0, &mut self.rng()).await?;
            Ok(channel)
        })
    }

    async fn channel_by_key(&self, key: String) -> Result<(AccountId, Channel)> {
        let mut c = self.pool.acquire().await?;
        channels::channel_by_key(&mut c, &key).await
    }

    async fn channels_of_kind(&self, kind: ChannelKind) -> Result<Vec<(AccountId, Channel)>> {
        let mut c = self.pool.acquire().await?;
        channels::channels_of_kind(&mut c, kind).await
    }
}

#[async_trait]
impl Tickets for PgStore {
    async fn create_ticket(
        &self,
        account: AccountId,
        input: NewTicket,
        idempotency: Option<Idempotency>,
        actor: Actor,
    ) -> Result<Created<Ticket>> {
        // Routed creates of an account run one after the other (the
        // routing lock); those without an Idempotency-Key run together
        // (`batch`). A key takes a lock of its own before the routing lock,
        // which a batch, holding the routing lock already, could not.
        if idempotency.is_none()
            && let Some(channel) = input.channel_id
            && tickets::channel_routed(&self.pool, account, channel).await?
        {
            return self.create_routed(account, input, actor).await;
        }
        transaction!(self, |c, now| {
            tickets::create(
                c,
                now,
                account,
                input.clone(),
                idempotency.clone(),
                actor,
                &mut self.rng(),
            )
            .await
        })
    }

    async fn get_ticket(&self, account: AccountId, id: TicketId) -> Result<Ticket> {
        let mut c = self.pool.acquire().await?;
        writes::get(&mut c, account, id).await
    }

    async fn list_tickets(
        &self,
        account: AccountId,
        caller: UserId,
        query: TicketQuery,
    ) -> Result<Page<Ticket>> {
        let mut c = self.pool.acquire().await?;
        tickets::list(&mut c, account, caller, &query).await
    }

    async fn update_ticket(
        &self,
        account: AccountId,
        id: TicketId,
        patch: TicketPatch,
        actor: Actor,
    ) -> Result<Ticket> {
        transaction!(self, |c, now| {
            routing::lock_account(c, account).await?;
            tickets::update(c, now, account, id, patch.clone(), actor, &mut self.rng()).await
        })
    }

    async fn set_owner(
        &self,
        account: AccountId,
        id: TicketId,
        requested: Owner,
        actor: Actor,
    ) -> Result<Ticket> {
        transaction!(self, |c, now| {
            routing::lock_account(c, account).await?;
            tickets::set_owner(c, now, account, id, requested, actor, &mut self.rng()).await
        })
    }

    async fn add_message(
        &self,
        account: AccountId,
        id: TicketId,
        message: NewMessage,
    ) -> Result<(Message, Ticket)> {
        transaction!(self, |c, now| {
            routing::lock_account(c, account).await?;
            tickets::add_message(c, now, account, id, message.clone()).await
        })
    }

    async fn list_messages(&self, account: AccountId, id: TicketId) -> Result<Vec<Message>> {
        let mut c = self.pool.acquire().await?;
        tickets::messages(&mut c, account, id).await
    }

    async fn history(&self, account: AccountId, id: TicketId) -> Result<Vec<HistoryEntry>> {
        let mut c = self.pool.acquire().await?;
        tickets::history(&mut c, account, id).await
    }

    async fn find_by_external_id(
        &self,
        account: AccountId,
        external_ids: Vec<String>,
    ) -> Result<Option<(TicketId, switchboard_domain::MessageId)>> {
        let mut c = self.pool.acquire().await?;
        channels::find_by_external_id(&mut c, account, &external_ids).await
    }

    async fn add_attachments(
        &self,
        account: AccountId,
        message: switchboard_domain::MessageId,
        files: Vec<crate::NewAttachment>,
    ) -> Result<Vec<crate::Attachment>> {
        transaction!(self, |c, now| {
            channels::add_attachments(c, now, account, message, files.clone()).await
        })
    }

    async fn attachments(
        &self,
        account: AccountId,
        message: switchboard_domain::MessageId,
    ) -> Result<Vec<crate::Attachment>> {
        let mut c = self.pool.acquire().await?;
        channels::attachments(&mut c, account, message).await
    }

    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<crate::TicketEvent> {
        self.events.subscribe()
    }
}

#[async_trait]
impl Routing for PgStore {
    async fn routing_log(&self, account: AccountId, id: TicketId) -> Result<Vec<RoutingRecord>> {
        let mut c = self.pool.acquire().await?;
        routing::log(&mut c, account, id).await
    }

    async fn availability(&self, account: AccountId, user: UserId) -> Result<AvailabilityState> {
        let now = self.clock.now();
        let mut c = self.pool.acquire().await?;
        let (settings, tz) = routing::availability_settings(&mut c, account, user).await?;
        let now = settings.at(&tz.zone(), now);
        Ok(AvailabilityState { settings, now })
    }

    async fn change_availability(
        &self,
        account: AccountId,
        user: UserId,
        change: AvailabilityChange,
    ) -> Result<AvailabilityState> {
        transaction!(self, |c, now| {
            routing::lock_account(c, account).await?;
            let (mut settings, tz) = routing::availability_settings(c, account, user).await?;
            let was_available = settings.at(&tz.zone(), now).is_available();
            match change.clone() {
                AvailabilityChange::Manual(m) => settings.manual = m,
                AvailabilityChange::WorkingHours(h) => settings.working_hours = h,
                AvailabilityChange::AddOutOfOffice(o) => {
                    // Ranges that have ended are dropped as new ones come in.
                    settings.out_of_office.retain(|r| r.end > now);
                    settings.out_of_office.push(o);
                }
            }
            sqlx::query("UPDATE users SET availability = $1 WHERE id = $2 AND account_id = $3")
                .bind(serde_json::to_string(&settings).map_err(backend)?)
                .bind(user.0)
                .bind(account.0)
                .execute(&mut *c)
                .await?;
            routing_state::changed(
                account,
                switchboard_domain::routing::StateDelta::AvailabilitySettings {
                    user,
                    settings: settings.clone(),
                },
            );
            let now = routing::availability_changed(
                c,
                now,
                account,
                user,
                was_available,
                &mut self.rng(),
            )
            .await?;
            Ok(AvailabilityState { settings, now })
        })
    }

    async fn run_due_jobs(&self) -> Result<usize> {
        // Each job runs in its own transaction; `run_due_jobs` claims jobs
        // with FOR UPDATE SKIP LOCKED, so nodes never run the same job.
        let mut done = 0;
        loop {
            let ran = transaction!(self, |c, now| {
                routing::run_one_due_job(c, now, &mut self.rng()).await
            })?;
            if !ran {
                break Ok(done);
            }
            done += 1;
        }
    }

    async fn ring_order(&self, account: AccountId, id: TicketId) -> Result<Vec<UserId>> {
        // Under the account's routing lock the kept state is exact.
        transaction!(self, |c, now| {
            routing::lock_account(c, account).await?;
            routing::ring_order(c, now, account, id).await
        })
    }

    async fn counter_drift(&self, account: AccountId) -> Result<Vec<String>> {
        let now = self.now();
        let mut c = self.pool.acquire().await?;
        routing::counter_drift(&mut c, now, account).await
    }
}

/// Turns "no row" into [`StoreError::NotFound`].
pub(crate) trait OrNotFound<T> {
    fn or_not_found(self, what: &'static str) -> Result<T>;
}

impl<T> OrNotFound<T> for std::result::Result<Option<T>, sqlx::Error> {
    fn or_not_found(self, what: &'static str) -> Result<T> {
        match self {
            Ok(Some(v)) => Ok(v),
            Ok(None) => Err(StoreError::NotFound(what)),
            Err(e) => Err(backend(e)),
        }
    }
}
