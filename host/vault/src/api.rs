//! The HTTP layer: one `reqwest` client (our TLS settings) shared by
//! vaultrs and by the few typed raw calls vaultrs does not offer or that
//! need the whole response envelope (lease id, duration, renewable,
//! the exact `data` object): secret reads and writes, `sys/leases/*`.
//!
//! Every failure is mapped to [`Error`] here, keeping only the status,
//! Vault's `errors` strings and the request path: never a body, never a
//! token.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::Value;
use url::Url;
use vaultrs::client::{VaultClient, VaultClientSettings};
use vaultrs::error::ClientError;

use crate::config::VaultConfig;
use crate::error::{Error, Result};

/// HTTP methods the raw calls use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    Get,
    Post,
    Put,
}

impl Method {
    fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
        }
    }
}

/// The connection to one server.
pub(crate) struct Http {
    client: reqwest::Client,
    /// Address without a trailing slash.
    base: Url,
    address: String,
    namespace: Option<String>,
}

impl std::fmt::Debug for Http {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http")
            .field("address", &self.address)
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

/// `sys/leases/renew` answer.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct LeaseRenewed {
    #[serde(default)]
    pub(crate) lease_duration: u64,
    #[serde(default)]
    pub(crate) renewable: bool,
}

impl Http {
    pub(crate) fn new(config: &VaultConfig) -> Result<Http> {
        let address = config.address.trim_end_matches('/').to_string();
        let base = Url::parse(&address).map_err(|e| Error::Config {
            detail: format!("`address` {address:?} is not a URL: {e}"),
        })?;
        let tls = crate::tls::client_config(&config.tls)?;
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .timeout(config.request_timeout)
            .connect_timeout(config.request_timeout.min(Duration::from_secs(10)))
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| Error::Tls {
                detail: format!("cannot build the HTTP client: {}", chain(&e)),
            })?;
        Ok(Http {
            client,
            base,
            address,
            namespace: config.namespace.clone(),
        })
    }

    pub(crate) fn address(&self) -> &str {
        &self.address
    }

    /// A vaultrs client on our connection, authenticated with `token`
    /// (empty for logins). Cheap: the connection pool is shared.
    pub(crate) fn vaultrs(&self, token: Option<&SecretString>) -> VaultClient {
        let token = token
            .map(|t| t.expose_secret().to_string())
            .unwrap_or_default();
        VaultClient {
            http: rustify::clients::reqwest::Client::new(&self.address, self.client.clone()),
            middle: vaultrs::api::EndpointMiddleware {
                token: token.clone(),
                version: "v1".into(),
                wrap: None,
                namespace: self.namespace.clone(),
            },
            settings: VaultClientSettings {
                address: self.base.clone(),
                ca_certs: Vec::new(),
                identity: None,
                timeout: None,
                token,
                verify: true,
                version: 1,
                wrapping: false,
                namespace: self.namespace.clone(),
                proxy: None,
            },
        }
    }

    /// One raw API call. `path` is below `/v1/`, without a query. Returns
    /// the whole JSON body, or `None` for an empty (204) answer.
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
        token: Option<&SecretString>,
    ) -> Result<Option<Value>> {
        let mut url = self.base.clone();
        {
            let mut segments = url.path_segments_mut().map_err(|_| Error::Config {
                detail: format!("`address` {:?} cannot be a base URL", self.address),
            })?;
            segments.pop_if_empty().push("v1");
            segments.extend(path.trim_matches('/').split('/'));
        }
        if !query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        let mut request = match method {
            Method::Get => self.client.get(url),
            Method::Post => self.client.post(url),
            Method::Put => self.client.put(url),
        };
        request = request.header("X-Vault-Request", "true");
        if let Some(ns) = &self.namespace {
            request = request.header("X-Vault-Namespace", ns);
        }
        if let Some(token) = token {
            let mut value =
                reqwest::header::HeaderValue::from_str(token.expose_secret()).map_err(|_| {
                    Error::NoToken {
                        detail: "the token contains characters not allowed in an HTTP header"
                            .into(),
                    }
                })?;
            value.set_sensitive(true);
            request = request.header("X-Vault-Token", value);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| self.transport_error(&e))?;
        let status = response.status().as_u16();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| self.transport_error(&e))?;
        if (200..300).contains(&status) {
            if bytes.is_empty() {
                return Ok(None);
            }
            let value: Value =
                serde_json::from_slice(&bytes).map_err(|e| Error::MalformedResponse {
                    path: path.to_string(),
                    detail: format!("the body is not JSON (HTTP {status}, {:?})", e.classify()),
                })?;
            return Ok(Some(value));
        }
        let errors = serde_json::from_slice::<ApiErrors>(&bytes)
            .map(|e| e.errors)
            .unwrap_or_default();
        Err(self.status_error(method.as_str(), path, status, errors))
    }

    /// `sys/leases/renew`.
    pub(crate) async fn renew_lease(
        &self,
        lease_id: &str,
        increment: Option<Duration>,
        token: &SecretString,
    ) -> Result<LeaseRenewed> {
        let mut body = serde_json::json!({ "lease_id": lease_id });
        if let Some(inc) = increment {
            body["increment"] = Value::from(inc.as_secs().max(1));
        }
        let out = self
            .call(
                Method::Put,
                "sys/leases/renew",
                &[],
                Some(&body),
                Some(token),
            )
            .await?
            .ok_or_else(|| Error::MalformedResponse {
                path: "sys/leases/renew".into(),
                detail: "empty answer".into(),
            })?;
        serde_json::from_value(out).map_err(|e| Error::MalformedResponse {
            path: "sys/leases/renew".into(),
            detail: e.to_string(),
        })
    }

    /// `sys/leases/revoke`.
    pub(crate) async fn revoke_lease(&self, lease_id: &str, token: &SecretString) -> Result<()> {
        let body = serde_json::json!({ "lease_id": lease_id });
        self.call(
            Method::Put,
            "sys/leases/revoke",
            &[],
            Some(&body),
            Some(token),
        )
        .await
        .map(|_| ())
    }

    /// Map a status and Vault's errors.
    pub(crate) fn status_error(
        &self,
        method: &'static str,
        path: &str,
        status: u16,
        errors: Vec<String>,
    ) -> Error {
        let path = path.trim_matches('/').to_string();
        match status {
            403 => Error::PermissionDenied { path, errors },
            404 => Error::NotFound { path, errors },
            429 | 502 | 503 | 504 => Error::Unreachable {
                address: self.address.clone(),
                detail: {
                    let mut d = format!("HTTP {status} on {path}");
                    if !errors.is_empty() {
                        d.push_str(": ");
                        d.push_str(&errors.join("; "));
                    }
                    d
                },
            },
            _ => Error::Api {
                method,
                path,
                status,
                errors,
            },
        }
    }

    fn transport_error(&self, e: &reqwest::Error) -> Error {
        Error::Unreachable {
            address: self.address.clone(),
            detail: chain(e),
        }
    }

    /// Map a vaultrs error. Bodies it may carry are dropped.
    pub(crate) fn vaultrs_error(&self, method: &'static str, path: &str, e: ClientError) -> Error {
        use rustify::errors::ClientError as Rest;
        match e {
            ClientError::APIError { code, errors } => self.status_error(method, path, code, errors),
            ClientError::RestClientError { source } => match source {
                Rest::ServerResponseError { code, .. } => {
                    self.status_error(method, path, code, Vec::new())
                }
                Rest::RequestError { source, .. } | Rest::ResponseError { source } => {
                    Error::Unreachable {
                        address: self.address.clone(),
                        detail: source
                            .chain()
                            .map(|c| c.to_string())
                            .collect::<Vec<_>>()
                            .join(": "),
                    }
                }
                other => Error::MalformedResponse {
                    path: path.to_string(),
                    detail: other.to_string(),
                },
            },
            ClientError::ResponseEmptyError | ClientError::ResponseDataEmptyError => {
                Error::MalformedResponse {
                    path: path.to_string(),
                    detail: "the answer has no data".into(),
                }
            }
            other => Error::MalformedResponse {
                path: path.to_string(),
                detail: other.to_string(),
            },
        }
    }
}

#[derive(Deserialize)]
struct ApiErrors {
    #[serde(default)]
    errors: Vec<String>,
}

/// An error and its causes on one line, without the request URL.
fn chain(e: &reqwest::Error) -> String {
    let mut out = if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "cannot connect".to_string()
    } else {
        "request failed".to_string()
    };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
