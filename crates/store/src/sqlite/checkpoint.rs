//! WAL checkpoints on a thread of their own.
//!
//! SQLite's automatic checkpoint runs inside the commit that crosses 1,000
//! pages of WAL, on the connection that committed: here, the one writer
//! thread, which then copies pages into the database file and syncs it
//! while every queued write waits (perf put it at a sixth of the writer's
//! time under load). The writer turns the automatic checkpoint off and this
//! thread runs a PASSIVE checkpoint several times a second on a connection
//! of its own. PASSIVE never blocks the writer or the readers; it copies
//! what no reader still needs, and the writer restarts the WAL from the
//! beginning once everything has been copied.

use std::{
    path::Path,
    sync::{Mutex, mpsc},
    thread::JoinHandle,
    time::Duration,
};

use rusqlite::Connection;

/// How often the WAL is checkpointed.
const EVERY: Duration = Duration::from_millis(250);

/// The checkpoint thread; dropping it stops the thread and waits for it.
pub struct Checkpointer {
    stop: Mutex<Option<mpsc::Sender<()>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Checkpointer {
    /// Starts checkpointing the database at `path`.
    pub fn spawn(path: &Path) -> std::io::Result<Self> {
        let conn = Connection::open(path).map_err(std::io::Error::other)?;
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(std::io::Error::other)?;
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || {
                // Ends when the sender is dropped (the store closes).
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(EVERY) {
                    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                    {
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

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.close();
    }
}
