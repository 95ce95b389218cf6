//! Per-sandbox resource limits and the wasmtime limiter that enforces them.

use std::time::Duration;

/// Limits applied to one sandbox.
#[derive(Debug, Clone)]
pub struct SandboxLimits {
    /// Cap on the sum of the guest's linear memories, in bytes.
    pub memory_bytes: usize,
    /// Guest execution time allowed per call (measured in epoch ticks).
    pub cpu_time: Duration,
    /// Cap on table elements per table.
    pub table_elements: usize,
    /// Cap on bytes of guest stdout/stderr kept per sandbox.
    pub output_bytes: usize,
}

impl Default for SandboxLimits {
    fn default() -> Self {
        Self {
            memory_bytes: 128 << 20,
            cpu_time: Duration::from_secs(60),
            table_elements: 100_000,
            output_bytes: 64 << 10,
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
