//! The per-session memory write quota: events and payload bytes appended
//! through the `memory` interface per minute
//! ([`SandboxLimits`]`::memory_*_per_minute`).

use std::time::{Duration, Instant};

use corral_sandbox::SandboxLimits;

/// Which per-minute memory write limit a session reached.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MemoryQuotaExceeded {
    /// Too many events this minute.
    #[error("memory_events_per_minute: this session may append at most {0} events per minute")]
    Events(u32),
    /// Too many payload bytes this minute.
    #[error(
        "memory_bytes_per_minute: this session may append at most {0} payload bytes per minute"
    )]
    Bytes(usize),
}

/// Memory events and bytes a session appended in the current one-minute
/// window (a fixed window: cheap, and at most twice the rate across a
/// window boundary).
#[derive(Debug)]
pub(crate) struct MemoryWriteWindow {
    started: Instant,
    events: u32,
    bytes: usize,
}

impl Default for MemoryWriteWindow {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            events: 0,
            bytes: 0,
        }
    }
}

impl MemoryWriteWindow {
    /// Charges one event of `bytes` against the per-minute limits, or names
    /// the limit it would exceed (and charges nothing).
    pub fn charge(
        &mut self,
        bytes: usize,
        limits: &SandboxLimits,
    ) -> Result<(), MemoryQuotaExceeded> {
        if self.started.elapsed() >= Duration::from_secs(60) {
            *self = Self::default();
        }
        if self.events >= limits.memory_events_per_minute {
            return Err(MemoryQuotaExceeded::Events(limits.memory_events_per_minute));
        }
        if self.bytes.saturating_add(bytes) > limits.memory_bytes_per_minute {
            return Err(MemoryQuotaExceeded::Bytes(limits.memory_bytes_per_minute));
        }
        self.events += 1;
        self.bytes = self.bytes.saturating_add(bytes);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_and_bytes_are_capped_per_window() {
        let limits = SandboxLimits {
            memory_events_per_minute: 3,
            memory_bytes_per_minute: 100,
            ..SandboxLimits::default()
        };
        let mut window = MemoryWriteWindow::default();
        assert_eq!(window.charge(60, &limits), Ok(()));
        assert_eq!(
            window.charge(41, &limits),
            Err(MemoryQuotaExceeded::Bytes(100)),
            "a refused event charges nothing"
        );
        assert_eq!(window.charge(40, &limits), Ok(()));
        assert_eq!(window.charge(0, &limits), Ok(()));
        assert_eq!(
            window.charge(0, &limits),
            Err(MemoryQuotaExceeded::Events(3))
        );
        window.started -= Duration::from_secs(61);
        assert_eq!(
            window.charge(100, &limits),
            Ok(()),
            "a new minute starts afresh"
        );
    }
}
