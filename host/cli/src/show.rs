//! Human-readable, line-oriented renderings of plugin outputs, used in case
//! reports and diffs. Case files are fixtures, so their values may be shown.

use keyward_core::{Artifact, Grant, RefKind, SecretDecision, SecretRef, Verdict};

use crate::cases::Outcome;

/// `{max-ttl-seconds: 3600, delivery: [file]}`; `{}` for an unlimited grant.
pub(crate) fn grant(g: &Grant) -> String {
    let list = |v: &[String]| format!("[{}]", v.join(", "));
    let mut parts = Vec::new();
    if let Some(keys) = &g.allowed_keys {
        parts.push(format!("allowed-keys: {}", list(keys)));
    }
    if let Some(ttl) = g.max_ttl_seconds {
        parts.push(format!("max-ttl-seconds: {ttl}"));
    }
    if let Some(kinds) = &g.delivery {
        let kinds: Vec<String> = kinds.iter().map(|k| k.as_str().to_string()).collect();
        parts.push(format!("delivery: {}", list(&kinds)));
    }
    if let Some(targets) = &g.targets {
        parts.push(format!("targets: {}", list(targets)));
    }
    format!("{{{}}}", parts.join(", "))
}

/// `ref: allow {...} (rule "r")`, `ref: deny "reason"`, `ref: abstain`.
pub(crate) fn decision(d: &SecretDecision) -> String {
    let verdict = match &d.verdict {
        Verdict::Allow(g) => format!("allow {}", grant(g)),
        Verdict::Deny(reason) => format!("deny {reason:?}"),
        Verdict::Abstain => "abstain".into(),
    };
    match &d.rule {
        Some(rule) => format!("{}: {verdict} (rule {rule:?})", d.reference),
        None => format!("{}: {verdict}", d.reference),
    }
}

/// `reference k=v (secret)`.
pub(crate) fn secret_ref(r: &SecretRef) -> String {
    let mut s = r.reference.clone();
    for (k, v) in &r.parameters {
        s.push_str(&format!(" {k}={v}"));
    }
    let kind = match r.kind {
        RefKind::Secret => "secret",
        RefKind::PkiCert => "pki-cert",
    };
    format!("{s} ({kind})")
}

/// Artifacts as lines: a header per artifact, then its contents.
pub(crate) fn artifacts(list: &[Artifact]) -> Vec<String> {
    let mut out = Vec::new();
    for a in list {
        match a {
            Artifact::Env { name, value } => {
                out.push(format!("env {name}={}", escape_line(value.expose())));
            }
            Artifact::File {
                path,
                mode,
                contents,
            } => {
                out.push(format!("file {path} (mode {mode:#o})"));
                content_lines(&mut out, "  ", contents.expose());
            }
            Artifact::KubeSecret {
                name,
                secret_type,
                data,
                labels,
                annotations,
            } => {
                out.push(format!("kube-secret {name} (type {secret_type})"));
                for (k, v) in labels {
                    out.push(format!("  label {k}={v}"));
                }
                for (k, v) in annotations {
                    out.push(format!("  annotation {k}={v}"));
                }
                for (k, v) in data {
                    out.push(format!("  data {k}:"));
                    content_lines(&mut out, "    ", v.expose());
                }
            }
        }
    }
    out
}

/// Contents as `| line` rows; a missing final newline and binary data are
/// marked.
fn content_lines(out: &mut Vec<String>, indent: &str, bytes: &[u8]) {
    use base64::Engine as _;
    match std::str::from_utf8(bytes) {
        Ok(text) => {
            if text.is_empty() {
                out.push(format!("{indent}(empty)"));
                return;
            }
            for line in text.split_inclusive('\n') {
                let (body, newline) = match line.strip_suffix('\n') {
                    Some(b) => (b, true),
                    None => (line, false),
                };
                out.push(format!("{indent}|{body}"));
                if !newline {
                    out.push(format!("{indent}\\ no newline at end"));
                }
            }
        }
        Err(_) => out.push(format!(
            "{indent}base64 {}",
            base64::engine::general_purpose::STANDARD.encode(bytes)
        )),
    }
}

fn escape_line(s: &str) -> String {
    if s.chars().any(|c| c.is_control()) {
        format!("{s:?}")
    } else {
        s.to_string()
    }
}

/// What kind of result an outcome is, e.g. `3 decisions`.
pub(crate) fn outcome_kind(o: &Outcome) -> String {
    use crate::cases::plural;
    match o {
        Outcome::Valid => "success".into(),
        Outcome::Decisions(d) => plural(d.len(), "decision"),
        Outcome::Refs(r) => plural(r.len(), "secret reference"),
        Outcome::Artifacts(a) => plural(a.len(), "artifact"),
        Outcome::Failed { kind, message } => format!("error {kind}: {message}"),
    }
}

/// An outcome as lines, for reports.
pub(crate) fn outcome_lines(o: &Outcome) -> Vec<String> {
    match o {
        Outcome::Valid => vec!["(settings are valid)".into()],
        Outcome::Decisions(d) => d.iter().map(decision).collect(),
        Outcome::Refs(r) => r.iter().map(secret_ref).collect(),
        Outcome::Artifacts(a) => artifacts(a),
        Outcome::Failed { kind, message } => vec![format!("error {kind}: {message}")],
    }
}
