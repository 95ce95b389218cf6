//! Session lifecycle: state between invocations, idle timeout, maximum
//! lifetime, explicit stop, capacity, and what a session's host interfaces do.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{fixture, manager, probe, probe_json, test_config};
use corral_gateway::{CallError, Gateway, GatewayConfig, GatewayOptions, LocalTools};
use corral_host::{
    AgentErrorKind, HostServices, InvocationRequest, InvokeError, LogSource, SessionConfig,
    SessionStatus,
};
use serde_json::json;

#[tokio::test]
async fn state_survives_between_invocations_of_a_session() {
    let manager = manager(HostServices::default(), test_config());
    let first = probe(
        &manager,
        "s1",
        json!({"action": "set", "key": "name", "value": "Ada"}),
    )
    .await
    .unwrap();
    assert!(first.new_session);
    let second = probe(&manager, "s1", json!({"action": "get", "key": "name"}))
        .await
        .unwrap();
    assert!(!second.new_session);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&second.payload).unwrap()["value"],
        "Ada"
    );
    let info = manager.list();
    assert_eq!(info.len(), 1);
    assert_eq!(info[0].invocations, 2);
    assert_eq!(info[0].status, SessionStatus::Idle);
    assert!(info[0].memory_bytes > 0);
}

#[tokio::test]
async fn idle_sessions_end_after_the_idle_timeout() {
    let config = SessionConfig {
        idle_timeout: Duration::from_millis(150),
        ..test_config()
    };
    let manager = manager(HostServices::default(), config);
    probe_json(
        &manager,
        "idle",
        json!({"action": "set", "key": "k", "value": "v"}),
    )
    .await;
    assert_eq!(manager.live_sessions(), 1);
    // The background reaper runs every ~40 ms; wait for it (bounded).
    for _ in 0..50 {
        if manager.live_sessions() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(manager.live_sessions(), 0, "idle session was reaped");
    let value = probe_json(&manager, "idle", json!({"action": "get", "key": "k"})).await;
    assert_eq!(
        value["value"],
        serde_json::Value::Null,
        "a fresh sandbox has no old state"
    );
}

#[tokio::test]
async fn active_sessions_are_not_idle() {
    let config = SessionConfig {
        idle_timeout: Duration::from_millis(100),
        ..test_config()
    };
    let manager = manager(HostServices::default(), config);
    for _ in 0..6 {
        probe_json(
            &manager,
            "busy",
            json!({"action": "set", "key": "k", "value": "v"}),
        )
        .await;
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    let value = probe_json(&manager, "busy", json!({"action": "get", "key": "k"})).await;
    assert_eq!(value["value"], "v", "kept alive by activity");
}

#[tokio::test]
async fn sessions_end_at_their_maximum_lifetime() {
    let config = SessionConfig {
        max_lifetime: Duration::from_millis(200),
        ..test_config()
    };
    let manager = manager(HostServices::default(), config);
    probe_json(
        &manager,
        "old",
        json!({"action": "set", "key": "k", "value": "v"}),
    )
    .await;
    // Keep it busy-ish so only the lifetime can end it.
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(25)).await;
        if manager.live_sessions() == 0 {
            break;
        }
        let _ = probe(&manager, "old", json!({"action": "noop"})).await;
    }
    let fresh = probe(&manager, "old", json!({"action": "get", "key": "k"}))
        .await
        .unwrap();
    let value: serde_json::Value = serde_json::from_slice(&fresh.payload).unwrap();
    assert_eq!(
        value["value"],
        serde_json::Value::Null,
        "state did not outlive the lifetime"
    );
}

#[tokio::test]
async fn explicit_stop_frees_the_sandbox_even_mid_invocation() {
    let config = SessionConfig {
        limits: corral_host::SandboxLimits {
            cpu_time: Duration::from_secs(30),
            ..test_config().limits
        },
        ..test_config()
    };
    let manager = Arc::new(manager(HostServices::default(), config));
    probe_json(&manager, "idle-one", json!({"action": "noop"})).await;
    assert!(manager.stop("probe", "idle-one"));
    assert!(!manager.stop("probe", "idle-one"), "already stopped");
    assert_eq!(manager.live_sessions(), 0);

    let spinning = {
        let manager = manager.clone();
        tokio::spawn(async move { probe(&manager, "runaway", json!({"action": "spin"})).await })
    };
    for _ in 0..100 {
        if manager
            .list()
            .iter()
            .any(|s| s.status == SessionStatus::Active)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(manager.stop("probe", "runaway"));
    let result = tokio::time::timeout(Duration::from_secs(2), spinning)
        .await
        .expect("stop is prompt")
        .unwrap();
    assert!(matches!(result, Err(InvokeError::Stopped)), "{result:?}");
    assert_eq!(manager.live_sessions(), 0);
}

#[tokio::test]
async fn a_full_host_reclaims_the_oldest_idle_session() {
    let config = SessionConfig {
        max_sessions: 2,
        ..test_config()
    };
    let manager = manager(HostServices::default(), config);
    probe_json(
        &manager,
        "a",
        json!({"action": "set", "key": "k", "value": "a"}),
    )
    .await;
    probe_json(
        &manager,
        "b",
        json!({"action": "set", "key": "k", "value": "b"}),
    )
    .await;
    // "a" has been idle longest, so "c" takes its room.
    probe_json(&manager, "c", json!({"action": "noop"})).await;
    assert_eq!(manager.live_sessions(), 2);
    let b = probe_json(&manager, "b", json!({"action": "get", "key": "k"})).await;
    assert_eq!(b["value"], "b", "the younger idle session kept its state");
    let a = probe(&manager, "a", json!({"action": "get", "key": "k"}))
        .await
        .unwrap();
    assert!(a.new_session, "the reclaimed session starts afresh");
}

#[tokio::test]
async fn a_full_host_with_only_busy_sessions_refuses_naming_the_quota() {
    let config = SessionConfig {
        max_sessions: 1,
        ..test_config()
    };
    let manager = std::sync::Arc::new(manager(HostServices::default(), config));
    let busy = {
        let manager = manager.clone();
        tokio::spawn(async move {
            probe(&manager, "busy", json!({"action": "sleep", "ms": 1500})).await
        })
    };
    for _ in 0..200 {
        if manager
            .list()
            .iter()
            .any(|s| s.status == corral_host::SessionStatus::Active)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let err = probe(&manager, "other", json!({"action": "noop"}))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            InvokeError::QuotaExceeded {
                quota: corral_host::SessionQuota::LiveSessions,
                limit: 1,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("maxSessions"), "{err}");
    busy.await.unwrap().unwrap();
    // Once idle, the busy session is reclaimable.
    probe_json(&manager, "other", json!({"action": "noop"})).await;
}

#[tokio::test]
async fn per_caller_and_per_agent_quotas_count_separately() {
    let config = SessionConfig {
        max_sessions_per_caller: Some(2),
        max_sessions_per_agent: Some(3),
        guest_memory_budget: Some(100 << 20),
        ..test_config()
    };
    let manager = manager(HostServices::default(), config);
    let call = |session: &'static str, caller: &'static str| {
        let request =
            InvocationRequest::new(session, json!({"action": "noop"}).to_string()).caller(caller);
        manager.invoke(&fixture().probe, request)
    };
    call("m1", "mallory").await.unwrap();
    call("m2", "mallory").await.unwrap();
    // Mallory's third session reclaims her own oldest idle one, not Alice's.
    call("a1", "alice").await.unwrap();
    call("m3", "mallory").await.unwrap();
    let live: Vec<String> = manager.list().into_iter().map(|s| s.session_id).collect();
    assert_eq!(live, ["a1", "m2", "m3"], "{live:?}");
    // The agent is at its quota of 3 (and three 32 MiB caps reserve 96 MiB
    // of the 100 MiB budget): Alice's second session reclaims the agent's
    // session idle longest, whoever started it: m2 (last used before a1).
    call("a2", "alice").await.unwrap();
    let live: Vec<String> = manager.list().into_iter().map(|s| s.session_id).collect();
    assert_eq!(live, ["a1", "a2", "m3"], "{live:?}");
    assert_eq!(manager.reserved_memory(), 96 << 20);
}

#[tokio::test]
async fn invalid_requests_and_agent_errors_are_typed() {
    let manager = manager(HostServices::default(), test_config());
    let err = probe(&manager, "", json!({"action": "noop"}))
        .await
        .unwrap_err();
    assert!(matches!(err, InvokeError::InvalidRequest(_)));
    let err = probe(&manager, &"x".repeat(300), json!({"action": "noop"}))
        .await
        .unwrap_err();
    assert!(matches!(err, InvokeError::InvalidRequest(_)));
    let err = manager
        .invoke(&fixture().probe, InvocationRequest::new("s", "not json"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            InvokeError::Agent {
                kind: AgentErrorKind::InvalidInput,
                ..
            }
        ),
        "{err:?}"
    );
    // An agent error does not end the session.
    assert_eq!(manager.live_sessions(), 1);
}

#[tokio::test]
async fn wrong_components_are_rejected_with_clear_errors() {
    let host = &fixture().host;
    let err = host.compile("x", b"garbage").err().unwrap().to_string();
    assert!(err.contains("not a WebAssembly binary"), "{err}");
    let core = wat::parse_str("(module)").unwrap();
    let err = host.compile("x", &core).err().unwrap().to_string();
    assert!(err.contains("core WebAssembly module"), "{err}");
    let wrong_world = wat::parse_str("(component)").unwrap();
    let err = host.compile("x", &wrong_world).err().unwrap().to_string();
    assert!(err.contains("corral:agent/agent world"), "{err}");
    let needs_http = wat::parse_str(
        r#"(component (import "wasi:http/outgoing-handler@0.2.0" (instance (export "handle" (func)))))"#,
    )
    .unwrap();
    let err = host.compile("x", &needs_http).err().unwrap().to_string();
    assert!(err.contains("wasi:http/outgoing-handler"), "{err}");
}

/// In-process tools are a gateway target like any other: the same naming,
/// Cedar policy (default deny), timeouts and typed errors.
#[tokio::test]
async fn in_process_tools_are_a_gateway_target_under_policy() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let tools = LocalTools::new()
        .register("add", "adds a and b", json!({"type": "object"}), move |_, args| {
            counter.fetch_add(1, Ordering::SeqCst);
            async move { Ok(json!({"sum": args["a"].as_i64().unwrap_or(0) + args["b"].as_i64().unwrap_or(0)})) }
        })
        .register("refund", "refunds", json!({"type": "object"}), |_, _| async {
            Err(CallError::Upstream { status: Some(409), message: "refunds are closed".into(), detail: None })
        })
        .register("slow", "sleeps", json!({"type": "object"}), |_, _| async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Ok(json!(null))
        })
        .register("wipe", "deletes everything", json!({"type": "object"}), |_, _| async {
            Ok(json!("wiped"))
        });
    let gateway = Gateway::new(
        GatewayConfig::builtin_tools(&[]).unwrap(),
        GatewayOptions {
            local_targets: vec![("shop".into(), tools)],
            ..GatewayOptions::default()
        },
    )
    .await
    .unwrap();
    // Default deny: only what a policy permits runs.
    let policies = tempfile::tempdir().unwrap();
    std::fs::write(
        policies.path().join("shop.cedar"),
        r#"permit(principal, action in [AgentCore::Action::"shop___add", AgentCore::Action::"shop___refund", AgentCore::Action::"shop___slow"], resource);"#,
    )
    .unwrap();
    let engine = corral_policy::PolicyEngine::new(
        corral_policy::PolicyBundle::load_dir(policies.path()).unwrap(),
        corral_policy::EngineMode::Enforce,
        &gateway.tool_signatures(),
    )
    .unwrap();
    gateway.attach_policy_engine(Arc::new(engine));
    let config = SessionConfig {
        tool_timeout: Duration::from_millis(100),
        ..test_config()
    };
    let manager = manager(HostServices::default().with_gateway(gateway), config);
    let listed = probe_json(&manager, "t", json!({"action": "list_tools"})).await;
    assert_eq!(
        listed["tools"],
        json!(["shop___add", "shop___refund", "shop___slow"]),
        "a tool no policy permits is not listed"
    );
    let sum = probe_json(
        &manager,
        "t",
        json!({"action": "tool", "name": "shop___add", "args": {"a": 2, "b": 3}}),
    )
    .await;
    assert_eq!(sum["ok"]["sum"], 5);
    let denied = probe_json(
        &manager,
        "t",
        json!({"action": "tool", "name": "shop___wipe"}),
    )
    .await;
    assert!(
        denied["kind"].as_str().unwrap().contains("Denied"),
        "{denied}"
    );
    let refused = probe_json(
        &manager,
        "t",
        json!({"action": "tool", "name": "shop___refund"}),
    )
    .await;
    assert!(
        refused["kind"].as_str().unwrap().contains("Upstream"),
        "{refused}"
    );
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains("refunds are closed")
    );
    let missing = probe_json(&manager, "t", json!({"action": "tool", "name": "nope"})).await;
    assert!(missing["kind"].as_str().unwrap().contains("NotFound"));
    let bad = probe_json(
        &manager,
        "t",
        json!({"action": "tool", "name": "shop___add", "args": [1, 2]}),
    )
    .await;
    assert!(
        bad["kind"].as_str().unwrap().contains("InvalidArguments"),
        "{bad}"
    );
    let slow = probe_json(
        &manager,
        "t",
        json!({"action": "tool", "name": "shop___slow"}),
    )
    .await;
    assert!(slow["kind"].as_str().unwrap().contains("Timeout"), "{slow}");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let log = manager.session_log("probe", "t").unwrap();
    assert!(
        log.iter()
            .any(|e| e.source == LogSource::Host && e.message.starts_with("tool shop___add("))
    );
}

#[tokio::test]
async fn model_log_stream_and_memory_interfaces_work() {
    let manager = manager(HostServices::default(), test_config());
    let model = probe_json(
        &manager,
        "m",
        json!({"action": "model", "prompt": "echo me"}),
    )
    .await;
    assert_eq!(model["text"], "echo me", "default services echo the prompt");
    let response = probe(
        &manager,
        "m",
        json!({"action": "log", "message": "guest says hi"}),
    )
    .await
    .unwrap();
    let line = response
        .log
        .iter()
        .find(|e| e.source == LogSource::Guest)
        .unwrap();
    assert_eq!(line.message, "guest says hi");
    assert_eq!(line.fields, vec![("k".to_string(), "v".to_string())]);
    let memory = probe_json(
        &manager,
        "m",
        json!({"action": "memory", "text": "remember"}),
    )
    .await;
    assert_eq!(memory["append"], "Err(MemoryError::NotConfigured)");

    // Without a stream the chunks prefix the payload ...
    let buffered = probe(
        &manager,
        "m",
        json!({"action": "stream", "chunks": ["a", "b"]}),
    )
    .await
    .unwrap();
    assert_eq!(buffered.text(), "abend");
    // ... with one they arrive as they are sent.
    let (tx, mut rx) = tokio::sync::mpsc::channel(8);
    let streamed = manager
        .invoke(
            &fixture().probe,
            InvocationRequest::new(
                "m",
                json!({"action": "stream", "chunks": ["x", "y"]}).to_string(),
            )
            .stream(tx),
        )
        .await
        .unwrap();
    assert_eq!(streamed.text(), "end");
    assert_eq!(rx.recv().await.unwrap(), b"x");
    assert_eq!(rx.recv().await.unwrap(), b"y");
    assert_eq!(response.stats.model_calls, 0);
}

#[tokio::test]
async fn without_memory_every_call_is_not_configured_and_charges_no_quota() {
    // A quota of one event a minute: were the unattached writes charged,
    // the second would be refused as over the limit.
    let mut config = test_config();
    config.limits.memory_events_per_minute = 1;
    let manager = manager(HostServices::default(), config);
    for _ in 0..3 {
        let memory = probe_json(
            &manager,
            "q",
            json!({"action": "memory", "text": "remember"}),
        )
        .await;
        assert_eq!(memory["append"], "Err(MemoryError::NotConfigured)");
    }
}

#[tokio::test]
async fn a_full_sandbox_pool_reclaims_an_idle_session_or_refuses_typed() {
    // An engine whose pool holds two sandboxes, below the session limit.
    let host = Arc::new(
        corral_host::AgentHost::new(corral_host::EngineConfig {
            max_instances: 2,
            max_memory_bytes: 32 << 20,
            ..corral_host::EngineConfig::default()
        })
        .unwrap(),
    );
    let probe = Arc::new(
        host.compile("probe", corral_test_guests::SANDBOX_PROBE)
            .unwrap(),
    );
    let manager = Arc::new(corral_host::SessionManager::new(
        host,
        HostServices::default(),
        SessionConfig {
            max_sessions: 10,
            ..test_config()
        },
    ));
    let call = |session: &'static str, payload: serde_json::Value| {
        let (manager, probe) = (manager.clone(), probe.clone());
        async move {
            manager
                .invoke(&probe, InvocationRequest::new(session, payload.to_string()))
                .await
        }
    };
    call("a", json!({"action": "noop"})).await.unwrap();
    call("b", json!({"action": "noop"})).await.unwrap();
    // The pool is full: the session idle longest ("a") gives its slot up.
    call("c", json!({"action": "noop"})).await.unwrap();
    let live: Vec<String> = manager.list().into_iter().map(|s| s.session_id).collect();
    assert_eq!(live, ["b", "c"]);
    // With both slots busy, a new session is refused with a typed error.
    let busy_b = tokio::spawn(call("b", json!({"action": "sleep", "ms": 1500})));
    let busy_c = tokio::spawn(call("c", json!({"action": "sleep", "ms": 1500})));
    for _ in 0..200 {
        if manager
            .list()
            .iter()
            .all(|s| s.status == corral_host::SessionStatus::Active)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let err = call("d", json!({"action": "noop"})).await.unwrap_err();
    assert!(matches!(err, InvokeError::PoolExhausted(_)), "{err:?}");
    assert!(err.to_string().contains("sandbox pool is full"), "{err}");
    busy_b.await.unwrap().unwrap();
    busy_c.await.unwrap().unwrap();
    call("d", json!({"action": "noop"})).await.unwrap();
}
