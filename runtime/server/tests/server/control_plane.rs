//! AgentCore's control plane driven by boto3's own `bedrock-agentcore-control`
//! client against a live server: runtimes from S3 (moto) and files, endpoint
//! CRUD and paging, gateways and targets served over MCP, policy engines
//! whose policy changes apply without a restart, and `UpdateMemory`.

use std::path::{Path, PathBuf};

use corral_runtime::RuntimeBuilder;
use corral_server::{ArtifactConfig, Server, ServerConfig};
use serde_json::Value;

/// A server over `dir` with memory and the gateway control plane, fetching
/// `s3://` artifacts from `s3_url` and `file://` ones under `file_root`.
async fn start(
    dir: &Path,
    s3_url: &str,
    file_root: &Path,
) -> (String, tokio::sync::oneshot::Sender<()>) {
    let runtime = RuntimeBuilder::new()
        .memory(dir.join("memory"), "agents")
        .gateway_resources(dir.join("gateways"), Default::default())
        .build()
        .await
        .unwrap();
    let server = Server::new(
        &runtime,
        &ServerConfig {
            data_dir: dir.to_path_buf(),
            max_artifact_bytes: 32 << 20,
            auth: None,
            artifacts: ArtifactConfig {
                s3_endpoint_url: Some(s3_url.to_string()),
                aws: Some(corral_test_support::dummy_aws()),
                file_roots: vec![file_root.to_path_buf()],
            },
        },
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        server
            .serve(listener, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        runtime.shutdown();
    });
    (url, tx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boto3_manages_runtimes_gateways_policies_and_memory() {
    let python = corral_test_support::ci_python("moto");
    let moto_port = corral_test_support::free_port();
    let moto_server = python.with_file_name("moto_server");
    let moto = corral_test_support::spawn_server(
        std::process::Command::new(&moto_server)
            .args(["-H", "127.0.0.1", "-p", &moto_port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null()),
        moto_port,
    );

    let dir = tempfile::tempdir().unwrap();
    let artifacts = dir.path().join("artifacts-in");
    std::fs::create_dir_all(&artifacts).unwrap();
    let wasm = artifacts.join("echo_agent.wasm");
    std::fs::write(&wasm, corral_examples::ECHO_AGENT).unwrap();
    let (url, _stop) = start(&dir.path().join("server"), &moto.url, &artifacts).await;

    let script: PathBuf =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/control_plane_client.py");
    let output = tokio::process::Command::new(&python)
        .arg(script)
        .arg(&url)
        .arg(&moto.url)
        .arg(&wasm)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "the boto3 control-plane client failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let out: Value = serde_json::from_slice(&output.stdout).unwrap();
    eprintln!("boto3 control-plane client: {out:#}");
    assert_eq!(out["ok"], true, "{out}");
    // The script asserts each step; spot-check what it saw.
    assert!(
        out["denied_text"]
            .as_str()
            .is_some_and(|t| t.starts_with("AuthorizeActionException")),
        "{out}"
    );
    assert_eq!(out["allowed_after_update"], true, "{out}");
    let errors = out["errors"].as_object().unwrap();
    assert!(
        errors
            .values()
            .all(|code| code.as_str().is_some_and(|c| c.ends_with("Exception"))),
        "{out}"
    );
    drop(moto);
}

#[tokio::test]
async fn every_route_answers_json_errors_aws_clients_understand() {
    let dir = tempfile::tempdir().unwrap();
    let (url, _stop) = start(dir.path(), "http://127.0.0.1:9", dir.path()).await;
    let client = reqwest::Client::new();
    let check = |response: reqwest::Response, status: u16, kind: &'static str| async move {
        assert_eq!(response.status(), status);
        assert_eq!(
            response.headers()["x-amzn-errortype"].to_str().unwrap(),
            kind
        );
        let body: Value = response.json().await.unwrap();
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{body}"
        );
    };
    check(
        client
            .get(format!("{url}/no/such/route"))
            .send()
            .await
            .unwrap(),
        404,
        "UnknownOperationException",
    )
    .await;
    check(
        client
            .patch(format!("{url}/runtimes/"))
            .send()
            .await
            .unwrap(),
        405,
        "UnknownOperationException",
    )
    .await;
    let too_big = vec![b'x'; corral_server::MAX_PAYLOAD_BYTES + 1];
    check(
        client
            .post(format!("{url}/runtimes/x/invocations"))
            .body(too_big)
            .send()
            .await
            .unwrap(),
        413,
        "ValidationException",
    )
    .await;
    check(
        client
            .put(format!("{url}/runtimes/"))
            .body("{not json")
            .send()
            .await
            .unwrap(),
        400,
        "ValidationException",
    )
    .await;
    check(
        client
            .put(format!("{url}/runtimes/"))
            .body(r#"{"agentRuntimeName":"a","agentRuntimeArtifact":{"containerConfiguration":{"containerUri":"123456789012.dkr.ecr.us-east-1.amazonaws.com/agent:1"}}}"#)
            .send()
            .await
            .unwrap(),
        400,
        "ValidationException",
    )
    .await;
    check(
        client
            .get(format!("{url}/gateways/missing-0123456789/"))
            .send()
            .await
            .unwrap(),
        404,
        "ResourceNotFoundException",
    )
    .await;
    check(
        client
            .post(format!("{url}/gateways/missing-0123456789/mcp"))
            .body("{}")
            .send()
            .await
            .unwrap(),
        404,
        "ResourceNotFoundException",
    )
    .await;
    // An S3 artifact whose store is unreachable is the caller's problem.
    check(
        client
            .put(format!("{url}/runtimes/"))
            .body(r#"{"agentRuntimeName":"a","agentRuntimeArtifact":{"codeConfiguration":{"code":{"s3":{"bucket":"b","prefix":"k.wasm"}},"runtime":"PYTHON_3_12","entryPoint":["a.wasm"]}}}"#)
            .send()
            .await
            .unwrap(),
        400,
        "ValidationException",
    )
    .await;
}
