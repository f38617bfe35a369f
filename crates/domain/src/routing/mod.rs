//! Automatic routing: rules, availability, and the pure engine.
//!
//! - [`rule`]: a channel's routing rule (who, how, skills, queue options);
//! - [`availability`]: manual status, out of office, working hours in the
//!   user's time zone;
//! - [`engine`]: [`engine::decide`], from rule + ticket facts + candidate
//!   snapshot to a decision with its explanation;
//! - [`apply`]: what a decision changes (owner, queue, round robin, jobs,
//!   notices), once for every backend;
//! - [`counters`]: how a ticket save moves its owners' open and load counters;
//! - [`state`]: an account's routing state, kept between decisions so a
//!   decision reads no SQL per candidate;
//! - [`stored`]: the compact form an explanation is written in.

pub mod apply;
pub mod availability;
pub mod counters;
pub mod engine;
pub mod rule;
pub mod state;
pub mod stored;

pub use apply::*;
pub use availability::*;
pub use counters::*;
pub use engine::*;
pub use rule::*;
pub use state::*;
