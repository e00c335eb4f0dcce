//! The plugin's view of a `decide` call: the WIT types of
//! `keyward:plugin/types` as the rules read them (labels as maps, for
//! lookups). The component glue converts from and to the generated
//! bindings; everything else works on these.
//!
//! The host has its own domain types in `keyward-core`; this plugin does not
//! link them because it is built without `std` (so that the component
//! imports nothing from WASI, which makes every sandboxed call cheaper), and
//! a guest should depend on the WIT contract, not on the host's crates.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

/// The workload a decision is for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Workload {
    /// Cluster name (may be empty).
    pub cluster: String,
    /// Namespace.
    pub namespace: String,
    /// Service account.
    pub service_account: String,
    /// Owner kind (`Deployment`, ...).
    pub kind: String,
    /// Owner name.
    pub name: String,
    /// The workload's labels.
    pub labels: BTreeMap<String, String>,
    /// The namespace's labels.
    pub namespace_labels: BTreeMap<String, String>,
    /// Container images.
    pub images: Vec<String>,
}

/// A secrets engine, as the host classified the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// KV version 1.
    Kv1,
    /// KV version 2.
    Kv2,
    /// Database dynamic credentials.
    Database,
    /// PKI certificates.
    Pki,
    /// Transit.
    Transit,
    /// Anything else.
    Generic,
}

impl Engine {
    /// The name settings use.
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

/// How a secret reaches the workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryKind {
    /// An environment variable.
    Env,
    /// A file.
    File,
    /// A Kubernetes Secret.
    KubeSecret,
}

impl DeliveryKind {
    /// The name settings use.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryKind::Env => "env",
            DeliveryKind::File => "file",
            DeliveryKind::KubeSecret => "kube-secret",
        }
    }
}

/// One requested secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRequest {
    /// The reference as the workload wrote it (decisions name it).
    pub reference: String,
    /// Its engine.
    pub engine: Engine,
    /// Mount.
    pub mount: String,
    /// Path under the mount.
    pub path: String,
    /// Pinned KV version.
    pub version: Option<u32>,
    /// Write parameters.
    pub parameters: Vec<(String, String)>,
    /// Wanted delivery kinds.
    pub delivery: Vec<DeliveryKind>,
}

impl SecretRequest {
    /// `mount/path` (the mount alone when the path is empty), which path
    /// patterns match against.
    pub fn full_path(&self) -> String {
        if self.path.is_empty() {
            self.mount.clone()
        } else {
            let mut path = String::with_capacity(self.mount.len() + 1 + self.path.len());
            path.push_str(&self.mount);
            path.push('/');
            path.push_str(&self.path);
            path
        }
    }
}

/// Limits of a grant; `None` means no limit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grant {
    /// Keys that may reach the renderer.
    pub allowed_keys: Option<Vec<String>>,
    /// TTL cap in seconds.
    pub max_ttl_seconds: Option<u64>,
    /// Allowed delivery kinds.
    pub delivery: Option<Vec<DeliveryKind>>,
    /// Glob patterns for artifact targets.
    pub targets: Option<Vec<String>>,
}

/// The verdict on one secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Granted, with limits.
    Allow(Grant),
    /// Denied, with the reason.
    Deny(String),
    /// No opinion.
    Abstain,
}

/// The decision on one requested secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretDecision {
    /// The request's reference.
    pub reference: String,
    /// The verdict.
    pub verdict: Verdict,
    /// The rule that decided, for audit.
    pub rule: Option<String>,
}

/// A `decide` call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecideRequest {
    /// The workload.
    pub workload: Workload,
    /// The secrets it asks for.
    pub secrets: Vec<SecretRequest>,
    /// The settings document (JSON).
    pub settings: String,
}

/// The plugin's own errors (the WIT `plugin-error` variant).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginError {
    /// The settings are invalid.
    InvalidSettings(String),
    /// The request is invalid.
    InvalidInput(String),
}
