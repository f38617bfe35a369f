//! Routing and the scheduler through the `Store` trait: each account's
//! routing state is kept between decisions (see `domain::routing::state`),
//! so these cases check that every pick is the one a fresh read of the
//! database would give, after routed tickets, directory and availability
//! changes and scheduled jobs. Each case moves the fixture's clock and calls
//! `run_due_jobs` itself; nothing waits for real time.

use std::collections::HashMap;

use jiff::{SignedDuration, civil::Weekday};
use switchboard_domain::{
    input::*,
    routing::{
        Capacity, ManualAvailability, ManualStatus, Outcome, RoutingRule, RoutingTrigger, Shift,
        Verdict, WeeklyHours,
    },
    *,
};

use super::*;
use crate::{AvailabilityChange, NewMessage, RoutingRecord};

/// A custom channel whose routing rule is `rule` (JSON, as the API takes it).
async fn routed_channel(store: &dyn Store, a: AccountId, rule: serde_json::Value) -> Channel {
    let input = NewChannel {
        kind: ChannelKind::Custom,
        name: name("Custom"),
        settings: Default::default(),
    };
    let ch = store
        .create_channel(a, input, format!("custom-{a}"))
        .await
        .unwrap();
    let rule: RoutingRule = serde_json::from_value(rule).unwrap();
    let patch = ChannelPatch {
        routing: Some(Some(rule)),
        ..Default::default()
    };
    store.update_channel(a, ch.id, patch).await.unwrap()
}

/// A ticket created on `ch` (and so routed by its rule).
async fn routed_with(
    store: &dyn Store,
    a: AccountId,
    ch: &Channel,
    mut input: NewTicket,
) -> Ticket {
    input.channel_id = Some(ch.id);
    store
        .create_ticket(a, input, None, Actor::System)
        .await
        .unwrap()
        .value
}

async fn routed(store: &dyn Store, a: AccountId, ch: &Channel) -> Ticket {
    routed_with(store, a, ch, new_ticket("routed")).await
}

/// A team whose main members are `users`.
async fn team_of(store: &dyn Store, a: AccountId, n: &str, users: &[&User]) -> Team {
    store
        .create_team(
            a,
            NewTeam {
                name: name(n),
                members: members(users),
            },
        )
        .await
        .unwrap()
}

fn members(users: &[&User]) -> Vec<TeamMember> {
    users
        .iter()
        .map(|u| TeamMember {
            user_id: u.id,
            main: true,
        })
        .collect()
}

/// Sets `user` manually away (no end), or clears the manual status.
async fn set_away(store: &dyn Store, a: AccountId, user: &User, away: bool) {
    let manual = away.then_some(ManualAvailability {
        status: ManualStatus::Away,
        until: None,
    });
    store
        .change_availability(a, user.id, AvailabilityChange::Manual(manual))
        .await
        .unwrap();
}

async fn last_decision(store: &dyn Store, a: AccountId, t: TicketId) -> RoutingRecord {
    store
        .routing_log(a, t)
        .await
        .unwrap()
        .pop()
        .expect("a decision")
}

fn verdict(r: &RoutingRecord, user: &User) -> Verdict {
    let c = r
        .explanation
        .candidates
        .iter()
        .find(|c| c.user_id == user.id);
    c.expect("reported").verdict.clone()
}

async fn no_drift(store: &dyn Store, a: AccountId) {
    assert_eq!(store.counter_drift(a).await.unwrap(), Vec::<String>::new());
}

async fn owner_now(store: &dyn Store, a: AccountId, t: TicketId) -> Option<UserId> {
    store.get_ticket(a, t).await.unwrap().owner.user_id
}

/// Load balancing over a team of three: nine tickets end three each, every
/// ticket's routing log holds the `created` decision with the ticket's
/// owner as outcome, and the counters match a recount.
pub async fn load_balancing_spreads_a_team_evenly(f: &Fixture) {
    let store = f.store.as_ref();
    let (a, _) = account(store, "acme").await;
    let agents = [
        agent(store, a, "Ana").await,
        agent(store, a, "Bob").await,
        agent(store, a, "Cy").await,
    ];
    let team = team_of(store, a, "Support", &agents.iter().collect::<Vec<_>>()).await;
    let ch = routed_channel(
        store,
        a,
        serde_json::json!({"assign_to": "users_and_teams", "teams": [team.id]}),
    )
    .await;
    let mut per_user: HashMap<UserId, u32> = HashMap::new();
    for _ in 0..9 {
        f.clock.advance(SignedDuration::from_secs(1));
        let t = routed(store, a, &ch).await;
        let owner = t.owner.user_id.expect("assigned");
        assert_eq!(t.owner.team_id, Some(team.id));
        *per_user.entry(owner).or_default() += 1;
        let log = store.routing_log(a, t.id).await.unwrap();
        assert_eq!(log.len(), 1);
        assert_eq!(log[0].trigger, RoutingTrigger::Created);
        assert_eq!(
            log[0].explanation.outcome,
            Outcome::Assign {
                user_id: owner,
                team_id: Some(team.id)
            }
        );
    }
    for u in &agents {
        assert_eq!(per_user.get(&u.id), Some(&3), "{} got three", u.name);
    }
    no_drift(store, a).await;
}

/// Round robin over three users: each gets one before anyone gets a
/// second, whatever their load. Ties (everyone unserved, or a new cycle)
/// go to the longest wait since any assignment, then the lowest id: Ana
/// was just given a ticket by hand, so Bob and Cy (never assigned) come
/// first, and six tickets go b, c, a, b, c, a.
pub async fn round_robin_follows_the_cycle(f: &Fixture) {
    let store = f.store.as_ref();
    let (a, admin) = account(store, "acme").await;
    let users = [
        agent(store, a, "Ana").await,
        agent(store, a, "Bob").await,
        agent(store, a, "Cy").await,
    ];
    let ids: Vec<UserId> = users.iter().map(|u| u.id).collect();
    let ch = routed_channel(
        store,
        a,
        serde_json::json!({"assign_to": "users_and_teams", "users": ids, "distribution": "round_robin"}),
    )
    .await;
    let manual = ticket(store, a, &admin, "by hand").await;
    let to_ana = Owner {
        user_id: Some(users[0].id),
        team_id: None,
    };
    store
        .set_owner(a, manual.id, to_ana, by(&admin))
        .await
        .unwrap();
    let mut order = Vec::new();
    for _ in 0..6 {
        f.clock.advance(SignedDuration::from_secs(1));
        order.push(routed(store, a, &ch).await.owner.user_id.expect("assigned"));
    }
    let cycle = [ids[1], ids[2], ids[0]];
    let expected: Vec<UserId> = cycle.iter().chain(&cycle).copied().collect();
    assert_eq!(order, expected);
    no_drift(store, a).await;
}

/// Random distribution draws among the eligible only: with one user
/// unseated and one manually away, thirty tickets all go to the third.
pub async fn random_never_picks_an_ineligible_user(f: &Fixture) {
    let store = f.store.as_ref();
    let (a, _) = account(store, "acme").await;
    let mut input = new_user("Una", "una@acme.example", Role::Agent);
    input.help_desk_seat = false;
    let unseated = store.create_user(a, input).await.unwrap();
    let away = agent(store, a, "Avi").await;
    let only = agent(store, a, "Ola").await;
    set_away(store, a, &away, true).await;
    let ch = routed_channel(
        store,
        a,
        serde_json::json!({"assign_to": "users_and_teams", "users": [unseated.id, away.id, only.id], "distribution": "random"}),
    )
    .await;
    for _ in 0..30 {
        let t = routed(store, a, &ch).await;
        assert_eq!(t.owner.user_id, Some(only.id));
    }
    let t = routed(store, a, &ch).await;
    let r = last_decision(store, a, t.id).await;
    assert_eq!(verdict(&r, &unseated), Verdict::NotSeated);
    assert!(matches!(verdict(&r, &away), Verdict::Away { .. }));
    assert_eq!(verdict(&r, &only), Verdict::Eligible);
    no_drift(store, a).await;
}

/// The kept state follows directory changes at once: a user added to the
/// team (update_team) gets the next tickets (lowest load); a deactivated
/// user (update_user) gets none after; a capacity limit is respected from
/// the next ticket, and lifting it is too.
pub async fn kept_state_follows_directory_changes(f: &Fixture) {
    let store = f.store.as_ref();
    let (a, _) = account(store, "acme").await;
    let ana = agent(store, a, "Ana").await;
    let bob = agent(store, a, "Bob").await;
    let cy = agent(store, a, "Cy").await;
    let team = team_of(store, a, "Support", &[&ana, &bob]).await;
    let ch = routed_channel(
        store,
        a,
        serde_json::json!({"assign_to": "users_and_teams", "teams": [team.id]}),
    )
    .await;
    let next = async || {
        f.clock.advance(SignedDuration::from_secs(1));
        let t = routed(store, a, &ch).await;
        (t.owner.user_id.expect("assigned"), t.id)
    };
    let mut got = Vec::new();
    for _ in 0..4 {
        got.push(next().await.0);
    }
    assert_eq!(got, [ana.id, bob.id, ana.id, bob.id]);

    let patch = TeamPatch {
        members: Some(members(&[&ana, &bob, &cy])),
        ..Default::default()
    };
    store.update_team(a, team.id, patch).await.unwrap();
    assert_eq!(next().await.0, cy.id, "the newcomer has the lowest load");
    assert_eq!(next().await.0, cy.id, "still the lowest load");
    let mut cy_open = 2;

    let deactivate = UserPatch {
        deactivated: Some(true),
        ..Default::default()
    };
    store.update_user(a, ana.id, deactivate).await.unwrap();
    for _ in 0..4 {
        let (owner, t) = next().await;
        assert_ne!(owner, ana.id, "deactivated users get nothing");
        cy_open += u32::from(owner == cy.id);
        let r = last_decision(store, a, t).await;
        assert_eq!(verdict(&r, &ana), Verdict::Deactivated);
    }

    let capped = |total| UserPatch {
        capacity: Some(Capacity {
            total,
            ..Default::default()
        }),
        ..Default::default()
    };
    store
        .update_user(a, cy.id, capped(Some(cy_open)))
        .await
        .unwrap();
    for _ in 0..2 {
        let (owner, t) = next().await;
        assert_eq!(owner, bob.id, "Cy is at capacity, whatever Bob's load");
        let r = last_decision(store, a, t).await;
        assert!(matches!(verdict(&r, &cy), Verdict::AtCapacity { .. }));
    }
    store
        .update_user(a, cy.id, capped(Some(cy_open + 5)))
        .await
        .unwrap();
    assert_eq!(next().await.0, cy.id, "room again, and the lower load");
    no_drift(store, a).await;
}

/// With a waiting queue and the only agent manually away, a ticket stays
/// unassigned and waits; when the agent becomes available it is assigned,
/// by a decision with trigger `waiting_queue`.
pub async fn the_waiting_queue_assigns_when_an_agent_comes_back(f: &Fixture) {
    let store = f.store.as_ref();
    let (a, _) = account(store, "acme").await;
    let ana = agent(store, a, "Ana").await;
    set_away(store, a, &ana, true).await;
    let ch = routed_channel(
        store,
        a,
        serde_json::json!({"assign_to": "users_and_teams", "users": [ana.id], "waiting_queue": true}),
    )
    .await;
    let t = routed(store, a, &ch).await;
    assert_eq!(t.owner.user_id, None);
    let r = last_decision(store, a, t.id).await;
    assert_eq!(r.trigger, RoutingTrigger::Created);
    assert_eq!(r.explanation.outcome, Outcome::Unassigned);

    f.clock.advance(SignedDuration::from_mins(5));
    set_away(store, a, &ana, false).await;
    assert_eq!(owner_now(store, a, t.id).await, Some(ana.id));
    let r = last_decision(store, a, t.id).await;
    assert_eq!(r.trigger, RoutingTrigger::WaitingQueue);
    assert!(matches!(r.explanation.outcome, Outcome::Assign { user_id, .. } if user_id == ana.id));
    no_drift(store, a).await;
}

/// A directory change that makes a waiting ticket assignable drains the
/// queue in its own write, from the changed state: a seat given with
/// `update_user` assigns the ticket at once, and later tickets too.
pub async fn a_seat_given_drains_the_queue(f: &Fixture) {
    let store = f.store.as_ref();
    let (a, _) = account(store, "acme").await;
    let mut input = new_user("Una", "una@acme.example", Role::Agent);
    input.help_desk_seat = false;
    let una = store.create_user(a, input).await.unwrap();
    let ch = routed_channel(
        store,
        a,
        serde_json::json!({"assign_to": "users_and_teams", "users": [una.id], "waiting_queue": true}),
    )
    .await;
    // Two decisions, so the state is kept before the change.
    let waiting = [routed(store, a, &ch).await, routed(store, a, &ch).await];
    assert!(waiting.iter().all(|t| t.owner.user_id.is_none()));
    let seat = UserPatch {
        help_desk_seat: Some(true),
        ..Default::default()
    };
    store.update_user(a, una.id, seat).await.unwrap();
    for t in &waiting {
        assert_eq!(owner_now(store, a, t.id).await, Some(una.id));
    }
    assert_eq!(routed(store, a, &ch).await.owner.user_id, Some(una.id));
    no_drift(store, a).await;
}

/// A queue longer than one drain batch (64 tickets per write on both
/// backends): the availability change routes the first batch, the
/// `drain_waiting` jobs it leaves due now route the rest when the
/// scheduler runs, and all 150 are assigned, highest priority first, then
/// oldest first.
pub async fn a_long_queue_drains_past_one_batch_in_order(f: &Fixture) {
    let store = f.store.as_ref();
    let (a, _) = account(store, "acme").await;
    let ana = agent(store, a, "Ana").await;
    set_away(store, a, &ana, true).await;
    let ch = routed_channel(
        store,
        a,
        serde_json::json!({"assign_to": "users_and_teams", "users": [ana.id], "waiting_queue": true}),
    )
    .await;
    let priorities = [
        Priority::Low,
        Priority::Urgent,
        Priority::Medium,
        Priority::High,
    ];
    // The queue's order: highest priority first.
    let rank = |p: Priority| match p {
        Priority::Urgent => 0,
        Priority::High => 1,
        Priority::Medium => 2,
        Priority::Low => 3,
    };
    let mut queued = Vec::new();
    for i in 0..150 {
        f.clock.advance(SignedDuration::from_secs(1));
        let mut input = new_ticket(&format!("t{i}"));
        input.priority = priorities[i % 4];
        let t = routed_with(store, a, &ch, input).await;
        assert_eq!(t.owner.user_id, None);
        queued.push(t);
    }
    f.clock.advance(SignedDuration::from_secs(1));
    set_away(store, a, &ana, false).await;
    assert_eq!(
        view(store, a, &ana, View::Mine).await.len(),
        64,
        "one batch in the availability change"
    );
    store.run_due_jobs().await.unwrap();

    // The order of assignment is the order of the history lines.
    let mut assigned_at_line = Vec::new();
    for t in &queued {
        assert_eq!(
            owner_now(store, a, t.id).await,
            Some(ana.id),
            "{}",
            t.subject
        );
        let line = store
            .history(a, t.id)
            .await
            .unwrap()
            .into_iter()
            .find(|h| matches!(h.event, HistoryEvent::OwnerChanged { .. }))
            .expect("assigned")
            .id;
        assigned_at_line.push((line, t.id));
        let r = last_decision(store, a, t.id).await;
        assert_eq!(r.trigger, RoutingTrigger::WaitingQueue);
    }
    assigned_at_line.sort();
    let got: Vec<TicketId> = assigned_at_line.into_iter().map(|(_, id)| id).collect();
    let mut expected = queued.clone();
    expected.sort_by_key(|t| (rank(t.priority), t.created_at, t.id));
    let expected: Vec<TicketId> = expected.iter().map(|t| t.id).collect();
    assert_eq!(got, expected);
    no_drift(store, a).await;
}

/// An optional skill is dropped once the ticket has waited
/// `relax_after_seconds`: a French ticket and an agent without French
/// stay apart for 60 s, and the relaxation job then assigns it (trigger
/// `skill_relaxation`), not a second before.
pub async fn optional_skills_are_relaxed_after_the_delay(f: &Fixture) {
    let store = f.store.as_ref();
    let (a, _) = account(store, "acme").await;
    let ana = agent(store, a, "Ana").await;
    let french = store
        .create_skill(
            a,
            NewSkill {
                // (Accounts start with the languages, "French" among them.)
                name: name("Canadian French"),
                category: name("Language"),
            },
        )
        .await
        .unwrap();
    let ch = routed_channel(
        store,
        a,
        serde_json::json!({
            "assign_to": "users_and_teams",
            "users": [ana.id],
            "skills": [{"property": "language", "equals": "fr", "skill_id": french.id, "optional": true}],
            "relax_after_seconds": 60,
        }),
    )
    .await;
    let mut input = new_ticket("bonjour");
    input
        .properties
        .insert("language".into(), serde_json::json!("fr"));
    let t = routed_with(store, a, &ch, input).await;
    assert_eq!(t.owner.user_id, None);
    let r = last_decision(store, a, t.id).await;
    assert!(matches!(verdict(&r, &ana), Verdict::LacksSkill { .. }));

    f.clock.advance(SignedDuration::from_secs(59));
    store.run_due_jobs().await.unwrap();
    assert_eq!(owner_now(store, a, t.id).await, None, "not yet");

    f.clock.advance(SignedDuration::from_secs(2));
    assert!(store.run_due_jobs().await.unwrap() >= 1);
    assert_eq!(owner_now(store, a, t.id).await, Some(ana.id));
    let r = last_decision(store, a, t.id).await;
    assert_eq!(r.trigger, RoutingTrigger::SkillRelaxation);
    assert_eq!(verdict(&r, &ana), Verdict::Eligible);
    no_drift(store, a).await;
}

/// With `rebalance_on_away`, a user becoming away gives up their open
/// tickets without a public reply: the ticket goes back through routing to
/// the other agent (history: unassigned for `rebalance_on_away`, then
/// assigned by routing), while a ticket they replied to stays theirs.
pub async fn rebalance_on_away_moves_unreplied_tickets(f: &Fixture) {
    let store = f.store.as_ref();
    let (a, _) = account(store, "acme").await;
    let ana = agent(store, a, "Ana").await;
    let bob = agent(store, a, "Bob").await;
    let ch = routed_channel(
        store,
        a,
        serde_json::json!({"assign_to": "users_and_teams", "users": [ana.id, bob.id], "rebalance_on_away": true}),
    )
    .await;
    let mut tickets = Vec::new();
    for _ in 0..3 {
        f.clock.advance(SignedDuration::from_secs(1));
        tickets.push(routed(store, a, &ch).await);
    }
    let owners: Vec<_> = tickets.iter().map(|t| t.owner.user_id).collect();
    assert_eq!(owners, [Some(ana.id), Some(bob.id), Some(ana.id)]);
    let (unreplied, replied) = (&tickets[0], &tickets[2]);
    let reply = NewMessage {
        kind: MessageKind::Reply,
        author: by(&ana),
        body: "On it".into(),
        external_id: None,
    };
    store.add_message(a, replied.id, reply).await.unwrap();

    f.clock.advance(SignedDuration::from_secs(1));
    set_away(store, a, &ana, true).await;
    assert_eq!(owner_now(store, a, unreplied.id).await, Some(bob.id));
    assert_eq!(owner_now(store, a, replied.id).await, Some(ana.id));
    let changes: Vec<_> = store
        .history(a, unreplied.id)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|h| match h.event {
            HistoryEvent::OwnerChanged { from, to, reason } => {
                Some((from.user_id, to.user_id, reason))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        changes,
        [
            (None, Some(ana.id), OwnerReason::Routing),
            (Some(ana.id), None, OwnerReason::RebalanceOnAway),
            (None, Some(bob.id), OwnerReason::Routing),
        ]
    );
    let r = last_decision(store, a, unreplied.id).await;
    assert_eq!(r.trigger, RoutingTrigger::RebalanceOnAway);
    no_drift(store, a).await;
}

/// Working hours starting later today: a ticket waits while the agent is
/// off shift, the scheduler's availability job at the shift start drains
/// the queue, and not earlier.
pub async fn working_hours_starting_later_drain_the_queue(f: &Fixture) {
    let store = f.store.as_ref();
    let (a, _) = account(store, "acme").await;
    let ana = agent(store, a, "Ana").await;
    // The clock starts on a Tuesday at 09:00 UTC; Ana is in UTC.
    let hours = WeeklyHours(vec![Shift {
        day: Weekday::Tuesday,
        start: jiff::civil::time(10, 0, 0, 0),
        end: jiff::civil::time(18, 0, 0, 0),
    }]);
    let state = store
        .change_availability(a, ana.id, AvailabilityChange::WorkingHours(Some(hours)))
        .await
        .unwrap();
    assert!(!state.now.is_available());
    let ch = routed_channel(
        store,
        a,
        serde_json::json!({"assign_to": "users_and_teams", "users": [ana.id], "waiting_queue": true}),
    )
    .await;
    let t = routed(store, a, &ch).await;
    assert_eq!(t.owner.user_id, None);

    f.clock.advance(SignedDuration::from_mins(59));
    store.run_due_jobs().await.unwrap();
    assert_eq!(owner_now(store, a, t.id).await, None, "still off shift");

    f.clock.advance(SignedDuration::from_mins(2));
    assert!(store.run_due_jobs().await.unwrap() >= 1);
    assert_eq!(owner_now(store, a, t.id).await, Some(ana.id));
    let r = last_decision(store, a, t.id).await;
    assert_eq!(r.trigger, RoutingTrigger::WaitingQueue);
    assert!(
        store
            .availability(a, ana.id)
            .await
            .unwrap()
            .now
            .is_available()
    );
    no_drift(store, a).await;
}

/// Loads count tickets assigned in the last 30 days: after 31 days the
/// load-expiry jobs take Ana's three old tickets out of her load (they stay
/// open and hers), the counters still match a recount, and the next
/// load-balanced ticket goes to her rather than to Bob, whose one ticket
/// is 16 days old.
pub async fn loads_forget_tickets_assigned_over_30_days_ago(f: &Fixture) {
    let store = f.store.as_ref();
    let (a, admin) = account(store, "acme").await;
    let ana = agent(store, a, "Ana").await;
    let bob = agent(store, a, "Bob").await;
    let ch = routed_channel(
        store,
        a,
        serde_json::json!({"assign_to": "users_and_teams", "users": [ana.id, bob.id]}),
    )
    .await;
    // Loads are per ticket type: the tickets given by hand come from a
    // custom channel too (one without a rule), so they are messages.
    let plain = NewChannel {
        kind: ChannelKind::Custom,
        name: name("Plain"),
        settings: Default::default(),
    };
    let plain = store
        .create_channel(a, plain, "plain".into())
        .await
        .unwrap();
    let give = async |u: &User| {
        let mut input = new_ticket("by hand");
        input.channel_id = Some(plain.id);
        let t = store
            .create_ticket(a, input, None, by(&admin))
            .await
            .unwrap()
            .value;
        assert_eq!(t.ticket_type, TicketType::Message);
        let to = Owner {
            user_id: Some(u.id),
            team_id: None,
        };
        store.set_owner(a, t.id, to, by(&admin)).await.unwrap();
    };
    for _ in 0..3 {
        give(&ana).await;
    }
    f.clock.advance(SignedDuration::from_hours(24 * 15));
    give(&bob).await;
    no_drift(store, a).await;

    f.clock.advance(SignedDuration::from_hours(24 * 16));
    // One job per account recounts all three of Ana's.
    assert!(store.run_due_jobs().await.unwrap() >= 1);
    no_drift(store, a).await;
    assert_eq!(
        view(store, a, &ana, View::Mine).await.len(),
        3,
        "still hers"
    );

    let t = routed(store, a, &ch).await;
    assert_eq!(t.owner.user_id, Some(ana.id));
    let r = last_decision(store, a, t.id).await;
    let load = |u: &User| {
        let c = r.explanation.candidates.iter().find(|c| c.user_id == u.id);
        c.unwrap().load
    };
    assert_eq!((load(&ana), load(&bob)), (0, 1));
    no_drift(store, a).await;

    // The account's job came back for Bob's, the next to expire.
    f.clock.advance(SignedDuration::from_hours(24 * 15));
    assert!(store.run_due_jobs().await.unwrap() >= 1);
    no_drift(store, a).await;
    let t = routed(store, a, &ch).await;
    assert_eq!(t.owner.user_id, Some(bob.id), "Bob's load expired");
    let r = last_decision(store, a, t.id).await;
    let load = |u: &User| {
        let c = r.explanation.candidates.iter().find(|c| c.user_id == u.id);
        c.unwrap().load
    };
    assert_eq!((load(&ana), load(&bob)), (1, 0));
}
