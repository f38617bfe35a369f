//! The embedded SQLite backend.
//!
//! - [`writer`]: the one writer thread and its group commit;
//! - [`schema`]: versioned migrations;
//! - [`checkpoint`]: WAL checkpoints on a thread of their own;
//! - [`rows`]: column lists and row mapping;
//! - [`directory`]: accounts, tokens, users, teams, skills, contacts, channels;
//! - [`tickets`]: tickets, messages and history;
//! - [`writes`]: the writes every change is made of (ticket saved with its
//!   counters, owner moved, history line and event, job, notification),
//!   below both `tickets` and `routing`;
//! - [`channels`]: external ids, channels by key, attachments;
//! - [`routing`]: routing decisions applied, the waiting queue, the scheduler;
//! - [`routing_state`]: each account's routing state, kept on the writer thread;
//! - [`outbox`]: the transactional outbox (claims, outcomes, manual retries);
//! - [`events`]: the durable event sequence (Last-Event-ID) and its retention.
//!
//! Reads run on a small pool of read-only connections on tokio's blocking
//! threads; in WAL mode they never wait for the writer.

mod channels;
mod checkpoint;
mod directory;
mod events;
mod kept;
mod notifications;
mod outbox;
mod routing;
mod routing_state;
mod rows;
pub(crate) mod schema;
mod tickets;
mod workflow_steps;
mod workflows;
mod writer;
mod writes;

use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use async_trait::async_trait;
use rusqlite::{Connection, OpenFlags};
use switchboard_domain::{
    Account, AccountId, Actor, Channel, ChannelId, ChannelKind, Clock, Contact, ContactId,
    HistoryEntry, Message, Name, Owner, Principal, Skill, Team, TeamId, Ticket, TicketId, User,
    UserId, input::*,
};

use crate::{
    AvailabilityChange, AvailabilityState, Created, Directory, EventLog, EventsSince, Idempotency,
    NewMessage, Outbox, OutboxEntry, OutboxOutcome, OutboxState, Page, Result, Routing,
    RoutingRecord, StoreError, TicketQuery, Tickets, TokenInfo,
};
pub use writer::MAX_BATCH;

/// Read connections. Reads wait for a free one (an async semaphore) instead
/// of opening more, so connections, and their prepared statements, are
/// reused: opening one means parsing the schema again.
const READERS: usize = 4;

/// Scheduler jobs run per write (see `run_due_jobs`).
const JOBS_PER_WRITE: usize = 8;

/// Scheduler jobs run per call of `run_due_jobs` at most; the rest wait for
/// the next tick.
const MAX_JOBS_PER_TICK: usize = 10_000;

/// Prepared statements kept per connection; the ticket path alone uses more
/// than rusqlite's default of 16, and re-preparing costs more than running.
const STATEMENT_CACHE: usize = 128;

/// How long a connection waits for a lock another one holds.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The SQLite store. Cheap to share behind an `Arc`; dropping the last
/// reference commits queued writes and stops the writer thread.
pub struct SqliteStore {
    writer: writer::Writer,
    /// Checkpoints the WAL off the writer thread.
    checkpointer: checkpoint::Checkpointer,
    readers: Arc<Readers>,
    clock: Arc<dyn Clock>,
    /// Ticket events, sent by the writer after each commit.
    events: tokio::sync::broadcast::Sender<crate::TicketEvent>,
    /// The random source of the `random` distribution; only the writer
    /// thread uses it.
    rng: Arc<Mutex<crate::SplitMix>>,
}

struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    permits: tokio::sync::Semaphore,
}

impl Readers {
    /// An idle connection, or a new one while fewer than [`READERS`] exist
    /// (the semaphore guarantees that).
    fn take(&self) -> Result<Connection> {
        if let Some(conn) = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop() {
            return Ok(conn);
        }
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(backend)?;
        configure(&conn)?;
        Ok(conn)
    }

    fn give_back(&self, conn: Connection) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        // A read whose caller went away may still hold a connection past its
        // permit; never keep more than the pool size.
        if idle.len() < READERS {
            idle.push(conn);
        }
    }
}

/// Settings every connection gets.
fn configure(conn: &Connection) -> Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT).map_err(backend)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    // The query planner stability guarantee: a plan never depends on the
    // values bound to it. Without it, SQLite (built with STAT4, as the
    // bundled one is) marks some cached statements to be re-planned each
    // time a parameter is re-bound: the notifications' "everyone in the
    // account" query was parsed and planned again on every create, a third
    // of the writer thread's time (perf, `sqlite3Reprepare`).
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )
    .map_err(backend)?;
    Ok(())
}

/// Turns off SQLite's global memory statistics: they take a process-wide
/// mutex on every allocation, which the writer and the readers then fight
/// over. Must run before SQLite initialises; later calls are refused by
/// SQLite and harmless.
fn disable_memory_statistics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: sqlite3_config is called before any connection is opened
        // by this process (Once, and `open` calls this first); if SQLite is
        // already initialised it returns SQLITE_MISUSE and changes nothing.
        unsafe {
            rusqlite::ffi::sqlite3_config(
                rusqlite::ffi::SQLITE_CONFIG_MEMSTATUS,
                0 as std::ffi::c_int,
            );
        }
    });
}

/// Wraps a database error as [`StoreError::Backend`].
pub(crate) fn backend(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Backend(Box::new(e))
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        backend(e)
    }
}

/// Like [`unique`], for a message's provider id: a clash there is the same
/// delivery stored again ([`StoreError::Duplicate`]).
pub(crate) fn duplicate(e: rusqlite::Error, field: &'static str, message: &str) -> StoreError {
    match unique(e, field, message) {
        StoreError::Conflict { field, message } => StoreError::Duplicate { field, message },
        other => other,
    }
}

/// Maps a uniqueness violation to a [`StoreError::Conflict`] on `field`, and
/// any other error to a backend error.
pub(crate) fn unique(e: rusqlite::Error, field: &'static str, message: &str) -> StoreError {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::ConstraintViolation) => StoreError::Conflict {
            field,
            message: message.to_owned(),
        },
        _ => backend(e),
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`, migrates it, and
    /// starts the writer thread.
    pub fn open(path: &Path, clock: Arc<dyn Clock>) -> Result<Self> {
        disable_memory_statistics();
        let mut conn = Connection::open(path).map_err(backend)?;
        // Durability: an acknowledged write survives a crash or power loss.
        // The writer commits each batch with synchronous=NORMAL (no fsync in
        // the commit) and its syncer thread fsyncs the WAL before anyone is
        // answered (`writer`): one fsync per batch or fewer, and the writer
        // never waits for one.
        // Each job of a batch runs in a savepoint, whose undo pages go to a
        // statement journal: in memory (`temp_store`), or SQLite spills it
        // to a temporary file past 64 KiB, and a batch's pwrites to that
        // file took a third of the writer's time (perf). An 8 MiB page
        // cache keeps the hot B-tree pages of a busy batch in memory (the
        // OS page cache holds the rest); 64 MiB made every commit scan a
        // page-cache hash sized for it (`pcache1TruncateUnsafe`, 8% of a
        // routed create's samples over 1,000 agents, 1.5% at 8 MiB).
        // Checkpoints run on a thread of their own (`checkpoint`).
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             PRAGMA foreign_keys = ON;
             PRAGMA temp_store = MEMORY;
             PRAGMA cache_size = -8192;
             PRAGMA wal_autocheckpoint = 0;",
        )
        .map_err(backend)?;
        configure(&conn)?;
        schema::migrate(&mut conn)?;
        let (events, _) = tokio::sync::broadcast::channel(crate::EVENT_BUFFER);
        let restart = checkpoint::RestartWanted::default();
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        let writer = writer::Writer::spawn(conn, wal.into(), events.clone(), restart.clone())
            .map_err(backend)?;
        let checkpointer = checkpoint::Checkpointer::spawn(path, restart).map_err(backend)?;
        Ok(Self {
            writer,
            checkpointer,
            readers: Arc::new(Readers {
                path: path.to_owned(),
                idle: Mutex::new(Vec::new()),
                permits: tokio::sync::Semaphore::new(READERS),
            }),
            clock,
            events,
            rng: Arc::new(Mutex::new(crate::SplitMix(
                jiff::Timestamp::now().as_nanosecond() as u64,
            ))),
        })
    }

    /// Seeds the random distribution, so tests are deterministic.
    pub fn with_seed(self, seed: u64) -> Self {
        *self.rng.lock().unwrap_or_else(|e| e.into_inner()) = crate::SplitMix(seed);
        self
    }

    /// Like `write`, with the random source too.
    async fn write_routed<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, jiff::Timestamp, &mut crate::SplitMix) -> Result<T> + Send + 'static,
    {
        let rng = self.rng.clone();
        self.write(move |c, now| {
            let mut rng = rng.lock().unwrap_or_else(|e| e.into_inner());
            f(c, now, &mut rng)
        })
        .await
    }

    /// Commits what is queued and stops the writer. Later writes fail with
    /// [`StoreError::ShuttingDown`]. Dropping the store does the same.
    pub fn close(&self) {
        self.writer.close();
        self.checkpointer.close();
    }

    async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, jiff::Timestamp) -> Result<T> + Send + 'static,
    {
        let clock = self.clock.clone();
        // The time is read on the writer thread so that history entries are
        // ordered like the commits that wrote them.
        self.writer
            .write(move |conn| f(conn, crate::stored_time(clock.now())))
            .await
    }

    async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let readers = self.readers.clone();
        let _permit = self.readers.permits.acquire().await.map_err(backend)?;
        tokio::task::spawn_blocking(move || {
            let conn = readers.take()?;
            let result = f(&conn);
            readers.give_back(conn);
            result
        })
        .await
        .map_err(backend)?
    }
}

#[async_trait]
impl Outbox for SqliteStore {
    async fn claim_outbox(
        &self,
        limit: u32,
        lease: std::time::Duration,
    ) -> Result<Vec<OutboxEntry>> {
        self.write(move |c, now| outbox::claim(c, now, limit, lease))
            .await
    }

    async fn complete_outbox(&self, id: i64, attempt: u32, outcome: OutboxOutcome) -> Result<bool> {
        self.write(move |c, now| outbox::complete(c, now, id, attempt, outcome))
            .await
    }

    async fn list_outbox(
        &self,
        account: AccountId,
        state: Option<OutboxState>,
        limit: u32,
    ) -> Result<Vec<OutboxEntry>> {
        self.read(move |c| outbox::list(c, account, state, limit))
            .await
    }

    async fn retry_outbox(&self, account: AccountId, id: i64) -> Result<OutboxEntry> {
        self.write(move |c, now| outbox::retry(c, now, account, id))
            .await
    }

    async fn count_outbox(&self, state: OutboxState) -> Result<u64> {
        self.read(move |c| outbox::count(c, state)).await
    }

    async fn set_message_external_id(
        &self,
        account: AccountId,
        message: switchboard_domain::MessageId,
        external_id: String,
    ) -> Result<bool> {
        self.write(move |c, _| outbox::set_external_id(c, account, message, &external_id))
            .await
    }
}

#[async_trait]
impl EventLog for SqliteStore {
    async fn events_since(
        &self,
        account: AccountId,
        after: i64,
        limit: u32,
    ) -> Result<EventsSince> {
        self.read(move |c| events::since(c, account, after, limit))
            .await
    }

    async fn latest_event_seq(&self) -> Result<i64> {
        self.read(events::latest).await
    }

    async fn purge_events(&self, retention: std::time::Duration) -> Result<u64> {
        self.write(move |c, now| events::purge(c, now, retention))
            .await
    }
}

#[async_trait]
impl Directory for SqliteStore {
    async fn create_account(
        &self,
        name: Name,
        admin: NewUser,
        admin_token_hash: String,
    ) -> Result<(Account, User)> {
        self.write(move |c, now| directory::create_account(c, now, name, admin, admin_token_hash))
            .await
    }

    async fn account_count(&self) -> Result<u64> {
        self.read(|c| {
            Ok(c.query_row("SELECT count(*) FROM accounts", [], |r| r.get::<_, i64>(0))? as u64)
        })
        .await
    }

    async fn first_account(&self) -> Result<Option<Account>> {
        self.read(directory::first_account).await
    }

    async fn create_token(
        &self,
        account: AccountId,
        user: UserId,
        name: String,
        token_hash: String,
    ) -> Result<TokenInfo> {
        self.write(move |c, now| directory::create_token(c, now, account, user, name, token_hash))
            .await
    }

    async fn authenticate(&self, token_hash: String) -> Result<Option<Principal>> {
        self.read(move |c| directory::authenticate(c, &token_hash))
            .await
    }

    async fn create_user(&self, account: AccountId, input: NewUser) -> Result<User> {
        self.write_routed(move |c, now, rng| {
            let user = directory::create_user(c, now, account, input)?;
            routing::drain_waiting(c, now, account, 0, rng)?;
            Ok(user)
        })
        .await
    }

    async fn get_user(&self, account: AccountId, id: UserId) -> Result<User> {
        self.read(move |c| directory::get_user(c, account, id))
            .await
    }

    async fn list_users(&self, account: AccountId) -> Result<Vec<User>> {
        self.read(move |c| directory::list_users(c, account)).await
    }

    async fn update_user(&self, account: AccountId, id: UserId, patch: UserPatch) -> Result<User> {
        self.write_routed(move |c, now, rng| {
            let zone_changed = patch.time_zone.is_some();
            let before = routing::availability_settings(c, account, id)?;
            let user = directory::update_user(c, account, id, patch)?;
            if zone_changed {
                // Working hours are read in the new zone: reschedule.
                let was = before.0.at(&before.1.zone(), now).is_available();
                routing::availability_changed(c, now, account, id, was, rng)?;
            }
            // A seat, capacity or reactivation may make waiting tickets assignable.
            routing::drain_waiting(c, now, account, 0, rng)?;
            Ok(user)
        })
        .await
    }

    async fn create_team(&self, account: AccountId, input: NewTeam) -> Result<Team> {
        self.write(move |c, now| directory::create_team(c, now, account, input))
            .await
    }

    async fn get_team(&self, account: AccountId, id: TeamId) -> Result<Team> {
        self.read(move |c| directory::get_team(c, account, id))
            .await
    }

    async fn list_teams(&self, account: AccountId) -> Result<Vec<Team>> {
        self.read(move |c| directory::list_teams(c, account)).await
    }

    async fn update_team(&self, account: AccountId, id: TeamId, patch: TeamPatch) -> Result<Team> {
        self.write_routed(move |c, now, rng| {
            let team = directory::update_team(c, account, id, patch)?;
            routing::drain_waiting(c, now, account, 0, rng)?;
            Ok(team)
        })
        .await
    }

    async fn create_skill(&self, account: AccountId, input: NewSkill) -> Result<Skill> {
        self.write(move |c, _| directory::create_skill(c, account, input))
            .await
    }

    async fn list_skills(&self, account: AccountId) -> Result<Vec<Skill>> {
        self.read(move |c| directory::list_skills(c, account)).await
    }

    async fn create_contact(&self, account: AccountId, input: NewContact) -> Result<Contact> {
        self.write(move |c, now| directory::create_contact(c, now, account, input))
            .await
    }

    async fn get_contact(&self, account: AccountId, id: ContactId) -> Result<Contact> {
        self.read(move |c| directory::get_contact(c, account, id))
            .await
    }

    async fn list_contacts(
        &self,
        account: AccountId,
        cursor: Option<i64>,
        limit: u32,
    ) -> Result<Page<Contact>> {
        self.read(move |c| directory::list_contacts(c, account, cursor, limit))
            .await
    }

    async fn update_contact(
        &self,
        account: AccountId,
        id: ContactId,
        patch: ContactPatch,
    ) -> Result<Contact> {
        self.write(move |c, _| directory::update_contact(c, account, id, patch))
            .await
    }

    async fn create_channel(
        &self,
        account: AccountId,
        input: NewChannel,
        key: String,
    ) -> Result<Channel> {
        self.write(move |c, now| directory::create_channel(c, now, account, input, key))
            .await
    }

    async fn get_channel(&self, account: AccountId, id: ChannelId) -> Result<Channel> {
        self.read(move |c| directory::get_channel(c, account, id))
            .await
    }

    async fn list_channels(&self, account: AccountId) -> Result<Vec<Channel>> {
        self.read(move |c| directory::list_channels(c, account))
            .await
    }

    async fn update_channel(
        &self,
        account: AccountId,
        id: ChannelId,
        patch: ChannelPatch,
    ) -> Result<Channel> {
        self.write_routed(move |c, now, rng| {
            let channel = directory::update_channel(c, account, id, patch)?;
            routing::drain_waiting(c, now, account, 0, rng)?;
            Ok(channel)
        })
        .await
    }

    async fn channel_by_key(&self, key: String) -> Result<(AccountId, Channel)> {
        self.read(move |c| channels::channel_by_key(c, &key)).await
    }

    async fn channels_of_kind(&self, kind: ChannelKind) -> Result<Vec<(AccountId, Channel)>> {
        self.read(move |c| channels::channels_of_kind(c, kind))
            .await
    }
}

#[async_trait]
impl Tickets for SqliteStore {
    async fn create_ticket(
        &self,
        account: AccountId,
        input: NewTicket,
        idempotency: Option<Idempotency>,
        actor: Actor,
    ) -> Result<Created<Ticket>> {
        self.write_routed(move |c, now, rng| {
            tickets::create(c, now, account, input, idempotency, actor, rng)
        })
        .await
    }

    async fn get_ticket(&self, account: AccountId, id: TicketId) -> Result<Ticket> {
        self.read(move |c| writes::get(c, account, id)).await
    }

    async fn list_tickets(
        &self,
        account: AccountId,
        caller: UserId,
        query: TicketQuery,
    ) -> Result<Page<Ticket>> {
        self.read(move |c| tickets::list(c, account, caller, &query))
            .await
    }

    async fn update_ticket(
        &self,
        account: AccountId,
        id: TicketId,
        patch: TicketPatch,
        actor: Actor,
    ) -> Result<Ticket> {
        self.write_routed(move |c, now, rng| {
            tickets::update(c, now, account, id, patch, actor, rng)
        })
        .await
    }

    async fn set_owner(
        &self,
        account: AccountId,
        id: TicketId,
        requested: Owner,
        actor: Actor,
    ) -> Result<Ticket> {
        self.write_routed(move |c, now, rng| {
            tickets::set_owner(c, now, account, id, requested, actor, rng)
        })
        .await
    }

    async fn add_message(
        &self,
        account: AccountId,
        id: TicketId,
        message: NewMessage,
    ) -> Result<(Message, Ticket)> {
        self.write(move |c, now| tickets::add_message(c, now, account, id, message))
            .await
    }

    async fn list_messages(&self, account: AccountId, id: TicketId) -> Result<Vec<Message>> {
        self.read(move |c| tickets::messages(c, account, id)).await
    }

    async fn history(&self, account: AccountId, id: TicketId) -> Result<Vec<HistoryEntry>> {
        self.read(move |c| tickets::history(c, account, id)).await
    }

    async fn find_by_external_id(
        &self,
        account: AccountId,
        external_ids: Vec<String>,
    ) -> Result<Option<(TicketId, switchboard_domain::MessageId)>> {
        self.read(move |c| channels::find_by_external_id(c, account, &external_ids))
            .await
    }

    async fn add_attachments(
        &self,
        account: AccountId,
        message: switchboard_domain::MessageId,
        files: Vec<crate::NewAttachment>,
    ) -> Result<Vec<crate::Attachment>> {
        self.write(move |c, now| channels::add_attachments(c, now, account, message, files))
            .await
    }

    async fn attachments(
        &self,
        account: AccountId,
        message: switchboard_domain::MessageId,
    ) -> Result<Vec<crate::Attachment>> {
        self.read(move |c| channels::attachments(c, account, message))
            .await
    }

    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<crate::TicketEvent> {
        self.events.subscribe()
    }
}

#[async_trait]
impl Routing for SqliteStore {
    async fn routing_log(&self, account: AccountId, id: TicketId) -> Result<Vec<RoutingRecord>> {
        self.read(move |c| routing::log(c, account, id)).await
    }

    async fn availability(&self, account: AccountId, user: UserId) -> Result<AvailabilityState> {
        let now = self.clock.now();
        self.read(move |c| {
            let (settings, tz) = routing::availability_settings(c, account, user)?;
            let now = settings.at(&tz.zone(), now);
            Ok(AvailabilityState { settings, now })
        })
        .await
    }

    async fn change_availability(
        &self,
        account: AccountId,
        user: UserId,
        change: AvailabilityChange,
    ) -> Result<AvailabilityState> {
        self.write_routed(move |c, now, rng| {
            let (mut settings, tz) = routing::availability_settings(c, account, user)?;
            let was_available = settings.at(&tz.zone(), now).is_available();
            match change {
                AvailabilityChange::Manual(m) => settings.manual = m,
                AvailabilityChange::WorkingHours(h) => settings.working_hours = h,
                AvailabilityChange::AddOutOfOffice(o) => {
                    // Ranges that have ended are dropped as new ones come in.
                    settings.out_of_office.retain(|r| r.end > now);
                    settings.out_of_office.push(o);
                }
            }
            c.execute(
                "UPDATE users SET availability = ?1 WHERE id = ?2 AND account_id = ?3",
                rusqlite::params![
                    serde_json::to_string(&settings).map_err(backend)?,
                    user.0,
                    account.0
                ],
            )?;
            let kept = settings.clone();
            routing_state::if_loaded(account, |s| s.set_availability_settings(user, kept));
            let now = routing::availability_changed(c, now, account, user, was_available, rng)?;
            Ok(AvailabilityState { settings, now })
        })
        .await
    }

    async fn run_due_jobs(&self) -> Result<usize> {
        // A few jobs per write, so due jobs (each may route a batch of
        // waiting tickets) never hold the writer for long at a time.
        let mut ran = 0;
        loop {
            let n = self
                .write_routed(|c, now, rng| routing::run_due_jobs(c, now, JOBS_PER_WRITE, rng))
                .await?;
            ran += n;
            // Stop only when a write found nothing due: a job may leave
            // another due now (a drain of the waiting queue goes on in a
            // `drain_waiting` job), which runs in this call, as on
            // PostgreSQL, not a tick later.
            if n == 0 || ran >= MAX_JOBS_PER_TICK {
                return Ok(ran);
            }
        }
    }

    async fn ring_order(&self, account: AccountId, id: TicketId) -> Result<Vec<UserId>> {
        // The routing state lives on the writer thread: read it there.
        self.write(move |c, now| routing::ring_order(c, now, account, id))
            .await
    }

    async fn counter_drift(&self, account: AccountId) -> Result<Vec<String>> {
        let now = crate::stored_time(self.clock.now());
        self.read(move |c| routing::counter_drift(c, now, account))
            .await
    }
}

/// Turns "no row" into [`StoreError::NotFound`].
pub(crate) trait OrNotFound<T> {
    fn or_not_found(self, what: &'static str) -> Result<T>;
}

impl<T> OrNotFound<T> for rusqlite::Result<T> {
    fn or_not_found(self, what: &'static str) -> Result<T> {
        match self {
            Ok(v) => Ok(v),
            Err(rusqlite::Error::QueryReturnedNoRows) => Err(StoreError::NotFound(what)),
            Err(e) => Err(backend(e)),
        }
    }
}
