//! Configuration, from lowest to highest precedence: built-in defaults, an
//! optional TOML file (`--config` / `SWITCHBOARD_CONFIG`), `SWITCHBOARD_*`
//! environment variables, then command-line flags. (clap reads a flag or,
//! failing that, its environment variable; the file fills what both left
//! unset.)

use std::{
    fmt,
    net::SocketAddr,
    path::{Path, PathBuf},
};

use anyhow::{Context, bail};
use serde::Deserialize;

/// The optional configuration file. Every key is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Where the SQLite database and the admin token live.
    pub data_dir: Option<PathBuf>,
    /// Address to listen on.
    pub listen: Option<SocketAddr>,
    /// Database URL (`sqlite://PATH`); default: `<data_dir>/switchboard.db`.
    pub database_url: Option<String>,
    /// Log filter (`info`, `switchboard=debug`, ...).
    pub log: Option<String>,
    /// Address of the SMTP listener for inbound e-mail; none by default.
    pub smtp_listen: Option<SocketAddr>,
    /// The outbox's first retry delay, in milliseconds (doubling after).
    pub outbox_backoff_ms: Option<u64>,
    /// Attempts after which an outbox row is `failed`.
    pub outbox_max_attempts: Option<u32>,
    /// How many days of ticket events are kept for `Last-Event-ID`.
    pub event_retention_days: Option<u32>,
    /// The console's public base URL, for links in notification e-mails.
    pub public_url: Option<String>,
    /// The most workflow steps one ticket runs in an hour.
    pub workflow_steps_per_hour: Option<u32>,
}

/// The tuning settings, from flags or environment (each may be unset).
#[derive(Debug, Clone, Copy, Default)]
pub struct Tuning {
    /// See [`FileConfig::outbox_backoff_ms`].
    pub outbox_backoff_ms: Option<u64>,
    /// See [`FileConfig::outbox_max_attempts`].
    pub outbox_max_attempts: Option<u32>,
    /// See [`FileConfig::event_retention_days`].
    pub event_retention_days: Option<u32>,
}

impl FileConfig {
    /// Reads `path`, or returns the empty configuration when there is none.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        let Some(path) = path else {
            return Ok(Self::default());
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        toml::from_str(&text)
            .with_context(|| format!("invalid configuration file {}", path.display()))
    }
}

/// A database URL whose password never appears in logs or `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

/// Which backend a database URL selects.
#[derive(PartialEq, Eq)]
pub enum Backend {
    /// An SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL server (the URL, password included: never log it).
    Postgres(String),
}

impl DatabaseUrl {
    /// The backend: PostgreSQL for `postgres://` and `postgresql://` URLs,
    /// otherwise an SQLite file at `sqlite://PATH`, `sqlite:PATH` or a bare path.
    pub fn backend(&self) -> anyhow::Result<Backend> {
        let url = self.0.as_str();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Backend::Postgres(url.to_owned()));
        }
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(url);
        if path.is_empty() {
            bail!("the database URL names no file");
        }
        Ok(Backend::Sqlite(PathBuf::from(path)))
    }
}

impl fmt::Debug for Backend {
    /// Like [`DatabaseUrl`]'s: the password is redacted.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite(path) => write!(f, "Sqlite({path:?})"),
            Self::Postgres(url) => write!(f, "Postgres({:?})", DatabaseUrl(url.clone())),
        }
    }
}

impl From<String> for DatabaseUrl {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl fmt::Debug for DatabaseUrl {
    /// Shows the URL with any `user:password@` password replaced.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let url = &self.0;
        let redacted = match (url.find("://"), url.rfind('@')) {
            (Some(scheme), Some(at)) if at > scheme => {
                let userinfo = &url[scheme + 3..at];
                match userinfo.split_once(':') {
                    Some((user, _)) => {
                        format!("{}{user}:[redacted]{}", &url[..scheme + 3], &url[at..])
                    }
                    None => url.clone(),
                }
            }
            _ => url.clone(),
        };
        write!(f, "{redacted:?}")
    }
}

/// The settings `serve` runs with, after merging.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Data directory.
    pub data_dir: PathBuf,
    /// Listen address.
    pub listen: SocketAddr,
    /// Database.
    pub database: DatabaseUrl,
    /// Log filter.
    pub log: String,
    /// SMTP listener address, when inbound e-mail is received directly.
    pub smtp_listen: Option<SocketAddr>,
    /// The outbox's retry policy.
    pub retry: switchboard_domain::outbox::RetryPolicy,
    /// How long ticket events are kept (for clients resuming a stream).
    pub event_retention: std::time::Duration,
    /// The console's public base URL (`--public-url` over the file's
    /// `public_url`), for links in notification e-mails.
    pub public_url: Option<String>,
    /// The most workflow steps one ticket runs in any hour.
    pub workflow_steps_per_hour: u32,
}

/// Default event retention, in days.
pub const DEFAULT_EVENT_RETENTION_DAYS: u32 = 7;

/// Default data directory.
pub const DEFAULT_DATA_DIR: &str = "./switchboard-data";
/// Default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// Merges flag/env values over the file over the defaults.
pub fn merge(
    file: FileConfig,
    data_dir: Option<PathBuf>,
    listen: Option<SocketAddr>,
    database: Option<String>,
    log: Option<String>,
    smtp_listen: Option<SocketAddr>,
    tuning: Tuning,
) -> ServeConfig {
    let mut retry = switchboard_domain::outbox::RetryPolicy::default();
    if let Some(ms) = tuning.outbox_backoff_ms.or(file.outbox_backoff_ms) {
        retry.base = std::time::Duration::from_millis(ms.max(1));
    }
    if let Some(n) = tuning.outbox_max_attempts.or(file.outbox_max_attempts) {
        retry.max_attempts = n.max(1);
    }
    let days = tuning
        .event_retention_days
        .or(file.event_retention_days)
        .unwrap_or(DEFAULT_EVENT_RETENTION_DAYS)
        .max(1);
    let data_dir = data_dir
        .or(file.data_dir)
        .unwrap_or_else(|| DEFAULT_DATA_DIR.into());
    let database = database
        .or(file.database_url)
        .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("switchboard.db").display()));
    ServeConfig {
        listen: listen
            .or(file.listen)
            .unwrap_or_else(|| DEFAULT_LISTEN.parse().expect("valid default")),
        database: DatabaseUrl(database),
        log: log.or(file.log).unwrap_or_else(|| "info".into()),
        smtp_listen: smtp_listen.or(file.smtp_listen),
        data_dir,
        retry,
        event_retention: std::time::Duration::from_secs(u64::from(days) * 86_400),
        public_url: file.public_url,
        workflow_steps_per_hour: file
            .workflow_steps_per_hour
            .unwrap_or(switchboard_domain::workflows::execution::DEFAULT_STEPS_PER_TICKET_PER_HOUR),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_beat_the_file_which_beats_defaults() {
        let file: FileConfig =
            toml::from_str("listen = \"127.0.0.1:9000\"\nlog = \"debug\"").unwrap();
        let c = merge(
            file,
            Some("/tmp/x".into()),
            None,
            None,
            Some("warn".into()),
            None,
            Tuning::default(),
        );
        assert_eq!(c.listen, "127.0.0.1:9000".parse().unwrap());
        assert_eq!(c.log, "warn");
        assert_eq!(
            c.database.backend().unwrap(),
            Backend::Sqlite(PathBuf::from("/tmp/x/switchboard.db"))
        );
        let d = merge(
            FileConfig::default(),
            None,
            None,
            None,
            None,
            None,
            Tuning::default(),
        );
        assert_eq!(d.listen, DEFAULT_LISTEN.parse().unwrap());
        assert_eq!(d.data_dir, PathBuf::from(DEFAULT_DATA_DIR));
        assert_eq!(d.smtp_listen, None);
        assert_eq!(
            d.event_retention,
            std::time::Duration::from_secs(7 * 86_400)
        );
        assert_eq!(d.retry, switchboard_domain::outbox::RetryPolicy::default());
    }

    #[test]
    fn outbox_and_event_settings_follow_the_same_precedence() {
        let file: FileConfig = toml::from_str(
            "outbox_backoff_ms = 250\noutbox_max_attempts = 3\nevent_retention_days = 2",
        )
        .unwrap();
        let flags = Tuning {
            outbox_max_attempts: Some(5),
            ..Tuning::default()
        };
        let c = merge(file, None, None, None, None, None, flags);
        assert_eq!(c.retry.base, std::time::Duration::from_millis(250));
        assert_eq!(c.retry.max_attempts, 5);
        assert_eq!(
            c.event_retention,
            std::time::Duration::from_secs(2 * 86_400)
        );
    }

    #[test]
    fn the_smtp_listener_is_opt_in_and_follows_the_same_precedence() {
        let file: FileConfig = toml::from_str("smtp_listen = \"127.0.0.1:2525\"").unwrap();
        let from_file = merge(file, None, None, None, None, None, Tuning::default());
        assert_eq!(
            from_file.smtp_listen,
            Some("127.0.0.1:2525".parse().unwrap())
        );
        let file: FileConfig = toml::from_str("smtp_listen = \"127.0.0.1:2525\"").unwrap();
        let flag = Some("0.0.0.0:25".parse().unwrap());
        assert_eq!(
            merge(file, None, None, None, None, flag, Tuning::default()).smtp_listen,
            flag
        );
        assert!(toml::from_str::<FileConfig>("smtp_listen = \"nowhere\"").is_err());
    }

    #[test]
    fn unknown_keys_in_the_file_are_refused() {
        assert!(toml::from_str::<FileConfig>("lisen = \"x\"").is_err());
    }

    #[test]
    fn passwords_are_redacted_in_debug_output() {
        let url = DatabaseUrl::from("postgres://app:hunter2@db:5432/sb".to_owned());
        let shown = format!("{url:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("app:[redacted]@db"));
        let backend = url.backend().unwrap();
        assert!(matches!(backend, Backend::Postgres(_)));
        assert!(!format!("{backend:?}").contains("hunter2"));
    }
}
