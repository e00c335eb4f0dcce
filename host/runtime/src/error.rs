//! The crate's error type: everything that can go wrong while building the
//! engine or loading a plugin. Failures of a plugin *call* are
//! [`keyward_core::PluginFailure`] values instead.

use std::path::PathBuf;

use crate::config::World;

/// Result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A boxed cause (wasmtime's own error type does not implement
/// `std::error::Error`, so it is carried boxed).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Loading, compiling, checking or caching a plugin failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The wasmtime engine could not be configured.
    #[error("cannot create the WebAssembly engine")]
    Engine {
        /// Cause.
        #[source]
        source: BoxError,
    },
    /// The configured precompiled-component cache directory is unusable.
    #[error("cannot use the component cache directory {path:?}")]
    Cache {
        /// The directory.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The component file could not be read.
    #[error("cannot read plugin {name:?} from {path:?}")]
    Read {
        /// Plugin name.
        name: String,
        /// File.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// `PluginSpec::digest` is not of the form `sha256:<64 hex digits>`.
    #[error("plugin {name:?}: invalid digest {digest:?}, expected \"sha256:<64 hex digits>\"")]
    InvalidDigest {
        /// Plugin name.
        name: String,
        /// What was given.
        digest: String,
    },
    /// The component's digest differs from the one the plugin is pinned to.
    #[error("plugin {name:?}: digest mismatch: expected {expected}, the component is {actual}")]
    DigestMismatch {
        /// Plugin name.
        name: String,
        /// Pinned digest.
        expected: String,
        /// Digest of the bytes.
        actual: String,
    },
    /// A plugin could not be pre-initialised with its configuration (a
    /// warm-up call failed, or left WASI resources open, or the snapshot
    /// failed). The plugin keeps working without it.
    #[error("plugin {name:?}: cannot pre-initialise it with its configuration: {reason}")]
    Preinit {
        /// Plugin name.
        name: String,
        /// Why, in one line.
        reason: String,
    },
    /// The bytes are not a WebAssembly component.
    #[error("plugin {name:?}: not a WebAssembly component: {detail}")]
    NotAComponent {
        /// Plugin name (empty for [`crate::inspect`]).
        name: String,
        /// What is wrong.
        detail: String,
    },
    /// The component does not compile (invalid, unsupported features, ...).
    #[error("plugin {name:?}: the component does not compile")]
    Compile {
        /// Plugin name.
        name: String,
        /// Cause.
        #[source]
        source: BoxError,
    },
    /// The component imports something the sandbox does not offer.
    #[error(
        "plugin {name:?}: import {import:?} is not allowed ({reason}); plugins may import only \
         keyward:plugin/*@0.1.x and wasi:{{cli,clocks,filesystem,io,random,sockets}}/*@0.2.x"
    )]
    ForbiddenImport {
        /// Plugin name.
        name: String,
        /// The offending import.
        import: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// The component's exports match neither world.
    #[error(
        "plugin {name:?} exports {exports:?}, but a plugin must export exactly one of \
         \"keyward:plugin/decider@0.1.x\" (world policy) or \"keyward:plugin/render@0.1.x\" \
         (world renderer)"
    )]
    UnknownWorld {
        /// Plugin name.
        name: String,
        /// What it exports.
        exports: Vec<String>,
    },
    /// The component's imports cannot be satisfied or its exports have the
    /// wrong types.
    #[error("plugin {name:?} does not match the keyward:plugin contract")]
    Link {
        /// Plugin name.
        name: String,
        /// Cause.
        #[source]
        source: BoxError,
    },
    /// The plugin targets another world than the one asked for.
    #[error("plugin {name:?} is a {actual} plugin, not a {wanted} plugin")]
    WrongWorld {
        /// Plugin name.
        name: String,
        /// Its world.
        actual: World,
        /// The world asked for.
        wanted: World,
    },
    /// The plugin's limits are invalid or exceed what the runtime allows.
    #[error("plugin {name:?}: invalid limits: {detail}")]
    Limits {
        /// Plugin name.
        name: String,
        /// What is wrong.
        detail: String,
    },
}

/// Box a wasmtime error as a `#[source]`.
pub(crate) fn boxed(err: wasmtime::Error) -> BoxError {
    err.into()
}
