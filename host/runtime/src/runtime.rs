//! The one engine of a process, its epoch ticker, the linker, and the table
//! of loaded plugins (one `InstancePre` per component digest).

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use wasmtime::component::{Component, InstancePre, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::bindings::{decider, render};
use crate::cache::{DiskCache, Miss};
use crate::config::{LoadStats, PluginLimits, PluginSpec, RuntimeConfig, World};
use crate::error::{Error, Result, boxed};
use crate::host::{self, HostState};
use crate::inspect::{self, check_import, contract_export};
use crate::plugin::Plugin;
use crate::preinit::{self, Warmup};

/// How often the epoch advances; deadlines are counted in these ticks.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Idle ticks the ticker keeps running after the last call ends, so that
/// back-to-back calls do not each pay a thread wake-up.
const LINGER_TICKS: u32 = 10;

/// Virtual address space reserved per linear memory.
const MEMORY_RESERVATION: u64 = 4 << 30;

/// The plugin runtime: one wasmtime `Engine` (component model, epoch
/// interruption, pooling allocator with copy-on-write memory images), an
/// epoch ticker thread, the sandbox linker, the precompiled-component cache
/// and the loaded plugins. Cheap to clone; create one per process.
#[derive(Clone)]
pub struct Runtime {
    pub(crate) inner: Arc<RuntimeInner>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("config", &self.inner.config)
            .field("pooling", &self.inner.pooling)
            .finish_non_exhaustive()
    }
}

pub(crate) struct RuntimeInner {
    pub(crate) engine: Engine,
    pub(crate) linker: Linker<HostState>,
    pub(crate) config: RuntimeConfig,
    /// Whether the pooling allocator is in use.
    pooling: bool,
    cache: Option<DiskCache>,
    loaded: Mutex<HashMap<String, Arc<Loaded>>>,
    pub(crate) calls: Arc<tokio::sync::Semaphore>,
    pub(crate) ticker: Ticker,
}

/// A compiled, checked and linked component, shared by every plugin with
/// the same digest.
pub(crate) struct Loaded {
    pub(crate) digest: String,
    pub(crate) world: World,
    pub(crate) language: Option<String>,
    pub(crate) pre: InstancePre<HostState>,
    pub(crate) guest: GuestIndices,
    /// A snapshot taken after a warm-up (see `preinit`).
    pub(crate) preinitialized: bool,
}

pub(crate) enum GuestIndices {
    Policy(decider::GuestIndices),
    Renderer(render::GuestIndices),
}

impl Runtime {
    /// Build the engine, the linker and the ticker, and open the cache.
    pub fn new(config: RuntimeConfig) -> Result<Runtime> {
        let (engine, pooling) = build_engine(&config)?;
        let mut linker = Linker::new(&engine);
        host::add_to_linker(&mut linker).map_err(|e| Error::Engine { source: boxed(e) })?;
        let cache = match &config.cache_dir {
            None => None,
            Some(dir) => match DiskCache::open(dir, &engine) {
                Ok(cache) => Some(cache),
                // The default location is best effort; a configured one
                // must work.
                Err(e) if Some(dir) == crate::config::default_cache_dir().as_ref() => {
                    tracing::warn!(
                        dir = %dir.display(),
                        error = %e,
                        "component cache unavailable; plugins are compiled on every start"
                    );
                    None
                }
                Err(source) => {
                    return Err(Error::Cache {
                        path: dir.clone(),
                        source,
                    });
                }
            },
        };
        let ticker = Ticker::start(&engine);
        Ok(Runtime {
            inner: Arc::new(RuntimeInner {
                calls: Arc::new(tokio::sync::Semaphore::new(
                    config.max_concurrent_calls.max(1),
                )),
                engine,
                linker,
                pooling,
                cache,
                config,
                loaded: Mutex::new(HashMap::new()),
                ticker,
            }),
        })
    }

    /// Whether the pooling allocator is in use (false after a fallback).
    pub fn pooling(&self) -> bool {
        self.inner.pooling
    }

    /// Load a component file.
    pub fn load_file(&self, path: &Path, spec: &PluginSpec) -> Result<Plugin> {
        let started = Instant::now();
        let bytes = std::fs::read(path).map_err(|source| Error::Read {
            name: spec.name.clone(),
            path: path.to_path_buf(),
            source,
        })?;
        self.load_inner(&bytes, spec, started)
    }

    /// Load a component from bytes (binary, or WAT text).
    pub fn load_bytes(&self, bytes: &[u8], spec: &PluginSpec) -> Result<Plugin> {
        self.load_inner(bytes, spec, Instant::now())
    }

    /// Forget every loaded component (plugins already handed out keep
    /// theirs). The next load deserializes from the disk cache or compiles.
    pub fn unload_all(&self) {
        self.lock_loaded().clear();
    }

    /// Path of the precompiled cache entry for a component digest
    /// (`sha256:<hex>`), if a disk cache is in use.
    pub fn cache_entry_path(&self, digest: &str) -> Option<std::path::PathBuf> {
        let hex = digest.strip_prefix("sha256:")?;
        self.inner.cache.as_ref().map(|c| c.entry_path(hex))
    }

    fn lock_loaded(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Loaded>>> {
        self.inner.loaded.lock().unwrap_or_else(|e| e.into_inner())
    }

    #[tracing::instrument(skip_all, fields(plugin = %spec.name))]
    fn load_inner(&self, bytes: &[u8], spec: &PluginSpec, started: Instant) -> Result<Plugin> {
        let name = &spec.name;
        let bytes = text_to_binary(name, bytes)?;
        let digest = inspect::digest(&bytes);
        if let Some(expected) = &spec.digest {
            let expected_norm = expected.to_ascii_lowercase();
            let well_formed = expected_norm
                .strip_prefix("sha256:")
                .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
            if !well_formed {
                return Err(Error::InvalidDigest {
                    name: name.clone(),
                    digest: expected.clone(),
                });
            }
            if expected_norm != digest {
                return Err(Error::DigestMismatch {
                    name: name.clone(),
                    expected: expected.clone(),
                    actual: digest,
                });
            }
        }
        let existing = self.lock_loaded().get(&digest).cloned();
        let (loaded, cache_hit, compile_ms) = match existing {
            Some(loaded) => (loaded, true, 0.0),
            None => {
                let (loaded, cache_hit, compile_ms) = self.compile(name, &bytes, &digest)?;
                let loaded = self
                    .lock_loaded()
                    .entry(digest.clone())
                    .or_insert_with(|| Arc::new(loaded))
                    .clone();
                (loaded, cache_hit, compile_ms)
            }
        };
        let limits = spec
            .limits
            .unwrap_or_else(|| PluginLimits::for_language(loaded.language.as_deref()));
        limits
            .validate(self.inner.config.max_memory_bytes)
            .map_err(|detail| Error::Limits {
                name: name.clone(),
                detail,
            })?;
        let mut loaded = loaded;
        let mut cache_hit = cache_hit;
        if let Some(warmup) = spec.warmup.as_ref().filter(|w| !w.is_empty()) {
            let t = Instant::now();
            match self.preinitialized(name, &limits, &loaded, &bytes, warmup) {
                Ok((snapshot, hit)) => {
                    loaded = snapshot;
                    cache_hit &= hit;
                    tracing::debug!(
                        cache_hit = hit,
                        elapsed_ms = t.elapsed().as_secs_f64() * 1e3,
                        "plugin pre-initialised"
                    );
                }
                Err(reason) => tracing::warn!(
                    reason = %reason,
                    "cannot pre-initialise the plugin with its configuration; \
                     every call will parse it itself"
                ),
            }
        }
        let stats = LoadStats {
            cache_hit,
            compile_ms,
            load_ms: started.elapsed().as_secs_f64() * 1e3,
            preinitialized: loaded.preinitialized,
        };
        tracing::debug!(
            digest = %loaded.digest,
            world = %loaded.world,
            language = loaded.language.as_deref().unwrap_or("unknown"),
            cache_hit,
            load_ms = stats.load_ms,
            "plugin loaded"
        );
        Ok(Plugin::new(name, limits, loaded, self.inner.clone(), stats))
    }

    /// Compile (or deserialize from the disk cache), check and link.
    fn compile(&self, name: &str, bytes: &[u8], digest: &str) -> Result<(Loaded, bool, f64)> {
        // Cheap checks on the bytes first, so that a component that would be
        // refused is never compiled.
        let inspection =
            inspect::inspect_with_digest(bytes, digest.to_string()).map_err(|e| match e {
                Error::NotAComponent { detail, .. } => Error::NotAComponent {
                    name: name.to_string(),
                    detail,
                },
                other => other,
            })?;
        if let Some((import, reason)) = inspection.refused_imports.first() {
            return Err(Error::ForbiddenImport {
                name: name.to_string(),
                import: import.clone(),
                reason,
            });
        }
        if inspection.world.is_none() {
            return Err(Error::UnknownWorld {
                name: name.to_string(),
                exports: inspection.exports,
            });
        }
        let digest_hex = &digest["sha256:".len()..];
        let from_cache = self.cached_component(digest_hex);
        let cache_hit = from_cache.is_some();
        let mut compile_ms = 0.0;
        let component = match from_cache {
            Some(c) => c,
            None => {
                let t = Instant::now();
                let component =
                    Component::new(&self.inner.engine, bytes).map_err(|e| Error::Compile {
                        name: name.to_string(),
                        source: boxed(e),
                    })?;
                compile_ms = t.elapsed().as_secs_f64() * 1e3;
                self.cache_component(digest_hex, &component);
                component
            }
        };
        let loaded = self.link(name, &component, digest, inspection.language)?;
        Ok((loaded, cache_hit, compile_ms))
    }

    /// A compiled component from the disk cache, if there is a good entry
    /// under `key` (a component digest or a pre-initialisation key, hex).
    fn cached_component(&self, key: &str) -> Option<Component> {
        let cache = self.inner.cache.as_ref()?;
        match cache.get(key) {
            Ok(serialized) => match deserialize(&self.inner.engine, &serialized) {
                Ok(component) => return Some(component),
                Err(e) => tracing::warn!(
                    error = %e,
                    "a verified cache entry did not deserialize; recompiling"
                ),
            },
            Err(Miss::Absent) => {}
            Err(Miss::Rejected(why)) => tracing::warn!(
                path = %cache.entry_path(key).display(),
                reason = why,
                "rejected a precompiled cache entry (deleted); recompiling"
            ),
            Err(Miss::Io(e)) => tracing::warn!(error = %e, "cannot read the component cache"),
        }
        None
    }

    /// Store a compiled component in the disk cache (best effort).
    fn cache_component(&self, key: &str, component: &Component) {
        let Some(cache) = &self.inner.cache else {
            return;
        };
        match component.serialize() {
            Ok(serialized) => {
                if let Err(e) = cache.put(key, &serialized) {
                    tracing::warn!(error = %e, "cannot write the component cache");
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot serialize a component"),
        }
    }

    /// Check a compiled component's imports and exports and link it.
    fn link(
        &self,
        name: &str,
        component: &Component,
        digest: &str,
        language: Option<String>,
    ) -> Result<Loaded> {
        let engine = &self.inner.engine;
        // The authoritative check, on what wasmtime will link.
        let ty = component.component_type();
        for (import, _) in ty.imports(engine) {
            if let Err(reason) = check_import(import) {
                return Err(Error::ForbiddenImport {
                    name: name.to_string(),
                    import: import.to_string(),
                    reason,
                });
            }
        }
        let exports: Vec<String> = ty.exports(engine).map(|(n, _)| n.to_string()).collect();
        let Some(contract) = contract_export(&exports) else {
            return Err(Error::UnknownWorld {
                name: name.to_string(),
                exports,
            });
        };
        let link = |e: wasmtime::Error| Error::Link {
            name: name.to_string(),
            source: boxed(e),
        };
        let pre = self.inner.linker.instantiate_pre(component).map_err(link)?;
        let guest = match contract.world {
            World::Policy => GuestIndices::Policy(decider::GuestIndices::new(&pre).map_err(link)?),
            World::Renderer => {
                GuestIndices::Renderer(render::GuestIndices::new(&pre).map_err(link)?)
            }
        };
        Ok(Loaded {
            digest: digest.to_string(),
            world: contract.world,
            language,
            pre,
            guest,
            preinitialized: false,
        })
    }

    /// [`Plugin::preinitialize`]: check the bytes, then
    /// [`Runtime::preinitialized`].
    pub(crate) fn preinitialize_loaded(
        &self,
        name: &str,
        limits: &PluginLimits,
        plain: &Loaded,
        bytes: &[u8],
        warmup: &Warmup,
    ) -> Result<Arc<Loaded>> {
        let bytes = text_to_binary(name, bytes)?;
        let actual = inspect::digest(&bytes);
        if actual != plain.digest {
            return Err(Error::DigestMismatch {
                name: name.to_string(),
                expected: plain.digest.clone(),
                actual,
            });
        }
        if warmup.is_empty() {
            return Err(Error::Preinit {
                name: name.to_string(),
                reason: "the warm-up is empty".into(),
            });
        }
        self.preinitialized(name, limits, plain, &bytes, warmup)
            .map(|(loaded, _)| loaded)
            .map_err(|reason| Error::Preinit {
                name: name.to_string(),
                reason,
            })
    }

    /// The pre-initialised variant of `plain` for `warmup`: from this
    /// runtime's table, the disk cache, or a fresh snapshot. The error is
    /// a one-line reason.
    fn preinitialized(
        &self,
        name: &str,
        limits: &PluginLimits,
        plain: &Loaded,
        bytes: &[u8],
        warmup: &Warmup,
    ) -> std::result::Result<(Arc<Loaded>, bool), String> {
        let key = warmup.key(&plain.digest);
        let table_key = format!("preinit:{key}");
        if let Some(loaded) = self.lock_loaded().get(&table_key).cloned() {
            return Ok((loaded, true));
        }
        let (component, hit) = match self.cached_component(&key) {
            Some(component) => (component, true),
            None => {
                let rewritten =
                    preinit::snapshot(&self.inner, name, limits, plain.world, bytes, warmup)?;
                let component = Component::new(&self.inner.engine, &rewritten)
                    .map_err(|e| format!("the snapshot does not compile: {e:#}"))?;
                self.cache_component(&key, &component);
                (component, false)
            }
        };
        let loaded = Loaded {
            preinitialized: true,
            ..self
                .link(name, &component, &plain.digest, plain.language.clone())
                .map_err(|e| format!("the snapshot does not link: {e}"))?
        };
        let loaded = self
            .lock_loaded()
            .entry(table_key)
            .or_insert_with(|| Arc::new(loaded))
            .clone();
        Ok((loaded, hit))
    }
}

/// WAT text is accepted (tests, hand-written fixtures) and digested as the
/// binary it encodes.
fn text_to_binary<'a>(name: &str, bytes: &'a [u8]) -> Result<std::borrow::Cow<'a, [u8]>> {
    if bytes.starts_with(b"\0asm") {
        return Ok(bytes.into());
    }
    wat::parse_bytes(bytes).map_err(|e| Error::NotAComponent {
        name: name.to_string(),
        detail: e.to_string(),
    })
}

/// Deserialize a cache entry.
#[expect(
    unsafe_code,
    reason = "deserializing precompiled code is unsafe by nature"
)]
fn deserialize(engine: &Engine, serialized: &[u8]) -> wasmtime::Result<Component> {
    // SAFETY: `serialized` is the payload of a cache entry whose HMAC-SHA256
    // tag, under the per-cache random key that only this code reads and
    // writes (mode 0600), was verified by `DiskCache::get` just now over
    // these exact in-memory bytes; so they are bytes this runtime produced
    // with `Component::serialize` for an engine with the same compatibility
    // hash (which is part of the tag), and not a file anyone else wrote or
    // modified. Wasmtime additionally checks the header and engine
    // compatibility before using them.
    unsafe { Component::deserialize(engine, serialized) }
}

fn build_engine(config: &RuntimeConfig) -> Result<(Engine, bool)> {
    let base = || {
        let mut c = Config::new();
        c.wasm_component_model(true)
            .epoch_interruption(true)
            .max_wasm_stack(config.max_wasm_stack)
            .memory_init_cow(true)
            // A 4 GiB reservation plus a guard region lets compiled code
            // skip bounds checks on 32-bit memories (an out-of-bounds access
            // hits the unmapped reservation and traps). It is address
            // space only: nothing is committed beyond what a plugin uses,
            // and the memory limit is enforced by the store's limiter.
            .memory_reservation(MEMORY_RESERVATION)
            .memory_guard_size(32 << 20)
            .parallel_compilation(true);
        c
    };
    if config.pooling {
        let mut c = base();
        c.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling_config(config)));
        match Engine::new(&c) {
            Ok(engine) => return Ok((engine, true)),
            Err(e) => tracing::warn!(
                error = %e,
                "cannot reserve the pooling allocator; falling back to on-demand allocation"
            ),
        }
    }
    let engine = Engine::new(&base()).map_err(|e| Error::Engine { source: boxed(e) })?;
    Ok((engine, false))
}

/// Pool sizes for `max_concurrent_calls` calls at once, each one store
/// with one component instance. Address space reserved, with the defaults
/// (128 calls): 256 memory slots of 4 GiB + 32 MiB (~1 TiB of the 128 TiB
/// of user address space, none of it committed until used).
fn pooling_config(config: &RuntimeConfig) -> PoolingAllocationConfig {
    let calls = u32::try_from(config.max_concurrent_calls.clamp(1, 4096)).unwrap_or(4096);
    let mut p = PoolingAllocationConfig::new();
    p.total_component_instances(2 * calls)
        // Interpreted guests (componentize-py) link a dozen core modules.
        .total_core_instances(16 * calls)
        .total_memories(2 * calls)
        .total_tables(8 * calls)
        .table_elements(100_000)
        .max_memory_size(config.max_memory_bytes)
        // Reset small memories with memset rather than madvise.
        // Between calls, keep the first 2 MiB of a memory slot mapped and
        // restore the pages the call dirtied (found with PAGEMAP_SCAN where
        // the kernel has it) instead of unmapping them: a Rust plugin's
        // stack, data and early heap live there, and re-faulting them on
        // every call costs more than the call itself. The price is up to
        // 2 MiB of RSS per warm slot.
        .linear_memory_keep_resident(2 << 20)
        .table_keep_resident(64 << 10)
        .pagemap_scan(wasmtime::Enabled::Auto);
    p
}

/// Advances the engine's epoch every [`EPOCH_TICK`] while at least one
/// plugin call is running, and for [`LINGER_TICKS`] ticks after the last
/// one ends; then it parks, so an idle agent does not wake up a hundred
/// times a second, while a busy one does not pay a wake-up per call. A
/// call holds a [`TickGuard`] from before its `Store` gets its deadline
/// until it returns.
pub(crate) struct Ticker {
    shared: Arc<TickShared>,
    thread: Option<JoinHandle<()>>,
}

struct TickShared {
    stop: AtomicBool,
    active: std::sync::atomic::AtomicUsize,
    /// Set by the ticker before it parks; a call that sees it set wakes
    /// the ticker.
    parked: AtomicBool,
}

/// Keeps the ticker running while held.
pub(crate) struct TickGuard {
    shared: Arc<TickShared>,
}

impl Drop for TickGuard {
    fn drop(&mut self) {
        self.shared.active.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Ticker {
    fn start(engine: &Engine) -> Ticker {
        let shared = Arc::new(TickShared {
            stop: AtomicBool::new(false),
            active: std::sync::atomic::AtomicUsize::new(0),
            parked: AtomicBool::new(false),
        });
        let engine = engine.clone();
        let flag = shared.clone();
        let thread = std::thread::Builder::new()
            .name("keyward-epoch".into())
            .spawn(move || {
                let mut idle = 0u32;
                while !flag.stop.load(Ordering::Relaxed) {
                    if flag.active.load(Ordering::SeqCst) > 0 {
                        idle = 0;
                    } else if idle >= LINGER_TICKS {
                        // Announce the park, then look again: a call that
                        // started in between either is seen here or sees
                        // `parked` and unparks us. An `unpark` that comes
                        // before `park` leaves a token, so none is lost.
                        flag.parked.store(true, Ordering::SeqCst);
                        if flag.active.load(Ordering::SeqCst) == 0
                            && !flag.stop.load(Ordering::SeqCst)
                        {
                            std::thread::park();
                        }
                        flag.parked.store(false, Ordering::SeqCst);
                        idle = 0;
                        continue;
                    } else {
                        idle += 1;
                    }
                    std::thread::park_timeout(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })
            .map_err(|e| tracing::error!(error = %e, "cannot start the epoch ticker: deadlines will not fire"))
            .ok();
        Ticker { shared, thread }
    }

    /// Mark a call as running; the ticker advances until the guard drops
    /// (and a little longer).
    pub(crate) fn enter(&self) -> TickGuard {
        self.shared.active.fetch_add(1, Ordering::SeqCst);
        if self.shared.parked.load(Ordering::SeqCst)
            && let Some(t) = &self.thread
        {
            t.thread().unpark();
        }
        TickGuard {
            shared: self.shared.clone(),
        }
    }

    /// Whether the ticker thread is parked (for tests).
    #[cfg(test)]
    pub(crate) fn is_parked(&self) -> bool {
        self.shared.parked.load(Ordering::SeqCst)
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Waits (polling, up to `limit`) until `cond` holds.
    fn eventually(limit: Duration, cond: impl Fn() -> bool) -> bool {
        let start = Instant::now();
        while start.elapsed() < limit {
            if cond() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        cond()
    }

    #[test]
    fn ticker_advances_while_called_and_parks_when_idle() {
        let engine = Engine::new(Config::new().epoch_interruption(true)).unwrap();
        let ticker = Ticker::start(&engine);
        // Idle from the start: it parks after its linger.
        assert!(eventually(Duration::from_secs(10), || ticker.is_parked()));
        // A call wakes it and the epoch advances while the call runs: a
        // store whose deadline is one tick away sees it pass.
        let guard = ticker.enter();
        let mut store = wasmtime::Store::new(&engine, ());
        store.set_epoch_deadline(1);
        let module =
            wasmtime::Module::new(&engine, "(module (func (export \"spin\") (loop (br 0))))")
                .unwrap();
        let instance = wasmtime::Instance::new(&mut store, &module, &[]).unwrap();
        let spin = instance
            .get_typed_func::<(), ()>(&mut store, "spin")
            .unwrap();
        let trap = spin.call(&mut store, ()).unwrap_err();
        assert_eq!(
            trap.downcast_ref::<wasmtime::Trap>(),
            Some(&wasmtime::Trap::Interrupt)
        );
        assert!(!ticker.is_parked());
        drop(guard);
        // ... and parks again once calls stop.
        assert!(eventually(Duration::from_secs(10), || ticker.is_parked()));
    }
}
