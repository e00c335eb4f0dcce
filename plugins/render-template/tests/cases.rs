//! Runs every `cases/*.yaml` file (format: docs/cases.md) against the
//! native entry points, the way `keyward plugin test` runs them against
//! the component.
//!
//! `values` keys are `reference` followed by ` k=v` for each parameter; for
//! `render`, every entry becomes a granted secret, in file order. On top of
//! each case's own expectation, every error message is checked not to
//! contain any `CANARY` string found in the case's values.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use render_template::{
    Artifact, DeliveryKind, PluginError, RefKind, RenderRequest, SecretRef, SecretValue, Target,
};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct Case {
    #[allow(dead_code)]
    description: Option<String>,
    call: String,
    settings: Option<serde_yaml::Value>,
    settings_raw: Option<String>,
    #[allow(dead_code)]
    workload: Option<serde_yaml::Value>,
    #[allow(dead_code)]
    secrets: Option<serde_yaml::Value>,
    template: Option<String>,
    template_file: Option<String>,
    target: Option<TargetSpec>,
    values: Option<serde_yaml::Mapping>,
    expect: Expect,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct TargetSpec {
    kind: String,
    name: String,
    mode: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct Expect {
    ok: Option<bool>,
    refs: Option<Vec<RefSpec>>,
    artifacts: Option<Vec<ArtifactSpec>>,
    error: Option<ErrorSpec>,
    #[allow(dead_code)]
    decisions: Option<serde_yaml::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RefSpec {
    reference: String,
    #[serde(default)]
    parameters: Vec<(String, String)>,
    kind: String,
}

/// Exactly one of the three.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct ArtifactSpec {
    env: Option<EnvSpec>,
    file: Option<FileSpec>,
    kube_secret: Option<KubeSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct EnvSpec {
    name: String,
    value: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileSpec {
    path: String,
    mode: u32,
    contents: Option<String>,
    contents_base64: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct KubeSpec {
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct ErrorSpec {
    kind: String,
    contains: Option<String>,
}

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("cases")
}

fn settings_json(case: &Case) -> Result<String, String> {
    match (&case.settings, &case.settings_raw) {
        (Some(_), Some(_)) => Err("give settings or settings-raw, not both".into()),
        (None, Some(raw)) => Ok(raw.clone()),
        (Some(v), None) => serde_json::to_string(v).map_err(|e| format!("settings: {e}")),
        (None, None) => Ok("{}".into()),
    }
}

fn template_text(case: &Case, dir: &Path) -> Result<Option<String>, String> {
    match (&case.template, &case.template_file) {
        (Some(_), Some(_)) => Err("give template or template-file, not both".into()),
        (Some(t), None) => Ok(Some(t.clone())),
        (None, Some(f)) => std::fs::read_to_string(dir.join(f))
            .map(Some)
            .map_err(|e| format!("template-file {f}: {e}")),
        (None, None) => Ok(None),
    }
}

fn yaml_to_json(v: &serde_yaml::Value) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

/// Builds the granted secrets from `values`, and collects canary strings.
fn secrets(case: &Case) -> Result<(Vec<SecretValue>, Vec<String>), String> {
    let mut out = Vec::new();
    let mut canaries = Vec::new();
    let Some(values) = &case.values else {
        return Ok((out, canaries));
    };
    for (key, body) in values {
        let key = key.as_str().ok_or("values keys must be strings")?;
        let mut parts = key.split(' ');
        let reference = parts.next().unwrap_or_default().to_string();
        let mut parameters = Vec::new();
        for p in parts.filter(|p| !p.is_empty()) {
            let (k, v) = p
                .split_once('=')
                .ok_or_else(|| format!("values key {key:?}: {p:?} is not k=v"))?;
            parameters.push((k.to_string(), v.to_string()));
        }
        let body = yaml_to_json(body);
        collect_canaries(&body, &mut canaries);
        let data = body.get("data").cloned().unwrap_or(serde_json::Value::Null);
        out.push(SecretValue {
            reference,
            parameters,
            lease_id: body
                .get("lease_id")
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string(),
            lease_duration: body
                .get("lease_duration")
                .and_then(|v| v.as_u64())
                .unwrap_or(0),
            renewable: body
                .get("renewable")
                .and_then(|v| v.as_bool())
                .unwrap_or(false),
            data: data.to_string(),
            warnings: body
                .get("warnings")
                .and_then(|v| v.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|w| w.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default(),
        });
    }
    Ok((out, canaries))
}

fn collect_canaries(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::String(s) if s.contains("CANARY") => out.push(s.clone()),
        serde_json::Value::Array(a) => a.iter().for_each(|x| collect_canaries(x, out)),
        serde_json::Value::Object(o) => o.values().for_each(|x| collect_canaries(x, out)),
        _ => {}
    }
}

fn target(case: &Case) -> Result<Target, String> {
    let Some(t) = &case.target else {
        return Ok(Target {
            kind: DeliveryKind::File,
            name: "out".into(),
            mode: Some(0o600),
        });
    };
    let kind = match t.kind.as_str() {
        "env" => DeliveryKind::Env,
        "file" => DeliveryKind::File,
        "kube-secret" => DeliveryKind::KubeSecret,
        other => return Err(format!("unknown target kind {other:?}")),
    };
    Ok(Target {
        kind,
        name: t.name.clone(),
        mode: t.mode,
    })
}

fn error_kind(e: &PluginError) -> (&'static str, &str) {
    match e {
        PluginError::InvalidSettings(m) => ("invalid-settings", m),
        PluginError::InvalidInput(m) => ("invalid-input", m),
        PluginError::Failed(m) => ("failed", m),
    }
}

fn check_error(
    expect: &Expect,
    result: Result<String, PluginError>,
    canaries: &[String],
) -> Result<(), String> {
    if let Err(e) = &result {
        let (_, msg) = error_kind(e);
        for c in canaries {
            if msg.contains(c.as_str()) || msg.contains("CANARY") {
                return Err(format!("error message leaks a secret value: {msg}"));
            }
        }
    }
    match (&expect.error, result) {
        (Some(want), Err(e)) => {
            let (kind, msg) = error_kind(&e);
            if kind != want.kind {
                return Err(format!("want error kind {}, got {kind}: {msg}", want.kind));
            }
            if let Some(sub) = &want.contains
                && !msg.contains(sub.as_str())
            {
                return Err(format!("error {msg:?} does not contain {sub:?}"));
            }
            Ok(())
        }
        (Some(want), Ok(got)) => Err(format!("want error {want:?}, got success: {got}")),
        (None, Err(e)) => Err(format!("unexpected error: {e}")),
        (None, Ok(_)) => Ok(()),
    }
}

fn describe_artifact(a: &Artifact) -> String {
    match a {
        Artifact::Env(e) => format!("env {}={:?}", e.name, e.value),
        Artifact::File(f) => format!(
            "file {} mode {:o} contents {:?}",
            f.path,
            f.mode,
            String::from_utf8_lossy(&f.contents)
        ),
        Artifact::KubeSecret(k) => format!(
            "kube-secret {} type {} data {:?} labels {:?} annotations {:?}",
            k.name,
            k.secret_type,
            k.data
                .iter()
                .map(|(k, v)| (k.clone(), String::from_utf8_lossy(v).into_owned()))
                .collect::<Vec<_>>(),
            k.labels,
            k.annotations
        ),
    }
}

fn artifact_matches(spec: &ArtifactSpec, got: &Artifact) -> Result<bool, String> {
    let b64 = |s: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(s)
            .map_err(|e| format!("bad base64 in expectation: {e}"))
    };
    let given = [
        spec.env.is_some(),
        spec.file.is_some(),
        spec.kube_secret.is_some(),
    ];
    if given.iter().filter(|b| **b).count() != 1 {
        return Err("an artifact expectation holds exactly one of env, file, kube-secret".into());
    }
    Ok(match (spec, got) {
        (ArtifactSpec { env: Some(w), .. }, Artifact::Env(e)) => {
            w.name == e.name && w.value == e.value
        }
        (ArtifactSpec { file: Some(f), .. }, Artifact::File(g)) => {
            let want = match (&f.contents, &f.contents_base64) {
                (Some(c), None) => c.clone().into_bytes(),
                (None, Some(c)) => b64(c)?,
                _ => return Err("file: give contents or contents-base64".into()),
            };
            f.path == g.path && f.mode == g.mode && want == g.contents
        }
        (
            ArtifactSpec {
                kube_secret: Some(k),
                ..
            },
            Artifact::KubeSecret(g),
        ) => {
            let mut want: BTreeMap<String, Vec<u8>> = k
                .data
                .iter()
                .map(|(a, b)| (a.clone(), b.clone().into_bytes()))
                .collect();
            for (key, v) in &k.data_base64 {
                want.insert(key.clone(), b64(v)?);
            }
            let got_data: BTreeMap<String, Vec<u8>> = g.data.iter().cloned().collect();
            let got_labels: BTreeMap<String, String> = g.labels.iter().cloned().collect();
            let got_ann: BTreeMap<String, String> = g.annotations.iter().cloned().collect();
            k.name == g.name
                && k.secret_type == g.secret_type
                && want == got_data
                && got_data.len() == g.data.len()
                && k.labels == got_labels
                && k.annotations == got_ann
        }
        _ => false,
    })
}

fn run_case(path: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let case: Case = serde_yaml::from_str(&text).map_err(|e| format!("bad case file: {e}"))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let expectations = [
        case.expect.ok.is_some(),
        case.expect.refs.is_some(),
        case.expect.artifacts.is_some(),
        case.expect.error.is_some(),
        case.expect.decisions.is_some(),
    ];
    if expectations.iter().filter(|b| **b).count() != 1 {
        return Err("expect must hold exactly one expectation".into());
    }
    let settings = settings_json(&case)?;
    let template = template_text(&case, dir)?;
    let (secrets, canaries) = secrets(&case)?;
    match case.call.as_str() {
        "validate-settings" => {
            let r = render_template::validate_settings(&settings).map(|()| String::new());
            if case.expect.ok == Some(true) && r.is_err() {
                return Err(format!("want ok, got {r:?}"));
            }
            check_error(&case.expect, r, &canaries)
        }
        "plan" => {
            let r = render_template::plan(template.as_deref(), &settings);
            let Some(want) = &case.expect.refs else {
                return check_error(&case.expect, r.map(|refs| format!("{refs:?}")), &canaries);
            };
            let got = r.map_err(|e| format!("unexpected error: {e}"))?;
            let want: Vec<SecretRef> = want
                .iter()
                .map(|w| {
                    Ok(SecretRef {
                        reference: w.reference.clone(),
                        parameters: w.parameters.clone(),
                        kind: match w.kind.as_str() {
                            "secret" => RefKind::Secret,
                            "pki-cert" => RefKind::PkiCert,
                            other => return Err(format!("unknown ref kind {other:?}")),
                        },
                    })
                })
                .collect::<Result<_, String>>()?;
            if got != want {
                return Err(format!("refs differ:\n  want {want:?}\n  got  {got:?}"));
            }
            Ok(())
        }
        "render" => {
            let req = RenderRequest {
                template,
                settings,
                target: target(&case)?,
                secrets,
            };
            let r = render_template::render(&req);
            let Some(want) = &case.expect.artifacts else {
                return check_error(
                    &case.expect,
                    r.map(|a| {
                        a.iter()
                            .map(describe_artifact)
                            .collect::<Vec<_>>()
                            .join("; ")
                    }),
                    &canaries,
                );
            };
            let got = r.map_err(|e| format!("unexpected error: {e}"))?;
            let mut ok = got.len() == want.len();
            for (w, g) in want.iter().zip(&got) {
                ok &= artifact_matches(w, g)?;
            }
            if !ok {
                let got: Vec<String> = got.iter().map(describe_artifact).collect();
                return Err(format!(
                    "artifacts differ:\n  want {want:#?}\n  got  {got:#?}"
                ));
            }
            Ok(())
        }
        other => Err(format!("unsupported call {other:?} for a renderer")),
    }
}

#[test]
fn cases() {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(cases_dir())
        .expect("cases directory")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    paths.sort();
    assert!(
        !paths.is_empty(),
        "no case files in {}",
        cases_dir().display()
    );
    let mut failed = Vec::new();
    for p in &paths {
        let name = p
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        match run_case(p) {
            Ok(()) => println!("ok   {name}"),
            Err(e) => {
                println!("FAIL {name}: {e}");
                failed.push(name);
            }
        }
    }
    println!(
        "{} passed, {} failed",
        paths.len() - failed.len(),
        failed.len()
    );
    assert!(failed.is_empty(), "failed cases: {failed:?}");
}
