//! Switchboard's domain: the help desk's types and the rules that are pure
//! functions of them. Nothing here does I/O, spawns tasks or reads the clock;
//! the caller injects time ([`Clock`]) and, for routing, randomness.
//!
//! Map of the modules:
//! - [`ids`]: typed identifiers (`TicketId`, `UserId`, ...), one newtype per table.
//! - [`values`]: parsed values that cannot be wrong once built (`EmailAddress`,
//!   `E164`, `TimeZoneName`, `Name`).
//! - [`input`]: new records and patches, which are also the API request bodies.
//! - [`model`]: accounts, users, teams, skills, contacts, channels, tickets,
//!   messages and history entries, as stored and as served.
//! - [`routing`]: routing rules, availability and the pure routing engine.
//! - [`directory`]: user patches, the last-super-admin rule, what a routing
//!   rule references.
//! - [`jobs`]: the scheduler's job kinds and keys.
//! - [`ticket`]: how a ticket changes (patch, owner, status, messages),
//!   returned as history lines for the store to record.
//! - [`triage`]: the manual triage rules (who owns a ticket after a hand
//!   assignment or a reply, how status and pipeline stage move together).
//! - [`notifications`]: topics, methods, preference resolution, who is told
//!   of what, mentions, the e-mail cap and digest.
//! - [`outbox`]: deferred work written with the change that calls for it
//!   (topics, states, the retry policy).
//! - [`workflows`]: workflow triggers, filters, actions and the step
//!   machine that runs them.
//! - [`clock`]: the injected source of time.
//! - [`error`]: the one error type of this crate.

pub mod channel_settings;
pub mod clock;
pub mod directory;
pub mod error;
pub mod ids;
pub mod input;
pub mod jobs;
pub mod model;
pub mod notifications;
pub mod outbox;
pub mod routing;
pub mod ticket;
pub mod triage;
pub mod values;
pub mod workflows;

pub use clock::{Clock, FixedClock, SystemClock};
pub use error::DomainError;
pub use ids::*;
pub use jobs::JobKind;
pub use model::*;
pub use notifications::Notification;
pub use values::{E164, EmailAddress, Name, TimeZoneName};
