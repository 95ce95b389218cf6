//! The append-only audit log of policy decisions.

use std::collections::VecDeque;
use std::fs::OpenOptions;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;

use parking_lot::Mutex;
use serde::Serialize;
use serde_json::Value;

use crate::error::PolicyError;

/// One decision as recorded in the audit log.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AuditRecord {
    /// When the decision was made (RFC 3339).
    pub time: String,
    /// Policy engine name.
    pub engine: String,
    /// ENFORCE or LOG_ONLY.
    pub mode: String,
    /// The request: principal, action, resource, input and Corral context.
    pub request: Value,
    /// ALLOW or DENY.
    pub decision: String,
    /// Whether the decision was enforced.
    pub enforced: bool,
    /// Policies that determined the decision.
    pub determining_policies: Vec<String>,
    /// The decision had LOG_ONLY policies counted, when they change it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_only_decision: Option<String>,
    /// LOG_ONLY policies that would have determined it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub log_only_policies: Vec<String>,
    /// Evaluation errors (policies that errored are skipped, as in Cedar).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    /// Evaluation time in microseconds.
    pub evaluation_micros: f64,
}

/// Where decisions are recorded.
pub trait AuditSink: Send + Sync {
    /// Records one decision.
    fn record(&self, record: &AuditRecord);
}

/// Keeps the most recent decisions in memory.
#[derive(Debug)]
pub struct MemoryAudit {
    records: Mutex<VecDeque<AuditRecord>>,
    capacity: usize,
}

impl MemoryAudit {
    /// Keeps up to `capacity` records, dropping the oldest.
    pub fn new(capacity: usize) -> Self {
        Self {
            records: Mutex::new(VecDeque::with_capacity(capacity.min(1024))),
            capacity: capacity.max(1),
        }
    }

    /// The records held, oldest first.
    pub fn records(&self) -> Vec<AuditRecord> {
        self.records.lock().iter().cloned().collect()
    }
}

impl AuditSink for MemoryAudit {
    fn record(&self, record: &AuditRecord) {
        let mut records = self.records.lock();
        if records.len() == self.capacity {
            records.pop_front();
        }
        records.push_back(record.clone());
    }
}

/// Appends decisions as JSON lines to a file, from a writer thread so a
/// decision never waits on the disk. Records are flushed after every batch
/// and on drop.
#[derive(Debug)]
pub struct FileAudit {
    path: PathBuf,
    sender: Mutex<Option<mpsc::Sender<String>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl FileAudit {
    /// Opens (creating if needed) `path` for appending.
    pub fn open(path: &Path) -> Result<Self, PolicyError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| PolicyError::Io {
                path: parent.display().to_string(),
                message: e.to_string(),
            })?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| PolicyError::Io {
                path: path.display().to_string(),
                message: e.to_string(),
            })?;
        let (sender, receiver) = mpsc::channel::<String>();
        let shown = path.display().to_string();
        let writer = std::thread::Builder::new()
            .name("corral-policy-audit".into())
            .spawn(move || {
                let mut out = BufWriter::new(file);
                while let Ok(line) = receiver.recv() {
                    let mut failed = writeln!(out, "{line}").is_err();
                    while let Ok(more) = receiver.try_recv() {
                        failed |= writeln!(out, "{more}").is_err();
                    }
                    failed |= out.flush().is_err();
                    if failed {
                        tracing::error!(path = %shown, "cannot write the policy audit log");
                    }
                }
                let _ = out.flush();
            })
            .map_err(|e| PolicyError::Io {
                path: path.display().to_string(),
                message: e.to_string(),
            })?;
        Ok(Self {
            path: path.to_path_buf(),
            sender: Mutex::new(Some(sender)),
            writer: Mutex::new(Some(writer)),
        })
    }

    /// The log file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes every queued record and stops the writer.
    pub fn close(&self) {
        self.sender.lock().take();
        if let Some(writer) = self.writer.lock().take() {
            let _ = writer.join();
        }
    }
}

impl AuditSink for FileAudit {
    fn record(&self, record: &AuditRecord) {
        let Ok(line) = serde_json::to_string(record) else {
            return;
        };
        if let Some(sender) = self.sender.lock().as_ref() {
            let _ = sender.send(line);
        }
    }
}

impl Drop for FileAudit {
    fn drop(&mut self) {
        self.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(decision: &str) -> AuditRecord {
        AuditRecord {
            time: "2026-11-23T10:00:00Z".into(),
            engine: "e".into(),
            mode: "ENFORCE".into(),
            request: serde_json::json!({"action": "t___u"}),
            decision: decision.into(),
            enforced: true,
            determining_policies: vec!["p".into()],
            log_only_decision: None,
            log_only_policies: vec![],
            errors: vec![],
            evaluation_micros: 1.5,
        }
    }

    #[test]
    fn file_audit_appends_json_lines_across_reopens() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("audit/decisions.jsonl");
        let audit = FileAudit::open(&path).unwrap_or_else(|e| panic!("{e}"));
        audit.record(&record("ALLOW"));
        audit.close();
        let audit = FileAudit::open(&path).unwrap_or_else(|e| panic!("{e}"));
        audit.record(&record("DENY"));
        drop(audit);
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let decisions: Vec<String> = text
            .lines()
            .map(|l| {
                serde_json::from_str::<Value>(l)
                    .map(|v| v["decision"].to_string())
                    .unwrap_or_default()
            })
            .collect();
        assert_eq!(decisions, ["\"ALLOW\"", "\"DENY\""]);
    }

    #[test]
    fn memory_audit_keeps_the_latest() {
        let audit = MemoryAudit::new(2);
        for d in ["A", "B", "C"] {
            audit.record(&record(d));
        }
        let kept: Vec<String> = audit.records().into_iter().map(|r| r.decision).collect();
        assert_eq!(kept, ["B", "C"]);
    }
}
