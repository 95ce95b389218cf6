//! The guest executor: a tokio runtime of its own for guest code, so guests
//! that spin (each yields at every epoch tick) share its threads round-robin
//! and never hold the threads that serve I/O for long.
//!
//! An invocation starts on the caller's thread and moves to the guest
//! threads only once it has used its inline budget of CPU time there. Most
//! invocations (an echo, a tool-use step that awaits a model) finish or
//! wait inside the budget, and so skip two cross-thread hand-offs (there
//! and back), each a thread wake-up: on this 2-core machine that was about
//! a third of an echo invocation's latency over a static reply. A guest that
//! computes holds the caller's thread for at most the budget plus one epoch
//! tick, then runs on the guest threads as before. Work an invocation spawns
//! ([`spawn_guest_work`], e.g. a tool call that may run a WASM tool) goes to
//! the guest threads wherever the invocation is being polled.

use std::cell::RefCell;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

thread_local! {
    /// The guest runtime of the invocation this thread is polling inline.
    static INLINE_GUEST_RUNTIME: RefCell<Option<tokio::runtime::Handle>> =
        const { RefCell::new(None) };
}

/// Spawns work of the current invocation: on the guest threads while the
/// invocation runs inline on an I/O thread, else on the current runtime
/// (the guest threads themselves, or the caller's runtime without a guest
/// executor).
pub(crate) fn spawn_guest_work<F>(future: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    match INLINE_GUEST_RUNTIME.with(|runtime| runtime.borrow().clone()) {
        Some(runtime) => runtime.spawn(future),
        None => tokio::spawn(future),
    }
}

/// Marks this thread as polling an invocation inline until dropped.
struct InlineMark(Option<tokio::runtime::Handle>);

impl InlineMark {
    fn set(runtime: &tokio::runtime::Handle) -> Self {
        Self(INLINE_GUEST_RUNTIME.with(|current| current.replace(Some(runtime.clone()))))
    }
}

impl Drop for InlineMark {
    fn drop(&mut self) {
        let previous = self.0.take();
        INLINE_GUEST_RUNTIME.with(|current| *current.borrow_mut() = previous);
    }
}

/// Why an invocation task gave no output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum GuestTaskError {
    /// The task panicked.
    #[error("panicked")]
    Panicked,
    /// The runtime shut down under it.
    #[error("was cancelled")]
    Cancelled,
}

impl From<tokio::task::JoinError> for GuestTaskError {
    fn from(error: tokio::task::JoinError) -> Self {
        if error.is_panic() {
            Self::Panicked
        } else {
            Self::Cancelled
        }
    }
}

/// A dedicated multi-threaded runtime that runs sessions' invocations.
pub(crate) struct GuestExecutor {
    runtime: Option<tokio::runtime::Runtime>,
    /// CPU time an invocation may use on the caller's thread before it
    /// moves to the guest threads; zero moves every invocation at once.
    inline_budget: Duration,
}

impl GuestExecutor {
    /// A runtime of `threads` worker threads named `corral-guest`; each
    /// invocation first runs up to `inline_budget` of CPU on the caller's
    /// thread.
    pub fn new(threads: usize, inline_budget: Duration) -> std::io::Result<Self> {
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
            inline_budget,
        })
    }

    /// Runs `future` to its end, on the caller's thread within the inline
    /// budget and on the guest threads after it, and waits for it. If the
    /// waiter goes away the invocation still runs to its end (bounded by
    /// its own timeouts), so the session is never left half-called.
    ///
    /// The invocation comes boxed: boxed where it is made, the futures
    /// awaiting it hold a pointer rather than its state machine (kilobytes,
    /// copied by every layer that moves or spawns a future holding it:
    /// 4% of `corral serve`'s CPU per echo invocation under `perf`).
    pub async fn run<F>(&self, future: Pin<Box<F>>) -> Result<F::Output, GuestTaskError>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let Some(runtime) = &self.runtime else {
            // Only while dropping; a live executor always has its runtime.
            return Ok(future.await);
        };
        let handle = runtime.handle();
        let rest = if self.inline_budget.is_zero() {
            future
        } else {
            let inline = Inline {
                future: Some(future),
                spent: Duration::ZERO,
                budget: self.inline_budget,
                handle,
            };
            match inline.await {
                Ok(output) => return output,
                Err(rest) => rest,
            }
        };
        handle.spawn(rest).await.map_err(GuestTaskError::from)
    }
}

/// An invocation polled on the caller's thread until it ends or has used
/// `budget` of CPU time there; then it yields the rest of itself to be
/// spawned on the guest threads. Dropped early (the waiter went away), it
/// hands the rest to the guest threads to finish.
struct Inline<'a, F: Future + Send + 'static>
where
    F::Output: Send + 'static,
{
    future: Option<Pin<Box<F>>>,
    spent: Duration,
    budget: Duration,
    handle: &'a tokio::runtime::Handle,
}

impl<F: Future + Send + 'static> Future for Inline<'_, F>
where
    F::Output: Send + 'static,
{
    /// The output (or why there is none), or the unfinished rest.
    type Output = Result<Result<F::Output, GuestTaskError>, Pin<Box<F>>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // Out of `self` while it runs; put back only if it stays here.
        let Some(mut future) = self.future.take() else {
            // Polled after it answered: nothing is left to run.
            return Poll::Ready(Ok(Err(GuestTaskError::Cancelled)));
        };
        let mark = InlineMark::set(self.handle);
        let started = Instant::now();
        // A panic stays inside this invocation, as it would in a task.
        let polled = catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx)));
        self.spent += started.elapsed();
        drop(mark);
        match polled {
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(Ok(output))),
            // The rest re-registers its waker when the guest threads poll
            // it, so wake-ups sent to this task are only spurious.
            Ok(Poll::Pending) if self.spent >= self.budget => Poll::Ready(Err(future)),
            Ok(Poll::Pending) => {
                self.future = Some(future);
                Poll::Pending
            }
            Err(_) => {
                // Dropping a future that panicked may panic again.
                let _ = catch_unwind(AssertUnwindSafe(move || drop(future)));
                Poll::Ready(Ok(Err(GuestTaskError::Panicked)))
            }
        }
    }
}

impl<F: Future + Send + 'static> Drop for Inline<'_, F>
where
    F::Output: Send + 'static,
{
    fn drop(&mut self) {
        if let Some(rest) = self.future.take() {
            drop(self.handle.spawn(rest));
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    fn guest_thread() -> bool {
        std::thread::current()
            .name()
            .is_some_and(|name| name == "corral-guest")
    }

    /// Spins for `cpu` on whichever thread polls it, yielding every 100 µs
    /// as an epoch tick would; answers the thread it ended on.
    async fn spin(cpu: Duration) -> bool {
        let started = Instant::now();
        while started.elapsed() < cpu {
            let slice = Instant::now();
            while slice.elapsed() < Duration::from_micros(100) {
                std::hint::spin_loop();
            }
            tokio::task::yield_now().await;
        }
        guest_thread()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn short_invocations_stay_on_the_callers_thread_and_long_ones_move() {
        let executor = GuestExecutor::new(1, Duration::from_millis(50)).unwrap();
        assert!(
            !executor
                .run(Box::pin(async { guest_thread() }))
                .await
                .unwrap()
        );
        assert!(
            !executor
                .run(Box::pin(spin(Duration::from_millis(1))))
                .await
                .unwrap()
        );
        assert!(
            executor
                .run(Box::pin(spin(Duration::from_millis(150))))
                .await
                .unwrap()
        );
        // Time spent waiting is not CPU: a sleeping invocation stays.
        let waits = async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            guest_thread()
        };
        assert!(!executor.run(Box::pin(waits)).await.unwrap());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn work_an_inline_invocation_spawns_runs_on_the_guest_threads() {
        let executor = GuestExecutor::new(1, Duration::from_millis(50)).unwrap();
        let (caller, spawned) = executor
            .run(Box::pin(async {
                let spawned = spawn_guest_work(async { guest_thread() }).await.unwrap();
                (guest_thread(), spawned)
            }))
            .await
            .unwrap();
        assert!(!caller, "the invocation itself stayed inline");
        assert!(spawned, "its spawned work ran on the guest threads");
        // Outside an invocation the mark is gone.
        assert!(!spawn_guest_work(async { guest_thread() }).await.unwrap());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_zero_budget_moves_every_invocation() {
        let executor = GuestExecutor::new(1, Duration::ZERO).unwrap();
        assert!(
            executor
                .run(Box::pin(async { guest_thread() }))
                .await
                .unwrap()
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_panic_inline_or_moved_is_an_error_not_the_callers_panic() {
        let executor = GuestExecutor::new(1, Duration::from_millis(1)).unwrap();
        let inline = executor
            .run(Box::pin(async { panic!("guest host bug") }))
            .await;
        assert_eq!(inline.err(), Some(GuestTaskError::Panicked));
        let moved = executor
            .run(Box::pin(async {
                spin(Duration::from_millis(5)).await;
                panic!("guest host bug")
            }))
            .await;
        assert_eq!(moved.err(), Some(GuestTaskError::Panicked));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn an_abandoned_invocation_still_runs_to_its_end() {
        let executor = GuestExecutor::new(1, Duration::from_millis(50)).unwrap();
        let finished = Arc::new(AtomicBool::new(false));
        let done = finished.clone();
        let invocation = executor.run(Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            done.store(true, Ordering::SeqCst);
        }));
        // The waiter gives up while the invocation waits inline.
        let _ = tokio::time::timeout(Duration::from_millis(1), invocation).await;
        for _ in 0..200 {
            if finished.load(Ordering::SeqCst) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("the abandoned invocation never finished");
    }
}
