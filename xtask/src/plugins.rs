//! `cargo xtask plugins`: build every plugin into `target/plugins/<name>.wasm`.
//!
//! Builders are pluggable: each knows one kind of guest and how to build it.
//! Today there is the Rust one (`plugins/*` and `tests/guests/*`); example
//! plugins in other languages (`examples/plugins/<lang>/...`) get their own
//! [`Builder`] in [`builders`] when their build scripts land.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::tools;
use crate::util::{cargo, exec, human_size, note, root};

/// A built component.
#[derive(Debug, Clone)]
pub(crate) struct Built {
    /// The plugin's name (`policy-rules`).
    pub(crate) name: String,
    /// `target/plugins/<name>.wasm`.
    pub(crate) path: PathBuf,
}

/// Builds one kind of guest into `out_dir`.
pub(crate) trait Builder {
    /// What this builder builds, for progress lines.
    fn describe(&self) -> &'static str;
    /// Build everything this builder knows about into `out_dir`.
    fn build(&self, root: &Path, out_dir: &Path) -> Result<Vec<Built>>;
}

/// Every builder, in the order they run.
pub(crate) fn builders() -> Vec<Box<dyn Builder>> {
    vec![Box::new(RustGuests), Box::new(Examples)]
}

/// The example plugins in every language (`examples/plugins/<lang>/<role>`),
/// built by `examples/plugins/build-all.sh`, which installs each language's
/// toolchain into the tools cache on first use.
pub(crate) const EXAMPLE_LANGUAGES: &[&str] = &["rust", "python", "javascript", "c"];
/// Roles of the example plugins; also the conformance case directories.
pub(crate) const EXAMPLE_ROLES: &[&str] = &["policy", "renderer"];

struct Examples;

impl Builder for Examples {
    fn describe(&self) -> &'static str {
        "example plugins (Rust, Python, JavaScript, C) via examples/plugins/build-all.sh"
    }

    fn build(&self, root: &Path, out_dir: &Path) -> Result<Vec<Built>> {
        tools::ensure_wasm_target()?;
        tools::ensure_wasm_tools()?;
        exec(
            std::process::Command::new("bash")
                .arg(root.join("examples/plugins/build-all.sh"))
                .arg(out_dir)
                .current_dir(root),
        )?;
        let mut built = Vec::new();
        for lang in EXAMPLE_LANGUAGES {
            for role in EXAMPLE_ROLES {
                let name = format!("example-{lang}-{role}");
                let path = out_dir.join(format!("{name}.wasm"));
                if !path.is_file() {
                    bail!(
                        "examples/plugins/build-all.sh produced no {}",
                        path.display()
                    );
                }
                built.push(Built { name, path });
            }
        }
        Ok(built)
    }
}

/// `target/plugins`.
pub(crate) fn out_dir() -> PathBuf {
    root().join("target").join("plugins")
}

pub(crate) fn run() -> Result<()> {
    build_all().map(|_| ())
}

/// Run every builder; returns what was built.
pub(crate) fn build_all() -> Result<Vec<Built>> {
    let root = root();
    let out = out_dir();
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut built = Vec::new();
    for builder in builders() {
        note(&format!("building {}", builder.describe()));
        built.extend(builder.build(&root, &out)?);
    }
    for b in &built {
        let size = std::fs::metadata(&b.path).map(|m| m.len()).unwrap_or(0);
        println!(
            "built {} ({})",
            b.path.strip_prefix(&root).unwrap_or(&b.path).display(),
            human_size(size)
        );
    }
    Ok(built)
}

/// Rust guest crates (profile `plugin`): see [`rust_guests`].
struct RustGuests;

/// A Rust guest crate and the target it is built for.
pub(crate) struct RustGuest {
    pub(crate) package: String,
    /// `wasm32-wasip2` (the compiler links a component), or the target in
    /// the manifest's `[package.metadata.keyward]` table, e.g.
    /// `wasm32-unknown-unknown` for a guest that needs `std` but no WASI:
    /// that builds a core module, made a component with
    /// `wasm-tools component new`.
    pub(crate) target: String,
}

/// Every Rust guest crate: every directory with a Cargo.toml under
/// `plugins/` and `tests/guests/`.
pub(crate) fn rust_guests(root: &Path) -> Result<Vec<RustGuest>> {
    let mut guests = Vec::new();
    for dir in ["plugins", "tests/guests"] {
        for manifest in crate_manifests(&root.join(dir))? {
            let (package, text) = read_manifest(&manifest)?;
            let target = table_value(&text, "[package.metadata.keyward]", "target")
                .unwrap_or_else(|| tools::WASM_TARGET.to_string());
            guests.push(RustGuest { package, target });
        }
    }
    Ok(guests)
}

/// Every target the guests are built for, each added once (a `rustup`
/// run), and `wasm-tools` when a guest's core module must be made a
/// component.
pub(crate) fn ensure_guest_targets(guests: &[RustGuest]) -> Result<()> {
    let mut targets: Vec<&str> = guests.iter().map(|g| g.target.as_str()).collect();
    targets.sort_unstable();
    targets.dedup();
    for target in &targets {
        tools::ensure_rust_target(target)?;
    }
    if targets.iter().any(|t| *t != tools::WASM_TARGET) {
        tools::ensure_wasm_tools()?;
    }
    Ok(())
}

impl Builder for RustGuests {
    fn describe(&self) -> &'static str {
        "Rust guests (plugins/*, tests/guests/*) for wasm32"
    }

    fn build(&self, root: &Path, out_dir: &Path) -> Result<Vec<Built>> {
        let guests = rust_guests(root)?;
        // One build per crate: cargo unifies dependency features across
        // the packages of one build, and a `no_std` guest (policy-rules)
        // must not get `std` turned on in its dependencies by a neighbour.
        ensure_guest_targets(&guests)?;
        let mut built = Vec::new();
        for g in &guests {
            exec(cargo().args([
                "build",
                "--target",
                &g.target,
                "--profile",
                "plugin",
                "-p",
                &g.package,
            ]))?;
            let from = root
                .join("target")
                .join(&g.target)
                .join("plugin")
                .join(format!("{}.wasm", g.package.replace('-', "_")));
            let to = out_dir.join(format!("{}.wasm", g.package));
            if g.target == tools::WASM_TARGET {
                std::fs::copy(&from, &to).with_context(|| {
                    format!("cannot copy {} to {}", from.display(), to.display())
                })?;
            } else {
                exec(
                    std::process::Command::new("wasm-tools")
                        .args(["component", "new"])
                        .arg(&from)
                        .arg("-o")
                        .arg(&to),
                )?;
            }
            built.push(Built {
                name: g.package.clone(),
                path: to,
            });
        }
        Ok(built)
    }
}

/// The package name a manifest declares.
pub(crate) fn manifest_package(manifest: &Path) -> Result<String> {
    read_manifest(manifest).map(|(name, _)| name)
}

/// A manifest's package name and its text.
fn read_manifest(manifest: &Path) -> Result<(String, String)> {
    let text = std::fs::read_to_string(manifest)
        .with_context(|| format!("cannot read {}", manifest.display()))?;
    match table_value(&text, "[package]", "name") {
        Some(name) => Ok((name, text)),
        None => bail!("{}: no [package] name", manifest.display()),
    }
}

/// `<dir>/*/Cargo.toml`, sorted.
pub(crate) fn crate_manifests(dir: &Path) -> Result<Vec<PathBuf>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(Vec::new());
    };
    let mut found = Vec::new();
    for entry in entries {
        let manifest = entry?.path().join("Cargo.toml");
        if manifest.is_file() {
            found.push(manifest);
        }
    }
    found.sort();
    Ok(found)
}

/// The string value of `key` in a manifest's `table` (e.g. `[package]`),
/// for the simple `key = "value"` lines our manifests use.
fn table_value(manifest: &str, table: &str, key: &str) -> Option<String> {
    let mut in_table = false;
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_table = line == table;
            continue;
        }
        if in_table
            && let Some(value) = line.strip_prefix(key)
            && let Some(value) = value.trim_start().strip_prefix('=')
        {
            return Some(value.trim().trim_matches('"').to_string());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_package_names() {
        let toml =
            "[lib]\nname = \"x\"\n\n[package]\nname = \"policy-rules\"\nversion.workspace = true\n";
        assert_eq!(
            table_value(toml, "[package]", "name").as_deref(),
            Some("policy-rules")
        );
        assert_eq!(
            table_value("[workspace]\nmembers = []", "[package]", "name"),
            None
        );
        let guest = "[package]\nname = \"r\"\n\n[package.metadata.keyward]\n\
                     target-dir = \"x\"\ntarget = \"wasm32-unknown-unknown\"\n";
        assert_eq!(
            table_value(guest, "[package.metadata.keyward]", "target").as_deref(),
            Some("wasm32-unknown-unknown")
        );
        assert_eq!(
            table_value(toml, "[package.metadata.keyward]", "target"),
            None
        );
    }
}
