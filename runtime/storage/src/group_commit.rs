//! Group commit: concurrent writers share one fsync.

use parking_lot::{Condvar, Mutex};

#[derive(Default)]
struct Progress {
    /// Writes applied (in memory) so far.
    written: u64,
    /// Writes known durable.
    durable: u64,
    /// A flush is running.
    flushing: bool,
}

/// Makes writers wait until a flush that began after their write finishes;
/// one writer flushes for everyone who wrote before it started.
#[derive(Default)]
pub(crate) struct GroupCommit {
    progress: Mutex<Progress>,
    flushed: Condvar,
}

impl GroupCommit {
    /// Runs `apply` (the in-memory write) then waits until it is durable,
    /// running `flush` when no flush covering it is under way.
    #[cfg(test)]
    pub(crate) fn commit<E>(
        &self,
        apply: impl FnOnce() -> Result<(), E>,
        flush: impl Fn() -> Result<(), E>,
    ) -> Result<(), E> {
        let ticket = self.apply(apply)?;
        self.wait(ticket, flush)
    }

    /// Runs `apply` (the in-memory write); returns its ticket for
    /// [`GroupCommit::wait`].
    pub(crate) fn apply<E>(&self, apply: impl FnOnce() -> Result<(), E>) -> Result<u64, E> {
        let mut progress = self.progress.lock();
        // Applying under the lock orders tickets with writes.
        apply()?;
        progress.written += 1;
        Ok(progress.written)
    }

    /// Whether the write with `ticket` is durable already.
    pub(crate) fn is_durable(&self, ticket: u64) -> bool {
        self.progress.lock().durable >= ticket
    }

    /// Waits until the write with `ticket` is durable, running `flush` when
    /// no flush covering it is under way.
    pub(crate) fn wait<E>(&self, ticket: u64, flush: impl Fn() -> Result<(), E>) -> Result<(), E> {
        let mut progress = self.progress.lock();
        loop {
            if progress.durable >= ticket {
                return Ok(());
            }
            if !progress.flushing {
                progress.flushing = true;
                let covers = progress.written;
                drop(progress);
                let result = flush();
                progress = self.progress.lock();
                progress.flushing = false;
                if result.is_ok() {
                    progress.durable = progress.durable.max(covers);
                }
                self.flushed.notify_all();
                result?;
            } else {
                self.flushed.wait(&mut progress);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[test]
    fn concurrent_writers_share_flushes_and_all_become_durable() {
        let group = Arc::new(GroupCommit::default());
        let flushes = Arc::new(AtomicU64::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let group = group.clone();
                let flushes = flushes.clone();
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        group
                            .commit::<()>(
                                || Ok(()),
                                || {
                                    flushes.fetch_add(1, Ordering::SeqCst);
                                    std::thread::sleep(std::time::Duration::from_micros(200));
                                    Ok(())
                                },
                            )
                            .unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let progress = group.progress.lock();
        assert_eq!(progress.written, 400);
        assert_eq!(progress.durable, 400);
        assert!(flushes.load(Ordering::SeqCst) <= 400);
    }

    #[test]
    fn a_failed_flush_is_reported_and_not_counted_durable() {
        let group = GroupCommit::default();
        let result = group.commit(|| Ok(()), || Err("disk full"));
        assert_eq!(result, Err("disk full"));
        assert_eq!(group.progress.lock().durable, 0);
    }
}
