//! `cargo xtask bench runtime`: run keyward-runtime's criterion benches and
//! compare their medians with the targets.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde_json::json;

use crate::util::{cargo, exec, header, root, round2};

/// One figure: the criterion bench it comes from, how to report it and the
/// target it must meet.
struct Figure {
    key: &'static str,
    bench: &'static str,
    /// Nanoseconds per reported unit.
    unit_ns: f64,
    unit: &'static str,
    /// `None`: reported, not judged.
    target: Option<f64>,
}

const FIGURES: &[Figure] = &[
    Figure {
        key: "decide_p50_us",
        bench: "decide_policy_rules",
        unit_ns: 1e3,
        unit: "µs",
        target: Some(20.0),
    },
    Figure {
        key: "decide_cold_p50_us",
        bench: "decide_policy_rules_cold",
        unit_ns: 1e3,
        unit: "µs",
        target: None,
    },
    Figure {
        key: "decide_empty_p50_us",
        bench: "decide_empty",
        unit_ns: 1e3,
        unit: "µs",
        target: None,
    },
    Figure {
        key: "decide_async_p50_us",
        bench: "decide_policy_rules_async",
        unit_ns: 1e3,
        unit: "µs",
        target: None,
    },
    Figure {
        key: "render_1k_p50_us",
        bench: "render_1k_template",
        unit_ns: 1e3,
        unit: "µs",
        target: Some(50.0),
    },
    Figure {
        key: "render_1k_cold_p50_us",
        bench: "render_1k_template_cold",
        unit_ns: 1e3,
        unit: "µs",
        target: None,
    },
    Figure {
        key: "render_1k_async_p50_us",
        bench: "render_1k_template_async",
        unit_ns: 1e3,
        unit: "µs",
        target: None,
    },
    Figure {
        key: "cached_load_ms",
        bench: "cached_load",
        unit_ns: 1e6,
        unit: "ms",
        target: Some(20.0),
    },
];

pub(crate) fn runtime() -> Result<()> {
    header(1, 2, "cargo bench -p keyward-runtime --bench runtime");
    // The benches load target/plugins/*.wasm.
    crate::plugins::build_all()?;
    exec(cargo().args(["bench", "-p", "keyward-runtime", "--bench", "runtime"]))?;

    header(2, 2, "target/bench/runtime.json");
    let criterion = root().join("target").join("criterion");
    let mut doc = serde_json::Map::new();
    let mut targets = serde_json::Map::new();
    let mut pass = serde_json::Map::new();
    let mut rows = Vec::new();
    for f in FIGURES {
        let median_ns = median_ns(&criterion, f.bench)?;
        let value = median_ns / f.unit_ns;
        doc.insert(f.key.into(), json!(round2(value)));
        let ok = f.target.map(|target| value <= target);
        if let (Some(target), Some(ok)) = (f.target, ok) {
            targets.insert(f.key.into(), json!(target));
            pass.insert(f.key.into(), json!(ok));
        }
        rows.push((f, value, ok));
    }
    let all_pass = rows.iter().all(|(_, _, ok)| ok.unwrap_or(true));
    doc.insert("targets".into(), targets.into());
    doc.insert("pass".into(), pass.into());
    doc.insert("all_pass".into(), json!(all_pass));
    let out_dir = root().join("target").join("bench");
    std::fs::create_dir_all(&out_dir)?;
    let out = out_dir.join("runtime.json");
    std::fs::write(&out, serde_json::to_string_pretty(&doc)? + "\n")
        .with_context(|| format!("cannot write {}", out.display()))?;

    println!("{:<24} {:>10} {:>10}  result", "figure", "median", "target");
    for (f, value, ok) in &rows {
        let target = f
            .target
            .map_or_else(|| "-".to_string(), |t| format!("{t} {}", f.unit));
        let result = match ok {
            Some(true) => "pass",
            Some(false) => "FAIL",
            None => "(reported)",
        };
        println!(
            "{:<24} {:>7.2} {:<2} {:>10}  {result}",
            f.key, value, f.unit, target
        );
    }
    println!(
        "wrote {}",
        out.strip_prefix(root()).unwrap_or(&out).display()
    );
    if !all_pass {
        bail!(
            "some runtime figures miss their targets (see {})",
            out.display()
        );
    }
    Ok(())
}

/// The median point estimate (ns) criterion wrote for a bench:
/// `target/criterion/<name>/new/estimates.json`, or the same file in a
/// nested group directory named `<name>`.
fn median_ns(criterion: &Path, bench: &str) -> Result<f64> {
    let file = find_estimates(criterion, bench).with_context(|| {
        format!(
            "criterion wrote no estimates for bench `{bench}` under {} (is it defined in host/runtime/benches/runtime.rs?)",
            criterion.display()
        )
    })?;
    let doc: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(&file)
            .with_context(|| format!("cannot read {}", file.display()))?,
    )
    .with_context(|| format!("{} is not JSON", file.display()))?;
    doc["median"]["point_estimate"]
        .as_f64()
        .with_context(|| format!("{}: no median.point_estimate", file.display()))
}

fn find_estimates(criterion: &Path, bench: &str) -> Option<PathBuf> {
    let direct = criterion.join(bench).join("new").join("estimates.json");
    if direct.is_file() {
        return Some(direct);
    }
    // Benches inside a group: target/criterion/<group>/<bench>/new/...
    for entry in std::fs::read_dir(criterion).ok()?.flatten() {
        let nested = entry.path().join(bench).join("new").join("estimates.json");
        if nested.is_file() {
            return Some(nested);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_criterion_estimates() {
        let dir = std::env::temp_dir().join(format!("xtask-bench-{}", std::process::id()));
        let new = dir.join("group").join("cached_load").join("new");
        std::fs::create_dir_all(&new).unwrap();
        std::fs::write(
            new.join("estimates.json"),
            r#"{"mean":{"point_estimate":2.0},"median":{"point_estimate":1500000.0}}"#,
        )
        .unwrap();
        assert_eq!(median_ns(&dir, "cached_load").unwrap(), 1_500_000.0);
        assert!(median_ns(&dir, "decide_policy_rules").is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
