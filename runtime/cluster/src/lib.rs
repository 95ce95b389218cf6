//! Replicas of `corral serve` sharing one store (PostgreSQL): which
//! replica holds which live session.
//!
//! Each replica registers under a lease it renews by heartbeat
//! ([`SessionDirectory::heartbeat`], every [`ClusterConfig::heartbeat`]).
//! A session is placed on the replica that first claims it
//! ([`SessionDirectory::place`]), by compare-and-swap, so two replicas
//! receiving one session at once never both run it; the other forwards to
//! the owner's advertised address. When the owner's lease has lapsed
//! (killed, cut off) the next replica asked takes the session over and
//! resumes it from its journal. A replica that cannot renew its lease hands
//! its sessions off before others may take them ([`spawn_heartbeat`]).
//!
//! Clocks: leases expire by the wall clock of the replica that reads them,
//! so replicas' clocks must agree to well within the lease (NTP does).

mod directory;
mod error;
mod heartbeat;
mod record;

pub use directory::{ClaimGuard, Placement, SessionDirectory};
pub use error::DirectoryError;
pub use heartbeat::{LocalSessions, spawn_heartbeat};
pub use record::{Owner, ReplicaRecord, SessionRecord};

use std::time::Duration;

/// How a replica joins the cluster.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// This replica's id (unique per process: a restart is a new replica).
    pub replica_id: String,
    /// Base URL other replicas forward requests to (`http://10.0.0.5:8080`).
    pub address: String,
    /// How long a replica's lease lasts without a heartbeat [default 3 s]:
    /// how soon sessions of a replica that died move to others.
    pub lease: Duration,
    /// How often the lease is renewed [default 1 s]; well under `lease`.
    pub heartbeat: Duration,
}

impl ClusterConfig {
    /// A replica advertising `address`, with a fresh id and the default
    /// lease (3 s) and heartbeat (1 s).
    pub fn new(address: impl Into<String>) -> Self {
        Self {
            replica_id: uuid::Uuid::new_v4().simple().to_string(),
            address: address.into(),
            lease: Duration::from_secs(3),
            heartbeat: Duration::from_secs(1),
        }
    }
}

/// Milliseconds since the Unix epoch by this machine's clock.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
