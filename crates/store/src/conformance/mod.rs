//! The behaviour every storage backend must show, written once. Each
//! function takes a fresh, empty store; [`conformance_tests!`] turns all of
//! them into `#[tokio::test]`s for one backend:
//!
//! ```text
//! switchboard_store::conformance_tests!(my_backend_fresh_store());
//! ```
//!
//! where the expression is a future of a [`Fixture`]. Every fixture's store
//! reads the time from [`Fixture::clock`], stopped at [`START`] until a case
//! moves it.

use std::{any::Any, sync::Arc};

use switchboard_domain::{input::*, *};

use crate::{Store, TicketQuery, View};

mod directory;
mod events;
mod notifications;
mod outbox;
mod routing;
mod tickets;
mod workflows;

pub use directory::*;
pub use events::*;
pub use notifications::*;
pub use outbox::*;
pub use routing::*;
pub use tickets::*;
pub use workflows::*;

/// The instant every fixture's clock starts at: a Tuesday, 09:00 UTC.
pub const START: &str = "2026-12-01T09:00:00Z";

/// A clock stopped at [`START`], for a fixture's store.
pub fn start_clock() -> Arc<FixedClock> {
    Arc::new(FixedClock::new(START.parse().expect("a valid instant")))
}

/// A fresh, empty store and whatever must live as long as it (a temporary
/// directory, a database to drop).
pub struct Fixture {
    /// The store under test.
    pub store: Arc<dyn Store>,
    /// The store's clock (from [`start_clock`]); cases move it, then call
    /// `store.run_due_jobs()`.
    pub clock: Arc<FixedClock>,
    /// Dropped after the test.
    pub guard: Box<dyn Any + Send>,
}

/// Generates one `#[tokio::test]` per conformance case, each calling `$make`
/// (a future of a [`Fixture`], or of an `Option<Fixture>` that is `None`
/// when the backend is unavailable) for a fresh store.
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr) => {
        $crate::conformance_tests!(@cases $make;
            accounts_start_with_a_super_admin_and_languages,
            tokens_authenticate_active_users_only,
            users_and_teams_keep_one_main_team,
            the_last_super_admin_stays,
            accounts_are_isolated,
            tickets_get_type_contact_and_history,
            idempotent_create_returns_the_original,
            views_select_the_right_tickets,
            pagination_walks_every_ticket_once,
            manual_assignment_is_recorded,
            a_reply_assigns_an_ownerless_ticket,
            status_and_stage_move_together,
            concurrent_creates_are_all_kept,
            contacts_and_visitor_tokens,
            channels_keep_settings_and_routing,
            external_ids_dedupe_thread_and_keep_attachments,
            replies_on_sending_channels_enqueue_a_delivery,
            claims_lease_rows_and_outcomes_are_fenced,
            an_expired_lease_comes_back,
            concurrent_claims_take_each_row_once,
            a_sent_reply_records_its_channel_id_once,
            the_event_log_numbers_every_change_in_order,
            a_resuming_reader_never_skips_a_concurrent_commit,
            preferences_resolve_user_over_default_over_built_in,
            changes_write_notifications_in_their_transaction,
            the_audience_follows_users_written_since_the_last_notification,
            read_marks_count_and_stream_order,
            a_change_enrolls_once_and_each_step_runs_once,
            a_workflows_own_change_never_enrolls_it_again,
            rotations_take_turns_and_the_step_cap_holds,
        );
        $crate::conformance_tests!(@fixture_cases $make;
            purged_events_reset_resuming_readers,
            load_balancing_spreads_a_team_evenly,
            round_robin_follows_the_cycle,
            random_never_picks_an_ineligible_user,
            kept_state_follows_directory_changes,
            the_waiting_queue_assigns_when_an_agent_comes_back,
            a_seat_given_drains_the_queue,
            a_long_queue_drains_past_one_batch_in_order,
            optional_skills_are_relaxed_after_the_delay,
            rebalance_on_away_moves_unreplied_tickets,
            working_hours_starting_later_drain_the_queue,
            loads_forget_tickets_assigned_over_30_days_ago,
            e_mails_over_the_cap_wait_for_one_digest,
            delays_wait_and_time_based_triggers_come_due,
        );
    };
    (@fixture_cases $make:expr; $($case:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $case() {
            // Cases that move the clock take the whole fixture.
            let fixture: Option<$crate::conformance::Fixture> = $make.await.into();
            let Some(fixture) = fixture else { return };
            $crate::conformance::$case(&fixture).await;
            drop(fixture);
        }
    )*};
    (@cases $make:expr; $($case:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $case() {
            // `None`: the backend is unavailable and may be skipped here
            // (a PostgreSQL fixture returns `None` only outside CI).
            let fixture: Option<$crate::conformance::Fixture> = $make.await.into();
            let Some(fixture) = fixture else { return };
            $crate::conformance::$case(fixture.store.as_ref()).await;
            drop(fixture);
        }
    )*};
}

pub(super) fn name(s: &str) -> Name {
    Name::try_from(s.to_owned()).unwrap()
}

pub(super) fn email(s: &str) -> EmailAddress {
    EmailAddress::try_from(s.to_owned()).unwrap()
}

/// A new user input with defaults.
pub fn new_user(n: &str, e: &str, role: Role) -> NewUser {
    NewUser {
        name: name(n),
        email: email(e),
        role,
        help_desk_seat: true,
        time_zone: TimeZoneName::utc(),
        main_team_id: None,
        secondary_team_ids: vec![],
        skill_ids: vec![],
        capacity: Default::default(),
    }
}

/// A new ticket input with defaults.
pub fn new_ticket(subject: &str) -> NewTicket {
    NewTicket {
        subject: name(subject),
        content: "Hello".into(),
        channel_id: None,
        contact: None,
        visitor_token: None,
        priority: Priority::Medium,
        properties: Default::default(),
    }
}

pub(super) async fn account(store: &dyn Store, n: &str) -> (AccountId, User) {
    let (account, admin) = store
        .create_account(
            name(n),
            new_user("Admin", &format!("admin@{n}.example"), Role::Agent),
            format!("admin-hash-{n}"),
        )
        .await
        .unwrap();
    (account.id, admin)
}

/// An agent named `n` with address `<n>@acme.example`.
pub(super) async fn agent(store: &dyn Store, a: AccountId, n: &str) -> User {
    let email = format!("{}@acme.example", n.to_lowercase());
    store
        .create_user(a, new_user(n, &email, Role::Agent))
        .await
        .unwrap()
}

/// A team named `n` with no members.
pub(super) async fn empty_team(store: &dyn Store, a: AccountId, n: &str) -> Team {
    store
        .create_team(
            a,
            NewTeam {
                name: name(n),
                members: vec![],
            },
        )
        .await
        .unwrap()
}

/// A plain API ticket created by `who`.
pub(super) async fn ticket(store: &dyn Store, a: AccountId, who: &User, subject: &str) -> Ticket {
    store
        .create_ticket(a, new_ticket(subject), None, by(who))
        .await
        .unwrap()
        .value
}

pub(super) fn by(user: &User) -> Actor {
    Actor::User { user_id: user.id }
}

pub(super) fn page_ids(page: &crate::Page<Ticket>) -> Vec<TicketId> {
    page.items.iter().map(|t| t.id).collect()
}

pub(super) async fn view(store: &dyn Store, a: AccountId, caller: &User, v: View) -> Vec<TicketId> {
    let q = TicketQuery {
        view: Some(v),
        limit: 200,
        ..Default::default()
    };
    page_ids(&store.list_tickets(a, caller.id, q).await.unwrap())
}
