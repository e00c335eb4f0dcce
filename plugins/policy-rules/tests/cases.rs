//! Runs the plugin's case files (`cases/*.yaml`, format: `docs/cases.md`)
//! against the decision logic natively, so they are checked without a wasm
//! build. `keyward plugin test` runs the same files against the component.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use keyward_core::{Grant, SecretRequest, Workload};
use policy_rules::model::{self, PluginError, Verdict};
use serde::Deserialize;

/// The subset of the case format a policy uses; anything else (templates,
/// targets, values, refs, artifacts) is an unknown key here.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct Case {
    #[serde(default)]
    #[expect(dead_code, reason = "free text for readers")]
    description: Option<String>,
    call: Call,
    #[serde(default)]
    settings: Option<serde_yaml::Value>,
    #[serde(default)]
    settings_raw: Option<String>,
    #[serde(default)]
    workload: Workload,
    #[serde(default)]
    secrets: Vec<SecretRequest>,
    expect: Expect,
}

#[derive(Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
enum Call {
    Decide,
    ValidateSettings,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct Expect {
    #[serde(default)]
    ok: Option<bool>,
    #[serde(default)]
    decisions: Option<Vec<ExpectedDecision>>,
    #[serde(default)]
    error: Option<ExpectedError>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct ExpectedDecision {
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

#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct ExpectedError {
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    contains: Option<String>,
}

fn case_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("cases");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

fn settings_json(case: &Case) -> Result<String, String> {
    match (&case.settings, &case.settings_raw) {
        (Some(_), Some(_)) => Err("give `settings` or `settings-raw`, not both".into()),
        (None, Some(raw)) => Ok(raw.clone()),
        (Some(value), None) => serde_json::to_string(value).map_err(|e| e.to_string()),
        (None, None) => Ok("{}".into()),
    }
}

fn error_kind(e: &PluginError) -> (&'static str, &str) {
    match e {
        PluginError::InvalidSettings(m) => ("invalid-settings", m),
        PluginError::InvalidInput(m) => ("invalid-input", m),
    }
}

/// The case files use `keyward-core`'s (serde) types; the plugin has its
/// own model of the WIT types.
fn request(
    workload: &Workload,
    secrets: &[SecretRequest],
    settings: String,
) -> model::DecideRequest {
    model::DecideRequest {
        workload: model::Workload {
            cluster: workload.cluster.clone(),
            namespace: workload.namespace.clone(),
            service_account: workload.service_account.clone(),
            kind: workload.kind.clone(),
            name: workload.name.clone(),
            labels: workload.labels.clone(),
            namespace_labels: workload.namespace_labels.clone(),
            images: workload.images.clone(),
        },
        secrets: secrets
            .iter()
            .map(|s| model::SecretRequest {
                reference: s.reference.clone(),
                engine: engine(s.engine),
                mount: s.mount.clone(),
                path: s.path.clone(),
                version: s.version,
                parameters: s.parameters.clone(),
                delivery: s.delivery.iter().map(|k| delivery(*k)).collect(),
            })
            .collect(),
        settings,
    }
}

fn engine(e: keyward_core::Engine) -> model::Engine {
    use keyward_core::Engine as E;
    match e {
        E::Kv1 => model::Engine::Kv1,
        E::Kv2 => model::Engine::Kv2,
        E::Database => model::Engine::Database,
        E::Pki => model::Engine::Pki,
        E::Transit => model::Engine::Transit,
        E::Generic => model::Engine::Generic,
    }
}

fn delivery(k: keyward_core::DeliveryKind) -> model::DeliveryKind {
    use keyward_core::DeliveryKind as K;
    match k {
        K::Env => model::DeliveryKind::Env,
        K::File => model::DeliveryKind::File,
        K::KubeSecret => model::DeliveryKind::KubeSecret,
    }
}

fn grant(g: &Grant) -> model::Grant {
    model::Grant {
        allowed_keys: g.allowed_keys.clone(),
        max_ttl_seconds: g.max_ttl_seconds,
        delivery: g
            .delivery
            .as_ref()
            .map(|kinds| kinds.iter().map(|k| delivery(*k)).collect()),
        targets: g.targets.clone(),
    }
}

/// Run one case; `Err` says how it failed.
fn run(case: &Case) -> Result<(), String> {
    let settings = settings_json(case)?;
    let expect = &case.expect;
    let given = [
        expect.ok.is_some(),
        expect.decisions.is_some(),
        expect.error.is_some(),
    ];
    if given.iter().filter(|g| **g).count() != 1 {
        return Err("`expect` needs exactly one of ok, decisions, error".into());
    }
    let outcome = match case.call {
        Call::ValidateSettings => {
            if !case.secrets.is_empty() || case.workload != Workload::default() {
                return Err("validate-settings takes no workload or secrets".into());
            }
            policy_rules::validate_settings(&settings).map(|()| None)
        }
        Call::Decide => {
            policy_rules::decide(&request(&case.workload, &case.secrets, settings)).map(Some)
        }
    };
    match (outcome, expect) {
        (
            Err(e),
            Expect {
                error: Some(want), ..
            },
        ) => {
            let (kind, message) = error_kind(&e);
            if let Some(want_kind) = &want.kind
                && kind != want_kind
            {
                return Err(format!("error kind {kind} ({message}), want {want_kind}"));
            }
            match &want.contains {
                Some(part) if !message.contains(part.as_str()) => {
                    Err(format!("error {message:?} does not contain {part:?}"))
                }
                _ => Ok(()),
            }
        }
        (Err(e), _) => Err(format!("unexpected error: {e:?}")),
        (
            Ok(_),
            Expect {
                error: Some(want), ..
            },
        ) => Err(format!("succeeded, want an error {want:?}")),
        (Ok(None), Expect { ok: Some(true), .. }) => Ok(()),
        (
            Ok(Some(got)),
            Expect {
                decisions: Some(want),
                ..
            },
        ) => {
            if case.call != Call::Decide {
                return Err("`decisions` needs call: decide".into());
            }
            if want.len() != case.secrets.len() {
                return Err(format!(
                    "the case lists {} decisions for {} secrets",
                    want.len(),
                    case.secrets.len()
                ));
            }
            if got.len() != want.len() {
                return Err(format!("{} decisions, want {}", got.len(), want.len()));
            }
            let mut problems = String::new();
            for (i, (got, want)) in got.iter().zip(want).enumerate() {
                if got.reference != want.reference {
                    let _ = write!(
                        problems,
                        "\n  [{i}] reference {:?}, want {:?}",
                        got.reference, want.reference
                    );
                }
                let verdicts = [
                    want.allow.is_some(),
                    want.deny.is_some(),
                    want.abstain.is_some(),
                ];
                if verdicts.iter().filter(|v| **v).count() != 1 {
                    let _ = write!(
                        problems,
                        "\n  [{i}] want exactly one of allow, deny, abstain"
                    );
                    continue;
                }
                let verdict_ok = match (&got.verdict, want) {
                    (Verdict::Allow(g), ExpectedDecision { allow: Some(w), .. }) => *g == grant(w),
                    (
                        Verdict::Deny(reason),
                        ExpectedDecision {
                            deny: Some(part), ..
                        },
                    ) => reason.contains(part.as_str()),
                    (
                        Verdict::Abstain,
                        ExpectedDecision {
                            abstain: Some(true),
                            ..
                        },
                    ) => true,
                    _ => false,
                };
                if !verdict_ok {
                    let _ = write!(
                        problems,
                        "\n  [{i}] {}: verdict {:?}, want {}",
                        want.reference,
                        got.verdict,
                        describe_want(want)
                    );
                }
                if let Some(rule) = &want.rule
                    && got.rule.as_ref() != Some(rule)
                {
                    let _ = write!(
                        problems,
                        "\n  [{i}] {}: rule {:?}, want {rule:?}",
                        want.reference, got.rule
                    );
                }
            }
            if problems.is_empty() {
                Ok(())
            } else {
                Err(problems)
            }
        }
        (Ok(_), _) => Err("the expectation does not fit the call".into()),
    }
}

fn describe_want(want: &ExpectedDecision) -> String {
    if let Some(g) = &want.allow {
        format!("allow {g:?}")
    } else if let Some(d) = &want.deny {
        format!("deny containing {d:?}")
    } else {
        "abstain".into()
    }
}

#[test]
fn case_files_pass() {
    let files = case_files();
    let mut failed = Vec::new();
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(path).expect("readable case file");
        let result = serde_yaml::from_str::<Case>(&text)
            .map_err(|e| format!("malformed case: {e}"))
            .and_then(|case| run(&case));
        match result {
            Ok(()) => {
                println!("ok   {name}");
            }
            Err(why) => {
                println!("FAIL {name}: {why}");
                failed.push(format!("{name}: {why}"));
            }
        }
    }
    assert!(failed.is_empty(), "failing cases:\n{}", failed.join("\n"));
    assert!(
        files.len() >= 30,
        "only {} case files; the plugin promises at least 30",
        files.len()
    );
}

#[test]
fn a_wrong_expectation_fails() {
    // The runner itself must be able to fail: a case expecting the opposite
    // of the truth is reported.
    let case: Case = serde_yaml::from_str(
        r#"
call: decide
settings: { rules: [] }
secrets:
  - { reference: secret/x, engine: kv1, mount: secret, path: x }
expect:
  decisions:
    - { reference: secret/x, allow: {} }
"#,
    )
    .unwrap();
    let err = run(&case).unwrap_err();
    assert!(err.contains("want allow"), "{err}");
}
