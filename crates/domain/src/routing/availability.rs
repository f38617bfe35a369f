//! Availability at an instant: a manual status overrides, else an
//! out-of-office range makes the user away, else weekly working hours read in
//! the user's own IANA time zone; a user with no schedule is available.
//!
//! Working hours are civil times: a 09:00-17:00 shift is 09:00-17:00 local on
//! both sides of a DST change, so its instants move with the zone's offset.

use jiff::{
    Timestamp, ToSpan,
    civil::{Date, Time, Weekday},
    tz::TimeZone,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::DomainError;

/// A manual status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ManualStatus {
    /// Route to me (even outside working hours).
    Available,
    /// Do not route to me.
    Away,
}

/// A manual status, optionally until an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ManualAvailability {
    /// The status.
    pub status: ManualStatus,
    /// When it expires (then the schedule applies again); `null`: until changed.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub until: Option<Timestamp>,
}

/// An out-of-office range `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OutOfOffice {
    /// First instant away.
    #[schema(value_type = String, format = DateTime)]
    pub start: Timestamp,
    /// First instant back.
    #[schema(value_type = String, format = DateTime)]
    pub end: Timestamp,
}

/// One shift on one weekday, in local civil time; `end` after `start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Shift {
    /// `monday` .. `sunday`.
    #[schema(schema_with = weekday_schema)]
    #[serde(with = "weekday_name")]
    pub day: Weekday,
    /// Local start, `HH:MM`.
    #[schema(schema_with = time_schema)]
    pub start: Time,
    /// Local end, `HH:MM` (`24:00` is not accepted; use `23:59:59`).
    #[schema(schema_with = time_schema)]
    pub end: Time,
}

/// The schema of a weekday name.
fn weekday_schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some([
            "monday",
            "tuesday",
            "wednesday",
            "thursday",
            "friday",
            "saturday",
            "sunday",
        ]))
        .description(Some("`monday` .. `sunday`."))
        .build()
}

/// The schema of a local time of day: `HH:MM`, `HH:MM:SS` or with a fraction.
fn time_schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .pattern(Some(
            r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,9})?)?$",
        ))
        .examples(["09:00"])
        .build()
}

/// The schema of a list of local dates, `YYYY-MM-DD`.
fn dates_schema() -> utoipa::openapi::Array {
    let date = utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
            utoipa::openapi::KnownFormat::Date,
        )))
        .pattern(Some(r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"));
    utoipa::openapi::ArrayBuilder::new()
        .items(date)
        .examples([serde_json::json!(["2026-12-25"])])
        .build()
}

mod weekday_name {
    use jiff::civil::Weekday;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    const NAMES: [(&str, Weekday); 7] = [
        ("monday", Weekday::Monday),
        ("tuesday", Weekday::Tuesday),
        ("wednesday", Weekday::Wednesday),
        ("thursday", Weekday::Thursday),
        ("friday", Weekday::Friday),
        ("saturday", Weekday::Saturday),
        ("sunday", Weekday::Sunday),
    ];

    pub fn serialize<S: Serializer>(day: &Weekday, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(
            NAMES
                .iter()
                .find(|(_, d)| d == day)
                .map_or("monday", |(n, _)| n),
        )
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Weekday, D::Error> {
        let name = String::deserialize(d)?;
        NAMES
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(&name))
            .map(|(_, d)| *d)
            .ok_or_else(|| {
                D::Error::custom(format!(
                    "unknown weekday {name:?}, expected monday .. sunday"
                ))
            })
    }
}

/// Weekly hours: the shifts of a week, in some time zone.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(transparent)]
pub struct WeeklyHours(pub Vec<Shift>);

impl WeeklyHours {
    /// Checks every shift ends after it starts.
    pub fn validate(&self) -> Result<(), DomainError> {
        match self.0.iter().position(|s| s.end <= s.start) {
            Some(i) => Err(DomainError::invalid(
                "shifts",
                format!("shift {i} ends before it starts"),
            )),
            None => Ok(()),
        }
    }

    fn covers(&self, day: Weekday, time: Time) -> bool {
        self.0
            .iter()
            .any(|s| s.day == day && s.start <= time && time < s.end)
    }

    /// Whether `at` falls in a shift, read in `tz`.
    pub fn is_open(&self, tz: &TimeZone, at: Timestamp) -> bool {
        let local = at.to_zoned(tz.clone());
        self.covers(local.weekday(), local.time())
    }

    /// The next instant after `at` where being inside the hours flips (a shift
    /// starts or ends), looking at most eight days ahead.
    pub fn next_change(&self, tz: &TimeZone, at: Timestamp) -> Option<Timestamp> {
        let today = at.to_zoned(tz.clone()).date();
        let mut edges: Vec<Timestamp> = Vec::new();
        for offset in 0..=8 {
            let Ok(date) = today.checked_add(offset.days()) else {
                continue;
            };
            for shift in self.0.iter().filter(|s| s.day == date.weekday()) {
                for time in [shift.start, shift.end] {
                    if let Some(t) = instant(tz, date, time) {
                        edges.push(t);
                    }
                }
            }
        }
        let now_open = self.is_open(tz, at);
        edges.sort();
        // Adjacent shifts (17:00 end, 17:00 start) are not a change.
        edges
            .into_iter()
            .filter(|t| *t > at)
            .find(|t| self.is_open(tz, *t) != now_open)
    }
}

/// The instant of a local civil date and time (a time skipped by a DST gap
/// resolves to the instant after the gap).
fn instant(tz: &TimeZone, date: Date, time: Time) -> Option<Timestamp> {
    tz.to_ambiguous_zoned(date.to_datetime(time))
        .compatible()
        .ok()
        .map(|z| z.timestamp())
}

/// Office (business) hours of a team or channel: weekly hours in a time
/// zone, closed on holiday dates. Calls and handoff messages read them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OfficeHours {
    /// The zone the hours are read in.
    pub time_zone: crate::TimeZoneName,
    /// The weekly hours.
    pub hours: WeeklyHours,
    /// Local dates on which the office is closed all day.
    #[serde(default)]
    #[schema(schema_with = dates_schema)]
    pub holidays: Vec<Date>,
}

impl OfficeHours {
    /// Whether the office is open at `at`.
    pub fn is_open(&self, at: Timestamp) -> bool {
        let tz = self.time_zone.zone();
        let local = at.to_zoned(tz.clone()).date();
        !self.holidays.contains(&local) && self.hours.is_open(&tz, at)
    }
}

/// Everything that decides a user's availability.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct AvailabilitySettings {
    /// A manual status, if set.
    pub manual: Option<ManualAvailability>,
    /// Out-of-office ranges.
    pub out_of_office: Vec<OutOfOffice>,
    /// Weekly working hours in the user's time zone; `null` means always.
    pub working_hours: Option<WeeklyHours>,
}

/// Why a user is away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AwayReason {
    /// Set away by hand.
    Manual,
    /// Inside an out-of-office range.
    OutOfOffice,
    /// Outside working hours.
    OutsideWorkingHours,
}

/// A user's availability at an instant, and until when it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Availability {
    /// Can be routed to.
    Available {
        /// When this may change (a known future transition), if any.
        #[schema(value_type = Option<String>, format = DateTime)]
        until: Option<Timestamp>,
    },
    /// Cannot be routed to.
    Away {
        /// Why.
        reason: AwayReason,
        /// When this may change, if known.
        #[schema(value_type = Option<String>, format = DateTime)]
        until: Option<Timestamp>,
    },
}

impl Availability {
    /// Whether routing may pick the user.
    pub fn is_available(&self) -> bool {
        matches!(self, Availability::Available { .. })
    }

    /// The next instant at which availability may change.
    pub fn until(&self) -> Option<Timestamp> {
        match self {
            Availability::Available { until } | Availability::Away { until, .. } => *until,
        }
    }
}

impl AvailabilitySettings {
    /// Availability at `at` for a user in `tz`.
    pub fn at(&self, tz: &TimeZone, at: Timestamp) -> Availability {
        if let Some(manual) = self.manual.filter(|m| m.until.is_none_or(|u| at < u)) {
            return match manual.status {
                ManualStatus::Away => Availability::Away {
                    reason: AwayReason::Manual,
                    until: manual.until,
                },
                ManualStatus::Available => Availability::Available {
                    until: manual.until,
                },
            };
        }
        if let Some(ooo) = self
            .out_of_office
            .iter()
            .find(|o| o.start <= at && at < o.end)
        {
            return Availability::Away {
                reason: AwayReason::OutOfOffice,
                until: Some(ooo.end),
            };
        }
        // The next change is the earliest of: manual expiry (already past
        // here), an out-of-office start, a working-hours edge.
        let next_ooo = self
            .out_of_office
            .iter()
            .map(|o| o.start)
            .filter(|s| *s > at)
            .min();
        match &self.working_hours {
            None => Availability::Available { until: next_ooo },
            Some(hours) => {
                let edge = hours.next_change(tz, at);
                let until = [edge, next_ooo].into_iter().flatten().min();
                if hours.is_open(tz, at) {
                    Availability::Available { until }
                } else {
                    Availability::Away {
                        reason: AwayReason::OutsideWorkingHours,
                        until,
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nine_to_five_weekdays() -> WeeklyHours {
        use Weekday::*;
        WeeklyHours(
            [Monday, Tuesday, Wednesday, Thursday, Friday]
                .into_iter()
                .map(|day| Shift {
                    day,
                    start: Time::constant(9, 0, 0, 0),
                    end: Time::constant(17, 0, 0, 0),
                })
                .collect(),
        )
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn shifts_stay_local_across_a_dst_change() {
        let paris = TimeZone::get("Europe/Paris").unwrap();
        let settings = AvailabilitySettings {
            working_hours: Some(nine_to_five_weekdays()),
            ..Default::default()
        };
        // Friday 2026-03-27 is CET (UTC+1); Monday 2026-03-30 is CEST (UTC+2).
        assert!(
            settings
                .at(&paris, ts("2026-03-27T08:30:00Z"))
                .is_available(),
            "09:30 CET"
        );
        assert!(
            !settings
                .at(&paris, ts("2026-03-27T07:30:00Z"))
                .is_available(),
            "08:30 CET"
        );
        assert!(
            settings
                .at(&paris, ts("2026-03-30T07:30:00Z"))
                .is_available(),
            "09:30 CEST"
        );
        assert!(
            !settings
                .at(&paris, ts("2026-03-30T06:30:00Z"))
                .is_available(),
            "08:30 CEST"
        );
        // The weekend's away period ends at 09:00 CEST on Monday = 07:00 UTC.
        let weekend = settings.at(&paris, ts("2026-03-28T12:00:00Z"));
        assert_eq!(
            weekend,
            Availability::Away {
                reason: AwayReason::OutsideWorkingHours,
                until: Some(ts("2026-03-30T07:00:00Z"))
            }
        );
    }

    #[test]
    fn manual_status_overrides_then_expires() {
        let utc = TimeZone::UTC;
        let mut settings = AvailabilitySettings {
            working_hours: Some(nine_to_five_weekdays()),
            ..Default::default()
        };
        settings.manual = Some(ManualAvailability {
            status: ManualStatus::Away,
            until: Some(ts("2026-11-23T12:00:00Z")),
        });
        let monday_10 = ts("2026-11-23T10:00:00Z");
        assert_eq!(
            settings.at(&utc, monday_10),
            Availability::Away {
                reason: AwayReason::Manual,
                until: Some(ts("2026-11-23T12:00:00Z"))
            }
        );
        assert!(settings.at(&utc, ts("2026-11-23T12:00:00Z")).is_available());
        settings.manual = Some(ManualAvailability {
            status: ManualStatus::Available,
            until: None,
        });
        assert!(
            settings.at(&utc, ts("2026-11-22T03:00:00Z")).is_available(),
            "available by hand on a Sunday night"
        );
    }

    #[test]
    fn out_of_office_makes_away_until_its_end() {
        let ooo = OutOfOffice {
            start: ts("2026-12-20T00:00:00Z"),
            end: ts("2027-01-04T00:00:00Z"),
        };
        let settings = AvailabilitySettings {
            out_of_office: vec![ooo],
            ..Default::default()
        };
        assert_eq!(
            settings.at(&TimeZone::UTC, ts("2026-12-24T10:00:00Z")),
            Availability::Away {
                reason: AwayReason::OutOfOffice,
                until: Some(ooo.end)
            }
        );
        assert_eq!(
            settings.at(&TimeZone::UTC, ts("2026-12-01T10:00:00Z")),
            Availability::Available {
                until: Some(ooo.start)
            }
        );
        assert_eq!(
            AvailabilitySettings::default().at(&TimeZone::UTC, ts("2026-12-01T10:00:00Z")),
            Availability::Available { until: None }
        );
    }

    #[test]
    fn office_hours_close_on_holidays() {
        let office = OfficeHours {
            time_zone: crate::TimeZoneName::try_from("America/New_York".to_owned()).unwrap(),
            hours: nine_to_five_weekdays(),
            holidays: vec![jiff::civil::date(2026, 12, 25)],
        };
        assert!(
            office.is_open(ts("2026-12-24T15:00:00Z")),
            "10:00 in New York"
        );
        assert!(!office.is_open(ts("2026-12-25T15:00:00Z")), "Christmas");
        assert!(
            !office.is_open(ts("2026-12-24T23:00:00Z")),
            "18:00 in New York"
        );
    }

    #[test]
    fn shifts_must_end_after_they_start() {
        let bad = WeeklyHours(vec![Shift {
            day: Weekday::Monday,
            start: Time::constant(17, 0, 0, 0),
            end: Time::constant(9, 0, 0, 0),
        }]);
        assert!(bad.validate().is_err());
        assert!(nine_to_five_weekdays().validate().is_ok());
    }
}

/// What follows a change of a user's availability (settings changed, or a
/// scheduled transition came due).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// When to look again (the availability job), if it can change.
    pub next_check: Option<Timestamp>,
    /// The user is available: waiting tickets may go to them now.
    pub drain_queue: bool,
    /// The user just became away: their unanswered tickets go back through
    /// routing where the rule asks for it.
    pub rebalance: bool,
}

impl Transition {
    /// The transition from `was_available` to `now`. Only the change to
    /// away rebalances, not every later re-check while away.
    pub fn new(was_available: bool, now: Availability) -> Self {
        Self {
            next_check: now.until(),
            drain_queue: now.is_available(),
            rebalance: was_available && !now.is_available(),
        }
    }
}

impl AvailabilitySettings {
    /// Whether the user was available just before `at` (the instant a
    /// scheduled transition comes due).
    pub fn available_just_before(&self, tz: &TimeZone, at: Timestamp) -> bool {
        self.at(tz, at - jiff::SignedDuration::from_millis(1))
            .is_available()
    }
}
