//! Policy decision latency: `PolicyEngine::authorize` (request → Cedar
//! context and entities → indexed evaluation → decision) with 1, 100 and
//! 10,000 policies over a 100-tool catalogue. Prints a table.
//!
//! `cargo bench -p corral-policy --bench decision` (`CORRAL_BENCH_POLICIES=100`
//! runs only the rows with that many policies).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Instant;

use corral_policy::{
    AuthorizationRequest, CallContext, EngineMode, PolicyBundle, PolicyEngine, PolicyHook,
    PolicyStatus, Principal, ToolSignature, ValidationMode,
};
use hdrhistogram::Histogram;
use serde_json::json;

// The allocator the `corral` binary ships with: a decision is many small
// allocations (Cedar values, entities), which glibc's malloc serves slowly.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const TOOLS: usize = 100;
const SAMPLES: usize = 20_000;

fn tools() -> Vec<ToolSignature> {
    (0..TOOLS)
        .map(|i| {
            ToolSignature::new(
                format!("target{}___op{i}", i % 10),
                json!({"type": "object", "properties": {
                    "orderId": {"type": "string"},
                    "amount": {"type": "number"},
                    "express": {"type": "boolean"}
                }, "required": ["orderId", "amount"]}),
            )
        })
        .collect()
}

/// `count` policies: per-user permits spread over the tools with an input
/// condition, role-based permits, and forbids (one in ten).
fn scoped_policies(count: usize) -> String {
    let mut text = String::new();
    for i in 0..count {
        let tool = format!("target{}___op{}", (i % TOOLS) % 10, i % TOOLS);
        let policy = match i % 10 {
            0 => format!(
                "@id(\"p{i}\") forbid(principal == AgentCore::OAuthUser::\"user{i}\", action == AgentCore::Action::\"{tool}\", resource) when {{ context.input.amount.greaterThan(decimal(\"10000.0\")) }};\n"
            ),
            1 => format!(
                "@id(\"p{i}\") permit(principal is AgentCore::OAuthUser, action == AgentCore::Action::\"{tool}\", resource) when {{ principal.hasTag(\"role\") && principal.getTag(\"role\") == \"role{i}\" }};\n"
            ),
            _ => format!(
                "@id(\"p{i}\") permit(principal == AgentCore::OAuthUser::\"user{i}\", action == AgentCore::Action::\"{tool}\", resource) when {{ context.input.amount.lessThan(decimal(\"500.0\")) }};\n"
            ),
        };
        text.push_str(&policy);
    }
    text
}

/// `count` policies all naming the same tool with no principal scope: the
/// index cannot narrow them, Cedar evaluates every one.
fn unscoped_policies(count: usize) -> String {
    (0..count)
        .map(|i| {
            format!(
                "@id(\"u{i}\") permit(principal, action == AgentCore::Action::\"target2___op2\", resource) when {{ principal.hasTag(\"role\") && principal.getTag(\"role\") == \"role{i}\" && context.input.amount.lessThan(decimal(\"500.0\")) }};\n"
            )
        })
        .collect()
}

fn engine(text: &str) -> PolicyEngine {
    let mut bundle = PolicyBundle::new("bench");
    bundle.max_policies = 100_000;
    bundle
        .add_document(
            "bench",
            "bench.cedar",
            text,
            PolicyStatus::Active,
            ValidationMode::FailOnAnyFindings,
        )
        .unwrap();
    PolicyEngine::new(bundle, EngineMode::Enforce, &tools()).unwrap()
}

fn request(user: &str, role: &str) -> AuthorizationRequest {
    AuthorizationRequest {
        principal: Principal::OAuthUser {
            id: user.into(),
            claims: json!({"sub": user, "role": role, "scope": "orders:read orders:write"})
                .as_object()
                .cloned()
                .unwrap(),
        },
        tool: "target2___op2".into(),
        gateway: "gw-bench-0123456789".into(),
        input: json!({"orderId": "o-1", "amount": 120.5, "express": true}),
        context: CallContext::default(),
    }
}

fn measure(
    engine: &PolicyEngine,
    request: &AuthorizationRequest,
    samples: usize,
) -> Histogram<u64> {
    for _ in 0..samples.min(1_000) {
        std::hint::black_box(engine.authorize(request));
    }
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 10_000_000_000, 3).unwrap();
    for _ in 0..samples {
        let started = Instant::now();
        std::hint::black_box(engine.authorize(request));
        histogram
            .record(started.elapsed().as_nanos().max(1) as u64)
            .unwrap();
    }
    histogram
}

fn us(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

fn main() {
    println!("\n| policies | scenario | decision | p50 | p99 | load + validate |");
    println!("|---|---|---|---|---|---|");
    for (count, scenario, text) in [
        (
            1,
            "scoped",
            scoped_policies(3)
                .lines()
                .nth(2)
                .unwrap_or_default()
                .to_string(),
        ),
        (100, "scoped", scoped_policies(100)),
        (10_000, "scoped", scoped_policies(10_000)),
        (100, "100 on one tool, unscoped", unscoped_policies(100)),
        (
            10_000,
            "10,000 on one tool, unscoped",
            unscoped_policies(10_000),
        ),
    ] {
        if std::env::var("CORRAL_BENCH_POLICIES").is_ok_and(|only| only != count.to_string()) {
            continue;
        }
        let started = Instant::now();
        let engine = engine(&text);
        let load = started.elapsed();
        // user2 is permitted on target2___op2 by the scoped sets (policy p2 and every 100th after it).
        let req = if scenario == "scoped" {
            request("user2", "none")
        } else {
            request("user9", "role42")
        };
        let decision = engine.authorize(&req);
        // Cedar evaluates every unscoped policy: fewer samples for the slow case.
        let samples = if text.len() > 1_000_000 { 200 } else { SAMPLES };
        let histogram = measure(&engine, &req, samples);
        println!(
            "| {count} | {scenario} | {:?} | {:.1} µs | {:.1} µs | {:.0} ms |",
            decision.effect,
            us(&histogram, 0.5),
            us(&histogram, 0.99),
            load.as_secs_f64() * 1000.0
        );
    }
}
