//! Durable sessions: a journaled session resumes in a new manager (as after
//! a restart), replays offline bit for bit, reports where a changed agent
//! diverges, forks at a step, hibernates, and fails alone on a bad journal.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use corral_host::{
    AgentHost, DivergenceKind, EngineConfig, HostServices, InvocationRequest, InvokeError,
    ReplayOptions, ResumeFailure, SessionConfig, SessionReplayer, SessionStatus,
};
use corral_journal::{Entry, JournalConfig, JournalStore, Segment};
use corral_model::{ConverseRequest, ConverseResponse, ModelError, ModelProvider, ScriptedModel};
use corral_storage::{ScanStart, Storage, WriteBatch};
use serde_json::{Value, json};

use super::{ask, assistant_services};
use crate::common::{fixture, manager, probe_json, test_config};

/// A model that counts the calls it answers.
struct CountingModel {
    inner: Arc<dyn ModelProvider>,
    calls: Arc<AtomicU64>,
}

#[async_trait::async_trait]
impl ModelProvider for CountingModel {
    fn provider_name(&self) -> &'static str {
        self.inner.provider_name()
    }

    fn default_model_id(&self) -> &str {
        self.inner.default_model_id()
    }

    async fn converse(&self, request: ConverseRequest) -> Result<ConverseResponse, ModelError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.converse(request).await
    }
}

fn journal_store(storage: Arc<dyn Storage>, config: JournalConfig) -> JournalStore {
    JournalStore::new(storage, config)
}

fn temporary_storage() -> Arc<dyn Storage> {
    Arc::new(corral_storage::SledStorage::temporary().unwrap())
}

fn journaled(journal: &JournalStore) -> SessionConfig {
    SessionConfig {
        journal: Some(journal.clone()),
        ..test_config()
    }
}

/// The assistant's services with a model that counts its calls.
async fn counted_assistant_services() -> (HostServices, Arc<AtomicU64>) {
    let calls = Arc::new(AtomicU64::new(0));
    let mut services = assistant_services().await;
    services.model = Arc::new(CountingModel {
        inner: services.model.clone(),
        calls: calls.clone(),
    });
    (services, calls)
}

fn last_segment(journal: &JournalStore, session: &str) -> Segment {
    journal.last_segment(session).unwrap().unwrap()
}

#[tokio::test]
async fn a_session_resumes_from_its_journal_in_a_new_manager() {
    let journal = journal_store(temporary_storage(), JournalConfig::default());
    let first = manager(assistant_services().await, journaled(&journal));
    let (answer, _) = ask(&first, "resumed", "What is (17 * 23) + 4?").await;
    assert_eq!(answer["response"], "(17 * 23) + 4 = 395.");
    // As after a crash: the sandbox is gone, only the journal is left.
    first.stop_all();
    drop(first);

    let (services, model_calls) = counted_assistant_services().await;
    let second = manager(services, journaled(&journal));
    // Before its next invocation it is listed, hibernated in its journal.
    let listed: Vec<(String, SessionStatus)> = second
        .list()
        .into_iter()
        .map(|s| (s.session_id, s.status))
        .collect();
    assert_eq!(
        listed,
        vec![("resumed".to_string(), SessionStatus::Hibernated)]
    );
    let (answer, response) = ask(&second, "resumed", "Now divide that by 5").await;
    assert_eq!(answer["response"], "395 / 5 = 79.");
    assert_eq!(answer["turns"], 2, "the conversation continued: {answer}");
    assert!(response.new_session, "a new sandbox, rebuilt by replay");
    // Only the new turn reached the model (ask, then answer after the tool).
    assert_eq!(model_calls.load(Ordering::SeqCst), 2);
    assert_eq!(response.stats.model_calls, 2);
    assert!(
        response.log.iter().any(|l| l
            .message
            .contains("resumed from its journal: 1 invocations replayed")),
        "{:?}",
        response.log
    );
    // One sandbox run in the journal: the resume appended, it did not restart.
    let segments = corral_journal::segments(journal.read_all("resumed").unwrap());
    assert_eq!(segments.len(), 1);
    assert_eq!(segments[0].invocations.len(), 2);

    // A stopped session does not resume: its next invocation starts afresh.
    assert!(second.stop("assistant", "resumed"));
    let (answer, _) = ask(&second, "resumed", "Now divide that by 5").await;
    assert_eq!(answer["turns"], 1, "{answer}");
}

/// Records a probe session of six invocations: tool calls, memory writes,
/// clock and random reads, sandbox state.
async fn record_probe_session(journal: &JournalStore, session: &str) -> Vec<Value> {
    let manager = manager(assistant_services().await, journaled(journal));
    let steps = [
        json!({"action": "entropy"}),
        json!({"action": "tool", "name": "calculator___evaluate", "args": {"expression": "6 * 7"}}),
        json!({"action": "set", "key": "k", "value": "v"}),
        json!({"action": "memory", "text": "remember me"}),
        json!({"action": "model", "prompt": "hello"}),
        json!({"action": "entropy"}),
        json!({"action": "get", "key": "k"}),
    ];
    let mut answers = Vec::new();
    for step in steps {
        answers.push(probe_json(&manager, session, step).await);
    }
    answers
}

#[tokio::test]
async fn a_recorded_session_replays_offline_to_identical_responses() {
    let journal = journal_store(temporary_storage(), JournalConfig::default());
    let answers = record_probe_session(&journal, "recorded").await;
    assert_eq!(answers[1]["ok"]["value"], 42, "{}", answers[1]);
    assert_eq!(answers[6]["value"], "v");
    let segment = last_segment(&journal, "recorded");
    let interfaces: Vec<&str> = segment
        .startup_calls
        .iter()
        .chain(segment.invocations.iter().flat_map(|i| &i.calls))
        .map(|c| c.call.interface.as_str())
        .collect();
    for expected in [
        "wasi:clocks/wall-clock",
        "wasi:clocks/monotonic-clock",
        "tools",
        "memory",
        "model",
    ] {
        assert!(interfaces.contains(&expected), "{expected}: {interfaces:?}");
    }
    assert!(
        interfaces.iter().any(|i| i.starts_with("wasi:random/")),
        "{interfaces:?}"
    );

    // Offline: a model that fails every call, no tools, no memory.
    let offline = HostServices::new(Arc::new(
        ScriptedModel::from_toml("model_id = \"offline\"").unwrap(),
    ));
    let replayer = SessionReplayer::new(fixture().host.clone(), offline, test_config());
    let report = replayer
        .replay(
            &fixture().probe,
            "recorded",
            segment.clone(),
            &ReplayOptions::default(),
        )
        .await
        .unwrap();
    assert!(report.identical(), "{:?}", report.divergence);
    assert_eq!(report.invocations.len(), 7);
    for (replayed, answer) in report.invocations.iter().zip(&answers) {
        let replayed: Value = serde_json::from_str(&replayed.response).unwrap();
        assert_eq!(&replayed, answer, "the same clock, random and tool answers");
    }
}

#[tokio::test]
async fn a_changed_agent_replays_to_a_divergence_naming_the_step() {
    let journal = journal_store(temporary_storage(), JournalConfig::default());
    let manager = manager(assistant_services().await, journaled(&journal));
    ask(&manager, "diverging", "What is (17 * 23) + 4?").await;
    ask(&manager, "diverging", "Now divide that by 5").await;
    let segment = last_segment(&journal, "diverging");

    // The same assistant with one character of its system prompt changed.
    let original = corral_examples::ASSISTANT_AGENT;
    let needle = b"You are a helpful assistant.";
    let at = original
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("the prompt is in the component");
    let mut changed = original.to_vec();
    changed[at + needle.len() - 2] = b'T';
    let changed = fixture().host.compile("assistant", &changed).unwrap();

    let replayer = SessionReplayer::new(
        fixture().host.clone(),
        HostServices::default(),
        test_config(),
    );
    let report = replayer
        .replay(
            &changed,
            "diverging",
            segment.clone(),
            &ReplayOptions::default(),
        )
        .await
        .unwrap();
    let divergence = report.divergence.expect("a divergence");
    assert_eq!(divergence.kind, DivergenceKind::DifferentCall);
    assert_eq!((divergence.invocation, divergence.step), (1, 1));
    let first_converse = segment.invocations[0]
        .calls
        .iter()
        .find(|c| c.call.function == "converse")
        .unwrap();
    assert_eq!(divergence.offset, Some(first_converse.offset));
    assert!(
        divergence.difference.contains("assistanT"),
        "{}",
        divergence.difference
    );
    let text = divergence.to_string();
    assert!(
        text.contains("invocation 1") && text.contains("step 1"),
        "{text}"
    );

    // The unchanged component replays cleanly.
    let report = replayer
        .replay(
            &fixture().assistant,
            "diverging",
            segment.clone(),
            &ReplayOptions::default(),
        )
        .await
        .unwrap();
    assert!(report.identical(), "{:?}", report.divergence);
}

#[tokio::test]
async fn a_fork_continues_live_from_a_step_and_leaves_its_parent_alone() {
    let journal = journal_store(temporary_storage(), JournalConfig::default());
    let manager_a = manager(assistant_services().await, journaled(&journal));
    ask(&manager_a, "parent", "What is (17 * 23) + 4?").await;
    ask(&manager_a, "parent", "Now divide that by 5").await;
    let parent_before = journal.read_all("parent").unwrap();
    let segment = last_segment(&journal, "parent");

    // Steps 1-2 are the first turn; step 3 (the second turn's first model
    // call) runs live on a model that answers differently.
    let other = ScriptedModel::from_toml(
        r#"
        model_id = "reluctant"
        [[rules]]
        name = "refuse"
        text = "I would rather not divide."
        "#,
    )
    .unwrap();
    let mut services = assistant_services().await;
    let model_calls = Arc::new(AtomicU64::new(0));
    services.model = Arc::new(CountingModel {
        inner: Arc::new(other),
        calls: model_calls.clone(),
    });
    let replayer = SessionReplayer::new(fixture().host.clone(), services, journaled(&journal));
    let options = ReplayOptions {
        until_step: Some(3),
        fork: Some("child".into()),
    };
    let report = replayer
        .replay(&fixture().assistant, "parent", segment.clone(), &options)
        .await
        .unwrap();
    assert!(report.identical(), "{:?}", report.divergence);
    assert_eq!(model_calls.load(Ordering::SeqCst), 1, "only step 3 is live");
    assert!(!report.invocations[0].live);
    assert!(report.invocations[1].live);
    let second: Value = serde_json::from_str(&report.invocations[1].response).unwrap();
    assert_eq!(second["response"], "I would rather not divide.");
    let fork = report.fork.unwrap();
    assert_eq!(fork.step, 3);

    // The parent is untouched; the child is a session of its own, linked.
    assert_eq!(journal.read_all("parent").unwrap(), parent_before);
    let child = last_segment(&journal, "child");
    let parent_link = child.start.parent.clone().unwrap();
    assert_eq!(parent_link.session, "parent");
    assert_eq!(parent_link.offset, fork.parent_offset);
    assert_eq!(child.invocations.len(), 2);

    // And it continues: a manager resumes it from its own journal.
    let manager_b = manager(assistant_services().await, journaled(&journal));
    let (answer, response) = ask(&manager_b, "child", "What is 2 + 2?").await;
    assert!(response.new_session);
    assert_eq!(answer["turns"], 3, "{answer}");

    // A fork cannot reuse a session id, nor name a step that is not there.
    let again = replayer
        .replay(&fixture().assistant, "parent", segment.clone(), &options)
        .await;
    assert!(matches!(
        again,
        Err(corral_host::ReplayError::ForkExists(_))
    ));
    let past = ReplayOptions {
        until_step: Some(99),
        fork: None,
    };
    let past = replayer
        .replay(&fixture().assistant, "parent", segment.clone(), &past)
        .await;
    assert!(matches!(
        past,
        Err(corral_host::ReplayError::StepOutOfRange { step: 99, steps: 4 })
    ));
}

/// Resident set size of this process, in bytes.
fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib << 10
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_idle_sessions_hibernate_and_resume() {
    const SESSIONS: usize = 1_000;
    let host = Arc::new(
        AgentHost::new(EngineConfig {
            max_instances: SESSIONS as u32 + 16,
            max_memory_bytes: 16 << 20,
            ..EngineConfig::default()
        })
        .unwrap(),
    );
    let probe = Arc::new(
        host.compile("probe", corral_test_guests::SANDBOX_PROBE)
            .unwrap(),
    );
    let journal = journal_store(temporary_storage(), JournalConfig::default());
    let config = SessionConfig {
        max_sessions: SESSIONS + 16,
        hibernate_after: Some(Duration::from_millis(200)),
        journal: Some(journal.clone()),
        limits: corral_host::SandboxLimits {
            memory_bytes: 16 << 20,
            ..test_config().limits
        },
        ..test_config()
    };
    // Made outside the runtime, the manager starts no expiry task: this
    // test hibernates at a moment of its choosing, with `reap`.
    let manager = std::thread::spawn(move || {
        corral_host::SessionManager::new(host, HostServices::default(), config)
    })
    .join()
    .unwrap();
    let invoke = |session: String, payload: Value| {
        let request = InvocationRequest::new(session, payload.to_string());
        manager.invoke(&probe, request)
    };
    for i in 0..SESSIONS {
        let payload = json!({"action": "set", "key": "who", "value": format!("session {i}")});
        invoke(format!("idle-{i}"), payload).await.unwrap();
        // Each holds 1 MiB of its own, resident while its sandbox lives.
        let hoard = json!({"action": "alloc", "mib": 1});
        invoke(format!("idle-{i}"), hoard).await.unwrap();
    }
    assert_eq!(manager.live_sessions(), SESSIONS);
    let held = (SESSIONS as u64) << 20;
    let before = rss_bytes();

    tokio::time::sleep(Duration::from_millis(300)).await;
    manager.reap();
    assert_eq!(manager.live_sessions(), 0);
    assert_eq!(manager.hibernated_sessions(), SESSIONS);
    let listed = manager.list();
    assert!(listed.iter().all(|s| s.status == SessionStatus::Hibernated));
    let after = rss_bytes();
    eprintln!(
        "RSS {} MiB with {SESSIONS} idle sessions holding 1 MiB each, {} MiB hibernated",
        before >> 20,
        after >> 20
    );
    assert!(
        before.saturating_sub(after) > held / 2,
        "RSS fell from {before} to {after} bytes; the guests held {held}"
    );

    for i in 0..SESSIONS {
        let response = invoke(format!("idle-{i}"), json!({"action": "get", "key": "who"}))
            .await
            .unwrap();
        let answer: Value = serde_json::from_slice(&response.payload).unwrap();
        assert_eq!(answer["value"], format!("session {i}"));
        assert!(response.new_session, "resumed into a new sandbox");
    }
    assert_eq!(manager.hibernated_sessions(), 0);
    assert_eq!(manager.live_sessions(), SESSIONS);
}

#[tokio::test]
async fn a_corrupt_journal_fails_its_session_alone() {
    let storage = temporary_storage();
    let journal = journal_store(storage.clone(), JournalConfig::default());
    let first = manager(assistant_services().await, journaled(&journal));
    ask(&first, "damaged", "What is (17 * 23) + 4?").await;
    ask(&first, "healthy", "What is (17 * 23) + 4?").await;
    first.stop_all();

    // Truncate the entry of the damaged session's first tool call.
    let segment = last_segment(&journal, "damaged");
    let tool_call = segment.invocations[0]
        .calls
        .iter()
        .find(|c| c.call.function == "call-tool")
        .unwrap();
    let mut target = None;
    storage
        .scan(b"", ScanStart::Beginning, false, &mut |key, value| {
            let text = String::from_utf8_lossy(value);
            let key_text = String::from_utf8_lossy(key);
            if key_text.contains("damaged") && text.contains("call-tool") {
                target = Some(key.to_vec());
                return std::ops::ControlFlow::Break(());
            }
            std::ops::ControlFlow::Continue(())
        })
        .unwrap();
    let mut batch = WriteBatch::default();
    batch.put(target.unwrap(), b"{\"kind\":\"hostCall\",\"interf".to_vec());
    storage.commit(batch).unwrap();

    let second = manager(assistant_services().await, journaled(&journal));
    let request = InvocationRequest::new(
        "damaged",
        json!({"prompt": "Now divide that by 5"}).to_string(),
    );
    let error = second
        .invoke(&fixture().assistant, request)
        .await
        .unwrap_err();
    let InvokeError::Resume { session, cause } = &error else {
        panic!("{error:?}");
    };
    assert_eq!(session, "damaged");
    let ResumeFailure::Journal(corral_journal::JournalError::Corrupt { offset, .. }) = cause else {
        panic!("{cause:?}");
    };
    assert_eq!(*offset, tool_call.offset);
    let text = format!("{error}: {cause}");
    assert!(
        text.contains("damaged") && text.contains(&format!("offset {offset}")),
        "{text}"
    );

    // The other session resumes.
    let (answer, _) = ask(&second, "healthy", "Now divide that by 5").await;
    assert_eq!(answer["response"], "395 / 5 = 79.");
}

#[tokio::test]
async fn a_full_journal_refuses_the_invocation_and_keeps_what_it_has() {
    let storage = temporary_storage();
    let small = JournalConfig {
        max_bytes_per_session: 12 << 10,
        ..JournalConfig::default()
    };
    let journal = journal_store(storage, small);
    let manager = manager(assistant_services().await, journaled(&journal));
    ask(&manager, "capped", "What is (17 * 23) + 4?").await;
    let kept = journal.read_all("capped").unwrap();
    let mut refused = None;
    for _ in 0..8 {
        let request = InvocationRequest::new(
            "capped",
            json!({"prompt": "What is (17 * 23) + 4?"}).to_string(),
        );
        if let Err(error) = manager.invoke(&fixture().assistant, request).await {
            refused = Some(error);
            break;
        }
    }
    let error = refused.expect("the cap is reached within a few turns");
    assert!(
        matches!(
            error,
            InvokeError::Journal(corral_journal::JournalError::Full { .. })
        ),
        "{error:?}"
    );
    let now = journal.read_all("capped").unwrap();
    assert_eq!(now[..kept.len()], kept[..], "nothing acknowledged was lost");
    assert!(matches!(
        now.last().map(|r| &r.entry),
        Some(Entry::Response { .. })
    ));
    // Other sessions are unaffected.
    let (answer, _) = ask(&manager, "uncapped", "What is (17 * 23) + 4?").await;
    assert_eq!(answer["response"], "(17 * 23) + 4 = 395.");
}

#[tokio::test]
async fn sessions_idle_past_their_timeout_across_a_restart_end_instead_of_resuming() {
    let journal = journal_store(temporary_storage(), JournalConfig::default());
    let first = manager(assistant_services().await, journaled(&journal));
    ask(&first, "stale", "What is (17 * 23) + 4?").await;
    first.stop_all();
    drop(first);
    tokio::time::sleep(Duration::from_millis(50)).await;

    let config = SessionConfig {
        idle_timeout: Duration::from_millis(10),
        ..journaled(&journal)
    };
    let second = manager(assistant_services().await, config);
    assert!(second.list().is_empty(), "ended on recovery, not listed");
    assert!(!journal.summary("stale").unwrap().unwrap().resumable());
    let (answer, response) = ask(&second, "stale", "Now divide that by 5").await;
    assert!(response.new_session);
    assert_eq!(answer["turns"], 1, "a fresh session: {answer}");
}
