//! The agent's error type.

/// Result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong in the agent. Messages never contain secret values.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration file is unreadable or invalid.
    #[error("configuration {path}: {detail}")]
    Config {
        /// File.
        path: String,
        /// What is wrong.
        detail: String,
    },
    /// Writing an artifact failed.
    #[error("delivering {target}: {source}")]
    Delivery {
        /// File or destination.
        target: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The pipeline failed.
    #[error(transparent)]
    Pipeline(#[from] keyward_core::Error),
    /// Loading a plugin failed.
    #[error("plugin {name:?}: {source}")]
    Plugin {
        /// Plugin name.
        name: String,
        /// Cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Vault failed.
    #[error("vault: {0}")]
    Vault(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The child process could not be started or signalled.
    #[error("command {command:?}: {source}")]
    Command {
        /// Program.
        command: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The health/metrics listener failed.
    #[error("listener {addr}: {source}")]
    Listen {
        /// Address.
        addr: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}
