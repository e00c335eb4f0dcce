//! The crate's error type.

use std::fmt;

use crate::check::CheckRule;
use crate::types::PluginError;

/// Result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Pipeline stage, for error messages and audit records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Settings validation.
    ValidateSettings,
    /// Template planning.
    Plan,
    /// Policy decision.
    Decide,
    /// Rendering.
    Render,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stage::ValidateSettings => "validate-settings",
            Stage::Plan => "plan",
            Stage::Decide => "decide",
            Stage::Render => "render",
        })
    }
}

/// Why the sandbox stopped a plugin call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SandboxReason {
    /// The CPU deadline passed.
    Timeout,
    /// The memory cap was hit.
    MemoryLimit,
    /// The guest trapped (panic, unreachable, stack overflow, ...).
    Trap,
    /// Output (stdout/stderr/logs/result) exceeded its bound.
    OutputLimit,
    /// Too many bytes crossed from guest to host in one call.
    HostcallLimit,
    /// The component could not be loaded or instantiated.
    Load,
    /// The plugin broke the contract (e.g. a decision for an unknown secret).
    Contract,
}

impl SandboxReason {
    /// Stable label for metrics, audit records and case files.
    pub fn label(self) -> &'static str {
        match self {
            SandboxReason::Timeout => "timeout",
            SandboxReason::MemoryLimit => "memory",
            SandboxReason::Trap => "trap",
            SandboxReason::OutputLimit => "output-limit",
            SandboxReason::HostcallLimit => "hostcall-limit",
            SandboxReason::Load => "load",
            SandboxReason::Contract => "contract",
        }
    }
}

/// How a plugin call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PluginFailure {
    /// The plugin returned its own error.
    #[error("{0}")]
    Plugin(PluginError),
    /// The host stopped the call.
    #[error("{}: {detail}", reason.label())]
    Sandbox {
        /// Why.
        reason: SandboxReason,
        /// What happened, never containing secret values.
        detail: String,
    },
}

impl PluginFailure {
    /// The label used in case files: the plugin error's kind or the sandbox
    /// reason.
    pub fn kind_label(&self) -> &'static str {
        match self {
            PluginFailure::Plugin(PluginError::InvalidSettings(_)) => "invalid-settings",
            PluginFailure::Plugin(PluginError::InvalidInput(_)) => "invalid-input",
            PluginFailure::Plugin(PluginError::Failed(_)) => "failed",
            PluginFailure::Sandbox { reason, .. } => reason.label(),
        }
    }
}

/// One denied secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// Reference as requested.
    pub reference: String,
    /// The policy that denied it (or `none` when no policy allowed it).
    pub policy: String,
    /// The rule, if the policy named one.
    pub rule: Option<String>,
    /// The reason.
    pub reason: String,
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} denied by policy {:?}", self.reference, self.policy)?;
        if let Some(rule) = &self.rule {
            write!(f, " ({rule})")?;
        }
        write!(f, ": {}", self.reason)
    }
}

/// Everything the pipeline can fail with. Messages never contain secret
/// values.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// One or more secrets were denied; nothing was rendered.
    #[error("access denied: {}", .0.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("; "))]
    Denied(Vec<Denial>),
    /// A plugin call failed.
    #[error("plugin {plugin:?} failed in {stage}: {source}")]
    Plugin {
        /// Plugin name.
        plugin: String,
        /// Stage.
        stage: Stage,
        /// Failure.
        #[source]
        source: PluginFailure,
    },
    /// A secret reference cannot be understood.
    #[error("invalid secret reference {reference:?}: {detail}")]
    InvalidReference {
        /// Reference.
        reference: String,
        /// What is wrong.
        detail: String,
    },
    /// The secret source failed.
    #[error("fetching {reference:?} failed: {source}")]
    Fetch {
        /// Reference.
        reference: String,
        /// Cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Vault's answer did not have the expected shape.
    #[error("malformed response for {reference:?}: {detail}")]
    MalformedResponse {
        /// Reference.
        reference: String,
        /// What is wrong.
        detail: String,
    },
    /// An artifact broke a rule.
    #[error("binding {binding:?}: artifact {artifact:?} rejected ({rule}): {detail}")]
    Check {
        /// Binding name.
        binding: String,
        /// Artifact target name.
        artifact: String,
        /// The rule.
        rule: CheckRule,
        /// Details.
        detail: String,
    },
    /// A binding's configuration is invalid.
    #[error("binding {binding:?}: {detail}")]
    InvalidBinding {
        /// Binding name.
        binding: String,
        /// What is wrong.
        detail: String,
    },
}
