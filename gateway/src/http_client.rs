//! The gateway's outbound HTTP client: one connection pool per thread.
//!
//! `reqwest` drives each pooled connection from a task spawned on the
//! runtime that opened it. When the gateway serves on one single-threaded
//! runtime per core (`corral gateway`, see [`crate::serve_per_core`]), a
//! shared pool hands a connection opened on one core's runtime to a call on
//! another, and every request and response then crosses threads (a wake-up
//! of the other core each way). A pool per thread keeps a call, its
//! upstream connection and the task driving it on one core, as Envoy's
//! thread-local connection pools do. On a multi-threaded runtime it costs
//! only a few more idle connections (at most one pool per worker thread).

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
            Some((timeout, clients)) => {
                clients.get_or(|| build(*timeout).unwrap_or_else(|_| inner.shared.clone()))
            }
            None => &inner.shared,
        }
    }
}

fn build(connect_timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .build()
}
