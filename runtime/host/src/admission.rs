//! Admission control: the table of live sessions with the counts its quotas
//! need (per agent, per caller, reserved guest memory), and reclaiming idle
//! sessions before a new one is refused.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::config::SessionConfig;
use crate::session::SessionEntry;

/// A live session's key: agent name and runtime session id.
pub(crate) type SessionKey = (Arc<str>, Arc<str>);

/// A quota that can refuse a new session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionQuota {
    /// Live sessions in the process (`SessionConfig::max_sessions`).
    LiveSessions,
    /// Live sessions of one agent (`SessionConfig::max_sessions_per_agent`).
    SessionsPerAgent,
    /// Live sessions of one caller (`SessionConfig::max_sessions_per_caller`).
    SessionsPerCaller,
    /// Guest memory reserved by live sessions, in bytes
    /// (`SessionConfig::guest_memory_budget`).
    GuestMemoryBudget,
}

impl SessionQuota {
    /// The quota's stable name, as `corral serve` settings spell it.
    pub fn as_str(&self) -> &'static str {
        match self {
            SessionQuota::LiveSessions => "maxSessions",
            SessionQuota::SessionsPerAgent => "maxSessionsPerAgent",
            SessionQuota::SessionsPerCaller => "maxSessionsPerCaller",
            SessionQuota::GuestMemoryBudget => "guestMemoryBudget",
        }
    }
}

impl std::fmt::Display for SessionQuota {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who asks for a new session, and what it would reserve.
pub(crate) struct Applicant<'a> {
    pub agent: &'a Arc<str>,
    pub caller: Option<&'a Arc<str>>,
    pub memory_bytes: usize,
}

/// Why a new session was refused: the quota in the way, its limit, and the
/// sessions reclaimed before that became clear (already removed).
pub(crate) struct Refusal {
    pub quota: SessionQuota,
    pub limit: usize,
    pub reclaimed: Vec<Arc<SessionEntry>>,
}

/// Live sessions with running counts for the quotas. Every insert and
/// removal goes through it, so the counts always match the map.
#[derive(Default)]
pub(crate) struct SessionTable {
    map: HashMap<SessionKey, Arc<SessionEntry>>,
    per_agent: HashMap<Arc<str>, usize>,
    per_caller: HashMap<Arc<str>, usize>,
    reserved_bytes: usize,
}

impl SessionTable {
    pub fn get(&self, key: &SessionKey) -> Option<&Arc<SessionEntry>> {
        self.map.get(key)
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn values(&self) -> impl Iterator<Item = &Arc<SessionEntry>> {
        self.map.values()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&SessionKey, &Arc<SessionEntry>)> {
        self.map.iter()
    }

    /// Guest memory reserved by live sessions.
    pub fn reserved_bytes(&self) -> usize {
        self.reserved_bytes
    }

    pub fn insert(&mut self, key: SessionKey, entry: Arc<SessionEntry>) {
        *self.per_agent.entry(key.0.clone()).or_default() += 1;
        if let Some(caller) = &entry.caller {
            *self.per_caller.entry(caller.clone()).or_default() += 1;
        }
        self.reserved_bytes = self.reserved_bytes.saturating_add(entry.reserved_bytes);
        if let Some(old) = self.map.insert(key, entry) {
            self.uncount(&old);
        }
    }

    pub fn remove(&mut self, key: &SessionKey) -> Option<Arc<SessionEntry>> {
        let entry = self.map.remove(key)?;
        self.uncount(&entry);
        Some(entry)
    }

    pub fn drain(&mut self) -> Vec<Arc<SessionEntry>> {
        self.per_agent.clear();
        self.per_caller.clear();
        self.reserved_bytes = 0;
        self.map.drain().map(|(_, entry)| entry).collect()
    }

    fn uncount(&mut self, entry: &SessionEntry) {
        decrement(&mut self.per_agent, &entry.agent.name_arc());
        if let Some(caller) = &entry.caller {
            decrement(&mut self.per_caller, caller);
        }
        self.reserved_bytes = self.reserved_bytes.saturating_sub(entry.reserved_bytes);
    }

    /// Makes room for `applicant` under every quota of `config`, reclaiming
    /// idle sessions (oldest idle first) where that frees the quota in the
    /// way. Returns the reclaimed sessions (already removed; the caller
    /// finishes them outside the lock), or the quota that refuses.
    pub fn admit(
        &mut self,
        applicant: &Applicant<'_>,
        config: &SessionConfig,
    ) -> Result<Vec<Arc<SessionEntry>>, Refusal> {
        let mut reclaimed = Vec::new();
        while let Some((quota, limit)) = self.violation(applicant, config) {
            // Only a session whose removal lowers the count in the way helps:
            // the caller's own for its quota, else one of the same agent.
            let victim_caller = match quota {
                SessionQuota::SessionsPerCaller => applicant.caller,
                _ => None,
            };
            match self.oldest_idle(applicant.agent, victim_caller) {
                Some(key) => {
                    if let Some(entry) = self.remove(&key) {
                        reclaimed.push(entry);
                    }
                }
                None => {
                    return Err(Refusal {
                        quota,
                        limit,
                        reclaimed,
                    });
                }
            }
        }
        Ok(reclaimed)
    }

    /// The first quota a new session of `applicant` would exceed.
    fn violation(
        &self,
        applicant: &Applicant<'_>,
        config: &SessionConfig,
    ) -> Option<(SessionQuota, usize)> {
        if let (Some(limit), Some(caller)) = (config.max_sessions_per_caller, applicant.caller)
            && self.per_caller.get(caller).copied().unwrap_or(0) >= limit
        {
            return Some((SessionQuota::SessionsPerCaller, limit));
        }
        if let Some(limit) = config.max_sessions_per_agent
            && self.per_agent.get(applicant.agent).copied().unwrap_or(0) >= limit
        {
            return Some((SessionQuota::SessionsPerAgent, limit));
        }
        if self.map.len() >= config.max_sessions {
            return Some((SessionQuota::LiveSessions, config.max_sessions));
        }
        if let Some(budget) = config.guest_memory_budget
            && self.reserved_bytes.saturating_add(applicant.memory_bytes) > budget
        {
            return Some((SessionQuota::GuestMemoryBudget, budget));
        }
        None
    }

    /// The idle session of `agent` (and of `caller`, when given) that has
    /// been idle longest.
    fn oldest_idle(&self, agent: &Arc<str>, caller: Option<&Arc<str>>) -> Option<SessionKey> {
        self.map
            .iter()
            .filter(|(key, entry)| {
                key.0 == *agent
                    && caller.is_none_or(|c| entry.caller.as_ref() == Some(c))
                    && entry.is_idle()
            })
            .max_by_key(|(_, entry)| entry.idle_for())
            .map(|(key, _)| key.clone())
    }
}

fn decrement(counts: &mut HashMap<Arc<str>, usize>, key: &Arc<str>) {
    if let Some(count) = counts.get_mut(key) {
        *count = count.saturating_sub(1);
        if *count == 0 {
            counts.remove(key);
        }
    }
}

impl SessionEntry {
    /// Has a sandbox, is not running an invocation, and no invocation holds
    /// its sandbox (a session still starting is not idle).
    pub fn is_idle(&self) -> bool {
        !self.busy.load(Ordering::Relaxed)
            && self
                .sandbox
                .try_lock()
                .is_ok_and(|sandbox| sandbox.is_some())
    }
}
