//! What callers ask for: new records and changes to existing ones. These are
//! the API's request bodies too, so unknown fields are refused and each value
//! is parsed into its domain type at the edge.
//!
//! A `Patch` field that is absent leaves the value alone; for nullable
//! values, `null` clears it (hence `Option<Option<T>>`).

use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::{
    ChannelId, ChannelKind, ContactId, E164, EmailAddress, Name, Priority, Role, SkillId, Stage,
    Status, TeamId, TeamMember, TimeZoneName, UserId,
};

/// Tells an absent field (`None`) from an explicit `null` (`Some(None)`).
fn nullable<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

fn agent() -> Role {
    Role::Agent
}

fn utc() -> TimeZoneName {
    TimeZoneName::utc()
}

/// A user to create.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// Display name.
    pub name: Name,
    /// Unique in the account.
    pub email: EmailAddress,
    /// Defaults to `agent`.
    #[serde(default = "agent")]
    pub role: Role,
    /// Defaults to false: only seated users are routed to.
    #[serde(default)]
    pub help_desk_seat: bool,
    /// IANA time zone; defaults to `UTC`.
    #[serde(default = "utc")]
    pub time_zone: TimeZoneName,
    /// Main team.
    #[serde(default)]
    pub main_team_id: Option<TeamId>,
    /// Secondary teams.
    #[serde(default)]
    pub secondary_team_ids: Vec<TeamId>,
    /// Skills.
    #[serde(default)]
    pub skill_ids: Vec<SkillId>,
    /// Capacity limits on open tickets (none by default).
    #[serde(default)]
    pub capacity: crate::routing::Capacity,
}

/// Changes to a user.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    /// New display name.
    pub name: Option<Name>,
    /// New e-mail address.
    pub email: Option<EmailAddress>,
    /// New role (only super admins grant or take admin roles).
    pub role: Option<Role>,
    /// Give or take the help desk seat.
    pub help_desk_seat: Option<bool>,
    /// Deactivate or reactivate.
    pub deactivated: Option<bool>,
    /// New time zone.
    pub time_zone: Option<TimeZoneName>,
    /// New main team; `null` for none.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<TeamId>)]
    pub main_team_id: Option<Option<TeamId>>,
    /// Replaces the secondary teams.
    pub secondary_team_ids: Option<Vec<TeamId>>,
    /// Replaces the skills.
    pub skill_ids: Option<Vec<SkillId>>,
    /// Replaces the capacity limits (`{}` for none).
    pub capacity: Option<crate::routing::Capacity>,
}

/// A team to create.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTeam {
    /// Display name, unique in the account.
    pub name: Name,
    /// Members; a user has at most one main team.
    #[serde(default)]
    pub members: Vec<TeamMember>,
}

/// Changes to a team.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TeamPatch {
    /// New display name.
    pub name: Option<Name>,
    /// Replaces the members.
    pub members: Option<Vec<TeamMember>>,
    /// Replaces the office hours; `null` removes them.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<crate::routing::OfficeHours>)]
    pub office_hours: Option<Option<crate::routing::OfficeHours>>,
}

/// A skill to create.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSkill {
    /// Display name, unique in the account.
    pub name: Name,
    /// Category; `language` is the built-in one.
    pub category: Name,
}

/// A contact to create.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewContact {
    /// Display name.
    pub name: Option<Name>,
    /// E-mail address, unique in the account.
    pub email: Option<EmailAddress>,
    /// Phone number in E.164 form, unique in the account.
    pub phone: Option<E164>,
    /// Owner user.
    pub owner_user_id: Option<UserId>,
    /// Tracking-cookie values that identify the contact as a web visitor.
    #[serde(default)]
    pub visitor_tokens: Vec<String>,
}

/// Changes to a contact.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactPatch {
    /// New name; `null` clears it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Name>)]
    pub name: Option<Option<Name>>,
    /// New e-mail address; `null` clears it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<EmailAddress>)]
    pub email: Option<Option<EmailAddress>>,
    /// New phone; `null` clears it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<E164>)]
    pub phone: Option<Option<E164>>,
    /// New owner; `null` clears it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<UserId>)]
    pub owner_user_id: Option<Option<UserId>>,
    /// Replaces the visitor tokens.
    pub visitor_tokens: Option<Vec<String>>,
}

/// A channel to create.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewChannel {
    /// Kind; cannot change later.
    pub kind: ChannelKind,
    /// Display name.
    pub name: Name,
    /// Kind-specific settings.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub settings: Map<String, Value>,
}

/// Changes to a channel.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelPatch {
    /// New display name.
    pub name: Option<Name>,
    /// Replaces the settings.
    #[schema(value_type = Option<Object>)]
    pub settings: Option<Map<String, Value>>,
    /// Replaces the routing rule; `null` removes it (tickets then stay unassigned).
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<crate::routing::RoutingRule>)]
    pub routing: Option<Option<crate::routing::RoutingRule>>,
    /// Replaces the office hours; `null` removes them.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<crate::routing::OfficeHours>)]
    pub office_hours: Option<Option<crate::routing::OfficeHours>>,
}

/// Who a new ticket is from: found by e-mail, then phone, or created.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactRef {
    /// E-mail address.
    pub email: Option<EmailAddress>,
    /// Phone number (E.164).
    pub phone: Option<E164>,
    /// Name, used when the contact is created.
    pub name: Option<Name>,
}

/// A ticket to create.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTicket {
    /// One-line summary.
    pub subject: Name,
    /// The customer's message or a description.
    #[serde(default)]
    pub content: String,
    /// The channel it came from; without one the ticket's source is `api`.
    pub channel_id: Option<ChannelId>,
    /// The customer.
    pub contact: Option<ContactRef>,
    /// A web visitor's tracking-cookie value. When it is known on a contact,
    /// that contact is the ticket's contact and contact-owner routing may
    /// use its owner. Kept in the ticket's properties as `visitor_token`.
    pub visitor_token: Option<String>,
    /// Defaults to `medium`.
    #[serde(default = "medium")]
    pub priority: Priority,
    /// Free-form properties.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub properties: Map<String, Value>,
}

fn medium() -> Priority {
    Priority::Medium
}

/// Changes to a ticket.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TicketPatch {
    /// New subject.
    pub subject: Option<Name>,
    /// New content.
    pub content: Option<String>,
    /// Open or close; moves the stage with it.
    pub status: Option<Status>,
    /// New pipeline stage; moves the status with it.
    pub stage: Option<Stage>,
    /// New priority.
    pub priority: Option<Priority>,
    /// Merged into the properties; a `null` value removes that property.
    #[schema(value_type = Option<Object>)]
    pub properties: Option<Map<String, Value>>,
    /// New contact; `null` clears it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<ContactId>)]
    pub contact_id: Option<Option<ContactId>>,
}
