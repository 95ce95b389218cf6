//! [`SessionDirectory`]: claims, forwards and takes over sessions.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use corral_storage::{ScanStart, Storage, WriteBatch};
use parking_lot::Mutex;

use crate::error::DirectoryError;
use crate::heartbeat::LocalSessions;
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
    /// Which hold this is: a guard of an earlier hold (before a fence)
    /// leaves this one's count alone.
    generation: u64,
}

/// State shared with claim guards.
#[derive(Debug, Default)]
struct Local {
    /// Until when this replica may serve its sessions.
    lease_until: Option<Instant>,
    held: HashMap<String, Held>,
    /// The last hold's generation.
    generations: u64,
}

impl Local {
    fn lease_runs(&self) -> bool {
        self.lease_until.is_some_and(|until| until > Instant::now())
    }
}

/// Marks a held session in use (an invocation is being served), so it is
/// not released meanwhile.
#[derive(Debug)]
pub struct ClaimGuard {
    local: Arc<Mutex<Local>>,
    session: String,
    generation: u64,
}

impl Drop for ClaimGuard {
    fn drop(&mut self) {
        if let Some(held) = self.local.lock().held.get_mut(&self.session)
            && held.generation == self.generation
        {
            held.in_flight = held.in_flight.saturating_sub(1);
        }
    }
}

/// Which replica holds which session, in a store all replicas share.
pub struct SessionDirectory {
    storage: Arc<dyn Storage>,
    config: ClusterConfig,
    local: Arc<Mutex<Local>>,
    /// The sessions this replica runs, handed off when its lease lapses.
    sessions: Arc<dyn LocalSessions>,
    /// Serialises holds of newly claimed sessions with their hand-off.
    holding: Mutex<()>,
}

impl std::fmt::Debug for SessionDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionDirectory")
            .field("replica", &self.config.replica_id)
            .finish_non_exhaustive()
    }
}

impl SessionDirectory {
    /// A directory in `storage` (its own namespace) for this replica,
    /// whose local sessions are `sessions`; it serves sessions once
    /// [`SessionDirectory::heartbeat`] has registered it.
    pub fn new(
        storage: Arc<dyn Storage>,
        config: ClusterConfig,
        sessions: Arc<dyn LocalSessions>,
    ) -> Self {
        Self {
            storage,
            config,
            local: Arc::default(),
            sessions,
            holding: Mutex::new(()),
        }
    }

    /// The sessions this replica runs.
    pub(crate) fn local_sessions(&self) -> &Arc<dyn LocalSessions> {
        &self.sessions
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
    ///
    /// Renewing a lease that had lapsed first hands off every session this
    /// replica held: another replica may have taken them over meanwhile.
    pub fn heartbeat(&self) -> Result<(), DirectoryError> {
        if !self.holds_lease() {
            self.fence();
        }
        let started = Instant::now();
        let record = ReplicaRecord {
            id: self.config.replica_id.clone(),
            address: self.config.address.clone(),
            expires_ms: now_ms() + self.config.lease.as_millis() as u64,
        };
        let mut batch = WriteBatch::default();
        batch.put(replica_key(&record.id), encode(&record));
        self.storage.commit(batch)?;
        // The previous lease may have run out while this write waited:
        // others may have taken sessions meanwhile, so hand them off before
        // serving under the new one.
        if !self.holds_lease() {
            self.fence();
        }
        let until = started + self.config.lease.saturating_sub(FENCE_MARGIN);
        self.local.lock().lease_until = Some(until);
        Ok(())
    }

    /// Whether this replica's lease runs: it may serve its sessions.
    pub fn holds_lease(&self) -> bool {
        self.local.lock().lease_runs()
    }

    /// Places `session` (first invoked on `agent`): here when this replica
    /// holds it, claims it when nobody does, takes it over when its owner's
    /// lease has lapsed; else names the live owner.
    pub fn place(&self, session: &str, agent: &str) -> Result<Placement, DirectoryError> {
        // A lapsed lease (the store was away) is renewed by the first
        // request after it is back, not only by the next heartbeat.
        if !self.holds_lease() && self.heartbeat().is_err() {
            return Err(DirectoryError::LeaseLapsed);
        }
        if let Some(guard) = self.guard_if_held(session) {
            return Ok(Placement::Local {
                guard,
                took_over_from: None,
            });
        }
        let key = session_key(session);
        for _ in 0..PLACE_ATTEMPTS {
            let stored = self.storage.get(&key)?;
            let took_over_from = match &stored {
                None => None,
                Some(bytes) => {
                    let record: SessionRecord = decode(&key, bytes)?;
                    // Still ours but not held (released, or fenced): taken
                    // afresh below, so a release racing this claim fails
                    // its swap instead of deleting the new hold's record.
                    if record.replica == self.config.replica_id {
                        None
                    } else if self.replica_alive(&record.replica)? {
                        return Ok(Placement::Remote(Owner {
                            replica: record.replica,
                            address: record.address,
                        }));
                    } else {
                        Some(record.replica)
                    }
                }
            };
            let mine = SessionRecord {
                session_id: session.to_string(),
                agent: agent.to_string(),
                replica: self.config.replica_id.clone(),
                address: self.config.address.clone(),
                since_ms: now_ms(),
                claim: uuid::Uuid::new_v4().simple().to_string(),
            };
            if self
                .storage
                .compare_and_swap(&key, stored.as_deref(), Some(encode(&mine)))?
            {
                if let Some(previous) = &took_over_from {
                    tracing::info!(session.id = %session, from = %previous, "took the session over from a replica whose lease lapsed");
                }
                return self.hold(session, took_over_from);
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

    /// Hands off every held session here without touching the store (the
    /// lease lapsed: others may own them now, and resume them from their
    /// journals); returns how many.
    pub(crate) fn fence(&self) -> usize {
        let lost: Vec<String> = self
            .local
            .lock()
            .held
            .drain()
            .map(|(session, _)| session)
            .collect();
        if !lost.is_empty() {
            tracing::warn!(
                sessions = lost.len(),
                "the replica's lease lapsed: handing its sessions off"
            );
        }
        for session in &lost {
            self.sessions.hand_off(session);
        }
        lost.len()
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
        Ok(self
            .records::<SessionRecord>(SESSION_PREFIX)?
            .into_iter()
            .map(|record| {
                let alive = replicas
                    .get(&record.replica)
                    .is_some_and(|r| r.alive_at(now));
                (record, alive)
            })
            .collect())
    }

    /// Every registered replica (live or lapsed).
    pub fn replicas(&self) -> Result<Vec<ReplicaRecord>, DirectoryError> {
        self.records(REPLICA_PREFIX)
    }

    /// Every record under `prefix`, decoded.
    fn records<T: for<'a> serde::Deserialize<'a>>(
        &self,
        prefix: &str,
    ) -> Result<Vec<T>, DirectoryError> {
        let mut out = Vec::new();
        let mut failed = None;
        self.storage.scan(
            prefix.as_bytes(),
            ScanStart::Beginning,
            false,
            &mut |key, value| match decode::<T>(key, value) {
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
        if !local.lease_runs() {
            return None;
        }
        let held = local.held.get_mut(session)?;
        held.in_flight += 1;
        let generation = held.generation;
        Some(ClaimGuard {
            local: self.local.clone(),
            session: session.to_string(),
            generation,
        })
    }

    /// Holds a session just claimed in the store: any sandbox of it left
    /// here from an earlier hold is stale (another replica may have run it
    /// since), so it is handed off first and the session resumes from its
    /// journal. Refused when the lease ran out during the claim.
    fn hold(
        &self,
        session: &str,
        took_over_from: Option<String>,
    ) -> Result<Placement, DirectoryError> {
        // One hold at a time: a concurrent request of this replica that
        // claimed the session first is joined, not handed off.
        let _holding = self.holding.lock();
        if let Some(guard) = self.guard_if_held(session) {
            return Ok(Placement::Local {
                guard,
                took_over_from,
            });
        }
        self.sessions.hand_off(session);
        let mut local = self.local.lock();
        if !local.lease_runs() {
            return Err(DirectoryError::LeaseLapsed);
        }
        local.generations += 1;
        let generation = local.generations;
        let held = local.held.entry(session.to_string()).or_default();
        held.in_flight += 1;
        held.generation = generation;
        Ok(Placement::Local {
            guard: ClaimGuard {
                local: self.local.clone(),
                session: session.to_string(),
                generation,
            },
            took_over_from,
        })
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Barrier;

    use corral_storage::SledStorage;

    use super::*;

    /// Local sessions as a set; records hand-offs.
    #[derive(Default)]
    struct Sessions {
        live: Mutex<Vec<String>>,
        handed_off: Mutex<Vec<String>>,
    }

    impl LocalSessions for Sessions {
        fn is_local(&self, session: &str) -> bool {
            self.live.lock().iter().any(|s| s == session)
        }
        /// Records hand-offs of sessions that had a sandbox here.
        fn hand_off(&self, session: &str) {
            let mut live = self.live.lock();
            if live.iter().any(|s| s == session) {
                live.retain(|s| s != session);
                self.handed_off.lock().push(session.to_string());
            }
        }
    }

    fn replica(
        storage: &Arc<dyn Storage>,
        id: &str,
        lease: Duration,
    ) -> (SessionDirectory, Arc<Sessions>) {
        let sessions = Arc::new(Sessions::default());
        let config = ClusterConfig {
            replica_id: id.into(),
            address: format!("http://{id}"),
            lease,
            heartbeat: lease / 3,
        };
        let directory = SessionDirectory::new(storage.clone(), config, sessions.clone());
        directory.heartbeat().unwrap();
        (directory, sessions)
    }

    fn store() -> Arc<dyn Storage> {
        Arc::new(SledStorage::temporary().unwrap())
    }

    #[test]
    fn the_first_claim_wins_and_others_are_told_the_owner() {
        let storage = store();
        let (a, _) = replica(&storage, "a", Duration::from_secs(30));
        let (b, _) = replica(&storage, "b", Duration::from_secs(30));
        assert!(matches!(
            a.place("s1", "agent").unwrap(),
            Placement::Local {
                took_over_from: None,
                ..
            }
        ));
        match b.place("s1", "agent").unwrap() {
            Placement::Remote(owner) => {
                assert_eq!(owner.replica, "a");
                assert_eq!(owner.address, "http://a");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(b.owner_elsewhere("s1").unwrap().unwrap().replica, "a");
        assert!(a.owner_elsewhere("s1").unwrap().is_none());
        let listed = b.sessions().unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!((listed[0].0.replica.as_str(), listed[0].1), ("a", true));
    }

    #[test]
    fn concurrent_claims_of_one_session_place_it_once() {
        let storage = store();
        let replicas: Vec<SessionDirectory> = (0..4)
            .map(|i| replica(&storage, &format!("r{i}"), Duration::from_secs(30)).0)
            .collect();
        let barrier = Barrier::new(replicas.len());
        let local = std::thread::scope(|scope| {
            let handles: Vec<_> = replicas
                .iter()
                .map(|r| {
                    let barrier = &barrier;
                    scope.spawn(move || {
                        barrier.wait();
                        matches!(r.place("hot", "agent").unwrap(), Placement::Local { .. })
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap())
                .filter(|local| *local)
                .count()
        });
        assert_eq!(local, 1);
    }

    #[test]
    fn a_lapsed_owner_is_taken_over_and_fences_itself_on_return() {
        let storage = store();
        let lease = Duration::from_millis(900);
        let (a, a_sessions) = replica(&storage, "a", lease);
        let (b, _) = replica(&storage, "b", Duration::from_secs(30));
        let Placement::Local { guard, .. } = a.place("s1", "agent").unwrap() else {
            panic!("a claims s1");
        };
        drop(guard);
        a_sessions.live.lock().push("s1".into());
        // a stops beating: b forwards until a's lease ends, then takes over.
        assert!(matches!(
            b.place("s1", "agent").unwrap(),
            Placement::Remote(_)
        ));
        std::thread::sleep(lease + Duration::from_millis(100));
        assert!(!a.holds_lease());
        match b.place("s1", "agent").unwrap() {
            Placement::Local { took_over_from, .. } => {
                assert_eq!(took_over_from.as_deref(), Some("a"));
            }
            other => panic!("{other:?}"),
        }
        // a comes back: before serving again it hands s1 off, and sends
        // its requests to b.
        a.heartbeat().unwrap();
        assert_eq!(*a_sessions.handed_off.lock(), vec!["s1".to_string()]);
        assert!(!a_sessions.is_local("s1"));
        assert!(
            matches!(a.place("s1", "agent").unwrap(), Placement::Remote(o) if o.replica == "b")
        );
    }

    #[test]
    fn an_unregistered_replica_registers_on_its_first_request() {
        let storage = store();
        let sessions = Arc::new(Sessions::default());
        let directory =
            SessionDirectory::new(storage, ClusterConfig::new("http://nowhere"), sessions);
        // Never registered: it registers on the first request.
        assert!(matches!(
            directory.place("s1", "agent").unwrap(),
            Placement::Local { .. }
        ));
    }

    #[test]
    fn releases_wait_for_requests_in_flight_and_shutdown_releases_everything() {
        let storage = store();
        let (a, _) = replica(&storage, "a", Duration::from_secs(30));
        let (b, _) = replica(&storage, "b", Duration::from_secs(30));
        let Placement::Local { guard, .. } = a.place("busy", "agent").unwrap() else {
            panic!("a claims busy");
        };
        assert!(!a.release("busy").unwrap(), "in flight");
        assert!(matches!(
            b.place("busy", "agent").unwrap(),
            Placement::Remote(_)
        ));
        drop(guard);
        assert_eq!(a.idle_held(), vec!["busy".to_string()]);
        assert!(a.release("busy").unwrap());
        assert!(matches!(
            b.place("busy", "agent").unwrap(),
            Placement::Local { .. }
        ));

        let _ = a.place("other", "agent").unwrap();
        assert_eq!(a.release_all().unwrap(), 1);
        assert!(!a.holds_lease());
        assert!(a.replicas().unwrap().iter().all(|r| r.id != "a"));
        assert!(matches!(
            b.place("other", "agent").unwrap(),
            Placement::Local { .. }
        ));
        // b does not take what it holds from itself.
        assert!(matches!(
            b.place("busy", "agent").unwrap(),
            Placement::Local {
                took_over_from: None,
                ..
            }
        ));
    }

    #[test]
    fn lapsed_replicas_are_forgotten_once_they_hold_nothing() {
        let storage = store();
        let (a, _) = replica(&storage, "a", Duration::from_millis(50));
        let (b, _) = replica(&storage, "b", Duration::from_secs(30));
        std::thread::sleep(Duration::from_millis(120));
        assert_eq!(b.forget_lapsed_replicas(Duration::ZERO).unwrap(), 1);
        let ids: Vec<String> = b.replicas().unwrap().into_iter().map(|r| r.id).collect();
        assert_eq!(ids, vec!["b".to_string()]);
        drop(a);
    }
}
