//! A bounded, per-session log of guest log lines, guest output and host events.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use corral_sandbox::{LineSink, OutputKind};
use parking_lot::Mutex;
use serde::Serialize;

/// Where a log entry came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogSource {
    /// The guest's `log` interface.
    Guest,
    /// Guest standard output.
    Stdout,
    /// Guest standard error.
    Stderr,
    /// The host (model calls, tool calls, lifecycle).
    Host,
}

/// Severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Very detailed.
    Trace,
    /// Debugging detail.
    Debug,
    /// Normal events.
    Info,
    /// Something unexpected.
    Warn,
    /// A failure.
    Error,
}

impl LogLevel {
    /// Lower-case name.
    pub fn as_str(&self) -> &'static str {
        match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

/// One session log line.
#[derive(Debug, Clone, Serialize)]
pub struct LogEntry {
    /// Position in the session's log (monotonic).
    pub seq: u64,
    /// When it was written.
    pub at: SystemTime,
    /// Origin.
    pub source: LogSource,
    /// Severity.
    pub level: LogLevel,
    /// Text.
    pub message: String,
    /// Structured fields.
    pub fields: Vec<(String, String)>,
}

impl LogEntry {
    fn size(&self) -> usize {
        64 + self.message.len()
            + self
                .fields
                .iter()
                .map(|(k, v)| k.len() + v.len())
                .sum::<usize>()
    }
}

/// Ring buffer of a session's log, bounded in bytes.
pub struct SessionLog {
    session_id: String,
    capacity: usize,
    next_seq: AtomicU64,
    inner: Mutex<LogBuffer>,
}

#[derive(Default)]
struct LogBuffer {
    entries: VecDeque<LogEntry>,
    bytes: usize,
    dropped: u64,
}

impl SessionLog {
    /// An empty log holding at most `capacity` bytes.
    pub fn new(session_id: &str, capacity: usize) -> Self {
        Self {
            session_id: session_id.to_string(),
            capacity,
            next_seq: AtomicU64::new(0),
            inner: Mutex::new(LogBuffer::default()),
        }
    }

    /// Sequence number the next entry will get.
    pub fn next_seq(&self) -> u64 {
        self.next_seq.load(Ordering::Relaxed)
    }

    /// Appends an entry, evicting the oldest ones beyond capacity, and mirrors
    /// it as a `tracing` event.
    pub fn push(
        &self,
        source: LogSource,
        level: LogLevel,
        message: String,
        fields: Vec<(String, String)>,
    ) {
        match level {
            LogLevel::Error | LogLevel::Warn => tracing::warn!(
                session.id = %self.session_id, source = ?source, level = level.as_str(), "{message}"
            ),
            _ => tracing::debug!(
                session.id = %self.session_id, source = ?source, level = level.as_str(), "{message}"
            ),
        }
        let entry = LogEntry {
            seq: self.next_seq.fetch_add(1, Ordering::Relaxed),
            at: SystemTime::now(),
            source,
            level,
            message,
            fields,
        };
        let size = entry.size();
        let mut buffer = self.inner.lock();
        buffer.bytes += size;
        buffer.entries.push_back(entry);
        while buffer.bytes > self.capacity {
            match buffer.entries.pop_front() {
                Some(old) => {
                    buffer.bytes -= old.size();
                    buffer.dropped += 1;
                }
                None => break,
            }
        }
    }

    /// Entries with `seq >= from`, oldest first.
    pub fn since(&self, from: u64) -> Vec<LogEntry> {
        let buffer = self.inner.lock();
        buffer
            .entries
            .iter()
            .filter(|e| e.seq >= from)
            .cloned()
            .collect()
    }

    /// All kept entries.
    pub fn entries(&self) -> Vec<LogEntry> {
        self.since(0)
    }

    /// Entries evicted so far.
    pub fn dropped(&self) -> u64 {
        self.inner.lock().dropped
    }
}

impl LineSink for SessionLog {
    fn line(&self, kind: OutputKind, line: &str) {
        let (source, level) = match kind {
            OutputKind::Stdout => (LogSource::Stdout, LogLevel::Info),
            OutputKind::Stderr => (LogSource::Stderr, LogLevel::Warn),
        };
        self.push(source, level, line.to_string(), Vec::new());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_oldest_beyond_capacity() {
        let log = SessionLog::new("s", 400);
        for i in 0..10 {
            log.push(
                LogSource::Host,
                LogLevel::Info,
                format!("entry {i:02}"),
                Vec::new(),
            );
        }
        let entries = log.entries();
        assert!(entries.len() < 10);
        assert_eq!(entries.last().unwrap().message, "entry 09");
        assert_eq!(log.dropped() as usize + entries.len(), 10);
        assert_eq!(log.since(9).len(), 1);
    }
}
