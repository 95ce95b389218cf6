//! Serving a router on one single-threaded runtime per thread.
//!
//! A gateway call is short I/O work: read a request, call a target, write
//! the answer. On tokio's multi-threaded runtime its steps wake each other
//! across threads (the connection's task, the upstream connection's task,
//! the I/O driver) and idle workers are woken to steal them; at one
//! connection both workers ran every call, and about half the gateway's CPU
//! was scheduling and kernel time. Here each thread runs its own event loop
//! that accepts from the shared listening socket (the first free loop takes
//! a new connection, as nginx's workers do) and keeps a connection, its
//! calls and their OpenAPI upstream connections ([`crate::HttpClients`]) on
//! that thread. The trade-off: no work stealing, so one connection's work
//! cannot move to an idle thread; a connection that is busy for long (a
//! slow WASM tool) delays the other connections of its loop, not the
//! process. Each loop also busy-polls briefly after request activity
//! ([`crate::busy_poll`]) instead of sleeping between a call's steps.

use std::future::Future;
use std::num::NonZeroUsize;
use std::time::Duration;

use axum::Router;
use tokio::sync::{mpsc, watch};
use tower::util::{MapRequestLayer, MapResponseLayer};

use crate::busy_poll::{Activity, DEFAULT_BUSY_POLL, mark_activity, poll_after_activity};

/// How [`serve_per_core`] serves; start from `default()` and set fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PerCoreOptions {
    /// Event loops, one thread each (default: one per CPU core).
    pub threads: NonZeroUsize,
    /// How long a loop keeps polling without sleeping after a request
    /// starts or ends (default [`DEFAULT_BUSY_POLL`]; zero: never), where
    /// the last wait after that kind of activity was short. It spends up
    /// to this much CPU after each start and end (up to twice it per
    /// request) instead of being woken by the kernel between a call's
    /// steps, which on a VM costs tens of microseconds of latency; each
    /// turn of the spin offers the core to other ready threads.
    pub busy_poll: Duration,
}

impl Default for PerCoreOptions {
    fn default() -> Self {
        Self {
            threads: std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN),
            busy_poll: DEFAULT_BUSY_POLL,
        }
    }
}

/// Serves `app` on `listener` from `options.threads` single-threaded
/// runtimes.
///
/// The threads are named `corral-serve-N`. When `shutdown` completes, the
/// loops stop accepting (the socket closes) and let in-flight requests
/// finish. A loop that stops on its own, by an error or a panic, stops the
/// others; the first error is returned.
pub async fn serve_per_core(
    listener: std::net::TcpListener,
    app: Router,
    options: PerCoreOptions,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    let busy_poll = options.busy_poll;
    let app = if busy_poll.is_zero() {
        app
    } else {
        app.layer(MapRequestLayer::new(|request| {
            mark_activity(Activity::RequestStarted);
            request
        }))
        // When the handler returns the response, before hyper writes it:
        // MCP answers are whole JSON bodies, so the write follows at once.
        .layer(MapResponseLayer::new(|response| {
            mark_activity(Activity::ResponseReady);
            response
        }))
    };
    let (stop, stopped) = watch::channel(false);
    let (done, mut finished) = mpsc::unbounded_channel::<std::io::Result<()>>();
    let mut failed = None;
    for index in 0..options.threads.get() {
        let loop_listener = match listener.try_clone() {
            Ok(clone) => clone,
            Err(error) => {
                failed = Some(error);
                break;
            }
        };
        let app = app.clone();
        let mut stopped = stopped.clone();
        let report = Report(Some(done.clone()));
        let spawned = std::thread::Builder::new()
            .name(format!("corral-serve-{index}"))
            .spawn(move || {
                let result = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .and_then(|runtime| {
                        runtime.block_on(async move {
                            let listener = tokio::net::TcpListener::from_std(loop_listener)?;
                            if !busy_poll.is_zero() {
                                tokio::spawn(poll_after_activity(busy_poll));
                            }
                            axum::serve(listener, app)
                                .with_graceful_shutdown(async move {
                                    let _ = stopped.wait_for(|stop| *stop).await;
                                })
                                .await
                        })
                    });
                report.send(result);
            });
        if let Err(error) = spawned {
            failed = Some(error);
            break;
        }
    }
    // Only the loops hold the socket now: it closes when the last one stops
    // accepting, so clients are refused, not left in the backlog.
    drop(listener);
    drop(done);
    let mut first = match failed {
        Some(error) => Some(Err(error)),
        None => tokio::select! {
            () = shutdown => None,
            // A loop that stops on its own stops the others.
            result = finished.recv() => result,
        },
    };
    let _ = stop.send(true);
    while let Some(result) = finished.recv().await {
        first.get_or_insert(result);
    }
    first.unwrap_or(Ok(()))
}

/// How a loop's thread reports its end: its result, or an error if it
/// unwound before it could send one.
struct Report(Option<mpsc::UnboundedSender<std::io::Result<()>>>);

impl Report {
    fn send(mut self, result: std::io::Result<()>) {
        if let Some(done) = self.0.take() {
            let _ = done.send(result);
        }
    }
}

impl Drop for Report {
    fn drop(&mut self) {
        if let Some(done) = self.0.take() {
            let _ = done.send(Err(std::io::Error::other("a serving loop panicked")));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;
    use std::time::Duration;

    /// Each request holds its loop's thread for a moment, so a second
    /// connection made meanwhile must be accepted by the other loop.
    fn blocking_app() -> Router {
        Router::new().route(
            "/",
            get(|| async {
                std::thread::sleep(Duration::from_millis(400));
                std::thread::current()
                    .name()
                    .unwrap_or_default()
                    .to_string()
            }),
        )
    }

    #[tokio::test]
    async fn requests_mark_activity_on_the_loop_that_serves_them() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let app = Router::new().route(
            "/",
            get(|| async { crate::busy_poll::active_within(Duration::from_secs(60)).to_string() }),
        );
        let mut options = PerCoreOptions::default();
        for (busy_poll, marked) in [
            (Duration::from_micros(100), "true"),
            (Duration::ZERO, "false"),
        ] {
            options.busy_poll = busy_poll;
            let serving = Serving::start(listener.try_clone().unwrap(), app.clone(), options);
            assert_eq!(text_from(address).await, marked, "busy-poll {busy_poll:?}");
            serving.stop().await;
        }
    }

    /// `serve_per_core` running in a task until [`Serving::stop`].
    struct Serving {
        stop: tokio::sync::oneshot::Sender<()>,
        server: tokio::task::JoinHandle<std::io::Result<()>>,
    }

    impl Serving {
        fn start(listener: std::net::TcpListener, app: Router, options: PerCoreOptions) -> Self {
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let server = tokio::spawn(serve_per_core(listener, app, options, async move {
                let _ = stopped.await;
            }));
            Self { stop, server }
        }

        /// Signals shutdown; the loops must stop cleanly within 10 s.
        async fn stop(self) {
            self.stop.send(()).unwrap();
            tokio::time::timeout(Duration::from_secs(10), self.server)
                .await
                .expect("the loops stop")
                .unwrap()
                .unwrap();
        }
    }

    async fn text_from(address: std::net::SocketAddr) -> String {
        reqwest::get(format!("http://{address}/"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_busy_loop_leaves_new_connections_to_another_and_all_stop_on_shutdown() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let serving = Serving::start(
            listener,
            blocking_app(),
            PerCoreOptions {
                threads: NonZeroUsize::new(2).unwrap(),
                ..PerCoreOptions::default()
            },
        );
        let first = tokio::spawn(text_from(address));
        tokio::time::sleep(Duration::from_millis(150)).await;
        let second = text_from(address).await;
        let first = first.await.unwrap();
        assert!(first.starts_with("corral-serve-"), "{first}");
        assert!(second.starts_with("corral-serve-"), "{second}");
        assert_ne!(first, second, "the busy loop took the second connection");
        serving.stop().await;
        assert!(std::net::TcpStream::connect(address).is_err());
    }

    #[tokio::test]
    async fn a_loop_thread_that_unwinds_reports_an_error() {
        let (done, mut finished) = mpsc::unbounded_channel::<std::io::Result<()>>();
        let report = Report(Some(done));
        let unwound = std::thread::spawn(move || {
            let _report = report;
            panic!("a handler's bug");
        })
        .join();
        assert!(unwound.is_err());
        let error = finished.recv().await.unwrap().unwrap_err();
        assert!(error.to_string().contains("panicked"), "{error}");
    }
}
