//! What the host benchmarks share.

#![allow(clippy::unwrap_used, dead_code)]

use std::sync::Arc;

use corral_gateway::{Gateway, GatewayConfig, GatewayOptions};
use corral_host::{AgentHost, EngineConfig, HostServices, SandboxEngine};
use corral_model::ScriptedModel;

/// The assistant's services: its scripted model and the built-in WASM
/// calculator through an in-process gateway whose tool engine is the one
/// `corral serve` wires ([`EngineConfig::for_tools`]).
pub async fn assistant_services(host: &Arc<AgentHost>) -> HostServices {
    let gateway = Gateway::new(
        GatewayConfig::builtin_tools(&["calculator"]).unwrap(),
        GatewayOptions {
            engine: Some(
                SandboxEngine::new(EngineConfig::for_tools(host.engine().config())).unwrap(),
            ),
            ..GatewayOptions::default()
        },
    )
    .await
    .unwrap();
    let model = ScriptedModel::from_toml(corral_examples::ASSISTANT_SCRIPT).unwrap();
    HostServices::new(Arc::new(model)).with_gateway(gateway)
}
