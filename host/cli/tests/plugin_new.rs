//! `keyward plugin new` end to end: a scaffolded Rust policy plugin builds
//! with its own build.sh and passes its starter cases through
//! `keyward plugin test`; bad names and existing directories are refused
//! before anything is written.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn keyward(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_keyward"))
        .args(args)
        .env(
            "KEYWARD_CACHE_DIR",
            root().join("target/test-cache/keyward-cli"),
        )
        .output()
        .expect("run keyward")
}

fn os<S: AsRef<std::ffi::OsStr> + ?Sized>(s: &S) -> &std::ffi::OsStr {
    s.as_ref()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn bad_names_are_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    for name in ["My-Policy", "1policy", "-policy", "my_policy", "my.policy"] {
        let dir = tmp.path().join("out");
        // `--` so that `-policy` is a name, not an option.
        let o = keyward(&[
            os("plugin"),
            os("new"),
            os("--lang"),
            os("rust"),
            os("--world"),
            os("policy"),
            os("--dir"),
            dir.as_os_str(),
            os("--"),
            os(name),
        ]);
        assert_eq!(o.status.code(), Some(1), "{name}: {}", text(&o.stderr));
        assert!(
            text(&o.stderr).contains("[a-z][a-z0-9-]*"),
            "{name}: {}",
            text(&o.stderr)
        );
        assert!(!dir.exists(), "{name}: nothing is written");
    }
    // Unknown languages and worlds are usage errors.
    let o = keyward(&[
        os("plugin"),
        os("new"),
        os("p"),
        os("--lang"),
        os("cobol"),
        os("--world"),
        os("policy"),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
}

#[test]
fn an_existing_directory_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("taken");
    std::fs::create_dir(&dir).expect("mkdir");
    std::fs::write(dir.join("keep.txt"), "mine").expect("write");
    let o = keyward(&[
        os("plugin"),
        os("new"),
        os("taken"),
        os("--lang"),
        os("python"),
        os("--world"),
        os("renderer"),
        os("--dir"),
        dir.as_os_str(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("already exists"),
        "{}",
        text(&o.stderr)
    );
    let entries: Vec<_> = std::fs::read_dir(&dir).expect("read_dir").collect();
    assert_eq!(entries.len(), 1, "the directory is left alone");
}

#[test]
fn c_renderer_gets_the_contract_files() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("props");
    let o = keyward(&[
        os("plugin"),
        os("new"),
        os("my-props"),
        os("--lang"),
        os("c"),
        os("--world"),
        os("renderer"),
        os("--dir"),
        dir.as_os_str(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    for f in [
        "build.sh",
        "README.md",
        ".gitignore",
        "plugin.c",
        "kw.c",
        "kw.h",
        "toolchain.sh",
        "wit/keyward.wit",
    ] {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    let cases = std::fs::read_dir(dir.join("cases")).expect("cases").count();
    assert_eq!(
        cases,
        std::fs::read_dir(root().join("examples/templates/cases/renderer"))
            .expect("template cases")
            .count()
    );
    // Every placeholder is replaced.
    for entry in walk(&dir) {
        let body = std::fs::read_to_string(&entry).unwrap_or_default();
        for p in ["{{name}}", "{{crate}}", "{{world}}", "{{interface}}"] {
            assert!(!body.contains(p), "{p} left in {}", entry.display());
        }
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |f: &str| {
            std::fs::metadata(dir.join(f))
                .expect("stat")
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(mode("build.sh"), 0o755);
        assert_eq!(mode("plugin.c"), 0o644);
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read_dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// The slow one: scaffold, build with the plugin's own build.sh (cargo,
/// wasm32-wasip2) and run its starter cases.
#[test]
fn rust_policy_scaffold_builds_and_passes_its_cases() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("starter-policy");
    let o = keyward(&[
        os("plugin"),
        os("new"),
        os("starter-policy"),
        os("--lang"),
        os("rust"),
        os("--world"),
        os("policy"),
        os("--dir"),
        dir.as_os_str(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));

    // build.sh builds into <dir>/target; point that at a directory kept
    // between runs so the dependencies are compiled once.
    let shared = root().join("target/examples/plugin-new");
    std::fs::create_dir_all(&shared).expect("mkdir shared target");
    #[cfg(unix)]
    std::os::unix::fs::symlink(&shared, dir.join("target")).expect("symlink target");

    let build = Command::new(dir.join("build.sh"))
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .expect("run build.sh");
    assert!(
        build.status.success(),
        "build.sh failed:\n{}\n{}",
        text(&build.stdout),
        text(&build.stderr)
    );
    let wasm = dir.join("starter-policy.wasm");
    assert!(wasm.is_file(), "build.sh wrote no {}", wasm.display());

    let cases = dir.join("cases");
    let o = keyward(&[
        os("plugin"),
        os("test"),
        wasm.as_os_str(),
        os("--cases"),
        cases.as_os_str(),
    ]);
    assert!(
        o.status.success(),
        "starter cases fail:\n{}\n{}",
        text(&o.stdout),
        text(&o.stderr)
    );
}
