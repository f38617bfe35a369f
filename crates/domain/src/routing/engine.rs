//! The routing engine: a pure function from a rule, the ticket's facts and a
//! snapshot of the candidates to a decision and its explanation.
//!
//! The store builds the snapshot inside the write transaction that will apply
//! the decision, so the loads and round-robin state the engine sees are the
//! ones it changes: two tickets routed at once cannot both see a stale load.

use std::{collections::BTreeMap, sync::Arc};

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
    pub total: Option<u32>,
    /// Most open `calls` tickets.
    pub calls: Option<u32>,
    /// Most open `message` tickets.
    pub message: Option<u32>,
    /// Most open `email_other` tickets.
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
    /// Skills the user has (a few; a plain list is faster to search than a set).
    pub skills: Vec<SkillId>,
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
    /// Every candidate and its verdict.
    pub candidates: Vec<CandidateReport>,
    /// The outcome.
    pub outcome: Outcome,
    /// In a sentence.
    pub summary: String,
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

    /// Skills the ticket requires, and whether optional ones were dropped.
    fn required_skills(&self) -> (Vec<(SkillId, bool)>, bool) {
        let relaxed = self
            .rule
            .relax_after_seconds
            .is_some_and(|n| self.facts.waited_seconds >= u64::from(n));
        let mut skills = Vec::new();
        for r in &self.rule.skills {
            let value = match self.facts.properties.get(&r.property) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => continue,
                Some(other) => other.to_string(),
            };
            if value.eq_ignore_ascii_case(&r.equals)
                && !(relaxed && r.optional)
                && !skills.iter().any(|(s, _)| *s == r.skill_id)
            {
                skills.push((r.skill_id, r.optional));
            }
        }
        (skills, relaxed)
    }

    fn skill_name(&self, id: SkillId) -> String {
        self.snapshot
            .skill_names
            .get(&id)
            .cloned()
            .unwrap_or_else(|| format!("skill {id}"))
    }

    /// The first check `c` fails, in the documented order, as a compact
    /// code: the hot loop stays free of allocations and wide copies, and
    /// [`Ctx::verdict`] expands the code for the explanation afterwards.
    fn check(&self, c: &Candidate, is_target: bool, required: &[(SkillId, bool)]) -> Check {
        let t = self.facts.ticket_type;
        if c.deactivated {
            Check::Deactivated
        } else if !c.seated {
            Check::NotSeated
        } else if !is_target {
            Check::NotATarget
        } else if self.rule.only_available && !c.availability.is_available() {
            Check::Away
        } else if let Some(i) = required.iter().position(|(s, _)| !c.skills.contains(s)) {
            Check::LacksSkill(i as u8)
        } else if c.capacity.total.is_some_and(|l| c.open.total() >= l) {
            Check::AtTotalCapacity
        } else if c.capacity.for_type(t).is_some_and(|l| c.open.get(t) >= l) {
            Check::AtTypeCapacity
        } else {
            Check::Eligible
        }
    }

    /// Expands a [`Check`] of candidate `c` (`None`: not in the account).
    fn verdict(&self, c: Option<&Candidate>, check: Check, names: &[Arc<str>]) -> Verdict {
        let t = self.facts.ticket_type;
        let Some(c) = c else { return Verdict::NotFound };
        match check {
            Check::Eligible => Verdict::Eligible,
            Check::Deactivated => Verdict::Deactivated,
            Check::NotSeated => Verdict::NotSeated,
            Check::NotATarget => Verdict::NotATarget,
            Check::Away => match c.availability {
                Availability::Away { reason, until } => Verdict::Away { reason, until },
                Availability::Available { .. } => Verdict::Eligible,
            },
            Check::LacksSkill(i) => Verdict::LacksSkill {
                // (at most 255 required skills: rules list a handful)
                skill: names[usize::from(i)].clone(),
            },
            Check::AtTotalCapacity => Verdict::AtCapacity {
                open: c.open.total(),
                limit: c.capacity.total.unwrap_or_default(),
                scope: CapacityScope::Total,
            },
            Check::AtTypeCapacity => Verdict::AtCapacity {
                open: c.open.get(t),
                limit: c.capacity.for_type(t).unwrap_or_default(),
                scope: CapacityScope::Type(t),
            },
        }
    }

    fn pick(self, users: &[UserId], teams: &[TeamId], rng: &mut dyn RandomSource) -> Decision {
        let t = self.facts.ticket_type;
        // Targets: listed users (reached directly), then main members of
        // listed teams (reached through that team); secondary members are
        // reported as not targets. Sorted by user so that one merge pass over
        // the (sorted) candidates classifies everyone: no map per decision.
        let mut targets: Vec<(UserId, Option<TeamId>)> = Vec::with_capacity(users.len());
        targets.extend(users.iter().map(|u| (*u, None)));
        let mut others: Vec<UserId> = Vec::new();
        for team in teams {
            if let Some(info) = self.snapshot.teams.iter().find(|i| i.id == *team) {
                targets.extend(info.main_members.iter().map(|m| (*m, Some(*team))));
                others.extend(&info.secondary_members);
            }
        }
        // `None` sorts first, so a user listed directly keeps that reason.
        targets.sort_unstable();
        targets.dedup_by_key(|(u, _)| *u);
        others.sort_unstable();
        others.dedup();
        let sorted;
        let candidates: &[Candidate] = if self.snapshot.candidates.is_sorted_by_key(|c| c.user_id) {
            &self.snapshot.candidates
        } else {
            let mut copy = self.snapshot.candidates.clone();
            copy.sort_by_key(|c| c.user_id);
            sorted = copy;
            &sorted
        };
        let (required, relaxed) = self.required_skills();
        let required_names: Vec<String> =
            required.iter().map(|(s, _)| self.skill_name(*s)).collect();
        let names: Vec<Arc<str>> = required_names
            .iter()
            .map(|n| Arc::from(n.as_str()))
            .collect();
        // One merge pass classifies everyone into compact codes; reports
        // are expanded afterwards in one tight `collect`.
        const ABSENT: u32 = u32::MAX;
        let mut checked: Vec<(UserId, u32, Check)> =
            Vec::with_capacity(targets.len() + others.len());
        let mut eligible: Vec<usize> = Vec::with_capacity(targets.len());
        let mut blocked_by_optional = false;
        let (mut ti, mut oi) = (0, 0);
        let cycle = self.snapshot.rr_cycle.max(1);
        // Best so far: (sort key, position in `eligible`).
        type Best<K> = Option<(K, usize)>;
        let mut lb: Best<(u32, Option<Timestamp>, UserId)> = None;
        let mut rr_all: Best<(Option<Timestamp>, UserId)> = None;
        let mut rr_due: Best<(Option<Timestamp>, UserId)> = None;
        let mut due_count = 0usize;
        for (index, c) in candidates.iter().enumerate() {
            while ti < targets.len() && targets[ti].0 < c.user_id {
                checked.push((targets[ti].0, ABSENT, Check::Eligible));
                ti += 1;
            }
            while oi < others.len() && others[oi] < c.user_id {
                oi += 1;
            }
            let target = (ti < targets.len() && targets[ti].0 == c.user_id).then(|| {
                ti += 1;
                targets[ti - 1].1
            });
            let other = oi < others.len() && others[oi] == c.user_id;
            if target.is_none() && !other {
                continue; // in the snapshot for another reason (a contact owner)
            }
            let check = self.check(c, target.is_some(), &required);
            match check {
                Check::Eligible => {
                    // Running minima, so no second scan is needed: the load
                    // balanced pick, and round robin's picks among those not
                    // served in the current cycle and among everyone.
                    // `None` (never assigned) sorts first: it has waited longest.
                    let wait = c.last_assigned_at;
                    let k = eligible.len();
                    let lb_key = (c.load.get(t), wait, c.user_id);
                    if lb.is_none_or(|(key, _)| lb_key < key) {
                        lb = Some((lb_key, k));
                    }
                    let rr_key = (wait, c.user_id);
                    if rr_all.is_none_or(|(key, _)| rr_key < key) {
                        rr_all = Some((rr_key, k));
                    }
                    if c.rr_last_cycle < cycle {
                        due_count += 1;
                        if rr_due.is_none_or(|(key, _)| rr_key < key) {
                            rr_due = Some((rr_key, k));
                        }
                    }
                    eligible.push(index);
                }
                Check::LacksSkill(_) => {
                    blocked_by_optional |= required
                        .iter()
                        .all(|(s, optional)| *optional || c.skills.contains(s))
                        && self.check(c, true, &[]) == Check::Eligible;
                }
                _ => {}
            }
            checked.push((c.user_id, index as u32, check));
        }
        checked.extend(
            targets[ti..]
                .iter()
                .map(|(u, _)| (*u, ABSENT, Check::Eligible)),
        );
        let mut reports: Vec<CandidateReport> = checked
            .iter()
            .map(|&(user_id, index, check)| {
                let c = (index != ABSENT).then(|| &candidates[index as usize]);
                CandidateReport {
                    user_id,
                    verdict: self.verdict(c, check, &names),
                    load: c.map_or(0, |c| c.load.get(t)),
                    served_this_cycle: None,
                }
            })
            .collect();
        if eligible.is_empty() {
            let relax_at = match (self.rule.relax_after_seconds, relaxed, blocked_by_optional) {
                (Some(n), false, true) => Some(u64::from(n)),
                _ => None,
            };
            let mut d = self.unassigned("nobody is eligible", reports);
            d.explanation.required_skills = required_names;
            d.relax_at_seconds = relax_at;
            return d;
        }
        let eligible = &eligible;
        let (k, rr_cycle, how) = match self.rule.distribution {
            Distribution::LoadBalanced => {
                let ((load, _, _), k) = lb.expect("someone is eligible");
                (
                    k,
                    None,
                    format!("fewest open {t} tickets assigned in the last 30 days ({load})"),
                )
            }
            Distribution::RoundRobin => {
                // Everyone eligible was served this cycle: a new one starts.
                let (cycle, waiting, (_, k)) = match rr_due {
                    Some(due) => (cycle, due_count, due),
                    None => (
                        cycle + 1,
                        eligible.len(),
                        rr_all.expect("someone is eligible"),
                    ),
                };
                let eligible_reports = reports
                    .iter_mut()
                    .filter(|r| r.verdict == Verdict::Eligible);
                for (r, &index) in eligible_reports.zip(eligible.iter()) {
                    r.served_this_cycle = Some(candidates[index].rr_last_cycle >= cycle);
                }
                (
                    k,
                    Some(cycle),
                    format!(
                        "next in round-robin cycle {cycle} ({waiting} of {} eligible not yet served)",
                        eligible.len()
                    ),
                )
            }
            Distribution::Random => {
                let k = rng.below(eligible.len());
                (
                    k,
                    None,
                    format!("drawn at random among {} eligible", eligible.len()),
                )
            }
        };
        let winner = &candidates[eligible[k]];
        // The team the winner was reached through (found again for the
        // winner only, rather than remembered for everyone).
        let via = targets
            .binary_search_by_key(&winner.user_id, |(u, _)| *u)
            .ok()
            .and_then(|i| targets[i].1);
        let team_id = via.or(winner.main_team_id);
        let outcome = Outcome::Assign {
            user_id: winner.user_id,
            team_id,
        };
        let summary = format!("assigned to user {}: {how}", winner.user_id);
        let mut d = self.finish(outcome, reports, summary, required_names);
        d.rr_cycle = rr_cycle;
        d
    }
}
