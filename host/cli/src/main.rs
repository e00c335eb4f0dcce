//! The `keyward` binary: logging setup, argument parsing, exit codes.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("KEYWARD_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    // Usage errors exit with code 2 (clap).
    let cli = keyward_cli::Cli::parse();
    match keyward_cli::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {}", keyward_cli::error_line(&err));
            ExitCode::FAILURE
        }
    }
}
