//! Durable sessions through the `corral` binary: a journaling `corral serve`
//! killed with SIGKILL comes back with its sessions' state, `corral replay`
//! re-runs a session offline (from the server or the data directory), and
//! a fork made with `corral replay --fork` continues on a server.

use std::path::Path;
use std::process::{Command, Stdio};

use corral_test_support::{
    ChildServer, deploy, free_port, invoke, session_id, spawn_server, workspace,
};
use serde_json::{Value, json};

/// `corral serve --journal` over `data` with the assistant script and the
/// built-in tools.
fn serve_journaled(data: &Path) -> ChildServer {
    let port = free_port();
    spawn_server(
        Command::new(env!("CARGO_BIN_EXE_corral"))
            .args(["serve", "--journal", "--builtin-tools", "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("--script")
            .arg(workspace().join("examples/scripts/assistant.toml"))
            .arg("--data-dir")
            .arg(data)
            .env("NO_COLOR", "1")
            .env("CORRAL_TRACE_DIR", super::trace_dir())
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
        port,
    )
}

/// `corral replay` with `args`; returns its exit status, stdout and stderr.
fn replay(args: &[&str]) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_corral"))
        .arg("replay")
        .args(args)
        .env("NO_COLOR", "1")
        .env("CORRAL_TRACE_DIR", super::trace_dir())
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The value of a counter for the assistant in a Prometheus text page.
fn assistant_counter(metrics: &str, name: &str) -> u64 {
    metrics
        .lines()
        .find(|l| l.starts_with(name) && l.contains("agent=\"assistant\""))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_survive_kill_9_replay_offline_and_fork() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut served = serve_journaled(&data);
    deploy(
        &served.url,
        "assistant",
        corral_examples::ASSISTANT_AGENT.to_vec(),
    )
    .await;
    deploy(
        &served.url,
        "probe",
        corral_test_guests::SANDBOX_PROBE.to_vec(),
    )
    .await;
    let chat = session_id("chat");
    let state = session_id("state");
    let (status, first) = invoke(
        &served.url,
        "assistant",
        &chat,
        &json!({"prompt": "What is (17 * 23) + 4?"}),
    )
    .await;
    assert_eq!(
        (status, &first["response"]),
        (200, &json!("(17 * 23) + 4 = 395."))
    );
    let set = json!({"action": "set", "key": "colour", "value": "teal"});
    let (status, _) = invoke(&served.url, "probe", &state, &set).await;
    assert_eq!(status, 200);

    // SIGKILL: no shutdown, no flush beyond what each response waited for.
    served.child.kill().unwrap();
    served.child.wait().unwrap();
    drop(served);

    let served = serve_journaled(&data);
    // Until their next invocation, the sessions are listed as hibernated.
    let listed: Value = reqwest::get(format!("{}/corral/sessions", served.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let states: Vec<&str> = listed["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, vec!["Hibernated", "Hibernated"], "{listed}");
    let (status, second) = invoke(
        &served.url,
        "assistant",
        &chat,
        &json!({"prompt": "Now divide that by 5"}),
    )
    .await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(second["response"], "395 / 5 = 79.");
    assert_eq!(second["turns"], 2);
    let get = json!({"action": "get", "key": "colour"});
    let (status, value) = invoke(&served.url, "probe", &state, &get).await;
    assert_eq!((status, &value["value"]), (200, &json!("teal")), "{value}");

    // The restarted server called the model and tools for the new turn only.
    let metrics = reqwest::get(format!("{}/metrics", served.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        assistant_counter(&metrics, "corral_model_calls_total"),
        2,
        "{metrics}"
    );
    assert_eq!(
        assistant_counter(&metrics, "corral_tool_calls_total"),
        1,
        "{metrics}"
    );

    // Replay from the running server: offline, identical.
    let (ok, stdout, stderr) = replay(&[&chat, "--server", &served.url, "--json"]);
    assert!(ok, "{stdout}\n{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert!(report["divergence"].is_null(), "{report}");
    assert_eq!(report["invocations"].as_array().unwrap().len(), 2);
    assert_eq!(report["recordedSteps"], 4);
    drop(served);

    // From the data directory, with a fork at step 3 (the second turn's
    // first model call) on the echoing model.
    let data_dir = data.to_str().unwrap();
    let fork = session_id("forked");
    let (ok, stdout, stderr) = replay(&[
        &chat,
        "--data-dir",
        data_dir,
        "--until",
        "3",
        "--fork",
        &fork,
    ]);
    assert!(ok, "{stdout}\n{stderr}");
    assert!(stdout.contains("forked"), "{stdout}");
    assert!(stdout.contains("live"), "{stdout}");
    // A changed agent diverges, named by invocation and step.
    let mut changed = corral_examples::ASSISTANT_AGENT.to_vec();
    let needle = b"You are a helpful assistant.";
    let at = changed
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap();
    changed[at] = b'Y' ^ 0x20;
    let changed_path = dir.path().join("changed.wasm");
    std::fs::write(&changed_path, changed).unwrap();
    let (ok, stdout, stderr) = replay(&[
        &chat,
        "--data-dir",
        data_dir,
        "--agent",
        changed_path.to_str().unwrap(),
    ]);
    assert!(!ok, "a divergence fails the command: {stdout}");
    assert!(
        stdout.contains("DIVERGED") && stdout.contains("invocation 1") && stdout.contains("step 1"),
        "{stdout}\n{stderr}"
    );
    assert!(stdout.contains("$.request.system[0]"), "{stdout}");

    // The fork is a session of its own: a server on the data directory
    // resumes it where the fork left it.
    let served = serve_journaled(&data);
    let (status, answer) = invoke(
        &served.url,
        "assistant",
        &fork,
        &json!({"prompt": "What is 2 + 2?"}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["turns"], 3, "{answer}");
}
