//! The policy engine on realistic AgentCore-style policies.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use corral_policy::{
    AuthorizationRequest, CallContext, Effect, EngineMode, MemoryAudit, PolicyBundle, PolicyEngine,
    PolicyError, PolicyHook, PolicyStatus, Principal, ToolSignature, ValidationMode,
};
use serde_json::{Value, json};

const GATEWAY: &str = "arn:aws:bedrock-agentcore:us-east-1:123456789012:gateway/shop-0123456789";

fn tools() -> Vec<ToolSignature> {
    vec![
        ToolSignature::new(
            "RefundTool___process_refund",
            json!({"type": "object", "properties": {
                "orderId": {"type": "string"},
                "amount": {"type": "number"},
                "reason": {"type": "string"}
            }, "required": ["orderId", "amount"]}),
        ),
        ToolSignature::new(
            "orders___get_order",
            json!({"type": "object", "properties": {"orderId": {"type": "string"}}, "required": ["orderId"]}),
        ),
        ToolSignature::new(
            "orders___delete_order",
            json!({"type": "object", "properties": {"orderId": {"type": "string"}}, "required": ["orderId"]}),
        ),
        ToolSignature::new(
            "inventory___list_items",
            json!({"type": "object", "properties": {"limit": {"type": "integer"}}}),
        ),
    ]
}

fn bundle(policies: &[(&str, &str)]) -> PolicyBundle {
    let mut bundle = PolicyBundle::new("shop");
    for (name, text) in policies {
        bundle
            .add_document(
                name,
                &format!("{name}.cedar"),
                text,
                PolicyStatus::Active,
                ValidationMode::FailOnAnyFindings,
            )
            .unwrap_or_else(|e| panic!("{e}"));
    }
    bundle
}

fn engine(policies: &[(&str, &str)]) -> PolicyEngine {
    PolicyEngine::new(bundle(policies), EngineMode::Enforce, &tools())
        .unwrap_or_else(|e| panic!("{e}"))
}

fn user(id: &str, claims: Value) -> Principal {
    Principal::OAuthUser {
        id: id.into(),
        claims: claims.as_object().cloned().unwrap_or_default(),
    }
}

fn call(principal: &Principal, tool: &str, input: Value) -> AuthorizationRequest {
    AuthorizationRequest {
        principal: principal.clone(),
        tool: tool.into(),
        gateway: GATEWAY.into(),
        input,
        context: CallContext::default(),
    }
}

const REFUND_LIMIT: &str = r#"
permit(
  principal is AgentCore::OAuthUser,
  action == AgentCore::Action::"RefundTool___process_refund",
  resource == AgentCore::Gateway::"arn:aws:bedrock-agentcore:us-east-1:123456789012:gateway/shop-0123456789"
) when {
  context.input.amount.lessThan(decimal("500.0"))
};"#;

#[test]
fn refunds_are_allowed_only_under_an_amount() {
    let engine = engine(&[("refund_limit", REFUND_LIMIT)]);
    let alice = user("alice", json!({}));
    let small = engine.authorize(&call(
        &alice,
        "RefundTool___process_refund",
        json!({"orderId": "o1", "amount": 450}),
    ));
    assert_eq!(small.effect, Effect::Allow, "{small:?}");
    assert_eq!(small.policy_ids, ["refund_limit"]);
    let fractional = engine.authorize(&call(
        &alice,
        "RefundTool___process_refund",
        json!({"orderId": "o1", "amount": 499.99}),
    ));
    assert_eq!(fractional.effect, Effect::Allow);
    let large = engine.authorize(&call(
        &alice,
        "RefundTool___process_refund",
        json!({"orderId": "o1", "amount": 1200}),
    ));
    assert_eq!(large.effect, Effect::Deny);
    assert!(large.policy_ids.is_empty());
    assert_eq!(large.reason, "no policy permits this call");
    // Default deny: tools no policy mentions.
    let other = engine.authorize(&call(
        &alice,
        "orders___get_order",
        json!({"orderId": "o1"}),
    ));
    assert_eq!(other.effect, Effect::Deny);
    // Ill-typed arguments never reach Cedar as something else: deny with the reason.
    let bad = engine.authorize(&call(
        &alice,
        "RefundTool___process_refund",
        json!({"orderId": "o1", "amount": "lots"}),
    ));
    assert_eq!(bad.effect, Effect::Deny);
    assert!(bad.reason.contains("amount"), "{}", bad.reason);
}

#[test]
fn roles_from_jwt_claims_get_read_only_tools() {
    let engine = engine(&[
        (
            "viewers_read",
            r#"permit(principal, action in [AgentCore::Action::"orders___get_order", AgentCore::Action::"inventory___list_items"], resource)
               when { principal.hasTag("role") && principal.getTag("role") == "viewer" };"#,
        ),
        (
            "admins_all",
            r#"permit(principal, action in AgentCore::Action::"CallTool", resource)
               when { principal.hasTag("role") && principal.getTag("role") == "admin" };"#,
        ),
    ]);
    let viewer = user("v", json!({"role": "viewer", "scope": "orders:read"}));
    let admin = user("a", json!({"role": "admin"}));
    let nobody = user("n", json!({}));
    assert_eq!(
        engine
            .authorize(&call(
                &viewer,
                "orders___get_order",
                json!({"orderId": "1"})
            ))
            .effect,
        Effect::Allow
    );
    assert_eq!(
        engine
            .authorize(&call(
                &viewer,
                "orders___delete_order",
                json!({"orderId": "1"})
            ))
            .effect,
        Effect::Deny
    );
    assert_eq!(
        engine
            .authorize(&call(
                &admin,
                "orders___delete_order",
                json!({"orderId": "1"})
            ))
            .effect,
        Effect::Allow
    );
    assert_eq!(
        engine
            .authorize(&call(
                &nobody,
                "orders___get_order",
                json!({"orderId": "1"})
            ))
            .effect,
        Effect::Deny
    );

    // Listing hides what the caller can never call.
    let listed = |p: &Principal| -> Vec<String> {
        tools()
            .into_iter()
            .map(|t| t.name)
            .filter(|t| engine.may_list(p, t, GATEWAY))
            .collect()
    };
    assert_eq!(
        listed(&viewer),
        ["orders___get_order", "inventory___list_items"]
    );
    assert_eq!(listed(&admin).len(), 4);
    assert!(listed(&nobody).is_empty());
}

#[test]
fn forbid_overrides_a_broad_permit_and_one_actor_is_denied() {
    let engine = engine(&[
        (
            "everyone",
            r#"permit(principal, action in AgentCore::Action::"CallTool", resource);"#,
        ),
        (
            "no_deletes",
            r#"forbid(principal, action == AgentCore::Action::"orders___delete_order", resource);"#,
        ),
        (
            "block_mallory",
            r#"forbid(principal == AgentCore::OAuthUser::"mallory", action, resource);"#,
        ),
    ]);
    let alice = user("alice", json!({}));
    let mallory = user("mallory", json!({}));
    let delete = engine.authorize(&call(
        &alice,
        "orders___delete_order",
        json!({"orderId": "1"}),
    ));
    assert_eq!(delete.effect, Effect::Deny);
    assert_eq!(delete.policy_ids, ["no_deletes"]);
    assert!(delete.reason.contains("forbidden by policy no_deletes"));
    assert_eq!(
        engine
            .authorize(&call(&alice, "orders___get_order", json!({"orderId": "1"})))
            .effect,
        Effect::Allow
    );
    let blocked = engine.authorize(&call(
        &mallory,
        "orders___get_order",
        json!({"orderId": "1"}),
    ));
    assert_eq!(blocked.effect, Effect::Deny);
    assert_eq!(blocked.policy_ids, ["block_mallory"]);
    assert!(!engine.may_list(&mallory, "orders___get_order", GATEWAY));
    assert!(!engine.may_list(&alice, "orders___delete_order", GATEWAY));
    assert!(engine.may_list(&alice, "orders___get_order", GATEWAY));
    // IAM callers are principals too.
    let iam = Principal::IamEntity {
        id: "arn:aws:iam::123456789012:role/ops".into(),
    };
    assert_eq!(
        engine
            .authorize(&call(&iam, "inventory___list_items", json!({})))
            .effect,
        Effect::Allow
    );
}

#[test]
fn a_time_window_uses_corral_context() {
    let engine = engine(&[(
        "office_hours",
        r#"permit(principal, action == AgentCore::Action::"orders___delete_order", resource)
           when { context.corral.hour >= 9 && context.corral.hour < 17 &&
                  context.corral.epochSeconds > 1767225600 };"#,
    )]);
    let alice = user("alice", json!({}));
    let at = |hour| {
        let mut request = call(&alice, "orders___delete_order", json!({"orderId": "1"}));
        request.context.time = Some(Utc.with_ymd_and_hms(2026, 11, 23, hour, 30, 0).unwrap());
        engine.authorize(&request).effect
    };
    assert_eq!(at(10), Effect::Allow);
    assert_eq!(at(8), Effect::Deny);
    assert_eq!(at(17), Effect::Deny);
    // The window depends on context, so the tool stays listed.
    assert!(engine.may_list(&alice, "orders___delete_order", GATEWAY));
}

#[test]
fn log_only_engines_record_but_do_not_enforce() {
    let audit = Arc::new(MemoryAudit::new(16));
    let engine = PolicyEngine::new(
        bundle(&[("refund_limit", REFUND_LIMIT)]),
        EngineMode::LogOnly,
        &tools(),
    )
    .unwrap()
    .with_audit(audit.clone());
    let alice = user("alice", json!({"role": "agent"}));
    let decision = engine.authorize(&call(
        &alice,
        "RefundTool___process_refund",
        json!({"orderId": "o", "amount": 900}),
    ));
    assert_eq!(decision.effect, Effect::Deny);
    assert!(!decision.enforced);
    assert!(decision.permits_call());
    assert!(engine.may_list(&alice, "orders___delete_order", GATEWAY));
    let records = audit.records();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].decision, "DENY");
    assert_eq!(records[0].mode, "LOG_ONLY");
    assert!(!records[0].enforced);
    assert_eq!(
        records[0].request["principal"],
        "AgentCore::OAuthUser::\"alice\""
    );
    assert_eq!(records[0].request["context"]["input"]["amount"], 900);
    assert!(records[0].evaluation_micros > 0.0);
}

#[test]
fn log_only_policies_are_evaluated_but_do_not_decide() {
    let mut bundle = bundle(&[("everyone", r#"permit(principal, action, resource);"#)]);
    bundle
        .add_document(
            "candidate_forbid",
            "candidate_forbid.cedar",
            r#"forbid(principal, action == AgentCore::Action::"orders___delete_order", resource);"#,
            PolicyStatus::LogOnly,
            ValidationMode::FailOnAnyFindings,
        )
        .unwrap();
    let audit = Arc::new(MemoryAudit::new(16));
    let engine = PolicyEngine::new(bundle, EngineMode::Enforce, &tools())
        .unwrap()
        .with_audit(audit.clone());
    let alice = user("alice", json!({}));
    let decision = engine.authorize(&call(
        &alice,
        "orders___delete_order",
        json!({"orderId": "1"}),
    ));
    assert_eq!(decision.effect, Effect::Allow);
    assert!(decision.enforced);
    let record = &audit.records()[0];
    assert_eq!(record.log_only_decision.as_deref(), Some("DENY"));
    assert_eq!(record.log_only_policies, ["candidate_forbid"]);
}

#[test]
fn malformed_and_ill_typed_policies_are_rejected_with_their_line() {
    let mut bundle = PolicyBundle::new("bad");
    let malformed = bundle.add_document(
        "broken",
        "broken.cedar",
        "// refunds\npermit(\n  principal,\n  action == AgentCore::Action::\"RefundTool___process_refund\"\n  resource\n);",
        PolicyStatus::Active,
        ValidationMode::FailOnAnyFindings,
    );
    let Err(PolicyError::Parse { diagnostics }) = malformed else {
        panic!("expected a parse error, got {malformed:?}");
    };
    assert!(
        diagnostics[0].starts_with("broken.cedar:5:"),
        "{diagnostics:?}"
    );

    let ill_typed = PolicyEngine::new(
        bundle_of(&[(
            "typo",
            "permit(\n  principal,\n  action == AgentCore::Action::\"RefundTool___process_refund\",\n  resource\n) when {\n  context.input.amount < 500\n};",
        )]),
        EngineMode::Enforce,
        &tools(),
    );
    let Err(PolicyError::Invalid { diagnostics }) = ill_typed else {
        panic!("expected a validation error, got {ill_typed:?}");
    };
    assert!(
        diagnostics[0].starts_with("typo.cedar:6:"),
        "{diagnostics:?}"
    );
    assert!(diagnostics[0].contains("decimal"), "{diagnostics:?}");

    let unknown_tool = PolicyEngine::new(
        bundle_of(&[(
            "ghost",
            "permit(principal, action == AgentCore::Action::\"nope___tool\", resource);",
        )]),
        EngineMode::Enforce,
        &tools(),
    );
    let Err(PolicyError::Invalid { diagnostics }) = unknown_tool else {
        panic!("expected a validation error");
    };
    assert!(
        diagnostics.iter().all(|d| d.starts_with("ghost.cedar:1:")),
        "{diagnostics:?}"
    );
    assert!(
        diagnostics
            .iter()
            .any(|d| d.contains("unrecognized action `AgentCore::Action::\"nope___tool\"`")),
        "{diagnostics:?}"
    );

    // IGNORE_ALL_FINDINGS keeps an ill-typed policy (it errors at evaluation and is skipped).
    let mut lenient = PolicyBundle::new("lenient");
    lenient
        .add_document(
            "ghost",
            "ghost.cedar",
            "permit(principal, action == AgentCore::Action::\"nope___tool\", resource);",
            PolicyStatus::Active,
            ValidationMode::IgnoreAllFindings,
        )
        .unwrap();
    let engine = PolicyEngine::new(lenient, EngineMode::Enforce, &tools()).unwrap();
    let findings = engine.report().ignored_findings;
    assert!(
        !findings.is_empty() && findings.iter().all(|f| f.starts_with("ghost.cedar:1:")),
        "{findings:?}"
    );
}

fn bundle_of(policies: &[(&str, &str)]) -> PolicyBundle {
    bundle(policies)
}

#[test]
fn a_catalogue_change_invalidates_loaded_policies() {
    let engine = engine(&[
        ("refund_limit", REFUND_LIMIT),
        (
            "reads",
            r#"permit(principal, action == AgentCore::Action::"orders___get_order", resource);"#,
        ),
        (
            "no_inventory_bulk",
            r#"forbid(principal, action == AgentCore::Action::"inventory___list_items", resource) when { context.input has limit && context.input.limit > 100 };"#,
        ),
    ]);
    let alice = user("alice", json!({}));
    assert_eq!(
        engine
            .authorize(&call(&alice, "orders___get_order", json!({"orderId": "1"})))
            .effect,
        Effect::Allow
    );

    // The refund tool's amount becomes a string: the permit no longer type-checks and stops applying.
    let mut changed = tools();
    changed[0].input_schema = json!({"type": "object", "properties": {"orderId": {"type": "string"}, "amount": {"type": "string"}}});
    let report = engine.update_tools(&changed).unwrap();
    assert_eq!(report.invalid.len(), 1);
    assert_eq!(report.invalid[0].id, "refund_limit");
    assert!(
        report.invalid[0].diagnostics[0].starts_with("refund_limit.cedar:"),
        "{report:?}"
    );
    assert_eq!(
        engine
            .authorize(&call(
                &alice,
                "RefundTool___process_refund",
                json!({"orderId": "o", "amount": "1"})
            ))
            .effect,
        Effect::Deny
    );
    assert_eq!(
        engine
            .authorize(&call(&alice, "orders___get_order", json!({"orderId": "1"})))
            .effect,
        Effect::Allow
    );

    // The inventory tool disappears: a forbid no longer validates, so the engine fails closed.
    let report = engine.update_tools(&changed[..3]).unwrap();
    assert!(
        report
            .invalid
            .iter()
            .any(|p| p.id == "no_inventory_bulk" && p.forbid)
    );
    let denied = engine.authorize(&call(&alice, "orders___get_order", json!({"orderId": "1"})));
    assert_eq!(denied.effect, Effect::Deny);
    assert!(
        denied.reason.contains("no_inventory_bulk"),
        "{}",
        denied.reason
    );

    // Restoring the catalogue restores the decisions.
    let report = engine.update_tools(&tools()).unwrap();
    assert!(report.invalid.is_empty());
    assert_eq!(
        engine
            .authorize(&call(&alice, "orders___get_order", json!({"orderId": "1"})))
            .effect,
        Effect::Allow
    );
}

#[test]
fn policy_directories_load_with_a_manifest() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("refund_limit.cedar"), REFUND_LIMIT).unwrap();
    std::fs::write(
        dir.path().join("trial.cedar"),
        r#"forbid(principal, action, resource);"#,
    )
    .unwrap();
    std::fs::write(dir.path().join("ignored.txt"), "not a policy").unwrap();
    let plain = PolicyBundle::load_dir(dir.path()).unwrap();
    assert_eq!(
        plain
            .policies
            .iter()
            .map(|p| p.id.as_str())
            .collect::<Vec<_>>(),
        ["refund_limit", "trial"]
    );

    std::fs::write(
        dir.path().join("engine.json"),
        r#"{"name": "RefundEngine", "policies": [
            {"name": "refund_limit", "file": "refund_limit.cedar"},
            {"name": "trial", "file": "trial.cedar", "status": "LOG_ONLY"}
        ]}"#,
    )
    .unwrap();
    let bundle = PolicyBundle::load_dir(dir.path()).unwrap();
    assert_eq!(bundle.name, "RefundEngine");
    assert_eq!(
        bundle.get("trial").map(|p| p.status),
        Some(PolicyStatus::LogOnly)
    );
    let engine = PolicyEngine::new(bundle, EngineMode::Enforce, &tools()).unwrap();
    let alice = user("alice", json!({}));
    assert_eq!(
        engine
            .authorize(&call(
                &alice,
                "RefundTool___process_refund",
                json!({"orderId": "o", "amount": 5})
            ))
            .effect,
        Effect::Allow
    );

    std::fs::write(
        dir.path().join("engine.json"),
        r#"{"policies": [{"name": "x"}]}"#,
    )
    .unwrap();
    assert!(matches!(
        PolicyBundle::load_dir(dir.path()),
        Err(PolicyError::Manifest { .. })
    ));
}
