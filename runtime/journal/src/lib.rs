//! Session journals: per session, an append-only log of what the session
//! started with, each invocation, every host call in order with its answer,
//! and each response — the record that replay, fork and resume read back.
//!
//! Journals live in the storage seam (`corral-storage`, sled by default).
//! One session's entries sit under one key prefix, numbered by offset, so
//! they read back in order; a small per-session header keeps the next
//! offset, the byte count (for the size cap) and the times (for retention).
//! An append is durable when it returns.

mod entry;
mod error;
mod keys;
mod segment;
mod store;
#[cfg(test)]
mod test_entries;

pub use entry::{Entry, ForkPoint, HostCall, Record, SessionStart};
pub use error::JournalError;
pub use segment::{RecordedCall, RecordedInvocation, RecordedResponse, Segment, segments};
pub use store::{JournalConfig, JournalStore, SandboxSummary, SessionSummary};
