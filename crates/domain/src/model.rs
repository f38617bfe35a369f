//! The help desk's records. These are what the store returns and what the API
//! serves; the account a record belongs to is known by whoever holds it and
//! is not repeated on every value.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::{
    AccountId, ChannelId, ContactId, E164, EmailAddress, MessageId, Name, SkillId, TeamId,
    TicketId, TimeZoneName, UserId,
};

/// Declares a string enum with its wire names, `as_str` and `FromStr`, so
/// the store and the API spell each variant the same way. Its OpenAPI
/// schema is made from the same wire names (a string enum described by the
/// type's doc comment), so the document says exactly what serde writes.
macro_rules! wire_enum {
    ($(#[doc = $doc:literal])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $wire:literal),+ $(,)? }) => {
        $(#[doc = $doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash,
            ::serde::Serialize, ::serde::Deserialize,
        )]
        pub enum $name { $($(#[$vdoc])* #[serde(rename = $wire)] $variant),+ }

        impl ::utoipa::PartialSchema for $name {
            fn schema() -> ::utoipa::openapi::RefOr<::utoipa::openapi::schema::Schema> {
                let doc: Vec<&str> = vec![$($doc.trim()),*];
                ::utoipa::openapi::ObjectBuilder::new()
                    .schema_type(::utoipa::openapi::schema::Type::String)
                    .enum_values(Some([$($wire),+]))
                    .description(Some(doc.join("\n")))
                    .into()
            }
        }

        impl ::utoipa::ToSchema for $name {
            fn name() -> ::std::borrow::Cow<'static, str> {
                ::std::borrow::Cow::Borrowed(stringify!($name))
            }
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The wire (and database) spelling.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $wire),+ }
            }
        }

        impl std::str::FromStr for $name {
            type Err = crate::DomainError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($wire => Ok($name::$variant),)+
                    other => Err(crate::DomainError::invalid(
                        stringify!($name),
                        format!("unknown value {other:?}, expected one of: {}", [$($wire),+].join(", ")),
                    )),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use wire_enum;

wire_enum!(
    /// What a user may do in their account.
    Role {
        /// Manages everything in the account, including admins.
        SuperAdmin = "super_admin",
        /// Manages users (not admins), teams, skills and channels.
        Admin = "admin",
        /// Reads, triages and answers tickets.
        Agent = "agent",
    }
);

impl Role {
    /// Whether this role may change account configuration (users, teams,
    /// skills, channels).
    pub fn is_admin(self) -> bool {
        matches!(self, Role::SuperAdmin | Role::Admin)
    }

    /// Whether a user with this role may create, change or issue tokens for
    /// a user who has (or is to be given) `target`. Only super admins touch
    /// admins and super admins.
    pub fn can_manage(self, target: Role) -> bool {
        match self {
            Role::SuperAdmin => true,
            Role::Admin => target == Role::Agent,
            Role::Agent => false,
        }
    }
}

/// A tenant: a help desk with its own users, channels and tickets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Account {
    /// Its id.
    pub id: AccountId,
    /// Its display name.
    pub name: Name,
    /// When it was created.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
}

/// A person who works tickets or administers the account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct User {
    /// Its id.
    pub id: UserId,
    /// Display name.
    pub name: Name,
    /// Login and notification address; unique in the account.
    pub email: EmailAddress,
    /// What the user may do.
    pub role: Role,
    /// Only seated users are routed to and count as a team's seated members.
    pub help_desk_seat: bool,
    /// A deactivated user can neither sign in nor be assigned automatically.
    pub deactivated: bool,
    /// The user's own IANA time zone; working hours are read in it.
    pub time_zone: TimeZoneName,
    /// The team the user mainly works in (team routing only considers main members).
    pub main_team_id: Option<TeamId>,
    /// Other teams the user belongs to.
    pub secondary_team_ids: Vec<TeamId>,
    /// Skills the user has.
    pub skill_ids: Vec<SkillId>,
    /// Capacity limits on open tickets (none by default).
    pub capacity: crate::routing::Capacity,
    /// When the user was created.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
}

impl User {
    /// All the teams the user belongs to, main team first.
    pub fn team_ids(&self) -> Vec<TeamId> {
        self.main_team_id
            .into_iter()
            .chain(self.secondary_team_ids.iter().copied())
            .collect()
    }
}

/// A user's place in a team.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TeamMember {
    /// The member.
    pub user_id: UserId,
    /// Whether this is the member's main team (a user has at most one).
    #[serde(default)]
    pub main: bool,
}

/// A group of users.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Team {
    /// Its id.
    pub id: TeamId,
    /// Display name; unique in the account.
    pub name: Name,
    /// Its members, ordered by user id.
    pub members: Vec<TeamMember>,
    /// How many members have a help desk seat (and are not deactivated).
    /// Only teams with at least one can be routing targets.
    pub seated_members: u32,
    /// The team's office hours, if set.
    pub office_hours: Option<crate::routing::OfficeHours>,
    /// When the team was created.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
}

/// The built-in skill category holding languages.
pub const LANGUAGE_CATEGORY: &str = "language";

/// Languages every new account starts with, as skills of [`LANGUAGE_CATEGORY`].
pub const BUILT_IN_LANGUAGES: &[&str] = &[
    "English",
    "French",
    "German",
    "Spanish",
    "Portuguese",
    "Italian",
    "Dutch",
    "Japanese",
    "Chinese",
    "Arabic",
];

/// A skill a ticket may require and a user may have.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Skill {
    /// Its id.
    pub id: SkillId,
    /// Display name; unique in the account.
    pub name: Name,
    /// Its category; languages are in the built-in category `language`.
    pub category: Name,
}

/// A customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Contact {
    /// Its id.
    pub id: ContactId,
    /// Display name, if known.
    pub name: Option<Name>,
    /// E-mail address; unique in the account when present.
    pub email: Option<EmailAddress>,
    /// Phone number; unique in the account when present.
    pub phone: Option<E164>,
    /// The user who owns the relationship (used by contact-owner routing).
    pub owner_user_id: Option<UserId>,
    /// Tracking-cookie values that identify this contact as a web visitor.
    pub visitor_tokens: Vec<String>,
    /// When the contact was created.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
}

wire_enum!(
    /// Kinds of channels tickets come from.
    ChannelKind {
        /// A team e-mail inbox.
        Email = "email",
        /// A web form.
        Form = "form",
        /// Live chat.
        Chat = "chat",
        /// WhatsApp Business.
        Whatsapp = "whatsapp",
        /// Phone calls.
        Calls = "calls",
        /// A custom channel fed through the API.
        Custom = "custom",
    }
);

/// A source of tickets with its own settings and routing rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Channel {
    /// Its id.
    pub id: ChannelId,
    /// What kind of channel it is; fixed at creation.
    pub kind: ChannelKind,
    /// Display name.
    pub name: Name,
    /// Public, unguessable key used in unauthenticated URLs (forms, chat).
    pub key: String,
    /// Kind-specific settings (addresses, numbers, messages).
    #[schema(value_type = Object)]
    pub settings: Map<String, Value>,
    /// The routing rule; `null` until one is set (tickets then stay unassigned).
    pub routing: Option<crate::routing::RoutingRule>,
    /// The channel's office hours, if set (calls ring only during them).
    pub office_hours: Option<crate::routing::OfficeHours>,
    /// When the channel was created.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
}

wire_enum!(
    /// Where a ticket came from.
    TicketSource {
        /// A team e-mail inbox.
        Email = "email",
        /// A web form.
        Form = "form",
        /// Live chat.
        Chat = "chat",
        /// WhatsApp.
        Whatsapp = "whatsapp",
        /// A live phone call.
        Calls = "calls",
        /// A custom channel.
        Custom = "custom",
        /// The REST API, with no channel.
        Api = "api",
        /// Created by hand by a user.
        Manual = "manual",
        /// Created by a workflow.
        Workflow = "workflow",
    }
);

impl From<ChannelKind> for TicketSource {
    fn from(kind: ChannelKind) -> Self {
        match kind {
            ChannelKind::Email => TicketSource::Email,
            ChannelKind::Form => TicketSource::Form,
            ChannelKind::Chat => TicketSource::Chat,
            ChannelKind::Whatsapp => TicketSource::Whatsapp,
            ChannelKind::Calls => TicketSource::Calls,
            ChannelKind::Custom => TicketSource::Custom,
        }
    }
}

wire_enum!(
    /// A ticket's type, derived from its source. Loads and capacity limits
    /// are counted per type.
    TicketType {
        /// Tickets from live calls.
        Calls = "calls",
        /// Tickets from live chat, WhatsApp and custom channels.
        Message = "message",
        /// Tickets from e-mail, forms, the API, workflows and manual creation.
        EmailOther = "email_other",
    }
);

impl From<TicketSource> for TicketType {
    fn from(source: TicketSource) -> Self {
        match source {
            TicketSource::Calls => TicketType::Calls,
            TicketSource::Chat | TicketSource::Whatsapp | TicketSource::Custom => {
                TicketType::Message
            }
            TicketSource::Email
            | TicketSource::Form
            | TicketSource::Api
            | TicketSource::Manual
            | TicketSource::Workflow => TicketType::EmailOther,
        }
    }
}

wire_enum!(
    /// Whether a ticket still needs work.
    Status {
        /// Being worked on.
        Open = "open",
        /// Done.
        Closed = "closed",
    }
);

wire_enum!(
    /// Pipeline stage; `closed` if and only if the status is closed.
    Stage {
        /// Nobody has answered yet.
        New = "new",
        /// We answered; the customer's turn.
        WaitingOnContact = "waiting_on_contact",
        /// The customer wrote; our turn.
        WaitingOnUs = "waiting_on_us",
        /// Done.
        Closed = "closed",
    }
);

wire_enum!(
    /// How urgent a ticket is; the waiting queue serves higher first.
    Priority {
        /// Can wait.
        Low = "low",
        /// The default.
        Medium = "medium",
        /// Soon.
        High = "high",
        /// Now.
        Urgent = "urgent",
    }
);

impl Priority {
    /// A number that sorts like the priority (higher is more urgent).
    pub fn rank(self) -> i64 {
        match self {
            Priority::Low => 0,
            Priority::Medium => 1,
            Priority::High => 2,
            Priority::Urgent => 3,
        }
    }
}

/// Who owns a ticket: a user, a team, both, or neither (unassigned).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Owner {
    /// The owning user; `null` means the ticket shows in Unassigned.
    pub user_id: Option<UserId>,
    /// The owning team.
    pub team_id: Option<TeamId>,
}

/// A ticket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Ticket {
    /// Its id.
    pub id: TicketId,
    /// One-line summary.
    pub subject: String,
    /// The customer's first message or a description.
    pub content: String,
    /// The channel it came from, if any.
    pub channel_id: Option<ChannelId>,
    /// Where it came from.
    pub source: TicketSource,
    /// Its type, derived from the source.
    #[serde(rename = "type")]
    pub ticket_type: TicketType,
    /// Open or closed.
    pub status: Status,
    /// Pipeline stage.
    pub stage: Stage,
    /// Urgency.
    pub priority: Priority,
    /// Owner user and team.
    pub owner: Owner,
    /// When the current owner user was assigned.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub assigned_at: Option<Timestamp>,
    /// The customer it concerns.
    pub contact_id: Option<ContactId>,
    /// Free-form properties (`language`, `category`, ...).
    #[schema(value_type = Object)]
    pub properties: Map<String, Value>,
    /// When the first public reply was sent.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub first_reply_at: Option<Timestamp>,
    /// When it was created.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// When it last changed.
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
    /// When it was closed.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub closed_at: Option<Timestamp>,
}

wire_enum!(
    /// Kinds of conversation messages.
    MessageKind {
        /// From the customer.
        Inbound = "inbound",
        /// A public reply to the customer.
        Reply = "reply",
        /// An internal note, never shown to the customer.
        Note = "note",
    }
);

/// Who did something: a user, a contact, or Switchboard itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Actor {
    /// A user, through the console or an API token.
    User {
        /// Who.
        user_id: UserId,
    },
    /// A customer, through a channel.
    Contact {
        /// Who.
        contact_id: ContactId,
    },
    /// Switchboard itself (routing, schedules, integrations).
    System,
}

/// One message of a ticket's conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Message {
    /// Its id.
    pub id: MessageId,
    /// The ticket it belongs to.
    pub ticket_id: TicketId,
    /// Inbound, reply or note.
    pub kind: MessageKind,
    /// Who wrote it.
    pub author: Actor,
    /// The text.
    pub body: String,
    /// The channel's own id for it (e-mail Message-ID, wamid, CallSid), used
    /// to thread and to drop duplicates.
    pub external_id: Option<String>,
    /// When it was written.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
}

/// What happened to a ticket, as recorded in its history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum HistoryEvent {
    /// The ticket was created.
    Created {
        /// Where it came from.
        source: TicketSource,
        /// The owner it was created with.
        owner: Owner,
    },
    /// The owner changed (by hand, by a reply, or by routing).
    OwnerChanged {
        /// Before.
        from: Owner,
        /// After.
        to: Owner,
        /// Why.
        reason: OwnerReason,
    },
    /// Status or stage changed.
    StatusChanged {
        /// Status before.
        from_status: Status,
        /// Stage before.
        from_stage: Stage,
        /// Status after.
        to_status: Status,
        /// Stage after.
        to_stage: Stage,
    },
    /// Other fields changed.
    Updated {
        /// Names of the changed fields.
        fields: Vec<String>,
    },
    /// A message was added to the conversation.
    MessageAdded {
        /// The message.
        message_id: MessageId,
        /// Its kind.
        kind: MessageKind,
    },
    /// A workflow ran a step for the ticket.
    WorkflowStep {
        /// The workflow.
        workflow_id: crate::workflows::WorkflowId,
        /// The enrollment (this ticket's run through it).
        enrollment_id: crate::workflows::EnrollmentId,
        /// The step's position (`2.1.0`).
        step: String,
        /// The action's type.
        action: String,
        /// What it did.
        summary: String,
        /// For a rotate: the routing explanation.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        explanation: Option<Box<crate::routing::Explanation>>,
    },
}

/// One line of a ticket's append-only history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HistoryEntry {
    /// Position in the account's history; increases with time.
    pub id: i64,
    /// The ticket.
    pub ticket_id: TicketId,
    /// When it happened.
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
    /// Who or what did it.
    pub actor: Actor,
    /// What happened.
    pub event: HistoryEvent,
}

wire_enum!(
    /// Why a ticket's owner changed (kept in its history).
    OwnerReason {
        /// Assigned by hand.
        Manual = "manual",
        /// A user replied to a ticket with no owner user.
        Reply = "reply",
        /// Routing decided.
        Routing = "routing",
        /// Its owner became away and the channel's rule rebalances.
        RebalanceOnAway = "rebalance_on_away",
        /// A workflow step assigned, rotated or unassigned it.
        Workflow = "workflow",
        /// The customer agent handed the conversation to a user or team.
        Handoff = "handoff",
    }
);

/// The authenticated caller of an API request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The caller's account; every query is scoped to it.
    pub account_id: AccountId,
    /// The caller.
    pub user_id: UserId,
    /// The caller's role.
    pub role: Role,
}

impl Principal {
    /// The caller as an [`Actor`] for history entries.
    pub fn actor(&self) -> Actor {
        Actor::User {
            user_id: self.user_id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticket_type_follows_the_source() {
        let ty = |k: ChannelKind| TicketType::from(TicketSource::from(k));
        assert_eq!(ty(ChannelKind::Calls), TicketType::Calls);
        assert_eq!(ty(ChannelKind::Chat), TicketType::Message);
        assert_eq!(ty(ChannelKind::Whatsapp), TicketType::Message);
        assert_eq!(ty(ChannelKind::Custom), TicketType::Message);
        assert_eq!(ty(ChannelKind::Email), TicketType::EmailOther);
        assert_eq!(ty(ChannelKind::Form), TicketType::EmailOther);
        for s in [
            TicketSource::Api,
            TicketSource::Manual,
            TicketSource::Workflow,
        ] {
            assert_eq!(TicketType::from(s), TicketType::EmailOther);
        }
    }

    #[test]
    fn wire_names_round_trip() {
        for s in Stage::ALL {
            assert_eq!(s.as_str().parse::<Stage>().unwrap(), *s);
        }
        assert!("nope".parse::<Role>().is_err());
    }

    #[test]
    fn only_super_admins_manage_admins() {
        assert!(Role::SuperAdmin.can_manage(Role::Admin));
        assert!(Role::Admin.can_manage(Role::Agent));
        assert!(!Role::Admin.can_manage(Role::Admin));
        assert!(!Role::Agent.can_manage(Role::Agent));
    }
}
