//! Automatic routing over real HTTP on a real SQLite file, with an injected
//! clock: every rule kind and distribution, availability across a DST
//! change, out of office, manual away, seats, team-only views, contact
//! owner, skills with relaxation, capacity, the waiting queue, rebalance on
//! away, explanations, and 1,000 concurrent creates.

#[macro_use]
mod common;

use std::{collections::BTreeMap, sync::Arc};

use common::{TestApp, assert_problem, spawn_app_with_clock};
use jiff::{SignedDuration, Timestamp};
use reqwest::StatusCode;
use serde_json::{Value, json};
use switchboard_domain::{AccountId, FixedClock};

/// Friday 2026-03-27 10:00 UTC (11:00 in Paris, CET).
const FRIDAY: &str = "2026-03-27T10:00:00Z";

async fn app_at(at: &str) -> (TestApp, Arc<FixedClock>) {
    let clock = Arc::new(FixedClock::new(at.parse().unwrap()));
    (spawn_app_with_clock(clock.clone()).await, clock)
}

async fn channel(app: &TestApp, kind: &str, routing: Value) -> i64 {
    let (_, ch) = app
        .post(
            "/api/v1/channels",
            &app.admin,
            json!({"kind": kind, "name": format!("{kind} channel")}),
        )
        .await;
    let (status, body) = app
        .patch(
            &format!("/api/v1/channels/{}", ch["id"]),
            &app.admin,
            json!({"routing": routing}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    ch["id"].as_i64().unwrap()
}

async fn create(app: &TestApp, channel: i64, extra: Value) -> Value {
    let mut body = json!({"subject": "Help", "channel_id": channel});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().cloned().unwrap_or_default());
    let (status, t) = app.post("/api/v1/tickets", &app.admin, body).await;
    assert_eq!(status, StatusCode::CREATED, "{t}");
    t
}

/// Creates agents with seats and returns their ids.
async fn agents(app: &TestApp, names: &[&str]) -> Vec<i64> {
    let mut ids = Vec::new();
    for name in names {
        ids.push(app.user(name, "agent", json!({})).await.0);
    }
    ids
}

fn owner(t: &Value) -> Option<i64> {
    t["owner"]["user_id"].as_i64()
}

async fn explain(app: &TestApp, ticket: &Value) -> Value {
    let (status, body) = app
        .get(
            &format!("/api/v1/tickets/{}/routing", ticket["id"]),
            &app.admin,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    body
}

fn verdict_of(report: &Value, user: i64) -> Value {
    let decisions = report["decisions"].as_array().unwrap();
    decisions.last().unwrap()["explanation"]["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["user_id"] == user)
        .cloned()
        .unwrap_or(Value::Null)
}

async fn no_drift(app: &TestApp) {
    assert_eq!(
        app.store.counter_drift(AccountId(1)).await.unwrap(),
        Vec::<String>::new()
    );
}

async fn load_balanced_routes_inline_to_main_team_members_and_explains() {
    let (app, _) = app_at(FRIDAY).await;
    let (_, team) = app
        .post("/api/v1/teams", &app.admin, json!({"name": "Tier 1"}))
        .await;
    let mut ids = Vec::new();
    for name in ["Ana", "Bob", "Cy"] {
        ids.push(
            app.user(name, "agent", json!({"main_team_id": team["id"]}))
                .await
                .0,
        );
    }
    let (secondary, _) = app
        .user("Sec", "agent", json!({"secondary_team_ids": [team["id"]]}))
        .await;
    let ch = channel(&app, "email", json!({"assign_to": "users_and_teams", "teams": [team["id"]], "distribution": "load_balanced"})).await;
    let mut counts: BTreeMap<i64, u32> = BTreeMap::new();
    let mut last = Value::Null;
    for _ in 0..6 {
        last = create(&app, ch, json!({})).await;
        *counts
            .entry(owner(&last).expect("the 201 carries the routed owner"))
            .or_default() += 1;
        assert_eq!(last["owner"]["team_id"], team["id"]);
    }
    assert_eq!(counts.values().copied().collect::<Vec<_>>(), vec![2, 2, 2]);
    assert!(
        !counts.contains_key(&secondary),
        "secondary members are not targets"
    );
    let report = explain(&app, &last).await;
    let decision = &report["decisions"][0];
    assert_eq!(decision["trigger"], "created");
    assert_eq!(
        decision["explanation"]["rule"]["distribution"],
        "load_balanced"
    );
    assert_eq!(verdict_of(&report, secondary)["verdict"], "not_a_target");
    assert_eq!(verdict_of(&report, ids[0])["verdict"], "eligible");
    assert!(verdict_of(&report, ids[0])["load"].is_number());
    assert!(
        decision["explanation"]["summary"]
            .as_str()
            .unwrap()
            .contains("fewest open email_other tickets")
    );
    assert_eq!(report["owner_changes"][0]["event"]["reason"], "routing");
    no_drift(&app).await;
}

async fn round_robin_gives_everyone_one_before_anyone_a_second() {
    let (app, _) = app_at(FRIDAY).await;
    let users = agents(&app, &["Ana", "Bob", "Cy"]).await;
    let ch = channel(
        &app,
        "chat",
        json!({"assign_to": "users_and_teams", "users": users, "distribution": "round_robin"}),
    )
    .await;
    let mut seen = Vec::new();
    for _ in 0..9 {
        let t = create(&app, ch, json!({})).await;
        assert_eq!(t["type"], "message");
        seen.push(owner(&t).unwrap());
    }
    for cycle in seen.chunks(3) {
        let mut c = cycle.to_vec();
        c.sort();
        assert_eq!(c, users, "each cycle serves everyone once: {seen:?}");
    }
}

async fn random_reaches_every_eligible_user() {
    let (app, _) = app_at(FRIDAY).await;
    let users = agents(&app, &["Ana", "Bob", "Cy"]).await;
    let ch = channel(
        &app,
        "email",
        json!({"assign_to": "users_and_teams", "users": users, "distribution": "random"}),
    )
    .await;
    let mut got = std::collections::BTreeSet::new();
    for _ in 0..30 {
        got.insert(owner(&create(&app, ch, json!({})).await).unwrap());
    }
    assert_eq!(got.into_iter().collect::<Vec<_>>(), users);
}

async fn working_hours_follow_the_users_zone_across_dst() {
    let (app, clock) = app_at("2026-03-27T08:30:00Z").await; // Friday 09:30 in Paris (CET)
    let (ana, _) = app
        .user("Ana", "agent", json!({"time_zone": "Europe/Paris"}))
        .await;
    let shifts: Vec<Value> = ["monday", "tuesday", "wednesday", "thursday", "friday"]
        .iter()
        .map(|d| json!({"day": d, "start": "09:00", "end": "17:00"}))
        .collect();
    let (status, state) = app
        .put(
            &format!("/api/v1/users/{ana}/working-hours"),
            &app.admin,
            json!({"shifts": shifts}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{state}");
    assert_eq!(state["now"]["status"], "available");
    let ch = channel(
        &app,
        "email",
        json!({"assign_to": "users_and_teams", "users": [ana]}),
    )
    .await;
    assert_eq!(owner(&create(&app, ch, json!({})).await), Some(ana));
    // Monday 2026-03-30 08:30 in Paris is 06:30 UTC (CEST): before her shift.
    clock.set("2026-03-30T06:30:00Z".parse().unwrap());
    let early = create(&app, ch, json!({})).await;
    assert_eq!(
        owner(&early),
        None,
        "nobody available: the ticket stays unassigned"
    );
    let v = verdict_of(&explain(&app, &early).await, ana);
    assert_eq!(
        (
            v["verdict"].as_str(),
            v["reason"].as_str(),
            v["until"].as_str()
        ),
        (
            Some("away"),
            Some("outside_working_hours"),
            Some("2026-03-30T07:00:00Z")
        )
    );
    clock.set("2026-03-30T07:30:00Z".parse().unwrap()); // 09:30 CEST
    assert_eq!(owner(&create(&app, ch, json!({})).await), Some(ana));
    let (_, unassigned) = app.get("/api/v1/tickets?view=unassigned", &app.admin).await;
    assert_eq!(
        TestApp::ids(&unassigned),
        vec![early["id"].as_i64().unwrap()]
    );
}

async fn out_of_office_manual_away_and_seats_are_verdicts() {
    let (app, _) = app_at(FRIDAY).await;
    let (ooo, ooo_token) = app.user("Olga", "agent", json!({})).await;
    let (away, _) = app.user("Adam", "agent", json!({})).await;
    let (unseated, _) = app
        .user("Una", "agent", json!({"help_desk_seat": false}))
        .await;
    let (gone, _) = app.user("Gus", "agent", json!({})).await;
    app.patch(
        &format!("/api/v1/users/{gone}"),
        &app.admin,
        json!({"deactivated": true}),
    )
    .await;
    // Olga books her own time off; admins set Adam away.
    let (status, _) = app
        .post(
            &format!("/api/v1/users/{ooo}/out-of-office"),
            &ooo_token,
            json!({"start": "2026-03-26T00:00:00Z", "end": "2026-04-06T00:00:00Z"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_problem(
        &app.post(
            &format!("/api/v1/users/{away}/out-of-office"),
            &ooo_token,
            json!({"start": "2026-03-26T00:00:00Z", "end": "2026-04-06T00:00:00Z"}),
        )
        .await,
        403,
        None,
    );
    assert_problem(
        &app.post(
            &format!("/api/v1/users/{ooo}/out-of-office"),
            &ooo_token,
            json!({"start": "2026-04-06T00:00:00Z", "end": "2026-03-26T00:00:00Z"}),
        )
        .await,
        422,
        Some("end"),
    );
    app.put(
        &format!("/api/v1/users/{away}/availability"),
        &app.admin,
        json!({"status": "away", "until": "2026-03-27T12:00:00Z"}),
    )
    .await;
    let ch = channel(
        &app,
        "email",
        json!({"assign_to": "users_and_teams", "users": [ooo, away, unseated, gone]}),
    )
    .await;
    let t = create(&app, ch, json!({})).await;
    assert_eq!(owner(&t), None);
    let report = explain(&app, &t).await;
    assert_eq!(verdict_of(&report, ooo)["reason"], "out_of_office");
    assert_eq!(verdict_of(&report, ooo)["until"], "2026-04-06T00:00:00Z");
    assert_eq!(
        (
            verdict_of(&report, away)["reason"].as_str(),
            verdict_of(&report, away)["until"].as_str()
        ),
        (Some("manual"), Some("2026-03-27T12:00:00Z"))
    );
    assert_eq!(verdict_of(&report, unseated)["verdict"], "not_seated");
    assert_eq!(verdict_of(&report, gone)["verdict"], "deactivated");
    assert!(
        report["decisions"][0]["explanation"]["summary"]
            .as_str()
            .unwrap()
            .contains("nobody is eligible")
    );
    let (_, state) = app
        .get(&format!("/api/v1/users/{away}/availability"), &app.admin)
        .await;
    assert_eq!(state["now"]["status"], "away");
}

async fn team_only_shows_in_the_team_views() {
    let (app, _) = app_at(FRIDAY).await;
    let (_, team) = app
        .post("/api/v1/teams", &app.admin, json!({"name": "Billing"}))
        .await;
    let (_, ana) = app
        .user("Ana", "agent", json!({"main_team_id": team["id"]}))
        .await;
    let (_, empty) = app
        .post("/api/v1/teams", &app.admin, json!({"name": "Empty"}))
        .await;
    let ch = channel(
        &app,
        "form",
        json!({"assign_to": "team_only", "teams": [team["id"]]}),
    )
    .await;
    let t = create(&app, ch, json!({})).await;
    assert_eq!(
        (owner(&t), t["owner"]["team_id"].clone()),
        (None, team["id"].clone())
    );
    let (_, view) = app.get("/api/v1/tickets?view=team_unassigned", &ana).await;
    assert_eq!(TestApp::ids(&view), vec![t["id"].as_i64().unwrap()]);
    let (_, view) = app.get("/api/v1/tickets?view=team_open", &ana).await;
    assert_eq!(TestApp::ids(&view).len(), 1);
    let ch2 = channel(
        &app,
        "form",
        json!({"assign_to": "team_only", "teams": [empty["id"]]}),
    )
    .await;
    let t2 = create(&app, ch2, json!({})).await;
    assert_eq!(
        t2["owner"]["team_id"],
        Value::Null,
        "a team without a seated member is never a target"
    );
    assert_problem(
        &app.patch(
            &format!("/api/v1/channels/{ch}"),
            &app.admin,
            json!({"routing": {"assign_to": "team_only", "teams": []}}),
        )
        .await,
        422,
        Some("routing.teams"),
    );
    assert_problem(
        &app.patch(
            &format!("/api/v1/channels/{ch}"),
            &app.admin,
            json!({"routing": {"assign_to": "sideways"}}),
        )
        .await,
        422,
        Some("routing.assign_to"),
    );
}

async fn contact_owner_needs_a_known_visitor_on_forms() {
    let (app, _) = app_at(FRIDAY).await;
    let (ana, ana_token) = app.user("Ana", "agent", json!({})).await;
    let (bob, _) = app.user("Bob", "agent", json!({})).await;
    app.post(
        "/api/v1/contacts",
        &app.admin,
        json!({"email": "cleo@x.example", "owner_user_id": ana, "visitor_tokens": ["utk-cleo"]}),
    )
    .await;
    let rule = json!({"assign_to": "contact_owner", "fallback": {"assign_to": "users_and_teams", "users": [bob]}});
    let form = channel(&app, "form", rule.clone()).await;
    let known = create(&app, form, json!({"visitor_token": "utk-cleo"})).await;
    assert_eq!(owner(&known), Some(ana));
    let unknown = create(
        &app,
        form,
        json!({"visitor_token": "utk-stranger", "contact": {"email": "cleo@x.example"}}),
    )
    .await;
    assert_eq!(
        owner(&unknown),
        Some(bob),
        "no known tracking cookie: the fallback applies"
    );
    let branch = explain(&app, &unknown).await["decisions"][0]["explanation"]["branch"].clone();
    assert!(branch.to_string().contains("not identified"), "{branch}");
    // E-mail needs no cookie.
    let email = channel(&app, "email", rule).await;
    assert_eq!(
        owner(&create(&app, email, json!({"contact": {"email": "cleo@x.example"}})).await),
        Some(ana)
    );
    // Owner away with only_available: fallback; without: assigned anyway.
    app.put(
        &format!("/api/v1/users/{ana}/availability"),
        &app.admin,
        json!({"status": "away"}),
    )
    .await;
    assert_eq!(
        owner(&create(&app, email, json!({"contact": {"email": "cleo@x.example"}})).await),
        Some(bob)
    );
    let lenient = channel(
        &app,
        "email",
        json!({"assign_to": "contact_owner", "only_available": false}),
    )
    .await;
    let t = create(
        &app,
        lenient,
        json!({"contact": {"email": "cleo@x.example"}}),
    )
    .await;
    assert_eq!(owner(&t), Some(ana));
    assert!(
        explain(&app, &t)
            .await
            .to_string()
            .contains("assigned anyway and notified")
    );
    let (_, told) = app.get("/api/v1/notifications", &ana_token).await;
    assert_eq!(told["items"][0]["topic"], "assigned_to_me");
    assert_eq!(told["items"][0]["ticket_id"], t["id"]);
    assert!(
        told["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["topic"] == "assigned_to_me")
            .count()
            >= 2,
        "routed tickets are announced too"
    );
}

async fn optional_skills_relax_after_the_configured_wait() {
    let (app, clock) = app_at(FRIDAY).await;
    let (_, skills) = app.get("/api/v1/skills", &app.admin).await;
    let french = skills["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "French")
        .unwrap()["id"]
        .clone();
    let (ana, _) = app.user("Ana", "agent", json!({})).await;
    let (fr, _) = app
        .user("Fleur", "agent", json!({"skill_ids": [french]}))
        .await;
    let ch = channel(&app, "email", json!({
        "assign_to": "users_and_teams", "users": [ana],
        "skills": [{"property": "language", "equals": "fr", "skill_id": french, "optional": true}],
        "relax_after_seconds": 60
    })).await;
    let t = create(&app, ch, json!({"properties": {"language": "fr"}})).await;
    assert_eq!(owner(&t), None);
    assert_eq!(verdict_of(&explain(&app, &t).await, ana)["skill"], "French");
    clock.advance(SignedDuration::from_secs(61));
    assert!(app.store.run_due_jobs().await.unwrap() >= 1);
    let report = explain(&app, &t).await;
    assert_eq!(report["decisions"][1]["trigger"], "skill_relaxation");
    let (_, now) = app
        .get(&format!("/api/v1/tickets/{}", t["id"]), &app.admin)
        .await;
    assert_eq!(owner(&now), Some(ana));
    // A French speaker in the pool gets such tickets at once.
    let ch2 = channel(&app, "email", json!({"assign_to": "users_and_teams", "users": [ana, fr], "skills": [{"property": "language", "equals": "fr", "skill_id": french}]})).await;
    assert_eq!(
        owner(&create(&app, ch2, json!({"properties": {"language": "FR"}})).await),
        Some(fr)
    );
}

async fn capacity_limits_skip_full_users_but_not_manual_assignment() {
    let (app, _) = app_at(FRIDAY).await;
    let (ana, _) = app
        .user("Ana", "agent", json!({"capacity": {"total": 1}}))
        .await;
    let (bob, _) = app
        .user("Bob", "agent", json!({"capacity": {"email_other": 1}}))
        .await;
    let ch = channel(
        &app,
        "email",
        json!({"assign_to": "users_and_teams", "users": [ana, bob]}),
    )
    .await;
    let first = owner(&create(&app, ch, json!({})).await).unwrap();
    let second = owner(&create(&app, ch, json!({})).await).unwrap();
    assert_ne!(first, second);
    let full = create(&app, ch, json!({})).await;
    assert_eq!(owner(&full), None);
    let v = verdict_of(&explain(&app, &full).await, ana);
    assert_eq!(
        (
            v["verdict"].as_str(),
            v["open"].as_i64(),
            v["limit"].as_i64()
        ),
        (Some("at_capacity"), Some(1), Some(1))
    );
    let (status, t) = app
        .put(
            &format!("/api/v1/tickets/{}/owner", full["id"]),
            &app.admin,
            json!({"user_id": ana}),
        )
        .await;
    assert_eq!(
        (status, owner(&t)),
        (StatusCode::OK, Some(ana)),
        "manual assignment may exceed the limit"
    );
    no_drift(&app).await;
}

async fn the_waiting_queue_drains_when_someone_comes_back() {
    let (app, clock) = app_at(FRIDAY).await;
    let (ana, ana_token) = app.user("Ana", "agent", json!({})).await;
    app.put(
        &format!("/api/v1/users/{ana}/availability"),
        &ana_token,
        json!({"status": "away", "until": "2026-03-27T11:00:00Z"}),
    )
    .await;
    let ch = channel(
        &app,
        "email",
        json!({"assign_to": "users_and_teams", "users": [ana], "waiting_queue": true}),
    )
    .await;
    let low = create(&app, ch, json!({"priority": "low"})).await;
    let urgent = create(&app, ch, json!({"priority": "urgent"})).await;
    assert_eq!((owner(&low), owner(&urgent)), (None, None));
    let (_, unassigned) = app.get("/api/v1/tickets?view=unassigned", &app.admin).await;
    assert_eq!(
        TestApp::ids(&unassigned).len(),
        2,
        "waiting tickets stay visible in Unassigned"
    );
    // Her manual status expires at 11:00: the scheduler brings her back.
    clock.set("2026-03-27T11:00:01Z".parse().unwrap());
    assert!(app.store.run_due_jobs().await.unwrap() >= 1);
    for t in [&low, &urgent] {
        let (_, now) = app
            .get(&format!("/api/v1/tickets/{}", t["id"]), &app.admin)
            .await;
        assert_eq!(owner(&now), Some(ana));
    }
    let (_, u) = app
        .get(&format!("/api/v1/tickets/{}", urgent["id"]), &app.admin)
        .await;
    let (_, l) = app
        .get(&format!("/api/v1/tickets/{}", low["id"]), &app.admin)
        .await;
    assert!(
        u["assigned_at"].as_str() <= l["assigned_at"].as_str(),
        "highest priority first"
    );
    assert_eq!(
        explain(&app, &low).await["decisions"][1]["trigger"],
        "waiting_queue"
    );
    // Without the queue (HubSpot's default), a ticket is never retried.
    app.put(
        &format!("/api/v1/users/{ana}/availability"),
        &ana_token,
        json!({"status": "away"}),
    )
    .await;
    let plain = channel(
        &app,
        "email",
        json!({"assign_to": "users_and_teams", "users": [ana]}),
    )
    .await;
    let t = create(&app, plain, json!({})).await;
    app.put(
        &format!("/api/v1/users/{ana}/availability"),
        &ana_token,
        json!({"status": "auto"}),
    )
    .await;
    let (_, still) = app
        .get(&format!("/api/v1/tickets/{}", t["id"]), &app.admin)
        .await;
    assert_eq!(owner(&still), None);
    no_drift(&app).await;
}

async fn rebalance_on_away_reroutes_unanswered_tickets() {
    let (app, _) = app_at(FRIDAY).await;
    let (ana, ana_token) = app.user("Ana", "agent", json!({})).await;
    let (bob, _) = app.user("Bob", "agent", json!({})).await;
    let ch = channel(&app, "email", json!({"assign_to": "users_and_teams", "users": [ana, bob], "distribution": "round_robin", "rebalance_on_away": true})).await;
    let a = create(&app, ch, json!({})).await;
    let b = create(&app, ch, json!({})).await;
    let (of_ana, answered) = if owner(&a) == Some(ana) {
        (a, b)
    } else {
        (b, a)
    };
    // Ana answers nothing; Bob's ticket gets a reply, so it stays.
    let other = owner(&answered).unwrap();
    assert_eq!(other, bob);
    app.post(
        &format!("/api/v1/tickets/{}/messages", answered["id"]),
        &app.admin,
        json!({"kind": "reply", "body": "hi"}),
    )
    .await;
    app.put(
        &format!("/api/v1/users/{ana}/availability"),
        &ana_token,
        json!({"status": "away"}),
    )
    .await;
    let (_, moved) = app
        .get(&format!("/api/v1/tickets/{}", of_ana["id"]), &app.admin)
        .await;
    assert_eq!(owner(&moved), Some(bob));
    let reasons: Vec<String> = explain(&app, &moved).await["owner_changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["event"]["reason"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(reasons, ["routing", "rebalance_on_away", "routing"]);
    no_drift(&app).await;
}

async fn a_thousand_concurrent_creates_balance_within_one() {
    let (app, _) = app_at(FRIDAY).await;
    let mut users = Vec::new();
    for i in 0..10 {
        users.push(app.user(&format!("Agent{i}"), "agent", json!({})).await.0);
    }
    let ch = channel(
        &app,
        "email",
        json!({"assign_to": "users_and_teams", "users": users}),
    )
    .await;
    let app = Arc::new(app);
    let mut tasks = Vec::new();
    for _ in 0..1000 {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            owner(&create(&app, ch, json!({})).await).unwrap()
        }));
    }
    let mut counts: BTreeMap<i64, u32> = BTreeMap::new();
    for t in tasks {
        *counts.entry(t.await.unwrap()).or_default() += 1;
    }
    assert_eq!(
        counts.values().sum::<u32>(),
        1000,
        "every ticket owned exactly once"
    );
    let (min, max) = (
        counts.values().min().unwrap(),
        counts.values().max().unwrap(),
    );
    assert!(max - min <= 1, "loads {counts:?}");
    no_drift(&app).await;
    let _ = Timestamp::now();
}

async fn nobody_and_customer_agent_rules() {
    let (app, _) = app_at(FRIDAY).await;
    let (ana, _) = app.user("Ana", "agent", json!({})).await;
    let nobody = channel(&app, "whatsapp", json!({"assign_to": "nobody"})).await;
    let t = create(&app, nobody, json!({})).await;
    assert_eq!((owner(&t), t["type"].as_str()), (None, Some("message")));
    assert!(
        explain(&app, &t).await["decisions"][0]["explanation"]["summary"]
            .as_str()
            .unwrap()
            .contains("assigns nobody")
    );
    // Until the AI agent lands, the customer agent's fallback applies.
    let agent = channel(&app, "email", json!({"assign_to": "customer_agent", "fallback": {"assign_to": "users_and_teams", "users": [ana]}})).await;
    let t = create(&app, agent, json!({})).await;
    assert_eq!(owner(&t), Some(ana));
    assert!(
        explain(&app, &t)
            .await
            .to_string()
            .contains("fallback: users and teams")
    );
    let agent_nobody = channel(
        &app,
        "email",
        json!({"assign_to": "customer_agent", "fallback": {"assign_to": "nobody"}}),
    )
    .await;
    assert_eq!(owner(&create(&app, agent_nobody, json!({})).await), None);
    assert_problem(&app.patch(&format!("/api/v1/channels/{nobody}"), &app.admin, json!({"routing": {"assign_to": "users_and_teams", "fallback": {"assign_to": "nobody"}, "users": [ana]}})).await, 422, Some("routing.fallback"));
}

async fn teams_and_channels_keep_office_hours() {
    let (app, _) = app_at(FRIDAY).await;
    let (_, team) = app
        .post("/api/v1/teams", &app.admin, json!({"name": "Phones"}))
        .await;
    let hours = json!({"time_zone": "America/New_York", "hours": [{"day": "monday", "start": "09:00", "end": "17:00"}], "holidays": ["2026-12-25"]});
    let (status, team) = app
        .patch(
            &format!("/api/v1/teams/{}", team["id"]),
            &app.admin,
            json!({"office_hours": hours}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{team}");
    assert_eq!(team["office_hours"]["time_zone"], "America/New_York");
    assert_eq!(
        team["office_hours"]["hours"][0]["start"], "09:00:00",
        "times come back as HH:MM:SS"
    );
    let ch = channel(&app, "calls", json!({"assign_to": "nobody"})).await;
    let (_, ch) = app
        .patch(
            &format!("/api/v1/channels/{ch}"),
            &app.admin,
            json!({"office_hours": hours}),
        )
        .await;
    assert_eq!(ch["office_hours"]["holidays"], json!(["2026-12-25"]));
    let bad = json!({"office_hours": {"time_zone": "Nowhere/Land", "hours": []}});
    assert_problem(
        &app.patch(&format!("/api/v1/channels/{}", ch["id"]), &app.admin, bad)
            .await,
        422,
        Some("office_hours.time_zone"),
    );
}

async fn the_scheduler_follows_shift_starts_and_out_of_office_starts() {
    // Friday 2026-03-27 06:00 UTC is 07:00 in Paris, before Ana's 09:00 shift.
    let (app, clock) = app_at("2026-03-27T06:00:00Z").await;
    let (ana, ana_token) = app
        .user("Ana", "agent", json!({"time_zone": "Europe/Paris"}))
        .await;
    let (bob, _) = app.user("Bob", "agent", json!({})).await;
    let shifts = json!({"shifts": [{"day": "friday", "start": "09:00", "end": "17:00"}]});
    app.put(
        &format!("/api/v1/users/{ana}/working-hours"),
        &ana_token,
        shifts,
    )
    .await;
    let queue = channel(
        &app,
        "email",
        json!({"assign_to": "users_and_teams", "users": [ana], "waiting_queue": true}),
    )
    .await;
    let waiting = create(&app, queue, json!({})).await;
    assert_eq!(owner(&waiting), None);
    // 09:00 Paris = 08:00 UTC: the shift-start job drains the queue.
    clock.set("2026-03-27T08:00:00Z".parse().unwrap());
    assert!(app.store.run_due_jobs().await.unwrap() >= 1);
    let (_, now) = app
        .get(&format!("/api/v1/tickets/{}", waiting["id"]), &app.admin)
        .await;
    assert_eq!(owner(&now), Some(ana));
    // Bob books time off starting at noon; at noon his unanswered tickets move.
    let (_, bob_token) = app
        .post(
            &format!("/api/v1/users/{bob}/tokens"),
            &app.admin,
            json!({}),
        )
        .await;
    let rebalancing = channel(
        &app,
        "email",
        json!({"assign_to": "users_and_teams", "users": [ana, bob], "rebalance_on_away": true}),
    )
    .await;
    let mut bobs = None;
    for _ in 0..2 {
        let t = create(&app, rebalancing, json!({})).await;
        if owner(&t) == Some(bob) {
            bobs = Some(t);
        }
    }
    let bobs = bobs.expect("load balancing gave Bob one of the two");
    app.post(
        &format!("/api/v1/users/{bob}/out-of-office"),
        bob_token["token"].as_str().unwrap(),
        json!({"start": "2026-03-27T12:00:00Z", "end": "2026-03-30T00:00:00Z"}),
    )
    .await;
    let (_, before) = app
        .get(&format!("/api/v1/tickets/{}", bobs["id"]), &app.admin)
        .await;
    assert_eq!(
        owner(&before),
        Some(bob),
        "not yet: the range starts at noon"
    );
    clock.set("2026-03-27T12:00:00Z".parse().unwrap());
    assert!(app.store.run_due_jobs().await.unwrap() >= 1);
    let (_, after) = app
        .get(&format!("/api/v1/tickets/{}", bobs["id"]), &app.admin)
        .await;
    assert_eq!(owner(&after), Some(ana));
    no_drift(&app).await;
}

/// Each channel kind takes the rule kinds that make sense for it.
async fn channel_kinds_take_their_rule_kinds() {
    let (app, _) = app_at(FRIDAY).await;
    let (ana, _) = app.user("Ana", "agent", json!({})).await;
    let try_rule = |kind: &'static str, rule: Value| {
        let app = &app;
        async move {
            let (_, ch) = app
                .post(
                    "/api/v1/channels",
                    &app.admin,
                    json!({"kind": kind, "name": kind}),
                )
                .await;
            app.patch(
                &format!("/api/v1/channels/{}", ch["id"]),
                &app.admin,
                json!({"routing": rule}),
            )
            .await
        }
    };
    let agent = json!({"assign_to": "customer_agent", "fallback": {"assign_to": "nobody"}});
    let owner = json!({"assign_to": "contact_owner"});
    assert_eq!(try_rule("email", agent.clone()).await.0, StatusCode::OK);
    assert_eq!(try_rule("whatsapp", agent.clone()).await.0, StatusCode::OK);
    assert_eq!(try_rule("form", owner.clone()).await.0, StatusCode::OK);
    assert_problem(
        &try_rule("form", agent).await,
        422,
        Some("routing.assign_to"),
    );
    assert_eq!(try_rule("chat", owner.clone()).await.0, StatusCode::OK);
    assert_problem(
        &try_rule("chat", json!({"assign_to": "team_only", "teams": [1]})).await,
        422,
        Some("routing.assign_to"),
    );
    assert_problem(
        &try_rule("calls", owner).await,
        422,
        Some("routing.assign_to"),
    );
    let users = json!({"assign_to": "users_and_teams", "users": [ana]});
    assert_eq!(try_rule("calls", users.clone()).await.0, StatusCode::OK);
    assert_eq!(try_rule("chat", users).await.0, StatusCode::OK);
}

on_both_backends!(
    channel_kinds_take_their_rule_kinds,
    load_balanced_routes_inline_to_main_team_members_and_explains,
    round_robin_gives_everyone_one_before_anyone_a_second,
    random_reaches_every_eligible_user,
    working_hours_follow_the_users_zone_across_dst,
    out_of_office_manual_away_and_seats_are_verdicts,
    team_only_shows_in_the_team_views,
    contact_owner_needs_a_known_visitor_on_forms,
    optional_skills_relax_after_the_configured_wait,
    capacity_limits_skip_full_users_but_not_manual_assignment,
    the_waiting_queue_drains_when_someone_comes_back,
    rebalance_on_away_reroutes_unanswered_tickets,
    a_thousand_concurrent_creates_balance_within_one,
    nobody_and_customer_agent_rules,
    teams_and_channels_keep_office_hours,
    the_scheduler_follows_shift_starts_and_out_of_office_starts,
);
