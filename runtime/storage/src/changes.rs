//! [`Changes`]: what other processes sharing a store changed in it.

use std::sync::Arc;

use tokio::sync::broadcast;

/// How many published changes a subscriber may fall behind before it is
/// told to [`Change::Resync`].
pub(crate) const CHANGE_BACKLOG: usize = 1024;

/// A change another process made to a store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// `topic` (named by the publisher) changed.
    Topic(String),
    /// Changes may have been missed (the subscriber fell behind, or the
    /// connection that delivers them was lost and restored): reload
    /// everything cached.
    Resync,
}

/// A published change as it travels: the namespace and topic.
#[derive(Debug, Clone)]
pub(crate) struct Published {
    pub(crate) namespace: Arc<str>,
    pub(crate) topic: Option<Arc<str>>,
}

/// The changes other processes publish to one namespace
/// ([`crate::Storage::subscribe`]).
#[derive(Debug)]
pub struct Changes {
    receiver: broadcast::Receiver<Published>,
    namespace: Arc<str>,
}

impl Changes {
    pub(crate) fn new(receiver: broadcast::Receiver<Published>, namespace: Arc<str>) -> Self {
        Self {
            receiver,
            namespace,
        }
    }

    /// The next change to this namespace; `None` once the store is closed.
    pub async fn next(&mut self) -> Option<Change> {
        loop {
            match self.receiver.recv().await {
                Ok(published) => match published.topic {
                    None => return Some(Change::Resync),
                    Some(topic) if published.namespace == self.namespace => {
                        return Some(Change::Topic(topic.to_string()));
                    }
                    Some(_) => {}
                },
                Err(broadcast::error::RecvError::Lagged(_)) => return Some(Change::Resync),
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}
