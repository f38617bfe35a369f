//! The users-and-teams pick: one merge pass classifies every candidate into
//! a compact entry and keeps running minima for the distribution; the
//! explanation is expanded from those entries afterwards.
//!
//! Why this shape: at 1,000 candidates the decision is bound by memory, not
//! arithmetic. A candidate is ~170 bytes, so the pass touches each one once,
//! in order, and everything later (the winner, the reports) reads the
//! 24-byte entries instead of walking the candidates again.

use std::{borrow::Cow, sync::Arc};

use super::{
    Availability, Candidate, CandidateReport, CapacityScope, Check, Ctx, Decision, Distribution,
    Outcome, RandomSource, Verdict,
};
use crate::{TeamId, UserId};

/// The best candidate so far: its sort key and position in `eligible`.
type Best<K> = Option<(K, usize)>;

/// What the classification pass found.
#[derive(Debug, Default)]
struct Classified {
    /// Every target and secondary member, in user order.
    reports: Vec<CandidateReport>,
    /// Positions (in the candidates) of the eligible, in user order.
    eligible: Vec<usize>,
    /// Load balanced: (load, last assigned in ms, user).
    lb: Best<(u32, i64, UserId)>,
    /// Round robin among those not yet served this cycle.
    rr_due: Best<(i64, UserId)>,
    due_count: usize,
    /// Someone lacks only optional skills (so relaxing would help).
    blocked_by_optional: bool,
}

/// The rule's targets and the other users it reports on.
pub(super) struct Targets<'u> {
    /// Listed users and main members of listed teams, sorted, unique.
    pub(super) users: Cow<'u, [UserId]>,
    /// Secondary members of listed teams (reported as not targets), sorted.
    others: Vec<UserId>,
    /// Main members and the team they were reached through, sorted.
    via: Vec<(UserId, TeamId)>,
}

impl Ctx<'_> {
    pub(super) fn targets<'u>(&self, users: &'u [UserId], teams: &[TeamId]) -> Targets<'u> {
        let mut via = Vec::new();
        let mut others = Vec::new();
        for team in teams {
            if let Some(info) = self.snapshot.teams.iter().find(|i| i.id == *team) {
                via.extend(info.main_members.iter().map(|m| (*m, *team)));
                others.extend(&info.secondary_members);
            }
        }
        // A rule listing only users, in order (the usual case), is used as
        // it is: no copy, no sort.
        let users = if via.is_empty() && users.windows(2).all(|w| w[0] < w[1]) {
            Cow::Borrowed(users)
        } else {
            let mut all: Vec<UserId> = users
                .iter()
                .copied()
                .chain(via.iter().map(|v| v.0))
                .collect();
            all.sort_unstable();
            all.dedup();
            Cow::Owned(all)
        };
        via.sort_unstable();
        others.sort_unstable();
        others.dedup();
        Targets { users, others, via }
    }

    /// The first check `c` fails, in the documented order, as a compact code.
    pub(super) fn check(&self, c: &Candidate, is_target: bool, required: u64) -> Check {
        let t = self.facts.ticket_type;
        if c.deactivated {
            Check::Deactivated
        } else if !c.seated {
            Check::NotSeated
        } else if !is_target {
            Check::NotATarget
        } else if self.rule.only_available && !c.availability.is_available() {
            Check::Away
        } else if required & !c.skills.0 != 0 {
            // The lowest missing bit is the first missing skill in rule order.
            Check::LacksSkill((required & !c.skills.0).trailing_zeros() as u8)
        } else if c.capacity.total.is_some_and(|l| c.open.total() >= l) {
            Check::AtTotalCapacity
        } else if c.capacity.for_type(t).is_some_and(|l| c.open.get(t) >= l) {
            Check::AtTypeCapacity
        } else {
            Check::Eligible
        }
    }

    /// Expands a [`Check`] of `c` into the explanation's [`Verdict`].
    fn verdict(&self, c: &Candidate, check: Check, names: &[Arc<str>]) -> Verdict {
        let t = self.facts.ticket_type;
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
                // (a bit of the rule's skills: at most 64)
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

    /// One merge pass over `candidates` and the targets, both sorted by user.
    /// `None` if the candidates turn out not to be strictly sorted (the
    /// store supplies them sorted; anyone else gets a sorted copy).
    fn classify(
        &self,
        candidates: &[Candidate],
        targets: &Targets<'_>,
        (required, mandatory): (u64, u64),
        cycle: u64,
        names: &[Arc<str>],
    ) -> Option<Classified> {
        let t = self.facts.ticket_type;
        let (users, others) = (&targets.users[..], &targets.others[..]);
        let mut out = Classified {
            reports: Vec::new(),
            eligible: Vec::with_capacity(users.len()),
            ..Classified::default()
        };
        let absent = |user_id| CandidateReport {
            user_id,
            verdict: Verdict::NotFound,
            load: 0,
            served_this_cycle: None,
        };
        let round_robin = self.rule.distribution == Distribution::RoundRobin;
        // Every target and every secondary member gets at most one report.
        // The reports are allocated up front and filled field by field:
        // pushing whole reports assembled the 48-byte value on the stack
        // piecewise and copied it in 16-byte loads, a store-forwarding
        // stall that `perf annotate` showed taking 40% of the decision.
        let mut filled = 0;
        out.reports
            .resize_with(users.len() + others.len(), || absent(UserId(0)));
        let (mut ti, mut oi) = (0, 0);
        let mut previous = UserId(i64::MIN);
        for (index, c) in candidates.iter().enumerate() {
            if c.user_id <= previous && index > 0 {
                return None;
            }
            previous = c.user_id;
            while ti < users.len() && users[ti] < c.user_id {
                out.reports[filled].user_id = users[ti];
                filled += 1;
                ti += 1;
            }
            while oi < others.len() && others[oi] < c.user_id {
                oi += 1;
            }
            let target = ti < users.len() && users[ti] == c.user_id;
            ti += usize::from(target);
            let other = oi < others.len() && others[oi] == c.user_id;
            if !target && !other {
                continue; // in the snapshot for another reason (a contact owner)
            }
            let check = self.check(c, target, required);
            let served = c.rr_last_cycle >= cycle;
            match check {
                Check::Eligible => {
                    // Running minima, so no second scan is needed.
                    // Milliseconds, `i64::MIN` for never assigned: it has
                    // waited longest, so it sorts first.
                    let wait = c.last_assigned_at.map_or(i64::MIN, |w| w.as_millisecond());
                    let k = out.eligible.len();
                    match self.rule.distribution {
                        Distribution::LoadBalanced => {
                            let key = (c.load.get(t), wait, c.user_id);
                            if out.lb.is_none_or(|(best, _)| key < best) {
                                out.lb = Some((key, k));
                            }
                        }
                        Distribution::RoundRobin => {
                            // (The pick among everyone, needed only when a
                            // new cycle starts, is made afterwards.)
                            let key = (wait, c.user_id);
                            if !served {
                                out.due_count += 1;
                                if out.rr_due.is_none_or(|(best, _)| key < best) {
                                    out.rr_due = Some((key, k));
                                }
                            }
                        }
                        Distribution::Random => {}
                    }
                    out.eligible.push(index);
                }
                Check::LacksSkill(_) => {
                    out.blocked_by_optional |=
                        mandatory & !c.skills.0 == 0 && self.check(c, true, 0) == Check::Eligible;
                }
                _ => {}
            }
            let r = &mut out.reports[filled];
            filled += 1;
            r.user_id = c.user_id;
            r.load = c.load.get(t);
            if check != Check::Eligible {
                r.verdict = self.verdict(c, check, names);
            } else {
                r.verdict = Verdict::Eligible;
                r.served_this_cycle = round_robin.then_some(served);
            }
        }
        for u in &users[ti..] {
            out.reports[filled].user_id = *u;
            filled += 1;
        }
        out.reports.truncate(filled);
        Some(out)
    }

    /// Picks among the rule's users and the main members of its teams.
    pub(super) fn pick(
        self,
        users: &[UserId],
        teams: &[TeamId],
        rng: &mut dyn RandomSource,
    ) -> Decision {
        let t = self.facts.ticket_type;
        let targets = self.targets(users, teams);
        let skill_ids = self.rule.skill_ids();
        let (required, mandatory, relaxed) = self.required_skills(&skill_ids);
        let cycle = self.snapshot.rr_cycle.max(1);
        // Names by bit, for the explanation (a rule names a handful).
        let names: Vec<Arc<str>> = skill_ids
            .iter()
            .map(|s| Arc::from(self.skill_name(*s)))
            .collect();
        let required_names: Vec<String> = (0..names.len())
            .filter(|bit| required >> bit & 1 == 1)
            .map(|bit| names[bit].to_string())
            .collect();
        let sorted;
        let (candidates, found) = match self.classify(
            &self.snapshot.candidates,
            &targets,
            (required, mandatory),
            cycle,
            &names,
        ) {
            Some(found) => (&self.snapshot.candidates[..], found),
            None => {
                let mut copy = self.snapshot.candidates.clone();
                copy.sort_by_key(|c| c.user_id);
                copy.dedup_by_key(|c| c.user_id);
                sorted = copy;
                let found = self
                    .classify(&sorted, &targets, (required, mandatory), cycle, &names)
                    .expect("sorted and unique");
                (&sorted[..], found)
            }
        };
        let mut reports = found.reports;
        if found.eligible.is_empty() {
            let relax_at = match (
                self.rule.relax_after_seconds,
                relaxed,
                found.blocked_by_optional,
            ) {
                (Some(n), false, true) => Some(u64::from(n)),
                _ => None,
            };
            let mut d = self.unassigned("nobody is eligible", reports);
            d.explanation.required_skills = required_names;
            d.relax_at_seconds = relax_at;
            return d;
        }
        let eligible = found.eligible.len();
        let (k, rr_cycle, how) = match self.rule.distribution {
            Distribution::LoadBalanced => {
                let ((load, _, _), k) = found.lb.expect("someone is eligible");
                let how = format!("fewest open {t} tickets assigned in the last 30 days ({load})");
                (k, None, how)
            }
            Distribution::RoundRobin => {
                // Everyone eligible was served this cycle: a new one starts.
                let (cycle, waiting, k) = match found.rr_due {
                    Some((_, k)) => (cycle, found.due_count, k),
                    None => {
                        // Nobody has been served in the new cycle yet.
                        for r in reports.iter_mut() {
                            if r.served_this_cycle.is_some() {
                                r.served_this_cycle = Some(false);
                            }
                        }
                        let wait = |i: usize| {
                            let c = &candidates[found.eligible[i]];
                            (c.last_assigned_at, c.user_id)
                        };
                        let k = (0..eligible).min_by_key(|&i| wait(i)).expect("eligible");
                        (cycle + 1, eligible, k)
                    }
                };
                let how = format!(
                    "next in round-robin cycle {cycle} ({waiting} of {eligible} eligible not yet served)"
                );
                (k, Some(cycle), how)
            }
            Distribution::Random => {
                let how = format!("drawn at random among {eligible} eligible");
                (rng.below(eligible), None, how)
            }
        };
        let winner = &candidates[found.eligible[k]];
        // The team the winner was reached through, looked up for the winner
        // only (a rule with teams needs the linear search of `users`).
        let direct = targets.via.is_empty() || users.contains(&winner.user_id);
        // (The first match: a member of two listed teams goes with the lower id.)
        let first = targets.via.partition_point(|(u, _)| *u < winner.user_id);
        let through = targets
            .via
            .get(first)
            .filter(|(u, _)| *u == winner.user_id)
            .map(|(_, team)| *team);
        let team_id = if direct { None } else { through }.or(winner.main_team_id);
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
