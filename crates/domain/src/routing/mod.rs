//! Automatic routing: rules, availability, and the pure engine.
//!
//! - [`rule`]: a channel's routing rule (who, how, skills, queue options);
//! - [`availability`]: manual status, out of office, working hours in the
//!   user's time zone;
//! - [`engine`]: [`engine::decide`], from rule + ticket facts + candidate
//!   snapshot to a decision with its explanation.

pub mod availability;
pub mod engine;
pub mod rule;

pub use availability::*;
pub use engine::*;
pub use rule::*;
