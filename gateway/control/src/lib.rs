//! AgentCore's control plane for gateways (`CreateGateway`,
//! `CreateGatewayTarget`, …) and policies (`CreatePolicyEngine`,
//! `CreatePolicy`, …), in `bedrock-agentcore-control`'s shapes.
//!
//! Resources are persisted in one JSON document (`<dir>/gateways.json`,
//! replaced atomically) and applied live: each gateway is a running
//! [`corral_gateway::Gateway`] serving MCP at `/gateways/{gatewayId}/mcp`,
//! rebuilt when its targets change; a policy change re-validates the
//! engine's policies against every gateway it is attached to and takes
//! effect on their next call. A change is applied only once it is
//! persisted, and persisted only once it has been built and validated.

mod error;
mod gateways;
pub mod http;
mod policies;
pub mod resources;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use corral_gateway::{Gateway, GatewayOptions, HttpOptions};
use parking_lot::RwLock;

pub use error::ControlError;
pub use gateways::{GatewayInput, TargetInput};
pub use policies::{PolicyEngineInput, PolicyInput};
pub use resources::{
    GatewayResource, PolicyEngineAttachment, PolicyEngineResource, PolicyResource, Resources,
    TargetResource,
};

/// How the control plane may build gateways.
#[derive(Clone, Debug, Default)]
pub struct ControlOptions {
    /// Allowed `Host` headers of the gateways' MCP endpoints.
    pub http: HttpOptions,
    /// Whether targets created through the API may reach into this host:
    /// stdio MCP servers (a command run here), schema or component files
    /// read from here, Lambda functions called with this process's AWS
    /// credentials, WASM tools with their own memory and CPU limits. Off by
    /// default: a caller of the API then only gets inline OpenAPI
    /// documents, HTTP MCP servers and the built-in tools.
    pub allow_host_targets: bool,
}

/// File the resources are kept in, inside the control plane's directory.
pub const RESOURCES_FILE: &str = "gateways.json";

/// A gateway as it runs: the gateway and its MCP router.
#[derive(Clone)]
struct LiveGateway {
    gateway: Arc<Gateway>,
    router: axum::Router,
}

/// The gateway and policy control plane of one server.
pub struct ControlPlane {
    dir: PathBuf,
    arn_prefix: String,
    options: GatewayOptions,
    control: ControlOptions,
    /// The persisted resources; held across a change (which may build a
    /// gateway) so changes apply one at a time.
    resources: tokio::sync::Mutex<Resources>,
    /// What readers see: the last committed resources, so reads never wait
    /// behind a change that is building a gateway.
    snapshot: RwLock<Arc<Resources>>,
    live: RwLock<HashMap<String, LiveGateway>>,
}

impl std::fmt::Debug for ControlPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlPlane")
            .field("dir", &self.dir)
            .field("gateways", &self.live.read().len())
            .finish()
    }
}

impl ControlPlane {
    /// Opens (or creates) the control plane in `dir` and starts every
    /// persisted gateway. `options` are what its gateways' targets share
    /// with the process (sandbox engine, AWS settings, base directory).
    pub async fn open(
        dir: &Path,
        options: GatewayOptions,
        control: ControlOptions,
    ) -> Result<Self, ControlError> {
        std::fs::create_dir_all(dir).map_err(ControlError::Storage)?;
        let path = dir.join(RESOURCES_FILE);
        let resources: Resources = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                ControlError::Storage(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{}: {e}", path.display()),
                ))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Resources::default(),
            Err(e) => return Err(ControlError::Storage(e)),
        };
        let plane = ControlPlane {
            dir: dir.to_path_buf(),
            arn_prefix: "arn:aws:bedrock-agentcore:us-east-1:000000000000".into(),
            options: GatewayOptions {
                local_targets: Vec::new(),
                ..options
            },
            control,
            resources: tokio::sync::Mutex::new(Resources::default()),
            snapshot: RwLock::new(Arc::new(Resources::default())),
            live: RwLock::new(HashMap::new()),
        };
        // A gateway that no longer builds (an upstream gone for good, a
        // policy that no longer validates) is logged and left stopped; the
        // others serve.
        let mut live = HashMap::new();
        for gateway in resources.gateways.values() {
            match plane.build(gateway, &resources).await {
                Ok(built) => {
                    live.insert(gateway.gateway_id.clone(), built);
                }
                Err(error) => tracing::error!(
                    gateway = %gateway.gateway_id,
                    %error,
                    "gateway could not be started; fix it with UpdateGateway or UpdateGatewayTarget"
                ),
            }
        }
        *plane.live.write() = live;
        *plane.snapshot.write() = Arc::new(resources.clone());
        *plane.resources.lock().await = resources;
        Ok(plane)
    }

    /// The running gateway with this id, if any.
    pub fn gateway(&self, gateway_id: &str) -> Option<Arc<Gateway>> {
        self.live.read().get(gateway_id).map(|l| l.gateway.clone())
    }

    /// The MCP router of a running gateway (serving `/mcp`).
    fn mcp_router(&self, gateway_id: &str) -> Option<axum::Router> {
        self.live.read().get(gateway_id).map(|l| l.router.clone())
    }

    /// Whether a gateway runs (`READY`) or could not be started (`FAILED`).
    pub fn gateway_status(&self, gateway_id: &str) -> &'static str {
        if self.live.read().contains_key(gateway_id) {
            "READY"
        } else {
            "FAILED"
        }
    }

    /// A target's status and reasons: `FAILED` when its gateway did not
    /// start, `SYNCHRONIZE_UNSUCCESSFUL` while its MCP server has not been
    /// reached (retried in the background), else `READY`.
    pub fn target_status(&self, gateway_id: &str, target: &str) -> (&'static str, Vec<String>) {
        match self.live.read().get(gateway_id) {
            None => ("FAILED", vec!["the gateway could not be started".into()]),
            Some(live)
                if live
                    .gateway
                    .unavailable_targets()
                    .iter()
                    .any(|t| t == target) =>
            {
                (
                    "SYNCHRONIZE_UNSUCCESSFUL",
                    vec![
                        "the MCP server has not been reached yet; retrying in the background"
                            .into(),
                    ],
                )
            }
            Some(_) => ("READY", Vec::new()),
        }
    }

    /// The last committed resources.
    fn current(&self) -> Arc<Resources> {
        self.snapshot.read().clone()
    }

    /// Persists `next`, then makes it the state writers and readers see.
    fn commit(&self, resources: &mut Resources, next: Resources) -> Result<(), ControlError> {
        self.persist(&next)?;
        *self.snapshot.write() = Arc::new(next.clone());
        *resources = next;
        Ok(())
    }

    /// Writes `resources` durably.
    fn persist(&self, resources: &Resources) -> Result<(), ControlError> {
        let bytes = serde_json::to_vec_pretty(resources)
            .map_err(|e| ControlError::Storage(std::io::Error::other(e)))?;
        corral_storage::write_file_atomic(&self.dir.join(RESOURCES_FILE), &bytes)
            .map_err(ControlError::Storage)
    }
}
