//! The crate's error type. Messages name what failed and where (paths,
//! mounts, hashed lease ids) and may include Vault's own error strings; they
//! never contain a token, a secret value or a response body.

/// Result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything talking to Vault can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is invalid.
    #[error("invalid Vault configuration: {detail}")]
    Config {
        /// What is wrong.
        detail: String,
    },
    /// A credential or certificate file could not be read.
    #[error("cannot read {what} from {path}: {source}")]
    ReadFile {
        /// What the file holds (`JWT`, `secret id`, `CA bundle`, ...).
        what: &'static str,
        /// The file.
        path: std::path::PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// TLS could not be set up (bad CA bundle, client key, server name).
    #[error("TLS setup failed: {detail}")]
    Tls {
        /// What is wrong.
        detail: String,
    },
    /// Logging in failed.
    #[error("login with auth method {method} at auth/{mount} failed: {detail}")]
    Login {
        /// Auth method.
        method: &'static str,
        /// Auth mount (empty for tokens).
        mount: String,
        /// Vault's errors or what else went wrong.
        detail: String,
    },
    /// No valid token: not logged in yet, or the token expired or was
    /// revoked and logging in again is not possible.
    #[error("no valid Vault token: {detail}")]
    NoToken {
        /// Why.
        detail: String,
    },
    /// Vault refused the request (HTTP 403).
    #[error("permission denied on {path}{}", errors_suffix(.errors))]
    PermissionDenied {
        /// Request path (`mount/...`, no query).
        path: String,
        /// Vault's errors.
        errors: Vec<String>,
    },
    /// Nothing at the path (HTTP 404), or a KV version that is deleted or
    /// destroyed.
    #[error("nothing found at {path}{}", errors_suffix(.errors))]
    NotFound {
        /// Request path.
        path: String,
        /// Vault's errors.
        errors: Vec<String>,
    },
    /// Vault could not be reached, is sealed, or is not active (connection
    /// errors, timeouts, HTTP 5xx other than 500). Callers keep their
    /// last-good values.
    #[error("Vault at {address} is unreachable ({detail})")]
    Unreachable {
        /// Server address.
        address: String,
        /// What happened.
        detail: String,
    },
    /// Vault rejected the request (HTTP 400, 500, ...).
    #[error("Vault rejected {method} {path} with HTTP {status}{}", errors_suffix(.errors))]
    Api {
        /// HTTP method.
        method: &'static str,
        /// Request path.
        path: String,
        /// HTTP status.
        status: u16,
        /// Vault's errors.
        errors: Vec<String>,
    },
    /// Vault's answer did not have the expected shape.
    #[error("unexpected response from {path}: {detail}")]
    MalformedResponse {
        /// Request path.
        path: String,
        /// What is wrong (never the body).
        detail: String,
    },
    /// A request cannot be turned into a Vault call.
    #[error("cannot fetch {reference:?}: {detail}")]
    InvalidRequest {
        /// Reference as requested.
        reference: String,
        /// What is wrong.
        detail: String,
    },
    /// Renewing a lease failed.
    #[error("renewing lease {lease_id_sha256} of {key:?} failed: {source}")]
    LeaseRenewal {
        /// The secret's key.
        key: String,
        /// SHA-256 of the lease id.
        lease_id_sha256: String,
        /// Cause.
        #[source]
        source: Box<Error>,
    },
    /// Revoking a lease failed.
    #[error("revoking lease {lease_id_sha256} failed: {source}")]
    LeaseRevocation {
        /// SHA-256 of the lease id.
        lease_id_sha256: String,
        /// Cause.
        #[source]
        source: Box<Error>,
    },
    /// Renewing the token failed.
    #[error("renewing the Vault token failed: {source}")]
    TokenRenewal {
        /// Cause.
        #[source]
        source: Box<Error>,
    },
    /// The lease manager has stopped.
    #[error("the lease manager has stopped")]
    LeasesStopped,
}

impl Error {
    /// Vault could not be reached; the caller should keep last-good values
    /// and retry later.
    pub fn is_unreachable(&self) -> bool {
        match self {
            Error::Unreachable { .. } => true,
            Error::LeaseRenewal { source, .. }
            | Error::LeaseRevocation { source, .. }
            | Error::TokenRenewal { source } => source.is_unreachable(),
            _ => false,
        }
    }

    /// Vault answered that the token is not allowed (or not valid).
    pub fn is_permission_denied(&self) -> bool {
        matches!(self, Error::PermissionDenied { .. })
    }
}

fn errors_suffix(errors: &[String]) -> String {
    let errors: Vec<&str> = errors
        .iter()
        .map(|e| e.trim())
        .filter(|e| !e.is_empty())
        .collect();
    if errors.is_empty() {
        String::new()
    } else {
        format!(": {}", errors.join("; "))
    }
}
