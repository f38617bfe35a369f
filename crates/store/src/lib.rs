//! Storage for Switchboard: one interface ([`Store`]) and its backends.
//!
//! Map of the modules:
//! - this file: the [`Store`] trait (the sum of [`Directory`], [`Tickets`],
//!   [`Routing`], [`Outbox`], [`EventLog`], [`Notifications`] and
//!   [`Workflows`]), their query and result
//!   types, [`StoreError`].
//! - [`sqlite`]: the embedded backend on rusqlite. One writer thread commits
//!   concurrent writes together (group commit); a small pool of reader
//!   connections serves reads. WAL mode; a write is answered once a
//!   second thread has fsynced the WAL that holds it.
//! - [`postgres`]: the backend for several nodes on one PostgreSQL (sqlx);
//!   routing writes of an account are serialised by an advisory lock.
//! - [`migrate`]: copying an SQLite database into an empty PostgreSQL one.
//! - [`conformance`]: the behaviour every backend must show, as async test
//!   functions, and [`conformance_tests!`] to run them all against one backend.
//!
//! Rules every backend keeps:
//! - every query is scoped by [`AccountId`]; a record of another account is
//!   reported as [`StoreError::NotFound`], exactly like a missing one;
//! - a write that returned `Ok` is durable (committed and synced);
//! - decisions that read and then write (reply-assigns-owner, idempotent
//!   create) happen inside one transaction, using the pure rules of
//!   `switchboard_domain::triage`.

pub mod conformance;
pub mod migrate;
pub mod postgres;
pub mod sqlite;

use async_trait::async_trait;
use switchboard_domain::{
    Account, AccountId, Actor, Channel, ChannelId, Contact, ContactId, DomainError, HistoryEntry,
    Message, MessageKind, Name, Owner, Principal, Priority, Skill, Team, TeamId, Ticket, TicketId,
    TicketType, TokenId, User, UserId,
    input::{
        ChannelPatch, ContactPatch, NewChannel, NewContact, NewSkill, NewTeam, NewTicket, NewUser,
        TeamPatch, TicketPatch, UserPatch,
    },
};

/// Every store trait, for code that calls a concrete backend
/// (`use switchboard_store::prelude::*;`); through `dyn Store` they are all
/// reachable already.
pub mod prelude {
    pub use crate::{
        Directory, EventLog, Notifications, Outbox, Routing, Store, Tickets, Workflows,
    };
}

mod notifications;
mod workflows;
pub use notifications::*;
pub use postgres::PgStore;
pub use sqlite::SqliteStore;
pub use workflows::*;

/// The result type of every store call.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Why a store call failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No such record in this account (or it belongs to another account).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The change would break a uniqueness rule or reuse a key differently.
    #[error("{field}: {message}")]
    Conflict {
        /// The input field at fault.
        field: &'static str,
        /// What clashes.
        message: String,
    },
    /// The same delivery again: a message with this provider id
    /// (`messages.external_id`: a Message-ID, a wamid, a CallSid) is already
    /// stored, so the message was received before. Channels treat it as
    /// done; the API answers 409 naming the field, like a conflict.
    #[error("{field}: {message}")]
    Duplicate {
        /// The input field at fault (`external_id`).
        field: &'static str,
        /// What clashes.
        message: String,
    },
    /// The change breaks a domain rule or names a record that does not exist.
    #[error(transparent)]
    Invalid(#[from] DomainError),
    /// The store is shutting down and takes no more writes.
    #[error("the store is shutting down")]
    ShuttingDown,
    /// The database failed; details are for the logs, not for clients.
    #[error("database error: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl StoreError {
    /// A patch that would leave the account without an active super admin.
    pub fn last_super_admin() -> Self {
        StoreError::Conflict {
            field: "role",
            message: switchboard_domain::directory::LAST_SUPER_ADMIN.into(),
        }
    }

    /// A manual retry of an outbox row that has not failed.
    pub fn not_retryable(state: switchboard_domain::outbox::OutboxState) -> Self {
        StoreError::Conflict {
            field: "state",
            message: format!(
                "only a failed row can be retried; this one is {}",
                state.as_str()
            ),
        }
    }
}

/// A page of a list, newest first. `next_cursor` is passed back to get the
/// following page and is `None` on the last one.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    /// The records on this page.
    pub items: Vec<T>,
    /// Where the next page starts, or `null` on the last page.
    pub next_cursor: Option<String>,
}

/// The ticket lists agents work from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum View {
    /// Open tickets with no owner user.
    Unassigned,
    /// Open tickets owned by the caller.
    Mine,
    /// Open tickets with no owner user, owned by one of the caller's teams.
    TeamUnassigned,
    /// Open tickets owned by one of the caller's teams.
    TeamOpen,
    /// All open tickets.
    Open,
    /// All closed tickets.
    Closed,
}

/// Which tickets to list. Filters combine with AND.
#[derive(Debug, Clone, Default)]
pub struct TicketQuery {
    /// A predefined view; `None` lists every ticket.
    pub view: Option<View>,
    /// Only this channel's tickets.
    pub channel_id: Option<ChannelId>,
    /// Only tickets of this type.
    pub ticket_type: Option<TicketType>,
    /// Only tickets owned by this user.
    pub owner_user_id: Option<UserId>,
    /// Only tickets owned by this team.
    pub team_id: Option<TeamId>,
    /// Only tickets of this priority.
    pub priority: Option<Priority>,
    /// Start after this cursor (from a previous page).
    pub cursor: Option<i64>,
    /// Page size (1 to 200).
    pub limit: u32,
}

/// An idempotency key and a fingerprint of the request it came with: a retry
/// with the same key and fingerprint gets the original ticket; the same key
/// with another fingerprint is a conflict.
#[derive(Debug, Clone)]
pub struct Idempotency {
    /// The client's key.
    pub key: String,
    /// A hash of the request body.
    pub fingerprint: String,
}

/// A ticket and whether this call created it (false when an idempotent retry
/// returned the original).
#[derive(Debug, Clone)]
pub struct Created<T> {
    /// The record.
    pub value: T,
    /// Whether it was created by this call.
    pub created: bool,
}

/// A message to add to a ticket.
#[derive(Debug, Clone)]
pub struct NewMessage {
    /// Inbound, reply or note.
    pub kind: MessageKind,
    /// Who wrote it.
    pub author: Actor,
    /// The text.
    pub body: String,
    /// The channel's own id for it.
    pub external_id: Option<String>,
}

/// A file that came with a message (an e-mail attachment, WhatsApp media).
#[derive(Debug, Clone)]
pub struct NewAttachment {
    /// The file name the sender gave, if any.
    pub filename: Option<String>,
    /// Its MIME type.
    pub content_type: String,
    /// The bytes, when the channel delivers them (e-mail).
    pub content: Option<Vec<u8>>,
    /// The provider's reference, when it delivers an id instead (WhatsApp media id).
    pub provider_ref: Option<String>,
}

/// A stored attachment's description (the bytes are fetched separately).
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct Attachment {
    /// Its id.
    pub id: i64,
    /// The message it came with.
    pub message_id: switchboard_domain::MessageId,
    /// The sender's file name.
    pub filename: Option<String>,
    /// MIME type.
    pub content_type: String,
    /// Size in bytes (0 when only a provider reference is stored).
    pub size: u64,
    /// The provider's reference (a WhatsApp media id), if any.
    pub provider_ref: Option<String>,
}

/// An API token's public description (never the token itself).
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct TokenInfo {
    /// Its id.
    pub id: TokenId,
    /// The user it acts as.
    pub user_id: UserId,
    /// A label.
    pub name: String,
    /// When it was created.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: jiff::Timestamp,
}

/// A change to a ticket: one line of its history, published to every node
/// once committed (PostgreSQL: `LISTEN/NOTIFY`; SQLite: in-process) and
/// streamed to the account's clients by `GET /api/v1/events`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct TicketEvent {
    /// The ticket's account (clients only see their own account's events).
    pub account_id: AccountId,
    /// The ticket.
    pub ticket_id: TicketId,
    /// `created`, `assigned`, `replied`, `message` (inbound or note),
    /// `closed`, `status_changed` or `updated`.
    pub kind: String,
    /// When it happened.
    #[schema(value_type = String, format = DateTime)]
    pub at: jiff::Timestamp,
    /// Who did it.
    pub actor: Actor,
    /// What happened, as in the ticket's history.
    pub event: switchboard_domain::HistoryEvent,
}

impl TicketEvent {
    /// The event for one history line.
    pub fn new(
        account_id: AccountId,
        ticket_id: TicketId,
        at: jiff::Timestamp,
        actor: Actor,
        event: &switchboard_domain::HistoryEvent,
    ) -> Self {
        use switchboard_domain::{HistoryEvent as E, Status};
        let kind = match event {
            E::Created { .. } => "created",
            E::OwnerChanged { .. } => "assigned",
            E::StatusChanged { to_status, .. } if *to_status == Status::Closed => "closed",
            E::StatusChanged { .. } => "status_changed",
            E::Updated { .. } => "updated",
            E::MessageAdded { kind, .. } if *kind == MessageKind::Reply => "replied",
            E::MessageAdded { .. } => "message",
            E::WorkflowStep { .. } => "workflow_step",
        };
        Self {
            account_id,
            ticket_id,
            kind: kind.to_owned(),
            at,
            actor,
            event: event.clone(),
        }
    }
}

/// How many live events a slow subscriber may fall behind on the in-process
/// channel. The channel is only a wake-up for event streams (they read the
/// durable [`EventLog`]), so falling behind loses nothing there.
pub const EVENT_BUFFER: usize = 1024;

/// A stored event and its place in the account-wide sequence (the SSE `id`).
#[derive(Debug, Clone, PartialEq)]
pub struct SequencedEvent {
    /// Its sequence number: increasing, never reused, visible in order.
    pub seq: i64,
    /// The event.
    pub event: TicketEvent,
}

/// What [`EventLog::events_since`] found.
#[derive(Debug, Clone, PartialEq)]
pub enum EventsSince {
    /// The next events after the one asked for, in order (possibly none).
    Events(Vec<SequencedEvent>),
    /// Events after the one asked for were deleted by retention (or the
    /// number was never handed out): the client must re-read, then resume
    /// from `latest`.
    Reset {
        /// The newest sequence number now.
        latest: i64,
    },
}

/// The durable event sequence: every history line's [`TicketEvent`] is a
/// row written in the transaction of the change, numbered so that readers
/// can resume after the last number they saw and never skip one (see the
/// backends' `events` modules for how each numbers rows in commit order).
#[async_trait]
pub trait EventLog: Send + Sync + 'static {
    /// Up to `limit` events of `account` numbered after `after`, in order;
    /// or [`EventsSince::Reset`] if some of them are gone.
    async fn events_since(&self, account: AccountId, after: i64, limit: u32)
    -> Result<EventsSince>;
    /// The newest sequence number handed out (0 when none): a client
    /// starting without `Last-Event-ID` starts there.
    async fn latest_event_seq(&self) -> Result<i64>;
    /// Deletes events older than `retention` (and outbox rows done that
    /// long ago); returns how many events went.
    async fn purge_events(&self, retention: std::time::Duration) -> Result<u64>;
}

/// One routing decision, as stored and served by `GET /tickets/{id}/routing`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct RoutingRecord {
    /// When it was decided.
    #[schema(value_type = String, format = DateTime)]
    pub at: jiff::Timestamp,
    /// What asked for it.
    pub trigger: switchboard_domain::routing::RoutingTrigger,
    /// The rule, every candidate's verdict, the outcome and why.
    pub explanation: switchboard_domain::routing::Explanation,
}

/// A change to a user's availability settings.
#[derive(Debug, Clone)]
pub enum AvailabilityChange {
    /// Sets (or with `None` clears) the manual status.
    Manual(Option<switchboard_domain::routing::ManualAvailability>),
    /// Sets (or with `None` clears) the weekly working hours.
    WorkingHours(Option<switchboard_domain::routing::WeeklyHours>),
    /// Adds an out-of-office range.
    AddOutOfOffice(switchboard_domain::routing::OutOfOffice),
}

/// A user's availability settings and what they mean now.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct AvailabilityState {
    /// The settings.
    pub settings: switchboard_domain::routing::AvailabilitySettings,
    /// Availability now, with the reason and until when.
    pub now: switchboard_domain::routing::Availability,
}

pub use switchboard_domain::outbox::{OutboxEntry, OutboxState, OutboxTopic};

/// How one run of a claimed outbox row ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutboxOutcome {
    /// It worked: the row is `done`.
    Done,
    /// It failed but may work later: the row stays `pending`, due again
    /// after `after` (from `domain::outbox::RetryPolicy`).
    Retry {
        /// How long from now.
        after: std::time::Duration,
        /// Why it failed (shown to admins; no secrets).
        error: String,
    },
    /// It failed for good: the row is `failed` until retried by hand.
    Failed {
        /// Why (shown to admins; no secrets).
        error: String,
    },
}

/// The transactional outbox (see `domain::outbox`). Rows are written by the
/// store itself, in the transaction of the change that calls for them (a
/// reply on an e-mail or WhatsApp ticket, in `add_message`); these methods
/// are how the dispatcher runs them and how admins look at them.
///
/// Delivery is at least once: a row is claimed with a lease (its `run_at`
/// moves to the end of the lease), so a runner that dies before recording
/// the outcome loses its claim when the lease ends and the row runs again.
#[async_trait]
pub trait Outbox: Send + Sync + 'static {
    /// Claims up to `limit` due pending rows of every account: each one's
    /// `attempts` goes up by one and its `run_at` moves to now + `lease`, so
    /// no other runner (on any node) takes it meanwhile. Oldest due first.
    async fn claim_outbox(
        &self,
        limit: u32,
        lease: std::time::Duration,
    ) -> Result<Vec<OutboxEntry>>;
    /// Records how the run of a row claimed with `attempts == attempt` ended.
    /// Returns `false` (and changes nothing) if the row is no longer that
    /// claim (its lease ran out and someone else claimed it, or an admin
    /// changed it): the attempt count fences stale runners off.
    async fn complete_outbox(&self, id: i64, attempt: u32, outcome: OutboxOutcome) -> Result<bool>;
    /// The account's rows, newest first, optionally only in one state.
    async fn list_outbox(
        &self,
        account: AccountId,
        state: Option<OutboxState>,
        limit: u32,
    ) -> Result<Vec<OutboxEntry>>;
    /// Puts a `failed` row back to `pending`, due now, with a fresh count of
    /// attempts. `NotFound` for another account's row; `Conflict` on `state`
    /// if the row is not failed.
    async fn retry_outbox(&self, account: AccountId, id: i64) -> Result<OutboxEntry>;
    /// How many rows of every account are in `state` (for the metrics gauge).
    async fn count_outbox(&self, state: OutboxState) -> Result<u64>;
    /// Records the channel's id for a message sent out (a WhatsApp wamid),
    /// unless it already has one: a delivery retried after it succeeded sees
    /// the id and sends nothing, and status callbacks find the exact reply.
    /// Returns whether the id was set. `Conflict` on `external_id` if another
    /// message of the account carries it.
    async fn set_message_external_id(
        &self,
        account: AccountId,
        message: switchboard_domain::MessageId,
        external_id: String,
    ) -> Result<bool>;
}

/// Accounts, tokens, users, teams, skills, contacts and channels.
#[async_trait]
pub trait Directory: Send + Sync + 'static {
    /// Creates an account with its first super admin (whatever `admin.role`
    /// says), an API token for that admin (stored by `admin_token_hash`) and
    /// the built-in language skills, all in one transaction.
    async fn create_account(
        &self,
        name: Name,
        admin: NewUser,
        admin_token_hash: String,
    ) -> Result<(Account, User)>;

    /// How many accounts exist (zero on a fresh database).
    async fn account_count(&self) -> Result<u64>;

    /// The oldest account, created on first start.
    async fn first_account(&self) -> Result<Option<Account>>;

    /// Stores a new API token for `user`, by the hash of its secret.
    async fn create_token(
        &self,
        account: AccountId,
        user: UserId,
        name: String,
        token_hash: String,
    ) -> Result<TokenInfo>;

    /// The active user a token hash belongs to, if any.
    async fn authenticate(&self, token_hash: String) -> Result<Option<Principal>>;

    /// Creates a user.
    async fn create_user(&self, account: AccountId, input: NewUser) -> Result<User>;

    /// One user.
    async fn get_user(&self, account: AccountId, id: UserId) -> Result<User>;

    /// Every user of the account, by id.
    async fn list_users(&self, account: AccountId) -> Result<Vec<User>>;

    /// Changes a user. The last active super admin cannot be demoted or deactivated.
    async fn update_user(&self, account: AccountId, id: UserId, patch: UserPatch) -> Result<User>;

    /// Creates a team.
    async fn create_team(&self, account: AccountId, input: NewTeam) -> Result<Team>;

    /// One team.
    async fn get_team(&self, account: AccountId, id: TeamId) -> Result<Team>;

    /// Every team of the account, by id.
    async fn list_teams(&self, account: AccountId) -> Result<Vec<Team>>;

    /// Changes a team.
    async fn update_team(&self, account: AccountId, id: TeamId, patch: TeamPatch) -> Result<Team>;

    /// Creates a skill.
    async fn create_skill(&self, account: AccountId, input: NewSkill) -> Result<Skill>;

    /// Every skill of the account, by category then name.
    async fn list_skills(&self, account: AccountId) -> Result<Vec<Skill>>;

    /// Creates a contact.
    async fn create_contact(&self, account: AccountId, input: NewContact) -> Result<Contact>;

    /// One contact.
    async fn get_contact(&self, account: AccountId, id: ContactId) -> Result<Contact>;

    /// Contacts, newest first.
    async fn list_contacts(
        &self,
        account: AccountId,
        cursor: Option<i64>,
        limit: u32,
    ) -> Result<Page<Contact>>;

    /// Changes a contact.
    async fn update_contact(
        &self,
        account: AccountId,
        id: ContactId,
        patch: ContactPatch,
    ) -> Result<Contact>;

    /// Creates a channel with the given public key.
    async fn create_channel(
        &self,
        account: AccountId,
        input: NewChannel,
        key: String,
    ) -> Result<Channel>;

    /// One channel.
    async fn get_channel(&self, account: AccountId, id: ChannelId) -> Result<Channel>;

    /// Every channel of the account, by id.
    async fn list_channels(&self, account: AccountId) -> Result<Vec<Channel>>;

    /// Changes a channel.
    async fn update_channel(
        &self,
        account: AccountId,
        id: ChannelId,
        patch: ChannelPatch,
    ) -> Result<Channel>;

    /// A channel by its public key, with its account: forms and webhooks
    /// carry no token, only the key in their URL.
    async fn channel_by_key(&self, key: String) -> Result<(AccountId, Channel)>;

    /// Every channel of `kind`, of every account, oldest first: the SMTP
    /// listener finds which account a recipient address belongs to.
    async fn channels_of_kind(
        &self,
        kind: switchboard_domain::ChannelKind,
    ) -> Result<Vec<(AccountId, Channel)>>;
}

/// Tickets, their conversation, history, attachments, live events and
/// notifications.
#[async_trait]
pub trait Tickets: Send + Sync + 'static {
    /// Creates a ticket (finding or creating its contact), or returns the
    /// original when `idempotency` repeats an earlier call.
    async fn create_ticket(
        &self,
        account: AccountId,
        input: NewTicket,
        idempotency: Option<Idempotency>,
        actor: Actor,
    ) -> Result<Created<Ticket>>;

    /// One ticket.
    async fn get_ticket(&self, account: AccountId, id: TicketId) -> Result<Ticket>;

    /// Tickets, newest first. `caller` resolves `mine` and the team views.
    async fn list_tickets(
        &self,
        account: AccountId,
        caller: UserId,
        query: TicketQuery,
    ) -> Result<Page<Ticket>>;

    /// Changes a ticket's fields, status or stage.
    async fn update_ticket(
        &self,
        account: AccountId,
        id: TicketId,
        patch: TicketPatch,
        actor: Actor,
    ) -> Result<Ticket>;

    /// Assigns, reassigns or unassigns by hand (see `triage::manual_owner`).
    async fn set_owner(
        &self,
        account: AccountId,
        id: TicketId,
        requested: Owner,
        actor: Actor,
    ) -> Result<Ticket>;

    /// Adds a message; a reply by a user to a ticket without owner makes that
    /// user the owner, in the same transaction. A reply on a ticket whose
    /// channel sends replies out (e-mail, WhatsApp) also writes its
    /// `deliver_reply` outbox row in that transaction.
    async fn add_message(
        &self,
        account: AccountId,
        id: TicketId,
        message: NewMessage,
    ) -> Result<(Message, Ticket)>;

    /// A ticket's conversation, oldest first.
    async fn list_messages(&self, account: AccountId, id: TicketId) -> Result<Vec<Message>>;

    /// A ticket's history, oldest first.
    async fn history(&self, account: AccountId, id: TicketId) -> Result<Vec<HistoryEntry>>;

    /// The ticket and message that carry one of `external_ids` (a channel's
    /// own ids: Message-IDs, wamids, CallSids), the first found in order.
    async fn find_by_external_id(
        &self,
        account: AccountId,
        external_ids: Vec<String>,
    ) -> Result<Option<(TicketId, switchboard_domain::MessageId)>>;

    /// Stores files that came with a message.
    async fn add_attachments(
        &self,
        account: AccountId,
        message: switchboard_domain::MessageId,
        files: Vec<NewAttachment>,
    ) -> Result<Vec<Attachment>>;

    /// The attachments of a message, oldest first.
    async fn attachments(
        &self,
        account: AccountId,
        message: switchboard_domain::MessageId,
    ) -> Result<Vec<Attachment>>;

    /// Live ticket events of every account, from every node, from now on,
    /// on a bounded in-process channel: a wake-up, not the record (a slow
    /// receiver lags, a dropped LISTEN connection misses some). Event
    /// streams read [`EventLog`]; on PostgreSQL an event is sent here only
    /// once its sequence number is assigned.
    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<TicketEvent>;
}

/// Routing explanations, availability, the scheduler and the counters' check.
#[async_trait]
pub trait Routing: Send + Sync + 'static {
    /// A ticket's routing decisions, oldest first.
    async fn routing_log(&self, account: AccountId, id: TicketId) -> Result<Vec<RoutingRecord>>;

    /// A user's availability settings and current availability.
    async fn availability(&self, account: AccountId, user: UserId) -> Result<AvailabilityState>;

    /// Changes a user's availability settings; reschedules their next
    /// transition, drains the waiting queue if they became available, and
    /// rebalances their tickets if they became away (where rules ask).
    async fn change_availability(
        &self,
        account: AccountId,
        user: UserId,
        change: AvailabilityChange,
    ) -> Result<AvailabilityState>;

    /// Whom to ring for a call on ticket `id`, best first: its owner while
    /// they can still be reached, then (for contact-owner rules) the
    /// contact's owner, then everyone the channel's rule could route it to,
    /// by the routing engine's own checks and in its distribution's order
    /// ([`switchboard_domain::routing::ranked_eligible`]), from the kept
    /// routing state. Empty without a rule, or for a rule that assigns
    /// nobody. Writes nothing.
    async fn ring_order(&self, account: AccountId, id: TicketId) -> Result<Vec<UserId>>;

    /// Runs the scheduler's due jobs (availability transitions, skill
    /// relaxation, load expiry); returns how many ran.
    async fn run_due_jobs(&self) -> Result<usize>;

    /// Differences between the incremental open/load counters and a full
    /// recount; empty when they agree.
    async fn counter_drift(&self, account: AccountId) -> Result<Vec<String>>;
}

/// Everything Switchboard keeps: the sum of focused traits, one per area
/// ([`Directory`], [`Tickets`], [`Routing`], [`Outbox`], [`EventLog`]). A
/// backend implements each and gets `Store` for free; [`SqliteStore`] and
/// [`PgStore`] do, and [`conformance`] holds the behaviour both must show.
pub trait Store:
    Directory + Tickets + Routing + Outbox + EventLog + Notifications + Workflows
{
}

impl<T: Directory + Tickets + Routing + Outbox + EventLog + Notifications + Workflows> Store for T {}

impl StoreError {
    /// Whether this is a [`StoreError::Duplicate`]: the message was already
    /// stored.
    pub fn is_duplicate(&self) -> bool {
        matches!(self, StoreError::Duplicate { .. })
    }
}

/// Builds a page from up to `limit + 1` rows fetched newest first: the extra
/// row only tells that there is a next page.
pub(crate) fn paginate<T>(mut items: Vec<T>, limit: u32, id_of: impl Fn(&T) -> i64) -> Page<T> {
    let next_cursor = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items.last().map(|last| id_of(last).to_string())
    } else {
        None
    };
    Page { items, next_cursor }
}

/// Times are kept to the millisecond by every backend, so what a write
/// returns equals what a later read returns.
pub(crate) fn stored_time(t: jiff::Timestamp) -> jiff::Timestamp {
    jiff::Timestamp::from_millisecond(t.as_millisecond()).unwrap_or(t)
}

/// A small, fast generator (SplitMix64) for random distribution. Not for
/// secrets; seeded from the clock unless a test sets the seed.
#[derive(Debug, Clone)]
pub struct SplitMix(pub u64);

impl switchboard_domain::routing::RandomSource for SplitMix {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        // Multiply-shift: uniform enough for n far below 2^64.
        ((u128::from(z) * n as u128) >> 64) as usize
    }
}
