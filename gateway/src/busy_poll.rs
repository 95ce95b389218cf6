//! Busy-polling a serving loop for a short window after request activity.
//!
//! At one connection with calls back to back, a gateway call is mostly
//! waiting: for the upstream to answer, then for the client's next request.
//! A loop that sleeps in `epoll_wait` for those few tens of microseconds
//! pays for it twice: the kernel wakes it again (on a VM, an interrupt
//! through the hypervisor when its vCPU went idle) and it resumes on cold
//! caches. Here each loop keeps polling its event loop without sleeping
//! (`epoll_wait` with a zero timeout) until `window` has passed since a
//! request last started or its response was ready; then it sleeps as
//! before. This is Linux's `busy_poll` and HAProxy's `busy-polling` bounded
//! to a window, as Go's scheduler spins briefly before it parks a thread.
//! On the 2-core bench machine it cut the gateway's p50 over a direct call
//! at one connection from about +200 µs to about +100 µs, for the same CPU
//! per call (`benches/peers/busy-poll`; README, Performance).
//!
//! It spins only where that pays, as adaptive mutexes do: after each kind
//! of activity (a request start, a response), only if the loop's wait after
//! that kind last time was short (within twice the window, since a wait the
//! loop slept through includes its own wake-up). A client that pauses
//! between calls stops the spinning after responses, which then costs CPU
//! for nothing; a quick upstream keeps it after request starts.
//!
//! The trade-off: while the loop has nothing else to do, up to `window` of
//! CPU after a request start and after its response, in exchange for the
//! wake-ups. Each turn of the spin offers the core to any other thread
//! ready to run on it (`sched_yield`). An idle loop costs nothing; under
//! load a loop rarely runs out of work, so it rarely spins. The state is
//! thread-local: each serving loop ([`crate::serve_per_core`]) runs on a
//! thread of its own, and its connections' tasks, where the activity is
//! marked, run on that thread.

use std::cell::Cell;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

/// How long a serving loop polls without sleeping after a request starts or
/// ends, by default: longer than a loopback upstream's answer and a
/// client's next request at one connection on the bench machine (~60–80 µs
/// and ~40 µs), short enough to cost little where calls are rare.
pub const DEFAULT_BUSY_POLL: Duration = Duration::from_micros(100);

/// What a serving loop saw happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Activity {
    /// A request reached the router.
    RequestStarted,
    /// The router returned a response.
    ResponseReady,
}

impl Activity {
    fn index(self) -> usize {
        match self {
            Activity::RequestStarted => 0,
            Activity::ResponseReady => 1,
        }
    }
}

thread_local! {
    /// What this thread's loop last saw, and when.
    static LAST_ACTIVITY: Cell<Option<(Instant, Activity)>> = const { Cell::new(None) };
    /// For each kind of activity, whether the loop's wait after it last time
    /// ended within the window: the guess that the next wait will too.
    static SHORT_WAIT: Cell<[bool; 2]> = const { Cell::new([true; 2]) };
    /// The window of this thread's poller (zero: none runs).
    static WINDOW: Cell<Duration> = const { Cell::new(Duration::ZERO) };
    /// The loop's poller, while it waits for activity.
    static POLLER: Cell<Option<Waker>> = const { Cell::new(None) };
}

/// Records `activity` on this thread's loop: learns whether the wait since
/// the previous one was short, and wakes the poller.
pub(crate) fn mark_activity(activity: Activity) {
    let now = Instant::now();
    if let Some((last, kind)) = LAST_ACTIVITY.get() {
        let mut short = SHORT_WAIT.get();
        // A wait the loop slept through also includes its wake-up, which
        // can be as long as the window: count the wait short if it ended
        // within twice the window, or one missed guess would feed itself.
        short[kind.index()] = now.duration_since(last) < WINDOW.get() * 2;
        SHORT_WAIT.set(short);
    }
    LAST_ACTIVITY.set(Some((now, activity)));
    if let Some(poller) = POLLER.take() {
        poller.wake();
    }
}

/// Whether this thread's loop saw any activity within `window`.
#[cfg(test)]
pub(crate) fn active_within(window: Duration) -> bool {
    LAST_ACTIVITY
        .get()
        .is_some_and(|(last, _)| last.elapsed() < window)
}

/// Whether the loop should keep polling: its last activity is within
/// `window`, and the last wait after that kind of activity was short.
fn should_spin(window: Duration) -> bool {
    LAST_ACTIVITY
        .get()
        .is_some_and(|(last, kind)| SHORT_WAIT.get()[kind.index()] && last.elapsed() < window)
}

/// Keeps the current-thread runtime it runs on polling (never parking)
/// after each [`mark_activity`] on this thread while [`should_spin`] says
/// so, for at most `window`; waits for the next one; repeats. Spawn it on
/// the loop's runtime; it ends when that runtime does.
pub(crate) async fn poll_after_activity(window: Duration) {
    // The runtime drops this future when it shuts down; the thread-local
    // waker must not keep the runtime's handle alive past that.
    let _forget = ForgetPoller;
    WINDOW.set(window);
    loop {
        std::future::poll_fn(|cx| {
            if should_spin(window) {
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
        while should_spin(window) {
            // Offer the core to any other thread ready to run on it first.
            std::thread::yield_now();
            tokio::task::yield_now().await;
        }
    }
}

/// Clears this thread's stored poller waker when the poller ends.
struct ForgetPoller;

impl Drop for ForgetPoller {
    fn drop(&mut self) {
        // `try_with`: a runtime dropped while its thread exits may find the
        // slot already gone.
        let _ = POLLER.try_with(Cell::take);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    thread_local! {
        /// Parks of the runtime on this thread ([`run_counting_parks`]).
        static PARKS: Arc<AtomicUsize> = Arc::new(AtomicUsize::new(0));
    }

    /// Runs `body` on a current-thread runtime of its own thread, with the
    /// poller for `window` spawned; returns its result and the times the
    /// runtime parked (blocked) while `body` ran. Fails after 10 s.
    fn run_counting_parks<F, Fut>(window: Duration, body: F) -> (Fut::Output, usize)
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: std::future::Future,
        Fut::Output: Send + 'static,
    {
        let (done, result) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let parks = PARKS.with(Arc::clone);
            let counted = parks.clone();
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .on_thread_park(move || {
                    counted.fetch_add(1, Ordering::Relaxed);
                })
                .build()
                .unwrap();
            let outcome = runtime.block_on(async {
                tokio::spawn(poll_after_activity(window));
                tokio::task::yield_now().await;
                let before = parks.load(Ordering::Relaxed);
                let output = body().await;
                (output, parks.load(Ordering::Relaxed) - before)
            });
            let _ = done.send(outcome);
        });
        result
            .recv_timeout(Duration::from_secs(10))
            .expect("the loop finished")
    }

    /// Parks of this thread's runtime while it waits `how_long` on a timer.
    async fn wait_parks(how_long: Duration) -> usize {
        let before = PARKS.with(|parks| parks.load(Ordering::Relaxed));
        tokio::time::sleep(how_long).await;
        PARKS.with(|parks| parks.load(Ordering::Relaxed)) - before
    }

    /// Waits 50 ms on a timer, after a request activity if `mark`.
    async fn wait_on_timer(mark: bool) -> Duration {
        if mark {
            mark_activity(Activity::RequestStarted);
        }
        let started = Instant::now();
        tokio::time::sleep(Duration::from_millis(50)).await;
        started.elapsed()
    }

    #[test]
    fn the_loop_never_parks_within_the_window_and_still_fires_timers() {
        let (waited, parks) = run_counting_parks(Duration::from_secs(5), || wait_on_timer(true));
        assert_eq!(parks, 0);
        assert!(waited < Duration::from_secs(2), "{waited:?}");
    }

    #[test]
    fn the_loop_takes_io_events_while_it_spins() {
        let ((), parks) = run_counting_parks(Duration::from_secs(5), || async {
            mark_activity(Activity::RequestStarted);
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let address = listener.local_addr().unwrap();
            // The peer is another thread: its bytes reach this loop only
            // through the I/O driver the spin polls.
            let peer = std::thread::spawn(move || {
                use std::io::{Read, Write};
                let mut stream = std::net::TcpStream::connect(address).unwrap();
                stream.write_all(b"ping").unwrap();
                let mut answer = [0; 4];
                stream.read_exact(&mut answer).unwrap();
                answer
            });
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut request = [0; 4];
            stream.read_exact(&mut request).await.unwrap();
            stream.write_all(b"pong").await.unwrap();
            assert_eq!(&request, b"ping");
            assert_eq!(&peer.join().unwrap(), b"pong");
        });
        assert_eq!(parks, 0);
    }

    #[test]
    fn the_loop_spins_only_where_the_last_wait_after_that_activity_was_short() {
        let window = Duration::from_millis(200);
        let ((asleep, spinning), _) = run_counting_parks(window, move || async move {
            // A request start, then nothing for over twice the window: the
            // wait after the next request start is guessed long.
            mark_activity(Activity::RequestStarted);
            tokio::time::sleep(window * 2 + Duration::from_millis(100)).await;
            mark_activity(Activity::RequestStarted);
            let asleep = wait_parks(Duration::from_millis(50)).await;
            // That wait ended within the window: the guess is short again.
            mark_activity(Activity::RequestStarted);
            let spinning = wait_parks(Duration::from_millis(50)).await;
            (asleep, spinning)
        });
        assert!(asleep >= 1, "the loop spun after a wait guessed long");
        assert_eq!(spinning, 0, "the loop slept after a wait guessed short");
    }

    #[test]
    fn the_loop_parks_once_the_window_has_passed() {
        let (_, parks) = run_counting_parks(Duration::from_millis(1), || wait_on_timer(true));
        assert!(parks >= 1);
    }

    #[test]
    fn an_idle_loop_parks() {
        let (_, parks) = run_counting_parks(Duration::from_secs(5), || wait_on_timer(false));
        assert!(parks >= 1);
    }

    #[test]
    fn the_poller_forgets_its_waker_when_its_runtime_ends() {
        std::thread::spawn(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                tokio::spawn(poll_after_activity(Duration::from_millis(1)));
                tokio::task::yield_now().await;
            });
            let stored = POLLER.take();
            assert!(
                stored.is_some(),
                "the idle poller waits with its waker stored"
            );
            POLLER.set(stored);
            drop(runtime);
            assert!(POLLER.take().is_none());
        })
        .join()
        .unwrap();
    }
}
