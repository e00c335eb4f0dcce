//! `keyward plugin inspect`: what a component is, without running it.

use std::process::ExitCode;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::InspectArgs;

#[derive(Debug, Serialize)]
struct Report {
    component: String,
    /// `policy`, `renderer`, or `null` when no Keyward world is exported.
    world: Option<&'static str>,
    /// `keyward:plugin@0.1.0`.
    package: Option<String>,
    language: Option<String>,
    digest: String,
    size: usize,
    imports: Vec<String>,
    exports: Vec<String>,
    /// Imports the runtime refuses to link, with the reason.
    refused_imports: Vec<Refused>,
}

#[derive(Debug, Serialize)]
struct Refused {
    import: String,
    reason: &'static str,
}

pub(crate) fn run(args: &InspectArgs) -> Result<ExitCode> {
    let path = &args.component;
    let bytes =
        std::fs::read(path).with_context(|| format!("cannot read component {}", path.display()))?;
    let info = keyward_runtime::inspect(&bytes)
        .with_context(|| format!("cannot inspect {}", path.display()))?;
    let package = match (&info.package, &info.version) {
        (Some(p), Some(v)) => Some(format!("{p}@{v}")),
        (Some(p), None) => Some(p.clone()),
        _ => None,
    };
    let report = Report {
        component: path.display().to_string(),
        world: info.world.map(|w| w.as_str()),
        package,
        language: info.language.clone(),
        digest: info.digest.clone(),
        size: info.size,
        imports: info.imports.clone(),
        exports: info.exports.clone(),
        refused_imports: info
            .refused_imports
            .iter()
            .map(|(import, reason)| Refused {
                import: import.clone(),
                reason,
            })
            .collect(),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", text(&report));
    }
    Ok(ExitCode::SUCCESS)
}

fn text(r: &Report) -> String {
    let mut s = String::new();
    let mut row = |k: &str, v: &str| s.push_str(&format!("{k:<10} {v}\n"));
    row("component", &r.component);
    row(
        "world",
        r.world
            .unwrap_or("none (exports no keyward:plugin world; not loadable)"),
    );
    row("package", r.package.as_deref().unwrap_or("-"));
    row("language", r.language.as_deref().unwrap_or("unknown"));
    row("digest", &r.digest);
    row(
        "size",
        &format!("{} ({} bytes)", human_size(r.size as u64), r.size),
    );
    s.push_str(&format!("imports    ({})\n", r.imports.len()));
    for i in &r.imports {
        match r.refused_imports.iter().find(|x| &x.import == i) {
            Some(x) => s.push_str(&format!("  {i}  REFUSED: {}\n", x.reason)),
            None => s.push_str(&format!("  {i}\n")),
        }
    }
    s.push_str(&format!("exports    ({})\n", r.exports.len()));
    for e in &r.exports {
        s.push_str(&format!("  {e}\n"));
    }
    s
}

/// `1.4 MiB`, `812 KiB`, `96 B`.
pub(crate) fn human_size(bytes: u64) -> String {
    const KIB: f64 = 1024.0;
    let b = bytes as f64;
    if b >= KIB * KIB {
        format!("{:.1} MiB", b / KIB / KIB)
    } else if b >= KIB {
        format!("{:.0} KiB", b / KIB)
    } else {
        format!("{bytes} B")
    }
}
