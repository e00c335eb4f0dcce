//! Keyward's Vault/OpenBao side: authentication (kubernetes, jwt, approle,
//! token), the secrets engines (KV v1/v2, database, PKI, transit, generic
//! read/write), TLS to the server, and the lease manager that renews,
//! refreshes, re-issues and revokes. [`VaultSource`] implements
//! `keyward_core::SecretSource`.
//!
//! Built on vaultrs for logins and token operations; the few calls vaultrs
//! lacks or that need the whole response envelope (lease id, duration, the
//! exact `data` object) are typed raw calls in one private module.
//!
//! Depends on `keyward-core` only among Keyward's crates. Tokens and values
//! never reach a log line, an error message or a `Debug` output.
//!
//! ```no_run
//! # async fn demo(config: keyward_vault::VaultConfig) -> keyward_vault::Result<()> {
//! use keyward_vault::{CancellationToken, Leases, Vault, VaultSource};
//! let vault = Vault::new(config, keyward_core::Auditor::null())?;
//! vault.login().await?;
//! let (leases, mut events) = Leases::start(vault.clone(), CancellationToken::new());
//! let source = VaultSource::new(vault).with_leases(leases.clone());
//! // pipeline.fetch(&decided, &source) ...; then, for each event:
//! while let Some(event) = events.recv().await {
//!     // LeaseEvent::NeedsRefetch { key, .. } => re-fetch `key` and re-render
//! #   let _ = event;
//! }
//! leases.shutdown().await;
//! # Ok(()) }
//! ```

mod api;
mod backoff;
mod cert;
mod client;
mod config;
mod error;
mod leases;
mod source;
mod tls;

pub use cert::{Validity, issued_validity, pem_validity};
pub use client::{Ciphertext, TokenInfo, Vault};
pub use config::{AuthConfig, LeaseConfig, TlsConfig, VaultConfig};
pub use error::{Error, Result};
pub use leases::{LeaseEvent, LeaseStatus, Leases, RefetchReason, ShutdownReport};
pub use source::{Staleness, VaultSource};
pub use tokio_util::sync::CancellationToken;
