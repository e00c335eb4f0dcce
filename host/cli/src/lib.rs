//! The `keyward` command line: plugin authoring tools (`plugin inspect`,
//! `plugin test`, `plugin bench`, `plugin new`) and offline rendering (`render`).
//!
//! Every subcommand is a thin call into the library crates: plugins run in
//! `keyward-runtime`'s production sandbox and bindings go through
//! `keyward-core`'s pipeline. This crate must not set up logging (only
//! `main.rs` does) and must never print secret values from a real secret
//! source; the values it prints come from fixture files the user gave it.

mod agent;
mod bench;
mod cases;
mod diff;
mod inspect;
mod new;
mod plugin;
mod policy;
mod render;
mod show;
mod test;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub use agent::{AgentArgs, AgentMode};
pub use policy::EXIT_DENIED;
pub use render::TargetKind;

/// Keyward: deliver Vault/OpenBao secrets through sandboxed WebAssembly
/// policy and renderer plugins.
#[derive(Debug, Parser)]
#[command(name = "keyward", version, propagate_version = true)]
pub struct Cli {
    /// Directory for precompiled plugins (default: $KEYWARD_CACHE_DIR, else
    /// ~/.cache/keyward/components).
    #[arg(long, global = true, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Tools for plugin authors.
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// Dry runs of policy plugins.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Render a template offline, through the full pipeline, with fixture
    /// secrets, and print the result.
    Render(RenderArgs),
    /// Run the agent: render secrets from Vault into files and env vars and
    /// keep them fresh (`--once` for init containers and Jobs; `exec -- cmd`
    /// to supervise a command).
    Agent(agent::AgentArgs),
}

/// `keyward plugin ...`
#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Show a component's world, package, imports, exports, digest and size.
    Inspect(InspectArgs),
    /// Run a directory of case files (docs/cases.md) against a plugin in the
    /// production sandbox.
    Test(TestArgs),
    /// Measure per-call latency and memory of a plugin over its case files.
    Bench(BenchArgs),
    /// Create a plugin from a starter template that builds with its
    /// `build.sh` and passes its starter cases.
    New(NewArgs),
}

/// `keyward policy ...`
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Print a policy plugin's decision for each secret of a request file.
    /// Exits 0 when every secret is allowed and 3 when any is not.
    Check(PolicyCheckArgs),
}

/// Arguments of `keyward policy check`.
#[derive(Debug, Args)]
pub struct PolicyCheckArgs {
    /// The policy component (.wasm).
    pub component: PathBuf,
    /// YAML request: `workload` (as in case files) and `secrets`, a list of
    /// `{ reference, parameters?, delivery? }` (delivery defaults to [file]).
    #[arg(long, value_name = "FILE")]
    pub request: PathBuf,
    /// The policy's settings, a JSON or YAML file (default: `{}`).
    #[arg(long, value_name = "FILE")]
    pub settings: Option<PathBuf>,
    /// A mount and its engine, e.g. `secret=kv2`; as for `keyward render`.
    #[arg(long = "mount", value_name = "MOUNT=ENGINE")]
    pub mounts: Vec<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `keyward plugin inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The component (.wasm).
    pub component: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `keyward plugin test`.
#[derive(Debug, Args)]
pub struct TestArgs {
    /// The component (.wasm).
    pub component: PathBuf,
    /// Directory of `*.yaml` case files.
    #[arg(long, value_name = "DIR")]
    pub cases: PathBuf,
    /// Only run cases whose name contains this string.
    #[arg(long, value_name = "SUBSTR")]
    pub filter: Option<String>,
    /// Print a JSON report instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `keyward plugin bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The component (.wasm).
    pub component: PathBuf,
    /// Directory of `*.yaml` case files.
    #[arg(long, value_name = "DIR")]
    pub cases: PathBuf,
    /// Calls per case.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..))]
    pub iterations: u32,
    /// Only run cases whose name contains this string.
    #[arg(long, value_name = "SUBSTR")]
    pub filter: Option<String>,
    /// Time each case with the plugin pre-initialised with that case's
    /// settings (and template), as a running agent runs it. A case whose
    /// warm-up is refused (invalid settings, for one) is timed without.
    #[arg(long)]
    pub preinit: bool,
    /// Print a JSON report instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `keyward plugin new`.
#[derive(Debug, Args)]
pub struct NewArgs {
    /// The plugin's name, `[a-z][a-z0-9-]*`.
    pub name: String,
    /// The language to write it in.
    #[arg(long, value_enum)]
    pub lang: PluginLang,
    /// The world it implements.
    #[arg(long, value_enum)]
    pub world: PluginWorld,
    /// The directory to create; it must not exist (default: ./<name>).
    #[arg(long, value_name = "PATH")]
    pub dir: Option<PathBuf>,
}

/// Languages `keyward plugin new` has templates for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PluginLang {
    /// Rust (cargo, wasm32-wasip2).
    Rust,
    /// Python (componentize-py).
    Python,
    /// JavaScript (componentize-js).
    Javascript,
    /// C (clang, wasi-libc, wit-bindgen c).
    C,
}

impl PluginLang {
    fn as_str(self) -> &'static str {
        match self {
            Self::Rust => "rust",
            Self::Python => "python",
            Self::Javascript => "javascript",
            Self::C => "c",
        }
    }
}

/// Plugin worlds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PluginWorld {
    /// Decides which secrets a workload may read.
    Policy,
    /// Formats granted secrets into files, env vars or Kubernetes Secrets.
    Renderer,
}

impl PluginWorld {
    fn as_str(self) -> &'static str {
        match self {
            Self::Policy => "policy",
            Self::Renderer => "renderer",
        }
    }
}

/// Arguments of `keyward render`.
#[derive(Debug, Args)]
pub struct RenderArgs {
    /// Template file (Go text/template, consul-template dialect). Without
    /// it the renderer's default format renders every secret of --secrets.
    #[arg(long, value_name = "FILE")]
    pub template: Option<PathBuf>,
    /// JSON object: secret path as the template names it -> the Vault
    /// response body (`bao read -format=json <path>`).
    #[arg(long, value_name = "FILE")]
    pub secrets: PathBuf,
    /// Renderer component; default: render-template.wasm from
    /// $KEYWARD_PLUGIN_DIR or the workspace's target/plugins.
    #[arg(long, value_name = "COMPONENT")]
    pub plugin: Option<PathBuf>,
    /// Renderer settings, a JSON document.
    #[arg(long, value_name = "JSON", default_value = "{}")]
    pub settings: String,
    /// Delivery kind of the output.
    #[arg(long, value_enum, default_value_t = TargetKind::File)]
    pub target: TargetKind,
    /// File path, environment variable prefix or Kubernetes Secret name
    /// (default: the template's file name without .tmpl/.ctmpl/.tpl for
    /// files, no prefix for env, `rendered` for Secrets).
    #[arg(long)]
    pub name: Option<String>,
    /// File mode, octal.
    #[arg(long, default_value = "600", value_parser = parse_mode)]
    pub mode: u32,
    /// A mount and its engine, e.g. `secret=kv2` (kv1, kv2, database, pki,
    /// transit, generic). Repeatable. Without it, a reference whose second
    /// segment is `data` is taken as KV v2 and anything else as generic.
    #[arg(long = "mount", value_name = "MOUNT=ENGINE")]
    pub mounts: Vec<String>,
}

fn parse_mode(s: &str) -> Result<u32, String> {
    let digits = s.trim_start_matches("0o");
    u32::from_str_radix(digits, 8)
        .ok()
        .filter(|m| *m <= 0o777)
        .ok_or_else(|| format!("{s:?} is not an octal file mode such as 640"))
}

/// Run a parsed command line. `Ok` carries the exit code of a command that
/// ran to its end (e.g. failing cases); `Err` is a failure to print as
/// `error: ...` with exit code 1.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let cache_dir = cli.cache_dir;
    match cli.command {
        Command::Plugin(PluginCommand::Inspect(args)) => inspect::run(&args),
        Command::Plugin(PluginCommand::Test(args)) => test::run(&args, cache_dir),
        Command::Plugin(PluginCommand::Bench(args)) => bench::run(&args),
        Command::Plugin(PluginCommand::New(args)) => new::run(&args),
        Command::Policy(PolicyCommand::Check(args)) => policy::run(&args, cache_dir),
        Command::Render(args) => render::run(&args, cache_dir),
        Command::Agent(args) => agent::run(&args),
    }
}

/// Format an error chain on one line: `a: b: c`, newlines flattened. A
/// cause whose text its parent's message already ends with (errors that
/// print their source themselves) is not repeated.
pub fn error_line(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if line.ends_with(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line.split('\n')
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A tokio runtime for the async plugin traits.
fn tokio() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("cannot start the async runtime: {e}"))
}

#[cfg(test)]
mod tests {
    #[derive(Debug, thiserror::Error)]
    #[error("plugin failed: {source}")]
    struct Outer {
        #[source]
        source: std::io::Error,
    }

    #[test]
    fn error_line_joins_the_chain_once() {
        let inner = std::io::Error::other("bad\ninput");
        let err = anyhow::Error::new(Outer { source: inner }).context("cannot render x");
        assert_eq!(
            super::error_line(&err),
            "cannot render x: plugin failed: bad input"
        );
        let err = anyhow::anyhow!("root").context("middle").context("top");
        assert_eq!(super::error_line(&err), "top: middle: root");
    }
}
