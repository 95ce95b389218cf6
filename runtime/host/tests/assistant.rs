//! The example assistant runs a multi-step tool loop in its sandbox with the
//! scripted model and the gateway's built-in WASM calculator (served in
//! process), and remembers its conversation.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::{fixture, manager, test_config};
use corral_gateway::{Gateway, GatewayConfig, GatewayOptions};
use corral_host::{GatewayTools, HostServices, InvocationRequest, SessionManager};
use corral_model::ScriptedModel;
use serde_json::{Value, json};

/// The scripted model and a gateway serving the built-in WASM calculator,
/// in process, on the host's own sandbox engine.
async fn assistant_services() -> HostServices {
    let model = ScriptedModel::from_toml(corral_examples::ASSISTANT_SCRIPT).unwrap();
    let config: GatewayConfig = serde_json::from_value(json!({
        "targets": [{"name": "calculator", "targetConfiguration": {"mcp": {"wasm": {"builtin": "calculator"}}}}]
    }))
    .unwrap();
    let options = GatewayOptions {
        engine: Some(fixture().host.engine().clone()),
        ..GatewayOptions::default()
    };
    let gateway = Gateway::new(config, options).await.unwrap();
    HostServices::new(Arc::new(model)).with_tools(Arc::new(GatewayTools::new(gateway)))
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
