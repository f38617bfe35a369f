//! The routing state of each account, kept on the writer thread.
//!
//! Why it is exact: the writer thread is the only connection that writes,
//! and every write that moves something the state mirrors either changes
//! the state in step (counters, last assignment, round robin: the hot
//! path) or drops the account's state so the next decision loads it again
//! (users, teams, skills, channels, availability: rare). The state lives in
//! a thread-local of the writer thread, so it is only ever touched there.
//!
//! Rollbacks: a job runs in a savepoint and may fail after changing the
//! state; the writer then calls [`job_failed`], which drops the state of
//! every account that job touched, and a failed commit drops everything
//! ([`batch_failed`]). Dropping is always safe: the next decision reloads
//! from the database, in one statement per table.

use std::{cell::RefCell, collections::HashMap, sync::Arc};

use rusqlite::{Connection, params};
use switchboard_domain::{
    AccountId, ChannelId, SkillId, TeamId, TicketType, TimeZoneName, UserId,
    routing::{ChannelState, RoutingRule, RoutingState, UserState},
};

use super::rows;
use crate::Result;

thread_local! {
    /// Loaded states, by account.
    static STATES: RefCell<HashMap<AccountId, RoutingState>> = RefCell::new(HashMap::new());
    /// Accounts whose state the current job read or changed.
    static TOUCHED: RefCell<Vec<AccountId>> = const { RefCell::new(Vec::new()) };
}

fn touch(account: AccountId) {
    TOUCHED.with(|t| {
        let mut t = t.borrow_mut();
        if !t.contains(&account) {
            t.push(account);
        }
    });
}

/// Runs `f` on the account's state, loading it first if needed.
pub fn with<R>(
    c: &Connection,
    account: AccountId,
    f: impl FnOnce(&mut RoutingState) -> R,
) -> Result<R> {
    touch(account);
    let loaded = STATES.with(|s| s.borrow().contains_key(&account));
    if !loaded {
        let state = load(c, account)?;
        STATES.with(|s| s.borrow_mut().insert(account, state));
    }
    Ok(STATES.with(|s| f(s.borrow_mut().get_mut(&account).expect("just loaded"))))
}

/// Runs `f` on the account's state if it is loaded (a change to something
/// the state mirrors; an unloaded state will read it from the database).
pub fn if_loaded(account: AccountId, f: impl FnOnce(&mut RoutingState)) {
    touch(account);
    STATES.with(|s| {
        if let Some(state) = s.borrow_mut().get_mut(&account) {
            f(state)
        }
    });
}

/// Drops the account's state: something it mirrors changed in a way that
/// is simpler to read again than to follow (users, teams, skills,
/// channels, availability settings).
pub fn invalidate(account: AccountId) {
    STATES.with(|s| s.borrow_mut().remove(&account));
}

/// A job starts: nothing touched yet.
pub fn job_started() {
    TOUCHED.with(|t| t.borrow_mut().clear());
}

/// The job failed and its savepoint was rolled back: the states it touched
/// may hold its changes, so they go.
pub fn job_failed() {
    let touched = TOUCHED.with(|t| std::mem::take(&mut *t.borrow_mut()));
    STATES.with(|s| {
        let mut s = s.borrow_mut();
        for account in touched {
            s.remove(&account);
        }
    });
}

/// The batch did not commit: every state may hold its changes.
pub fn batch_failed() {
    STATES.with(|s| s.borrow_mut().clear());
}

/// Reads the account's routing state, one statement per table.
fn load(c: &Connection, account: AccountId) -> Result<RoutingState> {
    let mut state = RoutingState::default();
    let mut users = c.prepare_cached(
        "SELECT id, deactivated, help_desk_seat, time_zone, availability, capacity, last_assigned_at
         FROM users WHERE account_id = ?1",
    )?;
    let mut rows_ = users.query([account.0])?;
    while let Some(r) = rows_.next()? {
        let tz: TimeZoneName = rows::value(r, 3)?;
        let mut user = UserState::new(
            r.get(1)?,
            r.get(2)?,
            tz.zone(),
            rows::json(r, 4)?,
            rows::json(r, 5)?,
        );
        user.last_assigned_at = r.get::<_, Option<i64>>(6)?.map(rows::ts);
        state.insert_user(UserId(r.get(0)?), user);
    }
    let mut teams = c.prepare_cached("SELECT id FROM teams WHERE account_id = ?1")?;
    for id in teams.query_map([account.0], |r| r.get(0).map(TeamId))? {
        state.insert_team(id?);
    }
    let mut members =
        c.prepare_cached("SELECT team_id, user_id, main FROM team_members WHERE account_id = ?1")?;
    for row in members.query_map([account.0], |r| {
        Ok((TeamId(r.get(0)?), UserId(r.get(1)?), r.get::<_, bool>(2)?))
    })? {
        let (team, user, main) = row?;
        state.insert_member(team, user, main);
    }
    let mut skills =
        c.prepare_cached("SELECT user_id, skill_id FROM user_skills WHERE account_id = ?1")?;
    for row in skills.query_map([account.0], |r| Ok((UserId(r.get(0)?), SkillId(r.get(1)?))))? {
        let (user, skill) = row?;
        state.insert_user_skill(user, skill);
    }
    let mut names = c.prepare_cached("SELECT id, name FROM skills WHERE account_id = ?1")?;
    for row in names.query_map([account.0], |r| Ok((SkillId(r.get(0)?), r.get(1)?)))? {
        let (id, name) = row?;
        state.insert_skill(id, name);
    }
    let mut counts = c.prepare_cached(
        "SELECT user_id, type, open_count, load_count FROM user_ticket_counts WHERE account_id = ?1",
    )?;
    for row in counts.query_map([account.0], |r| {
        Ok((
            UserId(r.get(0)?),
            rows::parsed::<TicketType>(r, 1)?,
            r.get::<_, u32>(2)?,
            r.get::<_, u32>(3)?,
        ))
    })? {
        let (user, ty, open, load) = row?;
        state.set_counts(user, ty, open, load);
    }
    let mut channels =
        c.prepare_cached("SELECT id, kind, routing, rr_cycle FROM channels WHERE account_id = ?1")?;
    for row in channels.query_map([account.0], |r| {
        let routing: Option<String> = r.get(2)?;
        Ok((
            ChannelId(r.get(0)?),
            ChannelState::new(
                rows::parsed(r, 1)?,
                // A rule that no longer parses counts as none, as it did
                // when every decision read it.
                routing
                    .and_then(|r| serde_json::from_str::<RoutingRule>(&r).ok())
                    .map(Arc::new),
                r.get::<_, i64>(3)? as u64,
            ),
        ))
    })? {
        let (id, channel) = row?;
        state.insert_channel(id, channel);
    }
    let mut rr = c.prepare_cached(
        "SELECT channel_id, user_id, last_cycle FROM round_robin WHERE account_id = ?1",
    )?;
    for row in rr.query_map(params![account.0], |r| {
        Ok((
            ChannelId(r.get(0)?),
            UserId(r.get(1)?),
            r.get::<_, i64>(2)? as u64,
        ))
    })? {
        let (channel, user, cycle) = row?;
        state.set_round_robin(channel, user, cycle);
    }
    Ok(state)
}
