//! `Vault`: one server, one identity. Logs in with the configured method,
//! keeps the token (renewing or replacing it is the lease manager's job, but
//! any call that finds the token expired or revoked logs in again and
//! retries once), and offers the engines' operations.

use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use keyward_core::{AuditEvent, Auditor, SecretRef, SecretValue, Sensitive, hash_id};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use tokio::sync::Notify;
use tokio::time::Instant;
use vaultrs::api::AuthInfo;

use crate::api::{Http, LeaseRenewed, Method};
use crate::config::{AuthConfig, VaultConfig};
use crate::error::{Error, Result};

/// A client for one Vault/OpenBao server, logged in as one identity.
/// Cloning is cheap and shares the token and the connection pool.
#[derive(Clone)]
pub struct Vault {
    inner: Arc<Inner>,
}

struct Inner {
    config: VaultConfig,
    http: Http,
    auditor: Auditor,
    token: RwLock<Option<TokenState>>,
    /// One login at a time.
    login: tokio::sync::Mutex<()>,
    /// Fires whenever the token changes (login, renewal).
    token_changed: Notify,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("address", &self.inner.http.address())
            .field("namespace", &self.inner.config.namespace)
            .field("auth", &self.inner.config.auth.method())
            .field("token", &self.token_info())
            .finish()
    }
}

#[derive(Clone)]
pub(crate) struct TokenState {
    pub(crate) token: SecretString,
    pub(crate) accessor: String,
    /// TTL when obtained or last renewed; zero means it never expires.
    pub(crate) ttl: Duration,
    /// TTL asked for at renewal: the TTL it was created with.
    pub(crate) creation_ttl: Duration,
    pub(crate) renewable: bool,
    /// When `ttl` was measured.
    pub(crate) since: Instant,
    /// Increases at every login.
    pub(crate) generation: u64,
    pub(crate) policies: Vec<String>,
}

impl TokenState {
    pub(crate) fn expires_at(&self) -> Option<Instant> {
        (!self.ttl.is_zero()).then(|| self.since + self.ttl)
    }
}

/// What is known about the current token, without the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    /// Auth method it came from.
    pub method: &'static str,
    /// SHA-256 of the token's accessor.
    pub accessor_sha256: Option<String>,
    /// Remaining TTL; `None` when it never expires.
    pub ttl: Option<Duration>,
    /// Renewable.
    pub renewable: bool,
    /// Policies.
    pub policies: Vec<String>,
    /// Increases at every login.
    pub generation: u64,
}

/// A transit ciphertext.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ciphertext(pub String);

impl Vault {
    /// A client for `config`. Checks the configuration and sets up TLS;
    /// does not touch the network (call [`Vault::login`]).
    pub fn new(config: VaultConfig, auditor: Auditor) -> Result<Vault> {
        config.validate()?;
        let http = Http::new(&config)?;
        Ok(Vault {
            inner: Arc::new(Inner {
                config,
                http,
                auditor,
                token: RwLock::new(None),
                login: tokio::sync::Mutex::new(()),
                token_changed: Notify::new(),
            }),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &VaultConfig {
        &self.inner.config
    }

    /// The server address.
    pub fn address(&self) -> &str {
        self.inner.http.address()
    }

    pub(crate) fn auditor(&self) -> &Auditor {
        &self.inner.auditor
    }

    pub(crate) fn token_changed(&self) -> &Notify {
        &self.inner.token_changed
    }

    /// What is known about the current token.
    pub fn token_info(&self) -> Option<TokenInfo> {
        let state = self.token_state()?;
        Some(TokenInfo {
            method: self.inner.config.auth.method(),
            accessor_sha256: hash_id(&state.accessor),
            ttl: state
                .expires_at()
                .map(|e| e.saturating_duration_since(Instant::now())),
            renewable: state.renewable,
            policies: state.policies.clone(),
            generation: state.generation,
        })
    }

    pub(crate) fn token_state(&self) -> Option<TokenState> {
        self.inner.token.read().ok().and_then(|t| t.clone())
    }

    fn set_token(&self, state: TokenState) {
        if let Ok(mut t) = self.inner.token.write() {
            *t = Some(state);
        }
        self.inner.token_changed.notify_waiters();
        self.inner.token_changed.notify_one();
    }

    /// Log in with the configured method, replacing any current token.
    pub async fn login(&self) -> Result<TokenInfo> {
        let generation = self.token_state().map(|t| t.generation).unwrap_or(0);
        self.login_if_generation(generation).await?;
        self.token_info().ok_or_else(|| Error::NoToken {
            detail: "login returned no token".into(),
        })
    }

    /// Log in unless someone else already did since `seen_generation`.
    async fn login_if_generation(&self, seen_generation: u64) -> Result<()> {
        let _guard = self.inner.login.lock().await;
        if let Some(t) = self.token_state()
            && t.generation > seen_generation
        {
            return Ok(());
        }
        let next_generation = seen_generation + 1;
        let auth = &self.inner.config.auth;
        let method = auth.method();
        let mount = auth.mount().unwrap_or_default().to_string();
        let login_error = |e: Error| match e {
            Error::Unreachable { .. } | Error::ReadFile { .. } => e,
            other => Error::Login {
                method,
                mount: mount.clone(),
                detail: other.to_string(),
            },
        };
        let http = &self.inner.http;
        let info = match auth {
            AuthConfig::Token {
                token_file,
                token_env,
            } => {
                let token = match (token_file, token_env) {
                    (Some(path), _) => read_secret(path, "token")?,
                    (None, env) => {
                        let var = env.as_deref().unwrap_or("VAULT_TOKEN");
                        let value = std::env::var(var).map_err(|_| Error::Login {
                            method,
                            mount: String::new(),
                            detail: format!("environment variable {var} is not set"),
                        })?;
                        SecretString::from(value.trim().to_string())
                    }
                };
                let client = http.vaultrs(Some(&token));
                let looked = vaultrs::token::lookup_self(&client).await.map_err(|e| {
                    login_error(http.vaultrs_error("GET", "auth/token/lookup-self", e))
                })?;
                TokenState {
                    token,
                    accessor: looked.accessor,
                    ttl: Duration::from_secs(looked.ttl),
                    creation_ttl: Duration::from_secs(looked.creation_ttl),
                    renewable: looked.renewable.unwrap_or(false),
                    since: Instant::now(),
                    generation: next_generation,
                    policies: looked.policies,
                }
            }
            AuthConfig::Kubernetes {
                role,
                jwt_file,
                mount,
            } => {
                let jwt = read_secret(jwt_file, "service-account token")?;
                let client = http.vaultrs(None);
                let path = format!("auth/{}/login", mount.trim_matches('/'));
                let auth = vaultrs::auth::kubernetes::login(
                    &client,
                    mount.trim_matches('/'),
                    role,
                    jwt.expose_secret(),
                )
                .await
                .map_err(|e| login_error(http.vaultrs_error("POST", &path, e)))?;
                from_auth(auth, next_generation)
            }
            AuthConfig::Jwt {
                role,
                jwt_file,
                mount,
            } => {
                let jwt = read_secret(jwt_file, "JWT")?;
                let client = http.vaultrs(None);
                let path = format!("auth/{}/login", mount.trim_matches('/'));
                // vaultrs' OIDC login is the JWT login (same endpoint).
                let auth = vaultrs::auth::oidc::login(
                    &client,
                    mount.trim_matches('/'),
                    jwt.expose_secret(),
                    Some(role.clone()),
                )
                .await
                .map_err(|e| login_error(http.vaultrs_error("POST", &path, e)))?;
                from_auth(auth, next_generation)
            }
            AuthConfig::Approle {
                role_id,
                role_id_file,
                secret_id_file,
                mount,
            } => {
                let role_id = match (role_id, role_id_file) {
                    (Some(r), _) => r.clone(),
                    (None, Some(path)) => read_secret(path, "role id")?.expose_secret().to_string(),
                    (None, None) => {
                        return Err(Error::Config {
                            detail: "auth method approle: `role-id` or `role-id-file` is required"
                                .into(),
                        });
                    }
                };
                let secret_id = match secret_id_file {
                    Some(path) => read_secret(path, "secret id")?,
                    None => SecretString::from(String::new()),
                };
                let client = http.vaultrs(None);
                let path = format!("auth/{}/login", mount.trim_matches('/'));
                let auth = vaultrs::auth::approle::login(
                    &client,
                    mount.trim_matches('/'),
                    &role_id,
                    secret_id.expose_secret(),
                )
                .await
                .map_err(|e| login_error(http.vaultrs_error("POST", &path, e)))?;
                from_auth(auth, next_generation)
            }
        };
        let ttl = info.ttl;
        let accessor = info.accessor.clone();
        self.set_token(info);
        tracing::info!(method, ttl_seconds = ttl.as_secs(), "logged in to Vault");
        self.inner.auditor.record(AuditEvent::Renewal {
            reference: "token".into(),
            lease_id_sha256: hash_id(&accessor),
            ttl_seconds: ttl.as_secs(),
            outcome: "logged-in".into(),
        });
        Ok(())
    }

    /// The current token, logging in first when there is none or it has
    /// expired by the local clock.
    async fn current_token(&self) -> Result<(SecretString, u64)> {
        if let Some(t) = self.token_state() {
            let expired = t.expires_at().is_some_and(|e| e <= Instant::now());
            if !expired {
                return Ok((t.token, t.generation));
            }
            self.login_if_generation(t.generation).await?;
        } else {
            self.login_if_generation(0).await?;
        }
        self.token_state()
            .map(|t| (t.token, t.generation))
            .ok_or_else(|| Error::NoToken {
                detail: "login returned no token".into(),
            })
    }

    /// Is `token` still valid? (A 403 on a request does not say whether the
    /// token or the policy is at fault.)
    async fn token_is_valid(&self, token: &SecretString) -> Result<bool> {
        let client = self.inner.http.vaultrs(Some(token));
        match vaultrs::token::lookup_self(&client).await {
            Ok(_) => Ok(true),
            Err(e) => match self
                .inner
                .http
                .vaultrs_error("GET", "auth/token/lookup-self", e)
            {
                Error::PermissionDenied { .. } => Ok(false),
                other => Err(other),
            },
        }
    }

    /// Run `op` with the current token; when Vault refuses it and the token
    /// turns out to be invalid, log in again and retry once.
    async fn with_token<T, F, Fut>(&self, op: F) -> Result<T>
    where
        F: Fn(SecretString) -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let (token, generation) = self.current_token().await?;
        match op(token.clone()).await {
            Err(Error::PermissionDenied { path, errors }) => {
                if self.token_is_valid(&token).await? {
                    return Err(Error::PermissionDenied { path, errors });
                }
                tracing::info!("the Vault token is no longer valid; logging in again");
                self.login_if_generation(generation).await?;
                let (token, _) = self.current_token().await?;
                op(token).await
            }
            other => other,
        }
    }

    /// One raw call with the token.
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Option<Value>> {
        self.with_token(|token| async move {
            self.inner
                .http
                .call(method, path, query, body, Some(&token))
                .await
        })
        .await
    }

    /// Renew the token by the TTL it was created with. Returns the new
    /// TTL (shorter than asked when the token reaches its max TTL).
    pub async fn renew_token(&self) -> Result<Duration> {
        let state = self.token_state().ok_or_else(|| Error::NoToken {
            detail: "not logged in".into(),
        })?;
        let client = self.inner.http.vaultrs(Some(&state.token));
        let increment =
            (!state.creation_ttl.is_zero()).then(|| format!("{}s", state.creation_ttl.as_secs()));
        let auth = vaultrs::token::renew_self(&client, increment.as_deref())
            .await
            .map_err(|e| Error::TokenRenewal {
                source: Box::new(
                    self.inner
                        .http
                        .vaultrs_error("POST", "auth/token/renew-self", e),
                ),
            })?;
        let ttl = Duration::from_secs(auth.lease_duration);
        if let Ok(mut t) = self.inner.token.write()
            && let Some(t) = t.as_mut().filter(|t| t.generation == state.generation)
        {
            t.ttl = ttl;
            t.renewable = auth.renewable;
            t.since = Instant::now();
        }
        self.inner.token_changed.notify_waiters();
        self.inner.auditor.record(AuditEvent::Renewal {
            reference: "token".into(),
            lease_id_sha256: hash_id(&state.accessor),
            ttl_seconds: ttl.as_secs(),
            outcome: "renewed".into(),
        });
        Ok(ttl)
    }

    /// Revoke the token (only a token this process logged in for; a given
    /// token is left alone). Its leases are revoked with it.
    pub async fn revoke_token(&self) -> Result<()> {
        if matches!(self.inner.config.auth, AuthConfig::Token { .. }) {
            return Ok(());
        }
        let Some(state) = self.token_state() else {
            return Ok(());
        };
        let client = self.inner.http.vaultrs(Some(&state.token));
        let result = vaultrs::token::revoke_self(&client).await.map_err(|e| {
            self.inner
                .http
                .vaultrs_error("POST", "auth/token/revoke-self", e)
        });
        self.inner.auditor.record(AuditEvent::Revocation {
            reference: "token".into(),
            lease_id_sha256: hash_id(&state.accessor),
            outcome: if result.is_ok() { "revoked" } else { "failed" }.into(),
        });
        if result.is_ok()
            && let Ok(mut t) = self.inner.token.write()
            && t.as_ref().is_some_and(|t| t.generation == state.generation)
        {
            *t = None;
        }
        result
    }

    /// Renew a lease; `increment` is the TTL asked for.
    pub(crate) async fn renew_lease(
        &self,
        lease_id: &str,
        increment: Option<Duration>,
    ) -> Result<LeaseRenewed> {
        self.with_token(|token| async move {
            self.inner
                .http
                .renew_lease(lease_id, increment, &token)
                .await
        })
        .await
    }

    /// Revoke a lease now.
    pub async fn revoke_lease(&self, lease_id: &str) -> Result<()> {
        self.with_token(|token| async move { self.inner.http.revoke_lease(lease_id, &token).await })
            .await
            .map_err(|e| Error::LeaseRevocation {
                lease_id_sha256: hash_id(lease_id).unwrap_or_default(),
                source: Box::new(e),
            })
    }

    /// Read any path (`GET /v1/<path>`), with an optional query.
    pub async fn read(&self, path: &str, query: &[(&str, String)]) -> Result<SecretValue> {
        let body = self
            .call(Method::Get, path, query, None)
            .await?
            .ok_or_else(|| Error::NotFound {
                path: path.to_string(),
                errors: Vec::new(),
            })?;
        to_value(path, &body)
    }

    /// Write any path (`POST /v1/<path>` with a JSON object). Returns the
    /// answer, if Vault sent one.
    pub async fn write(&self, path: &str, body: &Value) -> Result<Option<SecretValue>> {
        match self.call(Method::Post, path, &[], Some(body)).await? {
            Some(answer) => to_value(path, &answer).map(Some),
            None => Ok(None),
        }
    }

    /// KV v1 read.
    pub async fn kv1_read(&self, mount: &str, path: &str) -> Result<SecretValue> {
        self.read(&join(mount, path), &[]).await
    }

    /// KV v2 read, latest or a pinned version. `data` holds `data` and
    /// `metadata` as Vault returns them.
    pub async fn kv2_read(
        &self,
        mount: &str,
        path: &str,
        version: Option<u32>,
    ) -> Result<SecretValue> {
        let full = format!(
            "{}/data/{}",
            mount.trim_matches('/'),
            path.trim_matches('/')
        );
        let query: Vec<(&str, String)> = version
            .map(|v| ("version", v.to_string()))
            .into_iter()
            .collect();
        let value = self.read(&full, &query).await?;
        // A deleted or destroyed version answers 404 with metadata, or 200
        // with `data: null` on older servers.
        if value.data.expose().get("data").is_none_or(Value::is_null) {
            return Err(Error::NotFound {
                path: full,
                errors: vec!["the version is deleted or destroyed".into()],
            });
        }
        Ok(value)
    }

    /// Dynamic database credentials (`<mount>/creds/<role>`).
    pub async fn database_credentials(&self, mount: &str, role: &str) -> Result<SecretValue> {
        self.read(&format!("{}/creds/{}", mount.trim_matches('/'), role), &[])
            .await
    }

    /// Issue a certificate (`<mount>/issue/<role>`) with parameters such as
    /// `common_name`, `alt_names`, `ttl`. `max_ttl` caps `ttl`.
    pub async fn pki_issue(
        &self,
        mount: &str,
        role: &str,
        parameters: &[(String, String)],
        max_ttl: Option<Duration>,
    ) -> Result<SecretValue> {
        let path = format!("{}/issue/{}", mount.trim_matches('/'), role);
        let body = pki_body(&path, parameters, max_ttl)?;
        self.write(&path, &body)
            .await?
            .ok_or_else(|| Error::MalformedResponse {
                path,
                detail: "empty answer".into(),
            })
    }

    /// Transit encryption of `plaintext` with key `key`.
    pub async fn transit_encrypt(
        &self,
        mount: &str,
        key: &str,
        plaintext: &[u8],
    ) -> Result<Ciphertext> {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode(plaintext);
        let mount = mount.trim_matches('/');
        let path = format!("{mount}/encrypt/{key}");
        let http = &self.inner.http;
        let b64 = &b64;
        let path_ref = path.as_str();
        self.with_token(|token| async move {
            let client = http.vaultrs(Some(&token));
            vaultrs::transit::data::encrypt(&client, mount, key, b64, None)
                .await
                .map(|r| Ciphertext(r.ciphertext))
                .map_err(|e| http.vaultrs_error("POST", path_ref, e))
        })
        .await
    }

    /// Transit decryption.
    pub async fn transit_decrypt(
        &self,
        mount: &str,
        key: &str,
        ciphertext: &Ciphertext,
    ) -> Result<Sensitive<Vec<u8>>> {
        use base64::Engine as _;
        let mount = mount.trim_matches('/');
        let path = format!("{mount}/decrypt/{key}");
        let http = &self.inner.http;
        let path_ref = path.as_str();
        let b64 = self
            .with_token(|token| async move {
                let client = http.vaultrs(Some(&token));
                vaultrs::transit::data::decrypt(&client, mount, key, &ciphertext.0, None)
                    .await
                    .map(|r| Sensitive(r.plaintext))
                    .map_err(|e| http.vaultrs_error("POST", path_ref, e))
            })
            .await?;
        base64::engine::general_purpose::STANDARD
            .decode(b64.expose())
            .map(Sensitive)
            .map_err(|_| Error::MalformedResponse {
                path,
                detail: "`plaintext` is not base64".into(),
            })
    }
}

fn from_auth(auth: AuthInfo, generation: u64) -> TokenState {
    let ttl = Duration::from_secs(auth.lease_duration);
    TokenState {
        token: SecretString::from(auth.client_token),
        accessor: auth.accessor,
        ttl,
        creation_ttl: ttl,
        renewable: auth.renewable,
        since: Instant::now(),
        generation,
        policies: auth.policies,
    }
}

fn read_secret(path: &Path, what: &'static str) -> Result<SecretString> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::ReadFile {
        what,
        path: path.to_path_buf(),
        source,
    })?;
    let text = text.trim();
    if text.is_empty() {
        return Err(Error::ReadFile {
            what,
            path: path.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, "the file is empty"),
        });
    }
    Ok(SecretString::from(text.to_string()))
}

pub(crate) fn join(mount: &str, path: &str) -> String {
    let mount = mount.trim_matches('/');
    let path = path.trim_matches('/');
    if path.is_empty() {
        mount.to_string()
    } else {
        format!("{mount}/{path}")
    }
}

fn to_value(path: &str, body: &Value) -> Result<SecretValue> {
    SecretValue::from_response(&SecretRef::read(path), body).map_err(|e| Error::MalformedResponse {
        path: path.to_string(),
        detail: match e {
            keyward_core::Error::MalformedResponse { detail, .. } => detail,
            other => other.to_string(),
        },
    })
}

/// The body of a PKI `issue`/`sign` call: the parameters, with `ttl`
/// capped by `max_ttl` (set to the cap when absent or longer).
pub(crate) fn pki_body(
    path: &str,
    parameters: &[(String, String)],
    max_ttl: Option<Duration>,
) -> Result<Value> {
    let mut body = serde_json::Map::new();
    for (k, v) in parameters {
        body.insert(k.clone(), Value::String(v.clone()));
    }
    if let Some(cap) = max_ttl {
        let asked = match body.get("ttl").and_then(Value::as_str) {
            Some(ttl) => Some(parse_ttl(ttl).ok_or_else(|| Error::InvalidRequest {
                reference: path.to_string(),
                detail: format!("`ttl` {ttl:?} is not a duration"),
            })?),
            None => None,
        };
        if asked.is_none_or(|a| a > cap) {
            body.insert(
                "ttl".into(),
                Value::String(format!("{}s", cap.as_secs().max(1))),
            );
        }
    }
    Ok(Value::Object(body))
}

/// A Vault TTL: seconds (`300`) or a duration (`5m`, `72h`).
pub(crate) fn parse_ttl(text: &str) -> Option<Duration> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    humantime::parse_duration(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pki_ttl_is_capped() {
        let params = |ttl: Option<&str>| {
            let mut p = vec![("common_name".to_string(), "a.example".to_string())];
            if let Some(t) = ttl {
                p.push(("ttl".into(), t.into()));
            }
            p
        };
        let cases = [
            ("no cap keeps ttl", params(Some("72h")), None, Some("72h")),
            ("no cap, no ttl", params(None), None, None),
            (
                "cap replaces longer ttl",
                params(Some("72h")),
                Some(3600),
                Some("3600s"),
            ),
            (
                "cap keeps shorter ttl",
                params(Some("10m")),
                Some(3600),
                Some("10m"),
            ),
            (
                "cap keeps shorter seconds",
                params(Some("60")),
                Some(3600),
                Some("60"),
            ),
            (
                "cap fills missing ttl",
                params(None),
                Some(300),
                Some("300s"),
            ),
        ];
        for (name, p, cap, want) in cases {
            let body = pki_body("pki/issue/web", &p, cap.map(Duration::from_secs)).unwrap();
            assert_eq!(body.get("ttl").and_then(Value::as_str), want, "{name}");
            assert_eq!(body["common_name"], "a.example", "{name}");
        }
        assert!(
            pki_body(
                "pki/issue/web",
                &params(Some("soon")),
                Some(Duration::from_secs(1))
            )
            .is_err()
        );
    }
}
