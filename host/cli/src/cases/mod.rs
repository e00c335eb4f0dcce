//! Plugin case files (`docs/cases.md`): parsing, validation and the
//! comparison of a call's outcome with the case's expectation.

mod expect;
mod model;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use keyward_core::{
    Artifact, SecretDecision, SecretRef, SecretRequest, SecretValue, Target, Workload,
};

pub(crate) use expect::{Expect, Mismatch, plural};
pub(crate) use model::{secret_ref_from_key, value_from_key};

/// The plugin call a case makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Call {
    Decide,
    ValidateSettings,
    Plan,
    Render,
}

impl Call {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Call::Decide => "decide",
            Call::ValidateSettings => "validate-settings",
            Call::Plan => "plan",
            Call::Render => "render",
        }
    }
}

/// What a case passes to the plugin, by call.
#[derive(Debug, Clone)]
pub(crate) enum Input {
    ValidateSettings,
    Decide {
        workload: Workload,
        secrets: Vec<SecretRequest>,
    },
    Plan {
        template: Option<String>,
    },
    Render {
        workload: Workload,
        template: Option<String>,
        target: Target,
        values: Vec<SecretValue>,
    },
}

/// One parsed, validated case.
#[derive(Debug, Clone)]
pub(crate) struct Case {
    /// The file name without `.yaml`.
    pub(crate) name: String,
    /// The case file.
    pub(crate) file: PathBuf,
    pub(crate) description: Option<String>,
    pub(crate) call: Call,
    /// The settings JSON document passed to the plugin.
    pub(crate) settings: String,
    pub(crate) input: Input,
    pub(crate) expect: Expect,
}

/// What a plugin call produced.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// `validate-settings` succeeded.
    Valid,
    Decisions(Vec<SecretDecision>),
    Refs(Vec<SecretRef>),
    Artifacts(Vec<Artifact>),
    /// The call failed; `kind` is a case-file error kind
    /// (`PluginFailure::kind_label` or `check`).
    Failed {
        kind: String,
        message: String,
    },
}

impl Case {
    /// Compare an outcome with this case's expectation.
    pub(crate) fn check(&self, outcome: &Outcome) -> Result<(), Mismatch> {
        self.expect.check(outcome)
    }
}

/// Read and validate every `*.yaml` file of `dir` (sorted by name;
/// subdirectories ignored). The first malformed file is an error naming the
/// file and the field.
pub(crate) fn load_dir(dir: &Path) -> Result<Vec<Case>> {
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read case directory {}", dir.display()))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry =
            entry.with_context(|| format!("cannot read case directory {}", dir.display()))?;
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "yaml") && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    files.iter().map(|f| load_file(f)).collect()
}

/// Read and validate one case file.
pub(crate) fn load_file(path: &Path) -> Result<Case> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read case file {}", path.display()))?;
    parse(path, &text).with_context(|| format!("case file {}", path.display()))
}

/// Parse a case from its text; `path` names the case and anchors
/// `template-file`.
pub(crate) fn parse(path: &Path, text: &str) -> Result<Case> {
    let raw: model::CaseFile = serde_yaml::from_str(text)?;
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let base = path.parent().unwrap_or(Path::new("."));
    raw.validate(name, path.to_path_buf(), base)
}

/// Error out unless exactly one of the named options is set.
fn exactly_one(what: &str, names: &[(&str, bool)]) -> Result<()> {
    let set: Vec<&str> = names.iter().filter(|(_, s)| *s).map(|(n, _)| *n).collect();
    match set.len() {
        1 => Ok(()),
        0 => bail!(
            "{what}: give one of {}",
            names
                .iter()
                .map(|(n, _)| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        _ => bail!(
            "{what}: give only one of {}",
            set.iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}
