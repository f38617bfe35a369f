//! Notifications: who is told what, and how, decided once for every backend.
//!
//! A change to a ticket raises a [`NotifyEvent`]. [`audience`] says which
//! users hear of it under which [`Topic`] (never the user who made the
//! change), [`Preferences::resolve`] says by which [`Method`]s each of them
//! wants to hear of that topic (their own setting, else the account's
//! default, else [`built_in`]), and [`email_cap`] says whether an e-mail
//! goes out now or waits for the digest because the user's hourly cap for
//! that topic is reached. [`plan`] puts the three together; the store only
//! loads the facts and writes the rows [`plan`] returns, in the change's own
//! transaction.

use std::collections::{BTreeMap, HashMap};

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{DomainError, EmailAddress, Name, TeamId, TicketId, UserId};

crate::model::wire_enum!(
    /// What a notification is about.
    Topic {
        /// A new ticket landed in Unassigned (told to the members of its
        /// team, or to every seated user when it has no team).
        NewUnassigned = "new_unassigned",
        /// A ticket was assigned to me (by routing, by hand, by a workflow,
        /// by a handoff).
        AssignedToMe = "assigned_to_me",
        /// The customer replied on a ticket assigned to me.
        CustomerRepliedMine = "customer_replied_mine",
        /// The customer replied on an unassigned ticket.
        CustomerRepliedUnassigned = "customer_replied_unassigned",
        /// The customer agent handed a conversation off to me or my team.
        HandedOff = "handed_off",
        /// I was mentioned (`@name` or `@email`) in an internal note.
        Mentioned = "mentioned",
        /// A ticket of mine waited past the workflow's first-reply limit.
        FirstReplyOverdue = "first_reply_overdue",
        /// A workflow's notify step told me about a ticket.
        WorkflowNotice = "workflow_notice",
    }
);

crate::model::wire_enum!(
    /// How a notification reaches its user.
    Method {
        /// The console's bell: the notification list and its live stream.
        InApp = "in_app",
        /// An e-mail through the account's outgoing relay.
        Email = "email",
    }
);

crate::model::wire_enum!(
    /// A preference as set: on, off, or unset (follow the next level).
    Setting {
        /// Told by this method.
        On = "on",
        /// Not told by this method.
        Off = "off",
        /// Follows the account default (or, for a default, the built-in one).
        Unset = "unset",
    }
);

crate::model::wire_enum!(
    /// Where an effective preference comes from.
    Source {
        /// The user's own setting.
        User = "user",
        /// The account default a super admin set.
        AccountDefault = "account_default",
        /// Switchboard's built-in default.
        BuiltIn = "built_in",
    }
);

impl Setting {
    /// `Some(on)` when set, `None` when unset.
    pub fn as_bool(self) -> Option<bool> {
        match self {
            Self::On => Some(true),
            Self::Off => Some(false),
            Self::Unset => None,
        }
    }

    /// The setting for a stored flag.
    pub fn from_bool(on: Option<bool>) -> Self {
        match on {
            Some(true) => Self::On,
            Some(false) => Self::Off,
            None => Self::Unset,
        }
    }
}

/// Switchboard's default when neither the user nor the account set one:
/// every topic in the app; by e-mail only what is addressed to the user
/// personally (the two "unassigned" topics go to many people at once and
/// would flood their mailboxes).
pub fn built_in(topic: Topic, method: Method) -> bool {
    match method {
        Method::InApp => true,
        Method::Email => !matches!(
            topic,
            Topic::NewUnassigned | Topic::CustomerRepliedUnassigned
        ),
    }
}

/// One preference as given in a request or stored: a topic, a method and
/// its setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreferenceSetting {
    /// The topic.
    pub topic: Topic,
    /// The delivery method.
    pub method: Method,
    /// On, off, or unset.
    pub setting: Setting,
}

/// One effective preference, with where it comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub struct EffectivePreference {
    /// The topic.
    pub topic: Topic,
    /// The delivery method.
    pub method: Method,
    /// The user's own setting (`unset` when they follow the default).
    pub setting: Setting,
    /// Whether the user is told this way.
    pub enabled: bool,
    /// Which level decided `enabled`.
    pub source: Source,
}

/// The stored preferences that matter for one decision: the account's
/// defaults and the users' own settings (a missing entry is unset).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Preferences {
    /// Account defaults by topic and method.
    pub defaults: HashMap<(Topic, Method), bool>,
    /// Users' own settings by user, topic and method.
    pub users: HashMap<(UserId, Topic, Method), bool>,
}

impl Preferences {
    /// Whether `user` is told of `topic` by `method`, and which level
    /// decided: their own setting wins, then the account default, then
    /// [`built_in`].
    pub fn resolve(&self, user: UserId, topic: Topic, method: Method) -> (bool, Source) {
        if let Some(on) = self.users.get(&(user, topic, method)) {
            (*on, Source::User)
        } else if let Some(on) = self.defaults.get(&(topic, method)) {
            (*on, Source::AccountDefault)
        } else {
            (built_in(topic, method), Source::BuiltIn)
        }
    }

    /// Every topic and method for `user`, in declaration order.
    pub fn effective(&self, user: UserId) -> Vec<EffectivePreference> {
        every(|topic, method| {
            let (enabled, source) = self.resolve(user, topic, method);
            EffectivePreference {
                topic,
                method,
                setting: Setting::from_bool(self.users.get(&(user, topic, method)).copied()),
                enabled,
                source,
            }
        })
    }

    /// The account defaults for every topic and method (`unset` where the
    /// built-in default applies).
    pub fn default_settings(&self) -> Vec<EffectivePreference> {
        every(|topic, method| {
            let set = self.defaults.get(&(topic, method)).copied();
            EffectivePreference {
                topic,
                method,
                setting: Setting::from_bool(set),
                enabled: set.unwrap_or(built_in(topic, method)),
                source: if set.is_some() {
                    Source::AccountDefault
                } else {
                    Source::BuiltIn
                },
            }
        })
    }
}

fn every<T>(f: impl Fn(Topic, Method) -> T) -> Vec<T> {
    Topic::ALL
        .iter()
        .flat_map(|t| Method::ALL.iter().map(|m| f(*t, *m)))
        .collect()
}

/// Refuses a list naming one topic and method twice (which one would win
/// is not obvious); the error names the field.
pub fn check_settings(settings: &[PreferenceSetting]) -> Result<(), DomainError> {
    let mut seen = std::collections::HashSet::new();
    for s in settings {
        if !seen.insert((s.topic, s.method)) {
            return Err(DomainError::invalid(
                "settings",
                format!("{} by {} is given twice", s.topic, s.method),
            ));
        }
    }
    Ok(())
}

/// What happened that someone may need to hear of. Raised by the store in
/// the change's transaction (ticket created, owner moved, message added),
/// or directly by whoever detects it (a workflow's first-reply timer, the
/// customer agent's handoff) through `Store::raise_notification`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "event", rename_all = "snake_case", deny_unknown_fields)]
pub enum NotifyEvent {
    /// A new ticket has no owner user.
    NewUnassigned,
    /// The ticket was just given to `user_id`.
    Assigned {
        /// The new owner.
        user_id: UserId,
    },
    /// The customer wrote on the ticket.
    CustomerReplied,
    /// The customer agent handed the conversation off to a user, a team,
    /// or both.
    HandedOff {
        /// The user it was handed to.
        user_id: Option<UserId>,
        /// The team it was handed to.
        team_id: Option<TeamId>,
    },
    /// An internal note was added; its `@name`/`@email` mentions are told.
    Note {
        /// The note's text.
        body: String,
    },
    /// The ticket's owner has not replied within the workflow's limit.
    FirstReplyOverdue,
    /// A workflow's notify step names these users.
    Workflow {
        /// Whom it tells.
        users: Vec<UserId>,
    },
}

/// The event a new message raises: a customer's message on a ticket that
/// already had one is a reply (the first one opened the ticket, which
/// raised its own event); an internal note may mention people; a public
/// reply tells no one (its author made it).
pub fn message_event(kind: crate::MessageKind, body: &str, first: bool) -> Option<NotifyEvent> {
    match kind {
        crate::MessageKind::Inbound if !first => Some(NotifyEvent::CustomerReplied),
        crate::MessageKind::Note => Some(NotifyEvent::Note {
            body: body.to_owned(),
        }),
        _ => None,
    }
}

/// A user who may be told, as the audience rule needs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    /// Their id.
    pub id: UserId,
    /// Their display name (for `@name` mentions).
    pub name: Name,
    /// Their address (for `@email` mentions and e-mail).
    pub email: EmailAddress,
    /// Whether they have a help desk seat.
    pub seated: bool,
    /// Deactivated users are never told.
    pub deactivated: bool,
    /// Every team they belong to (main or not).
    pub teams: Vec<TeamId>,
}

/// The facts about a ticket the audience rule reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketFacts<'a> {
    /// Its owner user.
    pub owner_user: Option<UserId>,
    /// Its owner team.
    pub owner_team: Option<TeamId>,
    /// The account's users.
    pub people: &'a [Person],
    /// Who made the change (never told of it).
    pub actor: Option<UserId>,
}

/// Who is told of `event` under which topic, in user id order, each user
/// once. Deactivated users and the actor are never in it.
pub fn audience(event: &NotifyEvent, facts: &TicketFacts<'_>) -> Vec<(UserId, Topic)> {
    let active = |id: UserId| facts.people.iter().any(|p| p.id == id && !p.deactivated);
    let team_or_seated = |team: Option<TeamId>| -> Vec<UserId> {
        facts
            .people
            .iter()
            .filter(|p| !p.deactivated && p.seated)
            .filter(|p| team.is_none_or(|t| p.teams.contains(&t)))
            .map(|p| p.id)
            .collect()
    };
    let told: Vec<(UserId, Topic)> = match event {
        NotifyEvent::NewUnassigned if facts.owner_user.is_none() => {
            team_or_seated(facts.owner_team)
                .into_iter()
                .map(|u| (u, Topic::NewUnassigned))
                .collect()
        }
        NotifyEvent::NewUnassigned => Vec::new(),
        NotifyEvent::Assigned { user_id } => vec![(*user_id, Topic::AssignedToMe)],
        NotifyEvent::CustomerReplied => match facts.owner_user {
            Some(owner) => vec![(owner, Topic::CustomerRepliedMine)],
            None => team_or_seated(facts.owner_team)
                .into_iter()
                .map(|u| (u, Topic::CustomerRepliedUnassigned))
                .collect(),
        },
        NotifyEvent::HandedOff { user_id, team_id } => match (user_id, team_id) {
            (Some(user), _) => vec![(*user, Topic::HandedOff)],
            (None, Some(team)) => team_or_seated(Some(*team))
                .into_iter()
                .map(|u| (u, Topic::HandedOff))
                .collect(),
            (None, None) => Vec::new(),
        },
        NotifyEvent::Note { body } => mentions(body, facts.people)
            .into_iter()
            .map(|u| (u, Topic::Mentioned))
            .collect(),
        NotifyEvent::FirstReplyOverdue => facts
            .owner_user
            .map(|u| vec![(u, Topic::FirstReplyOverdue)])
            .unwrap_or_default(),
        NotifyEvent::Workflow { users } => {
            users.iter().map(|u| (*u, Topic::WorkflowNotice)).collect()
        }
    };
    let mut told: Vec<_> = told
        .into_iter()
        .filter(|(u, _)| Some(*u) != facts.actor && active(*u))
        .collect();
    told.sort_by_key(|(u, _)| *u);
    told.dedup_by_key(|(u, _)| *u);
    told
}

/// The users a note mentions: `@` followed by a user's e-mail address or
/// their name (case-insensitive; a name with spaces is matched whole, so
/// `@Ana Lima` finds "Ana Lima"; the longest name wins, and the character
/// after it must not continue a word). An `@` inside a word (an e-mail
/// address in the text) mentions no one.
pub fn mentions(body: &str, people: &[Person]) -> Vec<UserId> {
    let lower = body.to_lowercase();
    let mut found = Vec::new();
    for (at, _) in lower.match_indices('@') {
        if lower[..at]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '.' || c == '_')
        {
            continue;
        }
        let rest = &lower[at + 1..];
        let best = people
            .iter()
            .filter_map(|p| {
                let email = p.email.as_str().to_lowercase();
                let name = p.name.as_str().to_lowercase();
                [email, name]
                    .into_iter()
                    .filter(|key| !key.is_empty() && rest.starts_with(key.as_str()))
                    .filter(|key| {
                        !rest[key.len()..]
                            .chars()
                            .next()
                            .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '@')
                    })
                    .map(|key| key.len())
                    .max()
                    .map(|len| (len, p.id))
            })
            .max_by_key(|(len, id)| (*len, std::cmp::Reverse(*id)));
        if let Some((_, id)) = best {
            found.push(id);
        }
    }
    found.sort();
    found.dedup();
    found
}

/// The default hourly cap on e-mails per user and topic.
pub const DEFAULT_HOURLY_CAP: u32 = 20;

/// The cap's window containing `now`: the clock hour (UTC), as
/// `[start, end)`. Fixed windows keep the rule a function of the instant
/// alone, and the digest of a window is due exactly at its end.
pub fn cap_window(now: Timestamp) -> (Timestamp, Timestamp) {
    let hour = 3_600_000;
    let start = now.as_millisecond().div_euclid(hour) * hour;
    let start = Timestamp::from_millisecond(start).unwrap_or(now);
    (start, start + SignedDuration::from_hours(1))
}

/// What happens to one notification's e-mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EmailPlan {
    /// Sent now: an outbox row.
    Send,
    /// The user's cap for the topic is reached: kept for the digest sent
    /// when the window ends.
    Hold {
        /// When the digest is due (the window's end).
        digest_at: Timestamp,
    },
}

/// Whether an e-mail goes out now, given how many of this user and topic
/// were already sent in the window containing `now`.
pub fn email_cap(sent_in_window: u32, cap: u32, now: Timestamp) -> EmailPlan {
    if sent_in_window < cap {
        EmailPlan::Send
    } else {
        EmailPlan::Hold {
            digest_at: cap_window(now).1,
        }
    }
}

/// The hourly cap of an account whose stored notification e-mail settings
/// are `settings` (see [`plan`]): `None` without any.
pub fn account_cap(settings: &serde_json::Map<String, serde_json::Value>) -> Option<u32> {
    (!settings.is_empty())
        .then(|| email_settings::parse(settings).map_or(DEFAULT_HOURLY_CAP, |s| s.hourly_cap))
}

/// One notification to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Planned {
    /// Whom it is for.
    pub user: UserId,
    /// What about.
    pub topic: Topic,
    /// Whether it is shown in the app.
    pub in_app: bool,
    /// Its e-mail, if the user wants one.
    pub email: Option<EmailPlan>,
}

/// The notifications for `told` (an [`audience`]): each user's methods
/// ([`Preferences::resolve`]), and for e-mails the [`email_cap`] against
/// `sent` (e-mails sent in the current window, by user and topic). `cap` is
/// the account's hourly cap, `None` while the account has no notification
/// e-mail settings: then nobody is e-mailed (there is no relay to send
/// through), and the store need not count what was sent. Users who want
/// neither method get nothing.
pub fn plan(
    told: &[(UserId, Topic)],
    prefs: &Preferences,
    sent: &HashMap<(UserId, Topic), u32>,
    cap: Option<u32>,
    now: Timestamp,
) -> Vec<Planned> {
    told.iter()
        .filter_map(|&(user, topic)| {
            let in_app = prefs.resolve(user, topic, Method::InApp).0;
            let email = cap
                .filter(|_| prefs.resolve(user, topic, Method::Email).0)
                .map(|cap| email_cap(sent.get(&(user, topic)).copied().unwrap_or(0), cap, now));
            (in_app || email.is_some()).then_some(Planned {
                user,
                topic,
                in_app,
                email,
            })
        })
        .collect()
}

/// Which users the store must load for [`audience`] to decide `event` on
/// a ticket owned by `owner_user`: most events concern one known user, so
/// a big account's users are read only when a whole team or every seated
/// user may be told (or names are searched for mentions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Candidates {
    /// Nobody can be told.
    Nobody,
    /// Only this user.
    One(UserId),
    /// The account's users.
    Everyone,
}

/// See [`Candidates`].
pub fn candidates(event: &NotifyEvent, owner_user: Option<UserId>) -> Candidates {
    match (event, owner_user) {
        (NotifyEvent::NewUnassigned, Some(_)) => Candidates::Nobody,
        (NotifyEvent::Assigned { user_id }, _) => Candidates::One(*user_id),
        (
            NotifyEvent::HandedOff {
                user_id: Some(u), ..
            },
            _,
        ) => Candidates::One(*u),
        (
            NotifyEvent::HandedOff {
                user_id: None,
                team_id: None,
            },
            _,
        ) => Candidates::Nobody,
        (NotifyEvent::CustomerReplied | NotifyEvent::FirstReplyOverdue, Some(u)) => {
            Candidates::One(u)
        }
        (NotifyEvent::FirstReplyOverdue, None) => Candidates::Nobody,
        _ => Candidates::Everyone,
    }
}

crate::model::wire_enum!(
    /// Where a notification's e-mail stands.
    EmailState {
        /// No e-mail (the user does not want one for this topic).
        None = "none",
        /// Handed to the outbox to be sent on its own.
        Sent = "sent",
        /// Over the cap: waiting for the window's digest.
        Held = "held",
        /// Summarised in a digest e-mail.
        Digested = "digested",
    }
);

/// Something a user is told about, as listed by `GET /api/v1/notifications`
/// and streamed by `GET /api/v1/notifications/stream`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Notification {
    /// Its id (increases with time; the stream's `id`).
    pub id: i64,
    /// The ticket it is about.
    pub ticket_id: TicketId,
    /// What about it.
    pub topic: Topic,
    /// The ticket's subject when it was written.
    pub subject: String,
    /// Who caused it, if a user did.
    pub actor_user_id: Option<UserId>,
    /// When.
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
    /// When the user read it; `null` while unread.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub read_at: Option<Timestamp>,
}

/// The subject line of a notification e-mail about ticket `id`: stable per
/// ticket, so mail clients thread every notification of one ticket.
pub fn email_subject(id: TicketId, subject: &str) -> String {
    format!("[#{id}] {subject}")
}

/// One line saying what a notification is about, for e-mails and digests.
pub fn describe(topic: Topic) -> &'static str {
    match topic {
        Topic::NewUnassigned => "New unassigned ticket",
        Topic::AssignedToMe => "Assigned to you",
        Topic::CustomerRepliedMine => "The customer replied on your ticket",
        Topic::CustomerRepliedUnassigned => "The customer replied on an unassigned ticket",
        Topic::HandedOff => "Handed off to you",
        Topic::Mentioned => "You were mentioned in a note",
        Topic::FirstReplyOverdue => "Waiting for a first reply past its limit",
        Topic::WorkflowNotice => "A workflow asks you to look at a ticket",
    }
}

/// Counts by topic, in topic order, for a digest's summary.
pub fn digest_summary(topics: &[Topic]) -> BTreeMap<&'static str, usize> {
    let mut out = BTreeMap::new();
    for t in topics {
        *out.entry(describe(*t)).or_insert(0) += 1;
    }
    out
}

#[cfg(test)]
mod tests;

/// The account's notification e-mail settings
/// (`PUT /api/v1/notification-settings/email`).
pub mod email_settings {
    use serde_json::{Map, Value};

    use crate::{DomainError, channel_settings};

    pub use crate::channel_settings::{SmtpRelay, SmtpTls};

    /// The keys the object may hold.
    pub const KEYS: &[&str] = &["address", "smtp_relay", "secrets", "hourly_cap"];

    /// How notification e-mails leave: the account's outgoing relay (the
    /// same shape as an e-mail channel's), the From address, and the cap.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct NotificationEmail {
        /// The From address (`address`).
        pub address: Option<String>,
        /// The relay (`smtp_relay`).
        pub smtp_relay: Option<SmtpRelay>,
        /// `secrets.smtp_username`.
        pub smtp_username: Option<String>,
        /// `secrets.smtp_password` (never served or logged).
        pub smtp_password: Option<String>,
        /// E-mails per user and topic per hour before the rest wait for
        /// the digest (`hourly_cap`, default [`super::DEFAULT_HOURLY_CAP`]).
        pub hourly_cap: u32,
    }

    impl Default for NotificationEmail {
        fn default() -> Self {
            Self {
                address: None,
                smtp_relay: None,
                smtp_username: None,
                smtp_password: None,
                hourly_cap: super::DEFAULT_HOURLY_CAP,
            }
        }
    }

    impl NotificationEmail {
        /// The relay settings in the e-mail channel's typed form, so the
        /// channel's SMTP sender can send them.
        pub fn as_channel(&self) -> channel_settings::EmailSettings {
            channel_settings::EmailSettings {
                address: self.address.clone(),
                smtp_relay: self.smtp_relay.clone(),
                smtp_username: self.smtp_username.clone(),
                smtp_password: self.smtp_password.clone(),
            }
        }
    }

    /// Parses the stored or given object; errors name the field
    /// (`smtp_relay.port`, `hourly_cap`).
    pub fn parse(m: &Map<String, Value>) -> Result<NotificationEmail, DomainError> {
        if let Some(k) = m.keys().find(|k| !KEYS.contains(&k.as_str())) {
            return Err(DomainError::invalid(
                "settings",
                format!("unknown key {k:?} (known: {})", KEYS.join(", ")),
            ));
        }
        // The channel parser names fields `settings.x`; this object is the
        // whole body, so the prefix goes.
        let relay = channel_settings::email(m).map_err(|e| match e {
            DomainError::Invalid { field, reason } => DomainError::Invalid {
                field: field.strip_prefix("settings.").unwrap_or(field),
                reason,
            },
            DomainError::InvalidAt { field, reason } => DomainError::InvalidAt {
                field: field
                    .strip_prefix("settings.")
                    .map(str::to_owned)
                    .unwrap_or(field),
                reason,
            },
        })?;
        let hourly_cap = match m.get("hourly_cap") {
            None | Some(Value::Null) => super::DEFAULT_HOURLY_CAP,
            Some(v) => v
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .filter(|n| *n <= 10_000)
                .ok_or_else(|| {
                    DomainError::invalid("hourly_cap", "must be a whole number from 0 to 10000")
                })?,
        };
        if let Some(a) = &relay.address {
            crate::EmailAddress::try_from(a.clone())
                .map_err(|_| DomainError::invalid("address", "is not an e-mail address"))?;
        }
        Ok(NotificationEmail {
            address: relay.address,
            smtp_relay: relay.smtp_relay,
            smtp_username: relay.smtp_username,
            smtp_password: relay.smtp_password,
            hourly_cap,
        })
    }
}
