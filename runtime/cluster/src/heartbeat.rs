//! The heartbeat: renews the lease, fences a replica that lost it, and
//! releases sessions that ended here.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use crate::directory::SessionDirectory;

/// How often registrations of long-dead replicas are swept.
const SWEEP_EVERY: Duration = Duration::from_secs(60);
/// How long a dead replica's registration is kept.
const FORGET_AFTER: Duration = Duration::from_secs(3600);

/// How often the lease is checked for lapsing, apart from the heartbeat.
const WATCH_EVERY: Duration = Duration::from_millis(100);

/// What the heartbeat needs of the sessions this replica runs (the host's
/// session manager).
pub trait LocalSessions: Send + Sync + 'static {
    /// Whether `session` has a sandbox, or hibernates, here.
    fn is_local(&self, session: &str) -> bool;
    /// Drops `session`'s sandbox here without ending it: its journal stays
    /// resumable, so the replica that takes it over resumes it.
    fn hand_off(&self, session: &str);
}

/// Runs `directory`'s heartbeat every [`crate::ClusterConfig::heartbeat`]
/// until aborted:
/// - renews the lease;
/// - when the lease has lapsed (the store did not answer in time), hands
///   every local session off before another replica may take it over, so
///   no session ever runs in two sandboxes;
/// - releases held sessions that no longer run here (ended, stopped,
///   expired), so the next request may land anywhere.
pub fn spawn_heartbeat(directory: Arc<SessionDirectory>) -> JoinHandle<()> {
    // Fencing does not wait on the database: a heartbeat stuck on an
    // unanswering connection must not keep sessions here past the lease.
    let watched = directory.clone();
    let watchdog = tokio::spawn(async move {
        let mut tick = tokio::time::interval(WATCH_EVERY);
        loop {
            tick.tick().await;
            if !watched.holds_lease() {
                watched.fence();
            }
        }
    });
    tokio::spawn(async move {
        // Aborted with the heartbeat: it takes its watchdog along.
        let _watchdog = tokio_util::task::AbortOnDropHandle::new(watchdog);
        let mut tick = tokio::time::interval(directory.config().heartbeat);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut renewing = true;
        let mut swept = Instant::now();
        loop {
            tick.tick().await;
            let beating = directory.clone();
            let renewed = tokio::task::spawn_blocking(move || beating.heartbeat()).await;
            match renewed {
                Ok(Ok(())) => {
                    if !renewing {
                        tracing::info!(replica = %directory.replica(), "the replica's lease is renewed again");
                    }
                    renewing = true;
                }
                Ok(Err(error)) if renewing => {
                    tracing::warn!(replica = %directory.replica(), "cannot renew the replica's lease: {error}");
                    renewing = false;
                }
                Err(error) => tracing::warn!("the heartbeat task failed: {error}"),
                Ok(Err(_)) => {}
            }
            if !directory.holds_lease() {
                directory.fence();
                continue;
            }
            let sessions = directory.local_sessions();
            let ended: Vec<String> = directory
                .idle_held()
                .into_iter()
                .filter(|s| !sessions.is_local(s))
                .collect();
            let sweep = swept.elapsed() >= SWEEP_EVERY;
            if sweep {
                swept = Instant::now();
            }
            if ended.is_empty() && !sweep {
                continue;
            }
            let releasing = directory.clone();
            let _ = tokio::task::spawn_blocking(move || {
                for session in &ended {
                    if let Err(error) = releasing.release(session) {
                        tracing::warn!(session.id = %session, "cannot release the session: {error}");
                    }
                }
                if sweep && let Err(error) = releasing.forget_lapsed_replicas(FORGET_AFTER) {
                    tracing::warn!("cannot sweep lapsed replicas: {error}");
                }
            })
            .await;
        }
    })
}
