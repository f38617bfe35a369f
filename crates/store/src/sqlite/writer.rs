//! The single writer thread and its group commit.
//!
//! SQLite allows one writer at a time, and a durable commit costs an fsync.
//! Rather than have every request fight for the write lock and pay its own
//! fsync, all writes go through one thread: it takes the first queued job,
//! then every job that queued up meanwhile (up to [`MAX_BATCH`]), runs them
//! in one transaction, each inside its own savepoint so that one failing job
//! rolls back only itself, and commits once. While a batch runs, the next
//! one queues up, so the batch size grows with the load by itself and no
//! timer is needed.
//!
//! Durability is pipelined. The writer's connection commits with
//! `synchronous=NORMAL`: in WAL mode the commit writes its frames to the
//! WAL and returns without an fsync. The batch then goes to a second
//! thread, the syncer, which fsyncs the WAL file (one fsync for every
//! batch that queued up meanwhile) and only then answers the batch's
//! callers and publishes its events, while the writer already runs the
//! next batch. The fsync used to hold the writer for about a third of its
//! time under load. So an `Ok` is still durable: its frames, and those of
//! every batch before it, were on disk before it was sent. What changes is
//! that another connection may read a committed batch a millisecond before
//! its fsync; after a power loss in that window, the batch is gone, but
//! nobody was told it was written. SQLite keeps a WAL database consistent
//! under `synchronous=NORMAL`, so such a loss never corrupts it. (A crash
//! of the process alone loses nothing: the frames are in the OS's cache.)

use std::{
    panic::{AssertUnwindSafe, catch_unwind},
    path::PathBuf,
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
    /// Starts the writer thread on `conn`, whose WAL file is `wal`, and
    /// its syncer thread.
    pub fn spawn(
        conn: Connection,
        wal: PathBuf,
        events: tokio::sync::broadcast::Sender<TicketEvent>,
        restart: super::checkpoint::RestartWanted,
    ) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel::<Job>();
        let (committed, to_sync) = mpsc::channel::<Committed>();
        let syncer = std::thread::Builder::new()
            .name("sqlite-syncer".into())
            .spawn(move || sync_and_answer(wal, to_sync, events))?;
        let thread = std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || {
                run(conn, rx, committed, restart);
                // `run` dropped its sender: the syncer answers what is left
                // and ends; waiting for it keeps `close`'s promise.
                let _ = syncer.join();
            })?;
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

/// A committed (or failed) batch on its way to the syncer: its answers and
/// its events wait for the fsync.
struct Committed {
    commit: Result<(), String>,
    completions: Vec<Completion>,
    events: Vec<TicketEvent>,
}

fn run(
    conn: Connection,
    queue: mpsc::Receiver<Job>,
    syncer: mpsc::Sender<Committed>,
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
        // A failed batch goes the same way, so answers keep their order.
        let batch = Committed {
            commit,
            completions,
            events: pending,
        };
        if let Err(mpsc::SendError(batch)) = syncer.send(batch) {
            // The syncer is gone (it only ends after this thread's sender
            // is dropped, so this is a bug): fail the batch, never hang it.
            for done in batch.completions {
                done(Err("the syncer thread is gone".into()));
            }
        }
        // Not in any caller's way: the batch's answers wait for the fsync.
        super::checkpoint::restart_if_wanted(&conn, &restart);
    }
}

/// The syncer thread: fsyncs the WAL once for every batch committed since
/// the last time, then answers them in order and publishes their events.
fn sync_and_answer(
    wal: PathBuf,
    queue: mpsc::Receiver<Committed>,
    events: tokio::sync::broadcast::Sender<TicketEvent>,
) {
    while let Ok(first) = queue.recv() {
        let mut batches = vec![first];
        while let Ok(more) = queue.try_recv() {
            batches.push(more);
        }
        let synced = if batches.iter().any(|b| b.commit.is_ok()) {
            sync(&wal)
        } else {
            Ok(())
        };
        for batch in batches {
            let outcome = batch.commit.and_then(|()| synced.clone());
            if outcome.is_ok() {
                for event in batch.events {
                    // No subscriber is not an error.
                    let _ = events.send(event);
                }
            }
            for done in batch.completions {
                done(outcome.clone());
            }
        }
    }
}

/// fsyncs the WAL file. Opened each time, so it is always the file SQLite
/// writes (it deletes and recreates the WAL only when its last connection
/// closes, which the writer's never does while this runs).
fn sync(wal: &std::path::Path) -> Result<(), String> {
    let started = std::time::Instant::now();
    let synced = std::fs::File::open(wal).and_then(|f| f.sync_all());
    metrics::histogram!("switchboard_sqlite_fsync_seconds").record(started.elapsed().as_secs_f64());
    synced.map_err(|e| {
        // The batches are committed but maybe not on disk: their callers
        // are told the write failed (a retry with the same idempotency key
        // finds the row if it did survive).
        tracing::error!(error = %e, wal = %wal.display(), "fsync of the WAL failed");
        format!("fsync of the WAL failed: {e}")
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use switchboard_domain::{AccountId, Actor, HistoryEvent, TicketId};

    use super::*;

    fn writer(
        dir: &std::path::Path,
        wal: PathBuf,
    ) -> (Arc<Writer>, tokio::sync::broadcast::Receiver<TicketEvent>) {
        let conn = Connection::open(dir.join("db")).unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; CREATE TABLE t (x INTEGER);",
        )
        .unwrap();
        let (events, rx) = tokio::sync::broadcast::channel(64);
        let restart = super::super::checkpoint::RestartWanted::default();
        (
            Arc::new(Writer::spawn(conn, wal, events, restart).unwrap()),
            rx,
        )
    }

    fn event(n: i64) -> TicketEvent {
        let updated = HistoryEvent::Updated {
            fields: vec!["subject".into()],
        };
        TicketEvent::new(
            AccountId(1),
            TicketId(n),
            jiff::Timestamp::UNIX_EPOCH,
            Actor::System,
            &updated,
        )
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writes_are_all_kept_and_their_events_published() {
        let dir = tempfile::tempdir().unwrap();
        let (w, mut rx) = writer(dir.path(), dir.path().join("db-wal"));
        let tasks: Vec<_> = (0..50)
            .map(|i| {
                let w = w.clone();
                tokio::spawn(async move {
                    w.write(move |c| {
                        c.execute("INSERT INTO t (x) VALUES (?1)", [i])?;
                        publish(event(i));
                        Ok(i)
                    })
                    .await
                })
            })
            .collect();
        for (i, t) in tasks.into_iter().enumerate() {
            assert_eq!(t.await.unwrap().unwrap(), i as i64);
        }
        let n: i64 = Connection::open(dir.path().join("db"))
            .unwrap()
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 50);
        let mut published = 0;
        while rx.try_recv().is_ok() {
            published += 1;
        }
        assert_eq!(published, 50, "every answered write's event is out");
    }

    #[tokio::test]
    async fn a_failed_fsync_fails_the_batch_and_publishes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        // A WAL path that cannot be opened stands for a disk refusing fsync.
        let (w, mut rx) = writer(dir.path(), dir.path().join("missing").join("db-wal"));
        let answer = w
            .write(|c| {
                c.execute("INSERT INTO t (x) VALUES (1)", [])?;
                publish(event(1));
                Ok(())
            })
            .await;
        let err = answer.unwrap_err().to_string();
        assert!(err.contains("fsync of the WAL failed"), "{err}");
        assert!(
            rx.try_recv().is_err(),
            "no event for a write not known to be on disk"
        );
    }
}
