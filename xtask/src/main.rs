//! `cargo xtask <command>`: the project's build, test, bench and demo
//! orchestration. Every step shells out to the ordinary tools (cargo,
//! rustup, pip) and says what it runs.

mod bench;
mod bench_agent;
mod bench_languages;
mod demo;
mod plugins;
mod test;
mod tools;
mod util;
mod vault_demo;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "cargo xtask",
    about = "Keyward build, test, bench and demo tasks"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Build every plugin and guest component into target/plugins/<name>.wasm.
    Plugins,
    /// Install test tools, then fmt, clippy, plugins, cargo test and every
    /// plugin's case suite; ends with `N passed, N failed`.
    Test,
    /// Run a benchmark suite and check it against its targets.
    Bench {
        #[command(subcommand)]
        suite: BenchSuite,
    },
    /// Keyward's main job end to end on a local OpenBao dev server it
    /// installs and starts: the agent renders KV, PKI and env files.
    Demo,
    /// The offline tour: `keyward render` and `keyward policy check` on
    /// fixture secrets, no Vault needed.
    DemoOffline,
}

#[derive(Debug, Subcommand)]
enum BenchSuite {
    /// Keyward's agent and `bao agent` side by side: first render, RSS,
    /// CPU over a renewal window -> target/bench/agent.json.
    Agent(bench_agent::Options),
    /// keyward-runtime's criterion benches -> target/bench/runtime.json.
    Runtime,
    /// The example plugin of every language and role: size, first and
    /// cached load, instantiate+call p50/p99 -> target/bench/languages.json.
    Languages,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Plugins => plugins::run(),
        Command::Test => return test::run(),
        Command::Bench {
            suite: BenchSuite::Runtime,
        } => bench::runtime(),
        Command::Bench {
            suite: BenchSuite::Languages,
        } => bench_languages::run(),
        Command::Bench {
            suite: BenchSuite::Agent(opts),
        } => bench_agent::run(opts),
        Command::Demo => vault_demo::run(),
        Command::DemoOffline => demo::run(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", util::error_line(&err));
            ExitCode::FAILURE
        }
    }
}
