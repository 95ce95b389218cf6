//! Busy-polling a serving loop for a short window after request activity.
//!
//! At low load a gateway call is mostly waiting: for the upstream to answer,
//! then for the client's next request. A loop that sleeps in `epoll_wait`
//! for those few tens of microseconds pays for it twice: the kernel wakes it
//! again (on a VM, an interrupt through the hypervisor when its vCPU went
//! idle) and it resumes on cold caches. On the 2-core bench machine that
//! was about 100 µs of a 1-connection call's 230 µs. Here each loop keeps
//! polling its event loop without sleeping (`epoll_wait` with a zero
//! timeout) until `window` has passed since a request last started or
//! ended; then it sleeps as before. This is Linux's `busy_poll` and
//! HAProxy's `busy-polling` bounded to a window, as Go's scheduler spins
//! briefly before it parks a thread.
//!
//! The trade-off: up to `window` of CPU per request start or end while the
//! loop has nothing else to do, in exchange for the wake-ups. An idle loop
//! costs nothing; under load a loop rarely runs out of work, so it rarely
//! spins. The state is thread-local: each serving loop
//! ([`crate::serve_per_core`]) runs on a thread of its own.

use std::cell::Cell;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

/// How long a serving loop polls without sleeping after a request starts or
/// ends, by default: longer than a loopback upstream's answer and a
/// client's next request at one connection on the bench machine (~60–80 µs
/// and ~40 µs), short enough to cost little where calls are rare.
pub const DEFAULT_BUSY_POLL: Duration = Duration::from_micros(100);

thread_local! {
    /// When this thread's loop last saw a request start or end.
    static LAST_ACTIVITY: Cell<Option<Instant>> = const { Cell::new(None) };
    /// The loop's poller, while it waits for activity.
    static POLLER: Cell<Option<Waker>> = const { Cell::new(None) };
}

/// Records request activity on this thread's loop, waking its poller.
pub(crate) fn mark_activity() {
    LAST_ACTIVITY.set(Some(Instant::now()));
    if let Some(poller) = POLLER.take() {
        poller.wake();
    }
}

fn active_within(window: Duration) -> bool {
    LAST_ACTIVITY
        .get()
        .is_some_and(|last| last.elapsed() < window)
}

/// Keeps the current-thread runtime it runs on polling (never parking)
/// until `window` has passed since the last [`mark_activity`] on this
/// thread; waits for the next one; repeats. Spawn it on the loop's runtime;
/// it ends when that runtime does.
pub(crate) async fn poll_after_activity(window: Duration) {
    loop {
        std::future::poll_fn(|cx| {
            if active_within(window) {
                Poll::Ready(())
            } else {
                POLLER.set(Some(cx.waker().clone()));
                Poll::Pending
            }
        })
        .await;
        // A yielded task is deferred until the runtime has polled its driver
        // without blocking (tokio's `park_yield`), so the loop keeps taking
        // I/O events and timers while it spins.
        while active_within(window) {
            // Let any other runnable thread on this core go first, so the
            // spinning takes only CPU that would otherwise idle.
            std::thread::yield_now();
            tokio::task::yield_now().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A current-thread runtime that counts the times it parks (blocks).
    fn counting_runtime() -> (tokio::runtime::Runtime, Arc<AtomicUsize>) {
        let parks = Arc::new(AtomicUsize::new(0));
        let counted = parks.clone();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .on_thread_park(move || {
                counted.fetch_add(1, Ordering::Relaxed);
            })
            .build()
            .unwrap();
        (runtime, parks)
    }

    /// Parks while `window`'s poller runs and the loop waits 50 ms on a timer,
    /// after a request activity if `mark`.
    fn parks_while_waiting(window: Duration, mark: bool) -> usize {
        std::thread::spawn(move || {
            let (runtime, parks) = counting_runtime();
            runtime.block_on(async {
                tokio::spawn(poll_after_activity(window));
                tokio::task::yield_now().await;
                if mark {
                    mark_activity();
                }
                let before = parks.load(Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(50)).await;
                parks.load(Ordering::Relaxed) - before
            })
        })
        .join()
        .unwrap()
    }

    #[test]
    fn the_loop_never_parks_within_the_window_after_activity() {
        // The timer still fires: the spinning loop polls its driver.
        assert_eq!(parks_while_waiting(Duration::from_secs(30), true), 0);
    }

    #[test]
    fn the_loop_parks_once_the_window_has_passed() {
        assert!(parks_while_waiting(Duration::from_millis(1), true) >= 1);
    }

    #[test]
    fn an_idle_loop_parks() {
        assert!(parks_while_waiting(Duration::from_secs(30), false) >= 1);
    }
}
