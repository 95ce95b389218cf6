//! Shared helpers for the host's integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use corral_host::{
    AgentHost, CompiledAgent, EngineConfig, HostServices, InvocationRequest, InvocationResponse,
    InvokeError, SandboxLimits, SessionConfig, SessionManager,
};
use serde_json::Value;

/// One engine and compiled agents per test binary: compiling is the slow part.
pub struct Fixture {
    pub host: Arc<AgentHost>,
    pub probe: Arc<CompiledAgent>,
    pub echo: Arc<CompiledAgent>,
    pub assistant: Arc<CompiledAgent>,
}

pub fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let host = Arc::new(
            AgentHost::new(EngineConfig {
                max_instances: 64,
                max_memory_bytes: 64 << 20,
                ..EngineConfig::default()
            })
            .expect("engine"),
        );
        let compile =
            |name: &str, bytes: &[u8]| Arc::new(host.compile(name, bytes).expect("compile"));
        Fixture {
            probe: compile("probe", corral_test_guests::SANDBOX_PROBE),
            echo: compile("echo", corral_examples::ECHO_AGENT),
            assistant: compile("assistant", corral_examples::ASSISTANT_AGENT),
            host,
        }
    })
}

/// Session settings sized for tests: 32 MiB, 300 ms of CPU per invocation.
pub fn test_config() -> SessionConfig {
    SessionConfig {
        max_sessions: 16,
        limits: SandboxLimits {
            memory_bytes: 32 << 20,
            cpu_time: Duration::from_millis(300),
            output_bytes: 4 << 10,
            ..SandboxLimits::default()
        },
        invocation_timeout: Duration::from_secs(20),
        ..SessionConfig::default()
    }
}

pub fn manager(services: HostServices, config: SessionConfig) -> SessionManager {
    SessionManager::new(fixture().host.clone(), services, config)
}

/// Invokes the probe with a JSON payload.
pub async fn probe(
    manager: &SessionManager,
    session: &str,
    payload: Value,
) -> Result<InvocationResponse, InvokeError> {
    manager
        .invoke(
            &fixture().probe,
            InvocationRequest::new(session, payload.to_string()),
        )
        .await
}

/// Invokes the probe and parses its JSON answer.
pub async fn probe_json(manager: &SessionManager, session: &str, payload: Value) -> Value {
    let response = probe(manager, session, payload.clone())
        .await
        .unwrap_or_else(|e| panic!("probe {payload} failed: {e}"));
    serde_json::from_slice(&response.payload).expect("probe answers JSON")
}
