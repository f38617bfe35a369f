//! How an explanation is written to the database: the same facts as
//! [`Explanation`], in a compact form.
//!
//! Why a form of its own: every routed create stores one explanation, and
//! in the API's shape (`{"user_id":2,"verdict":"eligible","load":0,
//! "served_this_cycle":null}` per candidate) it was ~1.9 KB over 20
//! candidates, 70% of the pages a routed create wrote (SQLite `dbstat`
//! after a benchmark run), so the writer spent its time writing WAL frames
//! of explanations nobody had read yet. Stored, a candidate is an array
//! `[user_id, load, served_this_cycle, verdict]` whose verdict is `null`
//! when eligible. Reading accepts both forms, so decisions stored before
//! this form existed still read back.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use super::{CandidateReport, Explanation, OmittedCount, Outcome, RoutingRule, Verdict};
use crate::UserId;

/// The compact form's version, written as `"v"`.
const VERSION: u8 = 2;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Compact<'a> {
    v: u8,
    rule: Cow<'a, RoutingRule>,
    #[serde(default, skip_serializing_if = "is_empty")]
    branch: Cow<'a, [String]>,
    #[serde(default, skip_serializing_if = "is_empty")]
    skills: Cow<'a, [String]>,
    c: Vec<Candidate<'a>>,
    #[serde(default, skip_serializing_if = "is_empty")]
    omitted: Cow<'a, [OmittedCount]>,
    outcome: Outcome,
    summary: Cow<'a, str>,
}

fn is_empty<T>(v: &[T]) -> bool {
    v.is_empty()
}

/// `[user_id, load, served_this_cycle, verdict or null when eligible]`.
#[derive(Serialize, Deserialize)]
struct Candidate<'a>(UserId, u32, Option<bool>, Option<Cow<'a, Verdict>>);

#[derive(Deserialize)]
#[serde(untagged)]
enum AnyForm {
    Compact(Compact<'static>),
    Full(Explanation),
}

impl Explanation {
    /// The explanation as a database column: [`Explanation::for_storage`],
    /// then the compact form.
    pub fn to_stored(&self) -> String {
        let (kept, omitted) = self.stored_selection();
        let compact = Compact {
            v: VERSION,
            rule: Cow::Borrowed(&self.rule),
            branch: Cow::Borrowed(&self.branch),
            skills: Cow::Borrowed(&self.required_skills),
            c: kept
                .into_iter()
                .map(|c| {
                    let verdict =
                        (c.verdict != Verdict::Eligible).then_some(Cow::Borrowed(&c.verdict));
                    Candidate(c.user_id, c.load, c.served_this_cycle, verdict)
                })
                .collect(),
            omitted: Cow::Owned(omitted),
            outcome: self.outcome,
            summary: Cow::Borrowed(&self.summary),
        };
        // Serialising plain data into a string cannot fail.
        serde_json::to_string(&compact).expect("an explanation serialises")
    }

    /// Reads a column written by [`Explanation::to_stored`], or the API form
    /// that earlier versions stored.
    pub fn from_stored(column: &str) -> Result<Self, serde_json::Error> {
        Ok(match serde_json::from_str(column)? {
            AnyForm::Full(e) => e,
            AnyForm::Compact(c) => Explanation {
                rule: c.rule.into_owned(),
                branch: c.branch.into_owned(),
                required_skills: c.skills.into_owned(),
                candidates: c
                    .c
                    .into_iter()
                    .map(
                        |Candidate(user_id, load, served_this_cycle, verdict)| CandidateReport {
                            user_id,
                            verdict: verdict.map_or(Verdict::Eligible, Cow::into_owned),
                            load,
                            served_this_cycle,
                        },
                    )
                    .collect(),
                omitted: c.omitted.into_owned(),
                outcome: c.outcome,
                summary: c.summary.into_owned(),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{TeamId, routing::AwayReason};

    fn sample(n: u64) -> Explanation {
        let rule: RoutingRule = serde_json::from_str(
            r#"{"assign_to":"users_and_teams","teams":[1],"distribution":"load_balanced"}"#,
        )
        .unwrap();
        Explanation {
            rule,
            branch: vec!["fallback".into()],
            required_skills: vec!["billing".into()],
            candidates: (1..=n)
                .map(|i| CandidateReport {
                    user_id: UserId(i as i64),
                    verdict: match i % 4 {
                        0 => Verdict::Eligible,
                        1 => Verdict::Away {
                            reason: AwayReason::Manual,
                            until: None,
                        },
                        2 => Verdict::LacksSkill {
                            skill: "billing".into(),
                        },
                        _ => Verdict::NotSeated,
                    },
                    load: i as u32,
                    served_this_cycle: (i % 2 == 0).then_some(true),
                })
                .collect(),
            omitted: vec![],
            outcome: Outcome::Assign {
                user_id: UserId(4),
                team_id: Some(TeamId(1)),
            },
            summary: "Assigned to 4.".into(),
        }
    }

    #[test]
    fn the_compact_form_reads_back_as_it_was() {
        let e = sample(20);
        assert_eq!(Explanation::from_stored(&e.to_stored()).unwrap(), e);
    }

    #[test]
    fn storing_keeps_what_for_storage_keeps() {
        let e = sample(300);
        let back = Explanation::from_stored(&e.to_stored()).unwrap();
        assert_eq!(back, e.for_storage());
    }

    #[test]
    fn past_the_kept_candidates_each_verdict_is_counted() {
        let back = Explanation::from_stored(&sample(300).to_stored()).unwrap();
        assert_eq!(back.candidates.len(), Explanation::KEPT);
        let omitted: Vec<(&str, u32)> = back
            .omitted
            .iter()
            .map(|o| (o.verdict.as_str(), o.count))
            .collect();
        // Ids 51..=300, by first appearance: 51 is not seated, 52 eligible...
        assert_eq!(
            omitted,
            [
                ("not_seated", 63),
                ("eligible", 63),
                ("away", 62),
                ("lacks_skill", 62)
            ]
        );
    }

    #[test]
    fn the_api_form_stored_by_earlier_versions_still_reads() {
        let e = sample(7);
        let old = serde_json::to_string(&e).unwrap();
        assert_eq!(Explanation::from_stored(&old).unwrap(), e);
    }

    #[test]
    fn the_compact_form_is_less_than_half_the_api_form() {
        let mut e = sample(20);
        for c in &mut e.candidates {
            c.verdict = Verdict::Eligible;
            c.served_this_cycle = None;
        }
        let api = serde_json::to_string(&e).unwrap().len();
        let stored = e.to_stored().len();
        assert!(stored * 2 < api, "stored {stored} bytes, API form {api}");
    }

    #[test]
    fn a_column_that_is_neither_form_is_an_error() {
        assert!(Explanation::from_stored(r#"{"v":2}"#).is_err());
        assert!(Explanation::from_stored("[]").is_err());
    }
}
