//! `cargo xtask bench languages`: the example plugins of every language side
//! by side, measured by the release `keyward plugin bench --json` over the
//! conformance cases -> target/bench/languages.json.
//!
//! Per component: size, first load (compile into an empty cache directory),
//! cached load (a second runtime on the same directory) and
//! instantiate+call latency (a fresh instance per call, as in production).
//! The sandbox cases (`*sandbox*`: deadline and memory limit) are left out:
//! they measure the limits, not the plugin.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::util::{cargo, exec, header, human_size, median, note, output, root, round2};

const LANGUAGES: &[&str] = &["rust", "python", "javascript", "c"];
const ROLES: &[&str] = &["policy", "renderer"];
/// Calls per case; enough for a stable p99 with Python and JavaScript
/// instances costing milliseconds each.
const ITERATIONS: u32 = 100;

/// One measured component.
struct Row {
    language: &'static str,
    role: &'static str,
    size_bytes: u64,
    first_load_ms: f64,
    cached_load_ms: f64,
    cached_load_hit: bool,
    p50_us: f64,
    p99_us: f64,
    cases: usize,
}

pub(crate) fn run() -> Result<()> {
    let root = root();
    let components: Vec<(&'static str, &'static str, PathBuf)> = LANGUAGES
        .iter()
        .flat_map(|lang| ROLES.iter().map(move |role| (*lang, *role)))
        .map(|(lang, role)| {
            let path = crate::plugins::out_dir().join(format!("example-{lang}-{role}.wasm"));
            (lang, role, path)
        })
        .collect();

    header(1, 3, "example components (target/plugins/example-*.wasm)");
    if components.iter().any(|(_, _, p)| !p.is_file()) {
        note("some example components are missing: building every plugin");
        crate::plugins::build_all()?;
    }
    for (_, _, path) in &components {
        if !path.is_file() {
            bail!(
                "{} is still missing after `cargo xtask plugins`",
                path.display()
            );
        }
    }

    header(2, 3, "cargo build --release -p keyward-cli");
    exec(cargo().args(["build", "--release", "-p", "keyward-cli"]))?;
    let keyward = root.join("target").join("release").join("keyward");

    header(
        3,
        3,
        "keyward plugin bench (conformance cases, sandbox cases excluded)",
    );
    let scratch = root.join("target").join("bench").join("languages-cases");
    let mut case_dirs = Vec::new();
    for role in ROLES {
        case_dirs.push((
            *role,
            bench_cases(
                &root.join("tests/conformance").join(role),
                &scratch.join(role),
            )?,
        ));
    }
    let mut rows = Vec::new();
    for (language, role, path) in &components {
        let (_, (cases_dir, _)) = case_dirs
            .iter()
            .find(|(r, _)| r == role)
            .expect("a case directory per role");
        note(&format!("{language} {role}"));
        let mut cmd = std::process::Command::new(&keyward);
        cmd.arg("plugin")
            .arg("bench")
            .arg(path)
            .arg("--cases")
            .arg(cases_dir)
            .arg("--iterations")
            .arg(ITERATIONS.to_string())
            .arg("--json");
        let report: Value = serde_json::from_str(&output(&mut cmd)?)
            .context("`keyward plugin bench --json` printed no JSON")?;
        rows.push(row(language, role, path, &report)?);
    }
    let _ = std::fs::remove_dir_all(&scratch);

    let doc = json!({
        "iterations_per_case": ITERATIONS,
        "p50_us": "median over the cases of each case's p50 (instantiate + call)",
        "p99_us": "worst case's p99 (instantiate + call)",
        "components": rows.iter().map(|r| json!({
            "language": r.language,
            "role": r.role,
            "size_bytes": r.size_bytes,
            "first_load_ms": round2(r.first_load_ms),
            "cached_load_ms": round2(r.cached_load_ms),
            "cached_load_hit": r.cached_load_hit,
            "p50_us": round2(r.p50_us),
            "p99_us": round2(r.p99_us),
            "cases": r.cases,
        })).collect::<Vec<_>>(),
    });
    let out_dir = root.join("target").join("bench");
    std::fs::create_dir_all(&out_dir)?;
    let out = out_dir.join("languages.json");
    std::fs::write(&out, serde_json::to_string_pretty(&doc)? + "\n")
        .with_context(|| format!("cannot write {}", out.display()))?;

    println!(
        "{:<11} {:<9} {:>10} {:>14} {:>15} {:>10} {:>10}",
        "language", "role", "size", "first load ms", "cached load ms", "p50 µs", "p99 µs"
    );
    for r in &rows {
        println!(
            "{:<11} {:<9} {:>10} {:>14.1} {:>15.2} {:>10.1} {:>10.1}{}",
            r.language,
            r.role,
            human_size(r.size_bytes),
            r.first_load_ms,
            r.cached_load_ms,
            r.p50_us,
            r.p99_us,
            if r.cached_load_hit {
                ""
            } else {
                "  (cache miss!)"
            }
        );
    }
    println!(
        "wrote {}",
        out.strip_prefix(&root).unwrap_or(&out).display()
    );
    Ok(())
}

/// Copy the role's conformance cases minus the sandbox-limit ones into
/// `scratch`; returns the directory and how many cases it holds.
fn bench_cases(from: &Path, scratch: &Path) -> Result<(PathBuf, usize)> {
    let _ = std::fs::remove_dir_all(scratch);
    std::fs::create_dir_all(scratch)
        .with_context(|| format!("cannot create {}", scratch.display()))?;
    let mut n = 0;
    for entry in
        std::fs::read_dir(from).with_context(|| format!("cannot read {}", from.display()))?
    {
        let path = entry?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if path.extension().is_some_and(|e| e == "yaml") && !name.contains("sandbox") {
            std::fs::copy(&path, scratch.join(&*name))
                .with_context(|| format!("cannot copy {}", path.display()))?;
            n += 1;
        }
    }
    if n == 0 {
        bail!("no conformance cases in {}", from.display());
    }
    Ok((scratch.to_path_buf(), n))
}

fn row(language: &'static str, role: &'static str, path: &Path, report: &Value) -> Result<Row> {
    let num = |v: &Value, key: &str| {
        v[key]
            .as_f64()
            .with_context(|| format!("bench report of {}: no `{key}`", path.display()))
    };
    let cases = report["cases"]
        .as_array()
        .with_context(|| format!("bench report of {}: no `cases`", path.display()))?;
    let failed: Vec<String> = cases
        .iter()
        .filter_map(|c| {
            c["failure"]
                .as_str()
                .map(|f| format!("{}: {f}", c["name"].as_str().unwrap_or("?")))
        })
        .collect();
    if !failed.is_empty() {
        bail!(
            "{} fails conformance cases while benched: {}",
            path.display(),
            failed.join("; ")
        );
    }
    let mut p50s = cases
        .iter()
        .map(|c| num(c, "p50_us"))
        .collect::<Result<Vec<_>>>()?;
    p50s.sort_by(f64::total_cmp);
    let p99 = cases
        .iter()
        .map(|c| num(c, "p99_us"))
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .fold(0.0, f64::max);
    Ok(Row {
        language,
        role,
        size_bytes: std::fs::metadata(path)
            .with_context(|| format!("cannot stat {}", path.display()))?
            .len(),
        first_load_ms: num(report, "first_load_ms")?,
        cached_load_ms: num(report, "cached_load_ms")?,
        cached_load_hit: report["cached_load_hit"].as_bool().unwrap_or(false),
        p50_us: median(&p50s),
        p99_us: p99,
        cases: cases.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_sorted() {
        assert_eq!(median(&[]), 0.0);
        assert_eq!(median(&[1.0, 2.0, 9.0]), 2.0);
        assert_eq!(median(&[1.0, 2.0, 4.0, 9.0]), 3.0);
    }

    #[test]
    fn row_from_a_bench_report() {
        let report = json!({
            "first_load_ms": 120.5,
            "cached_load_ms": 3.25,
            "cached_load_hit": true,
            "cases": [
                { "name": "a", "p50_us": 10.0, "p99_us": 20.0 },
                { "name": "b", "p50_us": 30.0, "p99_us": 90.0 },
                { "name": "c", "p50_us": 20.0, "p99_us": 40.0 },
            ],
        });
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
        let r = row("rust", "policy", &path, &report).unwrap();
        assert_eq!((r.p50_us, r.p99_us, r.cases), (20.0, 90.0, 3));
        assert!(r.cached_load_hit);
        let failing = json!({
            "first_load_ms": 1.0, "cached_load_ms": 1.0, "cached_load_hit": true,
            "cases": [{ "name": "a", "p50_us": 1.0, "p99_us": 1.0, "failure": "boom" }],
        });
        assert!(row("rust", "policy", &path, &failing).is_err());
    }
}
