//! Embeds the plugin templates of `keyward plugin new` (the contract is in
//! examples/templates/README.md) so the installed binary needs no checkout:
//! writes `$OUT_DIR/templates.rs`, a table of (repository path, bytes).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Single files outside examples/templates that a new plugin receives.
const EXTRA_FILES: &[&str] = &[
    "examples/plugins/toolchain.sh",
    "wit/keyward.wit",
    "examples/plugins/c/common/kw.c",
    "examples/plugins/c/common/kw.h",
];

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let root = manifest.join("../..");
    let templates = root.join("examples/templates");
    println!("cargo::rerun-if-changed={}", templates.display());

    let mut files = Vec::new();
    walk(&templates, &mut files);
    // The templates' own README and the reference script are not templates.
    files.retain(|f| {
        f.parent() != Some(templates.as_path())
            || !matches!(
                f.file_name().and_then(|n| n.to_str()),
                Some("README.md" | "new.sh")
            )
    });
    for extra in EXTRA_FILES {
        let path = root.join(extra);
        println!("cargo::rerun-if-changed={}", path.display());
        files.push(path);
    }
    files.sort();

    let mut table = String::from("&[\n");
    for file in &files {
        let rel = file
            .strip_prefix(&root)
            .expect("under the repository")
            .to_str()
            .expect("utf-8 template path");
        let abs = file
            .canonicalize()
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        writeln!(table, "    ({rel:?}, include_bytes!({:?})),", abs.display()).expect("string");
    }
    table.push(']');
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets it"));
    std::fs::write(out.join("templates.rs"), table).expect("write templates.rs");
}

/// Every file under `dir` (walked in a stable order), build outputs skipped.
fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
    println!("cargo::rerun-if-changed={}", dir.display());
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if path.is_dir() {
            if !matches!(name, "target" | "node_modules" | "__pycache__") {
                walk(&path, files);
            }
        } else if !name.ends_with(".wasm") {
            files.push(path);
        }
    }
}
