//! Everyone who could take a ticket, best first: the engine's own checks
//! over the rule's targets, ranked the way the rule's distribution picks.
//!
//! A decision names one user; a phone call rings several at once, and the
//! order it rings them in (and who is left out) must agree with what a
//! decision would have done. So this reuses the pick's targets, required
//! skills and [`Ctx::check`](super::Ctx) instead of checking again.

use super::{AssignTo, Availability, Check, Ctx, Distribution, Snapshot, TicketFacts};
use crate::{
    UserId,
    routing::{FallbackTo, RoutingRule},
};

/// The users `rule` could give the ticket to, best first.
///
/// Each target passes the checks of a decision in their documented order
/// (deactivated, seat, target, availability when the rule routes only to
/// available users, skills, capacity). They are ranked as the distribution
/// would pick: load balanced and random by the ticket type's load, then the
/// longest wait since the last assignment; round robin those not yet served
/// in the current cycle first, then the longest wait; the user id breaks
/// ties. For contact-owner rules the contact owner comes first when they
/// can be routed to (active, seated, available if the rule asks), then the
/// fallback's targets; a rule that assigns nobody, or a team only with no
/// listed users, yields the main members of its teams or nobody.
pub fn ranked_eligible(
    rule: &RoutingRule,
    facts: &TicketFacts<'_>,
    snapshot: &Snapshot,
) -> Vec<UserId> {
    let ctx = Ctx {
        rule,
        facts,
        snapshot,
        branch: Vec::new(),
    };
    let fallback = || match &rule.fallback {
        Some(f) if f.assign_to == FallbackTo::UsersAndTeams => (&f.users[..], &f.teams[..]),
        _ => (&[][..], &[][..]),
    };
    let mut ranked = Vec::new();
    let (users, teams) = match rule.assign_to {
        AssignTo::Nobody => return ranked,
        AssignTo::UsersAndTeams | AssignTo::TeamOnly => (&rule.users[..], &rule.teams[..]),
        AssignTo::CustomerAgent => fallback(),
        AssignTo::ContactOwner => {
            let identified = !facts.needs_visitor || facts.visitor_known;
            let owner = facts
                .contact_owner
                .filter(|_| identified)
                .and_then(|o| snapshot.candidates.iter().find(|c| c.user_id == o));
            if let Some(c) = owner
                && reachable(rule, c.deactivated, c.seated, c.availability)
            {
                ranked.push(c.user_id);
            }
            fallback()
        }
    };
    let targets = ctx.targets(users, teams);
    let (required, _, _) = ctx.required_skills(&rule.skill_ids());
    let cycle = snapshot.rr_cycle.max(1);
    let t = facts.ticket_type;
    let mut eligible: Vec<((u32, i64), UserId)> = snapshot
        .candidates
        .iter()
        .filter(|c| targets.users.binary_search(&c.user_id).is_ok())
        .filter(|c| ctx.check(c, true, required) == Check::Eligible)
        .map(|c| {
            // Never assigned: waited longest, first.
            let wait = c.last_assigned_at.map_or(i64::MIN, |w| w.as_millisecond());
            let first = match rule.distribution {
                Distribution::LoadBalanced | Distribution::Random => c.load.get(t),
                Distribution::RoundRobin => u32::from(c.rr_last_cycle >= cycle),
            };
            ((first, wait), c.user_id)
        })
        .collect();
    eligible.sort_unstable();
    for (_, user) in eligible {
        if !ranked.contains(&user) {
            ranked.push(user);
        }
    }
    ranked
}

/// Whether a user the ticket already went to can still be rung: active,
/// seated and, when the rule routes only to available users, available.
pub fn reachable(rule: &RoutingRule, deactivated: bool, seated: bool, a: Availability) -> bool {
    !deactivated && seated && (!rule.only_available || a.is_available())
}
