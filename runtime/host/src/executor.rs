//! The guest executor: a tokio runtime of its own for guest code, so guests
//! that spin (each yields at every epoch tick) share its threads round-robin
//! and never hold the threads that serve I/O.

use std::future::Future;

/// A dedicated multi-threaded runtime that runs sessions' invocations.
pub(crate) struct GuestExecutor {
    runtime: Option<tokio::runtime::Runtime>,
}

impl GuestExecutor {
    /// A runtime of `threads` worker threads named `corral-guest`.
    pub fn new(threads: usize) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name("corral-guest")
            // A worker busy with spinning guests (each poll one time slice)
            // would look at newly submitted invocations only every 31 polls
            // and at I/O every 61 by default: tens of milliseconds. Checking
            // every few polls bounds a new invocation's wait to a few slices.
            .global_queue_interval(2)
            .event_interval(4)
            .enable_all()
            .build()?;
        Ok(Self {
            runtime: Some(runtime),
        })
    }

    /// Runs `future` on the guest threads and waits for it. If the waiter
    /// goes away the invocation still runs to its end (bounded by its own
    /// timeouts), so the session is never left half-called.
    pub async fn run<F>(&self, future: F) -> Result<F::Output, tokio::task::JoinError>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        match &self.runtime {
            Some(runtime) => runtime.spawn(future).await,
            // Only while dropping; a live executor always has its runtime.
            None => Ok(future.await),
        }
    }
}

impl Drop for GuestExecutor {
    fn drop(&mut self) {
        // Dropping a runtime blocks on its tasks, which is not allowed from
        // inside a runtime (the last owner may be one of its own tasks), so
        // it is shut down without waiting, from a thread of its own;
        // in-flight invocations are abandoned.
        if let Some(runtime) = self.runtime.take() {
            let holder = std::sync::Arc::new(parking_lot::Mutex::new(Some(runtime)));
            let moved = holder.clone();
            let spawned = std::thread::Builder::new()
                .name("corral-guest-shutdown".into())
                .spawn(move || {
                    if let Some(runtime) = moved.lock().take() {
                        runtime.shutdown_background();
                    }
                });
            if spawned.is_err()
                && let Some(runtime) = holder.lock().take()
            {
                runtime.shutdown_background();
            }
        }
    }
}
