//! The `corral` binary end to end: the demo, `run`, and its error messages.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

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

#[test]
fn gateway_command_serves_mcp() {
    use std::io::{BufRead as _, BufReader};
    let mut child = Command::new(env!("CARGO_BIN_EXE_corral"))
        .env("CORRAL_TRACE_DIR", trace_dir())
        .args(["gateway", "--builtin-tools", "--listen", "127.0.0.1:0"])
        .env("NO_COLOR", "1")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut url = None;
    for line in BufReader::new(stderr).lines().take(20) {
        let line = line.unwrap();
        if let Some(found) = line.split_whitespace().find(|w| w.starts_with("http://")) {
            url = Some(found.to_string());
            break;
        }
    }
    let url = url.expect("prints its URL");
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
    let output = Command::new("curl")
        .args([
            "-s",
            "-X",
            "POST",
            &url,
            "-H",
            "content-type: application/json",
            "-H",
            "accept: application/json, text/event-stream",
            "-H",
            "mcp-protocol-version: 2025-11-25",
            "-d",
            body,
        ])
        .output()
        .unwrap();
    child.kill().unwrap();
    let _ = child.wait();
    let reply: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let names: Vec<&str> = reply["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(names, vec!["calculator___evaluate", "json___query"]);
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
