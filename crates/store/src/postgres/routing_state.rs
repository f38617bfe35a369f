//! The routing state of each account, kept per node and checked against a
//! version in the database.
//!
//! Several nodes write, so a node cannot trust what it kept: another node
//! may have routed a ticket (moving counters and round-robin state) since.
//! Every write that changes something the state mirrors bumps
//! `accounts.routing_version` in its own transaction ([`Tx::before_commit`]).
//! A decision runs under the account's routing lock; it reads the version
//! (one statement) and uses the kept state only if it was kept at that very
//! version, otherwise it loads it again (one statement per table). After the
//! commit the node keeps the state it ended with, at the version it wrote.
//!
//! Why that is exact: the state kept at version `v` is what the database
//! held when the transaction that made `v` committed; any later change to
//! what it mirrors bumped the version past `v`. A lockless writer (creating
//! a skill, say) may bump the version between our read and our own bump;
//! then our bump does not land on `v + 1`, and we keep nothing.
//!
//! Each transaction's working copy lives in a task-local [`Tx`] set up by
//! the `transaction!` macro, so the routing code reaches it without passing
//! a context through every call. Outside a transaction scope the state is
//! loaded for the one call and not kept.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use sqlx::PgConnection;
use switchboard_domain::{
    AccountId, ChannelId, SkillId, TeamId, TicketType, TimeZoneName, UserId,
    routing::{ChannelState, RoutingRule, RoutingState, UserState},
};

use super::rows;
use crate::Result;

/// The states a node keeps, by account, with the version each was kept at.
#[derive(Default)]
pub struct Kept(Mutex<HashMap<AccountId, (i64, RoutingState)>>);

impl Kept {
    /// Takes the account's state out if it was kept at `version`. (Taken,
    /// not copied: the transaction asking holds the account's lock, so
    /// nobody else on this node needs it meanwhile; it comes back on
    /// commit.)
    fn take(&self, account: AccountId, version: i64) -> Option<RoutingState> {
        let mut kept = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match kept.remove(&account) {
            Some((v, state)) if v == version => Some(state),
            _ => None,
        }
    }

    fn put(&self, account: AccountId, version: i64, state: RoutingState) {
        let mut kept = self.0.lock().unwrap_or_else(|e| e.into_inner());
        kept.insert(account, (version, state));
    }
}

/// One transaction's view: the working copy (for one account: routing
/// writes are per account) and the accounts whose mirrored state it changed.
#[derive(Default)]
struct Inner {
    working: Option<Working>,
    changed: Vec<AccountId>,
}

struct Working {
    account: AccountId,
    /// The version the state was read at, then the one this transaction
    /// wrote; `None` once it cannot be trusted any more.
    version: Option<i64>,
    state: RoutingState,
}

/// A transaction's routing context (see the module comment).
#[derive(Clone)]
pub struct Tx {
    inner: Arc<Mutex<Inner>>,
    kept: Arc<Kept>,
}

tokio::task_local! {
    static TX: Tx;
}

impl Tx {
    /// A context for one transaction over the node's `kept` states.
    pub fn new(kept: Arc<Kept>) -> Self {
        Self {
            inner: Arc::default(),
            kept,
        }
    }

    /// Runs `f` with this context reachable from the routing code.
    pub async fn scope<F: std::future::Future>(&self, f: F) -> F::Output {
        TX.scope(self.clone(), f).await
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Bumps the version of every account whose mirrored state this
    /// transaction changed. Runs just before the commit.
    pub async fn before_commit(&self, c: &mut PgConnection) -> Result<()> {
        let changed = std::mem::take(&mut self.lock().changed);
        for account in changed {
            let version: i64 = sqlx::query_scalar(
                "UPDATE accounts SET routing_version = routing_version + 1 WHERE id = $1 RETURNING routing_version",
            )
            .bind(account.0)
            .fetch_one(&mut *c)
            .await?;
            let mut inner = self.lock();
            if let Some(w) = inner.working.as_mut().filter(|w| w.account == account) {
                // Exact only if nobody bumped between our read and now.
                w.version = w.version.filter(|v| v + 1 == version).map(|_| version);
            }
        }
        Ok(())
    }

    /// The transaction committed: the node keeps the state it ended with.
    pub fn after_commit(&self) {
        if let Some(w) = self.lock().working.take()
            && let Some(version) = w.version
        {
            self.kept.put(w.account, version, w.state);
        }
    }
}

/// Runs `f` on the account's state, reading it first if this transaction
/// has not yet. The caller holds the account's routing lock.
pub async fn with<R>(
    c: &mut PgConnection,
    account: AccountId,
    f: impl FnOnce(&mut RoutingState) -> R,
) -> Result<R> {
    let tx = TX.try_with(Tx::clone).ok();
    let has = tx.as_ref().is_some_and(|tx| {
        tx.lock()
            .working
            .as_ref()
            .is_some_and(|w| w.account == account)
    });
    if !has {
        let version: i64 = sqlx::query_scalar("SELECT routing_version FROM accounts WHERE id = $1")
            .bind(account.0)
            .fetch_one(&mut *c)
            .await?;
        // Not the kept copy if this transaction already changed what it
        // mirrors (with no working copy to follow the change, or after an
        // `invalidate`): the version is only bumped at commit, so the copy
        // kept at `version` predates those writes. A load sees them.
        let kept = tx
            .as_ref()
            .filter(|tx| !tx.lock().changed.contains(&account))
            .and_then(|tx| tx.kept.take(account, version));
        let mut state = match kept {
            Some(state) => state,
            None => load(c, account).await?,
        };
        let Some(tx) = &tx else {
            return Ok(f(&mut state));
        };
        tx.lock().working = Some(Working {
            account,
            version: Some(version),
            state,
        });
    }
    let tx = tx.expect("checked above");
    let mut inner = tx.lock();
    let w = inner.working.as_mut().expect("set above");
    Ok(f(&mut w.state))
}

/// Records a change to something the account's state mirrors, made by this
/// transaction, and applies it to the working copy if there is one.
pub fn changed(account: AccountId, f: impl FnOnce(&mut RoutingState)) {
    let _ = TX.try_with(|tx| {
        let mut inner = tx.lock();
        if !inner.changed.contains(&account) {
            inner.changed.push(account);
        }
        if let Some(w) = inner.working.as_mut().filter(|w| w.account == account) {
            f(&mut w.state);
        }
    });
}

/// Records a change that is simpler to read again than to follow (users,
/// teams, skills, channels): the version moves and no copy is kept.
pub fn invalidate(account: AccountId) {
    let _ = TX.try_with(|tx| {
        let mut inner = tx.lock();
        if !inner.changed.contains(&account) {
            inner.changed.push(account);
        }
        if inner.working.as_ref().is_some_and(|w| w.account == account) {
            inner.working = None;
        }
    });
}

/// Reads the account's routing state, one statement per table.
async fn load(c: &mut PgConnection, account: AccountId) -> Result<RoutingState> {
    let mut state = RoutingState::default();
    for r in sqlx::query(
        "SELECT id, deactivated, help_desk_seat, time_zone, availability, capacity, last_assigned_at
         FROM users WHERE account_id = $1",
    )
    .bind(account.0)
    .fetch_all(&mut *c)
    .await?
    {
        let tz: TimeZoneName = rows::value(&r, 3)?;
        let mut user = UserState::new(
            rows::flag(&r, 1)?,
            rows::flag(&r, 2)?,
            tz.zone(),
            rows::json(&r, 4)?,
            rows::json(&r, 5)?,
        );
        user.last_assigned_at = rows::get::<Option<i64>>(&r, 6)?.map(rows::ts);
        state.insert_user(UserId(rows::get(&r, 0)?), user);
    }
    for id in sqlx::query_scalar::<_, i64>("SELECT id FROM teams WHERE account_id = $1")
        .bind(account.0)
        .fetch_all(&mut *c)
        .await?
    {
        state.insert_team(TeamId(id));
    }
    for r in sqlx::query("SELECT team_id, user_id, main FROM team_members WHERE account_id = $1")
        .bind(account.0)
        .fetch_all(&mut *c)
        .await?
    {
        let main = rows::flag(&r, 2)?;
        state.insert_member(TeamId(rows::get(&r, 0)?), UserId(rows::get(&r, 1)?), main);
    }
    for r in sqlx::query("SELECT user_id, skill_id FROM user_skills WHERE account_id = $1")
        .bind(account.0)
        .fetch_all(&mut *c)
        .await?
    {
        state.insert_user_skill(UserId(rows::get(&r, 0)?), SkillId(rows::get(&r, 1)?));
    }
    for r in sqlx::query("SELECT id, name FROM skills WHERE account_id = $1")
        .bind(account.0)
        .fetch_all(&mut *c)
        .await?
    {
        state.insert_skill(SkillId(rows::get(&r, 0)?), rows::get(&r, 1)?);
    }
    for r in sqlx::query(
        "SELECT user_id, type, open_count, load_count FROM user_ticket_counts WHERE account_id = $1",
    )
    .bind(account.0)
    .fetch_all(&mut *c)
    .await?
    {
        let ty: TicketType = rows::parsed(&r, 1)?;
        let open = rows::get::<i64>(&r, 2)?.max(0) as u32;
        let load = rows::get::<i64>(&r, 3)?.max(0) as u32;
        state.set_counts(UserId(rows::get(&r, 0)?), ty, open, load);
    }
    for r in sqlx::query("SELECT id, kind, routing, rr_cycle FROM channels WHERE account_id = $1")
        .bind(account.0)
        .fetch_all(&mut *c)
        .await?
    {
        let routing: Option<String> = rows::get(&r, 2)?;
        let channel = ChannelState::new(
            rows::parsed(&r, 1)?,
            // A rule that no longer parses counts as none.
            routing
                .and_then(|r| serde_json::from_str::<RoutingRule>(&r).ok())
                .map(Arc::new),
            rows::get::<i64>(&r, 3)? as u64,
        );
        state.insert_channel(ChannelId(rows::get(&r, 0)?), channel);
    }
    for r in
        sqlx::query("SELECT channel_id, user_id, last_cycle FROM round_robin WHERE account_id = $1")
            .bind(account.0)
            .fetch_all(&mut *c)
            .await?
    {
        let cycle = rows::get::<i64>(&r, 2)? as u64;
        state.set_round_robin(
            ChannelId(rows::get(&r, 0)?),
            UserId(rows::get(&r, 1)?),
            cycle,
        );
    }
    Ok(state)
}
