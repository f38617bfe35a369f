//! Authentication and roles.
//!
//! Integrations and scripts authenticate with bearer API tokens. A token is
//! 32 random bytes shown once at creation; only its SHA-256 is stored, so a
//! leaked database does not leak usable tokens. (A fast hash is right here:
//! the secret is random and long, unlike a password, which gets argon2.)
//!
//! Roles are enforced on the server: handlers take a [`Caller`] and call
//! [`Caller::require_admin`] or [`Caller::require_can_manage`] before changing
//! configuration.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use axum::{extract::FromRequestParts, http::request::Parts};
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use switchboard_domain::{Principal, Role};

use crate::{AppState, problem::ApiError};

/// Prefix of every API token, so that secret scanners can recognise them.
pub const TOKEN_PREFIX: &str = "sb_";

/// A new random API token (the secret the client keeps).
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// The stored form of a token.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A random, unguessable public key (for channel URLs).
pub fn new_public_key() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// The authenticated caller of a request. Extracting it fails with 401 when
/// the request has no valid bearer token.
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

impl Caller {
    /// Fails with 403 unless the caller is an admin or super admin.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.0.role.is_admin() {
            Ok(())
        } else {
            Err(ApiError::forbidden(
                "only admins can change the account's configuration",
            ))
        }
    }

    /// Fails with 403 unless the caller may manage users with `role`.
    pub fn require_can_manage(&self, role: Role) -> Result<(), ApiError> {
        self.require_admin()?;
        if self.0.role.can_manage(role) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "only super admins can manage users with role `{role}`"
            )))
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| t.starts_with(TOKEN_PREFIX))
            .ok_or(ApiError::Unauthorized)?;
        let hash = hash_token(token);
        if let Some(principal) = state.auth_cache.get(&hash) {
            return Ok(Caller(principal));
        }
        let principal = state
            .store
            .authenticate(hash.clone())
            .await?
            .ok_or(ApiError::Unauthorized)?;
        state.auth_cache.put(hash, principal.clone());
        Ok(Caller(principal))
    }
}

/// Recently authenticated tokens, so that a busy integration does not cost a
/// database read per request. Entries live [`AuthCache::TTL`]; changing a
/// user through this server clears the cache at once, so a deactivation or
/// a role change applies immediately on this node and within the TTL on
/// other nodes sharing the database. Only successes are cached.
#[derive(Debug, Default)]
pub struct AuthCache {
    entries: Mutex<HashMap<String, (Principal, Instant)>>,
}

impl AuthCache {
    /// How long a cached authentication is trusted.
    pub const TTL: Duration = Duration::from_secs(5);
    /// Bound on the entries kept (beyond it, expired ones are dropped, then all).
    const MAX_ENTRIES: usize = 10_000;

    fn get(&self, hash: &str) -> Option<Principal> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(hash)
            .filter(|(_, at)| at.elapsed() < Self::TTL)
            .map(|(p, _)| p.clone())
    }

    fn put(&self, hash: String, principal: Principal) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= Self::MAX_ENTRIES {
            entries.retain(|_, (_, at)| at.elapsed() < Self::TTL);
            if entries.len() >= Self::MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(hash, (principal, Instant::now()));
    }

    /// Forgets every cached authentication (after a user changed).
    pub fn clear(&self) {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_hashed() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert!(a.starts_with(TOKEN_PREFIX) && a.len() > 40);
        assert_eq!(hash_token(&a), hash_token(&a));
        assert_ne!(hash_token(&a), hash_token(&b));
        assert!(!hash_token(&a).contains(&a[3..]));
    }
}
