//! Every target kind through the gateway's call path, against local servers
//! that speak the real protocols.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::Ordering;

use common::{Upstream, gateway, pets_openapi, standard_config};
use corral_gateway::{CallError, Caller, GatewayError, SEARCH_TOOL};
use corral_policy::Principal;
use serde_json::{Value, json};

fn caller() -> Caller {
    Caller::new(Principal::IamEntity {
        id: "tester".into(),
    })
}

#[tokio::test]
async fn catalogue_merges_all_targets_with_search_first() {
    let upstream = Upstream::start().await;
    let gateway = gateway(standard_config(&upstream)).await;
    let names: Vec<String> = gateway
        .visible_tools(&caller().principal)
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names[0], SEARCH_TOOL);
    for expected in [
        "pets___listPets",
        "pets___getPet",
        "pets___createPet",
        "orders___get_order",
        "calculator___evaluate",
        "json___query",
    ] {
        assert!(
            names.contains(&expected.to_string()),
            "{expected} missing from {names:?}"
        );
    }
    let first = gateway.list_tools(&caller().principal, None).unwrap();
    assert_eq!(first.items.len(), 4, "page size from config");
    let second = gateway
        .list_tools(&caller().principal, first.next_cursor.as_deref())
        .unwrap();
    assert_ne!(first.items[0].name, second.items[0].name);
}

#[tokio::test]
async fn openapi_tools_call_the_api_with_credentials() {
    let upstream = Upstream::start().await;
    let gateway = gateway(standard_config(&upstream)).await;
    let listed = gateway
        .call_tool(
            &caller(),
            "pets___listPets",
            json!({"limit": 1, "X-Trace": "t-1"}),
        )
        .await
        .unwrap();
    assert!(!listed.is_error);
    let body = listed.structured.unwrap();
    assert_eq!(body["pets"].as_array().unwrap().len(), 1);
    assert_eq!(body["trace"], "t-1", "header parameter sent");

    let pet = gateway
        .call_tool(&caller(), "pets___getPet", json!({"petId": "2"}))
        .await
        .unwrap();
    assert_eq!(pet.structured.unwrap()["name"], "Tom");

    let created = gateway
        .call_tool(
            &caller(),
            "pets___createPet",
            json!({"name": "Nemo", "tag": "fish"}),
        )
        .await
        .unwrap();
    assert_eq!(created.structured.unwrap()["id"], "3");

    let missing = gateway
        .call_tool(&caller(), "pets___getPet", json!({"petId": "99"}))
        .await
        .unwrap();
    assert!(missing.is_error);
    assert_eq!(missing.status, Some(404));
    assert!(missing.text_content().contains("no pet 99"));

    let broken = gateway
        .call_tool(&caller(), "pets___brokenCall", json!({}))
        .await
        .unwrap();
    assert_eq!(broken.status, Some(500));
    assert!(
        broken.text_content().len() < 2300,
        "error body excerpt is bounded"
    );
    assert!(broken.text_content().contains("bytes total"));
}

#[tokio::test]
async fn bad_arguments_slow_and_huge_upstreams_are_typed_errors() {
    let upstream = Upstream::start().await;
    let gateway = gateway(standard_config(&upstream)).await;
    let err = gateway
        .call_tool(&caller(), "pets___getPet", json!({}))
        .await
        .unwrap_err();
    assert!(
        matches!(err, CallError::InvalidArguments(ref m) if m.contains("petId")),
        "{err:?}"
    );
    let err = gateway
        .call_tool(&caller(), "pets___getPet", json!([1]))
        .await
        .unwrap_err();
    assert!(matches!(err, CallError::InvalidArguments(_)));
    let err = gateway
        .call_tool(&caller(), "pets___nope", json!({}))
        .await
        .unwrap_err();
    assert_eq!(err, CallError::NotFound("pets___nope".into()));
    let err = gateway
        .call_tool(&caller(), "pets___slowCall", json!({}))
        .await
        .unwrap_err();
    assert!(matches!(err, CallError::Timeout(_)), "{err:?}");
    let err = gateway
        .call_tool(&caller(), "pets___hugeCall", json!({}))
        .await
        .unwrap_err();
    assert_eq!(err, CallError::ResponseTooLarge(262144));
    // The gateway keeps serving.
    assert!(
        gateway
            .call_tool(&caller(), "pets___getPet", json!({"petId": "1"}))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn outbound_http_and_lambda_calls_carry_the_trace_context() {
    let upstream = Upstream::start().await;
    let gateway = gateway(standard_config(&upstream)).await;
    common::in_caller_trace(async {
        let order = gateway
            .call_tool(&caller(), "orders___get_order", json!({"orderId": "A-7"}))
            .await
            .unwrap();
        assert!(!order.is_error);
    })
    .await;
    let seen = upstream.state.lambda.lock().clone();
    let traceparent = &seen[0].traceparent;
    // Same trace; the parent is the gateway's Lambda.Invoke span, not the caller's.
    assert!(
        traceparent.starts_with(&format!("00-{}-", common::CALLER_TRACE)),
        "{traceparent:?}"
    );
    assert!(!traceparent.contains("00f067aa0ba902b7"), "{traceparent}");
    // Without tracing nothing is injected.
    gateway
        .call_tool(&caller(), "orders___get_order", json!({"orderId": "A-8"}))
        .await
        .unwrap();
    assert_eq!(upstream.state.lambda.lock()[1].traceparent, "");
}

#[tokio::test]
async fn lambda_tools_get_agentcore_context_and_report_function_errors() {
    let upstream = Upstream::start().await;
    let gateway = gateway(standard_config(&upstream)).await;
    let mut call = caller();
    call.context.session_id = Some("session-42".into());
    let order = gateway
        .call_tool(&call, "orders___get_order", json!({"orderId": "A-7"}))
        .await
        .unwrap();
    assert!(!order.is_error);
    assert_eq!(
        order.to_json(),
        json!({"orderId": "A-7", "status": "shipped"})
    );
    let sum = gateway
        .call_tool(&caller(), "orders___add", json!({"a": 2, "b": 40}))
        .await
        .unwrap();
    assert_eq!(sum.structured.unwrap(), json!({"sum": 42}));
    let failed = gateway
        .call_tool(&caller(), "orders___explode", json!({}))
        .await
        .unwrap();
    assert!(failed.is_error);
    assert!(
        failed
            .text_content()
            .starts_with("Lambda function error (Unhandled)"),
        "{}",
        failed.text_content()
    );
    assert!(failed.text_content().contains("boom"));

    let seen = upstream.state.lambda.lock().clone();
    assert_eq!(seen.len(), 3);
    let first = &seen[0];
    assert_eq!(
        first.function,
        "arn:aws:lambda:us-east-1:123456789012:function:orders-fn"
    );
    assert_eq!(first.invocation_type, "RequestResponse");
    assert_eq!(
        first.event,
        json!({"orderId": "A-7"}),
        "the arguments are the event"
    );
    let custom = &first.client_context["custom"];
    assert_eq!(custom["bedrockAgentCoreToolName"], "orders___get_order");
    assert_eq!(custom["bedrockAgentCoreGatewayId"], "gw-test-0123456789");
    assert_eq!(custom["bedrockAgentCoreTargetId"], "orders");
    assert_eq!(custom["bedrockAgentCoreSessionId"], "session-42");
    assert!(
        first.authorization.starts_with("AWS4-HMAC-SHA256"),
        "SigV4-signed by the SDK"
    );
}

#[tokio::test]
async fn wasm_tools_run_in_fresh_sandboxes() {
    let upstream = Upstream::start().await;
    let gateway = gateway(standard_config(&upstream)).await;
    let result = gateway
        .call_tool(
            &caller(),
            "calculator___evaluate",
            json!({"expression": "(17 * 23) + 4"}),
        )
        .await
        .unwrap();
    assert_eq!(result.structured.unwrap()["value"], 395);
    let result = gateway
        .call_tool(&caller(), "json___query", json!({"filter": ".[] | select(.n > 1) | .id", "input": [{"id": "a", "n": 1}, {"id": "b", "n": 2}]}))
        .await
        .unwrap();
    assert_eq!(result.structured.unwrap()["results"], json!(["b"]));
    let err = gateway
        .call_tool(
            &caller(),
            "json___query",
            json!({"filter": ".[", "input": 1}),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, CallError::InvalidArguments(_)), "{err:?}");
    let failed = gateway
        .call_tool(
            &caller(),
            "calculator___evaluate",
            json!({"expression": "1/0"}),
        )
        .await
        .unwrap();
    assert!(failed.is_error);
    // A runaway filter hits the sandbox's CPU limit, not the gateway.
    let err = gateway
        .call_tool(
            &caller(),
            "json___query",
            json!({"filter": "[repeat(1)] | length", "input": null}),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, CallError::Timeout(_) | CallError::Upstream { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn search_ranks_the_catalogue() {
    let upstream = Upstream::start().await;
    let gateway = gateway(standard_config(&upstream)).await;
    let found = gateway
        .call_tool(
            &caller(),
            SEARCH_TOOL,
            json!({"query": "find a pet by its id"}),
        )
        .await
        .unwrap();
    let tools = found.structured.unwrap()["tools"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(tools[0]["name"], "pets___getPet");
    assert!(tools.len() <= 10);
    let found = gateway
        .call_tool(&caller(), SEARCH_TOOL, json!({"query": "look up an order"}))
        .await
        .unwrap();
    assert_eq!(
        found.structured.unwrap()["tools"][0]["name"],
        "orders___get_order"
    );
    assert!(matches!(
        gateway.call_tool(&caller(), SEARCH_TOOL, json!({})).await,
        Err(CallError::InvalidArguments(_))
    ));
}

#[tokio::test]
async fn oauth2_tokens_are_fetched_once_and_cached() {
    let upstream = Upstream::start().await;
    let doc = format!(
        "openapi: 3.0.0\ninfo: {{title: r, version: '1'}}\nservers: [{{url: '{}/v1'}}]\npaths:\n  /report:\n    get: {{operationId: getReport}}\n",
        upstream.url
    );
    let config = json!({
        "credentialProviders": [{"name": "crm", "type": "OAUTH", "tokenEndpoint": format!("{}/oauth/token", upstream.url),
                                  "clientId": "client-1", "clientSecret": "client-secret"}],
        "targets": [{"name": "crm",
            "targetConfiguration": {"mcp": {"openApiSchema": {"inlinePayload": doc}}},
            "credentialProviderConfigurations": [{"credentialProviderType": "OAUTH", "credentialProvider": {
                "oauthCredentialProvider": {"providerArn": "arn:aws:bedrock-agentcore:us-east-1:1:token-vault/default/oauth2credentialprovider/crm", "scopes": ["reports.read"]}}}]}]
    });
    let gateway = gateway(config).await;
    for _ in 0..3 {
        let report = gateway
            .call_tool(&caller(), "crm___getReport", json!({}))
            .await
            .unwrap();
        assert_eq!(report.structured.unwrap()["token"], "Bearer tok-1");
    }
    assert_eq!(upstream.state.token_fetches.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn unreachable_upstreams_and_concurrency_limits_are_typed() {
    let upstream = Upstream::start().await;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let config = json!({
        "limits": {"callTimeoutMs": 5000},
        "credentialProviders": [{"name": "k", "type": "API_KEY", "secret": "pet-key"}],
        "targets": [
            {"name": "dead", "targetConfiguration": {"mcp": {"openApiSchema": {"inlinePayload": pets_openapi(&dead)}}}},
            {"name": "pets", "maxConcurrentCalls": 1,
             "targetConfiguration": {"mcp": {"openApiSchema": {"inlinePayload": pets_openapi(&upstream.url)}}}}
        ]
    });
    let gateway = gateway(config).await;
    let err = gateway
        .call_tool(&caller(), "dead___getPet", json!({"petId": "1"}))
        .await
        .unwrap_err();
    match err {
        CallError::Upstream {
            status: None,
            message,
            detail,
        } => {
            assert!(message.contains("GET /pets/{petId} failed"), "{message}");
            // What callers see names no internal URL; the log detail does.
            assert!(!message.contains("http://"), "{message}");
            assert!(detail.is_some_and(|d| d.contains("http://")));
        }
        other => panic!("expected an upstream error, got {other:?}"),
    }
    let first = {
        let gateway = gateway.clone();
        tokio::spawn(async move {
            gateway
                .call_tool(&caller(), "pets___slowCall", json!({}))
                .await
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let err = gateway
        .call_tool(&caller(), "pets___slowCall", json!({}))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        CallError::Overloaded {
            target: "pets".into(),
            limit: 1
        }
    );
    assert!(first.await.unwrap().is_ok());
}

#[tokio::test]
async fn bad_configurations_are_rejected_with_locations() {
    let upstream = Upstream::start().await;
    let load = |config: Value| async move {
        let config: corral_gateway::GatewayConfig = serde_json::from_value(config).unwrap();
        corral_gateway::Gateway::new(config, common::options()).await
    };
    let bad_spec = "openapi: 3.0.0\nservers: [{url: 'http://x'}]\npaths:\n  /a/{id}:\n    get: {operationId: a}\n";
    let err = load(json!({"targets": [{"name": "api", "targetConfiguration": {"mcp": {"openApiSchema": {"inlinePayload": bad_spec}}}}]}))
        .await
        .unwrap_err();
    match &err {
        GatewayError::OpenApi {
            target, pointer, ..
        } => {
            assert_eq!(target, "api");
            assert_eq!(pointer, "/paths/~1a~1{id}/get");
        }
        other => panic!("expected an OpenAPI error, got {other}"),
    }
    assert!(err.to_string().contains("not declared"));

    let dup = json!({"targets": [{"name": "fn", "targetConfiguration": {"mcp": {"lambda": {"lambdaArn": "arn:aws:lambda:us-east-1:1:function:f",
        "toolSchema": {"inlinePayload": [
            {"name": "x", "description": "", "inputSchema": {"type": "object"}},
            {"name": "x", "description": "", "inputSchema": {"type": "object"}}]}}}}}]});
    assert!(
        load(dup)
            .await
            .unwrap_err()
            .to_string()
            .contains("duplicate tool name 'x'")
    );

    let two = json!({"targets": [
        {"name": "a", "targetConfiguration": {"mcp": {"wasm": {"builtin": "calculator"}}}},
        {"name": "a", "targetConfiguration": {"mcp": {"wasm": {"builtin": "json"}}}}]});
    assert!(
        load(two)
            .await
            .unwrap_err()
            .to_string()
            .contains("duplicate target name")
    );

    let unknown = json!({"targets": [{"name": "w", "targetConfiguration": {"mcp": {"wasm": {"builtin": "nope"}}}}]});
    assert!(
        load(unknown)
            .await
            .unwrap_err()
            .to_string()
            .contains("no built-in tool named")
    );

    let not_wasm = json!({"targets": [{"name": "w", "targetConfiguration": {"mcp": {"wasm": {"path": "/dev/null"}}}}]});
    assert!(
        load(not_wasm)
            .await
            .unwrap_err()
            .to_string()
            .contains("not a WebAssembly binary")
    );

    let smithy = json!({"targets": [{"name": "s", "targetConfiguration": {"mcp": {"smithyModel": {"inlinePayload": "{}"}}}}]});
    assert!(
        load(smithy)
            .await
            .unwrap_err()
            .to_string()
            .contains("not supported")
    );
    drop(upstream);
}
