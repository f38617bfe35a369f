//! Properties of the routing engine, over generated pools, plus examples of
//! each rule kind. Time and randomness are injected.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use serde_json::{Map, json};
use switchboard_domain::{routing::*, *};

/// A small deterministic generator (xorshift64*), seeded per test.
struct Rng(u64);

impl RandomSource for Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n as u64) as usize
    }
}

fn candidate(id: i64) -> Candidate {
    Candidate {
        user_id: UserId(id),
        deactivated: false,
        seated: true,
        availability: Availability::Available { until: None },
        skills: Default::default(),
        capacity: Capacity::default(),
        open: TypeCounts::default(),
        load: TypeCounts::default(),
        last_assigned_at: None,
        rr_last_cycle: 0,
        main_team_id: None,
    }
}

fn rule(distribution: Distribution, users: &[i64]) -> RoutingRule {
    RoutingRule {
        assign_to: AssignTo::UsersAndTeams,
        users: users.iter().copied().map(UserId).collect(),
        teams: vec![],
        distribution,
        only_available: true,
        fallback: None,
        skills: vec![],
        relax_after_seconds: None,
        waiting_queue: false,
        rebalance_on_away: false,
    }
}

fn facts(props: &Map<String, serde_json::Value>) -> TicketFacts<'_> {
    TicketFacts {
        ticket_type: TicketType::EmailOther,
        properties: props,
        contact_owner: None,
        needs_visitor: false,
        visitor_known: false,
        waited_seconds: 0,
    }
}

fn winner(d: &Decision) -> Option<UserId> {
    match d.outcome() {
        Outcome::Assign { user_id, .. } => Some(user_id),
        _ => None,
    }
}

/// Applies an assignment to the snapshot as the store would.
fn apply(snapshot: &mut Snapshot, d: &Decision, now: Timestamp) {
    if let Some(w) = winner(d) {
        let c = snapshot
            .candidates
            .iter_mut()
            .find(|c| c.user_id == w)
            .unwrap();
        *c.load.get_mut(TicketType::EmailOther) += 1;
        *c.open.get_mut(TicketType::EmailOther) += 1;
        c.last_assigned_at = Some(now);
        if let Some(cycle) = d.rr_cycle {
            c.rr_last_cycle = cycle;
            snapshot.rr_cycle = cycle;
        }
    }
}

fn arb_candidate() -> impl Strategy<Value = Candidate> {
    (
        1i64..40,
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        0u32..6,
        proptest::option::of(0u32..6),
        0u64..3,
    )
        .prop_map(|(id, deactivated, seated, away, load, cap, last)| {
            let mut c = candidate(id);
            c.deactivated = deactivated && id % 5 == 0;
            c.seated = seated || id % 3 != 0;
            if away && id % 2 == 0 {
                c.availability = Availability::Away {
                    reason: AwayReason::Manual,
                    until: None,
                };
            }
            c.load.email_other = load;
            c.open.email_other = load;
            c.capacity.email_other = cap;
            c.last_assigned_at = (last > 0)
                .then(|| Timestamp::UNIX_EPOCH + SignedDuration::from_secs(last as i64 * 60));
            c
        })
}

fn arb_pool() -> impl Strategy<Value = Vec<Candidate>> {
    proptest::collection::vec(arb_candidate(), 1..25).prop_map(|mut v| {
        v.sort_by_key(|c| c.user_id);
        v.dedup_by_key(|c| c.user_id);
        v
    })
}

fn arb_distribution() -> impl Strategy<Value = Distribution> {
    prop_oneof![
        Just(Distribution::LoadBalanced),
        Just(Distribution::RoundRobin),
        Just(Distribution::Random)
    ]
}

proptest! {
    #[test]
    fn the_winner_is_always_eligible(pool in arb_pool(), dist in arb_distribution(), seed in 1u64..u64::MAX) {
        let ids: Vec<i64> = pool.iter().map(|c| c.user_id.0).collect();
        let snapshot = Snapshot { candidates: pool, rr_cycle: 1, ..Default::default() };
        let props = Map::new();
        let d = decide(&rule(dist, &ids), &facts(&props), &snapshot, &mut Rng(seed));
        let eligible: Vec<UserId> = d.explanation.candidates.iter().filter(|r| r.verdict == Verdict::Eligible).map(|r| r.user_id).collect();
        match winner(&d) {
            Some(w) => prop_assert!(eligible.contains(&w)),
            None => prop_assert!(eligible.is_empty(), "someone was eligible but nobody was picked"),
        }
        prop_assert_eq!(d.explanation.candidates.len(), ids.len(), "every candidate is explained");
    }

    #[test]
    fn load_balanced_picks_a_minimum(pool in arb_pool()) {
        let ids: Vec<i64> = pool.iter().map(|c| c.user_id.0).collect();
        let snapshot = Snapshot { candidates: pool, rr_cycle: 1, ..Default::default() };
        let props = Map::new();
        let d = decide(&rule(Distribution::LoadBalanced, &ids), &facts(&props), &snapshot, &mut Rng(1));
        if let Some(w) = winner(&d) {
            let loads: BTreeMap<UserId, u32> = d.explanation.candidates.iter().filter(|r| r.verdict == Verdict::Eligible).map(|r| (r.user_id, r.load)).collect();
            prop_assert_eq!(loads[&w], *loads.values().min().unwrap());
        }
    }

    #[test]
    fn round_robin_keeps_counts_within_one(n in 1usize..12, tickets in 1usize..120, start in 0i64..5) {
        let ids: Vec<i64> = (1..=n as i64).collect();
        let mut snapshot = Snapshot { candidates: ids.iter().map(|i| candidate(*i)).collect(), rr_cycle: 1, ..Default::default() };
        // Histories differ before the test starts; the cycle must not care.
        snapshot.candidates[0].last_assigned_at = Some(Timestamp::UNIX_EPOCH + SignedDuration::from_secs(start));
        let props = Map::new();
        let r = rule(Distribution::RoundRobin, &ids);
        let mut counts: BTreeMap<UserId, u32> = BTreeMap::new();
        for k in 0..tickets {
            let now = Timestamp::UNIX_EPOCH + SignedDuration::from_secs(1_000 + k as i64);
            let d = decide(&r, &facts(&props), &snapshot, &mut Rng(7));
            *counts.entry(winner(&d).unwrap()).or_default() += 1;
            apply(&mut snapshot, &d, now);
            let (min, max) = ids.iter().map(|i| counts.get(&UserId(*i)).copied().unwrap_or(0)).fold((u32::MAX, 0), |(a, b), c| (a.min(c), b.max(c)));
            prop_assert!(max - min <= 1, "counts {:?}", counts);
        }
    }

    #[test]
    fn round_robin_keeps_the_cycle_when_users_join_or_leave(n in 2usize..8, before in 0usize..20, leaver in 0usize..8) {
        let ids: Vec<i64> = (1..=n as i64).collect();
        let mut snapshot = Snapshot { candidates: ids.iter().map(|i| candidate(*i)).collect(), rr_cycle: 1, ..Default::default() };
        let props = Map::new();
        let mut clock = 0i64;
        let mut step = |snapshot: &mut Snapshot, r: &RoutingRule| {
            clock += 1;
            let d = decide(r, &facts(&props), snapshot, &mut Rng(3));
            apply(snapshot, &d, Timestamp::UNIX_EPOCH + SignedDuration::from_secs(clock));
            winner(&d).unwrap()
        };
        let r = rule(Distribution::RoundRobin, &ids);
        for _ in 0..before { step(&mut snapshot, &r); }
        let cycle = snapshot.rr_cycle.max(1);
        let served: Vec<UserId> = snapshot.candidates.iter().filter(|c| c.rr_last_cycle >= cycle).map(|c| c.user_id).collect();
        // A newcomer joins mid-cycle, and one existing user leaves the rule.
        let leaver = UserId(ids[leaver % n]);
        snapshot.candidates.push(candidate(100));
        let mut remaining: Vec<i64> = ids.iter().copied().filter(|i| UserId(*i) != leaver).collect();
        remaining.push(100);
        let r2 = rule(Distribution::RoundRobin, &remaining);
        // The rest of the current cycle goes to those not yet served, newcomer included, each once.
        let due: Vec<UserId> = remaining.iter().map(|i| UserId(*i)).filter(|u| !served.contains(u)).collect();
        let mut got = Vec::new();
        for _ in 0..due.len() { got.push(step(&mut snapshot, &r2)); }
        got.sort();
        prop_assert_eq!(got, due.clone(), "the current cycle continues");
        prop_assert_eq!(snapshot.rr_cycle.max(1), cycle, "nothing reset the cycle");
    }
}

#[test]
fn random_is_uniform() {
    let ids: Vec<i64> = (1..=10).collect();
    let snapshot = Snapshot {
        candidates: ids.iter().map(|i| candidate(*i)).collect(),
        rr_cycle: 1,
        ..Default::default()
    };
    let props = Map::new();
    let r = rule(Distribution::Random, &ids);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let draws = 50_000;
    let mut counts = [0u32; 10];
    for _ in 0..draws {
        counts[(winner(&decide(&r, &facts(&props), &snapshot, &mut rng))
            .unwrap()
            .0
            - 1) as usize] += 1;
    }
    let expected = f64::from(draws) / 10.0;
    let chi2: f64 = counts
        .iter()
        .map(|c| (f64::from(*c) - expected).powi(2) / expected)
        .sum();
    // 9 degrees of freedom: P(chi2 > 27.88) = 0.001.
    assert!(chi2 < 27.88, "chi-square {chi2} for counts {counts:?}");
}

#[test]
fn verdicts_are_checked_in_order_and_explained() {
    let mut away = candidate(2);
    away.availability = Availability::Away {
        reason: AwayReason::OutsideWorkingHours,
        until: Some("2026-11-23T08:00:00Z".parse().unwrap()),
    };
    let mut unseated = candidate(3);
    unseated.seated = false;
    let mut full = candidate(4);
    full.capacity.total = Some(5);
    full.open.email_other = 5;
    let mut no_french = candidate(5);
    no_french.skills = SkillMask::default();
    let mut french = candidate(6);
    french.skills = SkillMask(0b1); // bit 0: the rule's first skill, French
    french.load.email_other = 3;
    let mut gone = candidate(7);
    gone.deactivated = true;
    let snapshot = Snapshot {
        candidates: vec![away, unseated, full, no_french, french, gone],
        rr_cycle: 1,
        skill_names: [(SkillId(1), "French".to_owned())].into(),
        ..Default::default()
    };
    let mut r = rule(Distribution::LoadBalanced, &[2, 3, 4, 5, 6, 7, 8]);
    r.skills = vec![SkillRule {
        property: "language".into(),
        equals: "fr".into(),
        skill_id: SkillId(1),
        optional: false,
    }];
    let props = json!({"language": "FR"}).as_object().cloned().unwrap();
    let d = decide(&r, &facts(&props), &snapshot, &mut Rng(1));
    let v: BTreeMap<i64, serde_json::Value> = d
        .explanation
        .candidates
        .iter()
        .map(|c| (c.user_id.0, serde_json::to_value(c).unwrap()))
        .collect();
    assert_eq!(v[&2]["verdict"], "away");
    assert_eq!(v[&2]["reason"], "outside_working_hours");
    assert_eq!(v[&2]["until"], "2026-11-23T08:00:00Z");
    assert_eq!(v[&3]["verdict"], "not_seated");
    assert_eq!(
        v[&4]["verdict"], "lacks_skill",
        "skills are checked before capacity"
    );
    assert_eq!(v[&5]["skill"], "French");
    assert_eq!(
        (v[&6]["verdict"].as_str(), v[&6]["load"].as_i64()),
        (Some("eligible"), Some(3))
    );
    assert_eq!(v[&7]["verdict"], "deactivated");
    assert_eq!(v[&8]["verdict"], "not_found");
    assert_eq!(winner(&d), Some(UserId(6)));
    assert_eq!(d.explanation.required_skills, vec!["French".to_owned()]);
    // Without the skill rule, user 4 is at capacity: 5/5.
    r.skills.clear();
    let d = decide(&r, &facts(&props), &snapshot, &mut Rng(1));
    let four = d
        .explanation
        .candidates
        .iter()
        .find(|c| c.user_id == UserId(4))
        .unwrap();
    assert_eq!(
        four.verdict,
        Verdict::AtCapacity {
            open: 5,
            limit: 5,
            scope: CapacityScope::Total
        }
    );
}

#[test]
fn optional_skills_relax_after_the_configured_wait() {
    let snapshot = Snapshot {
        candidates: vec![candidate(1)],
        rr_cycle: 1,
        ..Default::default()
    };
    let mut r = rule(Distribution::LoadBalanced, &[1]);
    r.skills = vec![SkillRule {
        property: "language".into(),
        equals: "de".into(),
        skill_id: SkillId(9),
        optional: true,
    }];
    r.relax_after_seconds = Some(120);
    let props = json!({"language": "de"}).as_object().cloned().unwrap();
    let mut f = facts(&props);
    let d = decide(&r, &f, &snapshot, &mut Rng(1));
    assert_eq!((winner(&d), d.relax_at_seconds), (None, Some(120)));
    f.waited_seconds = 120;
    let d = decide(&r, &f, &snapshot, &mut Rng(1));
    assert_eq!(winner(&d), Some(UserId(1)));
    assert!(d.explanation.required_skills.is_empty());
}

#[test]
fn contact_owner_branches() {
    let mut owner = candidate(1);
    let fallback_user = candidate(2);
    let mut r = rule(Distribution::LoadBalanced, &[]);
    r.assign_to = AssignTo::ContactOwner;
    r.fallback = Some(Fallback {
        assign_to: FallbackTo::UsersAndTeams,
        users: vec![UserId(2)],
        teams: vec![],
    });
    let props = Map::new();
    let mut f = facts(&props);
    f.contact_owner = Some(UserId(1));
    let snap = |o: &Candidate| Snapshot {
        candidates: vec![o.clone(), fallback_user.clone()],
        rr_cycle: 1,
        ..Default::default()
    };
    assert_eq!(
        winner(&decide(&r, &f, &snap(&owner), &mut Rng(1))),
        Some(UserId(1))
    );
    owner.availability = Availability::Away {
        reason: AwayReason::Manual,
        until: None,
    };
    let d = decide(&r, &f, &snap(&owner), &mut Rng(1));
    assert_eq!(
        winner(&d),
        Some(UserId(2)),
        "away owner + only_available: the fallback applies"
    );
    assert!(d.explanation.branch.iter().any(|b| b.contains("away")));
    r.only_available = false;
    let d = decide(&r, &f, &snap(&owner), &mut Rng(1));
    assert_eq!(
        (winner(&d), d.notify_owner),
        (Some(UserId(1)), true),
        "assigned anyway and notified"
    );
    f.needs_visitor = true;
    let d = decide(&r, &f, &snap(&owner), &mut Rng(1));
    assert_eq!(
        winner(&d),
        Some(UserId(2)),
        "an unknown visitor cannot be tied to the owner"
    );
    f.visitor_known = true;
    f.contact_owner = None;
    assert_eq!(
        winner(&decide(&r, &f, &snap(&owner), &mut Rng(1))),
        Some(UserId(2))
    );
    r.fallback = None;
    assert_eq!(
        decide(&r, &f, &snap(&owner), &mut Rng(1)).outcome(),
        Outcome::Unassigned
    );
}

#[test]
fn team_only_needs_a_seated_member_and_teams_route_to_main_members() {
    let main = candidate(1);
    let mut secondary = candidate(2);
    secondary.load.email_other = 0;
    let mut main_busy = candidate(3);
    main_busy.load.email_other = 2;
    let team = TeamInfo {
        id: TeamId(10),
        seated_members: 3,
        main_members: vec![UserId(1), UserId(3)],
        secondary_members: vec![UserId(2)],
    };
    let mut snapshot = Snapshot {
        candidates: vec![main, secondary, main_busy],
        teams: vec![team],
        rr_cycle: 1,
        ..Default::default()
    };
    let props = Map::new();
    let mut r = rule(Distribution::LoadBalanced, &[]);
    r.teams = vec![TeamId(10)];
    let d = decide(&r, &facts(&props), &snapshot, &mut Rng(1));
    assert_eq!(
        d.outcome(),
        Outcome::Assign {
            user_id: UserId(1),
            team_id: Some(TeamId(10))
        }
    );
    let two = d
        .explanation
        .candidates
        .iter()
        .find(|c| c.user_id == UserId(2))
        .unwrap();
    assert_eq!(two.verdict, Verdict::NotATarget);
    r.assign_to = AssignTo::TeamOnly;
    assert_eq!(
        decide(&r, &facts(&props), &snapshot, &mut Rng(1)).outcome(),
        Outcome::Team {
            team_id: TeamId(10)
        }
    );
    snapshot.teams[0].seated_members = 0;
    assert_eq!(
        decide(&r, &facts(&props), &snapshot, &mut Rng(1)).outcome(),
        Outcome::Unassigned
    );
}

#[test]
fn the_first_missing_skill_in_rule_order_is_reported() {
    let mut r = rule(Distribution::LoadBalanced, &[1, 2, 3]);
    let skill = |property: &str, id| SkillRule {
        property: property.into(),
        equals: "yes".into(),
        skill_id: SkillId(id),
        optional: false,
    };
    // Skill 20 is named twice: it keeps one bit.
    r.skills = vec![skill("a", 20), skill("b", 10), skill("c", 20)];
    assert_eq!(r.skill_ids(), vec![SkillId(20), SkillId(10)]);
    let mut only_10 = candidate(1);
    only_10.skills = r.skill_mask(&[SkillId(10), SkillId(99)]);
    assert_eq!(only_10.skills, SkillMask(0b10));
    let mut only_20 = candidate(2);
    only_20.skills = r.skill_mask(&[SkillId(20)]);
    let mut both = candidate(3);
    both.skills = r.skill_mask(&[SkillId(10), SkillId(20)]);
    let snapshot = Snapshot {
        candidates: vec![only_10, only_20, both],
        rr_cycle: 1,
        skill_names: [
            (SkillId(10), "Billing".into()),
            (SkillId(20), "French".into()),
        ]
        .into(),
        ..Default::default()
    };
    let props = json!({"a": "yes", "b": "yes"})
        .as_object()
        .cloned()
        .unwrap();
    let d = decide(&r, &facts(&props), &snapshot, &mut Rng(1));
    let verdicts: Vec<&Verdict> = d
        .explanation
        .candidates
        .iter()
        .map(|c| &c.verdict)
        .collect();
    assert_eq!(
        verdicts,
        [
            &Verdict::LacksSkill {
                skill: "French".into()
            },
            &Verdict::LacksSkill {
                skill: "Billing".into()
            },
            &Verdict::Eligible,
        ]
    );
    assert_eq!(d.explanation.required_skills, ["French", "Billing"]);
    assert_eq!(winner(&d), Some(UserId(3)));
    // Only `b` matches: French is not required, so user 1 is eligible.
    let props = json!({"b": "yes"}).as_object().cloned().unwrap();
    let d = decide(&r, &facts(&props), &snapshot, &mut Rng(1));
    assert_eq!(d.explanation.required_skills, ["Billing"]);
    assert_eq!(d.explanation.candidates[0].verdict, Verdict::Eligible);
}

#[test]
fn ranked_eligible_keeps_the_checks_and_ranks_like_the_distribution() {
    let at = |s: &str| Some(s.parse::<Timestamp>().unwrap());
    let mut busy = candidate(1);
    busy.load.email_other = 4;
    let mut full = candidate(2);
    full.capacity.email_other = Some(1);
    full.open.email_other = 1;
    let mut no_french = candidate(3);
    no_french.skills = SkillMask::default();
    let mut waited = candidate(4);
    waited.skills = SkillMask(0b1);
    waited.load.email_other = 1;
    waited.last_assigned_at = at("2026-01-01T08:00:00Z");
    let mut recent = candidate(5);
    recent.skills = SkillMask(0b1);
    recent.load.email_other = 1;
    recent.last_assigned_at = at("2026-01-01T09:00:00Z");
    recent.rr_last_cycle = 0;
    let mut away = candidate(6);
    away.availability = Availability::Away {
        reason: AwayReason::Manual,
        until: None,
    };
    busy.skills = SkillMask(0b1);
    full.skills = SkillMask(0b1);
    away.skills = SkillMask(0b1);
    let mut served = waited.clone();
    served.user_id = UserId(7);
    served.rr_last_cycle = 3;
    served.last_assigned_at = None;
    let snapshot = Snapshot {
        candidates: vec![busy, full, no_french, waited, recent, away, served],
        rr_cycle: 3,
        skill_names: [(SkillId(1), "French".to_owned())].into(),
        ..Default::default()
    };
    let mut r = rule(Distribution::LoadBalanced, &[1, 2, 3, 4, 5, 6, 7, 8]);
    r.skills = vec![SkillRule {
        property: "language".into(),
        equals: "fr".into(),
        skill_id: SkillId(1),
        optional: false,
    }];
    let props = json!({"language": "fr"}).as_object().cloned().unwrap();
    let ids = |v: Vec<UserId>| v.into_iter().map(|u| u.0).collect::<Vec<_>>();
    // Load first (7 never assigned: longest wait), capacity, skill and
    // availability leave 2, 3 and 6 out; 8 is not a user.
    let ranked = ranked_eligible(&r, &facts(&props), &snapshot);
    assert_eq!(ids(ranked.clone()), vec![7, 4, 5, 1]);
    // The head of the ranking is the pick.
    let d = decide(&r, &facts(&props), &snapshot, &mut Rng(1));
    assert_eq!(winner(&d), ranked.first().copied());
    // Round robin: not served this cycle first, then the longest wait.
    r.distribution = Distribution::RoundRobin;
    assert_eq!(
        ids(ranked_eligible(&r, &facts(&props), &snapshot)),
        vec![1, 4, 5, 7]
    );
    // Routing to away users too lets 6 in.
    r.only_available = false;
    r.distribution = Distribution::LoadBalanced;
    assert_eq!(
        ids(ranked_eligible(&r, &facts(&props), &snapshot)),
        vec![6, 7, 4, 5, 1]
    );
    // A contact-owner rule rings the owner first, then the fallback's.
    r.assign_to = AssignTo::ContactOwner;
    r.fallback = Some(Fallback {
        assign_to: FallbackTo::UsersAndTeams,
        users: vec![UserId(4), UserId(5)],
        teams: vec![],
    });
    let mut f = facts(&props);
    f.contact_owner = Some(UserId(2));
    assert_eq!(ids(ranked_eligible(&r, &f, &snapshot)), vec![2, 4, 5]);
    r.assign_to = AssignTo::Nobody;
    assert!(ranked_eligible(&r, &f, &snapshot).is_empty());
}
