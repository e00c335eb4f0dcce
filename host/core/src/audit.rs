//! The audit stream: one structured record per decision, fetch, render,
//! delivery, renewal and revocation. Records carry paths, decisions, hashed
//! lease ids and HMACs of artifact contents — never a value.

use std::sync::{Arc, Mutex};

use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::types::{Artifact, DeliveryKind};

/// One audit record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum AuditEvent {
    /// A policy verdict, or the chain's combined verdict.
    Decision {
        /// `namespace/service-account` or the configured identity.
        workload: String,
        /// Reference as requested.
        reference: String,
        /// `mount/path`.
        path: String,
        /// `allow`, `deny` or `abstain`.
        verdict: String,
        /// Policy name (`chain` for the combined verdict).
        policy: String,
        /// Deciding rule.
        #[serde(skip_serializing_if = "Option::is_none")]
        rule: Option<String>,
        /// Reason of a denial.
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// A secret was read or issued.
    Fetch {
        /// Reference as requested.
        reference: String,
        /// `mount/path`.
        path: String,
        /// SHA-256 of the lease id, if leased.
        #[serde(skip_serializing_if = "Option::is_none")]
        lease_id_sha256: Option<String>,
        /// Lease duration in seconds.
        ttl_seconds: u64,
        /// Renewable lease.
        renewable: bool,
    },
    /// A binding was rendered and passed the check.
    Render {
        /// Binding name.
        binding: String,
        /// What was produced.
        artifacts: Vec<ArtifactDigest>,
    },
    /// A binding's artifacts were delivered.
    Delivery {
        /// Binding name.
        binding: String,
        /// Where to (directory, env file, Secret, ...).
        destination: String,
        /// What was delivered.
        artifacts: Vec<ArtifactDigest>,
    },
    /// A lease or token renewal.
    Renewal {
        /// Reference or `token`.
        reference: String,
        /// SHA-256 of the lease id.
        #[serde(skip_serializing_if = "Option::is_none")]
        lease_id_sha256: Option<String>,
        /// New TTL in seconds.
        ttl_seconds: u64,
        /// `renewed`, `re-fetched`, `failed`.
        outcome: String,
    },
    /// A lease revocation.
    Revocation {
        /// Reference or `token`.
        reference: String,
        /// SHA-256 of the lease id.
        #[serde(skip_serializing_if = "Option::is_none")]
        lease_id_sha256: Option<String>,
        /// `revoked` or `failed`.
        outcome: String,
    },
}

/// What an artifact was, without what it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArtifactDigest {
    /// Delivery kind.
    pub kind: DeliveryKind,
    /// Target name (file path, variable, Secret name).
    pub name: String,
    /// HMAC-SHA256 of the artifact under the auditor's key, hex.
    pub hmac_sha256: String,
}

/// Where audit records go.
pub trait AuditSink: Send + Sync {
    /// Record one event. Must not block for long.
    fn record(&self, event: &AuditEvent);
}

/// Discards records.
#[derive(Debug, Default, Clone, Copy)]
pub struct NullAudit;

impl AuditSink for NullAudit {
    fn record(&self, _event: &AuditEvent) {}
}

/// Keeps records in memory (tests, dry runs).
#[derive(Debug, Default)]
pub struct MemoryAudit {
    events: Mutex<Vec<AuditEvent>>,
}

impl MemoryAudit {
    /// Records so far.
    pub fn events(&self) -> Vec<AuditEvent> {
        self.events.lock().map(|e| e.clone()).unwrap_or_default()
    }
}

impl AuditSink for MemoryAudit {
    fn record(&self, event: &AuditEvent) {
        if let Ok(mut events) = self.events.lock() {
            events.push(event.clone());
        }
    }
}

/// A sink plus the key artifact HMACs are computed with.
#[derive(Clone)]
pub struct Auditor {
    sink: Arc<dyn AuditSink>,
    key: [u8; 32],
}

impl std::fmt::Debug for Auditor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auditor").finish_non_exhaustive()
    }
}

impl Auditor {
    /// An auditor writing to `sink`; `key` should be random per process (or
    /// configured, to correlate records across restarts).
    pub fn new(sink: Arc<dyn AuditSink>, key: [u8; 32]) -> Self {
        Auditor { sink, key }
    }

    /// An auditor that discards everything.
    pub fn null() -> Self {
        Auditor::new(Arc::new(NullAudit), [0; 32])
    }

    /// Record an event.
    pub fn record(&self, event: AuditEvent) {
        self.sink.record(&event);
    }

    /// Digest of an artifact.
    pub fn digest(&self, artifact: &Artifact) -> ArtifactDigest {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
        mac.update(&artifact.digest_input());
        ArtifactDigest {
            kind: artifact.kind(),
            name: artifact.target_name().to_string(),
            hmac_sha256: hex::encode(mac.finalize().into_bytes()),
        }
    }
}

/// SHA-256 of an identifier (lease id, token accessor), hex; `None` for "".
pub fn hash_id(id: &str) -> Option<String> {
    if id.is_empty() {
        None
    } else {
        Some(hex::encode(Sha256::digest(id.as_bytes())))
    }
}
