//! Prometheus metrics at `/metrics`: live sessions, invocations by outcome,
//! latency histograms, traps, model and tool calls, policy denials.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of an invocation.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct InvocationLabels {
    /// Agent runtime name.
    pub agent: String,
    /// `ok`, `agent_error`, `trap`, `timeout`, `rejected`.
    pub outcome: String,
}

/// Labels naming an agent.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AgentLabels {
    /// Agent runtime name.
    pub agent: String,
}

fn latency_histogram() -> Histogram {
    // 100 µs … ~13 s.
    Histogram::new(exponential_buckets(0.0001, 2.0, 18))
}

/// The server's metrics.
pub struct Metrics {
    registry: Registry,
    /// Live sessions (set at scrape time).
    pub sessions_live: Gauge,
    /// Guest memory reserved by live sessions, bytes (set at scrape time).
    pub guest_memory_reserved: Gauge,
    /// Invocations by agent and outcome.
    pub invocations: Family<InvocationLabels, Counter>,
    /// Invocation latency by agent.
    pub latency: Family<AgentLabels, Histogram, fn() -> Histogram>,
    /// Sandboxes ended by a trap or fault.
    pub traps: Family<AgentLabels, Counter>,
    /// Tool calls a policy denied.
    pub policy_denials: Family<AgentLabels, Counter>,
    /// Model calls made.
    pub model_calls: Family<AgentLabels, Counter>,
    /// Tool calls made.
    pub tool_calls: Family<AgentLabels, Counter>,
    /// Trace export counters by sink and kind (set at scrape time).
    trace_spans: Family<TraceLabels, Gauge>,
}

/// Labels of a trace export counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TraceLabels {
    /// `otlp` or `store`.
    sink: String,
    /// `exported`, `dropped` (queue full) or `failed_exports` (requests).
    kind: String,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("corral");
        let sessions_live = Gauge::default();
        let guest_memory_reserved = Gauge::default();
        let invocations = Family::<InvocationLabels, Counter>::default();
        let latency = Family::<AgentLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        let traps = Family::<AgentLabels, Counter>::default();
        let policy_denials = Family::<AgentLabels, Counter>::default();
        let model_calls = Family::<AgentLabels, Counter>::default();
        let tool_calls = Family::<AgentLabels, Counter>::default();
        registry.register(
            "sessions_live",
            "Live agent sessions",
            sessions_live.clone(),
        );
        registry.register(
            "guest_memory_reserved_bytes",
            "Guest memory reserved by live sessions (their memory caps), against the budget",
            guest_memory_reserved.clone(),
        );
        registry.register(
            "invocations",
            "Agent invocations by outcome",
            invocations.clone(),
        );
        registry.register(
            "invocation_duration_seconds",
            "Invocation latency",
            latency.clone(),
        );
        registry.register("traps", "Sandboxes ended by a trap or fault", traps.clone());
        registry.register(
            "policy_denials",
            "Tool calls denied by policy",
            policy_denials.clone(),
        );
        registry.register(
            "model_calls",
            "Model calls made by agents",
            model_calls.clone(),
        );
        registry.register(
            "tool_calls",
            "Tool calls made by agents",
            tool_calls.clone(),
        );
        let trace_spans = Family::<TraceLabels, Gauge>::default();
        registry.register(
            "trace_spans",
            "Spans exported or dropped (full export queue), and failed export requests, by sink",
            trace_spans.clone(),
        );
        Metrics {
            trace_spans,
            registry,
            sessions_live,
            guest_memory_reserved,
            invocations,
            latency,
            traps,
            policy_denials,
            model_calls,
            tool_calls,
        }
    }
}

impl Metrics {
    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let stats = corral_telemetry::export_stats();
        for (sink, counters) in [("otlp", stats.otlp), ("store", stats.store)] {
            for (kind, value) in [
                ("exported", counters.exported),
                ("dropped", counters.dropped),
                ("failed_exports", counters.failed_exports),
            ] {
                self.trace_spans
                    .get_or_create(&TraceLabels {
                        sink: sink.into(),
                        kind: kind.into(),
                    })
                    .set(i64::try_from(value).unwrap_or(i64::MAX));
            }
        }
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }

    /// Records an invocation refused before it reached an agent (unknown
    /// runtime or endpoint, bad session id); `agent` is `None` when the
    /// request named no deployed runtime (counted as `unknown`, so callers
    /// cannot mint label values).
    pub fn record_rejected(&self, agent: Option<&str>) {
        self.invocations
            .get_or_create(&InvocationLabels {
                agent: agent.unwrap_or("unknown").to_string(),
                outcome: "rejected".into(),
            })
            .inc();
    }

    /// Records one finished invocation.
    pub fn record(
        &self,
        agent: &str,
        seconds: f64,
        result: &Result<corral_host::InvocationResponse, corral_host::InvokeError>,
    ) {
        let labels = AgentLabels {
            agent: agent.to_string(),
        };
        self.latency.get_or_create(&labels).observe(seconds);
        let outcome = match result {
            Ok(response) => {
                let stats = response.stats;
                self.model_calls
                    .get_or_create(&labels)
                    .inc_by(u64::from(stats.model_calls));
                self.tool_calls
                    .get_or_create(&labels)
                    .inc_by(u64::from(stats.tool_calls));
                self.policy_denials
                    .get_or_create(&labels)
                    .inc_by(u64::from(stats.tool_denials));
                "ok"
            }
            Err(corral_host::InvokeError::Agent { .. }) => "agent_error",
            Err(corral_host::InvokeError::Fault(_)) => {
                self.traps.get_or_create(&labels).inc();
                "trap"
            }
            Err(corral_host::InvokeError::Timeout(_)) => {
                self.traps.get_or_create(&labels).inc();
                "timeout"
            }
            Err(_) => "rejected",
        };
        self.invocations
            .get_or_create(&InvocationLabels {
                agent: agent.to_string(),
                outcome: outcome.into(),
            })
            .inc();
    }
}
