//! The agent: authenticate, plan, decide, fetch, render, deliver once, then
//! keep everything fresh until told to stop.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use keyward_core::{
    Artifact, AuditEvent, Auditor, Binding, Decided, Fetched, Pipeline, PolicyStep, Rendered,
};
use keyward_runtime::{PluginSpec, Runtime, RuntimeConfig, Warmup};
use keyward_vault::{CancellationToken, LeaseEvent, Leases, Vault, VaultSource};
use tracing::{info, warn};

use crate::actions::Supervised;
use crate::audit::JsonLines;
use crate::config::{AgentConfig, PluginConfig};
use crate::deliver::{FileWrite, OutputDir, env_file};
use crate::error::{Error, Result};
use crate::health::{Counter, Status};

/// How to run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Render once and exit (init containers, Jobs).
    pub once: bool,
    /// Exec mode: start this command with the rendered env vars and
    /// restart or signal it on change.
    pub exec: Option<Vec<String>>,
    /// Directory of the configuration file (relative component paths).
    pub config_dir: PathBuf,
}

/// What a run ended with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Files written during the run.
    pub files_written: usize,
    /// Exit code of the exec child, if any.
    pub child_exit: Option<i32>,
    /// Leases revoked at shutdown.
    pub revoked: usize,
}

/// Run the agent until `cancel` fires (or once).
pub async fn run(cfg: AgentConfig, opts: RunOptions, cancel: CancellationToken) -> Result<Outcome> {
    let status = Arc::new(Status::default());
    if let Some(addr) = cfg.listen {
        let bound = crate::health::serve(addr, status.clone(), cancel.child_token()).await?;
        info!(%bound, "health and metrics listening");
    }
    let auditor = make_auditor(cfg.audit.as_deref())?;
    let mut agent = Agent::build(&cfg, &opts, auditor, status.clone(), &cancel).await?;
    let mut outcome = Outcome {
        files_written: 0,
        child_exit: None,
        revoked: 0,
    };

    // First complete render: any failure is fatal (nothing partial is
    // delivered: every binding is rendered and checked before writing).
    let decided = agent
        .pipeline
        .decide(&cfg.workload, &agent.bindings)
        .await?;
    let fetched = agent.pipeline.fetch(&decided, &agent.source).await?;
    let rendered = agent
        .pipeline
        .render(&cfg.workload, &agent.bindings, &decided, &fetched)
        .await?;
    let delivered = agent.deliver(&rendered)?;
    outcome.files_written += delivered.files_written;
    agent.state = Some(State {
        decided,
        fetched,
        rendered,
    });
    status.inc(Counter::Render);
    status.mark_success();
    info!(bindings = agent.bindings.len(), "first render complete");

    if opts.once {
        if let Some(leases) = &agent.leases {
            leases.shutdown().await;
        }
        return Ok(outcome);
    }

    let mut child = match &opts.exec {
        Some(argv) => {
            let mut s = Supervised::new(argv.clone(), cfg.exec.grace);
            s.start(&delivered.env)?;
            Some(s)
        }
        None => None,
    };

    let mut events = agent.events.take();
    loop {
        tokio::select! {
            biased;
            _ = cancel.cancelled() => break,
            status_code = async {
                match child.as_mut() {
                    Some(c) => c.wait().await,
                    None => std::future::pending().await,
                }
            } => {
                outcome.child_exit = status_code.and_then(|s| s.code());
                info!(exit = ?outcome.child_exit, "command exited; stopping");
                if let Some(c) = child.as_mut() { let _ = c.stop().await; }
                child = None;
                break;
            }
            event = async {
                match events.as_mut() {
                    Some(rx) => rx.recv().await,
                    None => std::future::pending().await,
                }
            } => {
                let Some(event) = event else { events = None; continue };
                match agent.on_event(event).await {
                    Ok(Some(delivered)) => {
                        outcome.files_written += delivered.files_written;
                        if delivered.changed {
                            if let Err(e) = cfg.on_change.run().await {
                                warn!(error = %e, "on-change reaction failed");
                            }
                            if let Some(c) = child.as_mut()
                                && let Err(e) = c.on_change(cfg.exec.on_change, &delivered.env).await {
                                    warn!(error = %e, "restarting the command failed");
                                }
                        }
                    }
                    Ok(None) => {}
                    Err(e) => {
                        status.inc(Counter::RenderError);
                        warn!(error = %e, "re-render failed; the last good output stays in place");
                    }
                }
            }
        }
    }

    if let Some(c) = child.as_mut() {
        let st = c.stop().await?;
        outcome.child_exit = st.and_then(|s| s.code());
    }
    if let Some(leases) = &agent.leases {
        let report = leases.shutdown().await;
        outcome.revoked = report.revoked;
        for _ in 0..report.revoked {
            status.inc(Counter::Revocation);
        }
        info!(
            revoked = report.revoked,
            failed = report.failed,
            token_revoked = report.token_revoked,
            "shut down"
        );
    }
    Ok(outcome)
}

struct State {
    decided: Decided,
    fetched: Fetched,
    rendered: Vec<Rendered>,
}

struct Agent {
    workload: keyward_core::Workload,
    pipeline: Pipeline,
    bindings: Vec<Binding>,
    source: VaultSource,
    leases: Option<Leases>,
    events: Option<tokio::sync::mpsc::UnboundedReceiver<LeaseEvent>>,
    out: OutputDir,
    env_file: Option<crate::config::EnvFileConfig>,
    status: Arc<Status>,
    state: Option<State>,
    written: BTreeSet<String>,
}

/// What one delivery did.
#[derive(Debug, Default)]
struct Delivered {
    changed: bool,
    files_written: usize,
    env: Vec<(String, String)>,
}

impl Agent {
    async fn build(
        cfg: &AgentConfig,
        opts: &RunOptions,
        auditor: Auditor,
        status: Arc<Status>,
        cancel: &CancellationToken,
    ) -> Result<Agent> {
        // The Vault login runs while the plugins load.
        let vault = Vault::new(cfg.vault.clone(), auditor.clone())
            .map_err(|e| Error::Vault(Box::new(e)))?;
        let mut login = {
            let (vault, cancel, status, once) =
                (vault.clone(), cancel.clone(), status.clone(), opts.once);
            AbortOnDrop(tokio::spawn(async move {
                login_with_retry(&vault, once, &cancel, &status).await
            }))
        };

        let runtime = Runtime::new(RuntimeConfig::default()).map_err(|e| Error::Plugin {
            name: "runtime".into(),
            source: Box::new(e),
        })?;
        let plugin_dir = plugin_dir(cfg);
        // Every component to load: the configured ones, plus the built-in
        // render-template when a binding uses it without configuring it.
        let builtin = PluginConfig {
            name: "render-template".into(),
            component: PathBuf::from("render-template.wasm"),
            digest: None,
            settings: serde_json::Value::Null,
        };
        let needs_builtin = cfg.bindings().iter().any(|b| {
            b.renderer == builtin.name
                && !cfg.plugins.renderers.iter().any(|r| r.name == b.renderer)
        });
        let mut wanted: Vec<&PluginConfig> = cfg
            .plugins
            .policies
            .iter()
            .chain(&cfg.plugins.renderers)
            .collect();
        if needs_builtin {
            wanted.push(&builtin);
        }
        // Loaded side by side: deserializing a precompiled component is
        // CPU work of a few milliseconds each.
        let loaded: Vec<Result<(keyward_runtime::Plugin, PathBuf)>> = {
            std::thread::scope(|scope| {
                let handles: Vec<_> = wanted
                    .iter()
                    .map(|p| {
                        let (runtime, plugin_dir) = (&runtime, &plugin_dir);
                        scope.spawn(move || {
                            let path =
                                resolve_component(&p.component, &opts.config_dir, plugin_dir);
                            let mut spec = PluginSpec::named(p.name.clone());
                            spec.digest = p.digest.clone();
                            runtime
                                .load_file(&path, &spec)
                                .map(|plugin| (plugin, path))
                                .map_err(|e| Error::Plugin {
                                    name: p.name.clone(),
                                    source: Box::new(e),
                                })
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().expect("a plugin load panicked"))
                    .collect()
            })
        };
        let mut loaded = wanted.iter().zip(loaded);
        let mut policies = Vec::new();
        // Every plugin with its file and warm-up, for pre-initialisation.
        let mut warmups: Vec<(keyward_runtime::Plugin, PathBuf, Warmup)> = Vec::new();
        for (p, plugin) in loaded.by_ref().take(cfg.plugins.policies.len()) {
            let (plugin, path) = plugin?;
            let settings = p.settings.to_string();
            warmups.push((
                plugin.clone(),
                path,
                Warmup {
                    settings: vec![settings.clone()],
                    plans: Vec::new(),
                },
            ));
            policies.push(PolicyStep {
                name: p.name.clone(),
                policy: plugin.policy().map_err(|e| Error::Plugin {
                    name: p.name.clone(),
                    source: Box::new(e),
                })?,
                settings,
            });
        }
        let mut renderers = std::collections::BTreeMap::new();
        // Renderer plugins by name, warmed up below from the bindings.
        let mut renderer_plugins = Vec::new();
        for (p, plugin) in loaded {
            let (plugin, path) = plugin?;
            renderer_plugins.push((p.name.clone(), plugin.clone(), path));
            let r = plugin.renderer().map_err(|e| Error::Plugin {
                name: p.name.clone(),
                source: Box::new(e),
            })?;
            renderers.insert(p.name.clone(), r);
        }
        let mut bindings = Vec::new();
        for b in cfg.bindings() {
            if !renderers.contains_key(&b.renderer) {
                return Err(Error::Config {
                    path: "secrets".into(),
                    detail: format!(
                        "secret {:?} names renderer {:?}, which is not configured under plugins.renderers",
                        b.name, b.renderer
                    ),
                });
            }
            if b.target.kind == keyward_core::DeliveryKind::Env
                && cfg.outputs.env_file.is_none()
                && opts.exec.is_none()
            {
                return Err(Error::Config {
                    path: "outputs".into(),
                    detail: format!(
                        "secret {:?} produces env vars: set `outputs.env-file` or run `keyward agent exec -- <command>`",
                        b.name
                    ),
                });
            }
            bindings.push(Binding {
                name: b.name,
                renderer_name: b.renderer.clone(),
                renderer: renderers[&b.renderer].clone(),
                template: b.template,
                settings: b.settings,
                target: b.target,
                secrets: b.secrets,
            });
        }
        // A renderer is warmed up with the settings and templates of every
        // binding that uses it, exactly as the pipeline passes them.
        for (name, plugin, path) in renderer_plugins {
            let mut warmup = Warmup::default();
            for b in bindings.iter().filter(|b| b.renderer_name == name) {
                if !warmup.settings.contains(&b.settings) {
                    warmup.settings.push(b.settings.clone());
                }
                let plan = (b.template.clone(), b.settings.clone());
                if !warmup.plans.contains(&plan) {
                    warmup.plans.push(plan);
                }
            }
            warmups.push((plugin, path, warmup));
        }
        let pipeline = Pipeline::new(policies, cfg.mount_table()).with_auditor(auditor.clone());
        pipeline.validate(&bindings).await?;

        match (&mut login.0).await {
            Ok(result) => result?,
            Err(e) => {
                return Err(Error::Config {
                    path: "vault.auth".into(),
                    detail: format!("the login did not complete: {e}"),
                });
            }
        }
        if !opts.once && cfg.plugins.preinitialize {
            preinitialize_in_background(warmups);
        }
        let (source, leases, events) = if opts.once {
            (VaultSource::new(vault), None, None)
        } else {
            let (leases, events) = Leases::start(vault.clone(), cancel.child_token());
            (
                VaultSource::new(vault).with_leases(leases.clone()),
                Some(leases),
                Some(events),
            )
        };
        let out = OutputDir::open(&cfg.outputs.directory)?;
        Ok(Agent {
            workload: cfg.workload.clone(),
            pipeline,
            bindings,
            source,
            leases,
            events,
            out,
            env_file: cfg.outputs.env_file.clone(),
            status,
            state: None,
            written: BTreeSet::new(),
        })
    }

    /// Write every binding's artifacts. Files that are unchanged are left
    /// alone; the env file collects every env binding.
    fn deliver(&mut self, rendered: &[Rendered]) -> Result<Delivered> {
        let mut d = Delivered::default();
        let mut env_artifacts: Vec<&Artifact> = Vec::new();
        let mut now_written = BTreeSet::new();
        let mut files: Vec<FileWrite<'_>> = Vec::new();
        // Everything is checked before anything is written.
        for r in rendered {
            for a in &r.artifacts {
                match a {
                    Artifact::File {
                        path,
                        mode,
                        contents,
                    } => {
                        files.push(FileWrite {
                            rel: path,
                            mode: *mode,
                            contents: contents.expose(),
                        });
                        now_written.insert(path.clone());
                    }
                    Artifact::Env { name, value } => {
                        env_artifacts.push(a);
                        d.env.push((name.clone(), value.expose().clone()));
                    }
                    Artifact::KubeSecret { name, .. } => {
                        return Err(Error::Config {
                            path: "secrets".into(),
                            detail: format!(
                                "binding {:?} produced the Kubernetes Secret {name:?}; the agent delivers files and env vars only",
                                r.binding
                            ),
                        });
                    }
                }
            }
        }
        let env_bytes = self
            .env_file
            .as_ref()
            .map(|f| (f, env_file(&env_artifacts, f.format)));
        if let Some((f, bytes)) = &env_bytes {
            files.push(FileWrite {
                rel: &f.path,
                mode: f.mode,
                contents: bytes,
            });
        }
        for written in self.out.write_all_atomic(&files)? {
            if written {
                d.changed = true;
                d.files_written += 1;
                self.status.inc(Counter::FileWritten);
            }
        }
        for r in rendered {
            let digests = r
                .artifacts
                .iter()
                .map(|a| self.pipeline.auditor().digest(a))
                .collect();
            self.pipeline.auditor().record(AuditEvent::Delivery {
                binding: r.binding.clone(),
                destination: match r.target.kind {
                    keyward_core::DeliveryKind::Env => match &self.env_file {
                        Some(f) => self.out.root().join(&f.path).display().to_string(),
                        None => "exec environment".into(),
                    },
                    _ => self.out.root().display().to_string(),
                },
                artifacts: digests,
            });
        }
        if self.env_file.is_some() {
            // Written above, with the files.
        } else if !d.env.is_empty() {
            // Exec mode: a change of env vars is a change.
            let before: Vec<(String, String)> = self
                .state
                .as_ref()
                .map(|s| {
                    s.rendered
                        .iter()
                        .flat_map(|r| r.artifacts.iter())
                        .filter_map(|a| match a {
                            Artifact::Env { name, value } => {
                                Some((name.clone(), value.expose().clone()))
                            }
                            _ => None,
                        })
                        .collect()
                })
                .unwrap_or_default();
            if before != d.env {
                d.changed = true;
            }
        }
        // Files a binding no longer produces are removed.
        for stale in self.written.difference(&now_written) {
            self.out.remove(stale)?;
            d.changed = true;
        }
        self.written = now_written;
        Ok(d)
    }

    async fn on_event(&mut self, event: LeaseEvent) -> Result<Option<Delivered>> {
        match event {
            LeaseEvent::Renewed { .. } | LeaseEvent::TokenRenewed { .. } => {
                self.status.inc(Counter::RenewalOk);
                Ok(None)
            }
            LeaseEvent::RenewalFailed { unreachable, .. }
            | LeaseEvent::TokenFailed { unreachable, .. } => {
                self.status.inc(Counter::RenewalFailed);
                if unreachable {
                    self.status.inc(Counter::VaultError);
                }
                Ok(None)
            }
            LeaseEvent::LoggedIn { .. } | LeaseEvent::Revoked { .. } => Ok(None),
            LeaseEvent::NeedsRefetch { key, reason } => {
                let Some(state) = self.state.as_mut() else {
                    return Ok(None);
                };
                let Some(d) = state.decided.secrets.get(&key).cloned() else {
                    return Ok(None);
                };
                self.status.inc(Counter::Refetch);
                info!(reason = reason.label(), path = %d.request.full_path(), "fetching again");
                let value = match self.pipeline.fetch_one(&d, &self.source).await {
                    Ok(v) => v,
                    Err(e) => {
                        self.status.inc(Counter::VaultError);
                        return Err(e.into());
                    }
                };
                let mut fetched = state.fetched.clone();
                fetched.values.insert(key.clone(), value);
                let mut rendered = state.rendered.clone();
                for (i, b) in self.bindings.iter().enumerate() {
                    let keys = &state.decided.binding_secrets[i];
                    if keys.contains(&key) {
                        rendered[i] = self
                            .pipeline
                            .render_one(&self.workload, b, keys, &state.decided, &fetched)
                            .await?;
                    }
                }
                let delivered = self.deliver(&rendered)?;
                let state = self
                    .state
                    .as_mut()
                    .unwrap_or_else(|| unreachable!("checked above"));
                state.fetched = fetched;
                state.rendered = rendered;
                self.status.inc(Counter::Render);
                self.status.mark_success();
                Ok(Some(delivered))
            }
        }
    }
}

async fn login_with_retry(
    vault: &Vault,
    once: bool,
    cancel: &CancellationToken,
    status: &Status,
) -> Result<()> {
    let mut delay = Duration::from_millis(500);
    loop {
        match vault.login().await {
            Ok(_) => return Ok(()),
            Err(e) if once => return Err(Error::Vault(Box::new(e))),
            Err(e) => {
                status.inc(Counter::VaultError);
                warn!(error = %e, retry_in = ?delay, "login failed");
                tokio::select! {
                    _ = cancel.cancelled() => return Err(Error::Vault(Box::new(e))),
                    _ = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(Duration::from_secs(30));
            }
        }
    }
}

/// Aborts a spawned task when dropped (an early return while the login
/// runs must not leave it retrying in the background).
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn make_auditor(path: Option<&Path>) -> Result<Auditor> {
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(|e| Error::Config {
        path: "audit".into(),
        detail: format!("no randomness for the audit key: {e}"),
    })?;
    let sink: Arc<dyn keyward_core::AuditSink> = match path {
        None => Arc::new(keyward_core::NullAudit),
        Some(p) if p == Path::new("-") => Arc::new(JsonLines::new(Box::new(std::io::stderr()))),
        Some(p) => Arc::new(JsonLines::file(p).map_err(|e| Error::Config {
            path: p.display().to_string(),
            detail: format!("cannot open the audit log: {e}"),
        })?),
    };
    Ok(Auditor::new(sink, key))
}

fn plugin_dir(cfg: &AgentConfig) -> PathBuf {
    cfg.plugins
        .dir
        .clone()
        .or_else(|| std::env::var_os("KEYWARD_PLUGIN_DIR").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("/usr/lib/keyward/plugins"))
}

/// Warm every plugin up with its configuration on a thread of its own,
/// one plugin after the other, so that the first render is not
/// delayed; each call started afterwards runs from the snapshot. A
/// failure leaves the plugin as it was, with a warning.
fn preinitialize_in_background(warmups: Vec<(keyward_runtime::Plugin, PathBuf, Warmup)>) {
    let spawned = std::thread::Builder::new()
        .name("keyward-preinit".into())
        .spawn(move || {
            for (plugin, path, warmup) in warmups {
                if warmup.is_empty() {
                    continue;
                }
                // componentize-py / componentize-js guests are snapshots
                // of an interpreter already: a second one costs 20-25 s of
                // compiling and a memory image of tens of MiB, for guests
                // that keep nothing parsed.
                if matches!(plugin.language(), Some("python" | "javascript")) {
                    tracing::debug!(
                        plugin = plugin.name(),
                        "interpreted guest: not pre-initialised"
                    );
                    continue;
                }
                let started = std::time::Instant::now();
                let result = std::fs::read(&path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))
                    .and_then(|bytes| {
                        plugin
                            .preinitialize(&bytes, &warmup)
                            .map_err(|e| e.to_string())
                    });
                match result {
                    Ok(()) => tracing::info!(
                        plugin = plugin.name(),
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "plugin pre-initialised with its configuration"
                    ),
                    Err(reason) => tracing::warn!(
                        plugin = plugin.name(),
                        %reason,
                        "plugin not pre-initialised; its calls parse their configuration"
                    ),
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start the pre-initialisation thread");
    }
}

/// A bare name (`render-template` or `render-template.wasm`) is looked up in
/// the plugin directory; a path is relative to the configuration file.
fn resolve_component(component: &Path, config_dir: &Path, plugin_dir: &Path) -> PathBuf {
    if component.is_absolute() {
        return component.to_path_buf();
    }
    if component.components().count() == 1 {
        let mut name = component.to_path_buf();
        if name.extension().is_none() {
            name.set_extension("wasm");
        }
        return plugin_dir.join(name);
    }
    config_dir.join(component)
}
