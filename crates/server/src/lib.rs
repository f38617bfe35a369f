//! Switchboard's HTTP server: the REST API under `/api/v1`, operational
//! endpoints, metrics.
//!
//! Map of the modules:
//! - [`routes`]: one module per area, each exporting a `router()`; handlers
//!   only extract, call the store, and respond;
//! - [`auth`]: API tokens and the [`auth::Caller`] extractor; role checks;
//! - [`extract`]: JSON, path and query extractors that fail with problem bodies;
//! - [`problem`]: [`problem::ApiError`], the one error type, rendered as
//!   RFC 9457 problem JSON;
//! - [`openapi`]: the generated OpenAPI document;
//! - [`inbound`]: one way for every channel to open or join a ticket;
//! - [`outbound`]: agent replies sent back out through their channel (the
//!   [`outbound::Deliver`] trait, e-mail and WhatsApp senders);
//! - [`dispatcher`]: runs the transactional outbox's due rows (reply
//!   delivery), with retries and backoff;
//! - [`smtp`]: the SMTP listener that receives mail for the e-mail channels;
//! - [`request_log`]: the span requests are logged in (credentials redacted);
//! - [`setup`]: account creation, the first start (admin token file), demo data.
//!
//! [`app`] assembles the router; [`serve`] runs it until a shutdown signal.

pub mod auth;
pub mod dispatcher;
pub mod extract;
pub mod inbound;
pub mod openapi;
pub mod outbound;
pub mod problem;
pub mod ratelimit;
pub mod request_log;
pub mod routes;
pub mod setup;
pub mod smtp;

use std::{
    sync::{Arc, OnceLock},
    time::Instant,
};

use axum::{
    Router,
    extract::{MatchedPath, Request},
    http::Method,
    middleware::{self, Next},
    response::Response,
};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use switchboard_store::Store;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The storage backend.
    pub store: Arc<dyn Store>,
    /// Renders the Prometheus metrics.
    pub metrics: PrometheusHandle,
    /// Recently authenticated tokens.
    pub auth_cache: Arc<auth::AuthCache>,
    /// Turns `true` when the server starts shutting down, so long-lived
    /// responses (event streams) end and graceful shutdown can finish.
    pub shutdown: Arc<tokio::sync::watch::Sender<bool>>,
    /// Wakes this node's outbox dispatcher (a local write queued work).
    pub outbox_wake: Arc<tokio::sync::Notify>,
    /// How the dispatcher runs (timeouts, backoff).
    pub dispatcher: dispatcher::DispatcherConfig,
    /// What sends replies out (every channel's sender by default).
    pub deliver: Arc<dyn outbound::Deliver>,
    /// The console's public base URL (`https://desk.example.com`), for
    /// links in notification e-mails; none without it.
    pub public_url: Option<Arc<str>>,
}

impl AppState {
    /// State over `store`, with the process-wide metrics recorder.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            metrics: metrics_handle(),
            auth_cache: Arc::default(),
            shutdown: Arc::new(tokio::sync::watch::channel(false).0),
            outbox_wake: Arc::default(),
            dispatcher: dispatcher::DispatcherConfig::default(),
            deliver: Arc::new(outbound::Outbound),
            public_url: None,
        }
    }

    /// The same state with the public base URL notification e-mails link to.
    pub fn with_public_url(mut self, url: Option<String>) -> Self {
        self.public_url = url.map(Into::into);
        self
    }

    /// The same state with another dispatcher configuration (tests use
    /// short backoffs).
    pub fn with_dispatcher(mut self, config: dispatcher::DispatcherConfig) -> Self {
        self.dispatcher = config;
        self
    }

    /// Tells this node's dispatcher that work was just committed, so it
    /// runs now rather than at its next poll.
    pub fn wake_dispatcher(&self) {
        self.outbox_wake.notify_one();
    }

    /// Resolves when the server starts shutting down. Event streams end on
    /// it: graceful shutdown waits for every open connection, and an SSE
    /// client never closes its own.
    pub fn stopping(&self) -> impl std::future::Future<Output = ()> + Send + use<> {
        let mut stopping = self.shutdown.subscribe();
        async move {
            let _ = stopping.wait_for(|s| *s).await;
        }
    }
}

/// The process-wide Prometheus recorder; installed on first use (a process
/// has one global recorder, and tests start many apps in one process).
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // Fails only if another recorder is installed; then ours just
            // renders nothing, which is acceptable for an embedding program.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// The whole HTTP application.
pub fn app(state: AppState) -> Router {
    let api = Router::new()
        .merge(routes::directory::router())
        .merge(routes::tickets::router())
        .merge(routes::routing::router())
        .merge(routes::events::router())
        .merge(routes::notifications::router())
        .merge(routes::workflows::router())
        .merge(routes::outbox::router())
        .merge(openapi::router())
        .fallback(|| async { problem::ApiError::NotFound("route".into()) })
        .method_not_allowed_fallback(|| async { problem::ApiError::MethodNotAllowed });
    Router::new()
        .nest("/api/v1", api)
        .merge(routes::ops::router())
        // Channel endpoints, with their full paths: inbound e-mail under
        // /api/v1 (token), forms and provider webhooks outside it (keys,
        // signatures).
        .merge(routes::email::router())
        .merge(routes::whatsapp::router())
        .merge(routes::voice::router())
        .merge(routes::forms::router())
        .merge(routes::chat::router())
        .layer(middleware::from_fn(record_metrics))
        .layer(
            tower_http::trace::TraceLayer::new_for_http()
                .make_span_with(request_log::span::<axum::body::Body>),
        )
        .with_state(state)
}

/// Counts requests and times them, labelled by route template (never by the
/// raw path, which would carry ids) and status.
async fn record_metrics(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = match *request.method() {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        _ => "OTHER",
    };
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::histogram!("switchboard_http_request_duration_seconds", "method" => method, "route" => route.clone())
        .record(started.elapsed().as_secs_f64());
    metrics::counter!("switchboard_http_requests_total", "method" => method, "route" => route, "status" => status)
        .increment(1);
    response
}

/// Runs the durable scheduler's due jobs every `every`, forever. Jobs live in
/// the database, so nothing is lost across restarts: a transition that came
/// due while the server was down runs at the first tick.
pub async fn run_scheduler(store: Arc<dyn Store>, every: std::time::Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match store.run_due_jobs().await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(jobs = n, "ran scheduled jobs"),
            Err(switchboard_store::StoreError::ShuttingDown) => return,
            Err(e) => tracing::error!(error = %e, "scheduler tick failed"),
        }
    }
}

/// Deletes events older than `retention` (and outbox rows done that long
/// ago) at start and every `every`, forever. Clients resuming from before
/// the oldest kept event get a `reset` event. Runs on every node; deleting
/// twice is harmless.
pub async fn run_event_retention(
    store: Arc<dyn Store>,
    retention: std::time::Duration,
    every: std::time::Duration,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match store.purge_events(retention).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(events = n, "deleted events past retention"),
            Err(switchboard_store::StoreError::ShuttingDown) => return,
            Err(e) => tracing::error!(error = %e, "event retention failed"),
        }
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then lets in-flight
/// requests finish (their writes are committed before they answer). The
/// outbox dispatcher runs alongside and stops with it, after the rows it is
/// running have recorded their outcomes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let stopping = state.shutdown.clone();
    let shutdown = async move {
        shutdown.await;
        stopping.send_replace(true);
    };
    let dispatcher = tokio::spawn(dispatcher::run(state.clone()));
    // With the peer address, so per-IP limits (forms, chat) see real clients.
    let served = axum::serve(
        listener,
        app(state).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await;
    let _ = dispatcher.await;
    served
}
