//! What every change of an account reads besides its tickets and routing
//! state, on PostgreSQL: notification defaults and preferences, the
//! notification e-mail settings, the enabled workflows. Read through the
//! node's kept copy (`routing_state::settings`); every write of any of them
//! calls `routing_state::settings_changed` in its transaction. A leaf:
//! `notifications` and `workflows` both read from here.

use std::sync::Arc;

use serde_json::{Map, Value};
use sqlx::{PgConnection, postgres::PgRow};
use switchboard_domain::notifications::{self as n, Method, Preferences, Topic};
use switchboard_domain::workflows::{Workflow, WorkflowId};
use switchboard_domain::*;

use super::routing_state::{self, AccountSettings, SettingsLookup};
use super::{backend, rows};
use crate::Result;

/// The account's settings, from this node's copy when it is current.
pub(super) async fn get(c: &mut PgConnection, account: AccountId) -> Result<Arc<AccountSettings>> {
    let (version, keep) = match routing_state::lookup_settings(c, account).await? {
        SettingsLookup::Kept(s) => return Ok(s),
        SettingsLookup::Read { version, keep } => (version, keep),
    };
    let prefs = preferences(c, account, None).await?;
    let cap = n::account_cap(&email_settings(c, account).await?);
    let workflows = enabled_workflows(c, account).await?;
    let loaded = Arc::new(AccountSettings {
        prefs,
        cap,
        workflows,
    });
    if keep {
        routing_state::keep_settings(account, version, loaded.clone());
    }
    Ok(loaded)
}

pub(super) const COLUMNS: &str = "id, spec, created_at, updated_at";

pub(super) fn workflow(r: &PgRow) -> Result<Workflow> {
    Ok(Workflow {
        id: WorkflowId(rows::get(r, 0)?),
        spec: rows::json(r, 1)?,
        created_at: rows::ts(rows::get(r, 2)?),
        updated_at: rows::ts(rows::get(r, 3)?),
    })
}

pub(super) async fn enabled_workflows(
    c: &mut PgConnection,
    account: AccountId,
) -> Result<Vec<Workflow>> {
    let found = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM workflows WHERE account_id = $1 AND enabled ORDER BY id"
    ))
    .bind(account.0)
    .fetch_all(&mut *c)
    .await?;
    rows::all(found, workflow)
}

/// See `sqlite::notifications::preferences`.
pub(super) async fn preferences(
    c: &mut PgConnection,
    account: AccountId,
    user: Option<UserId>,
) -> Result<Preferences> {
    let mut prefs = Preferences::default();
    let found = sqlx::query(
        "SELECT topic, method, enabled FROM notification_defaults WHERE account_id = $1",
    )
    .bind(account.0)
    .fetch_all(&mut *c)
    .await?;
    for r in &found {
        let key = (rows::parsed::<Topic>(r, 0)?, rows::parsed::<Method>(r, 1)?);
        prefs.defaults.insert(key, rows::flag(r, 2)?);
    }
    let found = sqlx::query(
        "SELECT user_id, topic, method, enabled FROM notification_preferences WHERE account_id = $1 AND ($2::BIGINT IS NULL OR user_id = $2)",
    )
    .bind(account.0)
    .bind(user.map(|u| u.0))
    .fetch_all(&mut *c)
    .await?;
    for r in &found {
        let key = (
            UserId(rows::get(r, 0)?),
            rows::parsed::<Topic>(r, 1)?,
            rows::parsed::<Method>(r, 2)?,
        );
        prefs.users.insert(key, rows::flag(r, 3)?);
    }
    Ok(prefs)
}

pub(super) async fn email_settings(
    c: &mut PgConnection,
    account: AccountId,
) -> Result<Map<String, Value>> {
    let stored: Option<String> =
        sqlx::query_scalar("SELECT settings FROM notification_email WHERE account_id = $1")
            .bind(account.0)
            .fetch_optional(&mut *c)
            .await?;
    match stored {
        Some(s) => serde_json::from_str(&s).map_err(backend),
        None => Ok(Map::new()),
    }
}
