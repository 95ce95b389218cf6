//! The gateway's outbound HTTP client: one connection pool per thread.
//!
//! `reqwest` drives each pooled connection from a task spawned on the
//! runtime that opened it. When the gateway serves from one single-threaded
//! runtime per thread (`corral gateway`, see [`crate::serve_per_core`]), a
//! shared pool hands a connection opened on one loop to a call on another,
//! and every request and response then crosses threads (a wake-up of the
//! other thread each way). A pool per thread keeps a call, its upstream
//! connection and the task driving it on one thread, as Envoy's
//! thread-local connection pools do. The cost: one client per thread that
//! ever calls out (each builds its TLS roots once, a few milliseconds, on
//! its first call), and idle connections per thread rather than per process.

use std::sync::Arc;
use std::time::Duration;

use thread_local::ThreadLocal;

/// The gateway's outbound HTTP clients, one per thread that calls out.
#[derive(Clone)]
pub struct HttpClients {
    inner: Arc<Inner>,
}

struct Inner {
    /// Built up front (so a client that cannot be built fails at load);
    /// also serves a thread whose own client cannot be built.
    shared: reqwest::Client,
    /// Each thread's own client, made with the shared one's connect timeout;
    /// `None` when every thread uses the shared client.
    per_thread: Option<(Duration, ThreadLocal<reqwest::Client>)>,
}

impl std::fmt::Debug for HttpClients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClients")
            .field("per_thread", &self.inner.per_thread.is_some())
            .finish_non_exhaustive()
    }
}

impl HttpClients {
    /// A pool per thread, giving up connecting after `connect_timeout`.
    pub fn new(connect_timeout: Duration) -> Result<Self, reqwest::Error> {
        Ok(Self {
            inner: Arc::new(Inner {
                shared: build(connect_timeout)?,
                per_thread: Some((connect_timeout, ThreadLocal::new())),
            }),
        })
    }

    /// `client` on every thread (tests, embedders with a client of their own).
    pub fn shared(client: reqwest::Client) -> Self {
        Self {
            inner: Arc::new(Inner {
                shared: client,
                per_thread: None,
            }),
        }
    }

    /// This thread's client.
    pub fn get(&self) -> &reqwest::Client {
        let inner = &*self.inner;
        match &inner.per_thread {
            Some((timeout, clients)) => clients.get_or(|| {
                build(*timeout).unwrap_or_else(|error| {
                    tracing::warn!(
                        error = &error as &dyn std::error::Error,
                        "cannot build this thread's HTTP client; it shares the process's pool"
                    );
                    inner.shared.clone()
                })
            }),
            None => &inner.shared,
        }
    }
}

fn build(connect_timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .build()
}
