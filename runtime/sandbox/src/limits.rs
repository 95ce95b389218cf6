//! Per-sandbox resource limits and the wasmtime limiter that enforces them.

use std::time::Duration;

/// Limits applied to one sandbox: what the guest may use inside it (memory,
/// CPU, tables, output) and every host-held byte it can cause outside it
/// (log lines, span events, response bytes, memory writes). This is the one
/// place these limits are defined; past a host-side limit the guest gets a
/// typed `limit-exceeded` error and the excess is dropped and counted, never
/// stored.
#[derive(Debug, Clone)]
pub struct SandboxLimits {
    /// Cap on the sum of the guest's linear memories, in bytes (128 MiB).
    pub memory_bytes: usize,
    /// Guest execution time allowed per call, measured in epoch ticks (60 s).
    pub cpu_time: Duration,
    /// Cap on table elements per table (100,000).
    pub table_elements: usize,
    /// Cap on bytes of guest stdout/stderr kept per sandbox (64 KiB).
    pub output_bytes: usize,
    /// Log lines (`corral:agent/log`) one invocation may write (1,000).
    pub log_lines_per_invocation: u32,
    /// Bytes of log messages, keys and values one invocation may write (1 MiB).
    pub log_bytes_per_invocation: usize,
    /// Longest log message kept; longer ones are truncated (8 KiB).
    pub log_message_bytes: usize,
    /// Fields kept per log line; the rest are dropped (32).
    pub log_fields_per_line: usize,
    /// Longest log field key or value kept; longer ones are truncated (1 KiB).
    pub log_field_bytes: usize,
    /// Guest-caused events (log lines) recorded on one span; the overflow is
    /// counted on the span as `corral.events.dropped` (128).
    pub span_events_per_span: u32,
    /// Bytes of one response: streamed chunks plus the final payload (100 MiB,
    /// AgentCore's payload limit).
    pub response_bytes: usize,
    /// Memory events one session may append per minute (600).
    pub memory_events_per_minute: u32,
    /// Payload bytes of memory events one session may append per minute (16 MiB).
    pub memory_bytes_per_minute: usize,
}

impl Default for SandboxLimits {
    fn default() -> Self {
        Self {
            memory_bytes: 128 << 20,
            cpu_time: Duration::from_secs(60),
            table_elements: 100_000,
            output_bytes: 64 << 10,
            log_lines_per_invocation: 1_000,
            log_bytes_per_invocation: 1 << 20,
            log_message_bytes: 8 << 10,
            log_fields_per_line: 32,
            log_field_bytes: 1 << 10,
            span_events_per_span: 128,
            response_bytes: 100 << 20,
            memory_events_per_minute: 600,
            memory_bytes_per_minute: 16 << 20,
        }
    }
}

/// Tracks and caps a sandbox's memory and table growth.
#[derive(Debug)]
pub struct SandboxLimiter {
    memory_limit: usize,
    table_limit: usize,
    memory_used: usize,
    memory_denied: bool,
}

impl SandboxLimiter {
    /// A limiter for the given limits.
    pub fn new(limits: &SandboxLimits) -> Self {
        Self {
            memory_limit: limits.memory_bytes,
            table_limit: limits.table_elements,
            memory_used: 0,
            memory_denied: false,
        }
    }

    /// Bytes of linear memory the guest currently holds.
    pub fn memory_used(&self) -> usize {
        self.memory_used
    }

    /// Whether a growth request was refused because of the cap.
    pub fn memory_denied(&self) -> bool {
        self.memory_denied
    }
}

impl wasmtime::ResourceLimiter for SandboxLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let after = self
            .memory_used
            .saturating_sub(current)
            .saturating_add(desired);
        if after > self.memory_limit || maximum.is_some_and(|max| desired > max) {
            self.memory_denied = true;
            return Ok(false);
        }
        self.memory_used = after;
        Ok(true)
    }

    fn memory_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        self.memory_denied = true;
        Ok(())
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= self.table_limit && maximum.is_none_or(|max| desired <= max))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::ResourceLimiter;

    #[test]
    fn caps_total_memory_and_flags_denial() {
        let mut limiter = SandboxLimiter::new(&SandboxLimits {
            memory_bytes: 1 << 20,
            ..SandboxLimits::default()
        });
        assert!(limiter.memory_growing(0, 512 << 10, None).unwrap());
        assert_eq!(limiter.memory_used(), 512 << 10);
        assert!(limiter.memory_growing(512 << 10, 1 << 20, None).unwrap());
        assert!(!limiter.memory_denied());
        assert!(!limiter.memory_growing(1 << 20, 2 << 20, None).unwrap());
        assert!(limiter.memory_denied());
        assert_eq!(limiter.memory_used(), 1 << 20);
    }

    #[test]
    fn respects_table_cap() {
        let mut limiter = SandboxLimiter::new(&SandboxLimits {
            table_elements: 10,
            ..SandboxLimits::default()
        });
        assert!(limiter.table_growing(0, 10, None).unwrap());
        assert!(!limiter.table_growing(10, 11, None).unwrap());
    }
}
