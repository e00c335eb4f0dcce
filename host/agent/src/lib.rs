//! Keyward's agent: the in-pod init container / sidecar and the VM agent.
//! It authenticates to Vault as the workload, runs the shared pipeline
//! (plan, decide, fetch, render, check), writes files atomically through a
//! `cap-std` handle on its output directory, keeps leases fresh, re-renders
//! on change and reacts (command, signal, exec restart), and serves
//! `/healthz`, `/readyz` and `/metrics`.
//!
//! Depends on `keyward-core`, `keyward-runtime` and `keyward-vault`; sets up
//! no logging (the binary does).

mod actions;
mod agent;
mod audit;
mod config;
mod deliver;
mod error;
mod health;

pub use actions::{ExecRestart, OnChange, SignalName, SignalTarget};
pub use agent::{Outcome, RunOptions, run};
pub use audit::JsonLines;
pub use config::{AgentConfig, BindingConfig, EnvFileConfig, Outputs, PluginConfig, Plugins};
pub use deliver::{EnvFormat, FileWrite, OutputDir, env_file, shell_quote};
pub use error::{Error, Result};
pub use health::Status;
pub use keyward_vault::CancellationToken;
