//! The harness's error type.

/// Result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong starting or driving a test server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A tool is missing and could not be installed.
    #[error("{what} is not available: {detail}\n  to install it: {install}")]
    Missing {
        /// The tool.
        what: &'static str,
        /// What was tried.
        detail: String,
        /// How to install it by hand.
        install: String,
    },
    /// A server did not start or did not become ready.
    #[error("{what} did not start: {detail}\n--- last lines of its log ({log}) ---\n{tail}")]
    Start {
        /// The server.
        what: &'static str,
        /// What happened.
        detail: String,
        /// Log file.
        log: String,
        /// The log's last lines.
        tail: String,
    },
    /// A command failed.
    #[error("`{command}` failed: {detail}")]
    Command {
        /// The command line.
        command: String,
        /// Exit status and output.
        detail: String,
    },
    /// A server API call failed.
    #[error("{method} {path} failed: {detail}")]
    Api {
        /// HTTP method.
        method: String,
        /// Path below /v1/.
        path: String,
        /// Status and errors.
        detail: String,
    },
    /// File system or process error.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let context = context.into();
    move |source| Error::Io { context, source }
}
