//! The `expect` section of a case file and the comparison of an outcome
//! with it.

use std::collections::BTreeMap;
use std::fmt;

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use keyward_core::{Artifact, Grant, SecretDecision, SecretRef, Sensitive, Verdict};
use serde::Deserialize;

use super::{Call, Outcome, exactly_one};
use crate::diff;
use crate::show;

/// Error kinds a case may expect: the plugin's own errors, the sandbox's
/// reasons and the host's artifact check.
pub(crate) const ERROR_KINDS: &[&str] = &[
    "invalid-settings",
    "invalid-input",
    "failed",
    "timeout",
    "memory",
    "trap",
    "output-limit",
    "hostcall-limit",
    "load",
    "contract",
    "check",
];

#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub(super) struct ExpectFile {
    #[serde(default)]
    ok: Option<bool>,
    #[serde(default)]
    decisions: Option<Vec<DecisionFile>>,
    #[serde(default)]
    refs: Option<Vec<SecretRef>>,
    #[serde(default)]
    artifacts: Option<Vec<ArtifactFile>>,
    #[serde(default)]
    error: Option<ExpectedError>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct DecisionFile {
    reference: String,
    #[serde(default)]
    allow: Option<Grant>,
    #[serde(default)]
    deny: Option<String>,
    #[serde(default)]
    abstain: Option<bool>,
    #[serde(default)]
    rule: Option<String>,
}

/// One expected artifact: exactly one of `file`, `env`, `kube-secret`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct ArtifactFile {
    #[serde(default)]
    file: Option<FileFile>,
    #[serde(default)]
    env: Option<EnvFile>,
    #[serde(default)]
    kube_secret: Option<KubeSecretFile>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct FileFile {
    path: String,
    mode: u32,
    #[serde(default)]
    contents: Option<String>,
    #[serde(default)]
    contents_base64: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct EnvFile {
    name: String,
    value: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct KubeSecretFile {
    name: String,
    #[serde(rename = "type")]
    secret_type: String,
    #[serde(default)]
    data: BTreeMap<String, String>,
    #[serde(default)]
    data_base64: BTreeMap<String, String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

/// An expected failure: the kind and a substring of the message, each
/// compared when given.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) struct ExpectedError {
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    contains: Option<String>,
}

/// A validated expectation.
#[derive(Debug, Clone)]
pub(crate) enum Expect {
    /// The call succeeded (whatever it returned).
    Ok,
    Decisions(Vec<ExpectedDecision>),
    Refs(Vec<SecretRef>),
    Artifacts(Vec<Artifact>),
    Error(ExpectedError),
}

#[derive(Debug, Clone)]
pub(crate) struct ExpectedDecision {
    reference: String,
    verdict: ExpectedVerdict,
    rule: Option<String>,
}

#[derive(Debug, Clone)]
enum ExpectedVerdict {
    /// The full grant, compared exactly.
    Allow(Grant),
    /// A substring of the reason.
    Deny(String),
    Abstain,
}

/// Why an outcome does not match: a one-line summary and optional detail
/// lines (a diff).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mismatch {
    pub(crate) summary: String,
    pub(crate) detail: Vec<String>,
}

impl Mismatch {
    fn new(summary: impl Into<String>) -> Self {
        Mismatch {
            summary: summary.into(),
            detail: Vec::new(),
        }
    }
    fn with_detail(mut self, detail: Vec<String>) -> Self {
        self.detail = detail;
        self
    }
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.summary)?;
        for line in &self.detail {
            write!(f, "\n    {line}")?;
        }
        Ok(())
    }
}

impl ExpectFile {
    pub(super) fn validate(self, call: Call) -> Result<Expect> {
        exactly_one(
            "expectation",
            &[
                ("ok", self.ok.is_some()),
                ("decisions", self.decisions.is_some()),
                ("refs", self.refs.is_some()),
                ("artifacts", self.artifacts.is_some()),
                ("error", self.error.is_some()),
            ],
        )?;
        let only = |field: &str, wanted: Call| -> Result<()> {
            if call != wanted {
                bail!(
                    "{field}: only `call: {}` produces {field}, this case calls `{}`",
                    wanted.as_str(),
                    call.as_str()
                );
            }
            Ok(())
        };
        if let Some(ok) = self.ok {
            if !ok {
                bail!("ok: must be `true`; to expect a failure write `error:`");
            }
            return Ok(Expect::Ok);
        }
        if let Some(decisions) = self.decisions {
            only("decisions", Call::Decide)?;
            return decisions
                .into_iter()
                .enumerate()
                .map(|(i, d)| d.validate().with_context(|| format!("decisions[{i}]")))
                .collect::<Result<_>>()
                .map(Expect::Decisions);
        }
        if let Some(refs) = self.refs {
            only("refs", Call::Plan)?;
            return Ok(Expect::Refs(refs));
        }
        if let Some(artifacts) = self.artifacts {
            only("artifacts", Call::Render)?;
            return artifacts
                .into_iter()
                .enumerate()
                .map(|(i, a)| a.validate().with_context(|| format!("artifacts[{i}]")))
                .collect::<Result<_>>()
                .map(Expect::Artifacts);
        }
        let error = self.error.unwrap_or(ExpectedError {
            kind: None,
            contains: None,
        });
        if let Some(kind) = &error.kind
            && !ERROR_KINDS.contains(&kind.as_str())
        {
            bail!(
                "error.kind: unknown kind {kind:?}, expected one of {}",
                ERROR_KINDS.join(", ")
            );
        }
        Ok(Expect::Error(error))
    }
}

impl DecisionFile {
    fn validate(self) -> Result<ExpectedDecision> {
        exactly_one(
            "verdict",
            &[
                ("allow", self.allow.is_some()),
                ("deny", self.deny.is_some()),
                ("abstain", self.abstain.is_some()),
            ],
        )?;
        let verdict = match (self.allow, self.deny, self.abstain) {
            (Some(grant), _, _) => ExpectedVerdict::Allow(grant),
            (_, Some(reason), _) => ExpectedVerdict::Deny(reason),
            (_, _, Some(true)) => ExpectedVerdict::Abstain,
            _ => bail!("abstain: must be `true`"),
        };
        Ok(ExpectedDecision {
            reference: self.reference,
            verdict,
            rule: self.rule,
        })
    }
}

impl ArtifactFile {
    fn validate(self) -> Result<Artifact> {
        exactly_one(
            "artifact",
            &[
                ("file", self.file.is_some()),
                ("env", self.env.is_some()),
                ("kube-secret", self.kube_secret.is_some()),
            ],
        )?;
        if let Some(EnvFile { name, value }) = self.env {
            return Ok(Artifact::Env {
                name,
                value: Sensitive(value),
            });
        }
        if let Some(f) = self.file {
            exactly_one(
                "file",
                &[
                    ("contents", f.contents.is_some()),
                    ("contents-base64", f.contents_base64.is_some()),
                ],
            )?;
            let contents = match (f.contents, f.contents_base64) {
                (Some(text), _) => text.into_bytes(),
                (None, Some(b64)) => decode_base64(&b64).context("file.contents-base64")?,
                (None, None) => Vec::new(),
            };
            return Ok(Artifact::File {
                path: f.path,
                mode: f.mode,
                contents: Sensitive(contents),
            });
        }
        let Some(k) = self.kube_secret else {
            bail!("artifact: give one of `file`, `env`, `kube-secret`");
        };
        let mut data: BTreeMap<String, Sensitive<Vec<u8>>> = k
            .data
            .into_iter()
            .map(|(key, v)| (key, Sensitive(v.into_bytes())))
            .collect();
        for (key, v) in k.data_base64 {
            let bytes =
                decode_base64(&v).with_context(|| format!("kube-secret.data-base64.{key}"))?;
            if data.insert(key.clone(), Sensitive(bytes)).is_some() {
                bail!("kube-secret: key {key:?} is in both `data` and `data-base64`");
            }
        }
        Ok(Artifact::KubeSecret {
            name: k.name,
            secret_type: k.secret_type,
            data,
            labels: k.labels,
            annotations: k.annotations,
        })
    }
}

fn decode_base64(text: &str) -> Result<Vec<u8>> {
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    BASE64
        .decode(compact)
        .map_err(|e| anyhow!("not valid base64: {e}"))
}

impl Expect {
    pub(crate) fn check(&self, outcome: &Outcome) -> Result<(), Mismatch> {
        if let Outcome::Failed { kind, message } = outcome {
            return match self {
                Expect::Error(e) => e.check(kind, message),
                other => Err(Mismatch::new(format!(
                    "expected {}, got error {kind}: {message}",
                    other.describe()
                ))),
            };
        }
        match (self, outcome) {
            (Expect::Ok, _) => Ok(()),
            (Expect::Error(e), got) => Err(Mismatch::new(format!(
                "expected {}, got success",
                e.describe()
            ))
            .with_detail(show::outcome_lines(got))),
            (Expect::Decisions(want), Outcome::Decisions(got)) => check_decisions(want, got),
            (Expect::Refs(want), Outcome::Refs(got)) => check_refs(want, got),
            (Expect::Artifacts(want), Outcome::Artifacts(got)) => check_artifacts(want, got),
            (want, got) => Err(Mismatch::new(format!(
                "expected {}, got {}",
                want.describe(),
                show::outcome_kind(got)
            ))),
        }
    }

    fn describe(&self) -> String {
        match self {
            Expect::Ok => "success".into(),
            Expect::Decisions(d) => plural(d.len(), "decision"),
            Expect::Refs(r) => plural(r.len(), "secret reference"),
            Expect::Artifacts(a) => plural(a.len(), "artifact"),
            Expect::Error(e) => e.describe(),
        }
    }
}

pub(crate) fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

impl ExpectedError {
    fn describe(&self) -> String {
        let mut s = String::from("error");
        if let Some(kind) = &self.kind {
            s.push(' ');
            s.push_str(kind);
        }
        if let Some(c) = &self.contains {
            s.push_str(&format!(" containing {c:?}"));
        }
        s
    }

    fn check(&self, kind: &str, message: &str) -> Result<(), Mismatch> {
        let kind_ok = self.kind.as_deref().is_none_or(|k| k == kind);
        let text_ok = self.contains.as_deref().is_none_or(|c| message.contains(c));
        if kind_ok && text_ok {
            Ok(())
        } else {
            Err(Mismatch::new(format!(
                "expected {}, got error {kind}: {message}",
                self.describe()
            )))
        }
    }
}

impl ExpectedDecision {
    fn line(&self) -> String {
        let verdict = match &self.verdict {
            ExpectedVerdict::Allow(g) => format!("allow {}", show::grant(g)),
            ExpectedVerdict::Deny(reason) => format!("deny containing {reason:?}"),
            ExpectedVerdict::Abstain => "abstain".into(),
        };
        match &self.rule {
            Some(rule) => format!("{}: {verdict} (rule {rule:?})", self.reference),
            None => format!("{}: {verdict}", self.reference),
        }
    }

    fn matches(&self, got: &SecretDecision) -> bool {
        let verdict_ok = match (&self.verdict, &got.verdict) {
            (ExpectedVerdict::Allow(want), Verdict::Allow(have)) => want == have,
            (ExpectedVerdict::Deny(want), Verdict::Deny(have)) => have.contains(want.as_str()),
            (ExpectedVerdict::Abstain, Verdict::Abstain) => true,
            _ => false,
        };
        let rule_ok = self
            .rule
            .as_ref()
            .is_none_or(|r| got.rule.as_deref() == Some(r.as_str()));
        self.reference == got.reference && verdict_ok && rule_ok
    }
}

fn check_decisions(want: &[ExpectedDecision], got: &[SecretDecision]) -> Result<(), Mismatch> {
    if want.len() != got.len() {
        return Err(Mismatch::new(format!(
            "expected {}, got {}",
            plural(want.len(), "decision"),
            got.len()
        ))
        .with_detail(diff::lines(
            &want.iter().map(ExpectedDecision::line).collect::<Vec<_>>(),
            &got.iter().map(show::decision).collect::<Vec<_>>(),
        )));
    }
    for (i, (w, g)) in want.iter().zip(got).enumerate() {
        if !w.matches(g) {
            return Err(Mismatch::new(format!(
                "decisions[{i}]: expected {}, got {}",
                w.line(),
                show::decision(g)
            )));
        }
    }
    Ok(())
}

fn check_refs(want: &[SecretRef], got: &[SecretRef]) -> Result<(), Mismatch> {
    if want == got {
        return Ok(());
    }
    Err(Mismatch::new(format!(
        "expected {}, got {} that differ (- expected, + got)",
        plural(want.len(), "secret reference"),
        got.len()
    ))
    .with_detail(diff::lines(
        &want.iter().map(show::secret_ref).collect::<Vec<_>>(),
        &got.iter().map(show::secret_ref).collect::<Vec<_>>(),
    )))
}

fn check_artifacts(want: &[Artifact], got: &[Artifact]) -> Result<(), Mismatch> {
    if want == got {
        return Ok(());
    }
    Err(Mismatch::new(format!(
        "expected {}, got {} that differ (- expected, + got)",
        plural(want.len(), "artifact"),
        got.len()
    ))
    .with_detail(diff::lines(&show::artifacts(want), &show::artifacts(got))))
}
