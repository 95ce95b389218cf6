//! Serving a router on one single-threaded runtime per core.
//!
//! A gateway call is short I/O work: read a request, call a target, write
//! the answer. On tokio's multi-threaded runtime its steps wake each other
//! across cores (the connection's task, the upstream connection's task, the
//! I/O driver) and idle workers are woken to steal them; at one connection
//! both cores ran every call, and about half the gateway's CPU was
//! scheduling and kernel time. Here each core runs its own event loop that
//! accepts from the shared listening socket (the first free loop takes a
//! new connection, as nginx's workers do) and keeps a connection, its calls
//! and their upstream connections ([`crate::HttpClients`]) on that core.
//! The trade-off: no work stealing, so one connection's work cannot move to
//! an idle core; a connection that is busy for long (a slow WASM tool)
//! delays the other connections of its core, not the process.

use std::future::Future;
use std::num::NonZeroUsize;

use axum::Router;
use tokio::sync::{mpsc, watch};

/// Serves `app` on `listener` with `threads` single-threaded runtimes (named
/// `corral-serve-N`) until `shutdown` completes, then lets in-flight
/// requests finish. Returns the first error a runtime stopped with.
pub async fn serve_per_core(
    listener: std::net::TcpListener,
    app: Router,
    threads: NonZeroUsize,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    let (stop, stopped) = watch::channel(false);
    let (done, mut finished) = mpsc::unbounded_channel::<std::io::Result<()>>();
    for index in 0..threads.get() {
        let listener = listener.try_clone()?;
        let app = app.clone();
        let mut stopped = stopped.clone();
        let report = done.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("corral-serve-{index}"))
            .spawn(move || {
                let result = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .and_then(|runtime| {
                        runtime.block_on(async move {
                            let listener = tokio::net::TcpListener::from_std(listener)?;
                            axum::serve(listener, app)
                                .with_graceful_shutdown(async move {
                                    let _ = stopped.wait_for(|stop| *stop).await;
                                })
                                .await
                        })
                    });
                let _ = report.send(result);
            });
        if let Err(error) = spawned {
            let _ = stop.send(true);
            drop(done);
            while finished.recv().await.is_some() {}
            return Err(error);
        }
    }
    drop(done);
    let mut first = tokio::select! {
        () = shutdown => None,
        // A loop that stops on its own stops the others.
        result = finished.recv() => result,
    };
    let _ = stop.send(true);
    while let Some(result) = finished.recv().await {
        first.get_or_insert(result);
    }
    first.unwrap_or(Ok(()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;

    #[tokio::test]
    async fn every_loop_answers_and_all_stop_on_shutdown() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let app = Router::new().route(
            "/",
            get(|| async { std::thread::current().name().unwrap_or("").to_string() }),
        );
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve_per_core(
            listener,
            app,
            NonZeroUsize::new(2).unwrap(),
            async move {
                let _ = stopped.await;
            },
        ));
        // Fresh connections until both loops have answered one.
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..200 {
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .build()
                .unwrap();
            let name = client
                .get(format!("http://{address}/"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            seen.insert(name);
            if seen.len() == 2 {
                break;
            }
        }
        assert!(seen.iter().all(|name| name.starts_with("corral-serve-")));
        assert_eq!(seen.len(), 2, "only {seen:?} answered");
        stop.send(()).unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(10), server)
            .await
            .expect("the loops stop")
            .unwrap()
            .unwrap();
        assert!(std::net::TcpStream::connect(address).is_err());
    }
}
