//! The on-disk cache of precompiled components: compile a component once per
//! machine instead of once per process.
//!
//! A cached artifact is native code that is mapped and run, so the cache is
//! trusted only as far as its permissions say: the directory must belong to
//! this user and be writable by nobody else (it is created with mode 0700),
//! and so must every file loaded from it. Anything else is ignored and the
//! component compiled in memory.

use std::hash::{Hash, Hasher};
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _};
use std::path::{Path, PathBuf};

use wasmtime::Engine;

/// Permission bits that let someone else write.
const WRITABLE_BY_OTHERS: u32 = 0o022;

/// A cache directory this user alone may write.
#[derive(Debug)]
pub(crate) struct ComponentCache {
    dir: PathBuf,
    /// Hash of the engine settings that make an artifact loadable.
    engine_hash: u64,
}

/// Why a cache directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CacheRefused {
    /// Not an absolute path (a relative one would follow the working directory).
    #[error("{0} is not an absolute path")]
    Relative(PathBuf),
    /// Creating or inspecting it failed.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Someone else owns it or may write to it.
    #[error("{0} is owned by another user or writable by group or others")]
    Untrusted(PathBuf),
}

impl ComponentCache {
    /// Opens `dir` (creating it, mode 0700) for artifacts of `engine`.
    pub(crate) fn open(dir: &Path, engine: &Engine) -> Result<Self, CacheRefused> {
        if !dir.is_absolute() {
            return Err(CacheRefused::Relative(dir.to_path_buf()));
        }
        let io = |source| CacheRefused::Io {
            path: dir.to_path_buf(),
            source,
        };
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io)?;
        let meta = std::fs::metadata(dir).map_err(io)?;
        if !owned_by_me_alone(&meta) {
            return Err(CacheRefused::Untrusted(dir.to_path_buf()));
        }
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Ok(Self {
            dir: dir.to_path_buf(),
            engine_hash: hasher.finish(),
        })
    }

    /// Where the artifact of the component with SHA-256 `digest` lives.
    pub(crate) fn path(&self, digest: &[u8; 32]) -> PathBuf {
        self.dir.join(format!(
            "{}-{:016x}.cwasm",
            hex::encode(digest),
            self.engine_hash
        ))
    }

    /// Whether `path` exists and only this user could have written it.
    pub(crate) fn trusted(&self, path: &Path) -> bool {
        std::fs::symlink_metadata(path).is_ok_and(|meta| meta.is_file() && owned_by_me_alone(&meta))
    }

    /// Stores `artifact` at `path` atomically (a unique temporary file in
    /// the same directory, then a rename), so readers never see a partial
    /// file and concurrent writers never clobber each other's.
    pub(crate) fn store(&self, path: &Path, artifact: &[u8]) -> std::io::Result<()> {
        let mut file = tempfile::NamedTempFile::new_in(&self.dir)?;
        file.write_all(artifact)?;
        file.as_file().sync_data()?;
        file.persist(path).map_err(|e| e.error)?;
        Ok(())
    }
}

/// Owned by the effective user and not writable by group or others.
fn owned_by_me_alone(meta: &std::fs::Metadata) -> bool {
    meta.uid() == rustix::process::geteuid().as_raw() && meta.mode() & WRITABLE_BY_OTHERS == 0
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    fn engine() -> Engine {
        Engine::default()
    }

    #[test]
    fn refuses_relative_and_shared_directories() {
        assert!(matches!(
            ComponentCache::open(Path::new("relative/cache"), &engine()),
            Err(CacheRefused::Relative(_))
        ));
        let dir = tempfile::tempdir().unwrap();
        let shared = dir.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(matches!(
            ComponentCache::open(&shared, &engine()),
            Err(CacheRefused::Untrusted(_))
        ));
    }

    #[test]
    fn stores_private_files_and_distrusts_writable_ones() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ComponentCache::open(&dir.path().join("c"), &engine()).unwrap();
        let created = std::fs::metadata(dir.path().join("c")).unwrap();
        assert_eq!(created.mode() & 0o777, 0o700);
        let path = cache.path(&[7; 32]);
        assert!(!cache.trusted(&path));
        cache.store(&path, b"artifact").unwrap();
        assert!(cache.trusted(&path));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert!(
            !cache.trusted(&path),
            "a file others could have written is not loaded"
        );
    }
}
