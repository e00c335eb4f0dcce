//! `keyward plugin new`: scaffold a plugin from the templates embedded at
//! build time (examples/templates/README.md is the contract;
//! examples/templates/new.sh is its reference implementation).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};

use crate::{NewArgs, PluginLang, PluginWorld};

/// (repository path, contents) of every embedded template file.
const FILES: &[(&str, &[u8])] = include!(concat!(env!("OUT_DIR"), "/templates.rs"));

const TEMPLATES: &str = "examples/templates";

pub(crate) fn run(args: &NewArgs) -> Result<ExitCode> {
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(&args.name));
    let written = scaffold(&args.name, args.lang, args.world, &dir)?;
    println!(
        "created {} ({} {} plugin, {written} files)",
        dir.display(),
        args.lang.as_str(),
        args.world.as_str()
    );
    println!(
        "build it with `{0}/build.sh`, then test it with `keyward plugin test {0}/{1}.wasm --cases {0}/cases`",
        dir.display(),
        args.name
    );
    Ok(ExitCode::SUCCESS)
}

/// Whether `name` matches `[a-z][a-z0-9-]*`.
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// The files of a new plugin: (path relative to its directory, repository
/// path of the source), later entries overriding earlier ones.
fn plan(lang: PluginLang, world: PluginWorld) -> Vec<(String, &'static str)> {
    let mut plan: Vec<(String, &'static str)> = Vec::new();
    let mut put = |dest: String, src: &'static str| {
        plan.retain(|(d, _)| *d != dest);
        plan.push((dest, src));
    };
    for sub in ["all", world.as_str()] {
        let prefix = format!("{TEMPLATES}/{}/{sub}/", lang.as_str());
        for (src, _) in FILES {
            if let Some(rel) = src.strip_prefix(&prefix) {
                put(rel.to_string(), src);
            }
        }
    }
    let cases = format!("{TEMPLATES}/cases/{}/", world.as_str());
    for (src, _) in FILES {
        if let Some(rel) = src.strip_prefix(&cases)
            && !rel.contains('/')
            && rel.ends_with(".yaml")
        {
            put(format!("cases/{rel}"), src);
        }
    }
    put("toolchain.sh".into(), "examples/plugins/toolchain.sh");
    put("wit/keyward.wit".into(), "wit/keyward.wit");
    if lang == PluginLang::C {
        put("kw.c".into(), "examples/plugins/c/common/kw.c");
        put("kw.h".into(), "examples/plugins/c/common/kw.h");
    }
    plan
}

fn contents(src: &str) -> &'static [u8] {
    FILES
        .iter()
        .find(|(path, _)| *path == src)
        .map(|(_, bytes)| *bytes)
        .unwrap_or_else(|| panic!("{src} is not embedded (host/cli/build.rs)"))
}

/// Create `dir` with the plugin's files; returns how many were written.
pub(crate) fn scaffold(
    name: &str,
    lang: PluginLang,
    world: PluginWorld,
    dir: &Path,
) -> Result<usize> {
    if !valid_name(name) {
        bail!("invalid plugin name {name:?}: it must match [a-z][a-z0-9-]*");
    }
    if dir.exists() || dir.symlink_metadata().is_ok() {
        bail!("{} already exists", dir.display());
    }
    let plan = plan(lang, world);
    if !plan.iter().any(|(d, _)| d == "build.sh") {
        bail!(
            "no template for {} {} plugins in this build",
            lang.as_str(),
            world.as_str()
        );
    }
    let crate_name = name.replace('-', "_");
    let interface = match world {
        PluginWorld::Policy => "decider",
        PluginWorld::Renderer => "render",
    };
    let fill = |text: &[u8]| -> Vec<u8> {
        match std::str::from_utf8(text) {
            Ok(text) => text
                .replace("{{name}}", name)
                .replace("{{crate}}", &crate_name)
                .replace("{{world}}", world.as_str())
                .replace("{{interface}}", interface)
                .into_bytes(),
            Err(_) => text.to_vec(),
        }
    };
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for (dest, src) in &plan {
        let path = dir.join(dest);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, fill(contents(src)))
            .with_context(|| format!("cannot write {}", path.display()))?;
        set_mode(&path, if dest == "build.sh" { 0o755 } else { 0o644 })?;
    }
    Ok(plan.len())
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot set the mode of {}", path.display()))
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: u32) -> Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["a", "my-policy", "p2", "a-b-3"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["", "A", "1a", "-a", "my_policy", "my policy", "ä", "a/b"] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn every_language_and_world_has_a_template() {
        for lang in [
            PluginLang::Rust,
            PluginLang::Python,
            PluginLang::Javascript,
            PluginLang::C,
        ] {
            for world in [PluginWorld::Policy, PluginWorld::Renderer] {
                let plan = plan(lang, world);
                let dests: Vec<&str> = plan.iter().map(|(d, _)| d.as_str()).collect();
                for needed in ["build.sh", "README.md", "toolchain.sh", "wit/keyward.wit"] {
                    assert!(dests.contains(&needed), "{lang:?} {world:?}: {dests:?}");
                }
                assert!(dests.iter().any(|d| d.starts_with("cases/")));
                assert_eq!(dests.contains(&"kw.c"), lang == PluginLang::C);
            }
        }
    }
}
