//! A secret source backed by fixed responses: offline rendering, plugin
//! tests and dry runs.

use std::collections::BTreeMap;

use async_trait::async_trait;

use crate::pipeline::SecretSource;
use crate::types::{Grant, SecretRef, SecretRequest, SecretValue};

/// Responses keyed by reference (plus ` k=v` for each parameter), each the
/// body Vault returns, as `bao read -format=json` prints it.
#[derive(Debug, Clone, Default)]
pub struct FixtureSource {
    responses: BTreeMap<String, crate::Sensitive<serde_json::Value>>,
}

impl FixtureSource {
    /// Build from a JSON object mapping keys to response bodies.
    pub fn from_json(doc: serde_json::Value) -> Result<Self, String> {
        match doc {
            serde_json::Value::Object(map) => Ok(FixtureSource {
                responses: map
                    .into_iter()
                    .map(|(k, v)| (k, crate::Sensitive(v)))
                    .collect(),
            }),
            _ => Err(
                "the secrets document must be a JSON object mapping paths to Vault responses"
                    .into(),
            ),
        }
    }

    /// Add one response.
    pub fn insert(&mut self, key: impl Into<String>, body: serde_json::Value) {
        self.responses.insert(key.into(), crate::Sensitive(body));
    }

    /// Keys present.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.responses.keys().map(String::as_str)
    }

    /// All fixtures as values, with parameters parsed back out of the key.
    pub fn values(&self) -> Result<Vec<SecretValue>, crate::Error> {
        self.responses
            .iter()
            .map(|(key, body)| {
                let mut parts = key.split(' ');
                let reference = parts.next().unwrap_or_default().to_string();
                let parameters = parts
                    .map(|p| match p.split_once('=') {
                        Some((k, v)) => (k.to_string(), v.to_string()),
                        None => (p.to_string(), String::new()),
                    })
                    .collect();
                SecretValue::from_response(
                    &SecretRef {
                        reference,
                        parameters,
                        kind: Default::default(),
                    },
                    body.expose(),
                )
            })
            .collect()
    }
}

/// No fixture for a requested secret.
#[derive(Debug, thiserror::Error)]
#[error("no fixture for {0:?} (fixtures have: {1})")]
pub(crate) struct MissingFixture(String, String);

#[async_trait]
impl SecretSource for FixtureSource {
    async fn fetch(
        &self,
        secret: &SecretRef,
        _request: &SecretRequest,
        _grant: &Grant,
    ) -> Result<SecretValue, Box<dyn std::error::Error + Send + Sync>> {
        let key = secret.key();
        let body = self.responses.get(&key).ok_or_else(|| {
            MissingFixture(
                key.clone(),
                self.responses
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", "),
            )
        })?;
        Ok(SecretValue::from_response(secret, body.expose())?)
    }
}
