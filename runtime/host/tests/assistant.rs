//! The example assistant runs a multi-step tool loop in its sandbox with the
//! scripted model and the gateway's built-in WASM calculator (served in
//! process), and remembers its conversation.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "assistant/durable.rs"]
mod durable;

use std::sync::Arc;

use common::{fixture, manager, test_config};
use corral_gateway::{Gateway, GatewayConfig, GatewayOptions};
use corral_host::{HostServices, InvocationRequest, SessionManager};
use corral_model::ScriptedModel;
use serde_json::{Value, json};

/// The scripted model and a gateway serving the built-in WASM calculator,
/// in process, on the host's own sandbox engine.
async fn assistant_services() -> HostServices {
    let model = ScriptedModel::from_toml(corral_examples::ASSISTANT_SCRIPT).unwrap();
    let config = GatewayConfig::builtin_tools(&["calculator"]).unwrap();
    let options = GatewayOptions {
        engine: Some(fixture().host.engine().clone()),
        ..GatewayOptions::default()
    };
    let gateway = Gateway::new(config, options).await.unwrap();
    HostServices::new(Arc::new(model)).with_gateway(gateway)
}

async fn ask(
    manager: &SessionManager,
    session: &str,
    prompt: &str,
) -> (Value, corral_host::InvocationResponse) {
    let response = manager
        .invoke(
            &fixture().assistant,
            InvocationRequest::new(session, json!({"prompt": prompt}).to_string()),
        )
        .await
        .unwrap();
    (serde_json::from_slice(&response.payload).unwrap(), response)
}

#[tokio::test]
async fn multi_step_tool_loop_with_memory_of_the_conversation() {
    let manager = manager(assistant_services().await, test_config());
    let (answer, response) = ask(&manager, "user-1-session", "What is (17 * 23) + 4?").await;
    assert_eq!(answer["response"], "(17 * 23) + 4 = 395.");
    assert_eq!(answer["steps"], 2);
    assert_eq!(
        answer["toolCalls"],
        json!([{"name": "calculator___evaluate", "ok": true}])
    );
    assert_eq!(response.stats.model_calls, 2);
    assert_eq!(response.stats.tool_calls, 1);
    assert!(response.stats.input_tokens > 0);
    let host_lines: Vec<&str> = response.log.iter().map(|e| e.message.as_str()).collect();
    assert!(
        host_lines
            .iter()
            .any(|l| l.contains("-> tool_use [calculator___evaluate]")),
        "{host_lines:?}"
    );
    assert!(
        host_lines
            .iter()
            .any(|l| l.starts_with("tool calculator___evaluate(")),
        "{host_lines:?}"
    );

    // The follow-up only works because the sandbox kept the conversation.
    let (answer, _) = ask(&manager, "user-1-session", "Now divide that by 5").await;
    assert_eq!(answer["response"], "395 / 5 = 79.");
    assert_eq!(answer["turns"], 2);

    // Another session has no such history.
    let (answer, _) = ask(&manager, "user-2-session", "Now divide that by 5").await;
    assert!(
        answer["response"]
            .as_str()
            .unwrap()
            .starts_with("I can do arithmetic"),
        "{answer}"
    );
    assert_eq!(answer["toolCalls"], json!([]));
}

#[tokio::test]
async fn tool_failures_reach_the_model_as_error_results() {
    let manager = manager(assistant_services().await, test_config());
    let (answer, _) = ask(&manager, "s", "What is 1 / 0?").await;
    assert_eq!(
        answer["toolCalls"],
        json!([{"name": "calculator___evaluate", "ok": false}])
    );
    let text = answer["response"].as_str().unwrap();
    assert!(
        text.starts_with("I could not get that from the tool"),
        "{text}"
    );
    assert!(text.contains("no finite value"), "{text}");
}

/// Runs one question in `session` with Corral's pipeline writing to a
/// local span store; the session's spans.
async fn traced_ask(
    session: &str,
    capture_content: bool,
) -> Vec<corral_telemetry::store::StoredSpan> {
    use corral_telemetry::{Telemetry, TelemetryConfig, store};
    use tracing_subscriber::layer::SubscriberExt;
    // Content capture is one flag for the process: one traced question at
    // a time.
    static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _one = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let telemetry = Telemetry::start(&TelemetryConfig {
        local_store: Some(dir.path().to_path_buf()),
        capture_content,
        ..TelemetryConfig::disabled()
    })
    .unwrap();
    // This thread only (a current-thread test runtime runs every task here;
    // the agent loop's spans do not need a subscriber on the guest threads).
    let _default =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(telemetry.layer()));
    let manager = manager(assistant_services().await, test_config());
    // Other tests' threads, with no subscriber, register callsites while
    // this one's dispatcher is created; one registering in that window
    // caches "never" for every dispatcher (`tracing-core` computes interest
    // before it lists the callsite). Recompute with this dispatcher.
    tracing::callsite::rebuild_interest_cache();
    ask(&manager, session, "What is 2 + 3?").await;
    drop(manager);
    corral_telemetry::set_capture_content(false);
    telemetry.shutdown();
    store::read_session(dir.path(), session).unwrap()
}

#[tokio::test]
async fn invocations_model_and_tool_calls_are_spans_with_genai_attributes() {
    let spans = traced_ask("traced-session", false).await;
    let operation = |name: &str| {
        spans
            .iter()
            .filter(|s| s.attr("gen_ai.operation.name") == Some(name))
            .collect::<Vec<_>>()
    };
    let parent = |span: &corral_telemetry::store::StoredSpan| {
        spans
            .iter()
            .find(|p| Some(&p.span_id) == span.parent_span_id.as_ref())
            .unwrap_or_else(|| panic!("no parent of {span:#?}"))
    };
    let invoke = operation("invoke_agent");
    assert_eq!(invoke.len(), 1, "{spans:#?}");
    let invoke = invoke[0];
    assert_eq!(invoke.attr("session.id"), Some("traced-session"));
    assert_eq!(invoke.attr("gen_ai.agent.name"), Some("assistant"));
    let chats = operation("chat");
    assert_eq!(chats.len(), 2, "{spans:#?}");
    // Each model call opens an agent-loop step under the invocation.
    for (number, chat) in chats.iter().enumerate() {
        let step = parent(chat);
        assert_eq!(step.name, format!("step {}", number + 1));
        assert_eq!(
            step.attributes.get("corral.step"),
            Some(&json!(number + 1)),
            "{step:#?}"
        );
        assert_eq!(parent(step).span_id, invoke.span_id);
        assert_eq!(chat.trace_id, invoke.trace_id);
        // Tagged with the session at close.
        assert_eq!(chat.attr("session.id"), Some("traced-session"));
        assert_eq!(chat.attr("gen_ai.conversation.id"), Some("traced-session"));
        assert_eq!(chat.attr("gen_ai.provider.name"), Some("corral.scripted"));
        assert!(chat.attr("gen_ai.response.finish_reasons").is_some());
        // Content is opt-in.
        assert_eq!(chat.attr("gen_ai.input.messages"), None);
    }
    let tools = operation("execute_tool");
    assert_eq!(tools.len(), 1, "{spans:#?}");
    let tool = tools[0];
    assert_eq!(parent(tool).name, "step 1");
    assert_eq!(tool.name, "execute_tool calculator___evaluate");
    assert!(
        tool.attr("gen_ai.tool.call.id")
            .is_some_and(|id| id.contains("tooluse")),
        "{tool:#?}"
    );
    assert_eq!(tool.attr("gen_ai.tool.name"), Some("calculator___evaluate"));
    assert_eq!(tool.attr("session.id"), Some("traced-session"));
    // The gateway records on the agent's span: policy, target and outcome.
    assert_eq!(tool.attr("policy.decision"), Some("ALLOW"), "{tool:#?}");
    assert_eq!(tool.attr("target.kind"), Some("wasm"), "{tool:#?}");
    assert_eq!(tool.attr("outcome"), Some("ok"), "{tool:#?}");
    // No memory is attached: the turn the assistant records is answered
    // `not-configured` with no span, as nothing was stored.
    assert!(
        !spans.iter().any(|s| s.name.starts_with("memory.")),
        "{spans:#?}"
    );
}

#[tokio::test]
async fn opted_in_content_and_guest_logs_reach_the_spans() {
    let spans = traced_ask("content-session", true).await;
    let chat = spans
        .iter()
        .find(|s| s.attr("gen_ai.operation.name") == Some("chat"))
        .unwrap();
    assert!(
        chat.attr("gen_ai.input.messages")
            .is_some_and(|m| m.contains("What is 2 + 3?")),
        "{chat:#?}"
    );
    assert!(
        chat.attr("gen_ai.output.messages")
            .is_some_and(|m| m.contains("calculator___evaluate"))
    );
    assert!(chat.attr("gen_ai.system_instructions").is_some());
    let tool = spans
        .iter()
        .find(|s| s.attr("gen_ai.operation.name") == Some("execute_tool"))
        .unwrap();
    assert!(
        tool.attr("gen_ai.tool.call.arguments")
            .is_some_and(|a| a.contains("2 + 3"))
    );
    assert!(
        tool.attr("gen_ai.tool.call.result")
            .is_some_and(|r| r.contains('5'))
    );
    // The guest's log line is an event on the step that ran the tool.
    let step = spans
        .iter()
        .find(|s| s.span_id == tool.parent_span_id.clone().unwrap_or_default())
        .unwrap();
    assert_eq!(step.name, "step 1");
    assert!(
        step.events.iter().any(|e| e.name == "log"
            && e.attributes.get("level").and_then(|v| v.as_str()) == Some("debug")
            && e.attributes
                .get("message")
                .and_then(|v| v.as_str())
                .is_some_and(|m| m.contains("calculator___evaluate succeeded"))),
        "{step:#?}"
    );
}

/// With a journal configured, every invocation is recorded durably before
/// its response returns: a `started` entry for the new sandbox, the
/// invocation, each host call in order with its answer, and the response.
#[tokio::test]
async fn journaled_sessions_record_every_host_call_in_order() {
    let storage: Arc<dyn corral_storage::Storage> =
        Arc::new(corral_storage::SledStorage::temporary().unwrap());
    let journal =
        corral_journal::JournalStore::new(storage, corral_journal::JournalConfig::default());
    let config = corral_host::SessionConfig {
        journal: Some(journal.clone()),
        ..test_config()
    };
    let manager = manager(assistant_services().await, config);
    let (first, _) = ask(&manager, "journaled-session", "What is (17 * 23) + 4?").await;
    let (second, _) = ask(&manager, "journaled-session", "divide that by 5").await;
    assert_eq!(second["response"], "395 / 5 = 79.");

    let records = journal.read_all("journaled-session").unwrap();
    let kinds: Vec<String> = records
        .iter()
        // WASI clock and random reads are journaled too; this test follows
        // the agent's own calls.
        .filter(|r| !matches!(&r.entry, corral_journal::Entry::HostCall(c) if c.interface.starts_with("wasi:")))
        .map(|r| match &r.entry {
            corral_journal::Entry::HostCall(call) => {
                format!("{}.{}", call.interface, call.function)
            }
            other => serde_json::to_value(other)
                .unwrap()
                .as_object()
                .unwrap()
                .keys()
                .next()
                .unwrap()
                .clone(),
        })
        .collect();
    // The SDK's tool loop: list tools, ask the model, run its tool (and log
    // that), ask again; then the assistant records the turn in memory.
    let turn = [
        "invocation",
        "tools.list-tools",
        "model.converse",
        "tools.call-tool",
        "log.write",
        "model.converse",
        "memory.append-event",
        "response",
    ];
    assert_eq!(kinds[0], "started", "{kinds:?}");
    assert_eq!(kinds[1..9], turn, "{kinds:?}");
    assert_eq!(
        kinds[9..],
        turn,
        "the second turn, in the same sandbox: {kinds:?}"
    );
    assert_eq!(
        kinds.iter().filter(|k| *k == "started").count(),
        1,
        "one sandbox: {kinds:?}"
    );
    assert_eq!(
        kinds.iter().filter(|k| *k == "response").count(),
        2,
        "{kinds:?}"
    );
    assert_eq!(
        records.iter().map(|r| r.offset).collect::<Vec<_>>(),
        (0..records.len() as u64).collect::<Vec<_>>()
    );

    let corral_journal::Entry::Started(start) = &records[0].entry else {
        panic!("{:?}", records[0]);
    };
    assert_eq!(start.digest, fixture().assistant.digest());
    let call = records
        .iter()
        .find_map(|r| match &r.entry {
            corral_journal::Entry::HostCall(c) if c.function == "call-tool" => Some(c),
            _ => None,
        })
        .unwrap();
    assert_eq!(call.request_value()[0], "calculator___evaluate");
    let answer = call.answer_value();
    assert!(answer["ok"].as_str().unwrap().contains("395"), "{answer:?}");
    let corral_journal::Entry::Response { ok, payload, .. } = &records
        .iter()
        .rev()
        .find(|r| matches!(r.entry, corral_journal::Entry::Response { .. }))
        .unwrap()
        .entry
    else {
        unreachable!()
    };
    assert!(ok);
    let answered: Value = serde_json::from_slice(payload).unwrap();
    assert_eq!(answered["response"], "395 / 5 = 79.");
    assert_eq!(first["response"], "(17 * 23) + 4 = 395.");
}
