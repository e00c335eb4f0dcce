//! Keyward's plugin runtime: the one wasmtime engine of a process and the
//! sandbox every plugin call runs in.
//!
//! This crate owns the `bindgen!` of the `keyward:plugin` contract (in
//! `bindings.rs`, with the conversions to `keyward_core` types next to it
//! in `convert.rs`), loading and checking components, the precompiled
//! component cache, and per-call limits. It depends on `keyward-core` only
//! (no Vault, no front end), and sets up no logging: it emits `tracing`
//! events, plugin output under the target `keyward::plugin`.
//!
//! # The sandbox
//!
//! * **One engine**: component model, epoch interruption (a background
//!   thread advances the epoch every 10 ms), the pooling instance allocator
//!   with copy-on-write memory images (falling back to on-demand allocation
//!   with a warning if the pool cannot be reserved), a bounded wasm stack.
//! * **One `InstancePre` per component digest**, kept in the runtime's
//!   plugin table; a fresh `Store` per call with a memory cap (growth
//!   beyond it traps), an epoch deadline and hostcall fuel.
//! * **Calls** run on tokio's blocking pool behind a semaphore
//!   (`max_concurrent_calls`), in the caller's tracing span. The tokio
//!   runtime must have its time driver enabled.
//! * **Imports**: a component may import `keyward:plugin/*@0.1.x` and
//!   `wasi:{cli,clocks,filesystem,io,random,sockets}/*@0.2.x`; anything else
//!   (including `wasi:http`) is refused at load, naming the import. WASI is
//!   linked with everything denied at call time: no preopened directory, no
//!   environment, no arguments, empty stdin, no sockets (TCP, UDP and name
//!   lookup disabled, every address refused), no sleep past the call's
//!   deadline. stdout and stderr go to bounded in-memory pipes.
//! * **`log`**: at most [`PluginLimits::log_lines`] lines per call, each cut
//!   to 1 KiB, emitted as `tracing` events with the plugin's name; every
//!   secret value of the current render call (each string leaf of every
//!   secret's `data`, at least 4 bytes long, also JSON-escaped) is replaced
//!   by `<redacted>` in log lines and in captured stdout/stderr first.
//!
//! # Failures of a call
//!
//! | what happened | [`keyward_core::PluginFailure`] |
//! |---|---|
//! | the plugin returned its `plugin-error` | `Plugin(..)` |
//! | the deadline passed (epoch interrupt, or a sleep past it) | `Sandbox { reason: Timeout }` |
//! | memory growth beyond the limit | `Sandbox { reason: MemoryLimit }` |
//! | more than `hostcall_fuel` bytes in one guest-to-host transfer (a `log` line, a result) | `Sandbox { reason: HostcallLimit }` |
//! | any other trap (unreachable, stack overflow, `exit`) — trap code only | `Sandbox { reason: Trap }` |
//! | instantiation failed | `Sandbox { reason: Load }` |
//! | a result breaking the contract (duplicate keys) | `Sandbox { reason: Contract }` |
//!
//! Output over its bound is truncated and counted, never an error: the
//! pipeline's check step bounds what is delivered.
//!
//! # Limits by guest language
//!
//! See [`PluginLimits`] for the table; a [`PluginSpec`] may override them.
//!
//! # Pre-initialisation
//!
//! A [`PluginSpec::warmup`] (or [`Plugin::preinitialize`]) names the
//! settings and templates a plugin will be called with. The runtime calls
//! `validate-settings` / `plan` with them on one instance, snapshots its
//! memories and globals into a new component (wasmtime-wizer), compiles
//! and caches it, and starts every later call from that image, so a guest
//! that keeps what it parsed skips parsing. A warm-up call that fails, or
//! that leaves a WASI resource open, is refused (see the `preinit`
//! module); the plugin then runs from its plain image.
//!
//! # Precompiled cache
//!
//! See the `cache` module: entries keyed by component sha256 and the
//! engine's compatibility hash, written atomically with mode 0600, tagged
//! with an HMAC under a per-cache random key and verified before they are
//! deserialized; a damaged entry is deleted and recompiled.

mod bindings;
mod cache;
mod config;
mod convert;
mod error;
mod host;
mod inspect;
mod plugin;
mod preinit;
mod redact;
mod runtime;

pub use config::{
    CACHE_DIR_ENV, LoadStats, PluginLimits, PluginSpec, RuntimeConfig, World, default_cache_dir,
};
pub use error::{BoxError, Error, Result};
pub use inspect::{Inspection, digest, inspect};
pub use plugin::Plugin;
pub use preinit::Warmup;
pub use runtime::Runtime;
