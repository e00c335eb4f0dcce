//! Runtime and per-plugin configuration, with the per-language defaults.

use crate::preinit::Warmup;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Environment variable overriding the default cache directory.
pub const CACHE_DIR_ENV: &str = "KEYWARD_CACHE_DIR";

/// How the one engine of a process is set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeConfig {
    /// Where precompiled components are cached. `None` disables the disk
    /// cache. Default: `$KEYWARD_CACHE_DIR`, else
    /// `$XDG_CACHE_HOME/keyward/components`, else
    /// `~/.cache/keyward/components` (none if no home directory is known).
    pub cache_dir: Option<PathBuf>,
    /// Plugin calls running at once; further calls wait. Default 128.
    pub max_concurrent_calls: usize,
    /// The largest linear memory any plugin may be given
    /// ([`PluginLimits::memory_bytes`] above it is refused at load). It sizes
    /// the pooling allocator's memory slots. Default 512 MiB.
    pub max_memory_bytes: usize,
    /// Use the pooling instance allocator (falls back to on-demand
    /// allocation, with a warning, when the pool cannot be reserved).
    /// Default true.
    pub pooling: bool,
    /// Largest native stack wasm code may use. Default 1 MiB.
    pub max_wasm_stack: usize,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            cache_dir: default_cache_dir(),
            max_concurrent_calls: 128,
            max_memory_bytes: 512 << 20,
            pooling: true,
            max_wasm_stack: 1 << 20,
        }
    }
}

/// `$KEYWARD_CACHE_DIR`, `$XDG_CACHE_HOME/keyward/components` or
/// `~/.cache/keyward/components`.
pub fn default_cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os(CACHE_DIR_ENV).filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("keyward").join("components"));
    }
    std::env::var_os("HOME")
        .filter(|d| !d.is_empty())
        .map(|home| PathBuf::from(home).join(".cache/keyward/components"))
}

/// Which world a component targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum World {
    /// Exports `keyward:plugin/decider`.
    Policy,
    /// Exports `keyward:plugin/render`.
    Renderer,
}

impl World {
    /// `policy` or `renderer`.
    pub fn as_str(self) -> &'static str {
        match self {
            World::Policy => "policy",
            World::Renderer => "renderer",
        }
    }
}

impl fmt::Display for World {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What to load and how to confine it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PluginSpec {
    /// Name used in logs, errors and audit records.
    pub name: String,
    /// Pinned digest, `sha256:<hex>`; a component with another digest is
    /// refused.
    pub digest: Option<String>,
    /// Limits; `None` selects the defaults for the guest's language
    /// ([`PluginLimits::for_language`]).
    pub limits: Option<PluginLimits>,
    /// The configuration the plugin will be called with, when known at
    /// load time: the runtime then calls `validate-settings` / `plan` with
    /// it once and starts every later call from a snapshot of that
    /// instance (see [`Warmup`]). Calls with any other settings or
    /// template still work, parsing them as usual.
    pub warmup: Option<Warmup>,
}

impl PluginSpec {
    /// A spec with a name only.
    pub fn named(name: impl Into<String>) -> Self {
        PluginSpec {
            name: name.into(),
            ..PluginSpec::default()
        }
    }
}

/// Sandbox limits of one plugin, applied to every call.
///
/// Defaults by guest language (detected from the component's `producers`
/// section, see [`crate::Inspection::language`]):
///
/// | language | decide deadline | render / plan / validate deadline | memory | hostcall fuel | stdout+stderr kept | log lines |
/// |---|---|---|---|---|---|---|
/// | rust, c, go, unknown | 100 ms | 250 ms | 64 MiB | 8 MiB | 64 KiB each | 100 |
/// | python (componentize-py) | 1 s | 2 s | 256 MiB | 8 MiB | 64 KiB each | 100 |
/// | javascript (componentize-js / StarlingMonkey) | 1 s | 2 s | 256 MiB | 8 MiB | 64 KiB each | 100 |
///
/// Measured with the example plugins of `examples/` (release build, one
/// `decide` call): a Rust or C guest needs 1-2 MiB of linear memory and
/// 0.1-0.7 ms; a componentize-py guest starts from a ~13 MiB pre-initialised
/// heap and takes ~2.5 ms warm (15 ms for the first call of a process); a
/// componentize-js (StarlingMonkey) guest ~10 MiB and ~0.8 ms (13 ms
/// first). Interpreter heaps grow quickly with real work (parsing settings,
/// templates, JSON), so interpreted guests get 256 MiB and second-scale
/// deadlines: generous, but still a hard stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PluginLimits {
    /// CPU (wall) deadline of a `decide` call.
    pub decide_deadline: Duration,
    /// Deadline of `render`, `plan` and `validate-settings` calls.
    pub render_deadline: Duration,
    /// Linear memory cap per call (all memories of the instance together
    /// each stay below it; growth beyond traps with reason `memory`).
    pub memory_bytes: usize,
    /// Bytes one guest-to-host transfer may carry (a `log` message, a WASI
    /// write, a call's result). Wasmtime's default is 128 MiB; the default
    /// here, 8 MiB, is twice the pipeline's 4 MiB output bound so that any
    /// render the check step could accept fits.
    pub hostcall_fuel: usize,
    /// Bytes of stdout and of stderr kept per call; the rest is dropped and
    /// counted.
    pub output_bytes: usize,
    /// `log` lines emitted per call; the rest is dropped and counted.
    pub log_lines: usize,
}

impl PluginLimits {
    /// The defaults for native guests (Rust, C, Go, unknown).
    pub const NATIVE: PluginLimits = PluginLimits {
        decide_deadline: Duration::from_millis(100),
        render_deadline: Duration::from_millis(250),
        memory_bytes: 64 << 20,
        hostcall_fuel: 8 << 20,
        output_bytes: 64 << 10,
        log_lines: 100,
    };

    /// The defaults for interpreted guests (Python, JavaScript).
    pub const INTERPRETED: PluginLimits = PluginLimits {
        decide_deadline: Duration::from_secs(1),
        render_deadline: Duration::from_secs(2),
        memory_bytes: 256 << 20,
        hostcall_fuel: 8 << 20,
        output_bytes: 64 << 10,
        log_lines: 100,
    };

    /// The defaults for a guest language as [`crate::inspect`] reports it.
    pub fn for_language(language: Option<&str>) -> PluginLimits {
        match language {
            Some("python" | "javascript") => PluginLimits::INTERPRETED,
            _ => PluginLimits::NATIVE,
        }
    }

    pub(crate) fn validate(&self, max_memory_bytes: usize) -> Result<(), String> {
        if self.decide_deadline.is_zero() || self.render_deadline.is_zero() {
            return Err("deadlines must be positive".into());
        }
        if self.decide_deadline > MAX_DEADLINE || self.render_deadline > MAX_DEADLINE {
            return Err(format!(
                "deadlines above {MAX_DEADLINE:?} are not supported"
            ));
        }
        if self.memory_bytes < (1 << 16) {
            return Err("memory_bytes must be at least one 64 KiB page".into());
        }
        if self.memory_bytes > max_memory_bytes {
            return Err(format!(
                "memory_bytes {} exceeds the runtime's max_memory_bytes {}",
                self.memory_bytes, max_memory_bytes
            ));
        }
        if self.hostcall_fuel == 0 {
            return Err("hostcall_fuel must be positive".into());
        }
        Ok(())
    }
}

impl Default for PluginLimits {
    fn default() -> Self {
        PluginLimits::NATIVE
    }
}

/// Longest deadline a plugin may be given.
const MAX_DEADLINE: Duration = Duration::from_secs(600);

/// How a plugin was loaded.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LoadStats {
    /// No compilation was needed: the component came from this runtime's
    /// plugin table or from the precompiled cache on disk.
    pub cache_hit: bool,
    /// Milliseconds spent compiling (0 on a cache hit).
    pub compile_ms: f64,
    /// Milliseconds the whole load took (read, digest, checks, compile or
    /// deserialize, link, and any warm-up and snapshot).
    pub load_ms: f64,
    /// Calls start from a snapshot taken after the spec's
    /// [`PluginSpec::warmup`] (false without one, or when it failed: the
    /// reason is logged as a warning).
    pub preinitialized: bool,
}
