//! Isolation: each test runs a real hostile guest (`sandbox-probe`, built
//! from source) and checks the sandbox holds.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{fixture, manager, probe, probe_json, test_config};
use corral_host::{Fault, HostServices, InvokeError};
use serde_json::json;

#[tokio::test]
async fn infinite_loop_is_stopped_at_its_cpu_deadline() {
    let manager = manager(HostServices::default(), test_config());
    let started = Instant::now();
    let err = probe(&manager, "spinner", json!({"action": "spin"}))
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    assert!(
        matches!(err, InvokeError::Fault(Fault::CpuLimit(limit)) if limit == Duration::from_millis(300)),
        "{err:?}"
    );
    assert!(
        elapsed >= Duration::from_millis(250),
        "stopped too early: {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_secs(3),
        "stopped too late: {elapsed:?}"
    );
    assert_eq!(manager.live_sessions(), 0, "the faulted session ended");
    // The next invocation with that session id gets a fresh sandbox.
    let response = probe(&manager, "spinner", json!({"action": "noop"}))
        .await
        .unwrap();
    assert!(response.new_session);
}

#[tokio::test]
async fn allocating_past_the_cap_fails_that_session_only() {
    let manager = manager(HostServices::default(), test_config());
    probe_json(
        &manager,
        "bystander",
        json!({"action": "set", "key": "k", "value": "still here"}),
    )
    .await;
    // 8 MiB fits under the 32 MiB cap.
    let ok = probe_json(&manager, "hog", json!({"action": "alloc", "mib": 8})).await;
    assert_eq!(ok["held_mib"], 8);
    let err = probe(&manager, "hog", json!({"action": "alloc", "mib": 64}))
        .await
        .unwrap_err();
    assert!(
        matches!(err, InvokeError::Fault(Fault::MemoryLimit { limit, .. }) if limit == 32 << 20),
        "{err:?}"
    );
    let value = probe_json(&manager, "bystander", json!({"action": "get", "key": "k"})).await;
    assert_eq!(value["value"], "still here");
    assert_eq!(manager.live_sessions(), 1);
}

#[tokio::test]
async fn host_files_are_unreachable() {
    let manager = manager(HostServices::default(), test_config());
    for (action, path) in [
        ("read_file", "/etc/passwd"),
        ("list_dir", "/"),
        ("read_file", "Cargo.toml"),
        ("write_file", "/tmp/corral-pwned"),
    ] {
        let answer = probe_json(&manager, "files", json!({"action": action, "path": path})).await;
        assert!(
            answer.get("error").is_some(),
            "{action} {path} must fail: {answer}"
        );
    }
    assert!(!std::path::Path::new("/tmp/corral-pwned").exists());
}

#[tokio::test]
async fn environment_arguments_and_stdin_are_empty() {
    let manager = manager(HostServices::default(), test_config());
    let answer = probe_json(&manager, "env", json!({"action": "env"})).await;
    assert_eq!(answer["vars"], json!({}), "no host environment leaks in");
    assert_eq!(answer["args"], json!([]));
    let stdin = probe_json(&manager, "env", json!({"action": "stdin"})).await;
    assert_eq!(stdin["read"], 0, "stdin is closed: {stdin}");
}

#[tokio::test]
async fn configured_environment_is_all_the_guest_sees() {
    let fixture = fixture();
    let agent = std::sync::Arc::new(
        fixture
            .host
            .compile("probe-env", corral_test_guests::SANDBOX_PROBE)
            .unwrap()
            .with_settings(corral_host::AgentSettings {
                env: vec![("GREETING".into(), "hello".into())],
                ..Default::default()
            }),
    );
    let manager = manager(HostServices::default(), test_config());
    let response = manager
        .invoke(
            &agent,
            corral_host::InvocationRequest::new("s", json!({"action": "env"}).to_string()),
        )
        .await
        .unwrap();
    let answer: serde_json::Value = serde_json::from_slice(&response.payload).unwrap();
    assert_eq!(answer["vars"], json!({"GREETING": "hello"}));
}

#[tokio::test]
async fn sockets_and_name_lookup_are_denied() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let manager = manager(HostServices::default(), test_config());
    let answer = probe_json(&manager, "net", json!({"action": "connect", "addr": addr})).await;
    assert!(answer.get("error").is_some(), "connect must fail: {answer}");
    let accepted = tokio::time::timeout(Duration::from_millis(200), listener.accept()).await;
    assert!(accepted.is_err(), "nothing reached the listener");
    let answer = probe_json(
        &manager,
        "net",
        json!({"action": "resolve", "host": "localhost"}),
    )
    .await;
    assert!(
        answer.get("error").is_some(),
        "name lookup must fail: {answer}"
    );
}

#[tokio::test]
async fn concurrent_sessions_never_see_each_others_state() {
    let manager = std::sync::Arc::new(manager(HostServices::default(), test_config()));
    let mut tasks = Vec::new();
    for i in 0..8 {
        let manager = manager.clone();
        tasks.push(tokio::spawn(async move {
            let session = format!("session-{i}");
            probe_json(
                &manager,
                &session,
                json!({"action": "set", "key": "secret", "value": format!("v{i}")}),
            )
            .await;
            tokio::task::yield_now().await;
            let value = probe_json(
                &manager,
                &session,
                json!({"action": "get", "key": "secret"}),
            )
            .await;
            assert_eq!(value["value"], format!("v{i}"));
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let fresh = probe_json(
        &manager,
        "newcomer",
        json!({"action": "get", "key": "secret"}),
    )
    .await;
    assert_eq!(fresh["value"], serde_json::Value::Null);
    assert_eq!(manager.live_sessions(), 9);
}

#[tokio::test]
async fn a_trapping_session_leaves_others_running_and_serving() {
    let manager = std::sync::Arc::new(manager(HostServices::default(), test_config()));
    probe_json(
        &manager,
        "steady",
        json!({"action": "set", "key": "k", "value": "1"}),
    )
    .await;
    // A long-running neighbour is mid-invocation while another session traps.
    let spinner = {
        let manager = manager.clone();
        tokio::spawn(async move { probe(&manager, "spinner", json!({"action": "spin"})).await })
    };
    let err = probe(&manager, "crasher", json!({"action": "trap"}))
        .await
        .unwrap_err();
    match &err {
        InvokeError::Fault(Fault::Trap(message)) => {
            assert!(message.contains("unreachable"), "{message}")
        }
        other => panic!("expected a trap, got {other:?}"),
    }
    let value = probe_json(&manager, "steady", json!({"action": "get", "key": "k"})).await;
    assert_eq!(value["value"], "1");
    let spun = spinner.await.unwrap().unwrap_err();
    assert!(matches!(spun, InvokeError::Fault(Fault::CpuLimit(_))));
    let crashed_log = manager.session_log("probe", "crasher");
    assert!(crashed_log.is_none(), "the trapped session is gone");
    assert_eq!(manager.live_sessions(), 1);
}

#[tokio::test]
async fn guest_output_is_captured_and_bounded() {
    let manager = manager(HostServices::default(), test_config());
    let response = probe(
        &manager,
        "chatty",
        json!({"action": "print", "lines": 1000, "text": "x".repeat(40)}),
    )
    .await
    .unwrap();
    let stdout: Vec<_> = response
        .log
        .iter()
        .filter(|e| e.source == corral_host::LogSource::Stdout)
        .collect();
    assert!(stdout.len() > 10, "output reached the session log");
    assert!(
        stdout.len() < 200,
        "output is bounded ({} lines)",
        stdout.len()
    );
    assert!(stdout.iter().any(|e| e.message.contains("output limit")));
    // The guest kept running despite the cap.
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&response.payload).unwrap()["printed"],
        1000
    );
}
