//! The routing decision alone (no storage): load balanced and round robin
//! over pools of 10, 1,000 and 10,000 candidates, a fifth of them filtered
//! out (away, unseated, lacking the skill or at capacity).
//!
//! `cargo bench -p switchboard-domain --bench routing_decision`

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Map, json};
use switchboard_domain::{routing::*, *};

struct Fixed;

impl RandomSource for Fixed {
    fn below(&mut self, n: usize) -> usize {
        n / 2
    }
}

fn pool(n: usize) -> Snapshot {
    let candidates = (0..n as i64)
        .map(|i| Candidate {
            user_id: UserId(i + 1),
            deactivated: false,
            seated: i % 10 != 3,
            availability: if i % 10 == 5 {
                Availability::Away {
                    reason: AwayReason::OutsideWorkingHours,
                    until: None,
                }
            } else {
                Availability::Available { until: None }
            },
            // Bit 0: the rule's one skill (French).
            skills: SkillMask(u64::from(i % 10 != 7)),
            capacity: Capacity {
                total: Some(10),
                ..Default::default()
            },
            open: TypeCounts {
                email_other: if i % 10 == 9 { 10 } else { (i % 7) as u32 },
                ..Default::default()
            },
            load: TypeCounts {
                email_other: (i % 7) as u32,
                ..Default::default()
            },
            last_assigned_at: Some(
                Timestamp::UNIX_EPOCH + SignedDuration::from_secs(i * 37 % 1000),
            ),
            rr_last_cycle: (i % 2) as u64,
            main_team_id: None,
        })
        .collect();
    Snapshot {
        candidates,
        teams: vec![],
        rr_cycle: 1,
        skill_names: [(SkillId(1), "French".to_owned())].into(),
    }
}

fn bench(c: &mut Criterion) {
    let props: Map<String, serde_json::Value> =
        json!({"language": "fr"}).as_object().cloned().unwrap();
    let facts = TicketFacts {
        ticket_type: TicketType::EmailOther,
        properties: &props,
        contact_owner: None,
        needs_visitor: false,
        visitor_known: false,
        waited_seconds: 0,
    };
    let mut group = c.benchmark_group("routing_decision");
    for n in [10usize, 100, 1_000, 10_000] {
        let snapshot = pool(n);
        for distribution in [Distribution::LoadBalanced, Distribution::RoundRobin] {
            let rule = RoutingRule {
                assign_to: AssignTo::UsersAndTeams,
                users: snapshot.candidates.iter().map(|c| c.user_id).collect(),
                teams: vec![],
                distribution,
                only_available: true,
                fallback: None,
                skills: vec![SkillRule {
                    property: "language".into(),
                    equals: "fr".into(),
                    skill_id: SkillId(1),
                    optional: false,
                }],
                relax_after_seconds: None,
                waiting_queue: false,
                rebalance_on_away: false,
            };
            group.bench_with_input(
                BenchmarkId::new(format!("{distribution:?}"), n),
                &n,
                |b, _| {
                    b.iter(|| {
                        decide(
                            black_box(&rule),
                            black_box(&facts),
                            black_box(&snapshot),
                            &mut Fixed,
                        )
                    })
                },
            );
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
