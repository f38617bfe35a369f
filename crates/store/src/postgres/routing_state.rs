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
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use sqlx::PgConnection;
use switchboard_domain::{
    AccountId, ChannelId, ChannelKind, SkillId, TeamId, TicketType, TimeZoneName, UserId,
    notifications::Person,
    routing::{ChannelState, RoutingRule, RoutingState, StateDelta, UserState},
};

use super::rows;
use crate::Result;

/// The states a node keeps, by account, with the version each was kept at.
#[derive(Default)]
pub struct Kept {
    states: Mutex<HashMap<AccountId, (i64, RoutingState)>>,
    /// Account settings (notification preferences and e-mail cap, enabled
    /// workflows), by account, with the `settings_version` each was read
    /// at (see [`settings`]).
    settings: Mutex<HashMap<AccountId, (i64, Arc<AccountSettings>)>>,
    /// How often a state was read whole, and how often a kept one caught up
    /// by deltas (see [`Kept::counts`]).
    loads: AtomicU64,
    catch_ups: AtomicU64,
}

impl Kept {
    /// How many times this node read an account's routing state whole, and
    /// how many times it brought a kept copy up to date from the stored
    /// deltas instead.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.loads.load(Ordering::Relaxed),
            self.catch_ups.load(Ordering::Relaxed),
        )
    }

    /// Takes the account's state out, with the version it was kept at.
    /// (Taken, not copied: the transaction asking holds the account's lock,
    /// so nobody else on this node needs it meanwhile; it comes back on
    /// commit.)
    fn take(&self, account: AccountId) -> Option<(i64, RoutingState)> {
        let mut kept = self.states.lock().unwrap_or_else(|e| e.into_inner());
        kept.remove(&account)
    }

    fn put(&self, account: AccountId, version: i64, state: RoutingState) {
        let mut kept = self.states.lock().unwrap_or_else(|e| e.into_inner());
        kept.insert(account, (version, state));
    }
}

/// One transaction's view: the working copy (for one account: routing
/// writes are per account) and the accounts whose mirrored state it changed.
#[derive(Default)]
struct Inner {
    working: Option<Working>,
    changed: Vec<AccountId>,
    /// What this transaction changed, to store with the version it writes;
    /// `None` for an account after a change copies cannot follow.
    deltas: HashMap<AccountId, Option<Vec<StateDelta>>>,
    /// Accounts whose settings this transaction changed (never served
    /// from, nor stored in, the node's copies).
    settings_changed: Vec<AccountId>,
    /// The advisory locks (by key) this transaction holds.
    locks: Vec<i64>,
    /// Reads the creates of a batch share; `None` outside a batch.
    shared: Option<Shared>,
}

/// What the creates of one batch (`batch`) read that none of them can
/// change: a channel's kind and whether it routes, the people a
/// notification may go to. The first create reads them; the others use its
/// copy (one round trip less each, under the routing lock). Only a batch
/// turns this on: another transaction might change a user, then read it.
#[derive(Default)]
pub struct Shared {
    /// A channel's kind, and whether it has a routing rule.
    pub channels: HashMap<ChannelId, (ChannelKind, bool)>,
    /// A user as a notification's audience sees them (`None`: no such user
    /// in the account).
    pub people: HashMap<UserId, Option<Person>>,
    /// Contacts by lowercased e-mail, found or created by the batch.
    pub contacts: HashMap<String, switchboard_domain::ContactId>,
    /// Writes the batch makes once, just before its commit (see
    /// [`Deferred`]).
    pub deferred: Deferred,
    /// Jobs this batch scheduled "at `at` or earlier" (`schedule_by`), by
    /// key: asking again for a later instant changes nothing.
    pub scheduled_by: HashMap<String, jiff::Timestamp>,
}

/// Writes the creates of a batch add up instead of making one by one: the
/// owners' `last_assigned_at` and their counters. Nothing in a batch reads
/// them back from the table (decisions read the kept state), so they are
/// written once per batch, before the commit (`writes::flush_deferred`).
#[derive(Default)]
pub struct Deferred {
    /// The latest assignment of each owner.
    pub assigned: HashMap<UserId, jiff::Timestamp>,
    /// The sum of each owner's counter deltas, by ticket type: (open, load).
    pub counts: HashMap<(UserId, TicketType), (i64, i64)>,
}

impl Deferred {
    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.assigned.is_empty() && self.counts.is_empty()
    }
}

struct Working {
    account: AccountId,
    /// The account's `settings_version`, read with the routing version.
    settings_version: i64,
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
    /// transaction changed, and stores what changed with the new version
    /// (one statement), so other nodes can follow instead of reloading.
    /// Runs just before the commit.
    pub async fn before_commit(&self, c: &mut PgConnection) -> Result<()> {
        let (changed, mut deltas) = {
            let mut inner = self.lock();
            (
                std::mem::take(&mut inner.changed),
                std::mem::take(&mut inner.deltas),
            )
        };
        for account in changed {
            let logged = match deltas.remove(&account).flatten() {
                Some(list) => Some(serde_json::to_string(&list).map_err(super::backend)?),
                None => None,
            };
            let version: i64 = sqlx::query_scalar(
                "WITH bumped AS (
                     UPDATE accounts SET routing_version = routing_version + 1 WHERE id = $1 RETURNING routing_version
                 ), logged AS (
                     INSERT INTO routing_deltas (account_id, version, deltas) SELECT $1, routing_version, $2 FROM bumped
                 )
                 SELECT routing_version FROM bumped",
            )
            .bind(account.0)
            .bind(logged)
            .fetch_one(&mut *c)
            .await?;
            if version % DELTAS_PRUNE_EVERY == 0 {
                sqlx::query("DELETE FROM routing_deltas WHERE account_id = $1 AND version <= $2")
                    .bind(account.0)
                    .bind(version - DELTAS_KEPT)
                    .execute(&mut *c)
                    .await?;
            }
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

/// Whether this transaction holds the advisory lock `key` already (false
/// outside a transaction's context: then ask PostgreSQL). A batch of
/// creates asks once per ticket; the locks are re-entrant, so asking again
/// would only cost a round trip.
pub fn lock_held(key: i64) -> bool {
    TX.try_with(|tx| tx.lock().locks.contains(&key))
        .unwrap_or(false)
}

/// This transaction took the advisory lock `key` (it holds it to its end;
/// a retried transaction starts with a new context).
pub fn note_lock_held(key: i64) {
    let _ = TX.try_with(|tx| tx.lock().locks.push(key));
}

/// Makes this transaction's creates share their reads ([`Shared`]).
pub fn share_reads() {
    let _ = TX.try_with(|tx| tx.lock().shared = Some(Shared::default()));
}

/// Runs `f` on the batch's shared reads; `None` outside a batch.
pub fn shared<R>(f: impl FnOnce(&mut Shared) -> R) -> Option<R> {
    TX.try_with(|tx| tx.lock().shared.as_mut().map(f))
        .ok()
        .flatten()
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
        let (version, settings_version): (i64, i64) =
            sqlx::query_as("SELECT routing_version, settings_version FROM accounts WHERE id = $1")
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
            .and_then(|tx| tx.kept.take(account));
        let kept = match kept {
            Some((at, state)) if at == version => Some(state),
            // Behind: follow what the other writers stored, if they all did.
            Some((at, state)) if at < version => {
                let caught = catch_up(c, account, at, version, state).await?;
                if caught.is_some() {
                    tx.as_ref()
                        .map(|tx| tx.kept.catch_ups.fetch_add(1, Ordering::Relaxed));
                }
                caught
            }
            _ => None,
        };
        let mut state = match kept {
            Some(state) => state,
            None => {
                if let Some(tx) = &tx {
                    tx.kept.loads.fetch_add(1, Ordering::Relaxed);
                    // A load reads the counters and `last_assigned_at` from
                    // the tables, which a batch writes only at its end: it
                    // must not load after its first write. (It loads at its
                    // first decision; failing here reruns its creates one
                    // by one, in case something ever changes that.)
                    let pending = tx
                        .lock()
                        .shared
                        .as_ref()
                        .is_some_and(|s| !s.deferred.is_empty());
                    if pending {
                        return Err(crate::StoreError::Backend(
                            "routing state reloaded with a batch's writes pending".into(),
                        ));
                    }
                }
                load(c, account).await?
            }
        };
        let Some(tx) = &tx else {
            return Ok(f(&mut state));
        };
        tx.lock().working = Some(Working {
            account,
            settings_version,
            version: Some(version),
            state,
        });
    }
    let tx = tx.expect("checked above");
    let mut inner = tx.lock();
    let w = inner.working.as_mut().expect("set above");
    Ok(f(&mut w.state))
}

/// What every change of an account reads besides its tickets and routing
/// state, kept per node like the routing state but checked against its own
/// version (`accounts.settings_version`), which the writes of any of it
/// bump ([`settings_changed`]). A transaction reads the version with the
/// routing version when it has read that (one statement for both), else on
/// its own; then only a node whose copy is older reads the settings again.
///
/// Exact enough: the version is read before the settings, so a copy is
/// never labelled with a version newer than its contents; a copy a little
/// newer than its label is what a transaction running a moment later
/// would have seen anyway.
#[derive(Debug, Default)]
pub struct AccountSettings {
    /// Notification defaults and every user's own settings.
    pub prefs: switchboard_domain::notifications::Preferences,
    /// The notification e-mail cap; `None` without e-mail settings.
    pub cap: Option<u32>,
    /// The enabled workflows, by id.
    pub workflows: Vec<switchboard_domain::workflows::Workflow>,
}

/// Where a settings read stands: this node's current copy, or the version
/// to read the settings at (and keep them under, via [`keep_settings`]).
pub enum SettingsLookup {
    /// The copy at the current version.
    Kept(Arc<AccountSettings>),
    /// None is current: read them; keep them under `version` if `keep`.
    Read {
        /// The version read.
        version: i64,
        /// False when this transaction changed them (its view is not yet
        /// anybody else's).
        keep: bool,
    },
}

/// Looks for the account's settings (see [`AccountSettings`]).
pub async fn lookup_settings(c: &mut PgConnection, account: AccountId) -> Result<SettingsLookup> {
    let tx = TX.try_with(Tx::clone).ok();
    let (seen, changed_here) = match &tx {
        Some(tx) => {
            let inner = tx.lock();
            let changed = inner.settings_changed.contains(&account);
            let seen = inner
                .working
                .as_ref()
                .filter(|w| w.account == account && !changed)
                .map(|w| w.settings_version);
            (seen, changed)
        }
        None => (None, false),
    };
    let version = match seen {
        Some(v) => v,
        None => {
            sqlx::query_scalar("SELECT settings_version FROM accounts WHERE id = $1")
                .bind(account.0)
                .fetch_one(&mut *c)
                .await?
        }
    };
    if let Some(tx) = tx.as_ref().filter(|_| !changed_here) {
        let kept = tx.kept.settings.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((at, s)) = kept.get(&account)
            && *at == version
        {
            return Ok(SettingsLookup::Kept(s.clone()));
        }
    }
    Ok(SettingsLookup::Read {
        version,
        keep: tx.is_some() && !changed_here,
    })
}

/// Keeps `settings`, read at `version`, as this node's copy (unless a newer
/// one is kept already).
pub fn keep_settings(account: AccountId, version: i64, settings: Arc<AccountSettings>) {
    let _ = TX.try_with(|tx| {
        let mut kept = tx.kept.settings.lock().unwrap_or_else(|e| e.into_inner());
        if kept.get(&account).is_none_or(|(at, _)| *at < version) {
            kept.insert(account, (version, settings));
        }
    });
}

/// Bumps the account's settings version: this transaction changed its
/// notification preferences or e-mail settings, or a workflow. (Its own
/// later reads load the settings afresh.)
pub async fn settings_changed(c: &mut PgConnection, account: AccountId) -> Result<()> {
    sqlx::query("UPDATE accounts SET settings_version = settings_version + 1 WHERE id = $1")
        .bind(account.0)
        .execute(&mut *c)
        .await?;
    let _ = TX.try_with(|tx| {
        let mut inner = tx.lock();
        if !inner.settings_changed.contains(&account) {
            inner.settings_changed.push(account);
        }
    });
    Ok(())
}

/// Records a change to something the account's state mirrors, made by this
/// transaction, and applies it to the working copy if there is one.
pub fn changed(account: AccountId, delta: StateDelta) {
    let _ = TX.try_with(|tx| {
        let mut inner = tx.lock();
        if !inner.changed.contains(&account) {
            inner.changed.push(account);
        }
        if let Some(w) = inner.working.as_mut().filter(|w| w.account == account) {
            w.state.apply(&delta);
        }
        if let Some(list) = inner
            .deltas
            .entry(account)
            .or_insert_with(|| Some(Vec::new()))
        {
            list.push(delta);
        }
    });
}

/// Records a change that is simpler to read again than to follow (users,
/// teams, skills, channels): the version moves, no copy is kept, and other
/// nodes read the state again.
pub fn invalidate(account: AccountId) {
    let _ = TX.try_with(|tx| {
        let mut inner = tx.lock();
        if !inner.changed.contains(&account) {
            inner.changed.push(account);
        }
        inner.deltas.insert(account, None);
        if inner.working.as_ref().is_some_and(|w| w.account == account) {
            inner.working = None;
        }
    });
}

/// How many versions of deltas each account keeps: a node further behind
/// reads the whole state again.
const DELTAS_KEPT: i64 = 1024;

/// Old deltas are deleted by the writer of every version divisible by this.
const DELTAS_PRUNE_EVERY: i64 = 256;

/// Brings `state`, kept at version `at`, up to `version` by applying the
/// deltas stored by every writer in between, in version order. `None` when
/// one of them stored none (a structural change) or they are gone: then
/// the state must be read again.
///
/// Exact because each version's deltas are exactly the changes its
/// transaction made to what the state mirrors, versions are handed out by
/// the row lock on the account in commit order, and the caller holds the
/// account's routing lock, so nothing commits meanwhile.
async fn catch_up(
    c: &mut PgConnection,
    account: AccountId,
    at: i64,
    version: i64,
    mut state: RoutingState,
) -> Result<Option<RoutingState>> {
    if version - at > DELTAS_KEPT {
        return Ok(None);
    }
    let found = sqlx::query(
        "SELECT version, deltas FROM routing_deltas WHERE account_id = $1 AND version > $2 AND version <= $3
         ORDER BY version",
    )
    .bind(account.0)
    .bind(at)
    .bind(version)
    .fetch_all(&mut *c)
    .await?;
    if found.len() as i64 != version - at {
        return Ok(None);
    }
    for row in found {
        let Some(text) = rows::get::<Option<String>>(&row, 1)? else {
            return Ok(None);
        };
        let Ok(deltas) = serde_json::from_str::<Vec<StateDelta>>(&text) else {
            return Ok(None);
        };
        for d in &deltas {
            state.apply(d);
        }
    }
    metrics::counter!("switchboard_routing_state_caught_up_total").increment(1);
    Ok(Some(state))
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
