//! Enrollment filters and branch conditions: groups of typed conditions
//! over a ticket, its contact and the change that enrolled it, evaluated
//! by a pure function.

use std::collections::HashMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::{
    ChannelId, Contact, Priority, Stage, Status, TeamId, Ticket, TicketSource, TicketType, UserId,
    routing::OfficeHours,
};

/// Conditions that must all hold. A list of groups holds when any group
/// does; an empty list always holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FilterGroup {
    /// The conditions, all of which must hold.
    pub all: Vec<Condition>,
}

/// A test of one value: the operator and its operand.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Test<T> {
    /// Equal to `value`.
    Equals {
        /// The operand.
        value: T,
    },
    /// Not equal to `value` (an unset value is not equal).
    NotEquals {
        /// The operand.
        value: T,
    },
    /// One of `values`.
    In {
        /// The operands.
        values: Vec<T>,
    },
    /// Its text contains `value`, ignoring case.
    Contains {
        /// The text looked for.
        value: String,
    },
    /// It has a value.
    IsSet,
    /// It has none.
    IsNotSet,
    /// Greater than `value` (numbers; priorities by urgency).
    GreaterThan {
        /// The bound.
        value: f64,
    },
    /// Less than `value`.
    LessThan {
        /// The bound.
        value: f64,
    },
    /// The change that enrolled the ticket set it to `value` (it had
    /// another before).
    ChangedTo {
        /// The new value.
        value: T,
    },
}

/// Contact fields a condition can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ContactField {
    /// Display name.
    Name,
    /// E-mail address.
    Email,
    /// Phone number.
    Phone,
    /// The contact's owner user id.
    OwnerUserId,
}

/// Whose office hours a condition or a delay reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum HoursOf {
    /// A team's office hours.
    Team(TeamId),
    /// A channel's office hours.
    Channel(ChannelId),
}

/// One condition over a ticket field, tagged by `field`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "field", rename_all = "snake_case")]
pub enum Condition {
    /// The ticket's channel id.
    Channel(Test<ChannelId>),
    /// Where the ticket came from (its source: `email`, `chat`, ...).
    OriginalChannel(Test<TicketSource>),
    /// The ticket's type.
    Type(Test<TicketType>),
    /// Its priority.
    Priority(Test<Priority>),
    /// Its status.
    Status(Test<Status>),
    /// Its pipeline stage.
    Stage(Test<Stage>),
    /// Its owner user.
    Owner(Test<UserId>),
    /// Its owner team.
    Team(Test<TeamId>),
    /// One of its properties.
    Property {
        /// The property.
        name: String,
        /// The test.
        #[serde(flatten)]
        #[schema(value_type = Object)]
        test: Test<Value>,
    },
    /// A field of its contact.
    Contact {
        /// The contact field.
        name: ContactField,
        /// The test.
        #[serde(flatten)]
        #[schema(value_type = Object)]
        test: Test<Value>,
    },
    /// Whether it was created while the office of `of` was open.
    CreatedInOfficeHours {
        /// Whose office hours.
        of: HoursOf,
        /// Open (true) or closed (false).
        value: bool,
    },
}

/// What conditions read: the ticket now, before the change (if a change
/// enrolled it), its contact, and the office hours conditions name.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    /// The ticket as it is.
    pub ticket: &'a Ticket,
    /// The ticket before the change being looked at, if any.
    pub before: Option<&'a Ticket>,
    /// Its contact.
    pub contact: Option<&'a Contact>,
    /// Office hours of the teams and channels conditions name.
    pub office_hours: &'a HashMap<HoursOf, OfficeHours>,
}

/// A value a test can compare.
pub trait Operand: PartialEq {
    /// Its text (for `contains`).
    fn text(&self) -> String;
    /// Its number, if it has one (for bounds).
    fn number(&self) -> Option<f64>;
}

macro_rules! wire_operand {
    ($($t:ty),*) => {$(
        impl Operand for $t {
            fn text(&self) -> String { self.as_str().to_owned() }
            fn number(&self) -> Option<f64> { None }
        }
    )*};
}
wire_operand!(TicketSource, TicketType, Status, Stage);

impl Operand for Priority {
    fn text(&self) -> String {
        self.as_str().to_owned()
    }
    fn number(&self) -> Option<f64> {
        Some(self.rank() as f64)
    }
}

macro_rules! id_operand {
    ($($t:ty),*) => {$(
        impl Operand for $t {
            fn text(&self) -> String { self.0.to_string() }
            fn number(&self) -> Option<f64> { Some(self.0 as f64) }
        }
    )*};
}
id_operand!(ChannelId, UserId, TeamId);

impl Operand for Value {
    fn text(&self) -> String {
        match self {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    }
    fn number(&self) -> Option<f64> {
        match self {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }
}

/// Loose equality for JSON operands: text compares ignoring case, and a
/// number equals its spelling (`"3"` and `3`), as properties come from
/// forms and APIs alike.
fn values_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(x), Value::String(y)) => x.eq_ignore_ascii_case(y),
        _ => match (a.number(), b.number()) {
            (Some(x), Some(y)) => x == y,
            _ => a == b,
        },
    }
}

impl<T: Operand + Clone> Test<T> {
    /// Whether `now` (and `before`, for `changed_to`) passes, with `eq`
    /// the equality of the operand type.
    fn holds(&self, now: Option<&T>, before: Option<Option<&T>>, eq: fn(&T, &T) -> bool) -> bool {
        match self {
            Self::Equals { value } => now.is_some_and(|n| eq(n, value)),
            Self::NotEquals { value } => now.is_some_and(|n| !eq(n, value)),
            Self::In { values } => now.is_some_and(|n| values.iter().any(|v| eq(n, v))),
            Self::Contains { value } => {
                now.is_some_and(|n| n.text().to_lowercase().contains(&value.to_lowercase()))
            }
            Self::IsSet => now.is_some(),
            Self::IsNotSet => now.is_none(),
            Self::GreaterThan { value } => {
                now.and_then(Operand::number).is_some_and(|n| n > *value)
            }
            Self::LessThan { value } => now.and_then(Operand::number).is_some_and(|n| n < *value),
            Self::ChangedTo { value } => {
                now.is_some_and(|n| eq(n, value))
                    && before.is_some_and(|b| b.is_none_or(|b| !eq(b, value)))
            }
        }
    }

    /// Refuses operators that mean nothing for the field (`contains` on a
    /// channel id, a bound on a status).
    fn check(&self, textual: bool, numeric: bool) -> Result<(), &'static str> {
        match self {
            Self::Contains { .. } if !textual => Err("contains only applies to text fields"),
            Self::GreaterThan { .. } | Self::LessThan { .. } if !numeric => {
                Err("greater_than and less_than only apply to numbers and priorities")
            }
            Self::In { values } if values.is_empty() => Err("in needs at least one value"),
            _ => Ok(()),
        }
    }
}

fn plain<T: PartialEq>(a: &T, b: &T) -> bool {
    a == b
}

impl Condition {
    /// Whether the condition holds for `f`.
    pub fn holds(&self, f: &Facts<'_>) -> bool {
        let t = f.ticket;
        let b = f.before;
        match self {
            Self::Channel(test) => test.holds(
                t.channel_id.as_ref(),
                b.map(|b| b.channel_id.as_ref()),
                plain,
            ),
            Self::OriginalChannel(test) => {
                test.holds(Some(&t.source), b.map(|b| Some(&b.source)), plain)
            }
            Self::Type(test) => {
                test.holds(Some(&t.ticket_type), b.map(|b| Some(&b.ticket_type)), plain)
            }
            Self::Priority(test) => {
                test.holds(Some(&t.priority), b.map(|b| Some(&b.priority)), plain)
            }
            Self::Status(test) => test.holds(Some(&t.status), b.map(|b| Some(&b.status)), plain),
            Self::Stage(test) => test.holds(Some(&t.stage), b.map(|b| Some(&b.stage)), plain),
            Self::Owner(test) => test.holds(
                t.owner.user_id.as_ref(),
                b.map(|b| b.owner.user_id.as_ref()),
                plain,
            ),
            Self::Team(test) => test.holds(
                t.owner.team_id.as_ref(),
                b.map(|b| b.owner.team_id.as_ref()),
                plain,
            ),
            Self::Property { name, test } => test.holds(
                t.properties.get(name).filter(|v| !v.is_null()),
                b.map(|b| b.properties.get(name).filter(|v| !v.is_null())),
                values_equal,
            ),
            Self::Contact { name, test } => {
                let value = f.contact.and_then(|c| contact_value(c, *name));
                test.holds(value.as_ref(), None, values_equal)
            }
            Self::CreatedInOfficeHours { of, value } => f
                .office_hours
                .get(of)
                .is_some_and(|h| h.is_open(t.created_at) == *value),
        }
    }

    /// Checks the operator against the field; `at` is the condition's path.
    pub fn check(&self, at: &str) -> Result<(), crate::DomainError> {
        let checked = match self {
            Self::Channel(t) => t.check(false, false),
            Self::Owner(t) => t.check(false, false),
            Self::Team(t) => t.check(false, false),
            Self::OriginalChannel(t) => t.check(true, false),
            Self::Type(t) => t.check(true, false),
            Self::Status(t) => t.check(true, false),
            Self::Stage(t) => t.check(true, false),
            Self::Priority(t) => t.check(true, true),
            Self::Property { name, .. } if name.trim().is_empty() => {
                return Err(crate::DomainError::invalid_at(
                    format!("{at}.name"),
                    "a property name cannot be empty",
                ));
            }
            Self::Property { test, .. } | Self::Contact { test, .. } => test.check(true, true),
            Self::CreatedInOfficeHours { .. } => Ok(()),
        };
        checked.map_err(|why| crate::DomainError::invalid_at(format!("{at}.op"), why))
    }

    /// The office hours the condition reads, for the store to load.
    pub fn hours(&self) -> Option<HoursOf> {
        match self {
            Self::CreatedInOfficeHours { of, .. } => Some(*of),
            _ => None,
        }
    }
}

fn contact_value(c: &Contact, field: ContactField) -> Option<Value> {
    match field {
        ContactField::Name => c.name.as_ref().map(|n| Value::String(n.to_string())),
        ContactField::Email => c.email.as_ref().map(|e| Value::String(e.as_str().into())),
        ContactField::Phone => c.phone.as_ref().map(|p| Value::String(p.as_str().into())),
        ContactField::OwnerUserId => c.owner_user_id.map(|u| Value::from(u.0)),
    }
}

/// Whether `groups` hold for `f`: any group whose conditions all hold; no
/// groups at all always holds.
pub fn matches(groups: &[FilterGroup], f: &Facts<'_>) -> bool {
    groups.is_empty() || groups.iter().any(|g| g.all.iter().all(|c| c.holds(f)))
}

/// Checks every condition of `groups`, naming the path below `at`
/// (`filters[1].all[0].op`).
pub fn check(groups: &[FilterGroup], at: &str) -> Result<(), crate::DomainError> {
    for (i, g) in groups.iter().enumerate() {
        if g.all.is_empty() {
            return Err(crate::DomainError::invalid_at(
                format!("{at}[{i}].all"),
                "a filter group needs at least one condition",
            ));
        }
        for (j, c) in g.all.iter().enumerate() {
            c.check(&format!("{at}[{i}].all[{j}]"))?;
        }
    }
    Ok(())
}

/// The first instant at or after `at` when `hours` are open, looking a
/// year ahead at most; `None` if they never open.
pub fn next_open(hours: &OfficeHours, at: Timestamp) -> Option<Timestamp> {
    let tz = hours.time_zone.zone();
    let mut t = at;
    // Each step is a weekly-hours change or skips a holiday: a year of
    // them is far more than any real schedule needs.
    for _ in 0..1500 {
        if hours.is_open(t) {
            return Some(t);
        }
        let next = if hours.hours.is_open(&tz, t) {
            // Open by the week but a holiday: try the next local day.
            let day = t.to_zoned(tz.clone()).date().tomorrow().ok()?;
            day.to_zoned(tz.clone()).ok()?.timestamp()
        } else {
            hours.hours.next_change(&tz, t)?
        };
        if next <= t {
            return None;
        }
        t = next;
    }
    None
}
