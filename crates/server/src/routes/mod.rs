//! The HTTP areas; each exports a `router()`.
//!
//! - [`directory`]: users, tokens, teams, skills, contacts, channels;
//! - [`tickets`]: tickets, their messages, owner and history;
//! - [`routing`]: routing explanations, availability, working hours, out of office;
//! - [`events`]: live ticket events as Server-Sent Events;
//! - [`ops`]: health, readiness, metrics, the OpenAPI document.

pub mod directory;
pub mod events;
pub mod ops;
pub mod routing;
pub mod tickets;
