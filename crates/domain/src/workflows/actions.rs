//! The steps a workflow runs, how they are checked, and the rotate action
//! over the routing engine.

use std::collections::{BTreeMap, HashSet};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::filters::{FilterGroup, HoursOf};
use crate::{
    ChannelId, ChannelKind, DomainError, Owner, Priority, Stage, Status, TeamId, Ticket, UserId,
    routing::{
        AssignTo, Decision, Distribution, RandomSource, RoutingRule, RoutingState, TicketFacts,
        decide,
    },
};

/// Users and teams (their main members) a rotate action chooses among.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Targets {
    /// Users.
    #[serde(default)]
    pub users: Vec<UserId>,
    /// Teams (their main members).
    #[serde(default)]
    pub teams: Vec<TeamId>,
}

fn round_robin() -> Distribution {
    Distribution::RoundRobin
}

fn yes() -> bool {
    true
}

/// One path of an if/then branch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Branch {
    /// Its name, shown in history and dry runs.
    pub name: String,
    /// When it is taken (the first branch whose filters hold).
    pub filters: Vec<FilterGroup>,
    /// What it does.
    #[schema(no_recursion)]
    pub actions: Vec<Action>,
}

/// One step of a workflow, tagged by `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// Gives the ticket to one of `targets`, chosen by the routing engine
    /// (seats, main-team membership, availability, capacity).
    RotateOwner {
        /// Keys the rotation state; kept across edits (filled in when absent).
        #[serde(default)]
        id: String,
        /// Whom to choose among.
        targets: Targets,
        /// Round robin (default), load balanced or random.
        #[serde(default = "round_robin")]
        distribution: Distribution,
        /// Only users available now (default true).
        #[serde(default = "yes")]
        only_available: bool,
        /// Only when the ticket has no owner user.
        #[serde(default)]
        only_if_unowned: bool,
        /// Never choose the current owner (reassign to someone else).
        #[serde(default)]
        exclude_current_owner: bool,
    },
    /// Gives the ticket to a user and/or a team.
    Assign {
        /// The owner user.
        #[serde(default)]
        user_id: Option<UserId>,
        /// The owner team.
        #[serde(default)]
        team_id: Option<TeamId>,
    },
    /// Removes the owner user (the team stays).
    Unassign,
    /// Sets a property (`null` removes it).
    SetProperty {
        /// The property.
        name: String,
        /// Its new value.
        #[schema(value_type = Object)]
        value: Value,
    },
    /// Sets the priority.
    SetPriority {
        /// The new priority.
        value: Priority,
    },
    /// Sets the status (the stage follows).
    SetStatus {
        /// The new status.
        value: Status,
    },
    /// Sets the pipeline stage (the status follows).
    SetStage {
        /// The new stage.
        value: Stage,
    },
    /// Adds an internal note; `{{ticket.subject}}`, `{{ticket.id}}` and
    /// `{{contact.name}}` are filled in.
    AddNote {
        /// The text.
        body: String,
    },
    /// Replies to the customer on the ticket's channel (same placeholders).
    SendReply {
        /// The text.
        body: String,
    },
    /// Tells users, the owner and/or teams' members about the ticket.
    Notify {
        /// Users.
        #[serde(default)]
        users: Vec<UserId>,
        /// The owner user.
        #[serde(default)]
        owner: bool,
        /// Teams (all their members).
        #[serde(default)]
        teams: Vec<TeamId>,
    },
    /// POSTs the ticket as JSON to `url`, signed with HMAC-SHA256 in
    /// `X-Switchboard-Signature`, retried through the outbox.
    Webhook {
        /// Keys the stored secret (filled in when absent).
        #[serde(default)]
        id: String,
        /// An `http` or `https` URL.
        url: String,
        /// The signing secret; write-only (never served; kept when absent
        /// from a change).
        #[serde(default, skip_serializing)]
        secret: Option<String>,
    },
    /// Waits `seconds`, or until the office of `until_open` is open.
    Delay {
        /// How long.
        #[serde(default)]
        seconds: Option<u32>,
        /// Whose office hours to wait for.
        #[serde(default)]
        until_open: Option<HoursOf>,
    },
    /// Runs the first branch whose filters hold, else `default`.
    Branch {
        /// The branches, in order.
        branches: Vec<Branch>,
        /// What runs when no branch holds.
        #[serde(default)]
        #[schema(no_recursion)]
        default: Vec<Action>,
    },
}

/// The account's ids a workflow may name, for [`check_all`].
#[derive(Debug, Clone, Default)]
pub struct Known {
    /// User ids.
    pub users: HashSet<UserId>,
    /// Team ids.
    pub teams: HashSet<TeamId>,
    /// Channel ids.
    pub channels: HashSet<ChannelId>,
}

impl Action {
    /// Its type name, as in the `type` tag.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::RotateOwner { .. } => "rotate_owner",
            Self::Assign { .. } => "assign",
            Self::Unassign => "unassign",
            Self::SetProperty { .. } => "set_property",
            Self::SetPriority { .. } => "set_priority",
            Self::SetStatus { .. } => "set_status",
            Self::SetStage { .. } => "set_stage",
            Self::AddNote { .. } => "add_note",
            Self::SendReply { .. } => "send_reply",
            Self::Notify { .. } => "notify",
            Self::Webhook { .. } => "webhook",
            Self::Delay { .. } => "delay",
            Self::Branch { .. } => "branch",
        }
    }
}

fn bad(at: &str, field: &str, why: impl Into<String>) -> DomainError {
    let path = if field.is_empty() {
        at.to_owned()
    } else {
        format!("{at}.{field}")
    };
    DomainError::invalid_at(path, why)
}

fn check_users(at: &str, ids: &[UserId], known: &Known) -> Result<(), DomainError> {
    match ids.iter().position(|u| !known.users.contains(u)) {
        Some(i) => Err(DomainError::invalid_at(
            format!("{at}[{i}]"),
            format!("no such user: {}", ids[i]),
        )),
        None => Ok(()),
    }
}

fn check_teams(at: &str, ids: &[TeamId], known: &Known) -> Result<(), DomainError> {
    match ids.iter().position(|t| !known.teams.contains(t)) {
        Some(i) => Err(DomainError::invalid_at(
            format!("{at}[{i}]"),
            format!("no such team: {}", ids[i]),
        )),
        None => Ok(()),
    }
}

fn check_hours(at: &str, of: &HoursOf, known: &Known) -> Result<(), DomainError> {
    match of {
        HoursOf::Team(t) if !known.teams.contains(t) => {
            Err(bad(at, "team", format!("no such team: {t}")))
        }
        HoursOf::Channel(c) if !known.channels.contains(c) => {
            Err(bad(at, "channel", format!("no such channel: {c}")))
        }
        _ => Ok(()),
    }
}

/// Checks `actions` (found at `at`, e.g. `actions`) against the account:
/// shapes, then ids; fills missing rotate and webhook ids with unique
/// ones. Errors name the path (`actions[2].targets.users[0]`).
pub fn check_all(actions: &mut [Action], at: &str, known: &Known) -> Result<(), DomainError> {
    let mut ids = HashSet::new();
    collect_ids(actions, &mut ids);
    let mut next = 1;
    check_list(actions, at, known, &mut ids, &mut next)
}

fn collect_ids(actions: &[Action], ids: &mut HashSet<String>) {
    for a in actions {
        match a {
            Action::RotateOwner { id, .. } | Action::Webhook { id, .. } if !id.is_empty() => {
                ids.insert(id.clone());
            }
            Action::Branch { branches, default } => {
                for b in branches {
                    collect_ids(&b.actions, ids);
                }
                collect_ids(default, ids);
            }
            _ => {}
        }
    }
}

fn check_list(
    actions: &mut [Action],
    at: &str,
    known: &Known,
    ids: &mut HashSet<String>,
    next: &mut u32,
) -> Result<(), DomainError> {
    fn fill(id: &mut String, ids: &mut HashSet<String>, next: &mut u32) {
        if id.is_empty() {
            while !ids.insert(format!("a{next}")) {
                *next += 1;
            }
            *id = format!("a{next}");
        }
    }
    if actions.len() > 100 {
        return Err(bad(at, "", "at most 100 actions per list"));
    }
    for (i, a) in actions.iter_mut().enumerate() {
        let at = format!("{at}[{i}]");
        match a {
            Action::RotateOwner { id, targets, .. } => {
                if targets.users.is_empty() && targets.teams.is_empty() {
                    return Err(bad(&at, "targets", "needs at least one user or team"));
                }
                check_users(&format!("{at}.targets.users"), &targets.users, known)?;
                check_teams(&format!("{at}.targets.teams"), &targets.teams, known)?;
                fill(id, ids, next);
            }
            Action::Assign { user_id, team_id } => {
                if user_id.is_none() && team_id.is_none() {
                    return Err(bad(&at, "user_id", "needs a user_id or a team_id"));
                }
                if let Some(u) = user_id
                    && !known.users.contains(u)
                {
                    return Err(bad(&at, "user_id", format!("no such user: {u}")));
                }
                if let Some(t) = team_id
                    && !known.teams.contains(t)
                {
                    return Err(bad(&at, "team_id", format!("no such team: {t}")));
                }
            }
            Action::SetProperty { name, .. } if name.trim().is_empty() => {
                return Err(bad(&at, "name", "a property name cannot be empty"));
            }
            Action::AddNote { body } | Action::SendReply { body } if body.trim().is_empty() => {
                return Err(bad(&at, "body", "cannot be empty"));
            }
            Action::Notify {
                users,
                owner,
                teams,
            } => {
                if users.is_empty() && teams.is_empty() && !*owner {
                    return Err(bad(&at, "users", "notify needs users, teams or owner"));
                }
                check_users(&format!("{at}.users"), users, known)?;
                check_teams(&format!("{at}.teams"), teams, known)?;
            }
            Action::Webhook { id, url, secret } => {
                let lower = url.to_ascii_lowercase();
                if !(lower.starts_with("http://") || lower.starts_with("https://"))
                    || url.len() < 10
                    || url.chars().any(char::is_whitespace)
                {
                    return Err(bad(&at, "url", "must be an http or https URL"));
                }
                if secret.as_ref().is_some_and(|s| s.len() < 8) {
                    return Err(bad(&at, "secret", "at least 8 characters"));
                }
                fill(id, ids, next);
            }
            Action::Delay {
                seconds,
                until_open,
            } => match (seconds, until_open) {
                (Some(0), None) => return Err(bad(&at, "seconds", "must be positive")),
                (Some(s), None) if *s > super::MAX_SECONDS => {
                    return Err(bad(&at, "seconds", super::MAX_SECONDS_REASON));
                }
                (Some(_), None) => {}
                (None, Some(of)) => check_hours(&format!("{at}.until_open"), of, known)?,
                _ => {
                    return Err(bad(
                        &at,
                        "seconds",
                        "give exactly one of seconds and until_open",
                    ));
                }
            },
            Action::Branch { branches, default } => {
                if branches.is_empty() {
                    return Err(bad(&at, "branches", "needs at least one branch"));
                }
                for (b, branch) in branches.iter_mut().enumerate() {
                    let bat = format!("{at}.branches[{b}]");
                    super::filters::check(&branch.filters, &format!("{bat}.filters"))?;
                    check_list(
                        &mut branch.actions,
                        &format!("{bat}.actions"),
                        known,
                        ids,
                        next,
                    )?;
                }
                check_list(default, &format!("{at}.default"), known, ids, next)?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// Fills `{{ticket.subject}}`, `{{ticket.id}}` and `{{contact.name}}` in a
/// templated text (unknown placeholders stay as written).
pub fn render(template: &str, t: &Ticket, contact_name: Option<&str>) -> String {
    template
        .replace("{{ticket.subject}}", &t.subject)
        .replace("{{ticket.id}}", &t.id.0.to_string())
        .replace("{{contact.name}}", contact_name.unwrap_or("there"))
}

/// A rotate action's round-robin state: its current cycle and the last
/// cycle each user was served in. Kept per workflow and action id, and
/// never reset when the targets change (a newcomer has simply not been
/// served in the current cycle).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rotation {
    /// The current cycle (0 before the first).
    pub cycle: u64,
    /// Each user's last served cycle.
    pub last: BTreeMap<UserId, u64>,
}

impl Rotation {
    /// Records that `user` was served in `cycle`.
    pub fn served(&mut self, user: UserId, cycle: u64) {
        self.cycle = cycle;
        self.last.insert(user, cycle);
    }
}

/// What a rotate chose: the routing decision (with its explanation) and
/// the owner to give, if any.
#[derive(Debug, Clone)]
pub struct Rotated {
    /// The engine's decision.
    pub decision: Decision,
    /// The new owner, when someone was chosen.
    pub owner: Option<Owner>,
}

/// A channel id no account has: rotations keep their own round-robin
/// state, so the snapshot must not read any channel's.
const NO_CHANNEL: ChannelId = ChannelId(0);

/// Chooses among `targets` for `t` with the routing engine, over the
/// account's kept routing state at `now` and the action's own `rotation`.
#[allow(clippy::too_many_arguments)]
pub fn rotate(
    state: &mut RoutingState,
    t: &Ticket,
    targets: &Targets,
    distribution: Distribution,
    only_available: bool,
    exclude_current_owner: bool,
    rotation: &Rotation,
    now: Timestamp,
    rng: &mut dyn RandomSource,
) -> Rotated {
    let rule = RoutingRule {
        assign_to: AssignTo::UsersAndTeams,
        users: targets.users.clone(),
        teams: targets.teams.clone(),
        distribution,
        only_available,
        fallback: None,
        skills: Vec::new(),
        relax_after_seconds: None,
        waiting_queue: false,
        rebalance_on_away: false,
    };
    let mut snapshot = state.snapshot(&rule, NO_CHANNEL, None, now);
    snapshot.rr_cycle = rotation.cycle;
    for c in &mut snapshot.candidates {
        c.rr_last_cycle = rotation.last.get(&c.user_id).copied().unwrap_or(0);
    }
    if exclude_current_owner && let Some(owner) = t.owner.user_id {
        snapshot.candidates.retain(|c| c.user_id != owner);
    }
    // The channel kind only matters for contact-owner rules.
    let facts = TicketFacts::of(t, ChannelKind::Custom, None, false, now);
    let decision = decide(&rule, &facts, &snapshot, rng);
    let owner = match decision.outcome() {
        crate::routing::Outcome::Assign { user_id, team_id } => Some(Owner {
            user_id: Some(user_id),
            team_id: team_id.or(t.owner.team_id),
        }),
        crate::routing::Outcome::Team { team_id } => Some(Owner {
            user_id: None,
            team_id: Some(team_id),
        }),
        _ => None,
    };
    Rotated { decision, owner }
}
