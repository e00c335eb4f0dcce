//! `VaultSource`: the pipeline's `SecretSource` backed by Vault. Reads or
//! issues one secret per request, hands leased and refreshable secrets to
//! the lease manager, and keeps the last good value of every key so callers
//! can go on serving it while Vault is unreachable.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use keyward_core::{Engine, Grant, RefKind, SecretRef, SecretRequest, SecretSource, SecretValue};
use serde_json::Value;
use tokio::time::Instant;

use crate::client::{Vault, join, pki_body};
use crate::error::{Error, Result};
use crate::leases::{Leases, Tracked};

/// Vault as a secret source.
#[derive(Clone)]
pub struct VaultSource {
    vault: Vault,
    leases: Option<Leases>,
    store: Arc<Mutex<BTreeMap<String, Stored>>>,
}

impl std::fmt::Debug for VaultSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys = self.store.lock().map(|s| s.len()).unwrap_or_default();
        f.debug_struct("VaultSource")
            .field("vault", &self.vault)
            .field("leases", &self.leases)
            .field("keys", &keys)
            .finish()
    }
}

struct Stored {
    value: Option<SecretValue>,
    last_success: Option<Instant>,
    last_error: Option<Instant>,
}

/// How fresh one key's value is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Staleness {
    /// The secret's key ([`SecretRef::key`]).
    pub key: String,
    /// Time since the last successful fetch; `None` if there never was one.
    pub since_success: Option<Duration>,
    /// The last fetch failed.
    pub failing: bool,
}

impl VaultSource {
    /// A source reading through `vault`, without lease management.
    pub fn new(vault: Vault) -> Self {
        VaultSource {
            vault,
            leases: None,
            store: Arc::new(Mutex::new(BTreeMap::new())),
        }
    }

    /// Hand every fetched secret to `leases` (renewal, refresh, re-issue)
    /// and report failed fetches to it (retry with backoff).
    pub fn with_leases(mut self, leases: Leases) -> Self {
        self.leases = Some(leases);
        self
    }

    /// The client.
    pub fn vault(&self) -> &Vault {
        &self.vault
    }

    /// Fetch with this crate's error type.
    pub async fn fetch_secret(
        &self,
        secret: &SecretRef,
        request: &SecretRequest,
        grant: &Grant,
    ) -> Result<SecretValue> {
        let key = secret.key();
        let result = self.fetch_uncached(secret, request, grant).await;
        let now = Instant::now();
        match &result {
            Ok(value) => {
                let previous = {
                    let mut store = self.store.lock().unwrap_or_else(|p| p.into_inner());
                    let entry = store.entry(key.clone()).or_insert(Stored {
                        value: None,
                        last_success: None,
                        last_error: None,
                    });
                    entry.last_success = Some(now);
                    entry.last_error = None;
                    entry.value.replace(value.clone())
                };
                if let Some(leases) = &self.leases {
                    leases.track(Tracked::new(key, request, grant, value, previous.as_ref()));
                }
            }
            Err(e) => {
                {
                    let mut store = self.store.lock().unwrap_or_else(|p| p.into_inner());
                    store
                        .entry(key.clone())
                        .or_insert(Stored {
                            value: None,
                            last_success: None,
                            last_error: None,
                        })
                        .last_error = Some(now);
                }
                tracing::warn!(key = %key, error = %e, "fetching a secret failed");
                if let Some(leases) = &self.leases {
                    leases.fetch_failed(&key, e.is_unreachable());
                }
            }
        }
        result
    }

    async fn fetch_uncached(
        &self,
        secret: &SecretRef,
        request: &SecretRequest,
        grant: &Grant,
    ) -> Result<SecretValue> {
        let invalid = |detail: &str| Error::InvalidRequest {
            reference: request.reference.clone(),
            detail: detail.to_string(),
        };
        let params = &request.parameters;
        let cap = grant.max_ttl_seconds.map(Duration::from_secs);
        let mut value = match request.engine {
            Engine::Kv1 => {
                if !params.is_empty() {
                    return Err(invalid("KV version 1 reads take no parameters"));
                }
                self.vault.kv1_read(&request.mount, &request.path).await?
            }
            Engine::Kv2 => {
                if !params.is_empty() {
                    return Err(invalid("KV version 2 reads take no parameters"));
                }
                self.vault
                    .kv2_read(&request.mount, &request.path, request.version)
                    .await?
            }
            Engine::Database => {
                if !params.is_empty() {
                    return Err(invalid("database credentials take no parameters"));
                }
                if !(request.path.starts_with("creds/")
                    || request.path.starts_with("static-creds/"))
                {
                    return Err(invalid(
                        "database references read <mount>/creds/<role> or <mount>/static-creds/<role>",
                    ));
                }
                self.vault
                    .read(&join(&request.mount, &request.path), &[])
                    .await?
            }
            Engine::Pki => {
                let path = join(&request.mount, &request.path);
                let issues = ["issue/", "sign/", "sign-verbatim"]
                    .iter()
                    .any(|p| request.path.starts_with(p));
                if issues || secret.kind == RefKind::PkiCert || !params.is_empty() {
                    let body = pki_body(&request.reference, params, cap)?;
                    self.vault.write(&path, &body).await?.ok_or_else(|| {
                        Error::MalformedResponse {
                            path: path.clone(),
                            detail: "empty answer".into(),
                        }
                    })?
                } else {
                    self.vault.read(&path, &[]).await?
                }
            }
            Engine::Transit | Engine::Generic => {
                let path = join(&request.mount, &request.path);
                if params.is_empty() {
                    let query: Vec<(&str, String)> = request
                        .version
                        .map(|v| ("version", v.to_string()))
                        .into_iter()
                        .collect();
                    self.vault.read(&path, &query).await?
                } else {
                    let body = Value::Object(
                        params
                            .iter()
                            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                            .collect(),
                    );
                    // A write that answers nothing (HTTP 204) yields an
                    // empty `data` object.
                    self.vault.write(&path, &body).await?.unwrap_or_else(|| {
                        SecretValue::from_response(secret, &serde_json::json!({}))
                            .unwrap_or_else(|_| unreachable!("an empty object is a valid answer"))
                    })
                }
            }
        };
        value.reference = secret.reference.clone();
        value.parameters = secret.parameters.clone();
        Ok(value)
    }

    /// The last value fetched successfully for `key`
    /// ([`SecretRef::key`]).
    pub fn last_good(&self, key: &str) -> Option<SecretValue> {
        let store = self.store.lock().unwrap_or_else(|p| p.into_inner());
        store.get(key).and_then(|s| s.value.clone())
    }

    /// Time since the last successful fetch of `key`.
    pub fn staleness_of(&self, key: &str) -> Option<Duration> {
        let store = self.store.lock().unwrap_or_else(|p| p.into_inner());
        store
            .get(key)
            .and_then(|s| s.last_success)
            .map(|t| t.elapsed())
    }

    /// Freshness of every key fetched so far (for `/metrics`).
    pub fn staleness(&self) -> Vec<Staleness> {
        let store = self.store.lock().unwrap_or_else(|p| p.into_inner());
        store
            .iter()
            .map(|(key, s)| Staleness {
                key: key.clone(),
                since_success: s.last_success.map(|t| t.elapsed()),
                failing: match (s.last_error, s.last_success) {
                    (Some(e), Some(ok)) => e > ok,
                    (Some(_), None) => true,
                    _ => false,
                },
            })
            .collect()
    }
}

#[async_trait]
impl SecretSource for VaultSource {
    async fn fetch(
        &self,
        secret: &SecretRef,
        request: &SecretRequest,
        grant: &Grant,
    ) -> std::result::Result<SecretValue, Box<dyn std::error::Error + Send + Sync>> {
        self.fetch_secret(secret, request, grant)
            .await
            .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)
    }
}
