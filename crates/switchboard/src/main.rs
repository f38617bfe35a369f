//! `switchboard`: the help desk router's one binary. Parses the command line,
//! loads the configuration, and hands over to the library crates.

mod config;

use std::{net::SocketAddr, path::PathBuf, sync::Arc};

use anyhow::Context;
use clap::{Parser, Subcommand};
use switchboard_domain::SystemClock;
use switchboard_server::{AppState, setup};
use switchboard_store::{PgStore, SqliteStore, Store};

/// mimalloc instead of glibc's allocator: under many threads glibc's arenas
/// cost about a tenth of the CPU of a ticket create (measured with perf).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(name = "switchboard", version, about = "Help desk ticket router")]
struct Cli {
    /// Optional TOML configuration file.
    #[arg(long, global = true, env = "SWITCHBOARD_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs the server (migrating the database first).
    Serve(ServeArgs),
    /// Manages accounts.
    #[command(subcommand)]
    Account(AccountCommand),
    /// Copies an SQLite database into an empty PostgreSQL database (stop the
    /// server first).
    MigrateData {
        /// The SQLite database: `sqlite://PATH` or a path.
        #[arg(long)]
        from: String,
        /// The PostgreSQL database: `postgres://...` (it must hold no account).
        #[arg(long, hide_env_values = true)]
        to: String,
    },
}

/// Where the data is.
#[derive(Debug, clap::Args)]
struct StorageArgs {
    /// Data directory (SQLite database, admin token). Default: ./switchboard-data
    #[arg(long, env = "SWITCHBOARD_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Database URL; default: an SQLite file in the data directory.
    #[arg(
        long = "database",
        env = "SWITCHBOARD_DATABASE_URL",
        hide_env_values = true
    )]
    database: Option<String>,
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    #[command(flatten)]
    storage: StorageArgs,
    /// Address to listen on. Default: 127.0.0.1:8080
    #[arg(long, env = "SWITCHBOARD_LISTEN")]
    listen: Option<SocketAddr>,
    /// Log filter, e.g. `info` or `switchboard_store=debug`.
    #[arg(long, env = "SWITCHBOARD_LOG")]
    log: Option<String>,
    /// Also seed a small demo help desk (users, teams, channels, tickets).
    #[arg(long)]
    demo: bool,
    /// Receive e-mail for the e-mail channels by SMTP on this address, e.g.
    /// 127.0.0.1:2525. Off by default.
    #[arg(long, env = "SWITCHBOARD_SMTP_LISTEN")]
    smtp_listen: Option<SocketAddr>,
    /// The outbox's first retry delay in milliseconds (doubling, capped at
    /// an hour). Default: 2000
    #[arg(long, env = "SWITCHBOARD_OUTBOX_BACKOFF_MS")]
    outbox_backoff_ms: Option<u64>,
    /// Attempts after which a reply delivery is `failed`. Default: 15
    #[arg(long, env = "SWITCHBOARD_OUTBOX_MAX_ATTEMPTS")]
    outbox_max_attempts: Option<u32>,
    /// Days of ticket events kept for clients resuming with Last-Event-ID.
    /// Default: 7
    #[arg(long, env = "SWITCHBOARD_EVENT_RETENTION_DAYS")]
    event_retention_days: Option<u32>,
    /// The console's public base URL, e.g. https://desk.example.com:
    /// notification e-mails link to `<url>/tickets/<id>`.
    #[arg(long, env = "SWITCHBOARD_PUBLIC_URL")]
    public_url: Option<String>,
    /// The most workflow steps one ticket runs in any hour (across its
    /// workflows); further steps wait. Default: 100
    #[arg(long, env = "SWITCHBOARD_WORKFLOW_STEPS_PER_HOUR", value_parser = clap::value_parser!(u32).range(1..))]
    workflow_steps_per_hour: Option<u32>,
}

#[derive(Debug, Subcommand)]
enum AccountCommand {
    /// Creates an account with its own super admin and prints the admin's API token once.
    Create {
        /// The account's name.
        name: String,
        #[command(flatten)]
        storage: StorageArgs,
        /// The super admin's e-mail address.
        #[arg(long, default_value = "admin@localhost")]
        admin_email: String,
        /// The super admin's name.
        #[arg(long, default_value = "Admin")]
        admin_name: String,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let file = config::FileConfig::load(cli.config.as_deref())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Serve(args) => {
            let mut config = config::merge(
                file,
                args.storage.data_dir,
                args.listen,
                args.storage.database,
                args.log,
                args.smtp_listen,
                config::Tuning {
                    outbox_backoff_ms: args.outbox_backoff_ms,
                    outbox_max_attempts: args.outbox_max_attempts,
                    event_retention_days: args.event_retention_days,
                },
            );
            if args.public_url.is_some() {
                config.public_url = args.public_url;
            }
            if let Some(cap) = args.workflow_steps_per_hour {
                config.workflow_steps_per_hour = cap;
            }
            runtime.block_on(serve(config, args.demo))
        }
        Command::Account(AccountCommand::Create {
            name,
            storage,
            admin_email,
            admin_name,
        }) => {
            let config = config::merge(
                file,
                storage.data_dir,
                None,
                storage.database,
                None,
                None,
                config::Tuning::default(),
            );
            runtime.block_on(create_account(config, &name, &admin_name, &admin_email))
        }
        Command::MigrateData { from, to } => runtime.block_on(migrate_data(from, to)),
    }
}

/// The opened store, and how to close it when the server stops.
enum Opened {
    Sqlite(Arc<SqliteStore>),
    Postgres(Arc<PgStore>),
}

impl Opened {
    fn store(&self) -> Arc<dyn Store> {
        match self {
            Self::Sqlite(s) => s.clone(),
            Self::Postgres(s) => s.clone(),
        }
    }

    /// Commits what is queued (SQLite) or returns the connections (PostgreSQL).
    async fn close(&self) {
        match self {
            Self::Sqlite(s) => s.close(),
            Self::Postgres(s) => s.close().await,
        }
    }
}

async fn open_store(config: &config::ServeConfig) -> anyhow::Result<Opened> {
    std::fs::create_dir_all(&config.data_dir).with_context(|| {
        format!(
            "cannot create the data directory {}",
            config.data_dir.display()
        )
    })?;
    match config.database.backend()? {
        config::Backend::Sqlite(path) => {
            let store = SqliteStore::open(&path, Arc::new(SystemClock))
                .with_context(|| format!("cannot open the database {}", path.display()))?;
            Ok(Opened::Sqlite(Arc::new(store)))
        }
        config::Backend::Postgres(url) => {
            let store = PgStore::connect(&url, Arc::new(SystemClock))
                .await
                .with_context(|| format!("cannot open the database {:?}", config.database))?;
            Ok(Opened::Postgres(Arc::new(store)))
        }
    }
}

async fn serve(config: config::ServeConfig, demo: bool) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&config.log).context("invalid log filter")?,
        )
        .init();
    tracing::info!(?config, "starting");
    let opened = open_store(&config).await?;
    let store = opened.store();
    match setup::first_start(store.as_ref(), &config.data_dir).await? {
        setup::FirstStart::Created { token_file } => {
            println!(
                "Created the default account. The super admin's API token is in {}",
                token_file.display()
            );
        }
        setup::FirstStart::AlreadySetUp => {}
    }
    if demo && setup::seed_demo(store.as_ref()).await? {
        println!("Seeded the demo help desk.");
    }
    // One signal stops both listeners (HTTP and SMTP); spawned before
    // anything listens, so its handler is in place by the time a client
    // (or a test sending SIGTERM) can see the server.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let stopping = move || {
        let mut stopped = stopped.clone();
        async move {
            let _ = stopped.wait_for(|s| *s).await;
        }
    };
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop.send(true);
    });
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    println!("Switchboard listening on http://{}", listener.local_addr()?);
    let state = AppState::new(store.clone())
        .with_dispatcher(switchboard_server::dispatcher::DispatcherConfig {
            policy: config.retry,
            workflow_steps_per_hour: config.workflow_steps_per_hour,
            ..Default::default()
        })
        .with_public_url(config.public_url.clone());
    let smtp = match config.smtp_listen {
        Some(address) => {
            let smtp_listener = tokio::net::TcpListener::bind(address)
                .await
                .with_context(|| format!("cannot listen for SMTP on {address}"))?;
            let bound = smtp_listener.local_addr()?;
            tracing::info!(address = %bound, "SMTP listener started");
            println!("SMTP listening on {bound}");
            Some(tokio::spawn(switchboard_server::smtp::serve(
                smtp_listener,
                state.clone(),
                stopping(),
            )))
        }
        None => None,
    };
    let scheduler = tokio::spawn(switchboard_server::run_scheduler(
        store.clone(),
        std::time::Duration::from_secs(1),
    ));
    let retention = tokio::spawn(switchboard_server::run_event_retention(
        store.clone(),
        config.event_retention,
        std::time::Duration::from_secs(3600),
    ));
    switchboard_server::serve(listener, state, stopping()).await?;
    if let Some(smtp) = smtp {
        // Sessions storing a message finish before the store is closed.
        smtp.await.context("SMTP listener task")??;
    }
    scheduler.abort();
    retention.abort();
    // In-flight requests have finished; commit anything still queued.
    opened.close().await;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}

async fn create_account(
    config: config::ServeConfig,
    name: &str,
    admin_name: &str,
    admin_email: &str,
) -> anyhow::Result<()> {
    let opened = open_store(&config).await?;
    let (account, admin, token) =
        setup::create_account(opened.store().as_ref(), name, admin_name, admin_email).await?;
    opened.close().await;
    println!(
        "Created account {} ({}) with super admin {} <{}>.",
        account.id, account.name, admin.id, admin.email
    );
    println!("API token (shown once): {token}");
    Ok(())
}

async fn migrate_data(from: String, to: String) -> anyhow::Result<()> {
    let config::Backend::Sqlite(path) = config::DatabaseUrl::from(from).backend()? else {
        anyhow::bail!("--from must be an SQLite database (sqlite://PATH or a path)");
    };
    let target = config::DatabaseUrl::from(to);
    let config::Backend::Postgres(url) = target.backend()? else {
        anyhow::bail!("--to must be a postgres:// URL");
    };
    let copied = switchboard_store::migrate::sqlite_to_postgres(&path, &url)
        .await
        .with_context(|| format!("cannot migrate {} to {target:?}", path.display()))?;
    for (table, rows) in copied {
        println!("{table}: {rows} rows");
    }
    println!("Copied {} into {target:?}.", path.display());
    Ok(())
}
