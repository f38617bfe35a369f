//! Phone calls through Twilio-shaped voice webhooks over real HTTP, with an
//! injected clock for office hours: signatures (good, bad, missing, with
//! and without the port, behind a public URL), the TwiML for ringing the
//! eligible users in hours, voicemail after hours and when nobody answers,
//! the owner set by the answered callbacks, the voicemail recording stored
//! once, and a retried call webhook opening no second ticket.

#[macro_use]
mod common;

use std::sync::Arc;

use base64::{Engine as _, engine::general_purpose::STANDARD};
use common::{TestApp, assert_problem, spawn_app_with_clock};
use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha1::Sha1;
use switchboard_domain::{AccountId, FixedClock, MessageId};

const AUTH_TOKEN: &str = "twilio-auth-token";
/// Friday 2026-03-27 10:00 UTC: 11:00 in Paris, inside office hours.
const FRIDAY_MORNING: &str = "2026-03-27T10:00:00Z";
/// Saturday 2026-03-28 10:00 UTC: the office is closed.
const SATURDAY: &str = "2026-03-28T10:00:00Z";
const CALLER: &str = "+33612345678";

async fn app_at(at: &str) -> TestApp {
    spawn_app_with_clock(Arc::new(FixedClock::new(at.parse().unwrap()))).await
}

fn office_hours() -> Value {
    let days = ["monday", "tuesday", "wednesday", "thursday", "friday"];
    json!({"time_zone": "Europe/Paris",
           "hours": days.iter().map(|d| json!({"day": d, "start": "09:00", "end": "17:00"})).collect::<Vec<_>>()})
}

/// Creates a calls channel with `settings` (the auth token is added),
/// `routing` and office hours; returns its key.
async fn channel(app: &TestApp, mut settings: Value, routing: Value) -> String {
    settings["secrets"] = json!({"auth_token": AUTH_TOKEN});
    let (status, ch) = app
        .post(
            "/api/v1/channels",
            &app.admin,
            json!({"kind": "calls", "name": "Support line", "settings": settings}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{ch}");
    let mut patch = json!({"office_hours": office_hours()});
    if !routing.is_null() {
        patch["routing"] = routing;
    }
    let (status, body) = app
        .patch(&format!("/api/v1/channels/{}", ch["id"]), &app.admin, patch)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    ch["key"].as_str().unwrap().to_owned()
}

/// Percent-encodes a form component (spaces as `+`, like Twilio).
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b' ' => "+".into(),
            b => format!("%{b:02X}"),
        })
        .collect()
}

/// Twilio's signature, computed here rather than with the code under test:
/// base64(HMAC-SHA1(token, url + names and values sorted by name)).
fn twilio_signature(token: &str, url: &str, params: &[(&str, &str)]) -> String {
    let mut sorted = params.to_vec();
    sorted.sort();
    let mut mac = Hmac::<Sha1>::new_from_slice(token.as_bytes()).unwrap();
    mac.update(url.as_bytes());
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    STANDARD.encode(mac.finalize().into_bytes())
}

/// How a test request is signed.
enum Signed<'a> {
    /// Over the URL exactly as requested (with the port).
    Correctly,
    /// Over this URL instead.
    Over(&'a str),
    /// With another auth token.
    WrongToken,
    /// Not at all.
    Unsigned,
}

/// Posts `params` as a form to `/webhooks/twilio/{key}/{hook}`.
async fn twilio(
    app: &TestApp,
    key: &str,
    hook: &str,
    params: &[(&str, &str)],
    signed: Signed<'_>,
) -> (StatusCode, String) {
    let url = format!("{}/webhooks/twilio/{key}/{hook}", app.base);
    let body: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    let mut req = app
        .client
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.join("&"));
    let signature = match signed {
        Signed::Correctly => Some(twilio_signature(AUTH_TOKEN, &url, params)),
        Signed::Over(other) => Some(twilio_signature(AUTH_TOKEN, other, params)),
        Signed::WrongToken => Some(twilio_signature("guessed", &url, params)),
        Signed::Unsigned => None,
    };
    if let Some(s) = signature {
        req = req.header("x-twilio-signature", s);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    if status == StatusCode::OK {
        let ct = res.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(ct.starts_with("text/xml"), "{ct}");
    }
    (status, res.text().await.unwrap())
}

/// The parameters of an incoming call.
fn call(sid: &str) -> Vec<(&str, &str)> {
    vec![
        ("AccountSid", "AC0123456789abcdef0123456789abcdef"),
        ("ApiVersion", "2010-04-01"),
        ("CallSid", sid),
        ("CallStatus", "ringing"),
        ("Called", "+18005551212"),
        ("Caller", CALLER),
        ("Direction", "inbound"),
        ("From", CALLER),
        ("FromCountry", "FR"),
        ("To", "+18005551212"),
    ]
}

async fn tickets(app: &TestApp) -> Vec<Value> {
    let (status, page) = app.get("/api/v1/tickets", &app.admin).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["items"].as_array().unwrap().clone()
}

async fn messages(app: &TestApp, ticket: &Value) -> Vec<Value> {
    let (status, page) = app
        .get(
            &format!("/api/v1/tickets/{}/messages", ticket["id"]),
            &app.admin,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["items"].as_array().unwrap().clone()
}

fn assert_voicemail(twiml: &str, key: &str, message: &str) {
    let expected = format!(
        "<Response><Say>{message}</Say><Record action=\"/webhooks/twilio/{key}/recording\" \
         maxLength=\"120\" timeout=\"5\" playBeep=\"true\" \
         recordingStatusCallback=\"/webhooks/twilio/{key}/recording-status\" \
         recordingStatusCallbackEvent=\"completed absent\"/></Response>"
    );
    assert!(twiml.ends_with(&expected), "{twiml}");
    assert!(!twiml.contains("<Dial"), "{twiml}");
}

/// The client identities and numbers a `<Dial>` rings, in order.
fn rung(twiml: &str) -> Vec<String> {
    twiml
        .split('<')
        .filter(|part| part.starts_with("Client") || part.starts_with("Number"))
        .map(|part| {
            let (tag, rest) = part.split_once([' ', '>']).unwrap();
            let text = rest.rsplit('>').next().unwrap();
            format!("{tag}:{text}")
        })
        .collect()
}

/// Ana (client `ana`), Ben (a phone, through his team), Cy (no identity),
/// Dee (away), Eve (no seat); all targeted. Returns the key and user ids.
async fn help_desk(app: &TestApp, settings: Value) -> (String, [i64; 5]) {
    let (ana, _) = app.user("Ana", "agent", json!({})).await;
    let (ben, _) = app.user("Ben", "agent", json!({})).await;
    let (cy, _) = app.user("Cy", "agent", json!({})).await;
    let (dee, _) = app.user("Dee", "agent", json!({})).await;
    let (eve, _) = app
        .user("Eve", "agent", json!({"help_desk_seat": false}))
        .await;
    let (status, team) = app
        .post(
            "/api/v1/teams",
            &app.admin,
            json!({"name": "Phones", "members": [{"user_id": ben, "main": true}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{team}");
    let (status, body) = app
        .put(
            &format!("/api/v1/users/{dee}/availability"),
            &app.admin,
            json!({"status": "away"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut settings = settings;
    settings["voice_identities"] = json!({
        ana.to_string(): "ana", ben.to_string(): "+15550100002",
        dee.to_string(): "dee", eve.to_string(): "client:eve"});
    let key = channel(
        app,
        settings,
        json!({"assign_to": "users_and_teams", "users": [ana, cy, dee, eve], "teams": [team["id"]]}),
    )
    .await;
    (key, [ana, ben, cy, dee, eve])
}

async fn in_hours_a_call_rings_the_eligible_users_once() {
    let app = app_at(FRIDAY_MORNING).await;
    let (key, [ana, ben, cy, ..]) = help_desk(&app, json!({"ring_timeout": 25})).await;
    let (status, twiml) = twilio(&app, &key, "voice", &call("CA100"), Signed::Correctly).await;
    assert_eq!(status, StatusCode::OK, "{twiml}");
    assert!(
        twiml.contains(&format!(
            "<Dial action=\"/webhooks/twilio/{key}/dial-status\" timeout=\"25\" answerOnBridge=\"true\">"
        )),
        "{twiml}"
    );
    // Ana and Ben; not Cy (no identity), Dee (away) or Eve (no seat).
    let mut nouns = rung(&twiml);
    nouns.sort();
    assert_eq!(nouns, ["Client:ana", "Number:+15550100002"], "{twiml}");
    // Each leg reports who answered.
    assert!(twiml.contains(&format!(
        "<Client statusCallbackEvent=\"answered\" statusCallback=\"/webhooks/twilio/{key}/answered\">ana</Client>"
    )));

    let all = tickets(&app).await;
    assert_eq!(all.len(), 1);
    let t = &all[0];
    assert_eq!(t["type"], "calls");
    assert_eq!(t["source"], "calls");
    assert_eq!(t["subject"], format!("Call from {CALLER}"));
    // Routed by the channel's rule among the eligible targets; the routed
    // owner rings first.
    let owner = t["owner"]["user_id"].as_i64().unwrap();
    assert!([ana, ben, cy].contains(&owner), "{t}");
    let (_, contact) = app
        .get(&format!("/api/v1/contacts/{}", t["contact_id"]), &app.admin)
        .await;
    assert_eq!(contact["phone"], CALLER);
    let msgs = messages(&app, t).await;
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0]["external_id"], "CA100");
    assert_eq!(
        msgs[0]["body"],
        format!("Incoming call from {CALLER} to +18005551212.")
    );

    // Twilio retries the webhook: the same answer, no second ticket.
    let (status, again) = twilio(&app, &key, "voice", &call("CA100"), Signed::Correctly).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again, twiml);
    assert_eq!(tickets(&app).await.len(), 1);
    assert_eq!(messages(&app, t).await.len(), 1);
    // Another call is another ticket.
    twilio(&app, &key, "voice", &call("CA101"), Signed::Correctly).await;
    assert_eq!(tickets(&app).await.len(), 2);
}

async fn signatures_are_checked_on_every_hook() {
    let app = app_at(FRIDAY_MORNING).await;
    let (key, _) = help_desk(&app, json!({})).await;
    for signed in [
        Signed::WrongToken,
        Signed::Unsigned,
        Signed::Over("http://evil.example/voice"),
    ] {
        let (status, body) = twilio(&app, &key, "voice", &call("CA200"), signed).await;
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_problem(&(status, body), 401, None);
    }
    // A signed request whose parameters were changed afterwards.
    let url = format!("{}/webhooks/twilio/{key}/voice", app.base);
    let signature = twilio_signature(AUTH_TOKEN, &url, &call("CA200"));
    let res = app
        .client
        .post(&url)
        .header("x-twilio-signature", signature)
        .body("CallSid=CA200&From=%2B33699999999")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(tickets(&app).await.is_empty());

    // Twilio may sign the URL without the port.
    let portless = url.replace(&format!(":{}", app.base.rsplit(':').next().unwrap()), "");
    assert_ne!(portless, url);
    let (status, _) = twilio(&app, &key, "voice", &call("CA200"), Signed::Over(&portless)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(tickets(&app).await.len(), 1);

    // The callbacks are checked too: a forged "answered" changes nothing.
    let before = tickets(&app).await[0]["owner"].clone();
    let forged = [
        ("CallSid", "CA200"),
        ("DialCallStatus", "completed"),
        ("To", "client:ana"),
    ];
    let (status, _) = twilio(&app, &key, "dial-status", &forged, Signed::WrongToken).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let recording = [
        ("CallSid", "CA200"),
        ("RecordingUrl", "https://api.twilio.com/Recordings/RE1"),
        ("RecordingDuration", "3"),
    ];
    let (status, _) = twilio(&app, &key, "recording", &recording, Signed::Unsigned).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let t = &tickets(&app).await[0];
    assert_eq!(t["owner"], before);
    assert_eq!(messages(&app, t).await.len(), 1);

    // A key that is no calls channel.
    let (status, _) = twilio(&app, "nope", "voice", &call("CA201"), Signed::Correctly).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn behind_a_public_url_that_url_is_signed() {
    let app = app_at(FRIDAY_MORNING).await;
    let (key, _) = help_desk(&app, json!({"public_url": "https://sb.example.com/"})).await;
    let public = format!("https://sb.example.com/webhooks/twilio/{key}/voice");
    let (status, twiml) = twilio(&app, &key, "voice", &call("CA300"), Signed::Over(&public)).await;
    assert_eq!(status, StatusCode::OK, "{twiml}");
    let with_port = format!("https://sb.example.com:443/webhooks/twilio/{key}/voice");
    let (status, _) = twilio(
        &app,
        &key,
        "voice",
        &call("CA300"),
        Signed::Over(&with_port),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // The local URL is not what Twilio signs any more.
    let (status, _) = twilio(&app, &key, "voice", &call("CA301"), Signed::Correctly).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(tickets(&app).await.len(), 1);
}

async fn after_hours_the_caller_gets_voicemail() {
    let app = app_at(SATURDAY).await;
    let message = "We're closed <until Monday> & back at 9.";
    let (key, _) = help_desk(&app, json!({"voicemail_message": message})).await;
    let (status, twiml) = twilio(&app, &key, "voice", &call("CA400"), Signed::Correctly).await;
    assert_eq!(status, StatusCode::OK);
    assert_voicemail(
        &twiml,
        &key,
        "We&apos;re closed &lt;until Monday&gt; &amp; back at 9.",
    );
    // The call is a ticket all the same.
    let all = tickets(&app).await;
    assert_eq!(all.len(), 1);
    assert_eq!(all[0]["type"], "calls");
}

async fn nobody_to_ring_or_nobody_answering_means_voicemail() {
    let app = app_at(FRIDAY_MORNING).await;
    // In hours but no routing rule: nobody to ring.
    let key = channel(&app, json!({}), Value::Null).await;
    let (_, twiml) = twilio(&app, &key, "voice", &call("CA500"), Signed::Correctly).await;
    assert_voicemail(
        &twiml,
        &key,
        "Sorry, nobody can take your call right now. Please leave a message after the tone, and we will call you back.",
    );

    let (key, _) = help_desk(&app, json!({})).await;
    let (_, twiml) = twilio(&app, &key, "voice", &call("CA501"), Signed::Correctly).await;
    assert!(twiml.contains("<Dial"), "{twiml}");
    for status in ["no-answer", "busy", "failed"] {
        let params = [
            ("CallSid", "CA501"),
            ("CallStatus", "in-progress"),
            ("DialCallStatus", status),
            ("DialCallSid", "CA9999"),
            ("From", CALLER),
            ("To", "+18005551212"),
        ];
        let (code, twiml) = twilio(&app, &key, "dial-status", &params, Signed::Correctly).await;
        assert_eq!(code, StatusCode::OK);
        assert_voicemail(
            &twiml,
            &key,
            "Sorry, nobody can take your call right now. Please leave a message after the tone, and we will call you back.",
        );
    }
}

/// The old ring list checked seat and availability only; ringing now uses
/// the routing engine's checks, so an agent at capacity is not rung, and
/// the legs come in the engine's order (the routed owner first).
async fn an_agent_at_capacity_is_not_rung() {
    let app = app_at(FRIDAY_MORNING).await;
    let (ana, _) = app
        .user("Ana", "agent", json!({"capacity": {"calls": 1}}))
        .await;
    let (ben, _) = app.user("Ben", "agent", json!({})).await;
    let (cy, _) = app.user("Cy", "agent", json!({})).await;
    let settings = json!({"voice_identities": {
        ana.to_string(): "ana", ben.to_string(): "ben", cy.to_string(): "cy"}});
    let key = channel(
        &app,
        settings,
        json!({"assign_to": "users_and_teams", "users": [ana, ben, cy],
               "distribution": "load_balanced"}),
    )
    .await;
    // Nobody loaded yet: Ana (lowest id) gets the first call and rings
    // first; the others are still eligible.
    let (_, twiml) = twilio(&app, &key, "voice", &call("CA700"), Signed::Correctly).await;
    assert_eq!(
        rung(&twiml),
        ["Client:ana", "Client:ben", "Client:cy"],
        "{twiml}"
    );
    // Ana now holds one open call, her limit: the next call goes to Ben and
    // does not ring her.
    let (_, twiml) = twilio(&app, &key, "voice", &call("CA701"), Signed::Correctly).await;
    assert_eq!(rung(&twiml), ["Client:ben", "Client:cy"], "{twiml}");
    let newest = &tickets(&app).await[0];
    assert_eq!(newest["owner"]["user_id"], ben, "{newest}");
}

/// Unassigns the newest ticket (so the callbacks' effect is visible
/// whoever routing picked) and returns its id.
async fn unassign_newest(app: &TestApp) -> i64 {
    let id = tickets(app).await[0]["id"].as_i64().unwrap();
    let (status, t) = app
        .put(
            &format!("/api/v1/tickets/{id}/owner"),
            &app.admin,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{t}");
    assert_eq!(t["owner"]["user_id"], Value::Null);
    id
}

/// The ticket's owner user and the last history line.
async fn owner_and_last_event(app: &TestApp, id: i64) -> (Value, Value) {
    let (_, t) = app.get(&format!("/api/v1/tickets/{id}"), &app.admin).await;
    let (_, history) = app
        .get(&format!("/api/v1/tickets/{id}/history"), &app.admin)
        .await;
    let last = history["items"].as_array().unwrap().last().unwrap().clone();
    (t["owner"]["user_id"].clone(), last)
}

async fn whoever_answers_owns_the_call() {
    let app = app_at(FRIDAY_MORNING).await;
    let (key, [ana, ben, ..]) = help_desk(&app, json!({})).await;
    twilio(&app, &key, "voice", &call("CA600"), Signed::Correctly).await;
    let first = unassign_newest(&app).await;
    // The dial ends answered by Ana's client leg.
    let params = [
        ("CallSid", "CA600"),
        ("DialCallStatus", "completed"),
        ("DialCallSid", "CA601"),
        ("DialCallDuration", "65"),
        ("Called", "client:ana"),
        ("To", "client:ana"),
    ];
    let (status, twiml) = twilio(&app, &key, "dial-status", &params, Signed::Correctly).await;
    assert_eq!(status, StatusCode::OK);
    assert!(twiml.ends_with("<Response/>"), "{twiml}");
    let (owner, last) = owner_and_last_event(&app, first).await;
    assert_eq!(owner, ana);
    assert_eq!(last["event"]["type"], "owner_changed", "{last}");
    assert_eq!(last["actor"]["kind"], "system", "{last}");

    // Another call, picked up on Ben's phone: the leg's answered event
    // names his number.
    twilio(&app, &key, "voice", &call("CA700"), Signed::Correctly).await;
    let second = unassign_newest(&app).await;
    let params = [
        ("CallSid", "CA701"),
        ("ParentCallSid", "CA700"),
        ("CallStatus", "in-progress"),
        ("Direction", "outbound-dial"),
        ("From", "+18005551212"),
        ("To", "+15550100002"),
    ];
    let (status, _) = twilio(&app, &key, "answered", &params, Signed::Correctly).await;
    assert_eq!(status, StatusCode::OK);
    let (owner, last) = owner_and_last_event(&app, second).await;
    assert_eq!(owner, ben);
    assert_eq!(last["event"]["to"]["user_id"], ben, "{last}");
    // The dial's end names only our own number: nothing changes.
    let params = [
        ("CallSid", "CA700"),
        ("DialCallStatus", "answered"),
        ("DialCallSid", "CA701"),
        ("To", "+18005551212"),
    ];
    let (_, twiml) = twilio(&app, &key, "dial-status", &params, Signed::Correctly).await;
    assert!(twiml.ends_with("<Response/>"), "{twiml}");
    assert_eq!(owner_and_last_event(&app, second).await, (json!(ben), last));
    // The first call kept its owner.
    assert_eq!(owner_and_last_event(&app, first).await.0, ana);
}

async fn the_voicemail_recording_is_attached_once() {
    let app = app_at(SATURDAY).await;
    let (key, _) = help_desk(&app, json!({})).await;
    twilio(&app, &key, "voice", &call("CA800"), Signed::Correctly).await;
    let url = "https://api.twilio.com/2010-04-01/Accounts/AC01/Recordings/RE0123456789abcdef";
    let action = [
        ("CallSid", "CA800"),
        ("From", CALLER),
        ("RecordingUrl", url),
        ("RecordingDuration", "42"),
        ("Digits", "hangup"),
    ];
    let (status, twiml) = twilio(&app, &key, "recording", &action, Signed::Correctly).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        twiml.contains("<Say>Thank you for your message. Goodbye.</Say><Hangup/>"),
        "{twiml}"
    );
    // The status callback (with the sid) and a retry of the action: no
    // second copy.
    let status_callback = [
        ("AccountSid", "AC01"),
        ("CallSid", "CA800"),
        ("RecordingSid", "RE0123456789abcdef"),
        ("RecordingUrl", url),
        ("RecordingStatus", "completed"),
        ("RecordingDuration", "42"),
        ("RecordingChannels", "1"),
        ("RecordingSource", "RecordVerb"),
    ];
    let (status, _) = twilio(
        &app,
        &key,
        "recording-status",
        &status_callback,
        Signed::Correctly,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    twilio(&app, &key, "recording", &action, Signed::Correctly).await;

    let all = tickets(&app).await;
    assert_eq!(all.len(), 1, "{all:?}");
    let msgs = messages(&app, &all[0]).await;
    assert_eq!(msgs.len(), 2, "{msgs:?}");
    assert_eq!(msgs[1]["kind"], "inbound");
    assert_eq!(msgs[1]["body"], "Voicemail, 42 s.");
    let files = app
        .store
        .attachments(AccountId(1), MessageId(msgs[1]["id"].as_i64().unwrap()))
        .await
        .unwrap();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(files[0].provider_ref.as_deref(), Some(url));
    assert_eq!(files[0].content_type, "audio/x-wav");
    assert_eq!(files[0].filename.as_deref(), Some("RE0123456789abcdef.wav"));

    // No message left: nothing added.
    let absent = [
        ("CallSid", "CA800"),
        ("RecordingSid", "RE2"),
        ("RecordingStatus", "absent"),
        ("RecordingDuration", "0"),
    ];
    let (status, _) = twilio(&app, &key, "recording-status", &absent, Signed::Correctly).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(messages(&app, &all[0]).await.len(), 2);
}

on_both_backends!(
    in_hours_a_call_rings_the_eligible_users_once,
    signatures_are_checked_on_every_hook,
    behind_a_public_url_that_url_is_signed,
    after_hours_the_caller_gets_voicemail,
    nobody_to_ring_or_nobody_answering_means_voicemail,
    whoever_answers_owns_the_call,
    the_voicemail_recording_is_attached_once,
    an_agent_at_capacity_is_not_rung,
);
