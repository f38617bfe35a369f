//! A channel's routing rule, as set with `PATCH /api/v1/channels/{id}`
//! (`{"routing": {...}}`) and stored on the channel.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{DomainError, SkillId, TeamId, UserId};

/// Who incoming tickets go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AssignTo {
    /// The listed users plus the main members of the listed teams.
    UsersAndTeams,
    /// The listed team, with no owner user.
    TeamOnly,
    /// The contact's owner (with a fallback when they cannot take it).
    ContactOwner,
    /// The AI customer agent, with a fallback for what it cannot answer.
    CustomerAgent,
    /// Nobody: tickets stay in Unassigned.
    Nobody,
}

/// How a ticket is distributed among eligible users.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Distribution {
    /// Fewest open tickets of the same type assigned in the last 30 days.
    LoadBalanced,
    /// Everyone eligible gets one before anyone gets a second.
    RoundRobin,
    /// Uniformly at random.
    Random,
}

/// Where a fallback sends the ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FallbackTo {
    /// Leave it unassigned.
    Nobody,
    /// The fallback's users and teams.
    UsersAndTeams,
}

/// What happens when the contact owner (or the customer agent) cannot take a ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Fallback {
    /// Nobody, or users and teams.
    pub assign_to: FallbackTo,
    /// Users, for `users_and_teams`.
    #[serde(default)]
    pub users: Vec<UserId>,
    /// Teams (their main members), for `users_and_teams`.
    #[serde(default)]
    pub teams: Vec<TeamId>,
}

/// A skill a ticket requires when one of its properties has a value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SkillRule {
    /// The ticket property to look at (`language`, `category`, ...).
    pub property: String,
    /// The value that triggers the requirement (compared as text, ignoring case).
    pub equals: String,
    /// The required skill.
    pub skill_id: SkillId,
    /// Optional skills are dropped after `relax_after_seconds`.
    #[serde(default)]
    pub optional: bool,
}

fn yes() -> bool {
    true
}

fn load_balanced() -> Distribution {
    Distribution::LoadBalanced
}

/// A channel's routing rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoutingRule {
    /// Who tickets go to.
    pub assign_to: AssignTo,
    /// Target users.
    #[serde(default)]
    pub users: Vec<UserId>,
    /// Target teams (their main members; for `team_only`, exactly one team).
    #[serde(default)]
    pub teams: Vec<TeamId>,
    /// How to pick among eligible users (default `load_balanced`).
    #[serde(default = "load_balanced")]
    pub distribution: Distribution,
    /// Only route to users available now (default true).
    #[serde(default = "yes")]
    pub only_available: bool,
    /// For `contact_owner` and `customer_agent`: where tickets go otherwise.
    #[serde(default)]
    pub fallback: Option<Fallback>,
    /// Skills required by ticket properties.
    #[serde(default)]
    pub skills: Vec<SkillRule>,
    /// Drop optional skills when a ticket has waited this long; `null`: never.
    #[serde(default)]
    #[schema(format = Int64, minimum = 0, maximum = 4294967295_u64)]
    pub relax_after_seconds: Option<u32>,
    /// Keep tickets nobody could take in a waiting queue and assign them as
    /// soon as a target becomes eligible (default false, like HubSpot).
    #[serde(default)]
    pub waiting_queue: bool,
    /// When a user becomes away, send their open tickets without a public
    /// reply back through routing (default false).
    #[serde(default)]
    pub rebalance_on_away: bool,
}

impl RoutingRule {
    /// Checks that a channel of `kind` can use this rule: e-mail, WhatsApp
    /// and custom channels take every kind (the customer agent with its
    /// fallback included); forms take users and teams, team only, contact
    /// owner or nobody; chat takes users and teams, contact owner (a known
    /// visitor) or nobody (its assignment toggle off); calls ring users and
    /// teams, or nobody.
    pub fn check_channel(&self, kind: crate::ChannelKind) -> Result<(), DomainError> {
        use crate::ChannelKind as K;
        let allowed: &[AssignTo] = match kind {
            K::Email | K::Whatsapp | K::Custom => return Ok(()),
            K::Form => &[
                AssignTo::UsersAndTeams,
                AssignTo::TeamOnly,
                AssignTo::ContactOwner,
                AssignTo::Nobody,
            ],
            K::Chat => &[
                AssignTo::UsersAndTeams,
                AssignTo::ContactOwner,
                AssignTo::Nobody,
            ],
            K::Calls => &[AssignTo::UsersAndTeams, AssignTo::Nobody],
        };
        if allowed.contains(&self.assign_to) {
            Ok(())
        } else {
            Err(DomainError::invalid(
                "routing.assign_to",
                format!(
                    "a {kind} channel cannot use assign_to {}",
                    serde_json::to_string(&self.assign_to).unwrap_or_default()
                ),
            ))
        }
    }

    /// Checks the rule's shape; ids are checked against the account by the store.
    pub fn validate(&self) -> Result<(), DomainError> {
        let needs_targets = matches!(self.assign_to, AssignTo::UsersAndTeams);
        if needs_targets && self.users.is_empty() && self.teams.is_empty() {
            return Err(DomainError::invalid(
                "routing.users",
                "users_and_teams needs at least one user or team",
            ));
        }
        if self.assign_to == AssignTo::TeamOnly && self.teams.len() != 1 {
            return Err(DomainError::invalid(
                "routing.teams",
                "team_only needs exactly one team",
            ));
        }
        if self.skills.len() > 64 {
            return Err(DomainError::invalid(
                "routing.skills",
                "at most 64 skill rules",
            ));
        }
        let fallback_needed = matches!(
            self.assign_to,
            AssignTo::ContactOwner | AssignTo::CustomerAgent
        );
        if let Some(f) = &self.fallback {
            if !fallback_needed {
                return Err(DomainError::invalid(
                    "routing.fallback",
                    "only contact_owner and customer_agent take a fallback",
                ));
            }
            if f.assign_to == FallbackTo::UsersAndTeams && f.users.is_empty() && f.teams.is_empty()
            {
                return Err(DomainError::invalid(
                    "routing.fallback.users",
                    "a users_and_teams fallback needs users or teams",
                ));
            }
        }
        Ok(())
    }

    /// The distinct skills the skill rules name, in order of first mention.
    /// Bit `i` of a candidate's [`SkillMask`](super::SkillMask) stands for
    /// the `i`-th (validation keeps them to 64).
    pub fn skill_ids(&self) -> Vec<SkillId> {
        self.distinct_skills().collect()
    }

    /// Which of the rule's skills a user with skills `has` holds. Called for
    /// every candidate of a snapshot, so it allocates nothing.
    pub fn skill_mask(&self, has: &[SkillId]) -> super::SkillMask {
        let bits = self
            .distinct_skills()
            .enumerate()
            .filter(|(_, id)| has.contains(id))
            .fold(0u64, |m, (i, _)| m | 1 << i);
        super::SkillMask(bits)
    }

    /// [`RoutingRule::skill_ids`] without the vector (rules name a handful,
    /// so the quadratic first-mention test is cheaper than a set).
    fn distinct_skills(&self) -> impl Iterator<Item = SkillId> + '_ {
        self.skills
            .iter()
            .enumerate()
            .filter(|(i, r)| !self.skills[..*i].iter().any(|p| p.skill_id == r.skill_id))
            .map(|(_, r)| r.skill_id)
            .take(64)
    }

    /// Every user id and team id the rule names (fallback included).
    pub fn named(&self) -> (Vec<UserId>, Vec<TeamId>) {
        let mut users = self.users.clone();
        let mut teams = self.teams.clone();
        if let Some(f) = &self.fallback {
            users.extend(&f.users);
            teams.extend(&f.teams);
        }
        (users, teams)
    }
}
