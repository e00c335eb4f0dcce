//! Delivery of rendered artifacts: files written atomically through a
//! `cap-std` handle on the output directory (no rendered path can reach
//! outside it), and env files.

use std::io::Write;
use std::path::{Path, PathBuf};

use cap_std::ambient_authority;
use cap_std::fs::{Dir, OpenOptions, Permissions};
use keyward_core::Artifact;

use crate::error::{Error, Result};

/// Writes files under one directory.
#[derive(Debug)]
pub struct OutputDir {
    root: PathBuf,
    dir: Dir,
}

impl OutputDir {
    /// Open (creating it if needed) the output directory.
    pub fn open(root: &Path) -> Result<Self> {
        std::fs::create_dir_all(root).map_err(|source| Error::Delivery {
            target: root.display().to_string(),
            source,
        })?;
        let dir =
            Dir::open_ambient_dir(root, ambient_authority()).map_err(|source| Error::Delivery {
                target: root.display().to_string(),
                source,
            })?;
        Ok(OutputDir {
            root: root.to_path_buf(),
            dir,
        })
    }

    /// The directory's path.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Write `contents` to `rel` with `mode`, atomically: a temporary file in
    /// the same directory, fsync, rename over the target, fsync the
    /// directory. Returns `false` (and writes nothing) when the file already
    /// has exactly these contents and mode.
    pub fn write_atomic(&self, rel: &str, mode: u32, contents: &[u8]) -> Result<bool> {
        let io = |source| Error::Delivery {
            target: rel.to_string(),
            source,
        };
        let path = Path::new(rel);
        let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
        let name = path
            .file_name()
            .ok_or_else(|| io(std::io::Error::other("the path names no file")))?;
        let sub;
        let dir = match parent {
            Some(p) => {
                self.dir.create_dir_all(p).map_err(io)?;
                sub = self.dir.open_dir(p).map_err(io)?;
                &sub
            }
            None => &self.dir,
        };
        if unchanged(dir, Path::new(name), mode, contents) {
            return Ok(false);
        }
        let tmp = format!(
            ".{}.keyward-{}-{}",
            name.to_string_lossy(),
            std::process::id(),
            rand_suffix()
        );
        let result = (|| {
            let mut opts = OpenOptions::new();
            opts.write(true).create_new(true);
            let mut file = dir.open_with(&tmp, &opts)?;
            file.set_permissions(Permissions::from_std(
                std::os::unix::fs::PermissionsExt::from_mode(mode),
            ))?;
            file.write_all(contents)?;
            file.sync_all()?;
            drop(file);
            dir.rename(&tmp, dir, name)?;
            // Make the rename durable.
            if let Ok(d) = dir.open(".") {
                let _ = d.sync_all();
            }
            Ok(())
        })();
        if result.is_err() {
            let _ = dir.remove_file(&tmp);
        }
        result.map_err(io)?;
        Ok(true)
    }

    /// Remove a file previously written (e.g. when a binding stops
    /// producing it). Missing files are fine.
    pub fn remove(&self, rel: &str) -> Result<()> {
        match self.dir.remove_file(rel) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(Error::Delivery {
                target: rel.to_string(),
                source,
            }),
        }
    }
}

fn unchanged(dir: &Dir, name: &Path, mode: u32, contents: &[u8]) -> bool {
    use cap_std::fs::PermissionsExt;
    let Ok(meta) = dir.metadata(name) else {
        return false;
    };
    if meta.permissions().mode() & 0o7777 != mode || meta.len() != contents.len() as u64 {
        return false;
    }
    dir.read(name).map(|old| old == contents).unwrap_or(false)
}

fn rand_suffix() -> String {
    let mut b = [0u8; 6];
    let _ = getrandom::fill(&mut b);
    hex::encode(b)
}

/// How env files are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EnvFormat {
    /// `KEY='value'` lines (dotenv-compatible).
    #[default]
    Plain,
    /// `export KEY='value'` lines, for `source`.
    Export,
}

/// Render env artifacts into an env file's bytes. Values are single-quoted
/// for POSIX shells, so `source`-ing the file never runs anything.
pub fn env_file(artifacts: &[&Artifact], format: EnvFormat) -> Vec<u8> {
    let mut out = String::new();
    for a in artifacts {
        if let Artifact::Env { name, value } = a {
            if format == EnvFormat::Export {
                out.push_str("export ");
            }
            out.push_str(name);
            out.push('=');
            out.push_str(&shell_quote(value.expose()));
            out.push('\n');
        }
    }
    out.into_bytes()
}

/// Single-quote a value for POSIX shells.
pub fn shell_quote(value: &str) -> String {
    let mut s = String::with_capacity(value.len() + 2);
    s.push('\'');
    for c in value.chars() {
        if c == '\'' {
            s.push_str("'\\''");
        } else {
            s.push(c);
        }
    }
    s.push('\'');
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyward_core::Sensitive;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn atomic_write_and_unchanged() {
        let tmp = tempfile::tempdir().unwrap();
        let out = OutputDir::open(tmp.path()).unwrap();
        assert!(out.write_atomic("a/b/c.txt", 0o640, b"one").unwrap());
        assert!(!out.write_atomic("a/b/c.txt", 0o640, b"one").unwrap());
        assert!(out.write_atomic("a/b/c.txt", 0o600, b"one").unwrap());
        assert!(out.write_atomic("a/b/c.txt", 0o600, b"two").unwrap());
        let p = tmp.path().join("a/b/c.txt");
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        // No temporary files are left behind.
        let names: Vec<_> = std::fs::read_dir(tmp.path().join("a/b"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn cannot_escape_the_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let inner = tmp.path().join("out");
        let out = OutputDir::open(&inner).unwrap();
        for bad in ["../escape", "/etc/keyward-test", "a/../../escape"] {
            assert!(out.write_atomic(bad, 0o600, b"x").is_err(), "{bad}");
        }
        assert!(!tmp.path().join("escape").exists());
        // A symlink planted inside the directory cannot be followed out.
        std::os::unix::fs::symlink(tmp.path(), inner.join("link")).unwrap();
        assert!(out.write_atomic("link/escape", 0o600, b"x").is_err());
        assert!(!tmp.path().join("escape").exists());
    }

    #[test]
    fn env_files_quote() {
        let a = Artifact::Env {
            name: "A".into(),
            value: Sensitive("it's $HOME `x`".into()),
        };
        let b = Artifact::Env {
            name: "B".into(),
            value: Sensitive("plain".into()),
        };
        assert_eq!(
            String::from_utf8(env_file(&[&a, &b], EnvFormat::Plain)).unwrap(),
            "A='it'\\''s $HOME `x`'\nB='plain'\n"
        );
        assert_eq!(
            String::from_utf8(env_file(&[&b], EnvFormat::Export)).unwrap(),
            "export B='plain'\n"
        );
    }
}
