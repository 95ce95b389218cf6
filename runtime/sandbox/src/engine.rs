//! The shared wasmtime engine: pooling allocator sized for many sandboxes and
//! an epoch ticker that drives CPU deadlines.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, OptLevel, PoolingAllocationConfig};

use crate::SandboxError;
use crate::cache::ComponentCache;

/// Sizing and timing of a [`SandboxEngine`].
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Sandboxes (component instances) that may be live at once.
    pub max_instances: u32,
    /// Largest linear memory any guest may grow to, in bytes.
    pub max_memory_bytes: usize,
    /// Core wasm instances a component may contain (32). A Rust agent has
    /// 1–4, a componentize-py agent 14, a ComponentizeJS agent 3–4.
    pub max_core_instances_per_component: u32,
    /// Core instances the pool admits per sandbox on average (16), so
    /// `max_instances` sandboxes of big Python agents fit as well as small
    /// Rust ones. The pooling allocator only counts core instances (they
    /// reserve no memory), so this costs nothing until used.
    pub core_instances_per_sandbox: u32,
    /// Period of the epoch ticker (1 ms). CPU deadlines are measured in these
    /// ticks, and a running guest yields to its executor at every tick, so
    /// this is also the time slice spinning guests get before another task
    /// runs: shorter is fairer, at the cost of one wake-up per tick.
    pub epoch_tick: Duration,
    /// Bytes of freed linear memory kept resident (zeroed with memset instead
    /// of `madvise`) to make the next instantiation in that slot cheaper
    /// (64 KiB). Larger values make a fresh sandbox cheaper still: the
    /// `madvise` and page faults they save also interrupt the process's
    /// other threads with TLB shootdowns. But every pool slot keeps that much
    /// resident after its sandbox is gone, so idle agent sessions that
    /// hibernate would not give their memory back; [`EngineConfig::for_tools`]
    /// uses 2 MiB for short-lived tool sandboxes.
    pub memory_keep_resident: usize,
    /// Freed pool slots kept warm for reuse beyond those in use (100,
    /// wasmtime's default). Slots in use plus these bound the memory
    /// `memory_keep_resident` keeps.
    pub max_unused_warm_slots: u32,
    /// Directory of precompiled components (`<sha256>-<engine>.cwasm`), so a
    /// component is compiled once per machine instead of once per process;
    /// `None` (default) compiles in memory only. It must be an absolute path
    /// this user alone may write (created with mode 0700), else it is not
    /// used. Cached artifacts are mapped from the file, so their code and
    /// memory images are shared page cache.
    pub cache_dir: Option<PathBuf>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            max_instances: 1_000,
            max_memory_bytes: 128 << 20,
            max_core_instances_per_component: 32,
            core_instances_per_sandbox: 16,
            epoch_tick: Duration::from_millis(1),
            memory_keep_resident: 64 << 10,
            max_unused_warm_slots: 100,
            cache_dir: None,
        }
    }
}

impl EngineConfig {
    /// An engine for tool sandboxes, which live for one call each: 256 at
    /// once, and 2 MiB of each freed memory kept resident (a Rust tool's
    /// whole memory is ~1.5 MiB: 1 MiB of stack plus data), so a call's
    /// fresh sandbox costs no `madvise` and no page faults. That took an
    /// agent step calling the calculator tool from ~160 to ~110 µs on the
    /// tracing bench. At most (tool calls in flight + 16 warm slots) × 2 MiB
    /// stays resident. Compiled components are cached where `agents` caches
    /// them.
    pub fn for_tools(agents: &EngineConfig) -> Self {
        Self {
            max_instances: 256,
            memory_keep_resident: 2 << 20,
            max_unused_warm_slots: 16,
            cache_dir: agents.cache_dir.clone(),
            ..Self::default()
        }
    }
}

/// Linear memories one component may define (agents have one; the WASI
/// adapter of older toolchains adds a second).
const MAX_MEMORIES_PER_COMPONENT: u32 = 2;

/// A wasmtime engine configured for sandboxes, plus its epoch ticker.
#[derive(Clone)]
pub struct SandboxEngine {
    inner: Arc<EngineInner>,
}

/// A compiled component, or the lock a compile in progress holds.
type CompileSlot = Arc<parking_lot::Mutex<Option<Component>>>;

struct EngineInner {
    engine: Engine,
    cache: Option<ComponentCache>,
    compiled: parking_lot::Mutex<HashMap<[u8; 32], CompileSlot>>,
    config: EngineConfig,
    stop: Arc<AtomicBool>,
    ticker: Option<JoinHandle<()>>,
}

impl Drop for EngineInner {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(handle) = self.ticker.take() {
            handle.thread().unpark();
            let _ = handle.join();
        }
    }
}

impl SandboxEngine {
    /// Builds the engine and starts its epoch ticker thread.
    pub fn new(config: EngineConfig) -> Result<Self, SandboxError> {
        if config.max_instances == 0 {
            return Err(SandboxError::Config(
                "max_instances must be at least 1".into(),
            ));
        }
        if config.epoch_tick.is_zero() {
            return Err(SandboxError::Config("epoch_tick must be positive".into()));
        }
        let mut pool = PoolingAllocationConfig::new();
        let per = config.max_core_instances_per_component.max(1);
        pool.total_component_instances(config.max_instances)
            .max_core_instances_per_component(per)
            .total_core_instances(
                config
                    .max_instances
                    .saturating_mul(config.core_instances_per_sandbox.max(per.min(4))),
            )
            .max_memories_per_component(MAX_MEMORIES_PER_COMPONENT)
            .total_memories(config.max_instances.saturating_mul(2))
            .max_tables_per_component(per)
            .total_tables(config.max_instances.saturating_mul(4))
            // A store keeps its last fiber stack cached between calls, so
            // every live sandbox may hold one.
            .total_stacks(config.max_instances)
            .max_memory_size(config.max_memory_bytes)
            .linear_memory_keep_resident(config.memory_keep_resident)
            .table_keep_resident(16 << 10)
            .max_unused_warm_slots(config.max_unused_warm_slots);

        let mut wasm = Config::new();
        wasm.epoch_interruption(true)
            .wasm_component_model(true)
            .cranelift_opt_level(OptLevel::Speed)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
            // Reserve exactly the memory cap per slot (plus a small guard)
            // instead of wasmtime's multi-GiB default, so tens of thousands
            // of sandboxes fit in the address space.
            .memory_reservation(config.max_memory_bytes as u64)
            .memory_guard_size(64 << 10)
            .guard_before_linear_memory(false)
            .memory_reservation_for_growth(0)
            .memory_init_cow(true);
        let engine = Engine::new(&wasm).map_err(|e| SandboxError::Config(format!("{e:#}")))?;

        let stop = Arc::new(AtomicBool::new(false));
        let ticker = {
            let engine = engine.weak();
            let stop = stop.clone();
            let tick = config.epoch_tick;
            std::thread::Builder::new()
                .name("corral-epoch".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::park_timeout(tick);
                        match engine.upgrade() {
                            Some(engine) => engine.increment_epoch(),
                            None => break,
                        }
                    }
                })
                .map_err(|e| SandboxError::Config(format!("cannot start epoch ticker: {e}")))?
        };
        let cache = config.cache_dir.as_deref().and_then(|dir| {
            ComponentCache::open(dir, &engine)
                .inspect_err(|refused| {
                    tracing::warn!("not caching compiled components: {refused}");
                })
                .ok()
        });
        Ok(Self {
            inner: Arc::new(EngineInner {
                engine,
                cache,
                compiled: parking_lot::Mutex::new(HashMap::new()),
                config,
                stop,
                ticker: Some(ticker),
            }),
        })
    }

    /// The wasmtime engine.
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// The configuration this engine was built with.
    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// Number of epoch ticks that cover `duration` (at least one).
    pub fn ticks_for(&self, duration: Duration) -> u64 {
        let tick = self.inner.config.epoch_tick.as_nanos().max(1);
        (duration.as_nanos().div_ceil(tick) as u64).max(1)
    }

    /// Compiles a component from its binary encoding; the same bytes are
    /// compiled once per engine (and once per machine with a `cache_dir`).
    /// A component that could never fit a sandbox slot (memory cap, memories,
    /// tables) is rejected here by wasmtime's pooling-allocator validation.
    pub fn compile(&self, bytes: &[u8]) -> Result<Component, SandboxError> {
        if !wasmparser_is_component(bytes) {
            return Err(SandboxError::InvalidComponent(describe_non_component(
                bytes,
            )));
        }
        let digest: [u8; 32] = Sha256::digest(bytes).into();
        // One slot per digest: concurrent callers wait for a single compile.
        let slot = self
            .inner
            .compiled
            .lock()
            .entry(digest)
            .or_default()
            .clone();
        let mut slot = slot.lock();
        if let Some(component) = slot.as_ref() {
            return Ok(component.clone());
        }
        let component = match &self.inner.cache {
            Some(cache) => self.compile_cached(cache, &digest, bytes)?,
            None => Component::new(&self.inner.engine, bytes)
                .map_err(|e| SandboxError::InvalidComponent(format!("{e:#}")))?,
        };
        *slot = Some(component.clone());
        Ok(component)
    }

    /// Loads the cached artifact of `bytes`, or compiles and caches it.
    /// The cache only saves time: an untrusted or unreadable entry is
    /// compiled again, and a failed store is logged, never an error.
    fn compile_cached(
        &self,
        cache: &ComponentCache,
        digest: &[u8; 32],
        bytes: &[u8],
    ) -> Result<Component, SandboxError> {
        let path = cache.path(digest);
        if cache.trusted(&path) {
            match self.load_precompiled(&path) {
                Ok(component) => return Ok(component),
                Err(error) => tracing::warn!(
                    path = %path.display(),
                    "ignoring unusable precompiled component: {error}"
                ),
            }
        }
        let artifact = self.precompile(bytes)?;
        if let Err(error) = cache.store(&path, &artifact) {
            tracing::warn!(path = %path.display(), "cannot cache the compiled component: {error}");
        }
        // SAFETY-equivalent guarantee: `artifact` was just produced by this
        // engine's `precompile`.
        #[allow(unsafe_code)]
        let component = unsafe { Component::deserialize(&self.inner.engine, &artifact) };
        component.map_err(|e| SandboxError::InvalidComponent(format!("{e:#}")))
    }

    /// Serialises a compiled component for [`SandboxEngine::load_precompiled`].
    pub fn precompile(&self, bytes: &[u8]) -> Result<Vec<u8>, SandboxError> {
        if !wasmparser_is_component(bytes) {
            return Err(SandboxError::InvalidComponent(describe_non_component(
                bytes,
            )));
        }
        self.inner
            .engine
            .precompile_component(bytes)
            .map_err(|e| SandboxError::InvalidComponent(format!("{e:#}")))
    }

    /// Loads a component file written from [`SandboxEngine::precompile`]
    /// by a compatible engine; incompatible artifacts are rejected, never
    /// run. The file is mapped, not read, so its code and memory images are
    /// shared page cache across sandboxes and processes.
    pub fn load_precompiled(&self, path: &Path) -> Result<Component, SandboxError> {
        match Engine::detect_precompiled_file(path) {
            Ok(Some(wasmtime::Precompiled::Component)) => {}
            Ok(_) => {
                return Err(SandboxError::InvalidComponent(format!(
                    "{} is not a precompiled component",
                    path.display()
                )));
            }
            Err(e) => {
                return Err(SandboxError::InvalidComponent(format!(
                    "{}: {e:#}",
                    path.display()
                )));
            }
        }
        // SAFETY-equivalent guarantee: callers pass only artifacts this
        // process (or an earlier one with the same engine) produced and stored
        // under a content hash; wasmtime additionally checks engine
        // compatibility and rejects mismatches.
        #[allow(unsafe_code)]
        let component = unsafe { Component::deserialize_file(&self.inner.engine, path) };
        component.map_err(|e| SandboxError::InvalidComponent(format!("{e:#}")))
    }
}

/// True when `bytes` starts with the component-model binary preamble.
fn wasmparser_is_component(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && bytes[0..4] == *b"\0asm" && bytes[6..8] == [0x01, 0x00]
}

/// Explains why `bytes` is not a component, for error messages.
fn describe_non_component(bytes: &[u8]) -> String {
    if bytes.len() < 8 || bytes[0..4] != *b"\0asm" {
        "not a WebAssembly binary (missing \\0asm magic)".into()
    } else if bytes[4..8] == [0x01, 0x00, 0x00, 0x00] {
        "a core WebAssembly module, not a component; build for wasm32-wasip2 or wrap it with `wasm-tools component new`".into()
    } else {
        format!(
            "unsupported WebAssembly version/layer {:02x?}",
            &bytes[4..8]
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_core_module_with_clear_message() {
        let engine = SandboxEngine::new(EngineConfig {
            max_instances: 4,
            ..EngineConfig::default()
        })
        .unwrap();
        let core = b"\0asm\x01\0\0\0";
        let err = engine.compile(core).unwrap_err().to_string();
        assert!(err.contains("core WebAssembly module"), "{err}");
        let err = engine.compile(b"hello world!").unwrap_err().to_string();
        assert!(err.contains("missing \\0asm magic"), "{err}");
    }

    #[test]
    fn ticks_round_up() {
        let engine = SandboxEngine::new(EngineConfig {
            max_instances: 1,
            epoch_tick: Duration::from_millis(10),
            ..EngineConfig::default()
        })
        .unwrap();
        assert_eq!(engine.ticks_for(Duration::from_millis(1)), 1);
        assert_eq!(engine.ticks_for(Duration::from_millis(10)), 1);
        assert_eq!(engine.ticks_for(Duration::from_millis(11)), 2);
        assert_eq!(engine.ticks_for(Duration::from_secs(1)), 100);
    }

    /// A component with one memory of `pages` initial pages.
    fn component_with_memory(pages: u32) -> Vec<u8> {
        wat::parse_str(format!(
            "(component (core module $m (memory {pages})) (core instance (instantiate $m)))"
        ))
        .unwrap()
    }

    #[test]
    fn a_component_over_the_memory_cap_is_rejected_at_compile() {
        let engine = SandboxEngine::new(EngineConfig {
            max_instances: 2,
            max_memory_bytes: 1 << 20,
            ..EngineConfig::default()
        })
        .unwrap();
        engine.compile(&component_with_memory(16)).unwrap();
        let err = engine.compile(&component_with_memory(17)).unwrap_err();
        assert!(matches!(err, SandboxError::InvalidComponent(_)), "{err}");
        assert!(err.to_string().contains("exceeds the limit"), "{err}");
    }

    #[test]
    fn the_cache_compiles_once_per_machine() {
        let dir = tempfile::tempdir().unwrap();
        let config = EngineConfig {
            max_instances: 2,
            cache_dir: Some(dir.path().to_path_buf()),
            ..EngineConfig::default()
        };
        let bytes = component_with_memory(1);
        SandboxEngine::new(config.clone())
            .unwrap()
            .compile(&bytes)
            .unwrap();
        let files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(files.len(), 1, "one artifact, no partial files left");
        let cached = files[0].as_ref().unwrap().path();
        assert!(cached.extension().is_some_and(|e| e == "cwasm"));
        // A second engine loads it instead of compiling; a corrupt artifact
        // is replaced, never run.
        SandboxEngine::new(config.clone())
            .unwrap()
            .compile(&bytes)
            .unwrap();
        std::fs::write(&cached, b"garbage").unwrap();
        SandboxEngine::new(config).unwrap().compile(&bytes).unwrap();
        assert!(std::fs::read(&cached).unwrap().len() > 100);
    }

    #[test]
    fn zero_instances_is_a_config_error() {
        let err = SandboxEngine::new(EngineConfig {
            max_instances: 0,
            ..EngineConfig::default()
        })
        .err()
        .unwrap();
        assert!(matches!(err, SandboxError::Config(_)));
    }
}
