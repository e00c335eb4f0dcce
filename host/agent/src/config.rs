//! The agent's configuration file (YAML). Everything a user writes is
//! strictly typed: unknown keys are errors.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use keyward_core::{DeliveryKind, Engine, RefKind, SecretRef, Target, Workload};
use serde::Deserialize;

use crate::actions::{ExecRestart, OnChange};
use crate::deliver::EnvFormat;
use crate::error::{Error, Result};

/// `keyward agent --config <file>`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct AgentConfig {
    /// Vault connection and authentication.
    pub vault: keyward_vault::VaultConfig,
    /// Who this agent renders for (what policies see).
    #[serde(default)]
    pub workload: Workload,
    /// Mount table: mount path -> engine. References under other mounts are
    /// read and written generically.
    #[serde(default)]
    pub mounts: BTreeMap<String, Engine>,
    /// Plugins.
    #[serde(default)]
    pub plugins: Plugins,
    /// Where output goes.
    pub outputs: Outputs,
    /// The secrets to render: one binding each.
    pub secrets: Vec<BindingConfig>,
    /// Reactions to changes after the first render.
    #[serde(default)]
    pub on_change: OnChange,
    /// Exec mode settings (`keyward agent exec -- <cmd>`).
    #[serde(default)]
    pub exec: ExecConfig,
    /// Health and metrics listener (loopback). `None` disables it.
    #[serde(default = "default_listen")]
    pub listen: Option<SocketAddr>,
    /// Audit log (JSON lines). `-` for stderr; unset disables it.
    #[serde(default)]
    pub audit: Option<PathBuf>,
}

fn default_listen() -> Option<SocketAddr> {
    Some(SocketAddr::from(([127, 0, 0, 1], 8099)))
}

/// Plugins, by name.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Plugins {
    /// Directory where components named without a path are found
    /// (default: `$KEYWARD_PLUGIN_DIR`, then `/usr/lib/keyward/plugins`).
    #[serde(default)]
    pub dir: Option<PathBuf>,
    /// The policy chain, in order. Any denial wins.
    #[serde(default)]
    pub policies: Vec<PluginConfig>,
    /// Renderers bindings may name. `render-template` is always available
    /// from the plugin directory.
    #[serde(default)]
    pub renderers: Vec<PluginConfig>,
    /// A long-running agent warms every plugin up with its settings and
    /// templates on a background thread (the first render does not wait
    /// for it) and starts every later call from a snapshot of that
    /// instance (parsed settings and templates included). Costs one extra
    /// compile per plugin and configuration, cached on disk. Interpreted
    /// guests (Python, JavaScript) are skipped. Default: true.
    #[serde(default = "default_true")]
    pub preinitialize: bool,
}

fn default_true() -> bool {
    true
}

impl Default for Plugins {
    fn default() -> Self {
        Plugins {
            dir: None,
            policies: Vec::new(),
            renderers: Vec::new(),
            preinitialize: true,
        }
    }
}

/// One plugin.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct PluginConfig {
    /// Name used in bindings, errors and audit.
    pub name: String,
    /// Component file; a bare name is looked up in the plugin directory.
    pub component: PathBuf,
    /// Expected `sha256:<hex>` digest; loading fails on mismatch.
    #[serde(default)]
    pub digest: Option<String>,
    /// Settings, any YAML value, passed as JSON.
    #[serde(default = "empty_settings")]
    pub settings: serde_json::Value,
}

fn empty_settings() -> serde_json::Value {
    serde_json::Value::Object(Default::default())
}

/// Output locations.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Outputs {
    /// Directory files are written into (a memory volume in pods).
    pub directory: PathBuf,
    /// Env file collecting every env binding, relative to `directory`.
    #[serde(default)]
    pub env_file: Option<EnvFileConfig>,
}

/// The env file.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct EnvFileConfig {
    /// Path relative to the output directory.
    pub path: String,
    /// `plain` (`KEY='v'`) or `export` (`export KEY='v'`).
    #[serde(default)]
    pub format: EnvFormat,
    /// File mode.
    #[serde(default = "default_mode")]
    pub mode: u32,
}

fn default_mode() -> u32 {
    0o600
}

/// Exec mode.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ExecConfig {
    /// What to do with the child when env vars change.
    #[serde(default)]
    pub on_change: ExecRestart,
    /// Grace period between SIGTERM and SIGKILL.
    #[serde(default = "default_grace", with = "humantime_serde")]
    pub grace: Duration,
}

impl Default for ExecConfig {
    fn default() -> Self {
        ExecConfig {
            on_change: ExecRestart::default(),
            grace: default_grace(),
        }
    }
}

fn default_grace() -> Duration {
    Duration::from_secs(10)
}

/// A secret reference in a binding: a path string, or a full object.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RefConfig {
    /// `secret/data/app`.
    Path(String),
    /// `{reference, parameters, kind}`.
    Full {
        /// Path as Vault names it.
        reference: String,
        /// Parameters (`common_name: web.example.com`).
        #[serde(default)]
        parameters: BTreeMap<String, String>,
        /// `secret` or `pki-cert`.
        #[serde(default)]
        kind: RefKind,
    },
}

impl RefConfig {
    fn to_ref(&self) -> SecretRef {
        match self {
            RefConfig::Path(p) => SecretRef::read(p.clone()),
            RefConfig::Full {
                reference,
                parameters,
                kind,
            } => SecretRef {
                reference: reference.clone(),
                parameters: parameters
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                kind: *kind,
            },
        }
    }
}

/// One binding.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct BindingConfig {
    /// Unique name.
    pub name: String,
    /// Inline template.
    #[serde(default)]
    pub template: Option<String>,
    /// Template file (relative to the config file).
    #[serde(default)]
    pub template_file: Option<PathBuf>,
    /// Renderer name (default `render-template`).
    #[serde(default)]
    pub renderer: Option<String>,
    /// Renderer settings.
    #[serde(default = "empty_settings")]
    pub settings: serde_json::Value,
    /// Secrets read besides the template's own references.
    #[serde(default)]
    pub secrets: Vec<RefConfig>,
    /// Write a file.
    #[serde(default)]
    pub file: Option<FileOutput>,
    /// Produce env vars.
    #[serde(default)]
    pub env: Option<EnvOutput>,
}

/// A file output.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct FileOutput {
    /// Path relative to the output directory.
    pub path: String,
    /// Mode.
    #[serde(default = "default_mode")]
    pub mode: u32,
}

/// An env output.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct EnvOutput {
    /// Prefix for variable names.
    #[serde(default)]
    pub prefix: String,
}

/// A binding resolved from configuration (renderer still by name).
#[derive(Debug, Clone)]
pub struct ResolvedBinding {
    /// Name.
    pub name: String,
    /// Renderer name.
    pub renderer: String,
    /// Template.
    pub template: Option<String>,
    /// Settings JSON.
    pub settings: String,
    /// Target.
    pub target: Target,
    /// Explicit secrets.
    pub secrets: Vec<SecretRef>,
}

impl AgentConfig {
    /// Read and validate a configuration file.
    pub fn load(path: &Path) -> Result<AgentConfig> {
        let err = |detail: String| Error::Config {
            path: path.display().to_string(),
            detail,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        let mut cfg: AgentConfig = serde_yaml::from_str(&text).map_err(|e| err(e.to_string()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        for b in &mut cfg.secrets {
            if let Some(f) = &b.template_file {
                if b.template.is_some() {
                    return Err(err(format!(
                        "secret {:?}: give `template` or `template-file`, not both",
                        b.name
                    )));
                }
                let p = base.join(f);
                b.template = Some(std::fs::read_to_string(&p).map_err(|e| {
                    err(format!(
                        "secret {:?}: template file {}: {e}",
                        b.name,
                        p.display()
                    ))
                })?);
                b.template_file = None;
            }
        }
        if cfg.workload.kind.is_empty() {
            cfg.workload.kind = "Agent".into();
        }
        cfg.validate().map_err(err)?;
        Ok(cfg)
    }

    fn validate(&self) -> std::result::Result<(), String> {
        if self.secrets.is_empty() {
            return Err("`secrets` is empty: nothing to render".into());
        }
        let mut names = std::collections::BTreeSet::new();
        for b in &self.secrets {
            if !names.insert(&b.name) {
                return Err(format!("two secrets are named {:?}", b.name));
            }
            match (&b.file, &b.env) {
                (Some(_), Some(_)) | (None, None) => {
                    return Err(format!(
                        "secret {:?}: give exactly one of `file` or `env`",
                        b.name
                    ));
                }
                (None, Some(_)) if self.outputs.env_file.is_none() => {
                    // Exec mode needs no env file; checked at run time.
                }
                _ => {}
            }
            if b.template.is_none() && b.secrets.is_empty() {
                return Err(format!(
                    "secret {:?}: give a `template` or list `secrets` for the default format",
                    b.name
                ));
            }
        }
        let mut plugin_names = std::collections::BTreeSet::new();
        for p in self.plugins.policies.iter().chain(&self.plugins.renderers) {
            if !plugin_names.insert(&p.name) {
                return Err(format!("two plugins are named {:?}", p.name));
            }
        }
        Ok(())
    }

    /// Mount table for the pipeline.
    pub fn mount_table(&self) -> keyward_core::MountTable {
        let mut t = keyward_core::MountTable::new();
        for (m, e) in &self.mounts {
            t.insert(m, *e);
        }
        t
    }

    /// Bindings with targets resolved.
    pub fn bindings(&self) -> Vec<ResolvedBinding> {
        self.secrets
            .iter()
            .map(|b| ResolvedBinding {
                name: b.name.clone(),
                renderer: b
                    .renderer
                    .clone()
                    .unwrap_or_else(|| "render-template".to_string()),
                template: b.template.clone(),
                settings: b.settings.to_string(),
                target: match (&b.file, &b.env) {
                    (Some(f), _) => Target {
                        kind: DeliveryKind::File,
                        name: f.path.clone(),
                        mode: Some(f.mode),
                    },
                    (_, env) => Target {
                        kind: DeliveryKind::Env,
                        name: env.as_ref().map(|e| e.prefix.clone()).unwrap_or_default(),
                        mode: None,
                    },
                },
                secrets: b.secrets.iter().map(RefConfig::to_ref).collect(),
            })
            .collect()
    }
}
