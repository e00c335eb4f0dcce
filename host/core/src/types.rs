//! Domain types. They mirror the WIT contract (`wit/keyward.wit`) one to one;
//! `keyward-runtime` converts between the two.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// A value that must never be printed: `Debug` shows only its size.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Sensitive<T>(pub T);

impl<T> Sensitive<T> {
    /// Wrap a value.
    pub fn new(value: T) -> Self {
        Self(value)
    }
    /// Borrow the secret value. Call sites are where values leave the wrapper;
    /// keep them few.
    pub fn expose(&self) -> &T {
        &self.0
    }
    /// Take the secret value out.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T: SizeHint> fmt::Debug for Sensitive<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<redacted {} bytes>", self.0.size_hint())
    }
}

/// Size of a sensitive value, for redacted `Debug` output.
pub trait SizeHint {
    /// Approximate size in bytes.
    fn size_hint(&self) -> usize;
}
impl SizeHint for String {
    fn size_hint(&self) -> usize {
        self.len()
    }
}
impl SizeHint for Vec<u8> {
    fn size_hint(&self) -> usize {
        self.len()
    }
}
impl SizeHint for serde_json::Value {
    fn size_hint(&self) -> usize {
        serde_json::to_string(self).map(|s| s.len()).unwrap_or(0)
    }
}

/// How a secret may be delivered to a workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeliveryKind {
    /// An environment variable.
    Env,
    /// A file in the workload's secrets volume.
    File,
    /// A Kubernetes Secret.
    KubeSecret,
}

impl DeliveryKind {
    /// The name used in configuration and audit records.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryKind::Env => "env",
            DeliveryKind::File => "file",
            DeliveryKind::KubeSecret => "kube-secret",
        }
    }
}

impl fmt::Display for DeliveryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who is asking.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct Workload {
    /// Cluster name, empty when unknown.
    pub cluster: String,
    /// Namespace, empty outside Kubernetes.
    pub namespace: String,
    /// Service account or configured identity.
    pub service_account: String,
    /// Workload kind (`Pod`, `Deployment`, `Agent`, ...).
    pub kind: String,
    /// Workload name.
    pub name: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    pub annotations: BTreeMap<String, String>,
    /// Labels of the namespace.
    pub namespace_labels: BTreeMap<String, String>,
    /// Container images.
    pub images: Vec<String>,
}

/// Secrets engine behind a mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Engine {
    /// KV version 1.
    Kv1,
    /// KV version 2.
    Kv2,
    /// Database dynamic credentials.
    Database,
    /// PKI.
    Pki,
    /// Transit.
    Transit,
    /// Generic read/write.
    Generic,
}

impl Engine {
    /// The configuration name.
    pub fn as_str(self) -> &'static str {
        match self {
            Engine::Kv1 => "kv1",
            Engine::Kv2 => "kv2",
            Engine::Database => "database",
            Engine::Pki => "pki",
            Engine::Transit => "transit",
            Engine::Generic => "generic",
        }
    }
}

/// One secret a workload asks for, classified by the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct SecretRequest {
    /// The reference as written, e.g. `secret/data/app?version=3`.
    pub reference: String,
    /// Engine behind the mount.
    pub engine: Engine,
    /// Mount path, no slashes at either end.
    pub mount: String,
    /// Logical path inside the mount (no KV v2 `data/` prefix).
    pub path: String,
    /// Pinned version.
    #[serde(default)]
    pub version: Option<u32>,
    /// Parameters (never values).
    #[serde(default)]
    pub parameters: Vec<(String, String)>,
    /// Wanted delivery kinds.
    #[serde(default)]
    pub delivery: Vec<DeliveryKind>,
}

impl SecretRequest {
    /// `mount/path`, the string policies match patterns against.
    pub fn full_path(&self) -> String {
        if self.path.is_empty() {
            self.mount.clone()
        } else {
            format!("{}/{}", self.mount, self.path)
        }
    }
}

/// Limits attached to a grant; `None` means no limit.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct Grant {
    /// Keys of the secret's data that may reach the renderer.
    pub allowed_keys: Option<Vec<String>>,
    /// TTL cap in seconds.
    pub max_ttl_seconds: Option<u64>,
    /// Allowed delivery kinds.
    pub delivery: Option<Vec<DeliveryKind>>,
    /// Glob patterns for artifact targets.
    pub targets: Option<Vec<String>>,
}

impl Grant {
    /// The intersection of two grants: the stricter of every limit.
    pub fn intersect(&self, other: &Grant) -> Grant {
        fn both<T: Clone + PartialEq>(a: &Option<Vec<T>>, b: &Option<Vec<T>>) -> Option<Vec<T>> {
            match (a, b) {
                (None, None) => None,
                (Some(x), None) | (None, Some(x)) => Some(x.clone()),
                (Some(x), Some(y)) => Some(x.iter().filter(|v| y.contains(v)).cloned().collect()),
            }
        }
        // Target patterns cannot be intersected textually: keep both lists and
        // require a target to match one pattern of each (see `check`).
        let targets = match (&self.targets, &other.targets) {
            (None, None) => None,
            (Some(x), None) | (None, Some(x)) => Some(x.clone()),
            (Some(x), Some(y)) => {
                let mut all = x.clone();
                all.push(TARGET_LIST_SEPARATOR.to_string());
                all.extend(y.iter().cloned());
                Some(all)
            }
        };
        Grant {
            allowed_keys: both(&self.allowed_keys, &other.allowed_keys),
            max_ttl_seconds: match (self.max_ttl_seconds, other.max_ttl_seconds) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            },
            delivery: both(&self.delivery, &other.delivery),
            targets,
        }
    }

    /// Target pattern groups: a target must match one pattern in every group.
    pub fn target_groups(&self) -> Option<Vec<Vec<String>>> {
        self.targets.as_ref().map(|all| {
            all.split(|p| p == TARGET_LIST_SEPARATOR)
                .map(|g| g.to_vec())
                .collect()
        })
    }
}

/// Separates the pattern lists of intersected grants (never a valid pattern).
const TARGET_LIST_SEPARATOR: &str = "\u{0}";

/// A policy's verdict on one secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum Verdict {
    /// Allowed within limits.
    Allow(Grant),
    /// Denied, with a reason.
    Deny(String),
    /// No opinion.
    Abstain,
}

/// A verdict for one requested secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct SecretDecision {
    /// The request reference it answers.
    pub reference: String,
    /// The verdict.
    pub verdict: Verdict,
    /// The deciding rule, for audit.
    #[serde(default)]
    pub rule: Option<String>,
}

/// A plugin's own expected failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "kebab-case")]
pub enum PluginError {
    /// Settings are invalid.
    #[error("invalid settings: {0}")]
    InvalidSettings(String),
    /// Input cannot be processed.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// Anything else.
    #[error("{0}")]
    Failed(String),
}

/// Which template function referenced a secret.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "kebab-case")]
pub enum RefKind {
    /// `secret`.
    #[default]
    Secret,
    /// `pkiCert`.
    PkiCert,
}

/// A secret a template (or a binding) reads.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct SecretRef {
    /// Path as written, including `?version=N`.
    pub reference: String,
    /// Parameters after the path.
    #[serde(default)]
    pub parameters: Vec<(String, String)>,
    /// Referencing function.
    #[serde(default)]
    pub kind: RefKind,
}

impl SecretRef {
    /// A plain `secret "path"` reference.
    pub fn read(reference: impl Into<String>) -> Self {
        SecretRef {
            reference: reference.into(),
            parameters: Vec::new(),
            kind: RefKind::Secret,
        }
    }

    /// A key identifying the request in a set: the reference plus its
    /// parameters (`path k=v ...`).
    pub fn key(&self) -> String {
        let mut key = self.reference.clone();
        for (k, v) in &self.parameters {
            key.push(' ');
            key.push_str(k);
            key.push('=');
            key.push_str(v);
        }
        if self.kind == RefKind::PkiCert {
            key.insert_str(0, "pkiCert:");
        }
        key
    }
}

/// A granted secret's value as Vault returned it.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct SecretValue {
    /// Reference as written.
    pub reference: String,
    /// Parameters it was fetched with.
    #[serde(default)]
    pub parameters: Vec<(String, String)>,
    /// Lease id, empty when not leased.
    #[serde(default)]
    pub lease_id: String,
    /// Lease duration in seconds.
    #[serde(default)]
    pub lease_duration: u64,
    /// Renewable lease.
    #[serde(default)]
    pub renewable: bool,
    /// The response's `data` object.
    pub data: Sensitive<serde_json::Value>,
    /// Warnings.
    #[serde(default)]
    pub warnings: Vec<String>,
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretValue")
            .field("reference", &self.reference)
            .field("parameters", &self.parameters)
            .field("lease_id_sha256", &crate::audit::hash_id(&self.lease_id))
            .field("lease_duration", &self.lease_duration)
            .field("renewable", &self.renewable)
            .field("data", &self.data)
            .finish()
    }
}

impl SecretValue {
    /// Build a value from a Vault response body as `bao read -format=json`
    /// prints it (`data`, `lease_id`, `lease_duration`, `renewable`,
    /// `warnings`). Unknown fields are ignored.
    pub fn from_response(
        secret: &SecretRef,
        body: &serde_json::Value,
    ) -> Result<SecretValue, crate::Error> {
        let obj = body
            .as_object()
            .ok_or_else(|| crate::Error::MalformedResponse {
                reference: secret.reference.clone(),
                detail: "the response is not a JSON object".into(),
            })?;
        let data = obj.get("data").cloned().unwrap_or(serde_json::Value::Null);
        if !(data.is_object() || data.is_null()) {
            return Err(crate::Error::MalformedResponse {
                reference: secret.reference.clone(),
                detail: "`data` is not an object".into(),
            });
        }
        let warnings = match obj.get("warnings") {
            Some(serde_json::Value::Array(items)) => items
                .iter()
                .filter_map(|w| w.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        };
        Ok(SecretValue {
            reference: secret.reference.clone(),
            parameters: secret.parameters.clone(),
            lease_id: obj
                .get("lease_id")
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string(),
            lease_duration: obj
                .get("lease_duration")
                .and_then(|v| v.as_u64())
                .unwrap_or(0),
            renewable: obj
                .get("renewable")
                .and_then(|v| v.as_bool())
                .unwrap_or(false),
            data: Sensitive(if data.is_null() {
                serde_json::Value::Object(Default::default())
            } else {
                data
            }),
            warnings,
        })
    }
}

/// Where rendered output goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Target {
    /// Delivery kind.
    pub kind: DeliveryKind,
    /// File path, Secret name, or env prefix.
    #[serde(default)]
    pub name: String,
    /// File mode.
    #[serde(default)]
    pub mode: Option<u32>,
}

/// Everything `render` needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RenderRequest {
    /// Who the output is for.
    pub workload: Workload,
    /// Template text or `None` for the default format.
    pub template: Option<String>,
    /// Renderer settings (JSON).
    pub settings: String,
    /// Output target.
    pub target: Target,
    /// Granted values.
    pub secrets: Vec<SecretValue>,
}

/// What a policy decides on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct DecideRequest {
    /// Who asks.
    pub workload: Workload,
    /// What is asked.
    pub secrets: Vec<SecretRequest>,
    /// Policy settings (JSON).
    #[serde(default)]
    pub settings: String,
}

/// One rendered output.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum Artifact {
    /// An environment variable.
    Env {
        /// Name.
        name: String,
        /// Value.
        value: Sensitive<String>,
    },
    /// A file.
    File {
        /// Relative path.
        path: String,
        /// Mode bits.
        mode: u32,
        /// Contents.
        contents: Sensitive<Vec<u8>>,
    },
    /// A Kubernetes Secret.
    KubeSecret {
        /// Name.
        name: String,
        /// Type.
        #[serde(rename = "type")]
        secret_type: String,
        /// Data.
        data: BTreeMap<String, Sensitive<Vec<u8>>>,
        /// Labels.
        #[serde(default)]
        labels: BTreeMap<String, String>,
        /// Annotations.
        #[serde(default)]
        annotations: BTreeMap<String, String>,
    },
}

impl Artifact {
    /// Delivery kind of this artifact.
    pub fn kind(&self) -> DeliveryKind {
        match self {
            Artifact::Env { .. } => DeliveryKind::Env,
            Artifact::File { .. } => DeliveryKind::File,
            Artifact::KubeSecret { .. } => DeliveryKind::KubeSecret,
        }
    }

    /// The target name: env var name, file path or Secret name.
    pub fn target_name(&self) -> &str {
        match self {
            Artifact::Env { name, .. } => name,
            Artifact::File { path, .. } => path,
            Artifact::KubeSecret { name, .. } => name,
        }
    }

    /// Total bytes of names and contents.
    pub fn size(&self) -> usize {
        match self {
            Artifact::Env { name, value } => name.len() + value.0.len(),
            Artifact::File { path, contents, .. } => path.len() + contents.0.len(),
            Artifact::KubeSecret {
                name,
                secret_type,
                data,
                labels,
                annotations,
            } => {
                name.len()
                    + secret_type.len()
                    + data.iter().map(|(k, v)| k.len() + v.0.len()).sum::<usize>()
                    + labels
                        .iter()
                        .chain(annotations.iter())
                        .map(|(k, v)| k.len() + v.len())
                        .sum::<usize>()
            }
        }
    }

    /// The bytes an HMAC over this artifact covers (for audit records).
    pub fn digest_input(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            Artifact::Env { name, value } => {
                out.extend_from_slice(b"env\0");
                out.extend_from_slice(name.as_bytes());
                out.push(0);
                out.extend_from_slice(value.0.as_bytes());
            }
            Artifact::File {
                path,
                mode,
                contents,
            } => {
                out.extend_from_slice(b"file\0");
                out.extend_from_slice(path.as_bytes());
                out.push(0);
                out.extend_from_slice(&mode.to_be_bytes());
                out.extend_from_slice(&contents.0);
            }
            Artifact::KubeSecret {
                name,
                secret_type,
                data,
                ..
            } => {
                out.extend_from_slice(b"kube-secret\0");
                out.extend_from_slice(name.as_bytes());
                out.push(0);
                out.extend_from_slice(secret_type.as_bytes());
                for (k, v) in data {
                    out.push(0);
                    out.extend_from_slice(k.as_bytes());
                    out.push(0);
                    out.extend_from_slice(&v.0);
                }
            }
        }
        out
    }
}

impl fmt::Debug for Artifact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Artifact::Env { name, value } => f
                .debug_struct("Env")
                .field("name", name)
                .field("value", value)
                .finish(),
            Artifact::File {
                path,
                mode,
                contents,
            } => f
                .debug_struct("File")
                .field("path", path)
                .field("mode", &format_args!("{mode:#o}"))
                .field("contents", contents)
                .finish(),
            Artifact::KubeSecret {
                name,
                secret_type,
                data,
                ..
            } => f
                .debug_struct("KubeSecret")
                .field("name", name)
                .field("type", secret_type)
                .field("keys", &data.keys().collect::<Vec<_>>())
                .finish(),
        }
    }
}
