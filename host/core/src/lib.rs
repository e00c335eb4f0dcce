//! Keyward's domain types and the one pipeline every front end shares:
//! plan -> decide -> fetch -> render -> check.
//!
//! This crate owns the rules (who may have what, what an artifact may look
//! like) and the traits the other crates implement (`Policy`, `Renderer`,
//! `SecretSource`, `AuditSink`). It performs no I/O and depends on no other
//! Keyward crate.

extern crate alloc;

mod audit;
mod check;
mod error;
mod fixture;
pub mod glob;
mod mounts;
mod pipeline;
mod types;

pub use audit::{ArtifactDigest, AuditEvent, AuditSink, Auditor, MemoryAudit, NullAudit, hash_id};
pub use check::{CheckRule, Limits, check_artifacts};
pub use error::{Denial, Error, PluginFailure, Result, SandboxReason, Stage};
pub use fixture::FixtureSource;
pub use mounts::MountTable;
pub use pipeline::{
    Binding, Decided, DecidedSecret, Fetched, Pipeline, Policy, PolicyStep, Rendered, Renderer,
    SecretSource,
};
pub use types::{
    Artifact, DecideRequest, DeliveryKind, Engine, Grant, PluginError, RefKind, RenderRequest,
    SecretDecision, SecretRef, SecretRequest, SecretValue, Sensitive, SizeHint, Target, Verdict,
    Workload,
};
