//! The `corral` binary end to end: the demo, `run`, and its error messages.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

#[path = "cli/durable.rs"]
mod durable;
#[path = "cli/replicas.rs"]
mod replicas;

/// The span store of these tests (not the user's).
fn trace_dir() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("corral-cli-tests-{}", std::process::id()))
}

fn corral(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_corral"))
        .args(args)
        .env("NO_COLOR", "1")
        .env("CORRAL_TRACE_DIR", trace_dir())
        .output()
        .expect("corral runs")
}

#[test]
fn serve_compiles_the_builtin_tools_once_into_its_cache() {
    let cache = tempfile::tempdir().unwrap();
    // The cache must be private to this user.
    std::fs::remove_dir(cache.path()).unwrap();
    let serve = || {
        let data = tempfile::tempdir().unwrap();
        let port = corral_test_support::free_port();
        let served = corral_test_support::spawn_server(
            Command::new(env!("CARGO_BIN_EXE_corral"))
                .args(["serve", "--builtin-tools", "--listen"])
                .arg(format!("127.0.0.1:{port}"))
                .arg("--data-dir")
                .arg(data.path())
                .arg("--cache-dir")
                .arg(cache.path())
                .env("CORRAL_TRACE_DIR", trace_dir())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null()),
            port,
        );
        drop(served);
    };
    let cached = || {
        let mut entries: Vec<String> = std::fs::read_dir(cache.path())
            .map(|dir| {
                dir.filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        entries.sort();
        entries
    };
    serve();
    let first = cached();
    assert!(
        !first.is_empty() && first.iter().all(|name| name.ends_with(".cwasm")),
        "{first:?}"
    );
    // A second start loads them: nothing new is compiled.
    serve();
    assert_eq!(cached(), first);
}

#[test]
fn demo_runs_end_to_end() {
    let output = corral(&["demo"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("(17 * 23) + 4 = 395."), "{stderr}");
    assert!(stderr.contains("395 / 5 = 79."), "{stderr}");
    assert!(stderr.contains("tool calculator___evaluate("), "{stderr}");
    assert!(stderr.contains("demo complete"), "{stderr}");
}

/// `corral run` of the example assistant with its script and the built-in
/// tools, one invocation per input, in `session`.
fn run_assistant(session: &str, inputs: &[&str]) -> std::process::Output {
    let mut args = vec![
        "run",
        corral_examples::ASSISTANT_AGENT_PATH,
        "--session",
        session,
        "--script",
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../examples/scripts/assistant.toml"
        ),
        "--builtin-tools",
    ];
    for input in inputs {
        args.extend(["--input", input]);
    }
    corral(&args)
}

#[test]
fn run_invokes_an_agent_component_in_one_session() {
    let output = run_assistant(
        "cli-session",
        &[
            r#"{"prompt": "What is 6 * 7?"}"#,
            r#"{"prompt": "multiply that by 2"}"#,
        ],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["response"], "6 * 7 = 42.");
    assert_eq!(lines[1]["response"], "42 * 2 = 84.");
}

#[test]
fn run_explains_bad_input() {
    let missing = corral(&["run", "/nonexistent/agent.wasm", "--input", "{}"]);
    assert!(!missing.status.success());
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(
        stderr.contains("error: reading /nonexistent/agent.wasm"),
        "{stderr}"
    );

    let dir = std::env::temp_dir().join(format!("corral-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bogus = dir.join("bogus.wasm");
    std::fs::write(&bogus, b"\0asm\x01\0\0\0").unwrap();
    let core = corral(&["run", bogus.to_str().unwrap(), "--input", "{}"]);
    assert!(!core.status.success());
    let stderr = String::from_utf8_lossy(&core.stderr);
    assert!(
        stderr.contains("core WebAssembly module, not a component"),
        "{stderr}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// Starts `corral gateway` with `args` on a free port; returns the child
/// and its MCP URL.
fn spawn_gateway(args: &[&str]) -> (std::process::Child, String) {
    use std::io::{BufRead as _, BufReader};
    let mut child = Command::new(env!("CARGO_BIN_EXE_corral"))
        .env("CORRAL_TRACE_DIR", trace_dir())
        .arg("gateway")
        .args(args)
        .args(["--listen", "127.0.0.1:0"])
        .env("NO_COLOR", "1")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut url = None;
    for line in BufReader::new(stderr).lines().take(40) {
        let line = line.unwrap();
        if let Some(found) = line.split_whitespace().find(|w| w.starts_with("http://")) {
            url = Some(found.to_string());
            break;
        }
    }
    (child, url.expect("prints its URL"))
}

/// One JSON-RPC request to an MCP URL with curl (a client outside Rust).
fn mcp_request(url: &str, body: &serde_json::Value) -> serde_json::Value {
    let output = Command::new("curl")
        .args([
            "-s",
            "-X",
            "POST",
            url,
            "-H",
            "content-type: application/json",
            "-H",
            "accept: application/json, text/event-stream",
            "-H",
            "mcp-protocol-version: 2025-11-25",
            "-d",
            &body.to_string(),
        ])
        .output()
        .unwrap();
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn gateway_command_serves_mcp() {
    let (mut child, url) = spawn_gateway(&["--builtin-tools"]);
    let reply = mcp_request(
        &url,
        &serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
    );
    // SIGTERM (what container runtimes send) drains and exits cleanly.
    let term = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(term.success());
    let exited = child.wait().unwrap();
    assert!(exited.success(), "after SIGTERM: {exited:?}");
    let names: Vec<&str> = reply["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(names, vec!["calculator___evaluate", "json___query"]);
}

#[test]
fn gateway_command_searches_by_meaning_with_the_local_model() {
    let dir = tempfile::tempdir().unwrap();
    let openapi = "openapi: 3.0.0\ninfo: {title: w, version: '1'}\nservers: [{url: 'http://127.0.0.1:9'}]\npaths:\n  /forecast:\n    get: {operationId: getForecast, summary: Weather forecast for a city for the next days}\n  /alerts:\n    get: {operationId: listAlerts, summary: Severe weather warnings issued for a region}\n";
    let config = serde_json::json!({
        "protocolConfiguration": {"mcp": {"searchType": "SEMANTIC"}},
        "targets": [{"name": "weather", "targetConfiguration": {"mcp": {"openApiSchema": {"inlinePayload": openapi}}}}]
    });
    let path = dir.path().join("gateway.json");
    std::fs::write(&path, config.to_string()).unwrap();
    let model = corral_test_support::embedding_model();
    let (mut child, url) = spawn_gateway(&[
        "--config",
        path.to_str().unwrap(),
        "--builtin-tools",
        "--embedding-model",
        model.to_str().unwrap(),
    ]);
    let search = |query: &str| {
        let reply = mcp_request(
            &url,
            &serde_json::json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                "params": {"name": "x_amz_bedrock_agentcore_search", "arguments": {"query": query}}}),
        );
        reply["result"]["structuredContent"]["tools"][0]["name"]
            .as_str()
            .map(str::to_string)
    };
    let umbrella = search("should I pack an umbrella for Oslo tomorrow");
    let arithmetic = search("what is 17 times 23");
    child.kill().unwrap();
    let _ = child.wait();
    assert_eq!(umbrella.as_deref(), Some("weather___getForecast"));
    assert_eq!(arithmetic.as_deref(), Some("calculator___evaluate"));

    // A directory without a model stops the command with the file it missed.
    let output = Command::new(env!("CARGO_BIN_EXE_corral"))
        .env("CORRAL_TRACE_DIR", trace_dir())
        .args(["gateway", "--builtin-tools", "--list", "--embedding-model"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("config.json"), "{stderr}");
}

#[test]
fn gateway_lists_the_example_catalogue() {
    let config = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/gateway/gateway.json"
    );
    let output = Command::new(env!("CARGO_BIN_EXE_corral"))
        .env("CORRAL_TRACE_DIR", trace_dir())
        .args(["gateway", "--config", config, "--list"])
        .env("NO_COLOR", "1")
        .env("CORRAL_GATEWAY_API_KEY", "dev-key")
        .env("WEATHER_API_KEY", "weather-key")
        .output()
        .expect("corral runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let names: Vec<&str> = stdout
        .lines()
        .filter_map(|line| line.split('\t').next())
        .collect();
    assert_eq!(
        names,
        [
            "calculator___evaluate",
            "json___query",
            "weather___getForecast",
            "orders___get_order"
        ]
    );
    assert!(
        stdout.contains("Forecast for a city for the next days"),
        "{stdout}"
    );

    let missing_secret = Command::new(env!("CARGO_BIN_EXE_corral"))
        .env("CORRAL_TRACE_DIR", trace_dir())
        .args(["gateway", "--config", config, "--list"])
        .env("NO_COLOR", "1")
        .env_remove("CORRAL_GATEWAY_API_KEY")
        .env_remove("WEATHER_API_KEY")
        .output()
        .expect("corral runs");
    assert!(!missing_secret.status.success());
    let stderr = String::from_utf8_lossy(&missing_secret.stderr);
    assert!(stderr.contains("is not set"), "{stderr}");
}

fn example(path: &str) -> String {
    format!("{}/../../examples/{path}", env!("CARGO_MANIFEST_DIR"))
}

fn corral_with_secrets(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_corral"))
        .env("CORRAL_TRACE_DIR", trace_dir())
        .args(args)
        .env("NO_COLOR", "1")
        .env("CORRAL_GATEWAY_API_KEY", "dev-key")
        .env("WEATHER_API_KEY", "weather-key")
        .output()
        .expect("corral runs")
}

#[test]
fn policy_validate_and_test_against_the_example_gateway() {
    let gateway = example("gateway/gateway.json");
    let policies = example("policies");
    let valid = corral_with_secrets(&["policy", "validate", &policies, "--gateway", &gateway]);
    let stdout = String::from_utf8_lossy(&valid.stdout);
    assert!(
        valid.status.success(),
        "{}",
        String::from_utf8_lossy(&valid.stderr)
    );
    assert!(stdout.contains("ok 4 policies"), "{stdout}");

    let allow = corral_with_secrets(&[
        "policy",
        "test",
        &policies,
        "--gateway",
        &gateway,
        "--request",
        &example("policies/requests/forecast.json"),
    ]);
    let stdout = String::from_utf8_lossy(&allow.stdout);
    assert!(stdout.starts_with("ALLOW\n"), "{stdout}");
    assert!(
        stdout.contains("determining policies: short_forecasts"),
        "{stdout}"
    );

    let deny = corral_with_secrets(&[
        "policy",
        "test",
        &policies,
        "--gateway",
        &gateway,
        "--request",
        &example("policies/requests/order-as-analyst.json"),
    ]);
    let stdout = String::from_utf8_lossy(&deny.stdout);
    assert!(stdout.starts_with("DENY\n"), "{stdout}");
    assert!(stdout.contains("no policy permits this call"), "{stdout}");
}

#[test]
fn policy_validate_names_the_line_of_a_bad_policy() {
    let dir = std::env::temp_dir().join(format!("corral-policy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("typed.cedar"),
        "permit(\n  principal,\n  action == AgentCore::Action::\"calculator___evaluate\",\n  resource\n) when {\n  context.input.expression > 3\n};",
    )
    .unwrap();
    let output = corral(&[
        "policy",
        "validate",
        dir.to_str().unwrap(),
        "--builtin-tools",
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("typed.cedar:6:"), "{stderr}");

    std::fs::write(
        dir.join("typed.cedar"),
        "permit(principal action, resource);",
    )
    .unwrap();
    let output = corral(&[
        "policy",
        "validate",
        dir.to_str().unwrap(),
        "--builtin-tools",
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("typed.cedar:1:"), "{stderr}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn trace_prints_a_session_tree_from_the_local_store() {
    let session = format!("trace-cli-{}", std::process::id());
    let output = run_assistant(&session, &[r#"{"prompt": "What is 6 * 7?"}"#]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let output = corral(&["trace", &session]);
    let tree = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(tree.contains("└─ invoke_agent assistant"), "{tree}");
    assert!(tree.contains("├─ session.start assistant"), "{tree}");
    assert!(tree.contains("step 1"), "{tree}");
    assert!(
        tree.contains("chat corral.scripted-assistant") && tree.contains("finish=tool_use"),
        "{tree}"
    );
    assert!(
        tree.contains("execute_tool calculator___evaluate"),
        "{tree}"
    );
    let listed = corral(&["trace"]);
    assert!(String::from_utf8_lossy(&listed.stdout).contains(&session));
    let missing = corral(&["trace", "no-such-session"]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no spans for session"));
}

/// A Chat Completions server on 127.0.0.1 that asks for the calculator on
/// the first turn and answers with the tool's result on the next; returns
/// its base URL and the requests it saw.
async fn chat_completions_server() -> (
    String,
    std::sync::Arc<parking_lot::Mutex<Vec<serde_json::Value>>>,
) {
    use serde_json::{Value, json};
    let seen = std::sync::Arc::new(parking_lot::Mutex::new(Vec::<Value>::new()));
    let record = seen.clone();
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
            let record = record.clone();
            async move {
                let last = body["messages"]
                    .as_array()
                    .and_then(|m| m.last())
                    .cloned()
                    .unwrap_or_default();
                record.lock().push(body);
                let message = if last["role"] == "tool" {
                    json!({"role": "assistant",
                           "content": format!("The calculator says {}.", last["content"].as_str().unwrap_or_default())})
                } else {
                    json!({"role": "assistant", "content": null, "tool_calls": [{
                        "id": "call_1", "type": "function",
                        "function": {"name": "calculator___evaluate", "arguments": "{\"expression\": \"6 * 7\"}"}}]})
                };
                let finish = if last["role"] == "tool" { "stop" } else { "tool_calls" };
                axum::Json(json!({"model": "local-llm", "choices": [{"index": 0, "finish_reason": finish, "message": message}],
                                  "usage": {"prompt_tokens": 10, "completion_tokens": 5}}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_drives_the_tool_loop_through_an_openai_compatible_model() {
    let (url, seen) = chat_completions_server().await;
    let output = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_corral"))
            .args([
                "run",
                corral_examples::ASSISTANT_AGENT_PATH,
                "--builtin-tools",
                "--model",
                "openai",
                "--base-url",
                &url,
                "--model-id",
                "local-llm",
                "--api-key-env",
                "CORRAL_TEST_OPENAI_KEY",
                "--input",
                r#"{"prompt": "What is 6 * 7?"}"#,
            ])
            .env("CORRAL_TEST_OPENAI_KEY", "sk-test")
            .env("NO_COLOR", "1")
            .env("CORRAL_TRACE_DIR", trace_dir())
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line: serde_json::Value = serde_json::from_str(stdout.lines().next().unwrap()).unwrap();
    let answer = line["response"].as_str().unwrap();
    assert!(
        answer.starts_with("The calculator says") && answer.contains("42"),
        "{answer}"
    );
    let seen = seen.lock();
    assert_eq!(seen.len(), 2, "one tool turn, one answer");
    assert_eq!(seen[0]["model"], "local-llm");
    assert!(
        seen[0]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["function"]["name"] == "calculator___evaluate"),
        "{}",
        seen[0]
    );
    let tool_message = seen[1]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["role"] == "tool")
        .unwrap();
    assert_eq!(tool_message["tool_call_id"], "call_1");
}

#[test]
fn openai_model_without_a_base_url_is_a_clear_error() {
    let output = corral(&[
        "run",
        corral_examples::ASSISTANT_AGENT_PATH,
        "--model",
        "openai",
        "--model-id",
        "x",
        "--input",
        "{}",
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--base-url"), "{stderr}");
}
