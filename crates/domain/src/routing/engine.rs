//! The routing engine: a pure function from a rule, the ticket's facts and a
//! snapshot of the candidates to a decision and its explanation.
//!
//! The store builds the snapshot inside the write transaction that will apply
//! the decision, so the loads and round-robin state the engine sees are the
//! ones it changes: two tickets routed at once cannot both see a stale load.

use std::{collections::BTreeMap, sync::Arc};

mod pick;
mod rank;

pub use rank::{ranked_eligible, reachable};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::{AssignTo, Availability, AwayReason, Distribution, FallbackTo, RoutingRule};
use crate::{SkillId, TeamId, TicketType, UserId};

/// A source of uniform random choices, injected so tests are deterministic.
pub trait RandomSource {
    /// A uniformly chosen number in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize;
}

/// Capacity limits of a user: on all open tickets, and per ticket type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Capacity {
    /// Most open tickets in all.
    #[schema(format = Int64, minimum = 0, maximum = 4294967295_u64)]
    pub total: Option<u32>,
    /// Most open `calls` tickets.
    #[schema(format = Int64, minimum = 0, maximum = 4294967295_u64)]
    pub calls: Option<u32>,
    /// Most open `message` tickets.
    #[schema(format = Int64, minimum = 0, maximum = 4294967295_u64)]
    pub message: Option<u32>,
    /// Most open `email_other` tickets.
    #[schema(format = Int64, minimum = 0, maximum = 4294967295_u64)]
    pub email_other: Option<u32>,
}

impl Capacity {
    fn for_type(&self, t: TicketType) -> Option<u32> {
        match t {
            TicketType::Calls => self.calls,
            TicketType::Message => self.message,
            TicketType::EmailOther => self.email_other,
        }
    }
}

/// Open tickets a user owns, per type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TypeCounts {
    /// Open `calls` tickets.
    pub calls: u32,
    /// Open `message` tickets.
    pub message: u32,
    /// Open `email_other` tickets.
    pub email_other: u32,
}

impl TypeCounts {
    /// The count for one type.
    pub fn get(&self, t: TicketType) -> u32 {
        match t {
            TicketType::Calls => self.calls,
            TicketType::Message => self.message,
            TicketType::EmailOther => self.email_other,
        }
    }

    /// A mutable count for one type.
    pub fn get_mut(&mut self, t: TicketType) -> &mut u32 {
        match t {
            TicketType::Calls => &mut self.calls,
            TicketType::Message => &mut self.message,
            TicketType::EmailOther => &mut self.email_other,
        }
    }

    /// All types together.
    pub fn total(&self) -> u32 {
        self.calls + self.message + self.email_other
    }
}

/// What routing needs to know about a ticket.
#[derive(Debug, Clone)]
pub struct TicketFacts<'a> {
    /// Its type (loads and capacity are per type).
    pub ticket_type: TicketType,
    /// Its properties (skill rules read them).
    pub properties: &'a Map<String, Value>,
    /// The contact's owner, if the ticket has a contact with one.
    pub contact_owner: Option<UserId>,
    /// Whether the channel identifies visitors by cookie (forms, chat) ...
    pub needs_visitor: bool,
    /// ... and whether this visitor's token is known on the contact.
    pub visitor_known: bool,
    /// How long the ticket has waited (for skill relaxation).
    pub waited_seconds: u64,
}

impl<'a> TicketFacts<'a> {
    /// The facts of ticket `t` on a channel of `kind` at `now`, with its
    /// contact's owner and whether its visitor is known (both read only for
    /// contact-owner rules).
    pub fn of(
        t: &'a crate::Ticket,
        kind: crate::ChannelKind,
        contact_owner: Option<UserId>,
        visitor_known: bool,
        now: Timestamp,
    ) -> Self {
        Self {
            ticket_type: t.ticket_type,
            properties: &t.properties,
            contact_owner,
            needs_visitor: matches!(kind, crate::ChannelKind::Form | crate::ChannelKind::Chat),
            visitor_known,
            waited_seconds: now.duration_since(t.created_at).as_secs().max(0) as u64,
        }
    }
}

/// A user routing may consider, as of the decision.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// The user.
    pub user_id: UserId,
    /// Deactivated users are never routed to.
    pub deactivated: bool,
    /// Only seated users are routed to.
    pub seated: bool,
    /// Availability now.
    pub availability: Availability,
    /// Which of the rule's skills the user has ([`RoutingRule::skill_mask`]).
    pub skills: SkillMask,
    /// Capacity limits.
    pub capacity: Capacity,
    /// Open tickets owned, per type.
    pub open: TypeCounts,
    /// Open tickets of each type assigned in the last 30 days (the load).
    pub load: TypeCounts,
    /// When the user was last assigned a ticket automatically or by hand.
    pub last_assigned_at: Option<Timestamp>,
    /// The last round-robin cycle of this rule in which the user got a ticket.
    pub rr_last_cycle: u64,
    /// The user's main team.
    pub main_team_id: Option<TeamId>,
}

/// A set of the skills a rule names: bit `i` stands for the `i`-th of
/// [`RoutingRule::skill_ids`]. A snapshot is built for one rule, so the
/// engine tests a candidate's skills with one AND instead of searching a
/// list (which, at 1,000 candidates, was a cache miss each).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SkillMask(pub u64);

/// A team as routing sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct TeamInfo {
    /// The team.
    pub id: TeamId,
    /// Seated, active members (a team-only target needs one).
    pub seated_members: u32,
    /// Main members (the team's routing targets).
    pub main_members: Vec<UserId>,
    /// Secondary members (reported, never targets).
    pub secondary_members: Vec<UserId>,
}

/// Everything the engine reads besides the rule and the ticket.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Every user named by the rule or member of one of its teams, plus the
    /// contact owner; in any order.
    pub candidates: Vec<Candidate>,
    /// Every team named by the rule.
    pub teams: Vec<TeamInfo>,
    /// The rule's current round-robin cycle (starts at 1).
    pub rr_cycle: u64,
    /// Skill names, for explanations.
    pub skill_names: BTreeMap<SkillId, String>,
}

/// Why a candidate was or was not eligible.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// Could take the ticket.
    Eligible,
    /// Named by the rule but not a user of this account.
    NotFound,
    /// Deactivated.
    Deactivated,
    /// Has no help desk seat.
    NotSeated,
    /// Member of a listed team, but not a main member.
    NotATarget,
    /// Not available now.
    Away {
        /// Why.
        reason: AwayReason,
        /// Until when, if known.
        #[schema(value_type = Option<String>, format = DateTime)]
        until: Option<Timestamp>,
    },
    /// Lacks a required skill.
    LacksSkill {
        /// The skill's name.
        #[schema(value_type = String)]
        skill: Arc<str>,
    },
    /// At a capacity limit.
    AtCapacity {
        /// Open tickets counted against the limit.
        open: u32,
        /// The limit.
        limit: u32,
        /// `total`, or the ticket type whose limit is reached.
        scope: CapacityScope,
    },
}

/// Which capacity limit was reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum CapacityScope {
    /// The limit on all open tickets (serialised as `"total"`).
    #[serde(with = "total")]
    Total,
    /// The limit on one ticket type (serialised as the type).
    Type(TicketType),
}

mod total {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("total")
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<(), D::Error> {
        match String::deserialize(d)?.as_str() {
            "total" => Ok(()),
            other => Err(D::Error::custom(format!("not `total`: {other}"))),
        }
    }
}

/// One candidate in an explanation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CandidateReport {
    /// The user.
    pub user_id: UserId,
    /// The verdict (the first check that failed, or `eligible`).
    #[serde(flatten)]
    pub verdict: Verdict,
    /// Open tickets of the ticket's type assigned in the last 30 days.
    pub load: u32,
    /// For round robin: whether the user already got a ticket this cycle.
    pub served_this_cycle: Option<bool>,
}

/// The compact form of a [`Verdict`] used inside the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    Eligible,
    Deactivated,
    NotSeated,
    NotATarget,
    Away,
    LacksSkill(u8),
    AtTotalCapacity,
    AtTypeCapacity,
}

/// What routing decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Outcome {
    /// Owned by a user (and a team).
    Assign {
        /// The owner.
        user_id: UserId,
        /// The owner team.
        team_id: Option<TeamId>,
    },
    /// Owned by a team, no user.
    Team {
        /// The team.
        team_id: TeamId,
    },
    /// Left unassigned.
    Unassigned,
}

/// Why routing decided what it did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Explanation {
    /// The rule that applied.
    pub rule: RoutingRule,
    /// Branches taken (contact owner missing, fallback applied, ...).
    pub branch: Vec<String>,
    /// Skills the ticket required (after any relaxation).
    pub required_skills: Vec<String>,
    /// Every candidate and its verdict (at most [`Explanation::KEPT`] once
    /// stored, the chosen user always among them; see `omitted`).
    pub candidates: Vec<CandidateReport>,
    /// How many candidates the stored explanation leaves out, by verdict.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub omitted: Vec<OmittedCount>,
    /// The outcome.
    pub outcome: Outcome,
    /// In a sentence.
    pub summary: String,
}

/// Candidates an explanation leaves out, counted by verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OmittedCount {
    /// The verdict (`eligible`, `away`, `lacks_skill`, ...).
    pub verdict: String,
    /// How many candidates had it.
    pub count: u32,
}

impl Verdict {
    /// The verdict's name, as serialised.
    pub fn name(&self) -> &'static str {
        match self {
            Verdict::Eligible => "eligible",
            Verdict::NotFound => "not_found",
            Verdict::Deactivated => "deactivated",
            Verdict::NotSeated => "not_seated",
            Verdict::NotATarget => "not_a_target",
            Verdict::Away { .. } => "away",
            Verdict::LacksSkill { .. } => "lacks_skill",
            Verdict::AtCapacity { .. } => "at_capacity",
        }
    }
}

impl Explanation {
    /// The most candidates a stored explanation lists one by one.
    ///
    /// Why a limit: over a pool of 1,000 agents the full list is ~60 KB of
    /// JSON per decision, which is more to serialise and write than the
    /// whole rest of a routed create, and nobody reads a thousand lines to
    /// learn why a ticket went to Ana. The first [`Explanation::KEPT`] (by
    /// user id, the chosen user always included) are kept and the rest are
    /// counted by verdict in `omitted`.
    pub const KEPT: usize = 50;

    /// The explanation as stored: see [`Explanation::KEPT`].
    pub fn for_storage(mut self) -> Self {
        if self.candidates.len() <= Self::KEPT {
            return self;
        }
        let (kept, omitted) = self.stored_selection();
        self.candidates = kept.into_iter().cloned().collect();
        self.omitted = omitted;
        self
    }

    /// The candidates [`Explanation::for_storage`] keeps, and how many of
    /// each verdict it leaves out (added to any already left out).
    pub(super) fn stored_selection(&self) -> (Vec<&CandidateReport>, Vec<OmittedCount>) {
        let mut omitted = self.omitted.clone();
        if self.candidates.len() <= Self::KEPT {
            return (self.candidates.iter().collect(), omitted);
        }
        let chosen = match self.outcome {
            Outcome::Assign { user_id, .. } => Some(user_id),
            _ => None,
        };
        let chosen_at = chosen.and_then(|u| self.candidates.iter().position(|c| c.user_id == u));
        let mut kept = Vec::with_capacity(Self::KEPT);
        // Keep the first KEPT - 1, then the chosen one if it lies beyond.
        let room = Self::KEPT - usize::from(chosen_at.is_some_and(|i| i >= Self::KEPT - 1));
        // Counted by name pointer, not by comparing strings: over 1,000
        // candidates the comparisons were 6% of a routed create (perf).
        let mut counts: Vec<(&'static str, u32)> = Vec::new();
        for (i, c) in self.candidates.iter().enumerate() {
            if kept.len() < room || Some(i) == chosen_at {
                kept.push(c);
                continue;
            }
            let name = c.verdict.name();
            match counts.iter_mut().find(|(n, _)| std::ptr::eq(*n, name)) {
                Some((_, count)) => *count += 1,
                None => counts.push((name, 1)),
            }
        }
        for (name, count) in counts {
            match omitted.iter_mut().find(|o| o.verdict == name) {
                Some(o) => o.count += count,
                None => omitted.push(OmittedCount {
                    verdict: name.to_owned(),
                    count,
                }),
            }
        }
        (kept, omitted)
    }
}

/// A decision and what applying it changes besides the owner.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The explanation, outcome included.
    pub explanation: Explanation,
    /// The rule's round-robin cycle after this decision, when round robin picked.
    pub rr_cycle: Option<u64>,
    /// The owner was assigned while away and should be told.
    pub notify_owner: bool,
    /// Nobody eligible yet, but optional skills will be relaxed then.
    pub relax_at_seconds: Option<u64>,
}

impl Decision {
    /// The outcome.
    pub fn outcome(&self) -> Outcome {
        self.explanation.outcome
    }
}

struct Ctx<'a> {
    rule: &'a RoutingRule,
    facts: &'a TicketFacts<'a>,
    snapshot: &'a Snapshot,
    branch: Vec<String>,
}

/// Decides who gets a ticket. Pure: same inputs, same decision.
pub fn decide(
    rule: &RoutingRule,
    facts: &TicketFacts<'_>,
    snapshot: &Snapshot,
    rng: &mut dyn RandomSource,
) -> Decision {
    let mut ctx = Ctx {
        rule,
        facts,
        snapshot,
        branch: Vec::new(),
    };
    match rule.assign_to {
        AssignTo::Nobody => ctx.unassigned("the rule assigns nobody", Vec::new()),
        AssignTo::TeamOnly => ctx.team_only(),
        AssignTo::UsersAndTeams => ctx.pick(&rule.users, &rule.teams, rng),
        AssignTo::ContactOwner => ctx.contact_owner(rng),
        AssignTo::CustomerAgent => {
            ctx.branch.push(
                "customer_agent: no AI agent answers in this build; the fallback applies".into(),
            );
            ctx.fallback(rng)
        }
    }
}

impl Ctx<'_> {
    fn finish(
        self,
        outcome: Outcome,
        candidates: Vec<CandidateReport>,
        summary: String,
        required: Vec<String>,
    ) -> Decision {
        Decision {
            explanation: Explanation {
                rule: self.rule.clone(),
                branch: self.branch,
                required_skills: required,
                candidates,
                omitted: Vec::new(),
                outcome,
                summary,
            },
            rr_cycle: None,
            notify_owner: false,
            relax_at_seconds: None,
        }
    }

    fn unassigned(self, why: &str, candidates: Vec<CandidateReport>) -> Decision {
        self.finish(
            Outcome::Unassigned,
            candidates,
            format!("left unassigned: {why}"),
            Vec::new(),
        )
    }

    fn team_only(self) -> Decision {
        let Some(&team) = self.rule.teams.first() else {
            return self.unassigned("no team in the rule", Vec::new());
        };
        match self.snapshot.teams.iter().find(|t| t.id == team) {
            Some(info) if info.seated_members > 0 => self.finish(
                Outcome::Team { team_id: team },
                Vec::new(),
                format!("given to team {team} (team only)"),
                Vec::new(),
            ),
            Some(_) => self.unassigned(
                &format!("team {team} has no member with a help desk seat"),
                Vec::new(),
            ),
            None => self.unassigned(&format!("team {team} does not exist"), Vec::new()),
        }
    }

    fn fallback(mut self, rng: &mut dyn RandomSource) -> Decision {
        match &self.rule.fallback {
            Some(f) if f.assign_to == FallbackTo::UsersAndTeams => {
                self.branch.push("fallback: users and teams".into());
                let (users, teams) = (f.users.clone(), f.teams.clone());
                self.pick(&users, &teams, rng)
            }
            _ => {
                self.branch.push("fallback: nobody".into());
                self.unassigned("the fallback assigns nobody", Vec::new())
            }
        }
    }

    fn contact_owner(mut self, rng: &mut dyn RandomSource) -> Decision {
        if self.facts.needs_visitor && !self.facts.visitor_known {
            self.branch.push(
                "contact_owner: the visitor is not identified by a known tracking cookie".into(),
            );
            return self.fallback(rng);
        }
        let Some(owner) = self.facts.contact_owner else {
            self.branch
                .push("contact_owner: the contact has no owner".into());
            return self.fallback(rng);
        };
        let Some(c) = self.snapshot.candidates.iter().find(|c| c.user_id == owner) else {
            self.branch
                .push(format!("contact_owner: owner {owner} not found"));
            return self.fallback(rng);
        };
        let report = |verdict| CandidateReport {
            user_id: owner,
            verdict,
            load: c.load.get(self.facts.ticket_type),
            served_this_cycle: None,
        };
        if c.deactivated || !c.seated {
            let verdict = if c.deactivated {
                Verdict::Deactivated
            } else {
                Verdict::NotSeated
            };
            self.branch
                .push(format!("contact_owner: owner {owner} cannot be routed to"));
            let mut d = self.fallback(rng);
            d.explanation.candidates.insert(0, report(verdict));
            return d;
        }
        let team_id = c.main_team_id;
        match c.availability {
            Availability::Away { reason, until } if self.rule.only_available => {
                self.branch.push(format!(
                    "contact_owner: owner {owner} is away and the rule only assigns available users"
                ));
                let mut d = self.fallback(rng);
                d.explanation
                    .candidates
                    .insert(0, report(Verdict::Away { reason, until }));
                d
            }
            Availability::Away { reason, until } => {
                self.branch.push(format!(
                    "contact_owner: owner {owner} is away; assigned anyway and notified"
                ));
                let outcome = Outcome::Assign {
                    user_id: owner,
                    team_id,
                };
                let mut d = self.finish(
                    outcome,
                    vec![report(Verdict::Away { reason, until })],
                    format!("assigned to contact owner {owner} (away, notified)"),
                    Vec::new(),
                );
                d.notify_owner = true;
                d
            }
            Availability::Available { .. } => {
                self.branch
                    .push(format!("contact_owner: owner {owner} is available"));
                let outcome = Outcome::Assign {
                    user_id: owner,
                    team_id,
                };
                self.finish(
                    outcome,
                    vec![report(Verdict::Eligible)],
                    format!("assigned to contact owner {owner}"),
                    Vec::new(),
                )
            }
        }
    }

    /// Skills the ticket requires: every required skill and the mandatory
    /// ones as [`SkillMask`] bits over `ids` (the rule's
    /// [`RoutingRule::skill_ids`]), and whether optional ones were dropped.
    fn required_skills(&self, ids: &[SkillId]) -> (u64, u64, bool) {
        let relaxed = self
            .rule
            .relax_after_seconds
            .is_some_and(|n| self.facts.waited_seconds >= u64::from(n));
        let (mut required, mut mandatory) = (0u64, 0u64);
        for r in &self.rule.skills {
            let value = match self.facts.properties.get(&r.property) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => continue,
                Some(other) => other.to_string(),
            };
            let Some(bit) = ids.iter().position(|s| *s == r.skill_id) else {
                continue; // beyond 64 skills, which validation refuses
            };
            if value.eq_ignore_ascii_case(&r.equals) && !(relaxed && r.optional) {
                required |= 1 << bit;
                if !r.optional {
                    mandatory |= 1 << bit;
                }
            }
        }
        (required, mandatory, relaxed)
    }

    fn skill_name(&self, id: SkillId) -> String {
        self.snapshot
            .skill_names
            .get(&id)
            .cloned()
            .unwrap_or_else(|| format!("skill {id}"))
    }
}
