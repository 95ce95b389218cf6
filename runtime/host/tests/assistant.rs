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

/// A recorded span: name, parent's name, fields.
type RecordedSpan = (String, Option<String>, Vec<(String, String)>);

/// Records every new span's name and fields, and its parent's name.
#[derive(Clone, Default)]
struct SpanRecorder(Arc<std::sync::Mutex<Vec<RecordedSpan>>>);

struct FieldVisitor<'a>(&'a mut Vec<(String, String)>);

impl tracing::field::Visit for FieldVisitor<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0
            .push((field.name().to_string(), format!("{value:?}")));
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.push((field.name().to_string(), value.to_string()));
    }
}

impl<S> tracing_subscriber::Layer<S> for SpanRecorder
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let mut fields = Vec::new();
        attrs.record(&mut FieldVisitor(&mut fields));
        let parent = ctx
            .span(id)
            .and_then(|s| s.parent())
            .map(|p| p.name().to_string());
        self.0
            .lock()
            .unwrap()
            .push((attrs.metadata().name().to_string(), parent, fields));
    }
}

#[tokio::test]
async fn invocations_model_and_tool_calls_are_spans_with_genai_attributes() {
    use tracing_subscriber::layer::SubscriberExt;
    let recorder = SpanRecorder::default();
    let subscriber = tracing_subscriber::registry().with(recorder.clone());
    // Global (not thread-local): tool calls may run on other threads. Other
    // tests of this binary then record spans too, so filter by session.
    tracing::subscriber::set_global_default(subscriber).unwrap();
    let manager = manager(assistant_services().await, test_config());
    ask(&manager, "traced-session", "What is 2 + 3?").await;
    let spans: Vec<RecordedSpan> = recorder
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, _, fields)| {
            fields
                .iter()
                .any(|(k, v)| k == "session.id" && v == "traced-session")
        })
        .cloned()
        .collect();
    let find = |name: &str| {
        spans
            .iter()
            .filter(move |(n, _, _)| n == name)
            .collect::<Vec<_>>()
    };
    let field = |fields: &Vec<(String, String)>, key: &str| {
        fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    };
    let invoke = find("invoke_agent");
    assert_eq!(invoke.len(), 1, "{spans:?}");
    assert_eq!(
        field(&invoke[0].2, "gen_ai.operation.name").as_deref(),
        Some("invoke_agent")
    );
    assert_eq!(
        field(&invoke[0].2, "session.id").as_deref(),
        Some("traced-session")
    );
    assert_eq!(
        field(&invoke[0].2, "gen_ai.agent.name").as_deref(),
        Some("assistant")
    );
    let chats = find("chat");
    assert_eq!(chats.len(), 2, "{spans:?}");
    // Each model call opens an agent-loop step under the invocation.
    for (_, parent, fields) in &chats {
        assert_eq!(parent.as_deref(), Some("agent.step"));
        assert_eq!(
            field(fields, "gen_ai.conversation.id").as_deref(),
            Some("traced-session")
        );
        assert_eq!(
            field(fields, "gen_ai.provider.name").as_deref(),
            Some("corral.scripted")
        );
    }
    let tools = find("execute_tool");
    assert_eq!(tools.len(), 1, "{spans:?}");
    assert_eq!(tools[0].1.as_deref(), Some("agent.step"));
    assert!(
        field(&tools[0].2, "gen_ai.tool.call.id").is_some_and(|id| id.contains("tooluse")),
        "{spans:?}"
    );
    assert_eq!(
        field(&tools[0].2, "gen_ai.tool.name").as_deref(),
        Some("calculator___evaluate")
    );
}

#[tokio::test]
async fn opted_in_content_and_guest_logs_reach_the_spans() {
    use corral_telemetry::{Telemetry, TelemetryConfig, store};
    use tracing_subscriber::layer::SubscriberExt;
    let dir = tempfile::tempdir().unwrap();
    let telemetry = Telemetry::start(&TelemetryConfig {
        local_store: Some(dir.path().to_path_buf()),
        capture_content: true,
        ..TelemetryConfig::disabled()
    })
    .unwrap();
    // This thread only (a current-thread test runtime runs every task here).
    let _default =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(telemetry.layer()));
    let manager = manager(assistant_services().await, test_config());
    ask(&manager, "content-session", "What is 2 + 3?").await;
    drop(manager);
    corral_telemetry::set_capture_content(false);
    telemetry.shutdown();
    let spans = store::read_session(dir.path(), "content-session").unwrap();
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
