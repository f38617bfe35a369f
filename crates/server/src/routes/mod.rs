//! The HTTP areas; each exports a `router()`.
//!
//! - [`directory`]: users, tokens, teams, skills, contacts, channels;
//! - [`tickets`]: tickets, their messages, owner and history;
//! - [`routing`]: routing explanations, availability, working hours, out of office;
//! - [`events`]: live ticket events as Server-Sent Events;
//! - [`notifications`]: the in-app list, its stream, preferences, defaults,
//!   the notification e-mail relay;
//! - [`workflows`]: workflows, their templates, enrollments, dry runs, and
//!   the customer agent's handoff;
//! - [`outbox`]: the outbox rows (reply deliveries) and manual retries, for admins;
//! - [`email`], [`whatsapp`], [`voice`], [`forms`], [`chat`]: channel endpoints
//!   (inbound mail, provider webhooks, form posts, the chat visitor API and
//!   widget); replies go out through `crate::outbound`;
//! - [`ops`]: health, readiness, metrics, the OpenAPI document.

pub mod chat;
pub mod directory;
pub mod email;
pub mod events;
pub mod forms;
pub mod notifications;
pub mod ops;
pub mod outbox;
pub mod routing;
pub mod tickets;
pub mod voice;
pub mod whatsapp;
pub mod workflows;
