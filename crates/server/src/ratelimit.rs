//! Rate limits for the endpoints anyone may call (form posts, the chat
//! visitor API): in-memory token buckets, one per client IP and channel and
//! one per channel, and the client IP they are keyed by.
//!
//! A bucket holds at most a minute's allowance and refills continuously, so
//! a client may burst up to its limit and then gets one request every
//! `60 / limit` seconds. A refused request takes nothing from any bucket
//! (a client over its own limit does not eat the channel's allowance).
//!
//! The buckets live in the process: with several nodes each node counts on
//! its own, so the effective limit is the configured one times the number of
//! nodes a load balancer spreads a client over. That is good enough to stop
//! a script flooding a form; exact global limits would cost a database write
//! per request.

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    sync::Mutex,
    time::Instant,
};

use axum::{
    extract::{ConnectInfo, FromRequestParts},
    http::request::Parts,
};
use serde_json::{Map, Value};

use crate::problem::ApiError;

/// Limits of one channel, in requests per minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Per client IP (and channel).
    pub per_ip_per_minute: u32,
    /// For the whole channel, every client together.
    pub per_channel_per_minute: u32,
}

impl Limits {
    /// The limits in a channel's `settings.rate_limit`
    /// (`{"per_ip_per_minute": 10, "per_channel_per_minute": 600}`, either
    /// key optional), over `defaults`. A value that is not a positive
    /// integer is a misconfiguration: an internal error (logged), since the
    /// caller did nothing wrong.
    pub fn from_settings(
        settings: &Map<String, Value>,
        defaults: Limits,
    ) -> Result<Self, ApiError> {
        let Some(config) = settings.get("rate_limit").filter(|v| !v.is_null()) else {
            return Ok(defaults);
        };
        let read = |key: &str, default: u32| -> Result<u32, ApiError> {
            match config.get(key) {
                None | Some(Value::Null) => Ok(default),
                Some(v) => v
                    .as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .filter(|n| *n > 0)
                    .ok_or_else(|| {
                        ApiError::Internal(format!(
                            "settings.rate_limit.{key} must be a positive integer, got {v}"
                        ))
                    }),
            }
        };
        if !config.is_object() {
            return Err(ApiError::Internal(format!(
                "settings.rate_limit must be an object, got {config}"
            )));
        }
        Ok(Self {
            per_ip_per_minute: read("per_ip_per_minute", defaults.per_ip_per_minute)?,
            per_channel_per_minute: read(
                "per_channel_per_minute",
                defaults.per_channel_per_minute,
            )?,
        })
    }
}

/// One bucket: tokens left (fractional while refilling) and when counted.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    /// Tokens available at `now` for a limit of `per_minute`.
    fn available(&self, now: Instant, per_minute: u32) -> f64 {
        let capacity = f64::from(per_minute);
        let refill = now.duration_since(self.at).as_secs_f64() * capacity / 60.0;
        (self.tokens + refill).min(capacity)
    }
}

/// Buckets are forgotten once full again (they then mean nothing), swept
/// whenever the map has doubled since the last sweep, from this size on.
const SWEEP_FROM: usize = 4_096;

/// The token buckets of one server process.
#[derive(Debug)]
pub struct RateLimiter {
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Keyed by channel key (unique across databases, unlike ids) and the
    /// client IP, or the channel key alone for the channel's bucket.
    buckets: HashMap<(String, Option<IpAddr>), (Bucket, u32)>,
    next_sweep: usize,
}

impl Default for RateLimiter {
    fn default() -> Self {
        Self {
            inner: Mutex::new(Inner {
                buckets: HashMap::new(),
                next_sweep: SWEEP_FROM,
            }),
        }
    }
}

impl RateLimiter {
    /// Takes one request from `channel_key`'s bucket and from `client`'s
    /// bucket on it (when the client's address is known), or refuses with
    /// [`ApiError::TooManyRequests`] and the seconds until both would allow
    /// one, taking nothing.
    pub fn check(
        &self,
        channel_key: &str,
        client: Option<IpAddr>,
        limits: Limits,
    ) -> Result<(), ApiError> {
        self.check_at(Instant::now(), channel_key, client, limits)
    }

    fn check_at(
        &self,
        now: Instant,
        channel_key: &str,
        client: Option<IpAddr>,
        limits: Limits,
    ) -> Result<(), ApiError> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let mut keys = vec![(
            (channel_key.to_owned(), None),
            limits.per_channel_per_minute,
        )];
        if let Some(ip) = client {
            keys.push(((channel_key.to_owned(), Some(ip)), limits.per_ip_per_minute));
        }
        let mut wait: f64 = 0.0;
        for (key, per_minute) in &keys {
            let available = inner
                .buckets
                .get(key)
                .map_or(f64::from(*per_minute), |(b, _)| {
                    b.available(now, *per_minute)
                });
            if available < 1.0 {
                wait = wait.max((1.0 - available) * 60.0 / f64::from(*per_minute));
            }
        }
        if wait > 0.0 {
            return Err(ApiError::TooManyRequests {
                retry_after_seconds: (wait.ceil() as u64).max(1),
            });
        }
        for (key, per_minute) in keys {
            let tokens = inner
                .buckets
                .get(&key)
                .map_or(f64::from(per_minute), |(b, _)| b.available(now, per_minute));
            inner.buckets.insert(
                key,
                (
                    Bucket {
                        tokens: tokens - 1.0,
                        at: now,
                    },
                    per_minute,
                ),
            );
        }
        if inner.buckets.len() >= inner.next_sweep {
            inner.buckets.retain(|_, (b, per_minute)| {
                b.available(now, *per_minute) < f64::from(*per_minute)
            });
            inner.next_sweep = (inner.buckets.len() * 2).max(SWEEP_FROM);
        }
        Ok(())
    }
}

/// The address of the client that made a request, for rate limits.
///
/// It is the TCP peer when the server records it (`ConnectInfo`), unless
/// that peer is on a loopback or private network, or unknown: then a
/// reverse proxy is assumed in front, and the last address of
/// `X-Forwarded-For` (the one the nearest proxy saw) is used instead. `None`
/// when neither is known; only the channel's bucket applies then.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        let forwarded = || {
            parts
                .headers
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .next_back()
                .and_then(|ip| ip.trim().parse::<IpAddr>().ok())
        };
        Ok(Self(match peer {
            Some(ip) if !behind_proxy(ip) => Some(ip),
            peer => forwarded().or(peer),
        }))
    }
}

/// Whether a peer address looks like a proxy of ours rather than a client.
fn behind_proxy(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_private() || v4.is_link_local(),
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback() || v4.is_private())
                // Unique local addresses, fc00::/7.
                || (v6.segments()[0] & 0xfe00) == 0xfc00
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const LIMITS: Limits = Limits {
        per_ip_per_minute: 2,
        per_channel_per_minute: 3,
    };

    fn retry(r: Result<(), ApiError>) -> Option<u64> {
        match r {
            Ok(()) => None,
            Err(ApiError::TooManyRequests {
                retry_after_seconds,
            }) => Some(retry_after_seconds),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn buckets_refuse_over_the_limit_and_refill() {
        let rl = RateLimiter::default();
        let t0 = Instant::now();
        let a: IpAddr = "203.0.113.1".parse().unwrap();
        let b: IpAddr = "203.0.113.2".parse().unwrap();
        assert_eq!(retry(rl.check_at(t0, "k", Some(a), LIMITS)), None);
        assert_eq!(retry(rl.check_at(t0, "k", Some(a), LIMITS)), None);
        // Two a minute: the next token comes in 30 s.
        assert_eq!(retry(rl.check_at(t0, "k", Some(a), LIMITS)), Some(30));
        // Another client still gets through, until the channel is full.
        assert_eq!(retry(rl.check_at(t0, "k", Some(b), LIMITS)), None);
        assert_eq!(retry(rl.check_at(t0, "k", Some(b), LIMITS)), Some(20));
        // Another channel is not affected.
        assert_eq!(retry(rl.check_at(t0, "other", Some(a), LIMITS)), None);
        // Refused requests took nothing: after 20 s the channel has a token,
        // and b (with one left) may use it.
        let t1 = t0 + Duration::from_secs(20);
        assert_eq!(retry(rl.check_at(t1, "k", Some(b), LIMITS)), None);
        assert_eq!(retry(rl.check_at(t1, "k", Some(a), LIMITS)), Some(20));
        let t2 = t0 + Duration::from_secs(60);
        assert_eq!(retry(rl.check_at(t2, "k", Some(a), LIMITS)), None);
    }

    #[test]
    fn unknown_clients_only_count_against_the_channel() {
        let rl = RateLimiter::default();
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(retry(rl.check_at(t0, "k", None, LIMITS)), None);
        }
        assert_eq!(retry(rl.check_at(t0, "k", None, LIMITS)), Some(20));
    }

    #[test]
    fn full_buckets_are_swept() {
        let rl = RateLimiter::default();
        let t0 = Instant::now();
        let limits = Limits {
            per_ip_per_minute: 1,
            per_channel_per_minute: u32::MAX,
        };
        let ip = |i: u32| Some(IpAddr::from(i.to_be_bytes()));
        // One bucket per client plus the channel's: one short of a sweep.
        for i in 0..SWEEP_FROM as u32 - 2 {
            rl.check_at(t0, "k", ip(i), limits).unwrap();
        }
        assert_eq!(rl.inner.lock().unwrap().buckets.len(), SWEEP_FROM - 1);
        // A minute later every one of them is full again: the next client
        // triggers the sweep; only the two buckets it just used are left
        // (its own and the channel's).
        rl.check_at(t0 + Duration::from_secs(61), "k", ip(u32::MAX), limits)
            .unwrap();
        assert_eq!(rl.inner.lock().unwrap().buckets.len(), 2);
    }

    #[test]
    fn settings_override_the_defaults() {
        let settings = |v: Value| v.as_object().unwrap().clone();
        let got = Limits::from_settings(
            &settings(serde_json::json!({"rate_limit": {"per_ip_per_minute": 5}})),
            LIMITS,
        )
        .unwrap();
        assert_eq!(
            got,
            Limits {
                per_ip_per_minute: 5,
                per_channel_per_minute: 3
            }
        );
        assert_eq!(Limits::from_settings(&Map::new(), LIMITS).unwrap(), LIMITS);
        for bad in [
            serde_json::json!({"rate_limit": {"per_ip_per_minute": 0}}),
            serde_json::json!({"rate_limit": 5}),
        ] {
            assert!(matches!(
                Limits::from_settings(&settings(bad), LIMITS),
                Err(ApiError::Internal(_))
            ));
        }
    }

    #[test]
    fn proxies_are_recognised() {
        for proxy in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.0.1",
            "::1",
            "fd00::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(behind_proxy(proxy.parse().unwrap()), "{proxy}");
        }
        for client in ["203.0.113.9", "2001:db8::1"] {
            assert!(!behind_proxy(client.parse().unwrap()), "{client}");
        }
    }
}
