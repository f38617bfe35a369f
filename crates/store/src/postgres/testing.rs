//! Test support: a fresh, empty schema on the test PostgreSQL server for
//! each test, so tests run in parallel on one database and leave nothing
//! behind.
//!
//! The server is `SWITCHBOARD_TEST_POSTGRES` (default
//! `postgres://postgres@127.0.0.1:5432/test`). When it cannot be reached,
//! tests are skipped with a message, except under `CI=true`, where a missing
//! PostgreSQL fails the run: CI must test both backends.

use sqlx::{Connection, PgConnection};

/// The test server's URL.
pub fn server_url() -> String {
    std::env::var("SWITCHBOARD_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// Whether the test server can be reached: `false` (with a message) outside
/// CI when it cannot; panics under `CI=true`.
pub async fn available() -> bool {
    match TestDatabase::connect_admin().await {
        Some(c) => {
            let _ = c.close().await;
            true
        }
        None => false,
    }
}

/// A schema of its own on the test server; dropped (with everything in it)
/// when this value is dropped.
pub struct TestDatabase {
    /// A connection URL whose `search_path` is the schema: pass it to
    /// [`PgStore::connect`](super::PgStore::connect) or to
    /// `switchboard serve --database`.
    pub url: String,
    schema: String,
}

impl TestDatabase {
    /// Creates the schema. `None` if the server is unreachable outside CI;
    /// panics under `CI=true`.
    pub async fn create() -> Option<Self> {
        let server = server_url();
        let mut admin = Self::connect_admin().await?;
        let schema = format!(
            "sbt_{}_{}",
            std::process::id(),
            (jiff::Timestamp::now().as_nanosecond() as u64 % 1_000_000_000_000)
                ^ u64::from(rand_suffix())
        );
        sqlx::query(&format!("CREATE SCHEMA {schema}"))
            .execute(&mut admin)
            .await
            .expect("create the test schema");
        let _ = admin.close().await;
        let sep = if server.contains('?') { '&' } else { '?' };
        let url = format!("{server}{sep}options=-c%20search_path%3D{schema}");
        Some(Self { url, schema })
    }
}

impl TestDatabase {
    async fn connect_admin() -> Option<PgConnection> {
        let server = server_url();
        match PgConnection::connect(&server).await {
            Ok(c) => Some(c),
            Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
                panic!("PostgreSQL is required under CI=true, and {server} failed: {e}")
            }
            Err(e) => {
                eprintln!("skipping: PostgreSQL at {server} is unreachable ({e})");
                None
            }
        }
    }
}

/// A few bits that differ between tests started in the same nanosecond.
fn rand_suffix() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed).wrapping_mul(7919)
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Drop runs outside any runtime we may block: use a thread with its
        // own small runtime.
        let (server, schema) = (server_url(), self.schema.clone());
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                if let Ok(mut c) = PgConnection::connect(&server).await {
                    let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                        .execute(&mut c)
                        .await;
                    let _ = c.close().await;
                }
            });
        })
        .join();
    }
}
