//! The check step: artifacts stay inside what was granted.

use std::collections::BTreeSet;
use std::fmt;

use crate::error::{Error, Result};
use crate::glob;
use crate::types::{Artifact, DeliveryKind, Grant, Target};

/// Bounds on a binding's output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most artifacts one binding may produce.
    pub max_artifacts: usize,
    /// Most bytes (names + contents) one binding may produce.
    pub max_total_bytes: usize,
    /// Largest single file or Secret.
    pub max_artifact_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_artifacts: 256,
            max_total_bytes: 4 << 20,
            // Kubernetes refuses Secrets over 1 MiB; files get the same bound.
            max_artifact_bytes: 1 << 20,
        }
    }
}

/// The rule an artifact broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckRule {
    /// The artifact's kind differs from the binding's target kind.
    TargetKind,
    /// The artifact lies outside the binding's target.
    OutsideTarget,
    /// A grant does not allow this delivery kind.
    DeliveryNotGranted,
    /// A grant's target patterns do not match.
    TargetNotGranted,
    /// File path absolute, with `..`, empty segments or bad characters.
    FilePath,
    /// File mode outside 0o777 or with setuid/setgid/sticky bits.
    FileMode,
    /// Invalid environment variable name or value.
    EnvName,
    /// Invalid Kubernetes Secret name, key, type or metadata.
    SecretName,
    /// Two artifacts with the same target.
    Duplicate,
    /// Too many artifacts.
    TooMany,
    /// Too many bytes.
    TooLarge,
}

impl CheckRule {
    /// Stable label.
    pub fn label(self) -> &'static str {
        match self {
            CheckRule::TargetKind => "target-kind",
            CheckRule::OutsideTarget => "outside-target",
            CheckRule::DeliveryNotGranted => "delivery-not-granted",
            CheckRule::TargetNotGranted => "target-not-granted",
            CheckRule::FilePath => "file-path",
            CheckRule::FileMode => "file-mode",
            CheckRule::EnvName => "env-name",
            CheckRule::SecretName => "secret-name",
            CheckRule::Duplicate => "duplicate",
            CheckRule::TooMany => "too-many",
            CheckRule::TooLarge => "too-large",
        }
    }
}

impl fmt::Display for CheckRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// Check a binding's artifacts against its target, the grants of every
/// secret it read, and the limits. `grants` pairs each secret reference the
/// binding read with its effective grant.
pub fn check_artifacts(
    binding: &str,
    target: &Target,
    grants: &[(String, Grant)],
    artifacts: &[Artifact],
    limits: &Limits,
) -> Result<()> {
    let fail = |artifact: &str, rule: CheckRule, detail: String| Error::Check {
        binding: binding.to_string(),
        artifact: artifact.to_string(),
        rule,
        detail,
    };
    if artifacts.len() > limits.max_artifacts {
        return Err(fail(
            "*",
            CheckRule::TooMany,
            format!(
                "{} artifacts, at most {} allowed",
                artifacts.len(),
                limits.max_artifacts
            ),
        ));
    }
    let total: usize = artifacts.iter().map(Artifact::size).sum();
    if total > limits.max_total_bytes {
        return Err(fail(
            "*",
            CheckRule::TooLarge,
            format!(
                "{total} bytes in all, at most {} allowed",
                limits.max_total_bytes
            ),
        ));
    }
    let mut seen = BTreeSet::new();
    for artifact in artifacts {
        let name = artifact.target_name();
        // Names are checked before they are quoted anywhere, so error
        // messages show them with Debug escaping only.
        if artifact.kind() != target.kind {
            return Err(fail(
                name,
                CheckRule::TargetKind,
                format!(
                    "the binding delivers {} but the renderer produced {}",
                    target.kind,
                    artifact.kind()
                ),
            ));
        }
        if artifact.size() > limits.max_artifact_bytes {
            return Err(fail(
                name,
                CheckRule::TooLarge,
                format!(
                    "{} bytes, at most {} allowed per artifact",
                    artifact.size(),
                    limits.max_artifact_bytes
                ),
            ));
        }
        if !seen.insert((artifact.kind(), name.to_string())) {
            return Err(fail(name, CheckRule::Duplicate, "produced twice".into()));
        }
        match artifact {
            Artifact::File { path, mode, .. } => {
                check_file_path(path).map_err(|d| fail(path, CheckRule::FilePath, d))?;
                if *mode & !0o777 != 0 {
                    return Err(fail(
                        path,
                        CheckRule::FileMode,
                        format!("mode {mode:#o} has bits outside 0o777"),
                    ));
                }
                let base = target.name.trim_end_matches('/');
                if !base.is_empty() && path != base && !path.starts_with(&format!("{base}/")) {
                    return Err(fail(
                        path,
                        CheckRule::OutsideTarget,
                        format!("files of this binding must be {base:?} or lie under it"),
                    ));
                }
            }
            Artifact::Env { name, value } => {
                check_env_name(name).map_err(|d| fail(name, CheckRule::EnvName, d))?;
                if value.expose().contains('\0') {
                    return Err(fail(
                        name,
                        CheckRule::EnvName,
                        "the value contains a NUL byte".into(),
                    ));
                }
                if !name.starts_with(&target.name) {
                    return Err(fail(
                        name,
                        CheckRule::OutsideTarget,
                        format!(
                            "variables of this binding must start with {:?}",
                            target.name
                        ),
                    ));
                }
            }
            Artifact::KubeSecret {
                name,
                secret_type,
                data,
                labels,
                annotations,
            } => {
                check_dns_subdomain(name).map_err(|d| fail(name, CheckRule::SecretName, d))?;
                if !target.name.is_empty() && name != &target.name {
                    return Err(fail(
                        name,
                        CheckRule::OutsideTarget,
                        format!("this binding delivers the Secret {:?}", target.name),
                    ));
                }
                if secret_type.is_empty() || secret_type.len() > 253 {
                    return Err(fail(
                        name,
                        CheckRule::SecretName,
                        "invalid Secret type".into(),
                    ));
                }
                for key in data.keys() {
                    check_secret_key(key).map_err(|d| fail(name, CheckRule::SecretName, d))?;
                }
                for key in labels.keys().chain(annotations.keys()) {
                    check_metadata_key(key).map_err(|d| fail(name, CheckRule::SecretName, d))?;
                }
            }
        }
        for (reference, grant) in grants {
            if let Some(kinds) = &grant.delivery
                && !kinds.contains(&artifact.kind())
            {
                return Err(fail(
                    name,
                    CheckRule::DeliveryNotGranted,
                    format!(
                        "{reference:?} may be delivered as {} only",
                        list_kinds(kinds)
                    ),
                ));
            }
            if let Some(groups) = grant.target_groups() {
                for group in groups {
                    if !group.iter().any(|p| glob::matches(p, name)) {
                        return Err(fail(
                            name,
                            CheckRule::TargetNotGranted,
                            format!(
                                "{reference:?} may only reach targets matching {}",
                                group.join(", ")
                            ),
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}

fn list_kinds(kinds: &[DeliveryKind]) -> String {
    if kinds.is_empty() {
        return "nothing".into();
    }
    kinds
        .iter()
        .map(|k| k.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A relative, normalised, `/`-separated path.
fn check_file_path(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("the path is empty".into());
    }
    if path.len() > 4096 {
        return Err("the path is longer than 4096 bytes".into());
    }
    if path.starts_with('/') {
        return Err("absolute paths are not allowed".into());
    }
    if path.contains('\\') {
        return Err("backslashes are not allowed".into());
    }
    if path.chars().any(|c| c.is_control()) {
        return Err("control characters are not allowed".into());
    }
    for seg in path.split('/') {
        match seg {
            "" => return Err("empty path segments are not allowed".into()),
            "." | ".." => return Err("`.` and `..` segments are not allowed".into()),
            s if s.len() > 255 => return Err("a path segment is longer than 255 bytes".into()),
            _ => {}
        }
    }
    Ok(())
}

fn check_env_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let ok = match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {
            chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        }
        _ => false,
    };
    if !ok || name.len() > 256 {
        return Err(
            "environment variable names must match [A-Za-z_][A-Za-z0-9_]* (at most 256 bytes)"
                .into(),
        );
    }
    Ok(())
}

fn check_dns_subdomain(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    if ok {
        Ok(())
    } else {
        Err("Secret names must be DNS subdomains: lowercase letters, digits, `-` and `.`, at most 253 characters".into())
    }
}

fn check_secret_key(key: &str) -> Result<(), String> {
    let ok = !key.is_empty()
        && key.len() <= 253
        && key != "."
        && key != ".."
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "Secret key {key:?} is invalid: use letters, digits, `-`, `_` and `.`"
        ))
    }
}

fn check_metadata_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    let name_ok = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    let prefix_ok = prefix.is_none_or(|p| check_dns_subdomain(p).is_ok());
    if name_ok && prefix_ok {
        Ok(())
    } else {
        Err(format!("label/annotation key {key:?} is invalid"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Sensitive;

    fn file(path: &str) -> Artifact {
        Artifact::File {
            path: path.into(),
            mode: 0o600,
            contents: Sensitive(b"x".to_vec()),
        }
    }
    fn env(name: &str) -> Artifact {
        Artifact::Env {
            name: name.into(),
            value: Sensitive("v".into()),
        }
    }
    fn target(kind: DeliveryKind, name: &str) -> Target {
        Target {
            kind,
            name: name.into(),
            mode: None,
        }
    }

    fn rule_of(r: Result<()>) -> Option<CheckRule> {
        match r {
            Ok(()) => None,
            Err(Error::Check { rule, .. }) => Some(rule),
            Err(e) => panic!("unexpected {e}"),
        }
    }

    #[test]
    fn table() {
        let l = Limits::default();
        let none: Vec<(String, Grant)> = vec![];
        let file_only = vec![(
            "s".to_string(),
            Grant {
                delivery: Some(vec![DeliveryKind::File]),
                targets: Some(vec!["app/*".into()]),
                ..Grant::default()
            },
        )];
        let t_file = target(DeliveryKind::File, "");
        let t_env = target(DeliveryKind::Env, "APP_");
        type Case<'a> = (
            &'a str,
            &'a Target,
            &'a [(String, Grant)],
            Vec<Artifact>,
            Option<CheckRule>,
        );
        let cases: Vec<Case<'_>> = vec![
            ("plain file", &t_file, &none, vec![file("a/b.txt")], None),
            (
                "absolute",
                &t_file,
                &none,
                vec![file("/etc/passwd")],
                Some(CheckRule::FilePath),
            ),
            (
                "dotdot",
                &t_file,
                &none,
                vec![file("a/../../x")],
                Some(CheckRule::FilePath),
            ),
            (
                "empty seg",
                &t_file,
                &none,
                vec![file("a//x")],
                Some(CheckRule::FilePath),
            ),
            (
                "env to file target",
                &t_file,
                &none,
                vec![env("A")],
                Some(CheckRule::TargetKind),
            ),
            (
                "bad env",
                &t_env,
                &none,
                vec![env("APP_1-x")],
                Some(CheckRule::EnvName),
            ),
            (
                "env prefix",
                &t_env,
                &none,
                vec![env("OTHER")],
                Some(CheckRule::OutsideTarget),
            ),
            ("env ok", &t_env, &none, vec![env("APP_X")], None),
            (
                "dup",
                &t_file,
                &none,
                vec![file("a"), file("a")],
                Some(CheckRule::Duplicate),
            ),
            (
                "granted target",
                &t_file,
                &file_only,
                vec![file("app/x")],
                None,
            ),
            (
                "target not granted",
                &t_file,
                &file_only,
                vec![file("other/x")],
                Some(CheckRule::TargetNotGranted),
            ),
            (
                "delivery not granted",
                &t_env,
                &file_only,
                vec![env("APP_X")],
                Some(CheckRule::DeliveryNotGranted),
            ),
        ];
        for (name, t, g, arts, want) in cases {
            assert_eq!(
                rule_of(check_artifacts("b", t, g, &arts, &l)),
                want,
                "{name}"
            );
        }
    }

    #[test]
    fn limits() {
        let l = Limits {
            max_artifacts: 1,
            max_total_bytes: 10,
            max_artifact_bytes: 10,
        };
        let t = target(DeliveryKind::File, "");
        assert_eq!(
            rule_of(check_artifacts("b", &t, &[], &[file("a"), file("b")], &l)),
            Some(CheckRule::TooMany)
        );
        let big = Artifact::File {
            path: "a".into(),
            mode: 0o600,
            contents: Sensitive(vec![0; 100]),
        };
        assert_eq!(
            rule_of(check_artifacts("b", &t, &[], &[big], &l)),
            Some(CheckRule::TooLarge)
        );
    }

    #[test]
    fn kube_secret_names() {
        let t = target(DeliveryKind::KubeSecret, "");
        let mk = |name: &str, key: &str| Artifact::KubeSecret {
            name: name.into(),
            secret_type: "Opaque".into(),
            data: [(key.to_string(), Sensitive(b"v".to_vec()))].into(),
            labels: Default::default(),
            annotations: Default::default(),
        };
        let l = Limits::default();
        assert_eq!(
            rule_of(check_artifacts(
                "b",
                &t,
                &[],
                &[mk("app-db", "password")],
                &l
            )),
            None
        );
        assert_eq!(
            rule_of(check_artifacts("b", &t, &[], &[mk("App", "password")], &l)),
            Some(CheckRule::SecretName)
        );
        assert_eq!(
            rule_of(check_artifacts("b", &t, &[], &[mk("app", "a/b")], &l)),
            Some(CheckRule::SecretName)
        );
    }
}
