//! Acceptance: the official MCP Python SDK (PyPI `mcp`) drives the gateway —
//! paginated tools/list, and tools/call on an OpenAPI tool (local HTTP API), a
//! Lambda tool (local Lambda wire server), a stdio reference server
//! (`mcp-server-time` from PyPI), an HTTP reference server
//! (`@modelcontextprotocol/server-everything` from npm) and a WASM tool — with
//! both the current protocol version and the previous one.
//!
//! `.ci/test` installs the peers into `target/ci-venv` and `target/ci-node`
//! (override with `CORRAL_TEST_PYTHON` / `CORRAL_TEST_NODE_MODULES`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use common::{Upstream, standard_config};
use corral_gateway::{HttpOptions, router};
use serde_json::{Value, json};

use corral_test_support::workspace;

fn python() -> PathBuf {
    corral_test_support::ci_python("the MCP Python SDK and mcp-server-time")
}

fn everything_server() -> PathBuf {
    let modules = std::env::var_os("CORRAL_TEST_NODE_MODULES")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target/ci-node/node_modules"));
    let script = modules.join("@modelcontextprotocol/server-everything/dist/index.js");
    assert!(
        script.exists(),
        "{} not found: run .ci/test, which installs @modelcontextprotocol/server-everything",
        script.display()
    );
    script
}

/// Starts server-everything over streamable HTTP on a free port.
async fn start_everything() -> (tokio::process::Child, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = tokio::process::Command::new("node")
        .arg(everything_server())
        .arg("streamableHttp")
        .env("PORT", port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs");
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return (child, port);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("server-everything did not start on port {port}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_mcp_sdk_drives_every_target_kind() {
    let upstream = Upstream::start().await;
    let (_everything, port) = start_everything().await;
    let mut config = standard_config(&upstream);
    let targets = config["targets"].as_array_mut().unwrap();
    targets.push(json!({"name": "time", "targetConfiguration": {"mcp": {"mcpServer": {
        "command": python().display().to_string(), "args": ["-m", "mcp_server_time", "--local-timezone", "UTC"]}}}}));
    targets.push(
        json!({"name": "everything", "targetConfiguration": {"mcp": {"mcpServer": {
        "endpoint": format!("http://127.0.0.1:{port}/mcp")}}}}),
    );
    config["limits"]["callTimeoutMs"] = json!(10_000);
    let gateway = common::gateway(config).await;
    assert!(
        gateway.catalog().get("time___get_current_time").is_some(),
        "stdio upstream listed"
    );
    assert!(
        gateway.catalog().get("everything___echo").is_some(),
        "HTTP upstream listed"
    );
    let app = router(gateway, HttpOptions::default()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    for (mode, protocol) in [("legacy", "2025-11-25"), ("auto", "2026-07-28")] {
        let output = tokio::process::Command::new(python())
            .arg(workspace().join("gateway/tests/python/mcp_client.py"))
            .arg(&url)
            .arg(mode)
            .output()
            .await
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "python client ({mode}) failed:\n{stderr}"
        );
        let report: Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(report["protocol"], protocol, "{mode}");
        assert!(report["pages"].as_u64().unwrap() > 2, "paginated: {report}");
        let tools: Vec<&str> = report["tools"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(tools[0], "x_amz_bedrock_agentcore_search");
        for name in [
            "pets___listPets",
            "orders___get_order",
            "time___get_current_time",
            "everything___echo",
            "json___query",
        ] {
            assert!(tools.contains(&name), "{name} missing from {tools:?}");
        }
        assert_eq!(report["openapi"]["isError"], false);
        assert_eq!(report["openapi"]["structured"]["name"], "Rex");
        assert_eq!(report["lambda"]["isError"], false);
        assert!(
            report["lambda"]["text"][0]
                .as_str()
                .unwrap()
                .contains("shipped")
        );
        assert_eq!(report["lambda_error"]["isError"], true);
        assert_eq!(report["time"]["isError"], false, "{}", report["time"]);
        assert!(
            report["time"]["text"][0].as_str().unwrap().contains("UTC"),
            "{}",
            report["time"]
        );
        assert_eq!(report["everything"]["isError"], false);
        assert!(
            report["everything"]["text"][0]
                .as_str()
                .unwrap()
                .contains("hello from python")
        );
        assert_eq!(report["wasm"]["structured"]["value"], 42);
        assert_eq!(
            report["search"]["structured"]["tools"][0]["name"],
            "time___get_current_time"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stdio_server_slower_to_start_than_a_call_may_take_connects() {
    // mcp-server-time behind a 2.5 s start, under a 2 s call limit: the
    // connection has its own timeout.
    let python = python().display().to_string();
    let gateway = common::gateway(json!({
        "limits": {"callTimeoutMs": 2000},
        "targets": [{"name": "time", "targetConfiguration": {"mcp": {"mcpServer": {
            "command": "sh",
            "args": ["-c", format!("sleep 2.5; exec '{python}' -m mcp_server_time --local-timezone UTC")]}}}}],
    }))
    .await;
    assert!(
        gateway.catalog().get("time___get_current_time").is_some(),
        "the slow stdio server was listed: {:?}",
        gateway.unavailable_targets()
    );
    let now = gateway
        .call_tool(
            &corral_gateway::Caller::new(corral_policy::Principal::IamEntity { id: "t".into() }),
            "time___get_current_time",
            json!({"timezone": "UTC"}),
        )
        .await
        .unwrap();
    assert!(now.text_content().contains("UTC"), "{}", now.text_content());
}
