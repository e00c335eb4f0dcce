//! `cargo xtask test`: everything CI checks, in order, stopping at the first
//! failing step, with one closing `N passed, N failed` line summing cargo's
//! tests and the plugin case suites.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, bail};

use crate::plugins;
use crate::tools;
use crate::util::{Totals, cargo, error_line, exec, header, root, run_lines};

const STEPS: usize = 6;

pub(crate) fn run() -> ExitCode {
    let mut totals = Totals::default();
    let result = steps(&mut totals);
    if let Err(err) = &result {
        let _ = std::io::stdout().flush();
        eprintln!("\nerror: {}", error_line(err));
    }
    println!("\n{} passed, {} failed", totals.passed, totals.failed);
    match result {
        Ok(()) if totals.failed == 0 => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    }
}

fn steps(totals: &mut Totals) -> Result<()> {
    header(1, STEPS, "install test tools");
    tools::ensure_wasm_target()?;
    tools::ensure_wasm_tools()?;
    keyward_testkit::ensure_kube_apiserver()?;

    header(2, STEPS, "cargo fmt --all --check");
    exec(cargo().args(["fmt", "--all", "--check"]))?;

    header(
        3,
        STEPS,
        "cargo clippy --workspace --all-targets -- -D warnings; each Rust guest for its wasm32 target",
    );
    exec(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    // The guests' wasm32-only code (the WIT glue with its `unsafe`, the
    // allocator and panic handler of a `no_std` guest) is invisible to the
    // native run above. One run per guest, as they are built.
    let guests = plugins::rust_guests(&root())?;
    plugins::ensure_guest_targets(&guests)?;
    for g in &guests {
        exec(cargo().args([
            "clippy", "--target", &g.target, "-p", &g.package, "--", "-D", "warnings",
        ]))?;
    }

    header(4, STEPS, "cargo xtask plugins");
    plugins::build_all()?;

    header(5, STEPS, "cargo test --workspace");
    let mut cargo_totals = Totals::default();
    let status = run_lines(
        cargo().args(["test", "--workspace", "--no-fail-fast"]),
        |line| {
            cargo_totals.add_cargo_line(line);
        },
    )?;
    totals.add(cargo_totals);
    if !status.success() {
        bail!("cargo test failed ({status})");
    }
    if cargo_totals.passed == 0 {
        bail!("cargo test ran no test");
    }

    header(6, STEPS, "plugin case suites (keyward plugin test)");
    let suites = case_suites()?;
    let mut failed_suites = Vec::new();
    for (name, component, cases) in &suites {
        let mut suite: Option<Totals> = None;
        let status = run_lines(
            cargo()
                .args([
                    "run",
                    "--quiet",
                    "-p",
                    "keyward-cli",
                    "--",
                    "plugin",
                    "test",
                ])
                .arg(component)
                .arg("--cases")
                .arg(cases),
            |line| {
                if let Some(t) = Totals::parse_plain(line) {
                    suite = Some(t);
                }
            },
        )?;
        if let Some(t) = suite {
            totals.add(t);
        }
        if !status.success() || suite.is_none() {
            failed_suites.push(name.clone());
        }
    }
    if !failed_suites.is_empty() {
        bail!("case suites failed: {}", failed_suites.join(", "));
    }
    Ok(())
}

/// `(plugin name, component, cases dir)` for every first-party plugin. A
/// plugin without a `cases/` directory is an error: every plugin is tested.
fn case_suites() -> Result<Vec<(String, PathBuf, PathBuf)>> {
    let root = root();
    let mut suites = Vec::new();
    for manifest in plugins::crate_manifests(&root.join("plugins"))? {
        let dir = manifest.parent().expect("a manifest has a parent");
        let name = plugins::manifest_package(&manifest)?;
        let cases = dir.join("cases");
        if !cases.is_dir() {
            bail!(
                "plugin {} has no cases/ directory; every plugin needs case files (docs/cases.md)",
                dir.display()
            );
        }
        let component = plugins::out_dir().join(format!("{name}.wasm"));
        suites.push((name, component, cases));
    }
    // The conformance suite: the same language-neutral cases for every
    // example plugin of a role, in every language.
    for role in plugins::EXAMPLE_ROLES {
        let cases = root.join("tests").join("conformance").join(role);
        if !cases.is_dir() {
            bail!("conformance cases {} are missing", cases.display());
        }
        for lang in plugins::EXAMPLE_LANGUAGES {
            let name = format!("example-{lang}-{role}");
            let component = plugins::out_dir().join(format!("{name}.wasm"));
            suites.push((name, component, cases.clone()));
        }
    }
    Ok(suites)
}
