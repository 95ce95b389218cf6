//! Admission control: the table of live sessions with the counts its quotas
//! need (per agent, per caller, reserved guest memory), and reclaiming idle
//! sessions before a new one is refused.

use std::collections::HashMap;
use std::sync::Arc;

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

/// Why a new session was refused: the quota in the way and its limit.
pub(crate) struct Refusal {
    pub quota: SessionQuota,
    pub limit: usize,
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
    /// The live session under `key`.
    pub fn get(&self, key: &SessionKey) -> Option<&Arc<SessionEntry>> {
        self.map.get(key)
    }

    /// Number of live sessions.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// All live sessions.
    pub fn values(&self) -> impl Iterator<Item = &Arc<SessionEntry>> {
        self.map.values()
    }

    /// All live sessions with their keys.
    pub fn iter(&self) -> impl Iterator<Item = (&SessionKey, &Arc<SessionEntry>)> {
        self.map.iter()
    }

    /// Guest memory reserved by live sessions.
    pub fn reserved_bytes(&self) -> usize {
        self.reserved_bytes
    }

    /// Adds a session and counts it.
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

    /// Removes a session and uncounts it.
    pub fn remove(&mut self, key: &SessionKey) -> Option<Arc<SessionEntry>> {
        let entry = self.map.remove(key)?;
        self.uncount(&entry);
        Some(entry)
    }

    /// Removes every session.
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

    /// Makes room for `applicant` under every quota of `config` by
    /// reclaiming idle sessions, oldest idle first, choosing only sessions
    /// whose removal lowers the count in the way: the caller's own (any
    /// agent) for its quota, the agent's own for the agent quota, and any
    /// idle session (the same agent's first) for the process-wide limit and
    /// the memory budget. Nothing is reclaimed unless the whole plan admits
    /// the applicant. Reclaimed sessions are removed and marked ended (the
    /// caller reports them outside the lock).
    pub fn admit(
        &mut self,
        applicant: &Applicant<'_>,
        config: &SessionConfig,
    ) -> Result<Vec<Arc<SessionEntry>>, Refusal> {
        let mut planned: Vec<(SessionKey, Arc<SessionEntry>)> = Vec::new();
        while let Some((quota, limit)) = self.violation(applicant, config) {
            let victim = match quota {
                SessionQuota::SessionsPerCaller => {
                    self.oldest_idle(|_, entry| entry.caller.as_ref() == applicant.caller)
                }
                SessionQuota::SessionsPerAgent => {
                    self.oldest_idle(|key, _| key.0 == *applicant.agent)
                }
                SessionQuota::LiveSessions | SessionQuota::GuestMemoryBudget => self
                    .oldest_idle(|key, _| key.0 == *applicant.agent)
                    .or_else(|| self.oldest_idle(|_, _| true)),
            };
            let Some(key) = victim else {
                // Refused: put back what the plan took out, untouched.
                for (key, entry) in planned {
                    self.insert(key, entry);
                }
                return Err(Refusal { quota, limit });
            };
            if let Some(entry) = self.remove(&key) {
                planned.push((key, entry));
            }
        }
        let mut reclaimed = Vec::with_capacity(planned.len());
        for (key, entry) in planned {
            if entry.claim_idle() {
                reclaimed.push(entry);
            } else {
                // An invocation took it between the plan and the claim (it
                // held the entry from before): it stays, and the applicant
                // is admitted one over the limit until a session ends.
                self.insert(key, entry);
            }
        }
        Ok(reclaimed)
    }

    /// Removes and claims the session idle longest, of any agent (to free a
    /// sandbox pool slot).
    pub fn reclaim_oldest_idle(&mut self) -> Option<Arc<SessionEntry>> {
        let key = self.oldest_idle(|_, _| true)?;
        let entry = self.remove(&key)?;
        if entry.claim_idle() {
            Some(entry)
        } else {
            self.insert(key, entry);
            None
        }
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

    /// Of the idle sessions `pick` accepts, the one idle longest.
    fn oldest_idle(&self, pick: impl Fn(&SessionKey, &SessionEntry) -> bool) -> Option<SessionKey> {
        self.map
            .iter()
            .filter(|(key, entry)| pick(key, entry) && entry.is_idle())
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
