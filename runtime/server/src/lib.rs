//! `corral serve`: deploy agents as WASM components and invoke them over
//! AgentCore Runtime's HTTP API (`InvokeAgentRuntime`, `StopRuntimeSession`,
//! `/ping`, the runtime control plane), with a sessions API AgentCore lacks
//! and AgentCore Memory's routes mounted beside it.

mod app;
pub mod artifact;
mod error;
pub mod metrics;
pub mod placement;
mod registry;
mod runtimes;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

pub use app::{
    AppState, AppStateInner, MAX_PAYLOAD_BYTES, REQUEST_ID_HEADER, SESSION_HEADER, USER_HEADER,
    router,
};
pub use artifact::{ArtifactConfig, ArtifactFetcher};
pub use error::{ApiError, ERROR_TYPE_HEADER};
pub use registry::{
    AgentRegistry, AgentRuntime, DEFAULT_ENDPOINT, DeployRequest, DeployTarget, EchoedSettings,
    LifecycleConfiguration, RegistryError, RuntimeEndpoint, RuntimeVersion, runtime_id_of,
};

/// Stops a server started with [`Server::spawn_loopback`]; dropping it
/// stops the server without waiting.
pub struct LoopbackStop {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl LoopbackStop {
    /// Stops the server and waits until it has drained, stopped its
    /// sessions and let go of its stores.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The registry could not be opened.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// This replica could not register in the session directory.
    #[error("cannot join the replicas")]
    Cluster(#[source] corral_cluster::DirectoryError),
    /// The registry's store could not be opened.
    #[error("cannot open the deploy registry's store")]
    Store(#[source] corral_runtime::RuntimeError),
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
    /// Join the replicas sharing the runtime's database as this replica
    /// (sessions placed through a directory in it, forwarded between
    /// replicas); `None`: one process serves every session it is sent.
    pub cluster: Option<corral_cluster::ClusterConfig>,
}

/// A running server's parts, for embedding and tests.
pub struct Server {
    /// Shared state.
    pub state: AppState,
    /// AgentCore Memory's routes, when the runtime has memory.
    memory: Option<corral_memory::MemoryService>,
    /// The gateway and policy control plane, when the runtime has one.
    control: Option<Arc<corral_gateway_control::ControlPlane>>,
    /// Follows other replicas' registry changes, when the store is shared.
    follower: Option<tokio::task::JoinHandle<()>>,
    /// Renews this replica's lease, when it is one of several.
    heartbeat: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        for task in [self.follower.take(), self.heartbeat.take()]
            .into_iter()
            .flatten()
        {
            task.abort();
        }
    }
}

impl Server {
    /// Serves `runtime`'s agents: opens the deploy registry in the
    /// runtime's store (`config.data_dir/registry`, or the shared
    /// database), compiling into `config.data_dir` (deploys naming a
    /// `memoryId` are checked against the runtime's memory service, when
    /// it has one). Within a tokio runtime.
    pub fn new(
        runtime: &corral_runtime::Runtime,
        config: &ServerConfig,
    ) -> Result<Self, ServerError> {
        let store = runtime
            .store("registry", &config.data_dir.join("registry"))
            .map_err(ServerError::Store)?;
        let registry = Arc::new(AgentRegistry::open(
            &config.data_dir,
            store,
            runtime.host().clone(),
            config.max_artifact_bytes,
        )?);
        if let Some(memory) = runtime.memory() {
            registry.attach_memory(memory.clone());
        }
        let (cluster, heartbeat) = match &config.cluster {
            Some(cluster) => {
                let store = runtime
                    .store("sessions", &config.data_dir.join("sessions"))
                    .map_err(ServerError::Store)?;
                let directory = Arc::new(corral_cluster::SessionDirectory::new(
                    store,
                    cluster.clone(),
                    Arc::new(placement::ManagedSessions(runtime.sessions().clone())),
                ));
                directory.heartbeat().map_err(ServerError::Cluster)?;
                let heartbeat = corral_cluster::spawn_heartbeat(directory.clone());
                (
                    Some(Arc::new(placement::Cluster::new(directory))),
                    Some(heartbeat),
                )
            }
            None => (None, None),
        };
        Ok(Server {
            follower: registry.follow_changes(),
            heartbeat,
            memory: runtime.memory().cloned(),
            control: runtime.control_plane().cloned(),
            state: AppState::new(AppStateInner {
                registry,
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
                database: runtime.database(),
                cluster,
            }),
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
        // Sessions stay resumable from their journals; in a cluster, they
        // are released so another replica resumes them at once.
        self.state.sessions.stop_all();
        if let Some(cluster) = &self.state.cluster {
            if let Some(heartbeat) = &self.heartbeat {
                heartbeat.abort();
            }
            let directory = cluster.directory().clone();
            match tokio::task::spawn_blocking(move || directory.release_all()).await {
                Ok(Ok(released)) => {
                    tracing::info!(sessions = released, "handed this replica's sessions off");
                }
                Ok(Err(error)) => tracing::warn!(
                    "cannot release this replica's sessions (others take them when its lease lapses): {error}"
                ),
                Err(error) => tracing::warn!("the release task failed: {error}"),
            }
        }
        result.map_err(ServerError::from)
    }

    /// Serves on an ephemeral port of 127.0.0.1 in the background (tests,
    /// benchmarks, embedding); returns the base URL and a handle that stops
    /// it (dropping it stops it too), after which `on_stop` runs.
    pub async fn spawn_loopback(
        self,
        on_stop: impl FnOnce() + Send + 'static,
    ) -> Result<(String, LoopbackStop), ServerError> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let served = self
                .serve(listener, async {
                    let _ = stopped.await;
                })
                .await;
            if let Err(error) = served {
                tracing::error!(%error, "loopback server failed");
            }
            drop(self);
            on_stop();
        });
        Ok((
            url,
            LoopbackStop {
                stop: Some(stop),
                task,
            },
        ))
    }

    /// Binds `addr`.
    pub async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, ServerError> {
        Ok(tokio::net::TcpListener::bind(addr).await?)
    }
}
