//! The JSON bodies of the REST API: every request type the server's JSON
//! extractor (`switchboard_server::extract::parse_json`) turns into a
//! value, then the checks the handlers and the store run before anything
//! is written (channel settings, form settings, rate limits, routing
//! rules, working and office hours).
//!
//! Checked: parsing never panics, whether the fast path or the
//! path-tracking path answers; an error names a field or is a syntax
//! error; the domain values inside (addresses, phones, names, time zones)
//! parse again to themselves; rules, hours and capacities serialise and
//! parse back to the same value; validated hours answer `is_open` and
//! `next_change` without panicking.

use jiff::Timestamp;
use serde::{Serialize, de::DeserializeOwned};
use serde_json::{Map, Value};
use switchboard_channels::forms::FormSettings;
use switchboard_domain::{
    ChannelKind, E164, EmailAddress, Name, TimeZoneName, channel_settings,
    input::*,
    routing::{Capacity, OfficeHours, OutOfOffice, RoutingRule, WeeklyHours},
};
use switchboard_server::{
    problem::ApiError,
    ratelimit::Limits,
    routes::{
        chat::DEFAULT_LIMITS,
        directory::NewToken,
        routing::{AvailabilityRequest, WorkingHoursRequest},
        tickets::{MessageRequest, OwnerRequest},
    },
};

const KINDS: [&str; 6] = ["email", "form", "chat", "whatsapp", "calls", "custom"];

fn parse<T: DeserializeOwned>(data: &[u8]) -> Option<T> {
    match switchboard_server::extract::parse_json::<T>(&crate::json_headers(), data) {
        Ok(v) => {
            // The fast path accepted it: so must a plain parse.
            assert!(serde_json::from_slice::<T>(data).is_ok());
            Some(v)
        }
        Err(ApiError::Invalid { .. } | ApiError::BadRequest { .. }) => None,
        Err(e) => panic!("unexpected error for a JSON body: {e:?}"),
    }
}

/// Serialising and parsing again gives the same value.
fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(value: &T) {
    let json = serde_json::to_value(value).expect("serialisable");
    let back: T = serde_json::from_value(json.clone())
        .unwrap_or_else(|e| panic!("{json} does not parse back: {e}"));
    assert_eq!(&back, value);
}

fn email(e: &EmailAddress) {
    round_trip(e);
    assert_eq!(EmailAddress::try_from(e.to_string()).as_ref(), Ok(e));
}
fn phone(p: &E164) {
    round_trip(p);
}
fn name(n: &Name) {
    round_trip(n);
}
fn zone(z: &TimeZoneName) {
    round_trip(z);
    let _ = z.zone();
}

fn hours(h: &WeeklyHours, tz: &jiff::tz::TimeZone) {
    if h.validate().is_err() {
        return;
    }
    for at in [
        Timestamp::UNIX_EPOCH,
        Timestamp::from_second(1_796_000_000).expect("valid"),
    ] {
        let _ = h.is_open(tz, at);
        if let Some(next) = h.next_change(tz, at) {
            assert!(next > at, "next change {next} not after {at}");
        }
    }
}

fn office(o: &OfficeHours) {
    round_trip(o);
    zone(&o.time_zone);
    if o.hours.validate().is_ok() {
        hours(&o.hours, &o.time_zone.zone());
        let _ = o.is_open(Timestamp::UNIX_EPOCH);
    }
}

fn rule(r: &RoutingRule) {
    round_trip(r);
    let _ = r.validate();
    for kind in KINDS {
        let kind: ChannelKind = serde_json::from_value(Value::from(kind)).expect("a kind");
        let _ = r.check_channel(kind);
    }
}

fn settings(kind: Option<ChannelKind>, s: &Map<String, Value>) {
    for k in KINDS {
        let k: ChannelKind = serde_json::from_value(Value::from(k)).expect("a kind");
        if kind.is_none_or(|kind| kind == k) {
            let _ = channel_settings::parse(k, s);
        }
    }
    let _ = FormSettings::from_settings(s);
    let _ = Limits::from_settings(s, DEFAULT_LIMITS);
}

fn contact(c: &ContactRef) {
    c.email.iter().for_each(email);
    c.phone.iter().for_each(phone);
    c.name.iter().for_each(name);
}

/// One input: a request body, tried as every request type.
pub fn run(data: &[u8]) {
    if let Some(u) = parse::<NewUser>(data) {
        name(&u.name);
        email(&u.email);
        zone(&u.time_zone);
        round_trip(&u.capacity);
    }
    if let Some(u) = parse::<UserPatch>(data) {
        u.name.iter().for_each(name);
        u.email.iter().for_each(email);
        u.time_zone.iter().for_each(zone);
        u.capacity.iter().for_each(round_trip::<Capacity>);
    }
    if let Some(t) = parse::<NewTeam>(data) {
        name(&t.name);
        t.members.iter().for_each(round_trip);
    }
    if let Some(t) = parse::<TeamPatch>(data) {
        t.name.iter().for_each(name);
        t.members.iter().flatten().for_each(round_trip);
        t.office_hours.iter().flatten().for_each(office);
    }
    if let Some(s) = parse::<NewSkill>(data) {
        name(&s.name);
        name(&s.category);
    }
    if let Some(c) = parse::<NewContact>(data) {
        c.name.iter().for_each(name);
        c.email.iter().for_each(email);
        c.phone.iter().for_each(phone);
    }
    if let Some(c) = parse::<ContactPatch>(data) {
        c.name.iter().flatten().for_each(name);
        c.email.iter().flatten().for_each(email);
        c.phone.iter().flatten().for_each(phone);
    }
    if let Some(c) = parse::<NewChannel>(data) {
        name(&c.name);
        settings(Some(c.kind), &c.settings);
    }
    if let Some(c) = parse::<ChannelPatch>(data) {
        c.name.iter().for_each(name);
        c.settings.iter().for_each(|s| settings(None, s));
        c.routing.iter().flatten().for_each(rule);
        c.office_hours.iter().flatten().for_each(office);
    }
    if let Some(t) = parse::<NewTicket>(data) {
        name(&t.subject);
        t.contact.iter().for_each(contact);
    }
    if let Some(t) = parse::<TicketPatch>(data) {
        t.subject.iter().for_each(name);
    }
    let _ = parse::<OwnerRequest>(data);
    let _ = parse::<MessageRequest>(data);
    let _ = parse::<NewToken>(data);
    let _ = parse::<AvailabilityRequest>(data);
    if let Some(w) = parse::<WorkingHoursRequest>(data)
        && let Some(shifts) = w.shifts
    {
        let h = WeeklyHours(shifts);
        hours(&h, &jiff::tz::TimeZone::UTC);
        if let Ok(paris) = jiff::tz::TimeZone::get("Europe/Paris") {
            hours(&h, &paris);
        }
    }
    if let Some(o) = parse::<OutOfOffice>(data) {
        round_trip(&o);
    }
    // Any JSON value is also tried as a routing rule and office hours.
    if let Some(r) = parse::<RoutingRule>(data) {
        rule(&r);
    }
    if let Some(o) = parse::<OfficeHours>(data) {
        office(&o);
    }
}
