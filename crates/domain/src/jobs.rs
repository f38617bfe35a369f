//! The scheduler's job kinds and their keys.
//!
//! A job is a row of the `jobs` table: a kind, a subject (a user, a ticket
//! or an account), an instant, and a unique key so that scheduling the same
//! job again moves it instead of adding another.

crate::model::wire_enum!(
    /// What a scheduled job does when it comes due.
    JobKind {
        /// A user's availability may change now (shift start or end, out of
        /// office, manual status expiry): drain the queue or rebalance.
        Availability = "availability",
        /// A waiting ticket's optional skills may be dropped now: route again.
        Relax = "relax",
        /// The account's oldest counted assignment leaves the 30-day load
        /// window now: every ticket past it is recounted (at most
        /// [`LOAD_EXPIRY_BATCH`] per write) and the job moves to the next
        /// one. One job per account, not one per ticket: an assignment
        /// writes no job row (the account's job is due earlier than any new
        /// assignment's expiry), and the table does not hold a row for
        /// every ticket assigned in the last 30 days.
        LoadExpiry = "load_expiry",
        /// The waiting queue of an account has more tickets to route than
        /// one write should hold the writer for: go on with the next batch.
        DrainWaiting = "drain_waiting",
        /// A user's e-mail cap window ended with notifications held back:
        /// summarise them in one digest e-mail (the subject is the user).
        NotifyDigest = "notify_digest",
        /// A ticket's earliest time-based workflow trigger (no first reply,
        /// no customer answer, open too long) may be due now: evaluate them
        /// and enroll (the subject is the ticket).
        WorkflowTimer = "workflow_timer",
        /// A workflow with time-based triggers was saved: set the timers of
        /// the account's open tickets, a batch per write (the subject is
        /// the ticket id the scan goes on after).
        WorkflowScan = "workflow_scan",
    }
);

impl JobKind {
    /// The job's unique key for `subject` of `account` (kept as the first
    /// version wrote them, so stored jobs still match; user and ticket ids
    /// are unique across accounts). An account drains one queue at a time,
    /// so its drain job is keyed by the account (its subject is where the
    /// drain goes on from); the load-expiry job's subject is the account.
    pub fn key(self, account: crate::AccountId, subject: i64) -> String {
        match self {
            Self::Availability => format!("availability:{subject}"),
            Self::Relax => format!("relax:{subject}"),
            Self::LoadExpiry => format!("load_expiry:{account}"),
            Self::DrainWaiting => format!("drain:{account}"),
            Self::NotifyDigest => format!("digest:{subject}"),
            Self::WorkflowTimer => format!("workflow_timer:{subject}"),
            Self::WorkflowScan => format!("workflow_scan:{account}"),
        }
    }
}

/// The most tickets one load-expiry job recounts; more past the window go
/// on in a write of their own (the job comes due again at once).
pub const LOAD_EXPIRY_BATCH: usize = 256;

/// The instant a job must not run before, in Unix milliseconds: rounded
/// up, because a job run before its instant would find nothing changed
/// and reschedule itself at the same millisecond.
pub fn run_at_ms(at: jiff::Timestamp) -> i64 {
    at.as_millisecond() + i64::from(at.subsec_nanosecond() % 1_000_000 != 0)
}
