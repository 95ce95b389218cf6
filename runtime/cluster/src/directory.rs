//! [`SessionDirectory`]: claims, forwards and takes over sessions.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use corral_storage::{ScanStart, Storage, WriteBatch};
use parking_lot::Mutex;

use crate::error::DirectoryError;
use crate::record::{
    Owner, REPLICA_PREFIX, ReplicaRecord, SESSION_PREFIX, SessionRecord, decode, encode,
    replica_key, session_key,
};
use crate::{ClusterConfig, now_ms};

/// Times a placement re-reads a record another replica changed under it.
const PLACE_ATTEMPTS: usize = 8;

/// This replica's own lease ends this much before others may take its
/// sessions, so it stops serving them first.
const FENCE_MARGIN: Duration = Duration::from_millis(750);

/// Where a session runs.
#[derive(Debug)]
pub enum Placement {
    /// Here; keep the guard while the request is served. `took_over_from`
    /// names the replica whose lease lapsed, when this claim moved it.
    Local {
        /// Marks the session in use until dropped.
        guard: ClaimGuard,
        /// The previous owner, when the session was taken over.
        took_over_from: Option<String>,
    },
    /// On another live replica: forward the request there.
    Remote(Owner),
}

/// A session this replica holds, with requests in flight.
#[derive(Debug, Default)]
struct Held {
    in_flight: usize,
}

/// State shared with claim guards.
#[derive(Debug, Default)]
struct Local {
    /// Until when this replica may serve its sessions.
    lease_until: Option<Instant>,
    held: HashMap<String, Held>,
}

/// Marks a held session in use (an invocation is being served), so it is
/// not released meanwhile.
#[derive(Debug)]
pub struct ClaimGuard {
    local: Arc<Mutex<Local>>,
    session: String,
}

impl Drop for ClaimGuard {
    fn drop(&mut self) {
        if let Some(held) = self.local.lock().held.get_mut(&self.session) {
            held.in_flight = held.in_flight.saturating_sub(1);
        }
    }
}

/// Which replica holds which session, in a store all replicas share.
pub struct SessionDirectory {
    storage: Arc<dyn Storage>,
    config: ClusterConfig,
    local: Arc<Mutex<Local>>,
}

impl std::fmt::Debug for SessionDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionDirectory")
            .field("replica", &self.config.replica_id)
            .finish_non_exhaustive()
    }
}

impl SessionDirectory {
    /// A directory in `storage` (its own namespace) for this replica; it
    /// serves sessions once [`SessionDirectory::heartbeat`] has registered it.
    pub fn new(storage: Arc<dyn Storage>, config: ClusterConfig) -> Self {
        Self {
            storage,
            config,
            local: Arc::default(),
        }
    }

    /// This replica's id.
    pub fn replica(&self) -> &str {
        &self.config.replica_id
    }

    /// How this replica is configured.
    pub fn config(&self) -> &ClusterConfig {
        &self.config
    }

    /// Registers this replica, or renews its lease; until it returns `Ok`
    /// again, the replica serves its sessions only until the previous lease
    /// (less a margin) ends.
    pub fn heartbeat(&self) -> Result<(), DirectoryError> {
        let started = Instant::now();
        let record = ReplicaRecord {
            id: self.config.replica_id.clone(),
            address: self.config.address.clone(),
            expires_ms: now_ms() + self.config.lease.as_millis() as u64,
        };
        let mut batch = WriteBatch::default();
        batch.put(replica_key(&record.id), encode(&record));
        self.storage.commit(batch)?;
        let until = started + self.config.lease.saturating_sub(FENCE_MARGIN);
        self.local.lock().lease_until = Some(until);
        Ok(())
    }

    /// Whether this replica's lease runs: it may serve its sessions.
    pub fn holds_lease(&self) -> bool {
        self.local
            .lock()
            .lease_until
            .is_some_and(|until| until > Instant::now())
    }

    /// Places `session` (first invoked on `agent`): here when this replica
    /// holds it, claims it when nobody does, takes it over when its owner's
    /// lease has lapsed; else names the live owner.
    pub fn place(&self, session: &str, agent: &str) -> Result<Placement, DirectoryError> {
        if !self.holds_lease() {
            return Err(DirectoryError::LeaseLapsed);
        }
        if let Some(guard) = self.guard_if_held(session) {
            return Ok(Placement::Local {
                guard,
                took_over_from: None,
            });
        }
        let key = session_key(session);
        let mine = SessionRecord {
            session_id: session.to_string(),
            agent: agent.to_string(),
            replica: self.config.replica_id.clone(),
            address: self.config.address.clone(),
            since_ms: now_ms(),
        };
        for _ in 0..PLACE_ATTEMPTS {
            let stored = self.storage.get(&key)?;
            let took_over_from = match &stored {
                None => None,
                Some(bytes) => {
                    let record: SessionRecord = decode(&key, bytes)?;
                    if record.replica == self.config.replica_id {
                        return Ok(self.hold(session, None));
                    }
                    if self.replica_alive(&record.replica)? {
                        return Ok(Placement::Remote(Owner {
                            replica: record.replica,
                            address: record.address,
                        }));
                    }
                    Some(record.replica)
                }
            };
            if self
                .storage
                .compare_and_swap(&key, stored.as_deref(), Some(encode(&mine)))?
            {
                if let Some(previous) = &took_over_from {
                    tracing::info!(session.id = %session, from = %previous, "took the session over from a replica whose lease lapsed");
                }
                return Ok(self.hold(session, took_over_from));
            }
        }
        Err(DirectoryError::Contended(session.to_string()))
    }

    /// The session's owner, if a live replica other than this one holds it.
    pub fn owner_elsewhere(&self, session: &str) -> Result<Option<Owner>, DirectoryError> {
        let key = session_key(session);
        let Some(bytes) = self.storage.get(&key)? else {
            return Ok(None);
        };
        let record: SessionRecord = decode(&key, &bytes)?;
        if record.replica == self.config.replica_id || !self.replica_alive(&record.replica)? {
            return Ok(None);
        }
        Ok(Some(Owner {
            replica: record.replica,
            address: record.address,
        }))
    }

    /// Gives up `session` (ended, stopped or handed off) unless requests
    /// for it are in flight; returns whether this replica held it.
    pub fn release(&self, session: &str) -> Result<bool, DirectoryError> {
        {
            let mut local = self.local.lock();
            match local.held.get(session) {
                Some(held) if held.in_flight > 0 => return Ok(false),
                Some(_) => {
                    local.held.remove(session);
                }
                None => {}
            }
        }
        self.delete_if_mine(session)
    }

    /// Gives up every held session and the replica's registration
    /// (graceful shutdown: others may take them at once); returns how many
    /// sessions it held.
    pub fn release_all(&self) -> Result<usize, DirectoryError> {
        let held: Vec<String> = {
            let mut local = self.local.lock();
            local.lease_until = None;
            local.held.drain().map(|(session, _)| session).collect()
        };
        for session in &held {
            self.delete_if_mine(session)?;
        }
        let mut batch = WriteBatch::default();
        batch.delete(replica_key(&self.config.replica_id));
        self.storage.commit(batch)?;
        Ok(held.len())
    }

    /// Forgets every held session without touching the store (the lease
    /// lapsed: others may own them now); returns them.
    pub(crate) fn forget_all(&self) -> Vec<String> {
        self.local
            .lock()
            .held
            .drain()
            .map(|(session, _)| session)
            .collect()
    }

    /// Held sessions with no request in flight.
    pub(crate) fn idle_held(&self) -> Vec<String> {
        self.local
            .lock()
            .held
            .iter()
            .filter(|(_, held)| held.in_flight == 0)
            .map(|(session, _)| session.clone())
            .collect()
    }

    /// Every placed session, with whether its owner's lease runs.
    pub fn sessions(&self) -> Result<Vec<(SessionRecord, bool)>, DirectoryError> {
        let now = now_ms();
        let replicas: HashMap<String, ReplicaRecord> = self
            .replicas()?
            .into_iter()
            .map(|r| (r.id.clone(), r))
            .collect();
        let mut out = Vec::new();
        let mut failed = None;
        self.storage.scan(
            SESSION_PREFIX.as_bytes(),
            ScanStart::Beginning,
            false,
            &mut |key, value| match decode::<SessionRecord>(key, value) {
                Ok(record) => {
                    let alive = replicas
                        .get(&record.replica)
                        .is_some_and(|r| r.alive_at(now));
                    out.push((record, alive));
                    ControlFlow::Continue(())
                }
                Err(error) => {
                    failed = Some(error);
                    ControlFlow::Break(())
                }
            },
        )?;
        match failed {
            Some(error) => Err(error),
            None => Ok(out),
        }
    }

    /// Every registered replica (live or lapsed).
    pub fn replicas(&self) -> Result<Vec<ReplicaRecord>, DirectoryError> {
        let mut out = Vec::new();
        let mut failed = None;
        self.storage.scan(
            REPLICA_PREFIX.as_bytes(),
            ScanStart::Beginning,
            false,
            &mut |key, value| match decode::<ReplicaRecord>(key, value) {
                Ok(record) => {
                    out.push(record);
                    ControlFlow::Continue(())
                }
                Err(error) => {
                    failed = Some(error);
                    ControlFlow::Break(())
                }
            },
        )?;
        match failed {
            Some(error) => Err(error),
            None => Ok(out),
        }
    }

    /// Deletes registrations of replicas whose lease ended more than
    /// `older_than` ago and that hold no session; returns how many.
    pub fn forget_lapsed_replicas(&self, older_than: Duration) -> Result<usize, DirectoryError> {
        let cutoff = now_ms().saturating_sub(older_than.as_millis() as u64);
        let holding: std::collections::HashSet<String> = self
            .sessions()?
            .into_iter()
            .map(|(record, _)| record.replica)
            .collect();
        let mut forgotten = 0;
        for replica in self.replicas()? {
            if replica.expires_ms < cutoff && !holding.contains(&replica.id) {
                let key = replica_key(&replica.id);
                if self
                    .storage
                    .compare_and_swap(&key, Some(&encode(&replica)), None)?
                {
                    forgotten += 1;
                }
            }
        }
        Ok(forgotten)
    }

    fn guard_if_held(&self, session: &str) -> Option<ClaimGuard> {
        let mut local = self.local.lock();
        let held = local.held.get_mut(session)?;
        held.in_flight += 1;
        Some(ClaimGuard {
            local: self.local.clone(),
            session: session.to_string(),
        })
    }

    fn hold(&self, session: &str, took_over_from: Option<String>) -> Placement {
        self.local
            .lock()
            .held
            .entry(session.to_string())
            .or_default()
            .in_flight += 1;
        Placement::Local {
            guard: ClaimGuard {
                local: self.local.clone(),
                session: session.to_string(),
            },
            took_over_from,
        }
    }

    fn replica_alive(&self, replica: &str) -> Result<bool, DirectoryError> {
        let key = replica_key(replica);
        Ok(match self.storage.get(&key)? {
            Some(bytes) => decode::<ReplicaRecord>(&key, &bytes)?.alive_at(now_ms()),
            None => false,
        })
    }

    /// Deletes the session's record if this replica still owns it.
    fn delete_if_mine(&self, session: &str) -> Result<bool, DirectoryError> {
        let key = session_key(session);
        let Some(bytes) = self.storage.get(&key)? else {
            return Ok(false);
        };
        let record: SessionRecord = decode(&key, &bytes)?;
        if record.replica != self.config.replica_id {
            return Ok(false);
        }
        Ok(self.storage.compare_and_swap(&key, Some(&bytes), None)?)
    }
}
