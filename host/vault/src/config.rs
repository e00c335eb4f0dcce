//! What a user writes to connect to Vault: address, namespace, TLS, auth
//! method and lease behaviour. Every struct denies unknown fields; durations
//! are humantime strings (`30s`, `5m`, `1h30m`).
//!
//! No credential is ever written inline: tokens, secret ids and JWTs are read
//! from files (or, for a token, an environment variable) when logging in.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Connection to one Vault or OpenBao server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct VaultConfig {
    /// Server address, e.g. `https://vault.example:8200`.
    pub address: String,
    /// Vault Enterprise / OpenBao namespace, sent as `X-Vault-Namespace`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// TLS settings for `https` addresses.
    #[serde(default)]
    pub tls: TlsConfig,
    /// How to log in.
    pub auth: AuthConfig,
    /// Timeout of one HTTP request. Default `30s`.
    #[serde(default = "default_request_timeout", with = "duration_str")]
    pub request_timeout: Duration,
    /// Lease, token and refresh behaviour.
    #[serde(default)]
    pub leases: LeaseConfig,
}

fn default_request_timeout() -> Duration {
    Duration::from_secs(30)
}

impl VaultConfig {
    /// A configuration with defaults for everything but the address and
    /// the auth method.
    pub fn new(address: impl Into<String>, auth: AuthConfig) -> Self {
        VaultConfig {
            address: address.into(),
            namespace: None,
            tls: TlsConfig::default(),
            auth,
            request_timeout: default_request_timeout(),
            leases: LeaseConfig::default(),
        }
    }

    /// Check what can be checked without touching the network or files.
    pub fn validate(&self) -> Result<()> {
        let url = url::Url::parse(&self.address).map_err(|e| Error::Config {
            detail: format!("`address` {:?} is not a URL: {e}", self.address),
        })?;
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err(Error::Config {
                detail: format!(
                    "`address` must be http:// or https://, not {}://",
                    url.scheme()
                ),
            });
        }
        if url.host_str().is_none() {
            return Err(Error::Config {
                detail: format!("`address` {:?} has no host", self.address),
            });
        }
        if self.tls.client_cert.is_some() != self.tls.client_key.is_some() {
            return Err(Error::Config {
                detail: "`tls.client-cert` and `tls.client-key` must be set together".into(),
            });
        }
        self.auth.validate()?;
        self.leases.validate()
    }
}

/// TLS to Vault. With no CA bundle the system roots are used.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM file with the CA certificate(s) that sign the server's
    /// certificate; replaces the system roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// Name to verify the server certificate against, instead of the host
    /// in `address` (like `VAULT_TLS_SERVER_NAME`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    /// PEM client certificate (chain) for mutual TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert: Option<PathBuf>,
    /// PEM private key of the client certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key: Option<PathBuf>,
}

/// The auth method and its parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "kebab-case", deny_unknown_fields)]
pub enum AuthConfig {
    /// Kubernetes service-account JWT (e.g. a projected token with an
    /// audience).
    #[serde(rename_all = "kebab-case")]
    Kubernetes {
        /// Vault role.
        role: String,
        /// File holding the service-account token; re-read at every login.
        #[serde(default = "default_k8s_jwt_file")]
        jwt_file: PathBuf,
        /// Auth mount. Default `kubernetes`.
        #[serde(default = "default_k8s_mount")]
        mount: String,
    },
    /// Any JWT (OIDC provider, CI system, workload identity).
    #[serde(rename_all = "kebab-case")]
    Jwt {
        /// Vault role.
        role: String,
        /// File holding the JWT; re-read at every login.
        jwt_file: PathBuf,
        /// Auth mount. Default `jwt`.
        #[serde(default = "default_jwt_mount")]
        mount: String,
    },
    /// AppRole.
    #[serde(rename_all = "kebab-case")]
    Approle {
        /// Role id (not a secret on its own).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        role_id: Option<String>,
        /// File holding the role id, instead of `role-id`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        role_id_file: Option<PathBuf>,
        /// File holding the secret id; re-read at every login.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        secret_id_file: Option<PathBuf>,
        /// Auth mount. Default `approle`.
        #[serde(default = "default_approle_mount")]
        mount: String,
    },
    /// A token given to the process; re-read from its file when it has to
    /// be replaced.
    #[serde(rename_all = "kebab-case")]
    Token {
        /// File holding the token.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token_file: Option<PathBuf>,
        /// Environment variable holding the token. Default `VAULT_TOKEN`
        /// when `token-file` is not set.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token_env: Option<String>,
    },
}

fn default_k8s_jwt_file() -> PathBuf {
    PathBuf::from("/var/run/secrets/kubernetes.io/serviceaccount/token")
}
fn default_k8s_mount() -> String {
    "kubernetes".into()
}
fn default_jwt_mount() -> String {
    "jwt".into()
}
fn default_approle_mount() -> String {
    "approle".into()
}

impl AuthConfig {
    /// The method's name, for errors and audit records.
    pub fn method(&self) -> &'static str {
        match self {
            AuthConfig::Kubernetes { .. } => "kubernetes",
            AuthConfig::Jwt { .. } => "jwt",
            AuthConfig::Approle { .. } => "approle",
            AuthConfig::Token { .. } => "token",
        }
    }

    /// The auth mount, `None` for tokens.
    pub fn mount(&self) -> Option<&str> {
        match self {
            AuthConfig::Kubernetes { mount, .. }
            | AuthConfig::Jwt { mount, .. }
            | AuthConfig::Approle { mount, .. } => Some(mount.trim_matches('/')),
            AuthConfig::Token { .. } => None,
        }
    }

    fn validate(&self) -> Result<()> {
        let bad = |detail: &str| {
            Err(Error::Config {
                detail: format!("auth method {}: {detail}", self.method()),
            })
        };
        if let Some(mount) = self.mount()
            && mount.is_empty()
        {
            return bad("`mount` is empty");
        }
        match self {
            AuthConfig::Kubernetes { role, .. } | AuthConfig::Jwt { role, .. }
                if role.is_empty() =>
            {
                bad("`role` is empty")
            }
            AuthConfig::Approle {
                role_id,
                role_id_file,
                ..
            } => match (role_id, role_id_file) {
                (Some(_), Some(_)) => bad("set `role-id` or `role-id-file`, not both"),
                (None, None) => bad("`role-id` or `role-id-file` is required"),
                _ => Ok(()),
            },
            AuthConfig::Token {
                token_file: Some(_),
                token_env: Some(_),
            } => bad("set `token-file` or `token-env`, not both"),
            _ => Ok(()),
        }
    }
}

/// Lease, token and refresh behaviour.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct LeaseConfig {
    /// Fraction of a lease's (or token's) TTL after which it is renewed.
    /// Default `0.667`.
    #[serde(default = "default_renew_fraction")]
    pub renew_fraction: f64,
    /// Random spread around renewal times, as a fraction of the TTL.
    /// Default `0.1`.
    #[serde(default = "default_jitter")]
    pub jitter: f64,
    /// How often static secrets (KV, generic reads without a lease) are
    /// read again. Default `5m`.
    #[serde(default = "default_static_refresh", with = "duration_str")]
    pub static_refresh: Duration,
    /// Fraction of a certificate's lifetime after which it is issued
    /// again. Default `0.667`.
    #[serde(default = "default_renew_fraction")]
    pub certificate_renew_fraction: f64,
    /// First delay after an error. Default `1s`.
    #[serde(default = "default_backoff_min", with = "duration_str")]
    pub backoff_min: Duration,
    /// Longest delay between retries. Default `1m`.
    #[serde(default = "default_backoff_max", with = "duration_str")]
    pub backoff_max: Duration,
    /// Revoke every tracked lease at shutdown. Default `false`. The token's
    /// policy needs `update` on `sys/leases/revoke` (revoking the token, see
    /// below, also revokes every lease it created).
    #[serde(default)]
    pub revoke_on_shutdown: bool,
    /// Revoke the token at shutdown (only tokens this process logged in
    /// for, never a given token). Default `false`.
    #[serde(default)]
    pub revoke_token_on_shutdown: bool,
    /// Revoke a lease as soon as a re-fetch replaced it. Default `false`:
    /// the old credential stays valid until it expires, so workloads can
    /// switch over.
    #[serde(default)]
    pub revoke_replaced: bool,
}

fn default_renew_fraction() -> f64 {
    0.667
}
fn default_jitter() -> f64 {
    0.1
}
fn default_static_refresh() -> Duration {
    Duration::from_secs(300)
}
fn default_backoff_min() -> Duration {
    Duration::from_secs(1)
}
fn default_backoff_max() -> Duration {
    Duration::from_secs(60)
}

impl Default for LeaseConfig {
    fn default() -> Self {
        LeaseConfig {
            renew_fraction: default_renew_fraction(),
            jitter: default_jitter(),
            static_refresh: default_static_refresh(),
            certificate_renew_fraction: default_renew_fraction(),
            backoff_min: default_backoff_min(),
            backoff_max: default_backoff_max(),
            revoke_on_shutdown: false,
            revoke_token_on_shutdown: false,
            revoke_replaced: false,
        }
    }
}

impl LeaseConfig {
    fn validate(&self) -> Result<()> {
        let bad = |detail: String| Err(Error::Config { detail });
        for (name, v) in [
            ("renew-fraction", self.renew_fraction),
            (
                "certificate-renew-fraction",
                self.certificate_renew_fraction,
            ),
        ] {
            if !(v > 0.0 && v < 1.0) {
                return bad(format!(
                    "`leases.{name}` must be between 0 and 1 (exclusive), not {v}"
                ));
            }
        }
        if !(0.0..0.5).contains(&self.jitter) {
            return bad(format!(
                "`leases.jitter` must be in [0, 0.5), not {}",
                self.jitter
            ));
        }
        if self.backoff_min.is_zero() || self.backoff_min > self.backoff_max {
            return bad("`leases.backoff-min` must be > 0 and <= `leases.backoff-max`".into());
        }
        if self.static_refresh.is_zero() {
            return bad("`leases.static-refresh` must be > 0".into());
        }
        Ok(())
    }
}

/// `Duration` as a humantime string (`30s`, `5m`).
pub(crate) mod duration_str {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(s.trim()).map_err(|e| {
            serde::de::Error::custom(format!(
                "invalid duration {s:?} ({e}); write e.g. \"30s\", \"5m\", \"1h\""
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_auth_method() {
        let cases = [
            (
                "kubernetes",
                "address: https://vault:8200\nauth: {method: kubernetes, role: app}\n",
                AuthConfig::Kubernetes {
                    role: "app".into(),
                    jwt_file: default_k8s_jwt_file(),
                    mount: "kubernetes".into(),
                },
            ),
            (
                "jwt",
                "address: http://127.0.0.1:8200\nauth: {method: jwt, role: ci, jwt-file: /run/jwt, mount: gitlab}\n",
                AuthConfig::Jwt {
                    role: "ci".into(),
                    jwt_file: "/run/jwt".into(),
                    mount: "gitlab".into(),
                },
            ),
            (
                "approle",
                "address: http://127.0.0.1:8200\nauth: {method: approle, role-id: abc, secret-id-file: /run/sid}\n",
                AuthConfig::Approle {
                    role_id: Some("abc".into()),
                    role_id_file: None,
                    secret_id_file: Some("/run/sid".into()),
                    mount: "approle".into(),
                },
            ),
            (
                "token",
                "address: http://127.0.0.1:8200\nauth: {method: token, token-env: MY_TOKEN}\n",
                AuthConfig::Token {
                    token_file: None,
                    token_env: Some("MY_TOKEN".into()),
                },
            ),
        ];
        for (name, yaml, want) in cases {
            let cfg: VaultConfig =
                serde_yaml::from_str(yaml).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(cfg.auth, want, "{name}");
            cfg.validate().unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    #[test]
    fn durations_and_defaults() {
        let cfg: VaultConfig = serde_yaml::from_str(
            "address: http://127.0.0.1:8200\nrequest-timeout: 5s\nauth: {method: token}\nleases: {static-refresh: 2m, backoff-max: 30s}\n",
        )
        .unwrap();
        assert_eq!(cfg.request_timeout, Duration::from_secs(5));
        assert_eq!(cfg.leases.static_refresh, Duration::from_secs(120));
        assert_eq!(cfg.leases.backoff_max, Duration::from_secs(30));
        assert_eq!(cfg.leases.backoff_min, Duration::from_secs(1));
        let back: VaultConfig =
            serde_yaml::from_str(&serde_yaml::to_string(&cfg).unwrap()).unwrap();
        assert_eq!(back, cfg);
    }

    #[test]
    fn rejects() {
        let cases = [
            (
                "unknown top-level field",
                "address: http://a\nauth: {method: token}\ncolour: red\n",
            ),
            (
                "unknown auth field",
                "address: http://a\nauth: {method: jwt, role: r, jwt-file: /x, token: t}\n",
            ),
            (
                "unknown method",
                "address: http://a\nauth: {method: ldap}\n",
            ),
            (
                "bad duration",
                "address: http://a\nrequest-timeout: soon\nauth: {method: token}\n",
            ),
            ("bad scheme", "address: ftp://a\nauth: {method: token}\n"),
            (
                "approle without role id",
                "address: http://a\nauth: {method: approle, secret-id-file: /x}\n",
            ),
            (
                "token file and env",
                "address: http://a\nauth: {method: token, token-file: /x, token-env: T}\n",
            ),
            (
                "renew fraction",
                "address: http://a\nauth: {method: token}\nleases: {renew-fraction: 1.5}\n",
            ),
            (
                "half a client identity",
                "address: https://a\ntls: {client-cert: /c.pem}\nauth: {method: token}\n",
            ),
        ];
        for (name, yaml) in cases {
            let parsed: std::result::Result<VaultConfig, _> = serde_yaml::from_str(yaml);
            let ok = parsed
                .map_err(|e| e.to_string())
                .and_then(|c| c.validate().map_err(|e| e.to_string()));
            assert!(ok.is_err(), "{name} was accepted");
        }
    }
}
