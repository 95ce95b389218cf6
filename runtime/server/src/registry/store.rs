//! [`RegistryStore`]: the deploy registry's durable half on the storage
//! seam: the runtimes index (one value, changed by compare-and-swap so
//! replicas sharing a database never lose each other's changes) and
//! component sources, content-addressed.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use corral_storage::{Changes, Storage, WriteBatch};

use super::{AgentRuntime, RegistryError};

/// Key of the runtimes index.
const INDEX: &[u8] = b"index";
/// Topic published when the index changes.
pub(super) const INDEX_TOPIC: &str = "index";

/// Key of a component's source bytes.
fn component_key(digest: &str) -> Vec<u8> {
    format!("component/{digest}").into_bytes()
}

/// The runtimes and the stored form they were decoded from (what a
/// compare-and-swap expects).
pub(super) struct Snapshot {
    pub(super) runtimes: BTreeMap<String, AgentRuntime>,
    /// Counts the index's changes: a cache installs only newer snapshots.
    pub(super) generation: u64,
    pub(super) stored: Option<Vec<u8>>,
}

/// The index as stored.
#[derive(serde::Serialize, serde::Deserialize)]
struct StoredIndex {
    generation: u64,
    runtimes: BTreeMap<String, AgentRuntime>,
}

/// The registry's index and components in a [`Storage`].
pub(super) struct RegistryStore {
    storage: Arc<dyn Storage>,
    /// Other replicas' changes, until the registry follows them.
    changes: parking_lot::Mutex<Option<Changes>>,
    shared: bool,
}

impl RegistryStore {
    pub(super) fn new(storage: Arc<dyn Storage>) -> Self {
        // Subscribing first: a change made while the index loads is not
        // missed.
        let changes = storage.subscribe();
        Self {
            storage,
            shared: changes.is_some(),
            changes: parking_lot::Mutex::new(changes),
        }
    }

    /// Whether other processes share the store (and may change it).
    pub(super) fn is_shared(&self) -> bool {
        self.shared
    }

    /// The index as stored now.
    pub(super) fn load(&self) -> Result<Snapshot, RegistryError> {
        let stored = self.storage.get(INDEX)?;
        let index = match &stored {
            Some(bytes) => serde_json::from_slice(bytes).map_err(RegistryError::Index)?,
            None => StoredIndex {
                generation: 0,
                runtimes: BTreeMap::new(),
            },
        };
        Ok(Snapshot {
            runtimes: index.runtimes,
            generation: index.generation,
            stored,
        })
    }

    /// Replaces the index `snapshot` was read from with `next` (one
    /// generation on); `false` when another writer changed it since (read
    /// it again and retry).
    pub(super) fn replace(
        &self,
        snapshot: &Snapshot,
        next: BTreeMap<String, AgentRuntime>,
    ) -> Result<Option<Snapshot>, RegistryError> {
        let index = StoredIndex {
            generation: snapshot.generation + 1,
            runtimes: next,
        };
        let bytes = serde_json::to_vec(&index).map_err(RegistryError::Index)?;
        let swapped = self.storage.compare_and_swap(
            INDEX,
            snapshot.stored.as_deref(),
            Some(bytes.clone()),
        )?;
        if !swapped {
            return Ok(None);
        }
        if let Err(error) = self.storage.publish(INDEX_TOPIC) {
            // Other replicas still see it on a miss or their periodic resync.
            tracing::warn!("cannot tell other replicas about a registry change: {error}");
        }
        Ok(Some(Snapshot {
            runtimes: index.runtimes,
            generation: index.generation,
            stored: Some(bytes),
        }))
    }

    /// Stores a component's source under its digest (once).
    pub(super) fn put_component(&self, digest: &str, bytes: &[u8]) -> Result<(), RegistryError> {
        let key = component_key(digest);
        // Content-addressed: present means identical.
        self.storage
            .compare_and_swap(&key, None, Some(bytes.to_vec()))?;
        Ok(())
    }

    /// A component's source by digest.
    pub(super) fn component(&self, digest: &str) -> Result<Option<Vec<u8>>, RegistryError> {
        Ok(self.storage.get(&component_key(digest))?)
    }

    /// Changes other replicas make, when the storage is shared (once).
    pub(super) fn take_changes(&self) -> Option<Changes> {
        self.changes.lock().take()
    }

    /// Moves a registry from before the storage seam (`runtimes.json` and
    /// `artifacts/<digest>.wasm` in `dir`) into the store, once: the file
    /// is renamed `runtimes.json.imported` after.
    pub(super) fn import_directory(&self, dir: &Path) -> Result<(), RegistryError> {
        let index = dir.join("runtimes.json");
        let bytes = match std::fs::read(&index) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        if self.storage.get(INDEX)?.is_some() {
            return Ok(());
        }
        let runtimes: BTreeMap<String, AgentRuntime> =
            serde_json::from_slice(&bytes).map_err(RegistryError::Index)?;
        let mut batch = WriteBatch::default();
        for version in runtimes.values().flat_map(|r| &r.versions) {
            let source = dir
                .join("artifacts")
                .join(format!("{}.wasm", version.digest));
            match std::fs::read(&source) {
                Ok(component) => batch.put(component_key(&version.digest), component),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    tracing::warn!(digest = %version.digest, "a deployed component's source is missing; not imported");
                }
                Err(e) => return Err(e.into()),
            }
        }
        let stored = StoredIndex {
            generation: 1,
            runtimes,
        };
        batch.put(
            INDEX.to_vec(),
            serde_json::to_vec(&stored).map_err(RegistryError::Index)?,
        );
        self.storage.commit(batch)?;
        std::fs::rename(&index, dir.join("runtimes.json.imported"))?;
        tracing::info!(
            runtimes = stored.runtimes.len(),
            "imported the deploy registry into its store"
        );
        Ok(())
    }
}
