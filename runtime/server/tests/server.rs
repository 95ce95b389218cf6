//! `corral serve` end to end on 127.0.0.1: deploy over HTTP, boto3's
//! `bedrock-agentcore` client invoking with sessions, deploy validation,
//! redeploy under a live session, sessions API, `/ping`, restart.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use corral_gateway::{GatewayConfig, GatewayOptions};
use corral_host::SessionConfig;
use corral_model::ScriptedModel;
use corral_runtime::RuntimeBuilder;
use corral_server::{SESSION_HEADER, Server, ServerConfig};
use futures::StreamExt;

#[path = "server/control_plane.rs"]
mod control_plane;
use serde_json::{Value, json};

/// A server over `dir` with the assistant's scripted model and the
/// built-in calculator; returns its base URL and a shutdown trigger.
async fn start(dir: &Path) -> (String, corral_server::LoopbackStop) {
    start_with_auth(dir, None).await
}

/// [`start`] with inbound authentication.
async fn start_with_auth(
    dir: &Path,
    auth: Option<Arc<corral_gateway::Authenticator>>,
) -> (String, corral_server::LoopbackStop) {
    start_with(dir, auth, SessionConfig::default()).await
}

/// [`start`] with inbound authentication and session settings; the
/// sessions are journaled in `dir/journal` when `journal` is set.
async fn start_with(
    dir: &Path,
    auth: Option<Arc<corral_gateway::Authenticator>>,
    sessions: SessionConfig,
) -> (String, corral_server::LoopbackStop) {
    start_runtime(dir, auth, sessions, false).await
}

async fn start_runtime(
    dir: &Path,
    auth: Option<Arc<corral_gateway::Authenticator>>,
    sessions: SessionConfig,
    journal: bool,
) -> (String, corral_server::LoopbackStop) {
    let model = ScriptedModel::from_toml(corral_examples::ASSISTANT_SCRIPT).unwrap();
    let mut runtime = RuntimeBuilder::new()
        .sessions(sessions)
        .model(Arc::new(model))
        .gateway(
            GatewayConfig::builtin_tools(&["calculator"]).unwrap(),
            GatewayOptions::default(),
        );
    if journal {
        runtime = runtime.journal(
            dir.join("journal"),
            corral_journal::JournalConfig::default(),
        );
    }
    let runtime = runtime.build().await.unwrap();
    let server = Server::new(
        &runtime,
        &ServerConfig {
            data_dir: dir.to_path_buf(),
            max_artifact_bytes: 32 * 1024 * 1024,
            cluster: None,
            artifacts: Default::default(),
            allowed_hosts: None,
            auth,
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

async fn deploy(url: &str, name: &str, bytes: &[u8]) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{url}/corral/runtimes/{name}"))
        .header("content-type", "application/wasm")
        .body(bytes.to_vec())
        .send()
        .await
        .unwrap()
}

fn python() -> PathBuf {
    corral_test_support::ci_python("boto3")
}

#[tokio::test]
async fn boto3_invokes_deployed_agent_with_session_state() {
    let dir = tempfile::tempdir().unwrap();
    let (url, _stop) = start(dir.path()).await;
    let deployed = deploy(&url, "assistant", corral_examples::ASSISTANT_AGENT).await;
    assert_eq!(deployed.status(), 201);
    let runtime: Value = deployed.json().await.unwrap();
    let arn = runtime["agentRuntimeArn"].as_str().unwrap().to_string();
    assert_eq!(runtime["agentRuntimeVersion"], "1");

    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/runtime_client.py");
    let output = tokio::process::Command::new(python())
        .arg(script)
        .arg(&url)
        .arg(&arn)
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "boto3 client failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let out: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(out["first"], "(17 * 23) + 4 = 395.");
    assert_eq!(out["same_session"], "395 / 5 = 79.", "{out}");
    assert_ne!(out["other_session"], "395 / 5 = 79.");
    assert_eq!(out["session_matches"], true);
    assert_eq!(
        out["content_type"], "application/json",
        "a non-streaming agent answers in one body"
    );
    assert_ne!(
        out["after_stop"], "395 / 5 = 79.",
        "stop_runtime_session must end the sandbox"
    );
    assert_eq!(out["missing_agent"], "ResourceNotFoundException");
}

#[tokio::test]
async fn bad_deploys_get_clear_client_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (url, _stop) = start(dir.path()).await;
    let core_module = b"\0asm\x01\0\0\0";
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        (
            "garbage",
            b"not wasm at all".to_vec(),
            400,
            "ValidationException",
        ),
        ("core", core_module.to_vec(), 400, "ValidationException"),
        (
            "bad name!",
            corral_examples::ECHO_AGENT.to_vec(),
            400,
            "ValidationException",
        ),
        (
            "huge",
            vec![0u8; 33 * 1024 * 1024],
            413,
            "ValidationException",
        ),
    ];
    for (name, bytes, status, error) in cases {
        let response = deploy(&url, &name.replace(' ', "%20"), &bytes).await;
        assert_eq!(response.status(), status, "{name}");
        assert_eq!(response.headers()["x-amzn-ErrorType"], error, "{name}");
        let body: Value = response.json().await.unwrap();
        assert!(!body["message"].as_str().unwrap().is_empty());
    }
    // A component of another world (a WASM tool) is refused by name.
    let response = deploy(&url, "tool", corral_builtin_tools_calculator()).await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["message"].as_str().unwrap().contains("agent"),
        "{body}"
    );
    // Nothing was registered.
    let listed: Value = reqwest::Client::new()
        .post(format!("{url}/runtimes/"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["agentRuntimes"], json!([]));
}

fn corral_builtin_tools_calculator() -> &'static [u8] {
    corral_builtin_tools::CORRAL_CALCULATOR
}

async fn invoke(
    url: &str,
    runtime: &str,
    session: &str,
    prompt: &str,
    qualifier: &str,
) -> (u16, String) {
    let response = reqwest::Client::new()
        .post(format!(
            "{url}/runtimes/{runtime}/invocations?qualifier={qualifier}"
        ))
        .header(SESSION_HEADER, session)
        .header("content-type", "application/json")
        .body(json!({"prompt": prompt}).to_string())
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test]
async fn redeploy_keeps_live_sessions_on_their_version_and_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let session = "s".repeat(40);
    {
        let (url, stop) = start(dir.path()).await;
        assert_eq!(
            deploy(&url, "agent", corral_examples::ASSISTANT_AGENT)
                .await
                .status(),
            201
        );
        let (status, _) = invoke(&url, "agent", &session, "What is 2 + 3?", "DEFAULT").await;
        assert_eq!(status, 200);
        // Version 2 is the echo agent: new sessions get it, the live one does not.
        let v2: Value = deploy(&url, "agent", corral_examples::ECHO_AGENT)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(v2["agentRuntimeVersion"], "2");
        let (_, live) = invoke(&url, "agent", &session, "Now multiply that by 2", "DEFAULT").await;
        assert!(live.contains("= 10"), "live session moved versions: {live}");
        let (_, fresh) = invoke(&url, "agent", &"f".repeat(40), "hello", "DEFAULT").await;
        assert_eq!(
            serde_json::from_str::<Value>(&fresh).unwrap()["prompt"],
            "hello",
            "echo answers new sessions"
        );
        // Sessions API.
        let sessions: Value = reqwest::get(format!("{url}/corral/sessions"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let versions: Vec<&str> = sessions["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["agentRuntimeVersion"].as_str().unwrap())
            .collect();
        assert_eq!(versions.len(), 2, "{sessions}");
        // Pin an endpoint to version 1.
        let pinned = reqwest::Client::new()
            .put(format!("{url}/runtimes/agent/runtime-endpoints/"))
            .json(&json!({"name": "stable", "agentRuntimeVersion": "1"}))
            .send()
            .await
            .unwrap();
        assert_eq!(pinned.status(), 202);
        let ping: Value = reqwest::get(format!("{url}/ping"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(ping["status"], "Healthy");
        assert!(ping["time_of_last_update"].as_u64().unwrap() > 0);
        let stopped = reqwest::Client::new()
            .delete(format!("{url}/corral/sessions/{session}"))
            .send()
            .await
            .unwrap();
        assert_eq!(stopped.status(), 200);
        stop.stop().await;
    }
    // A new server on the same directory knows both versions and the endpoint.
    let (url, _stop) = start(dir.path()).await;
    // CreateAgentRuntime refuses a taken name; UpdateAgentRuntime with a
    // base64 WASM artifact adds version 3.
    use base64::Engine;
    let taken = reqwest::Client::new()
        .put(format!("{url}/runtimes/"))
        .json(&json!({
            "agentRuntimeName": "agent",
            "agentRuntimeArtifact": {"wasm": {"base64": base64::engine::general_purpose::STANDARD.encode(corral_examples::ECHO_AGENT)}},
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(taken.status(), 409);
    assert_eq!(taken.headers()["x-amzn-errortype"], "ConflictException");
    let created = reqwest::Client::new()
        .put(format!("{url}/runtimes/agent/"))
        .json(&json!({
            "agentRuntimeArtifact": {"wasm": {"base64": base64::engine::general_purpose::STANDARD.encode(corral_examples::ECHO_AGENT)}},
            "lifecycleConfiguration": {"idleRuntimeSessionTimeout": 60, "maxLifetime": 3600},
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 202);
    let created: Value = created.json().await.unwrap();
    assert_eq!(created["agentRuntimeVersion"], "3");
    let versions: Value = reqwest::Client::new()
        .post(format!("{url}/runtimes/agent/versions/"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(versions["agentRuntimes"].as_array().unwrap().len(), 3);
    let (status, answer) = invoke(&url, "agent", &"n".repeat(40), "What is 6 * 7?", "stable").await;
    assert_eq!(status, 200);
    assert!(answer.contains("= 42"), "{answer}");
    let (status, _) = invoke(&url, "agent", &"n".repeat(10), "x", "DEFAULT").await;
    assert_eq!(status, 400, "short session ids are rejected");
}

#[tokio::test]
async fn streaming_agents_answer_with_server_sent_events() {
    let dir = tempfile::tempdir().unwrap();
    let (url, _stop) = start(dir.path()).await;
    assert_eq!(
        deploy(&url, "probe", corral_test_guests::SANDBOX_PROBE)
            .await
            .status(),
        201
    );
    let response = reqwest::Client::new()
        .post(format!("{url}/runtimes/probe/invocations"))
        .header(SESSION_HEADER, "p".repeat(40))
        .body(json!({"action": "stream", "chunks": ["one", "two"]}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    assert!(
        response
            .headers()
            .contains_key(corral_server::REQUEST_ID_HEADER)
    );
    let body = response.text().await.unwrap();
    assert_eq!(body, "data: one\n\ndata: two\n\ndata: end\n\n");
}

#[tokio::test]
async fn api_keys_guard_every_route_but_ping_and_metrics_count_invocations() {
    let dir = tempfile::tempdir().unwrap();
    let config: corral_gateway::config::InboundAuthConfig =
        serde_json::from_value(json!({"apiKeys": [{"name": "ops", "key": "s3cret-key"}]})).unwrap();
    let auth = corral_gateway::Authenticator::new(
        corral_gateway::AuthorizerKind::ApiKey,
        &config,
        dir.path(),
    )
    .unwrap();
    let (url, _stop) = start_with_auth(dir.path(), Some(Arc::new(auth))).await;
    let client = reqwest::Client::new();
    assert_eq!(
        reqwest::get(format!("{url}/ping")).await.unwrap().status(),
        200
    );
    let denied = client
        .post(format!("{url}/runtimes/"))
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 401);
    assert_eq!(
        denied.headers()["x-amzn-ErrorType"],
        "AccessDeniedException"
    );
    let wrong = client
        .get(format!("{url}/metrics"))
        .header("x-api-key", "nope")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let deployed = client
        .post(format!("{url}/corral/runtimes/echo"))
        .header("x-api-key", "s3cret-key")
        .body(corral_examples::ECHO_AGENT.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(deployed.status(), 201);
    for _ in 0..3 {
        let response = client
            .post(format!("{url}/runtimes/echo/invocations"))
            .header("x-api-key", "s3cret-key")
            .header(SESSION_HEADER, "m".repeat(40))
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    let metrics = client
        .get(format!("{url}/metrics"))
        .header("authorization", "Bearer s3cret-key")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("corral_invocations_total{agent=\"echo\",outcome=\"ok\"} 3"),
        "{metrics}"
    );
    assert!(metrics.contains("corral_sessions_live 1"), "{metrics}");
    assert!(
        metrics.contains("corral_invocation_duration_seconds_count{agent=\"echo\"} 3"),
        "{metrics}"
    );
}

/// Two API keys: `mallory` floods, `alice` arrives in the middle of it.
fn two_callers(dir: &Path) -> Arc<corral_gateway::Authenticator> {
    let config: corral_gateway::config::InboundAuthConfig = serde_json::from_value(json!({
        "apiKeys": [{"name": "mallory", "key": "mallory-key"}, {"name": "alice", "key": "alice-key"}]
    }))
    .unwrap();
    Arc::new(
        corral_gateway::Authenticator::new(corral_gateway::AuthorizerKind::ApiKey, &config, dir)
            .unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_flooding_new_sessions_hits_its_quota_and_others_still_get_in() {
    const FLOOD: usize = 10_000;
    const QUOTA: usize = 20;
    let dir = tempfile::tempdir().unwrap();
    let (url, _stop) = start_with(
        dir.path(),
        Some(two_callers(dir.path())),
        SessionConfig {
            max_sessions: 100,
            max_sessions_per_caller: Some(QUOTA),
            guest_threads: 2,
            ..SessionConfig::default()
        },
    )
    .await;
    let client = reqwest::Client::new();
    let deployed = client
        .post(format!("{url}/corral/runtimes/probe"))
        .header("x-api-key", "mallory-key")
        .body(corral_test_guests::SANDBOX_PROBE.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(deployed.status(), 201);
    let invoke = |key: &'static str, session: String, body: Value| {
        client
            .post(format!("{url}/runtimes/probe/invocations"))
            .header("x-api-key", key)
            .header(SESSION_HEADER, session)
            .body(body.to_string())
            .send()
    };
    // 10,000 new sessions, 64 in flight at a time, each busy for 20 ms.
    let flood = futures::stream::iter(0..FLOOD)
        .map(|i| {
            invoke(
                "mallory-key",
                format!("mallory-{i:040}"),
                json!({"action": "sleep", "ms": 20}),
            )
        })
        .buffer_unordered(64)
        .fold(
            (0usize, 0usize, None::<(Value, String)>),
            |(ok, throttled, example), response| async move {
                let response = response.unwrap();
                match response.status().as_u16() {
                    200 => (ok + 1, throttled, example),
                    429 => {
                        let kind = response.headers()["x-amzn-ErrorType"]
                            .to_str()
                            .unwrap()
                            .to_string();
                        let body: Value = response.json().await.unwrap();
                        (ok, throttled + 1, example.or(Some((body, kind))))
                    }
                    other => panic!("unexpected {other}: {:?}", response.text().await),
                }
            },
        );
    // Alice's new session, while the flood is at its height.
    let alice = async {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        invoke(
            "alice-key",
            format!("alice-{:040}", 0),
            json!({"action": "noop"}),
        )
        .await
        .unwrap()
    };
    let ((ok, throttled, example), alice) = tokio::join!(flood, alice);
    assert_eq!(alice.status(), 200, "{:?}", alice.text().await);
    assert_eq!(ok + throttled, FLOOD);
    assert!(throttled > 0, "mallory never hit her quota ({ok} ok)");
    assert!(
        ok >= QUOTA,
        "mallory's sessions within her quota ran ({ok} ok)"
    );
    let (body, kind) = example.unwrap();
    assert_eq!(kind, "ThrottlingException");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("maxSessionsPerCaller") && message.contains("mallory"),
        "{message}"
    );
    // Mallory never held more than her quota; Alice's session is still live.
    let live: Value = client
        .get(format!("{url}/corral/sessions"))
        .header("x-api-key", "alice-key")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let sessions = live["sessions"].as_array().unwrap();
    let mallory = sessions
        .iter()
        .filter(|s| {
            s["runtimeSessionId"]
                .as_str()
                .unwrap()
                .starts_with("mallory-")
        })
        .count();
    assert!(mallory <= QUOTA, "{mallory} live sessions for mallory");
    assert!(
        sessions.iter().any(|s| s["runtimeSessionId"]
            .as_str()
            .unwrap()
            .starts_with("alice-")),
        "{live}"
    );
}

/// A journaling server records each invocation; `GET
/// /corral/sessions/{id}/journal` pages through it as JSON lines and
/// `DELETE /corral/sessions/{id}?purge=true` deletes it with the session.
#[tokio::test]
async fn journaled_sessions_are_readable_and_purgeable() {
    let dir = tempfile::tempdir().unwrap();
    let (url, _stop) = start_runtime(dir.path(), None, SessionConfig::default(), true).await;
    assert_eq!(
        deploy(&url, "assistant", corral_examples::ASSISTANT_AGENT)
            .await
            .status(),
        201
    );
    let client = reqwest::Client::new();
    let session = format!("journaled-{}", "0".repeat(40));
    for prompt in ["What is (17 * 23) + 4?", "Now divide that by 5"] {
        let response = client
            .post(format!("{url}/runtimes/assistant/invocations"))
            .header(SESSION_HEADER, &session)
            .body(json!({"prompt": prompt}).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }

    let page = |offset: u64, limit: u64| {
        let client = client.clone();
        let url = format!("{url}/corral/sessions/{session}/journal");
        async move {
            client
                .get(url)
                .query(&[("offset", offset), ("limit", limit)])
                .send()
                .await
                .unwrap()
        }
    };
    let all = page(0, 1_000).await;
    assert_eq!(all.status(), 200);
    assert_eq!(all.headers()["content-type"], "application/x-ndjson");
    let total: u64 = all.headers()["x-corral-journal-entries"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let lines: Vec<Value> = all
        .text()
        .await
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len() as u64, total);
    assert!(lines[0]["started"].is_object(), "{}", lines[0]);
    assert_eq!(
        lines.iter().filter(|l| l["response"].is_object()).count(),
        2
    );
    assert!(
        lines
            .iter()
            .any(|l| l["hostCall"]["function"] == "call-tool")
    );

    let second = page(2, 3).await;
    assert_eq!(second.headers()["x-corral-next-offset"], "5");
    let offsets: Vec<u64> = second
        .text()
        .await
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["offset"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(offsets, vec![2, 3, 4]);

    let purged: Value = client
        .delete(format!("{url}/corral/sessions/{session}?purge=true"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(purged["purged"], true, "{purged}");
    assert_eq!(page(0, 10).await.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_is_unhealthy_while_the_database_is_away_and_recovers() {
    use corral_test_support::TcpProxy;
    let url = corral_test_support::fresh_database("server_ping");
    let (_, rest) = url.split_once('@').unwrap();
    let (host, database) = rest.split_once('/').unwrap();
    let target: std::net::SocketAddr = host.parse().unwrap();
    let mut proxy = TcpProxy::start("127.0.0.1:0".parse().unwrap(), target);
    let through_proxy = format!("postgres://corral@{}/{database}", proxy.addr);
    let dir = tempfile::tempdir().unwrap();
    let runtime = RuntimeBuilder::new()
        .engine(corral_host::EngineConfig {
            max_instances: 4,
            ..corral_host::EngineConfig::default()
        })
        .database(through_proxy)
        .memory(dir.path().join("memory"), "agents")
        .build()
        .await
        .unwrap();
    let server = Server::new(
        &runtime,
        &ServerConfig {
            data_dir: dir.path().to_path_buf(),
            max_artifact_bytes: 1024 * 1024,
            cluster: None,
            artifacts: Default::default(),
            allowed_hosts: None,
            auth: None,
        },
    )
    .unwrap();
    let (base, _stop) = server
        .spawn_loopback(move || {
            runtime.shutdown();
        })
        .await
        .unwrap();
    let ping = || {
        let url = format!("{base}/ping");
        async move {
            let response = reqwest::get(url).await.unwrap();
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap();
            (
                status,
                body["status"].as_str().unwrap_or_default().to_string(),
            )
        }
    };
    assert_eq!(ping().await, (200, "Healthy".to_string()));

    proxy.stop();
    assert_eq!(ping().await, (503, "Unhealthy".to_string()));

    // The database comes back at the same address: healthy again without a
    // restart.
    let _back = TcpProxy::start(proxy.addr, target);
    let mut last = (0, String::new());
    for _ in 0..100 {
        last = ping().await;
        if last.0 == 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(last, (200, "Healthy".to_string()));
}
