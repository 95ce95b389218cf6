//! Session lifecycle and limit settings.

use std::time::Duration;

use corral_sandbox::SandboxLimits;

/// How sessions live and what they may use. Defaults follow AgentCore Runtime
/// (15 minute idle timeout, 8 hour maximum lifetime).
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Live sessions allowed at once (1,000).
    pub max_sessions: usize,
    /// Live sessions one agent may hold; `None` (default): only `max_sessions`.
    pub max_sessions_per_agent: Option<usize>,
    /// Live sessions one caller (principal or API key) may hold; `None`
    /// (default): unlimited. Invocations without a caller are not counted.
    pub max_sessions_per_caller: Option<usize>,
    /// Guest memory all live sessions may reserve, in bytes; each session
    /// reserves its memory cap, so this bounds the worst case, not the
    /// current use. `None` (default): unlimited.
    pub guest_memory_budget: Option<usize>,
    /// Threads of the dedicated guest executor. With 0 (default) guest code
    /// runs on the caller's tokio runtime, cheapest for embedding and tests;
    /// a server sets it so spinning guests never hold its I/O threads.
    pub guest_threads: usize,
    /// CPU time an invocation may use on the caller's thread before it moves
    /// to the guest executor (200 µs); zero moves every invocation at once.
    /// Trade-off: short invocations skip two thread hand-offs (lower latency,
    /// less CPU), while a guest that computes holds an I/O thread for up to
    /// this budget plus one epoch tick. Unused when `guest_threads` is 0.
    pub guest_inline_budget: Duration,
    /// A session with no invocation for this long is ended.
    pub idle_timeout: Duration,
    /// A session is ended this long after it started, busy or not.
    pub max_lifetime: Duration,
    /// Wall-clock limit of one invocation (guest time plus host calls).
    pub invocation_timeout: Duration,
    /// Limit of one tool call.
    pub tool_timeout: Duration,
    /// Sandbox limits: memory cap, CPU time per invocation, output cap, and
    /// the host-side limits (log, span events, response bytes, memory writes).
    pub limits: SandboxLimits,
    /// Bytes of log lines kept per session (oldest dropped first).
    pub log_capacity_bytes: usize,
    /// Where sessions are journaled (each invocation and every host call,
    /// durable before the response returns); `None` (default): not
    /// journaled.
    pub journal: Option<corral_journal::JournalStore>,
    /// With a journal, a session idle this long drops its sandbox and keeps
    /// only its journal (hibernates); its next invocation resumes it by
    /// replay. `None` (default): sessions keep their sandbox until they end.
    /// Trade-off: hibernated sessions cost no guest memory, but their next
    /// invocation pays a resume (instantiate plus replay).
    pub hibernate_after: Option<Duration>,
    /// The journal is shared by replicas (a database) [default: false]:
    /// the sessions it holds are not taken as this process's hibernated
    /// sessions at start; whichever replica a session is placed on resumes
    /// it.
    pub shared_journal: bool,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            max_sessions: 1_000,
            max_sessions_per_agent: None,
            max_sessions_per_caller: None,
            guest_memory_budget: None,
            guest_threads: 0,
            guest_inline_budget: Duration::from_micros(200),
            idle_timeout: Duration::from_secs(15 * 60),
            max_lifetime: Duration::from_secs(8 * 60 * 60),
            invocation_timeout: Duration::from_secs(15 * 60),
            tool_timeout: Duration::from_secs(60),
            limits: SandboxLimits::default(),
            journal: None,
            hibernate_after: None,
            shared_journal: false,
            log_capacity_bytes: 64 << 10,
        }
    }
}

impl SessionConfig {
    /// The memory cap of a sandbox of an agent with `settings`.
    pub fn memory_cap(&self, settings: &AgentSettings) -> usize {
        settings.memory_bytes.unwrap_or(self.limits.memory_bytes)
    }

    /// How often expired sessions are looked for.
    pub fn reap_interval(&self) -> Duration {
        let soonest = match (&self.journal, self.hibernate_after) {
            (Some(_), Some(hibernate)) => hibernate.min(self.idle_timeout),
            _ => self.idle_timeout,
        };
        (soonest.min(self.max_lifetime) / 4)
            .clamp(Duration::from_millis(10), Duration::from_secs(5))
    }
}

/// Per-agent settings that override the session defaults.
#[derive(Debug, Clone, Default)]
pub struct AgentSettings {
    /// Environment variables the agent sees (nothing else is inherited).
    pub env: Vec<(String, String)>,
    /// Idle timeout for this agent's sessions.
    pub idle_timeout: Option<Duration>,
    /// Maximum lifetime for this agent's sessions.
    pub max_lifetime: Option<Duration>,
    /// Memory cap for this agent's sandboxes.
    pub memory_bytes: Option<usize>,
    /// CPU time per invocation for this agent.
    pub cpu_time: Option<Duration>,
    /// Deterministic limits on the agent loop (beside Cedar policies).
    pub run_limits: RunLimits,
    /// Memory resource this agent's `memory` interface uses; `None` leaves
    /// the choice to the [`MemoryProvider`](crate::MemoryProvider).
    pub memory_id: Option<String>,
}

/// Deterministic limits the host enforces on an agent's loop, whatever the
/// model asks for; `None` is unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunLimits {
    /// Tool calls one session may make over its lifetime.
    pub max_tool_calls_per_session: Option<u32>,
    /// Model calls one invocation may make.
    pub max_model_calls_per_invocation: Option<u32>,
    /// Input plus output tokens one invocation may use; the call that crosses
    /// the limit completes, later calls are refused.
    pub max_tokens_per_invocation: Option<u64>,
}
