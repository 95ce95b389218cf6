//! `corral serve`: deploy agents as WASM components and invoke them over
//! AgentCore Runtime's HTTP API (`InvokeAgentRuntime`, `StopRuntimeSession`,
//! `/ping`, the runtime control plane), with a sessions API AgentCore lacks
//! and AgentCore Memory's routes mounted beside it.

mod app;
pub mod artifact;
mod error;
pub mod metrics;
mod registry;
mod runtimes;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

pub use app::{
    AppState, MAX_PAYLOAD_BYTES, REQUEST_ID_HEADER, SESSION_HEADER, USER_HEADER, router,
};
pub use artifact::{ArtifactConfig, ArtifactFetcher};
pub use error::{ApiError, ERROR_TYPE_HEADER};
pub use registry::{
    AgentRegistry, AgentRuntime, DEFAULT_ENDPOINT, DeployRequest, DeployTarget, EchoedSettings,
    LifecycleConfiguration, RegistryError, RuntimeEndpoint, RuntimeVersion, runtime_id_of,
};

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The registry could not be opened.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// Binding or serving failed.
    #[error("server I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// What `corral serve` runs with.
#[derive(Clone)]
pub struct ServerConfig {
    /// Directory of deployed agents.
    pub data_dir: PathBuf,
    /// Largest accepted component, in bytes.
    pub max_artifact_bytes: usize,
    /// Inbound authentication (API keys, JWT); `None` accepts every caller.
    pub auth: Option<Arc<corral_gateway::Authenticator>>,
    /// Host names requests may carry (`Host`, without the port); `None`
    /// accepts any. A server on loopback should name only loopback hosts,
    /// so a web page cannot reach it by DNS rebinding.
    pub allowed_hosts: Option<Vec<String>>,
    /// Where `CreateAgentRuntime` may fetch components from.
    pub artifacts: ArtifactConfig,
}

/// A running server's parts, for embedding and tests.
pub struct Server {
    /// Shared state.
    pub state: AppState,
    /// AgentCore Memory's routes, when the runtime has memory.
    memory: Option<corral_memory::MemoryService>,
    /// The gateway and policy control plane, when the runtime has one.
    control: Option<Arc<corral_gateway_control::ControlPlane>>,
}

impl Server {
    /// Serves `runtime`'s agents: opens the deploy registry in
    /// `config.data_dir` (deploys naming a `memoryId` are checked against
    /// the runtime's memory service, when it has one).
    pub fn new(
        runtime: &corral_runtime::Runtime,
        config: &ServerConfig,
    ) -> Result<Self, ServerError> {
        let registry = AgentRegistry::open(
            &config.data_dir,
            runtime.host().clone(),
            config.max_artifact_bytes,
        )?;
        if let Some(memory) = runtime.memory() {
            registry.attach_memory(memory.clone());
        }
        Ok(Server {
            memory: runtime.memory().cloned(),
            control: runtime.control_plane().cloned(),
            state: AppState {
                registry: Arc::new(registry),
                sessions: runtime.sessions().clone(),
                in_flight: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
                status_changed: Arc::new(std::sync::atomic::AtomicU64::new(
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_secs())
                        .unwrap_or(0),
                )),
                metrics: Arc::new(metrics::Metrics::default()),
                auth: config.auth.clone(),
                allowed_hosts: config.allowed_hosts.clone().map(Arc::new),
                deploys: Arc::new(tokio::sync::Semaphore::new(
                    std::thread::available_parallelism().map_or(1, usize::from),
                )),
                artifacts: Arc::new(ArtifactFetcher::new(
                    config.artifacts.clone(),
                    config.max_artifact_bytes,
                )),
                database: runtime.database().cloned(),
            },
        })
    }

    /// Every route: runtimes and sessions, memory and the gateway control
    /// plane when the runtime has them, behind authentication and one JSON
    /// error surface.
    pub fn router(&self) -> axum::Router {
        let mut app = router(self.state.clone());
        if let Some(memory) = &self.memory {
            app = app.merge(corral_memory::http::router(memory.clone()));
        }
        if let Some(control) = &self.control {
            app = app.merge(corral_gateway_control::http::router(control.clone()));
        }
        app.fallback(error::unknown_operation)
            .layer(axum::middleware::from_fn_with_state(
                self.state.clone(),
                app::authenticate,
            ))
            .layer(axum::middleware::from_fn_with_state(
                self.state.clone(),
                app::check_host,
            ))
            .layer(axum::middleware::from_fn(error::json_errors))
            .layer(axum::middleware::from_fn(app::trace_requests))
    }

    /// Serves on `listener` until `shutdown` resolves, then drains in-flight
    /// requests and stops every session.
    pub async fn serve(
        &self,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        // Session expiry and hibernation run in the session manager's own
        // task (started with it), not here.
        let app = self.router();
        // Small responses should not wait on Nagle's algorithm.
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
        // The peer address names the caller of unauthenticated requests.
        let app = app.into_make_service_with_connect_info::<SocketAddr>();
        let result = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await;
        self.state.sessions.stop_all();
        result.map_err(ServerError::from)
    }

    /// Serves on an ephemeral port of 127.0.0.1 in the background (tests,
    /// benchmarks, embedding); returns the base URL and a trigger that
    /// stops it, after which `on_stop` runs.
    pub async fn spawn_loopback(
        self,
        on_stop: impl FnOnce() + Send + 'static,
    ) -> Result<(String, tokio::sync::oneshot::Sender<()>), ServerError> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let (stop, stopped) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let served = self
                .serve(listener, async {
                    let _ = stopped.await;
                })
                .await;
            if let Err(error) = served {
                tracing::error!(%error, "loopback server failed");
            }
            on_stop();
        });
        Ok((url, stop))
    }

    /// Binds `addr`.
    pub async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, ServerError> {
        Ok(tokio::net::TcpListener::bind(addr).await?)
    }
}
