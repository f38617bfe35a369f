//! Typed identifiers. Every table has its own id type so that a `UserId` can
//! never be passed where a `TeamId` is expected.

use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {$(
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
            utoipa::ToSchema,
        )]
        #[serde(transparent)]
        #[schema(value_type = i64)]
        pub struct $name(pub i64);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = std::num::ParseIntError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                s.parse().map(Self)
            }
        }
    )*};
}

id_type!(
    /// An account: a tenant. Every other row belongs to exactly one.
    AccountId,
    /// A person who works tickets (or administers the account).
    UserId,
    /// A group of users.
    TeamId,
    /// A skill (including languages).
    SkillId,
    /// A customer.
    ContactId,
    /// A source of tickets: a team inbox, a form, a chat, ...
    ChannelId,
    /// A ticket.
    TicketId,
    /// One message of a ticket's conversation.
    MessageId,
    /// One API token.
    TokenId,
);
