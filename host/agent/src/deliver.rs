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
        let written = self.write_all_atomic(&[FileWrite {
            rel,
            mode,
            contents,
        }])?;
        Ok(written[0])
    }

    /// Write several files, each atomically (as [`OutputDir::write_atomic`]),
    /// paying for the disk flushes once rather than per file: every changed
    /// file is first written to a temporary file, all of them are fsynced
    /// at once, then each is renamed over its target and each directory
    /// involved is fsynced once. When writing or flushing any temporary
    /// file fails, every temporary file is removed and no target changes.
    /// Returns, per file, whether it was written (`false`: it already had
    /// exactly these contents and mode).
    pub fn write_all_atomic(&self, files: &[FileWrite<'_>]) -> Result<Vec<bool>> {
        let mut dirs: Vec<(Option<PathBuf>, Dir)> = Vec::new();
        let mut pending: Vec<Pending> = Vec::new();
        let mut written = vec![false; files.len()];
        let staged = (|| -> Result<()> {
            for (index, f) in files.iter().enumerate() {
                let io = |source| Error::Delivery {
                    target: f.rel.to_string(),
                    source,
                };
                let path = Path::new(f.rel);
                let parent = path
                    .parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .map(Path::to_path_buf);
                let name = path
                    .file_name()
                    .ok_or_else(|| io(std::io::Error::other("the path names no file")))?
                    .to_os_string();
                let dir_index = match dirs.iter().position(|(p, _)| *p == parent) {
                    Some(i) => i,
                    None => {
                        let dir = match &parent {
                            Some(p) => {
                                self.dir.create_dir_all(p).map_err(io)?;
                                self.dir.open_dir(p).map_err(io)?
                            }
                            None => self.dir.try_clone().map_err(io)?,
                        };
                        dirs.push((parent, dir));
                        dirs.len() - 1
                    }
                };
                let dir = &dirs[dir_index].1;
                if unchanged(dir, Path::new(&name), f.mode, f.contents) {
                    continue;
                }
                let tmp = format!(
                    ".{}.keyward-{}-{}",
                    name.to_string_lossy(),
                    std::process::id(),
                    rand_suffix()
                );
                let mut opts = OpenOptions::new();
                opts.write(true).create_new(true);
                let file = dir.open_with(&tmp, &opts).map_err(io)?;
                // Registered before anything else can fail, so that it is
                // cleaned up.
                pending.push(Pending {
                    index,
                    dir: dir_index,
                    tmp,
                    name,
                    file: Some(file),
                });
                let file = pending
                    .last_mut()
                    .and_then(|p| p.file.as_mut())
                    .expect("just pushed");
                file.set_permissions(Permissions::from_std(
                    std::os::unix::fs::PermissionsExt::from_mode(f.mode),
                ))
                .map_err(io)?;
                file.write_all(f.contents).map_err(io)?;
            }
            // One flush for all: the fsyncs run side by side (at most
            // `MAX_PARALLEL_FSYNCS` threads at a time), and the file system
            // can commit them together.
            let mut flushed: Vec<std::io::Result<()>> = Vec::with_capacity(pending.len());
            for group in pending.chunks(MAX_PARALLEL_FSYNCS) {
                std::thread::scope(|scope| {
                    let handles: Vec<_> = group
                        .iter()
                        .map(|p| {
                            let file = p.file.as_ref().expect("open until renamed");
                            scope.spawn(move || file.sync_all())
                        })
                        .collect();
                    flushed.extend(handles.into_iter().map(|h| {
                        h.join()
                            .unwrap_or_else(|_| Err(std::io::Error::other("fsync thread panicked")))
                    }));
                });
            }
            for (p, result) in pending.iter().zip(flushed) {
                result.map_err(|source| Error::Delivery {
                    target: files[p.index].rel.to_string(),
                    source,
                })?;
            }
            Ok(())
        })();
        if let Err(e) = staged {
            for p in &mut pending {
                p.file = None;
                let _ = dirs[p.dir].1.remove_file(&p.tmp);
            }
            return Err(e);
        }
        let mut touched = vec![false; dirs.len()];
        let mut failure = None;
        for p in &mut pending {
            p.file = None;
            let dir = &dirs[p.dir].1;
            if failure.is_some() {
                let _ = dir.remove_file(&p.tmp);
                continue;
            }
            match dir.rename(&p.tmp, dir, &p.name) {
                Ok(()) => {
                    written[p.index] = true;
                    touched[p.dir] = true;
                }
                Err(source) => {
                    let _ = dir.remove_file(&p.tmp);
                    failure = Some(Error::Delivery {
                        target: files[p.index].rel.to_string(),
                        source,
                    });
                }
            }
        }
        // Make the renames durable: each directory once, side by side.
        std::thread::scope(|scope| {
            for ((_, dir), touched) in dirs.iter().zip(&touched) {
                if *touched {
                    scope.spawn(move || {
                        if let Ok(d) = dir.open(".") {
                            let _ = d.sync_all();
                        }
                    });
                }
            }
        });
        match failure {
            Some(e) => Err(e),
            None => Ok(written),
        }
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

/// Files [`OutputDir::write_all_atomic`] flushes at once.
const MAX_PARALLEL_FSYNCS: usize = 16;

/// One file for [`OutputDir::write_all_atomic`].
#[derive(Debug, Clone, Copy)]
pub struct FileWrite<'a> {
    /// Path relative to the output directory.
    pub rel: &'a str,
    /// Permission bits.
    pub mode: u32,
    /// The bytes to write.
    pub contents: &'a [u8],
}

/// A temporary file written and waiting for its rename.
struct Pending {
    index: usize,
    dir: usize,
    tmp: String,
    name: std::ffi::OsString,
    file: Option<cap_std::fs::File>,
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

    fn listing(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = walk(dir, dir);
        names.sort();
        names
    }

    fn walk(root: &Path, dir: &Path) -> Vec<String> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                out.extend(walk(root, &p));
            } else {
                out.push(p.strip_prefix(root).unwrap().display().to_string());
            }
        }
        out
    }

    #[test]
    fn batch_writes_several_directories_and_skips_unchanged() {
        let tmp = tempfile::tempdir().unwrap();
        let out = OutputDir::open(tmp.path()).unwrap();
        assert!(out.write_atomic("same.txt", 0o600, b"kept").unwrap());
        let files = [
            FileWrite {
                rel: "same.txt",
                mode: 0o600,
                contents: b"kept",
            },
            FileWrite {
                rel: "tls/web.crt",
                mode: 0o644,
                contents: b"cert",
            },
            FileWrite {
                rel: "tls/web.key",
                mode: 0o600,
                contents: b"key",
            },
            FileWrite {
                rel: "app.env",
                mode: 0o640,
                contents: b"A=1\n",
            },
        ];
        assert_eq!(
            out.write_all_atomic(&files).unwrap(),
            [false, true, true, true]
        );
        assert_eq!(
            listing(tmp.path()),
            ["app.env", "same.txt", "tls/web.crt", "tls/web.key"]
        );
        assert_eq!(
            std::fs::read(tmp.path().join("tls/web.key")).unwrap(),
            b"key"
        );
        let mode = |p: &str| {
            std::fs::metadata(tmp.path().join(p))
                .unwrap()
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(mode("tls/web.crt"), 0o644);
        assert_eq!(mode("app.env"), 0o640);
        assert_eq!(out.write_all_atomic(&files).unwrap(), [false; 4]);
    }

    #[test]
    fn a_batch_larger_than_one_flush_group() {
        let tmp = tempfile::tempdir().unwrap();
        let out = OutputDir::open(tmp.path()).unwrap();
        let names: Vec<String> = (0..MAX_PARALLEL_FSYNCS * 2 + 3)
            .map(|i| format!("many/f{i:02}"))
            .collect();
        let files: Vec<FileWrite<'_>> = names
            .iter()
            .map(|n| FileWrite {
                rel: n,
                mode: 0o600,
                contents: n.as_bytes(),
            })
            .collect();
        assert!(out.write_all_atomic(&files).unwrap().iter().all(|w| *w));
        assert_eq!(listing(tmp.path()).len(), names.len());
        for n in &names {
            assert_eq!(std::fs::read(tmp.path().join(n)).unwrap(), n.as_bytes());
        }
    }

    #[test]
    fn a_failing_batch_changes_no_file() {
        let tmp = tempfile::tempdir().unwrap();
        let out = OutputDir::open(tmp.path()).unwrap();
        assert!(out.write_atomic("a.txt", 0o600, b"old").unwrap());
        // `blocker` is a file, so `blocker/b.txt` cannot be written.
        assert!(out.write_atomic("blocker", 0o600, b"x").unwrap());
        let files = [
            FileWrite {
                rel: "a.txt",
                mode: 0o600,
                contents: b"new",
            },
            FileWrite {
                rel: "c.txt",
                mode: 0o600,
                contents: b"new",
            },
            FileWrite {
                rel: "blocker/b.txt",
                mode: 0o600,
                contents: b"new",
            },
        ];
        let err = out.write_all_atomic(&files).unwrap_err();
        assert!(err.to_string().contains("blocker/b.txt"), "{err}");
        // Nothing changed, no temporary file is left.
        assert_eq!(std::fs::read(tmp.path().join("a.txt")).unwrap(), b"old");
        assert_eq!(listing(tmp.path()), ["a.txt", "blocker"]);
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
