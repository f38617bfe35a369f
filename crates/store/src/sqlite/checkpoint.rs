//! WAL checkpoints on a thread of their own.
//!
//! SQLite's automatic checkpoint runs inside the commit that crosses 1,000
//! pages of WAL, on the connection that committed: here, the one writer
//! thread, which then copies pages into the database file and syncs it
//! while every queued write waits (perf put it at a sixth of the writer's
//! time under load). The writer turns the automatic checkpoint off and this
//! thread runs a PASSIVE checkpoint several times a second on a connection
//! of its own. PASSIVE never blocks the writer or the readers; it copies
//! what no reader still needs.
//!
//! PASSIVE alone never lets the WAL start over under steady load: SQLite
//! rewinds the WAL only when a write begins with every frame copied, and
//! a busy writer has always added frames since the last pass. The WAL then
//! grew without end (1.3 GB after an 8-second benchmark), and every commit
//! wrote its frames into new file space, which the kernel allocates page by
//! page (a sixth of the writer's time, perf). So once a pass finds more
//! than [`RESTART_AT`] frames in the WAL, it raises [`RestartWanted`], and
//! the writer thread, between two batches, runs a RESTART checkpoint
//! itself: it copies the few frames written since this pass and waits for
//! the readers still on the WAL; the next write then rewinds the WAL to its
//! start and reuses its already allocated pages. This thread cannot run
//! the RESTART: it needs the write lock, and the writer starts its next
//! transaction microseconds after the last one, long before SQLite's
//! sleeping busy handler looks again.

use std::{
    path::Path,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
        mpsc,
    },
    thread::JoinHandle,
    time::Duration,
};

use rusqlite::Connection;

/// How often the WAL is checkpointed.
const EVERY: Duration = Duration::from_millis(250);

/// Past this many frames in the WAL (16 MiB of 4 KiB pages), the writer is
/// asked to make the WAL start over.
const RESTART_AT: i64 = 4096;

/// The longest the writer waits for readers in a RESTART checkpoint.
const RESTART_WAIT: Duration = Duration::from_millis(20);

/// Raised by the checkpoint thread when the WAL should start over; taken
/// by the writer thread, which then runs a RESTART checkpoint between two
/// batches ([`restart_if_wanted`]).
#[derive(Clone, Default)]
pub struct RestartWanted(Arc<AtomicBool>);

/// On the writer's connection, between batches: a RESTART checkpoint if
/// the checkpoint thread asked for one.
pub fn restart_if_wanted(conn: &Connection, wanted: &RestartWanted) {
    if !wanted.0.swap(false, Ordering::AcqRel) {
        return;
    }
    let started = std::time::Instant::now();
    // RESTART waits, through the busy handler, for readers still on the
    // WAL; a long read must not hold every write for the writer's usual
    // 5 s. Past RESTART_WAIT it gives up (busy) and the next pass asks again.
    let _ = conn.busy_timeout(RESTART_WAIT);
    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |_| Ok(())) {
        tracing::warn!(error = %e, "WAL restart checkpoint failed");
    }
    let _ = conn.busy_timeout(super::BUSY_TIMEOUT);
    metrics::histogram!("switchboard_sqlite_wal_restart_seconds")
        .record(started.elapsed().as_secs_f64());
}

/// The checkpoint thread; dropping it stops the thread and waits for it.
pub struct Checkpointer {
    stop: Mutex<Option<mpsc::Sender<()>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Checkpointer {
    /// Starts checkpointing the database at `path`.
    pub fn spawn(path: &Path, restart: RestartWanted) -> std::io::Result<Self> {
        let conn = Connection::open(path).map_err(std::io::Error::other)?;
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(std::io::Error::other)?;
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || {
                // Ends when the sender is dropped (the store closes).
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(EVERY) {
                    if let Err(e) = pass(&conn, &restart) {
                        tracing::warn!(error = %e, "WAL checkpoint failed");
                    }
                }
            })?;
        Ok(Self {
            stop: Mutex::new(Some(stop)),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Stops the thread and waits for it.
    pub fn close(&self) {
        self.stop.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(thread) = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = thread.join();
        }
    }
}

/// One PASSIVE pass; asks the writer for a restart when the WAL has grown
/// past [`RESTART_AT`] frames.
fn pass(conn: &Connection, restart: &RestartWanted) -> rusqlite::Result<()> {
    // (busy, frames in the WAL, frames copied); -1s when not in WAL mode.
    let frames: i64 = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get(1))?;
    if frames > RESTART_AT {
        restart.0.store(true, Ordering::Release);
    }
    Ok(())
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.close();
    }
}
