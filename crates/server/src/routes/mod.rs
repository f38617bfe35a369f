//! The HTTP areas; each exports a `router()`.
//!
//! - [`directory`]: users, tokens, teams, skills, contacts, channels;
//! - [`tickets`]: tickets, their messages, owner and history;
//! - [`ops`]: health, readiness, metrics, the OpenAPI document.

pub mod directory;
pub mod ops;
pub mod tickets;
