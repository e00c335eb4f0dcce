//! `keyward render`: one binding through the whole pipeline (plan -> decide
//! with a built-in policy that allows everything -> fixture fetch -> render
//! -> check), offline.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use async_trait::async_trait;
use base64::Engine as _;
use keyward_core::{
    Artifact, Binding, DecideRequest, DeliveryKind, Engine, FixtureSource, Grant, MountTable,
    Pipeline, PluginFailure, Policy, PolicyStep, RefKind, SecretDecision, SecretRef, SecretRequest,
    SecretSource, SecretValue, Target, Verdict, Workload,
};
use serde::Serialize;

use crate::RenderArgs;
use crate::cases::{secret_ref_from_key, value_from_key};
use crate::plugin::{self, Api};

/// The delivery kind `keyward render` produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TargetKind {
    /// Files: contents printed raw.
    File,
    /// Environment variables: `KEY=value` lines.
    Env,
    /// A Kubernetes Secret: printed as a YAML manifest.
    KubeSecret,
}

impl TargetKind {
    fn delivery(self) -> DeliveryKind {
        match self {
            TargetKind::File => DeliveryKind::File,
            TargetKind::Env => DeliveryKind::Env,
            TargetKind::KubeSecret => DeliveryKind::KubeSecret,
        }
    }
}

/// The file name of the renderer used when `--plugin` is not given.
const DEFAULT_RENDERER: &str = "render-template.wasm";

pub(crate) fn run(args: &RenderArgs, cache_dir: Option<PathBuf>) -> Result<ExitCode> {
    let template = args
        .template
        .as_ref()
        .map(|p| {
            std::fs::read_to_string(p)
                .with_context(|| format!("cannot read template {}", p.display()))
        })
        .transpose()?;
    let fixtures = read_secrets(&args.secrets)?;
    serde_json::from_str::<serde_json::Value>(&args.settings)
        .map_err(|e| anyhow!("--settings is not a JSON document: {e}"))?;
    let plugin_path = match &args.plugin {
        Some(p) => p.clone(),
        None => default_renderer()?,
    };

    let runtime = plugin::runtime(cache_dir)?;
    let loaded = plugin::load(&runtime, &plugin_path)?;
    let Api::Renderer(renderer) = loaded.api.clone() else {
        bail!(
            "{} is a {} plugin; `keyward render` needs a renderer plugin (for example {DEFAULT_RENDERER})",
            plugin_path.display(),
            loaded.api.world_name()
        );
    };
    let renderer_name = plugin::plugin_name(&plugin_path);
    let rt = crate::tokio()?;

    let template_label = args
        .template
        .as_ref()
        .map(|p| format!("template {}", p.display()))
        .unwrap_or_else(|| "the default format".into());
    rt.block_on(renderer.validate_settings(&args.settings))
        .map_err(|f| anyhow!("plugin {renderer_name:?} rejected --settings: {f}"))?;
    // Plan once here so that mount inference sees the template's references
    // (the pipeline plans again).
    let planned = rt
        .block_on(renderer.plan(template.as_deref(), &args.settings))
        .map_err(|f| plugin_error(&renderer_name, "plan", f))
        .with_context(|| format!("cannot render {template_label}"))?;
    let explicit: Vec<SecretRef> = if template.is_none() {
        fixtures
            .keys
            .iter()
            .map(|k| secret_ref_from_key(k))
            .collect()
    } else {
        Vec::new()
    };
    let mounts = mount_table(
        &args.mounts,
        planned
            .iter()
            .chain(&explicit)
            .map(|r| r.reference.as_str())
            .chain(fixtures.keys.iter().map(String::as_str)),
    )?;

    let target = Target {
        kind: args.target.delivery(),
        name: args
            .name
            .clone()
            .unwrap_or_else(|| default_name(args.target, args.template.as_deref())),
        mode: (args.target == TargetKind::File).then_some(args.mode),
    };
    let binding = Binding {
        name: "render".into(),
        renderer_name,
        renderer,
        template,
        settings: args.settings.clone(),
        target,
        secrets: explicit,
    };
    let pipeline = Pipeline::new(
        vec![PolicyStep {
            name: "allow-all".into(),
            policy: Arc::new(AllowAll),
            settings: "{}".into(),
        }],
        mounts,
    );
    let workload = Workload {
        kind: "Render".into(),
        name: "keyward-render".into(),
        ..Workload::default()
    };
    let bindings = [binding];
    let rendered = rt
        .block_on(async {
            pipeline.validate(&bindings).await?;
            pipeline.run(&workload, &bindings, &fixtures).await
        })
        .with_context(|| format!("cannot render {template_label}"))?;
    let artifacts: Vec<&Artifact> = rendered.2.iter().flat_map(|r| &r.artifacts).collect();
    let mut out = std::io::stdout().lock();
    print_artifacts(&mut out, &artifacts)?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn plugin_error(plugin: &str, stage: &str, f: PluginFailure) -> anyhow::Error {
    anyhow!("plugin {plugin:?} failed in {stage}: {f}")
}

/// Fixture secrets from a `--secrets` file.
#[derive(Debug)]
pub(crate) struct Fixtures {
    source: FixtureSource,
    keys: Vec<String>,
}

/// Read and check a secrets file: a JSON object mapping each reference as
/// the template names it to a Vault response body.
pub(crate) fn read_secrets(path: &Path) -> Result<Fixtures> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read secrets file {}", path.display()))?;
    let doc: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("secrets file {} is not valid JSON", path.display()))?;
    let Some(map) = doc.as_object() else {
        bail!(
            "secrets file {}: expected a JSON object mapping secret paths to Vault responses \
             (as `bao read -format=json <path>` prints them)",
            path.display()
        );
    };
    let mut keys = Vec::with_capacity(map.len());
    for (key, body) in map {
        value_from_key(key, body)
            .with_context(|| format!("secrets file {}: {key:?}", path.display()))?;
        keys.push(key.clone());
    }
    let source = FixtureSource::from_json(doc)
        .map_err(|e| anyhow!("secrets file {}: {e}", path.display()))?;
    Ok(Fixtures { source, keys })
}

#[async_trait]
impl SecretSource for Fixtures {
    async fn fetch(
        &self,
        secret: &SecretRef,
        request: &SecretRequest,
        grant: &Grant,
    ) -> Result<SecretValue, Box<dyn std::error::Error + Send + Sync>> {
        // Fixture keys are written the same way for `secret` and `pkiCert`.
        let plain = SecretRef {
            kind: RefKind::Secret,
            ..secret.clone()
        };
        self.source.fetch(&plain, request, grant).await
    }
}

/// The policy of `keyward render`: every secret is allowed, with no limits.
struct AllowAll;

#[async_trait]
impl Policy for AllowAll {
    async fn validate_settings(&self, _settings: &str) -> Result<(), PluginFailure> {
        Ok(())
    }

    async fn decide(&self, request: DecideRequest) -> Result<Vec<SecretDecision>, PluginFailure> {
        Ok(request
            .secrets
            .into_iter()
            .map(|s| SecretDecision {
                reference: s.reference,
                verdict: Verdict::Allow(Grant::default()),
                rule: Some("keyward render allows every secret".into()),
            })
            .collect())
    }
}

/// The mount table from `--mount m=engine` flags, plus KV v2 for every
/// other reference whose second segment is `data`.
pub(crate) fn mount_table<'a>(
    flags: &[String],
    references: impl Iterator<Item = &'a str>,
) -> Result<MountTable> {
    let mut table = MountTable::new();
    for flag in flags {
        let (mount, engine) = flag
            .split_once('=')
            .ok_or_else(|| anyhow!("--mount {flag:?}: write MOUNT=ENGINE, e.g. secret=kv2"))?;
        let mount = mount.trim_matches('/');
        if mount.is_empty() {
            bail!("--mount {flag:?}: the mount path is empty");
        }
        table.insert(
            mount,
            parse_engine(engine).with_context(|| format!("--mount {flag:?}"))?,
        );
    }
    for reference in references {
        let path = reference
            .split(['?', ' '])
            .next()
            .unwrap_or_default()
            .trim_matches('/');
        let mut segments = path.split('/');
        if let (Some(mount), Some("data")) = (segments.next(), segments.next())
            && !mount.is_empty()
            && table.engine(mount).is_none()
            && !covered(&table, path)
        {
            table.insert(mount, Engine::Kv2);
        }
    }
    Ok(table)
}

/// Whether an explicit (possibly multi-segment) mount already covers `path`.
fn covered(table: &MountTable, path: &str) -> bool {
    table
        .iter()
        .any(|(m, _)| path == m || path.starts_with(&format!("{m}/")))
}

fn parse_engine(s: &str) -> Result<Engine> {
    Ok(match s {
        "kv1" => Engine::Kv1,
        "kv2" => Engine::Kv2,
        "database" => Engine::Database,
        "pki" => Engine::Pki,
        "transit" => Engine::Transit,
        "generic" => Engine::Generic,
        other => bail!("unknown engine {other:?}: use kv1, kv2, database, pki, transit or generic"),
    })
}

fn default_name(kind: TargetKind, template: Option<&Path>) -> String {
    match kind {
        TargetKind::Env => String::new(),
        TargetKind::KubeSecret => "rendered".into(),
        TargetKind::File => template
            .and_then(|p| p.file_name())
            .map(|n| {
                let n = n.to_string_lossy();
                [".ctmpl", ".tmpl", ".tpl"]
                    .iter()
                    .find_map(|ext| n.strip_suffix(ext).filter(|s| !s.is_empty()))
                    .unwrap_or(&n)
                    .to_string()
            })
            .unwrap_or_else(|| "out".into()),
    }
}

/// Where `keyward render` finds the renderer when `--plugin` is not given:
/// `$KEYWARD_PLUGIN_DIR/render-template.wasm`, else `target/plugins/` of the
/// workspace the binary was built in, else of the current directory.
fn default_renderer() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("KEYWARD_PLUGIN_DIR").filter(|d| !d.is_empty()) {
        let path = PathBuf::from(dir).join(DEFAULT_RENDERER);
        if path.is_file() {
            return Ok(path);
        }
        bail!(
            "{} not found (from KEYWARD_PLUGIN_DIR); build it with `cargo xtask plugins` or pass --plugin",
            path.display()
        );
    }
    let mut candidates = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        // <workspace>/target/<profile>/keyward -> <workspace>/target/plugins
        for dir in exe.ancestors().skip(1) {
            candidates.push(dir.join("plugins").join(DEFAULT_RENDERER));
            if dir.file_name().is_some_and(|n| n == "target") {
                break;
            }
        }
    }
    candidates.push(PathBuf::from("target/plugins").join(DEFAULT_RENDERER));
    if let Some(found) = candidates.iter().find(|p| p.is_file()) {
        return Ok(found.clone());
    }
    bail!(
        "no renderer plugin given and {DEFAULT_RENDERER} not found in {}; build it with \
         `cargo xtask plugins`, set KEYWARD_PLUGIN_DIR, or pass --plugin <component>",
        candidates
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// Print artifacts: file contents raw (with a `==> path <==` header each
/// when there are several), env as `KEY=value` lines, Kubernetes Secrets as
/// YAML manifests.
pub(crate) fn print_artifacts(
    out: &mut impl std::io::Write,
    artifacts: &[&Artifact],
) -> Result<()> {
    let files = artifacts
        .iter()
        .filter(|a| matches!(a, Artifact::File { .. }))
        .count();
    let mut first_doc = true;
    for artifact in artifacts {
        match artifact {
            Artifact::File { path, contents, .. } => {
                if files > 1 {
                    writeln!(out, "==> {path} <==")?;
                }
                out.write_all(contents.expose())?;
            }
            Artifact::Env { name, value } => writeln!(out, "{name}={}", env_value(value.expose()))?,
            Artifact::KubeSecret {
                name,
                secret_type,
                data,
                labels,
                annotations,
            } => {
                if !first_doc {
                    writeln!(out, "---")?;
                }
                first_doc = false;
                let doc = KubeSecretDoc {
                    api_version: "v1",
                    kind: "Secret",
                    metadata: Metadata {
                        name,
                        labels,
                        annotations,
                    },
                    secret_type,
                    data: data
                        .iter()
                        .map(|(k, v)| {
                            (
                                k.as_str(),
                                base64::engine::general_purpose::STANDARD.encode(v.expose()),
                            )
                        })
                        .collect(),
                };
                out.write_all(serde_yaml::to_string(&doc)?.as_bytes())?;
            }
        }
    }
    Ok(())
}

/// A value as-is when it fits on one line, else double-quoted with escapes
/// (dotenv style).
fn env_value(v: &str) -> String {
    if v.chars().any(|c| c.is_control()) {
        let mut s = String::from("\"");
        for c in v.chars() {
            match c {
                '\n' => s.push_str("\\n"),
                '\r' => s.push_str("\\r"),
                '\t' => s.push_str("\\t"),
                '"' => s.push_str("\\\""),
                '\\' => s.push_str("\\\\"),
                c => s.push(c),
            }
        }
        s.push('"');
        s
    } else {
        v.to_string()
    }
}

#[derive(Serialize)]
struct KubeSecretDoc<'a> {
    #[serde(rename = "apiVersion")]
    api_version: &'a str,
    kind: &'a str,
    metadata: Metadata<'a>,
    #[serde(rename = "type")]
    secret_type: &'a str,
    data: BTreeMap<&'a str, String>,
}

#[derive(Serialize)]
struct Metadata<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    labels: &'a BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    annotations: &'a BTreeMap<String, String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyward_core::Sensitive;

    #[test]
    fn infers_kv2_mounts() {
        let t = mount_table(
            &["pki_int=pki".into()],
            [
                "secret/data/app?version=2",
                "kv/app",
                "pki_int/issue/web common_name=a",
                "other/data/x",
            ]
            .into_iter(),
        )
        .unwrap();
        assert_eq!(t.engine("secret"), Some(Engine::Kv2));
        assert_eq!(t.engine("other"), Some(Engine::Kv2));
        assert_eq!(t.engine("kv"), None);
        assert_eq!(t.engine("pki_int"), Some(Engine::Pki));
    }

    #[test]
    fn explicit_mount_wins() {
        let t = mount_table(&["secret=kv1".into()], ["secret/data/app"].into_iter()).unwrap();
        assert_eq!(t.engine("secret"), Some(Engine::Kv1));
        assert!(mount_table(&["secret".into()], std::iter::empty()).is_err());
        assert!(mount_table(&["secret=kv3".into()], std::iter::empty()).is_err());
    }

    #[test]
    fn default_names() {
        assert_eq!(
            default_name(TargetKind::File, Some(Path::new("x/app.conf.tmpl"))),
            "app.conf"
        );
        assert_eq!(
            default_name(TargetKind::File, Some(Path::new("db.ctmpl"))),
            "db"
        );
        assert_eq!(default_name(TargetKind::File, None), "out");
        assert_eq!(default_name(TargetKind::Env, None), "");
    }

    #[test]
    fn prints_each_kind() {
        let env = Artifact::Env {
            name: "A".into(),
            value: Sensitive("x\ny".into()),
        };
        let secret = Artifact::KubeSecret {
            name: "app".into(),
            secret_type: "Opaque".into(),
            data: [("k".to_string(), Sensitive(b"v".to_vec()))].into(),
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
        };
        let mut out = Vec::new();
        print_artifacts(&mut out, &[&env, &secret]).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "A=\"x\\ny\"\napiVersion: v1\nkind: Secret\nmetadata:\n  name: app\ntype: Opaque\ndata:\n  k: dg==\n"
        );
    }
}
