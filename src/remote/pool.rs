//! Parallel work over several connections to one remote, with retries.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use crate::error::{Error, RemoteFailure, Result};
use crate::remote::{Backend, Remote};

/// Attempts per item before its error is reported.
const ATTEMPTS: u32 = 3;

/// Connections to one remote, used from several threads at once: each worker takes an
/// idle connection (or opens one) and gives it back when the batch is done. An item whose
/// work fails in a way that may pass ([`Error::can_retry`]) is retried on a fresh connection.
pub struct Pool<'a> {
    remote: &'a dyn Remote,
    idle: Mutex<Vec<Box<dyn Backend>>>,
    jobs: usize,
}

impl<'a> Pool<'a> {
    pub fn new(remote: &'a dyn Remote, first: Box<dyn Backend>, jobs: usize) -> Self {
        Pool { remote, idle: Mutex::new(vec![first]), jobs: jobs.max(1) }
    }

    /// The name of the remote the connections go to.
    pub fn remote_name(&self) -> &str {
        self.remote.name()
    }

    /// An idle connection, or a new one.
    pub fn connection(&self) -> Result<Box<dyn Backend>> {
        match self.idle.lock().expect("idle").pop() {
            Some(c) => Ok(c),
            None => self.remote.connect(),
        }
    }

    /// After a signal stopped a transfer: remove this process's temps from the remote
    /// over a fresh connection (a pooled one may have been cut mid-request). Best effort.
    pub fn abandon(&self) {
        if let Ok(mut conn) = self.remote.connect() {
            let _ = crate::remote::clean_temps(conn.as_mut());
        }
    }

    fn connect_retrying(&self) -> Result<Box<dyn Backend>> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.connection() {
                Ok(c) => return Ok(c),
                Err(e) if attempt >= ATTEMPTS || !e.can_retry() => return Err(e),
                Err(_) => std::thread::sleep(backoff(attempt)),
            }
        }
    }

    /// Run `work` on every item, in parallel; one result per item, in order. Fails as a
    /// whole only when no connection can be opened.
    pub fn run<T: Sync, R: Send>(
        &self,
        items: &[T],
        work: impl Fn(&mut dyn Backend, &T) -> Result<R> + Sync,
    ) -> Result<Vec<Result<R>>> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let next = AtomicUsize::new(0);
        let results: Mutex<Vec<Option<Result<R>>>> = Mutex::new((0..items.len()).map(|_| None).collect());
        self.run_each(
            items.len(),
            || Some(next.fetch_add(1, Ordering::Relaxed)).filter(|&i| i < items.len()),
            |c, &i| work(c, &items[i]),
            |_, i, r| results.lock().expect("results")[i] = Some(r),
        )?;
        // Items not reached after a systemic failure are reported as not done.
        Ok(results
            .into_inner()
            .expect("results")
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    Err(match crate::interrupt::signal() {
                        Some(signal) => Error::Interrupted { signal },
                        None => Error::remote(
                            self.remote.name(),
                            RemoteFailure::Io,
                            "not attempted after an earlier failure",
                        ),
                    })
                })
            })
            .collect())
    }

    /// Run `work` on the items `next` hands out (at most `most` at once), in parallel,
    /// giving each outcome to `done` with the connection it ran on (none when the work
    /// failed on it). A failure that retries did not cure (or a full disk) is systemic:
    /// then no more items are taken, and a rerun resumes. Fails as a whole only when no
    /// connection can be opened.
    pub fn run_each<T: Send, R>(
        &self,
        most: usize,
        next: impl Fn() -> Option<T> + Sync,
        work: impl Fn(&mut dyn Backend, &T) -> Result<R> + Sync,
        done: impl Fn(Option<&mut dyn Backend>, T, Result<R>) + Sync,
    ) -> Result<()> {
        let stop = AtomicBool::new(false);
        let fatal: Mutex<Option<Error>> = Mutex::new(None);
        std::thread::scope(|s| {
            for _ in 0..self.jobs.min(most.max(1)) {
                s.spawn(|| {
                    crate::interrupt::shield_this_thread();
                    let mut conn: Option<Box<dyn Backend>> = None;
                    // After Ctrl-C no new work starts; what is running finishes or stops.
                    while !stop.load(Ordering::Relaxed) && crate::interrupt::signal().is_none() {
                        let Some(item) = next() else { break };
                        let mut attempt = 0;
                        let outcome = loop {
                            attempt += 1;
                            let c = match conn.take().map_or_else(|| self.connect_retrying(), Ok) {
                                Ok(c) => conn.insert(c),
                                Err(e) => {
                                    fatal.lock().expect("fatal").get_or_insert(e);
                                    stop.store(true, Ordering::Relaxed);
                                    return;
                                }
                            };
                            match work(c.as_mut(), &item) {
                                Ok(r) => break Ok(r),
                                Err(e)
                                    if attempt < ATTEMPTS
                                        && e.can_retry()
                                        && crate::interrupt::signal().is_none() =>
                                {
                                    conn = None;
                                    std::thread::sleep(backoff(attempt));
                                }
                                Err(e) => break Err(e),
                            }
                        };
                        if outcome.as_ref().is_err_and(|e| {
                            e.can_retry() || matches!(e, Error::Remote { kind: RemoteFailure::Full, .. })
                        }) {
                            stop.store(true, Ordering::Relaxed);
                        }
                        done(conn.as_deref_mut().map(|c| c as &mut dyn Backend), item, outcome);
                    }
                    if let Some(c) = conn {
                        self.idle(c);
                    }
                });
            }
        });
        match fatal.into_inner().expect("fatal") {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Give a connection back for later work.
    pub fn idle(&self, conn: Box<dyn Backend>) {
        self.idle.lock().expect("idle").push(conn);
    }

    /// A new connection, never a pooled one (which a signal may have cut mid-request).
    pub fn fresh_connection(&self) -> Result<Box<dyn Backend>> {
        self.remote.connect()
    }

    /// Over how many connections the reads of one large object may be spread (never more
    /// than `-j`).
    pub fn streams_per_object(&self) -> usize {
        self.remote.streams_per_object().min(self.jobs)
    }

    /// The URL of the remote the connections go to.
    pub fn remote_url(&self) -> &str {
        self.remote.url()
    }
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(200 * 4u64.pow(attempt - 1))
}
