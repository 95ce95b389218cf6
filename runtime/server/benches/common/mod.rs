//! What the server benchmarks share: a `corral serve` in process on a
//! loopback port, with agents deployed over HTTP.

#![allow(clippy::unwrap_used, dead_code)]

use std::path::Path;
use std::sync::Arc;

use corral_host::{EngineConfig, SessionConfig};
use corral_runtime::RuntimeBuilder;
use corral_server::{Server, ServerConfig};

/// Serves agents on an `engine` with `sessions` settings over `dir` and
/// deploys `agents` (name, component); returns the base URL and the
/// shutdown trigger.
pub async fn serve(
    engine: EngineConfig,
    sessions: SessionConfig,
    dir: &Path,
    agents: &[(&str, &[u8])],
) -> (String, corral_server::LoopbackStop) {
    let runtime = Arc::new(
        RuntimeBuilder::new()
            .engine(engine)
            .sessions(sessions)
            .build()
            .await
            .unwrap(),
    );
    let server = Server::new(
        &runtime,
        &ServerConfig {
            data_dir: dir.to_path_buf(),
            max_artifact_bytes: 64 << 20,
            cluster: None,
            artifacts: Default::default(),
            allowed_hosts: None,
            auth: None,
        },
    )
    .unwrap();
    let (url, stop) = server
        .spawn_loopback(move || {
            runtime.shutdown();
        })
        .await
        .unwrap();
    let client = reqwest::Client::new();
    for (name, bytes) in agents {
        let deployed = client
            .post(format!("{url}/corral/runtimes/{name}"))
            .body(bytes.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(deployed.status(), 201);
    }
    (url, stop)
}
