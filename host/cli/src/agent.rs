//! `keyward agent`: the in-pod / on-VM agent.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};

/// `keyward agent [--once] --config <file>` and
/// `keyward agent exec --config <file> -- <command>...`.
#[derive(Debug, Args)]
pub struct AgentArgs {
    /// Agent configuration (YAML).
    #[arg(long, short, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Render once and exit (init containers, Jobs).
    #[arg(long)]
    pub once: bool,
    /// Exec mode.
    #[command(subcommand)]
    pub mode: Option<AgentMode>,
}

/// Agent modes.
#[derive(Debug, Subcommand)]
pub enum AgentMode {
    /// Start a command with the rendered env vars; restart or signal it when
    /// they change; exit with its exit code.
    Exec {
        /// The command and its arguments, after `--`.
        #[arg(last = true, required = true, value_name = "COMMAND")]
        command: Vec<String>,
    },
}

/// Run the agent until SIGTERM/SIGINT (or once).
pub(crate) fn run(args: &AgentArgs) -> Result<ExitCode> {
    let path = args
        .config
        .clone()
        .context("`--config <file>` is required")?;
    let cfg = keyward_agent::AgentConfig::load(&path)?;
    let exec = args
        .mode
        .as_ref()
        .map(|AgentMode::Exec { command }| command.clone());
    if exec.is_some() && args.once {
        anyhow::bail!("`--once` and `exec` cannot be combined");
    }
    let opts = keyward_agent::RunOptions {
        once: args.once,
        exec,
        config_dir: path
            .parent()
            .map(|p| p.to_path_buf())
            .unwrap_or_else(|| PathBuf::from(".")),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async move {
        let cancel = keyward_agent::CancellationToken::new();
        let on_signal = cancel.clone();
        tokio::spawn(async move {
            use tokio::signal::unix::{SignalKind, signal};
            let (Ok(mut term), Ok(mut int)) = (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) else {
                return;
            };
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            tracing::info!("signal received; shutting down");
            on_signal.cancel();
        });
        let outcome = keyward_agent::run(cfg, opts, cancel).await?;
        Ok(match outcome.child_exit {
            Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
            None => ExitCode::SUCCESS,
        })
    })
}
