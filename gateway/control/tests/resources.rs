//! The control plane through its Rust API: resources persist and come back
//! live after a restart, policies apply without one, and invalid changes
//! are refused whole.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use corral_gateway::{CallError, Caller, GatewayOptions};
use corral_gateway_control::{
    ControlError, ControlOptions, ControlPlane, GatewayInput, PolicyEngineAttachment,
    PolicyEngineInput, PolicyInput, TargetInput,
};
use corral_policy::{EngineMode, Principal};
use serde_json::{Value, json};

/// An API nobody serves: denied calls must never reach it.
const OPENAPI: &str = r#"{
  "openapi": "3.0.0",
  "info": {"title": "Pets", "version": "1"},
  "servers": [{"url": "http://127.0.0.1:9"}],
  "paths": {
    "/pets": {"get": {"operationId": "listPets", "summary": "List pets"}},
    "/pets/{petId}": {"get": {"operationId": "getPet", "summary": "Find a pet",
      "parameters": [{"name": "petId", "in": "path", "required": true, "schema": {"type": "string"}}]}}
  }
}"#;

async fn open(dir: &std::path::Path) -> ControlPlane {
    ControlPlane::open(dir, GatewayOptions::default(), ControlOptions::default())
        .await
        .unwrap()
}

fn gateway_input(name: &str) -> GatewayInput {
    serde_json::from_value(json!({
        "name": name,
        "roleArn": "arn:aws:iam::123456789012:role/gw",
        "protocolType": "MCP",
        "authorizerType": "NONE",
    }))
    .unwrap()
}

fn target_input(name: &str, openapi: &str) -> TargetInput {
    serde_json::from_value(json!({
        "name": name,
        "targetConfiguration": {"mcp": {"openApiSchema": {"inlinePayload": openapi}}},
        "credentialProviderConfigurations": [{"credentialProviderType": "GATEWAY_IAM_ROLE"}],
    }))
    .unwrap()
}

fn policy_input(name: &str, statement: &str) -> PolicyInput {
    serde_json::from_value(json!({"name": name, "definition": {"cedar": {"statement": statement}}}))
        .unwrap()
}

fn engine_input(name: &str) -> PolicyEngineInput {
    serde_json::from_value(json!({ "name": name })).unwrap()
}

async fn call(plane: &ControlPlane, gateway: &str, tool: &str) -> Result<(), CallError> {
    let caller = Caller::new(Principal::IamEntity {
        id: "tester".into(),
    });
    let args: Value = json!({"petId": "7"});
    plane
        .gateway(gateway)
        .unwrap()
        .call_tool(&caller, tool, args)
        .await
        .map(|_| ())
}

#[tokio::test]
async fn resources_persist_and_come_back_live_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let plane = open(dir.path()).await;
    let gateway = plane
        .create_gateway(gateway_input("pets-gw"))
        .await
        .unwrap();
    let id = gateway.gateway_id.clone();
    assert!(id.starts_with("pets-gw-"), "{id}");
    plane
        .create_target(&id, target_input("pets", OPENAPI))
        .await
        .unwrap();
    assert_eq!(plane.gateway(&id).unwrap().catalog().len(), 2);
    let engine = plane
        .create_policy_engine(engine_input("pets_engine"))
        .await
        .unwrap();
    plane
        .create_policy(
            &engine.policy_engine_id,
            policy_input(
                "list_only",
                r#"permit(principal, action == AgentCore::Action::"pets___listPets", resource);"#,
            ),
        )
        .await
        .unwrap();
    let mut attach = gateway_input("pets-gw");
    attach.policy_engine_configuration = Some(PolicyEngineAttachment {
        // Any region and account: the id decides.
        arn: engine
            .policy_engine_arn
            .replace("us-east-1:000000000000", "eu-west-1:123456789012"),
        mode: EngineMode::Enforce,
    });
    plane
        .update_gateway(&gateway.gateway_arn, attach)
        .await
        .unwrap();
    let denied = call(&plane, &id, "pets___getPet").await.unwrap_err();
    assert!(matches!(denied, CallError::Denied { .. }), "{denied}");
    drop(plane);

    let reopened = open(dir.path()).await;
    let running = reopened.gateway(&id).expect("the gateway restarts");
    assert_eq!(running.catalog().len(), 2);
    assert!(running.policy_engine().is_some());
    let denied = call(&reopened, &id, "pets___getPet").await.unwrap_err();
    assert!(matches!(denied, CallError::Denied { .. }), "{denied}");
    // Widening the policy applies on the next call, without a restart: the
    // call is now allowed and fails only because nobody serves the API.
    let policy = reopened
        .list_policies(&engine.policy_engine_id)
        .await
        .unwrap()
        .remove(0);
    reopened
        .update_policy(
            &engine.policy_engine_id,
            &policy.policy_id,
            policy_input("list_only", r#"permit(principal, action, resource);"#),
        )
        .await
        .unwrap();
    let allowed = call(&reopened, &id, "pets___getPet").await.unwrap_err();
    assert!(!matches!(allowed, CallError::Denied { .. }), "{allowed}");
}

#[tokio::test]
async fn invalid_changes_are_refused_whole() {
    let dir = tempfile::tempdir().unwrap();
    let plane = open(dir.path()).await;
    let gateway = plane.create_gateway(gateway_input("shop")).await.unwrap();
    let id = gateway.gateway_id.clone();
    assert!(matches!(
        plane.create_gateway(gateway_input("shop")).await,
        Err(ControlError::Conflict(_))
    ));
    // A create retried with its clientToken (as boto3 retries) gets the first result.
    let mut retried = gateway_input("retried");
    retried.client_token = Some("retry-0123456789-0123456789-0123456789".into());
    let first = plane.create_gateway(retried.clone()).await.unwrap();
    let again = plane.create_gateway(retried).await.unwrap();
    assert_eq!(first.gateway_id, again.gateway_id);
    assert!(matches!(
        plane.create_gateway(gateway_input("bad name")).await,
        Err(ControlError::Validation(_))
    ));
    let mut iam = gateway_input("iam");
    iam.authorizer_type = Some("AWS_IAM".into());
    assert!(matches!(
        plane.create_gateway(iam).await,
        Err(ControlError::Validation(_))
    ));
    assert!(matches!(
        plane.get_gateway("missing-0123456789").await,
        Err(ControlError::NotFound(_))
    ));
    // Targets reaching into the host are refused unless the operator allowed them.
    for (name, configuration) in [
        (
            "stdio",
            json!({"mcp": {"mcpServer": {"command": "sh", "args": ["-c", "id"]}}}),
        ),
        (
            "file",
            json!({"mcp": {"openApiSchema": {"path": "/etc/passwd"}}}),
        ),
        (
            "lambda",
            json!({"mcp": {"lambda": {"lambdaArn": "arn:aws:lambda:us-east-1:123456789012:function:f",
            "toolSchema": {"inlinePayload": []}}}}),
        ),
        ("wasm", json!({"mcp": {"wasm": {"path": "/tmp/tool.wasm"}}})),
    ] {
        let input: TargetInput = serde_json::from_value(json!({
            "name": name, "targetConfiguration": configuration,
        }))
        .unwrap();
        let refused = plane.create_target(&id, input).await.unwrap_err();
        assert!(
            refused.to_string().contains("--allow-host-gateway-targets"),
            "{name}: {refused}"
        );
    }
    // A target that does not load leaves the gateway as it was.
    let broken = plane
        .create_target(&id, target_input("broken", "{not an api"))
        .await
        .unwrap_err();
    assert_eq!(broken.error_type(), "ValidationException", "{broken}");
    assert!(plane.get_gateway(&id).await.unwrap().targets.is_empty());
    let (_, target) = plane
        .create_target(&id, target_input("pets", OPENAPI))
        .await
        .unwrap();
    assert!(matches!(
        plane.delete_gateway(&id).await,
        Err(ControlError::Conflict(_))
    ));

    let engine = plane
        .create_policy_engine(engine_input("shop_engine"))
        .await
        .unwrap();
    let e = engine.policy_engine_id.clone();
    let syntax = plane
        .create_policy(
            &e,
            policy_input("broken", "permit(principal, action ==, resource);"),
        )
        .await
        .unwrap_err();
    assert!(matches!(syntax, ControlError::Policy(_)), "{syntax}");
    let mut attach = gateway_input("shop");
    attach.policy_engine_configuration = Some(PolicyEngineAttachment {
        arn: engine.policy_engine_arn.clone(),
        mode: EngineMode::Enforce,
    });
    plane.update_gateway(&id, attach).await.unwrap();
    // Attached, policies are validated against the gateway's catalogue.
    let unknown_tool = plane
        .create_policy(
            &e,
            policy_input(
                "typo",
                r#"permit(principal, action == AgentCore::Action::"pets___getPett", resource);"#,
            ),
        )
        .await
        .unwrap_err();
    assert_eq!(unknown_tool.error_type(), "ValidationException");
    assert!(plane.list_policies(&e).await.unwrap().is_empty());
    assert!(matches!(
        plane.delete_policy_engine(&e).await,
        Err(ControlError::Conflict(_))
    ));
    // What was refused was not persisted either.
    drop(plane);
    let reopened = open(dir.path()).await;
    let stored = reopened.get_gateway(&id).await.unwrap();
    assert_eq!(stored.targets.len(), 1);
    assert!(stored.targets.contains_key(&target.target_id));
    assert!(reopened.list_policies(&e).await.unwrap().is_empty());
}

#[tokio::test]
async fn an_mcp_target_not_reached_yet_reports_it_and_the_others_serve() {
    let dir = tempfile::tempdir().unwrap();
    let options = ControlOptions {
        allow_host_targets: true,
        ..ControlOptions::default()
    };
    let plane = ControlPlane::open(dir.path(), GatewayOptions::default(), options)
        .await
        .unwrap();
    let id = plane
        .create_gateway(gateway_input("mcp-gw"))
        .await
        .unwrap()
        .gateway_id;
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let remote: TargetInput = serde_json::from_value(json!({
        "name": "remote",
        "targetConfiguration": {"mcp": {"mcpServer": {"endpoint": format!("http://{dead}/mcp")}}},
    }))
    .unwrap();
    plane.create_target(&id, remote).await.unwrap();
    plane
        .create_target(&id, target_input("pets", OPENAPI))
        .await
        .unwrap();
    let (status, reasons) = plane.target_status(&id, "remote");
    assert_eq!(status, "SYNCHRONIZE_UNSUCCESSFUL");
    assert!(reasons[0].contains("not been reached"), "{reasons:?}");
    assert_eq!(plane.target_status(&id, "pets"), ("READY", Vec::new()));
    let error = call(&plane, &id, "remote___lookup").await.unwrap_err();
    assert!(matches!(error, CallError::Unavailable { .. }), "{error:?}");
    assert_eq!(
        plane.gateway(&id).unwrap().catalog().len(),
        2,
        "the OpenAPI target's tools are served"
    );
}
