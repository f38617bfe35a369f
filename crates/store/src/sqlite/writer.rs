//! The single writer thread and its group commit.
//!
//! SQLite allows one writer at a time, and with `synchronous=FULL` each commit
//! costs an fsync. Rather than have every request fight for the write lock
//! and pay its own fsync, all writes go through one thread: it takes the first
//! queued job, then every job that queued up meanwhile (up to
//! [`MAX_BATCH`]), runs them in one transaction, each inside its own savepoint
//! so that one failing job rolls back only itself, commits once, and only
//! then answers each caller. While that fsync runs, the next batch queues up,
//! so the batch size grows with the load by itself and no timer is needed.
//!
//! A caller is answered after the commit returned: an `Ok` is durable.

use std::{
    panic::{AssertUnwindSafe, catch_unwind},
    sync::{Mutex, mpsc},
    thread::JoinHandle,
};

use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::{Result, StoreError, TicketEvent};

/// The most jobs committed in one transaction: bounds the latency a job can
/// add to the others of its batch.
pub const MAX_BATCH: usize = 512;

thread_local! {
    /// Ticket events written by the batch in progress on this (the writer)
    /// thread. Sent to subscribers only after the batch commits; a job that
    /// fails takes its events back with its savepoint.
    static PENDING: std::cell::RefCell<Vec<TicketEvent>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Queues `event` for publication when the current batch commits. Called
/// from write jobs (so on the writer thread).
pub fn publish(event: TicketEvent) {
    PENDING.with(|p| p.borrow_mut().push(event));
}

/// What a job hands back after running: told whether the commit succeeded,
/// it answers its caller.
type Completion = Box<dyn FnOnce(Result<(), String>) + Send>;
/// A job runs on the connection inside the batch's transaction, or is given
/// `None` when no transaction could be opened, and then only fails.
type Job = Box<dyn FnOnce(Option<&Connection>) -> Completion + Send>;

/// Handle to the writer thread. Dropping it lets the thread drain the queue,
/// commit, and stop; `Drop` waits for that, so nothing acknowledged or in
/// flight is lost on shutdown.
pub struct Writer {
    queue: Mutex<Option<mpsc::Sender<Job>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Writer {
    /// Starts the writer thread on `conn`.
    pub fn spawn(
        conn: Connection,
        events: tokio::sync::broadcast::Sender<TicketEvent>,
        restart: super::checkpoint::RestartWanted,
    ) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || run(conn, rx, events, restart))?;
        Ok(Self {
            queue: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Runs `f` in the next batch and returns its result once committed.
    pub async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let outcome = match conn {
                Some(conn) => in_savepoint(conn, f),
                None => Err(StoreError::Backend(
                    "no write transaction could be opened".into(),
                )),
            };
            Box::new(move |commit: Result<(), String>| {
                let result = match commit {
                    Ok(()) => outcome,
                    // The job itself succeeded but its batch did not commit.
                    Err(e) => outcome.and(Err(StoreError::Backend(e.into()))),
                };
                // The caller may have gone away (client disconnected); the
                // write is committed regardless, which is what we promised.
                let _ = reply.send(result);
            })
        });
        {
            let queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
            let sender = queue.as_ref().ok_or(StoreError::ShuttingDown)?;
            sender.send(job).map_err(|_| StoreError::ShuttingDown)?;
        }
        answer.await.map_err(|_| StoreError::ShuttingDown)?
    }

    /// Stops taking jobs, lets the thread commit what is queued, and waits.
    pub fn close(&self) {
        self.queue.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(thread) = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.close();
    }
}

/// Runs one job inside a savepoint of the batch's transaction. A panic in the
/// job is caught so that it fails that job only, not the thread.
fn in_savepoint<T>(conn: &Connection, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
    // Cached statements: these run twice per job, so they are parsed once.
    let run = |sql: &str| {
        conn.prepare_cached(sql)
            .and_then(|mut s| s.execute([]))
            .map_err(super::backend)
    };
    run("SAVEPOINT job")?;
    super::routing_state::job_started();
    let published = PENDING.with(|p| p.borrow().len());
    let outcome = catch_unwind(AssertUnwindSafe(|| f(conn))).unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        Err(StoreError::Backend(
            format!("write job panicked: {what}").into(),
        ))
    });
    if outcome.is_err() {
        PENDING.with(|p| p.borrow_mut().truncate(published));
        // The kept routing state may hold what the savepoint just undid.
        super::routing_state::job_failed();
        super::kept::forget_all();
        run("ROLLBACK TO job")?;
    }
    run("RELEASE job")?;
    outcome
}

fn run(
    conn: Connection,
    queue: mpsc::Receiver<Job>,
    events: tokio::sync::broadcast::Sender<TicketEvent>,
    restart: super::checkpoint::RestartWanted,
) {
    // `recv` keeps returning queued jobs after the last sender is gone, so
    // the loop drains everything before it ends.
    while let Ok(first) = queue.recv() {
        let mut batch = Vec::with_capacity(16);
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        metrics::histogram!("switchboard_sqlite_batch_size").record(batch.len() as f64);
        if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
            tracing::error!(error = %e, "cannot begin a write transaction");
            for job in batch {
                job(None)(Err(e.to_string()));
            }
            continue;
        }
        let completions: Vec<Completion> = batch.into_iter().map(|job| job(Some(&conn))).collect();
        let commit = conn.execute_batch("COMMIT").map_err(|e| {
            tracing::error!(error = %e, "group commit failed; rolling the batch back");
            let _ = conn.execute_batch("ROLLBACK");
            e.to_string()
        });
        let pending = PENDING.with(|p| std::mem::take(&mut *p.borrow_mut()));
        if commit.is_err() {
            super::routing_state::batch_failed();
            super::kept::forget_all();
        }
        if commit.is_ok() {
            for event in pending {
                // No subscriber is not an error.
                let _ = events.send(event);
            }
        }
        for done in completions {
            done(commit.clone());
        }
        // After the answers, so no caller of this batch waits for it.
        super::checkpoint::restart_if_wanted(&conn, &restart);
    }
}
