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
) -> (String, corral_server::LoopbackStop) {
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
            allowed_hosts: Some(vec!["127.0.0.1".into()]),
            cluster: None,
            artifacts: ArtifactConfig {
                s3_endpoint_url: Some(s3_url.to_string()),
                aws: Some(corral_test_support::dummy_aws()),
                file_roots: vec![file_root.to_path_buf()],
            },
        },
    )
    .unwrap();
    server
        .spawn_loopback(move || {
            runtime.shutdown();
        })
        .await
        .unwrap()
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
    let output = corral_test_support::run_python_with_dummy_aws(
        &python,
        &script,
        &[url.as_ref(), moto.url.as_ref(), wasm.as_os_str()],
    )
    .await;
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
    let ecr = r#"{"agentRuntimeName":"a","agentRuntimeArtifact":{"containerConfiguration":{"containerUri":"123456789012.dkr.ecr.us-east-1.amazonaws.com/agent:1"}}}"#;
    // An S3 artifact whose store is unreachable is the caller's problem.
    let unreachable_s3 = r#"{"agentRuntimeName":"a","agentRuntimeArtifact":{"codeConfiguration":{"code":{"s3":{"bucket":"b","prefix":"k.wasm"}},"runtime":"PYTHON_3_12","entryPoint":["a.wasm"]}}}"#;
    let too_big = vec![b'x'; corral_server::MAX_PAYLOAD_BYTES + 1];
    let cases: Vec<(reqwest::Method, &str, Vec<u8>, u16, &str)> = vec![
        (
            reqwest::Method::GET,
            "/no/such/route",
            vec![],
            404,
            "UnknownOperationException",
        ),
        (
            reqwest::Method::PATCH,
            "/runtimes/",
            vec![],
            405,
            "UnknownOperationException",
        ),
        (
            reqwest::Method::POST,
            "/runtimes/x/invocations",
            too_big,
            413,
            "ValidationException",
        ),
        (
            reqwest::Method::PUT,
            "/runtimes/",
            b"{not json".to_vec(),
            400,
            "ValidationException",
        ),
        (
            reqwest::Method::PUT,
            "/runtimes/",
            ecr.into(),
            400,
            "ValidationException",
        ),
        (
            reqwest::Method::GET,
            "/gateways/missing-0123456789/",
            vec![],
            404,
            "ResourceNotFoundException",
        ),
        (
            reqwest::Method::POST,
            "/gateways/missing-0123456789/mcp",
            b"{}".to_vec(),
            404,
            "ResourceNotFoundException",
        ),
        (
            reqwest::Method::PUT,
            "/runtimes/",
            unreachable_s3.into(),
            400,
            "ValidationException",
        ),
    ];
    // A Host this server does not answer to (DNS rebinding) is refused.
    let rebound = client
        .get(format!("{url}/gateways/"))
        .header("host", "attacker.example:80")
        .send()
        .await
        .unwrap();
    assert_eq!(rebound.status(), 403);
    assert_eq!(
        rebound.headers()["x-amzn-errortype"],
        "AccessDeniedException"
    );
    for (method, path, body, status, kind) in cases {
        let response = client
            .request(method.clone(), format!("{url}{path}"))
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{method} {path}");
        assert_eq!(
            response.headers()["x-amzn-errortype"].to_str().unwrap(),
            kind,
            "{method} {path}"
        );
        let body: Value = response.json().await.unwrap();
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{method} {path}: {body}"
        );
    }
}
