//! Loading components through `keyward-runtime`: the one place this crate
//! touches the runtime's API.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use keyward_core::{Policy, Renderer};
use keyward_runtime::{Plugin, PluginSpec, Runtime, RuntimeConfig, World};

/// A loaded plugin and the core trait object for its world.
pub(crate) struct Loaded {
    pub(crate) plugin: Plugin,
    pub(crate) api: Api,
}

/// The plugin's world, as the core trait the pipeline calls.
#[derive(Clone)]
pub(crate) enum Api {
    Policy(Arc<dyn Policy>),
    Renderer(Arc<dyn Renderer>),
}

impl Api {
    pub(crate) fn world_name(&self) -> &'static str {
        match self {
            Api::Policy(_) => "policy",
            Api::Renderer(_) => "renderer",
        }
    }
}

/// A runtime with default limits; `cache_dir` overrides the default
/// precompiled-component cache (`$KEYWARD_CACHE_DIR`, else
/// `~/.cache/keyward/components`).
pub(crate) fn runtime(cache_dir: Option<PathBuf>) -> Result<Runtime> {
    let mut config = RuntimeConfig::default();
    if cache_dir.is_some() {
        config.cache_dir = cache_dir;
    }
    Runtime::new(config).context("cannot start the plugin runtime")
}

/// The name a component is known by: its file name without `.wasm`.
pub(crate) fn plugin_name(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "plugin".into())
}

/// Load a component with the default limits for its language.
pub(crate) fn load(runtime: &Runtime, path: &Path) -> Result<Loaded> {
    if !path.is_file() {
        bail!(
            "component {} not found{}",
            path.display(),
            if path.starts_with("target") || path.components().any(|c| c.as_os_str() == "plugins") {
                " (build the first-party plugins with `cargo xtask plugins`)"
            } else {
                ""
            }
        );
    }
    let spec = PluginSpec {
        name: plugin_name(path),
        digest: None,
        limits: None,
        warmup: None,
    };
    let plugin = runtime
        .load_file(path, &spec)
        .with_context(|| format!("cannot load plugin {}", path.display()))?;
    let api = match plugin.world() {
        World::Policy => Api::Policy(
            plugin
                .policy()
                .with_context(|| format!("cannot load plugin {}", path.display()))?,
        ),
        World::Renderer => Api::Renderer(
            plugin
                .renderer()
                .with_context(|| format!("cannot load plugin {}", path.display()))?,
        ),
    };
    Ok(Loaded { plugin, api })
}
