//! The on-disk cache of precompiled components.
//!
//! An entry is keyed by the component's sha256 and the engine's
//! compatibility hash, written atomically (temp file, fsync, rename; mode
//! 0600) and tagged with an HMAC-SHA256 under a random key kept in the cache
//! directory (`cache.key`, mode 0600, created on first use). The tag is
//! checked before anything is deserialized: an entry that fails it
//! (corrupted, truncated, written by someone else) is deleted and the
//! component recompiled. Only bytes this code wrote under that key are ever
//! deserialized.
//!
//! The cache does not grow without bound. Opening it removes:
//! - entries compiled for another engine (another Keyward or wasmtime
//!   version, other CPU features) once they are a week old; a rolling
//!   upgrade where two versions share the directory keeps both;
//! - temporary files left by an interrupted write once they are an hour old;
//! - this engine's entries unused for 30 days (a hit refreshes an entry's
//!   modification time);
//! - then, while this engine's entries take more than 1 GiB, the least
//!   recently used ones. Pre-initialised snapshots make one entry per
//!   plugin and configuration, so a changing configuration would otherwise
//!   add entries forever.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use wasmtime::Engine;

const KEY_FILE: &str = "cache.key";
const KEY_LEN: usize = 32;
const MAGIC: &[u8; 8] = b"KWCWASM1";
const TAG_LEN: usize = 32;
const EXTENSION: &str = "cwasm";
/// Entries for another engine are removed once this old.
const OTHER_ENGINE_STALE: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);
/// Temporary files of interrupted writes are removed once this old.
const TEMP_STALE: std::time::Duration = std::time::Duration::from_secs(3600);
/// This engine's entries are removed once unused for this long.
const OWN_UNUSED: std::time::Duration = std::time::Duration::from_secs(30 * 24 * 3600);
/// At most this many bytes of this engine's entries are kept.
const OWN_MAX_BYTES: u64 = 1 << 30;

/// An opened cache directory.
pub(crate) struct DiskCache {
    dir: PathBuf,
    key: [u8; KEY_LEN],
    /// Hex sha256 of the engine's compatibility hash.
    compat: String,
}

impl std::fmt::Debug for DiskCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskCache")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// Why an entry was not used.
#[derive(Debug)]
pub(crate) enum Miss {
    /// No entry.
    Absent,
    /// The entry exists but is not ours or is damaged; it has been deleted.
    Rejected(&'static str),
    /// It could not be read.
    Io(io::Error),
}

impl DiskCache {
    /// Open (creating it, mode 0700) a cache directory for `engine`.
    pub(crate) fn open(dir: &Path, engine: &Engine) -> io::Result<DiskCache> {
        Self::open_with_limit(dir, engine, OWN_MAX_BYTES)
    }

    /// [`DiskCache::open`], keeping at most `max_bytes` of this engine's
    /// entries.
    fn open_with_limit(dir: &Path, engine: &Engine, max_bytes: u64) -> io::Result<DiskCache> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        let key = load_or_create_key(dir)?;
        let cache = DiskCache {
            dir: dir.to_path_buf(),
            key,
            compat: compat_hash(engine),
        };
        cache.prune(max_bytes);
        Ok(cache)
    }

    /// Remove what can no longer be used (see the module documentation).
    /// Best effort: a file that cannot be read or removed is left alone.
    fn prune(&self, max_bytes: u64) {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        let now = std::time::SystemTime::now();
        let remove = |path: &Path, name: &str| {
            let removed = fs::remove_file(path).is_ok();
            if removed {
                tracing::debug!(file = name, "removed a stale component cache file");
            }
            removed
        };
        // This engine's entries that stay: (last use, size, path, name).
        let mut own = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else {
                continue;
            };
            let Some(kind) = classify(name, &self.compat[..32]) else {
                continue;
            };
            let Ok(meta) = entry.metadata() else {
                continue;
            };
            let modified = meta.modified().unwrap_or(now);
            let age = now.duration_since(modified).unwrap_or_default();
            let limit = match kind {
                Stale::OtherEngine => OTHER_ENGINE_STALE,
                Stale::Temp => TEMP_STALE,
                Stale::Own => OWN_UNUSED,
            };
            if age > limit && remove(&entry.path(), name) {
                continue;
            }
            if kind == Stale::Own {
                own.push((modified, meta.len(), entry.path(), name.to_string()));
            }
        }
        let mut total: u64 = own.iter().map(|(_, len, _, _)| len).sum();
        own.sort();
        for (_, len, path, name) in own {
            if total <= max_bytes {
                break;
            }
            if remove(&path, &name) {
                total = total.saturating_sub(len);
            }
        }
    }

    /// Path of the entry for a component digest (hex, without `sha256:`).
    pub(crate) fn entry_path(&self, digest_hex: &str) -> PathBuf {
        self.dir
            .join(format!("{digest_hex}-{}.{EXTENSION}", &self.compat[..32]))
    }

    /// The MAC of an entry: over the component digest, the engine
    /// compatibility hash and the serialized bytes.
    fn mac(&self, digest_hex: &str, payload: &[u8]) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
        mac.update(b"keyward-cwasm-v1\0");
        mac.update(digest_hex.as_bytes());
        mac.update(b"\0");
        mac.update(self.compat.as_bytes());
        mac.update(b"\0");
        mac.update(payload);
        mac
    }

    /// The verified serialized component for a digest. A damaged or
    /// foreign entry is deleted.
    pub(crate) fn get(&self, digest_hex: &str) -> Result<Vec<u8>, Miss> {
        let path = self.entry_path(digest_hex);
        let mut bytes = Vec::new();
        match File::open(&path).and_then(|mut f| f.read_to_end(&mut bytes)) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(Miss::Absent),
            Err(e) => return Err(Miss::Io(e)),
        }
        let reject = |why: &'static str| {
            if let Err(e) = fs::remove_file(&path) {
                tracing::warn!(path = %path.display(), error = %e, "cannot delete a rejected cache entry");
            }
            Miss::Rejected(why)
        };
        if bytes.len() < MAGIC.len() + TAG_LEN || &bytes[..MAGIC.len()] != MAGIC {
            return Err(reject("not a Keyward cache entry"));
        }
        let (tag, payload) = bytes[MAGIC.len()..].split_at(TAG_LEN);
        // `verify_slice` compares in constant time.
        if self.mac(digest_hex, payload).verify_slice(tag).is_err() {
            return Err(reject("integrity tag mismatch"));
        }
        bytes.drain(..MAGIC.len() + TAG_LEN);
        // Record the use, for pruning (best effort).
        if let Ok(file) = OpenOptions::new().write(true).open(&path) {
            let _ = file.set_modified(std::time::SystemTime::now());
        }
        Ok(bytes)
    }

    /// Store a serialized component atomically.
    pub(crate) fn put(&self, digest_hex: &str, payload: &[u8]) -> io::Result<()> {
        let tag: [u8; TAG_LEN] = self.mac(digest_hex, payload).finalize().into_bytes().into();
        let path = self.entry_path(digest_hex);
        write_atomic(&self.dir, &path, &[MAGIC, &tag, payload])
    }
}

/// A cache file that may be removed once old enough.
#[derive(Debug, PartialEq, Eq)]
enum Stale {
    /// `<digest>-<engine>.cwasm` for an engine other than ours.
    OtherEngine,
    /// `.<entry>.<random>.tmp`, left by an interrupted write.
    Temp,
    /// `<digest>-<engine>.cwasm` for our engine: removed when long unused,
    /// or when the cache is over its size.
    Own,
}

/// Which kind of removable file `name` is, given our engine tag; `None` for
/// our own entries and for anything the cache did not write.
fn classify(name: &str, engine_tag: &str) -> Option<Stale> {
    if let Some(rest) = name.strip_prefix('.') {
        return (rest.ends_with(".tmp") && rest.contains(&format!(".{EXTENSION}.")))
            .then_some(Stale::Temp);
    }
    let stem = name.strip_suffix(&format!(".{EXTENSION}"))?;
    let (digest, engine) = stem.split_once('-')?;
    let hex = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
    if !(hex(digest, 64) && hex(engine, 32)) {
        return None;
    }
    Some(if engine == engine_tag {
        Stale::Own
    } else {
        Stale::OtherEngine
    })
}

/// Hex sha256 of the engine's `precompile_compatibility_hash`.
fn compat_hash(engine: &Engine) -> String {
    use std::hash::{Hash, Hasher};
    struct ShaHasher(Sha256);
    impl Hasher for ShaHasher {
        fn finish(&self) -> u64 {
            unreachable!("only the sha256 state is read")
        }
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
    }
    let mut h = ShaHasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut h);
    hex::encode(h.0.finalize())
}

fn load_or_create_key(dir: &Path) -> io::Result<[u8; KEY_LEN]> {
    let path = dir.join(KEY_FILE);
    for _ in 0..3 {
        match File::open(&path) {
            Ok(mut f) => {
                let meta = f.metadata()?;
                let mut key = [0u8; KEY_LEN];
                let sound = meta.is_file()
                    && meta.len() == KEY_LEN as u64
                    && meta.mode() & 0o077 == 0
                    && f.read_exact(&mut key).is_ok();
                if sound {
                    return Ok(key);
                }
                // A key others could read (or a damaged one) protects
                // nothing: replace it, which invalidates every entry.
                tracing::warn!(path = %path.display(), "replacing an unusable component cache key");
                let key = random_key()?;
                write_atomic(dir, &path, &[&key])?;
                return Ok(key);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let key = random_key()?;
                let tmp = temp_path(dir, KEY_FILE);
                write_file(&tmp, &[&key])?;
                // `hard_link` fails if another process created the key
                // first; then use theirs.
                let linked = fs::hard_link(&tmp, &path);
                let _ = fs::remove_file(&tmp);
                match linked {
                    Ok(()) => {
                        sync_dir(dir);
                        return Ok(key);
                    }
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                    Err(e) => return Err(e),
                }
            }
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other("the cache key keeps changing under us"))
}

fn random_key() -> io::Result<[u8; KEY_LEN]> {
    let mut key = [0u8; KEY_LEN];
    getrandom::fill(&mut key).map_err(|e| io::Error::other(e.to_string()))?;
    Ok(key)
}

fn temp_path(dir: &Path, name: &str) -> PathBuf {
    let mut nonce = [0u8; 8];
    // A clash only makes `create_new` fail; the write is then retried by
    // the next load.
    let _ = getrandom::fill(&mut nonce);
    dir.join(format!(".{name}.{}.tmp", hex::encode(nonce)))
}

fn write_file(path: &Path, parts: &[&[u8]]) -> io::Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    // `mode` is filtered by the umask; make sure of 0600.
    f.set_permissions(fs::Permissions::from_mode(0o600))?;
    for part in parts {
        f.write_all(part)?;
    }
    f.sync_all()
}

fn write_atomic(dir: &Path, path: &Path, parts: &[&[u8]]) -> io::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = temp_path(dir, &name);
    let result = write_file(&tmp, parts).and_then(|()| fs::rename(&tmp, path));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result?;
    sync_dir(dir);
    Ok(())
}

/// Make a rename durable (best effort: not every filesystem allows it).
fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine() -> Engine {
        Engine::default()
    }

    #[test]
    fn round_trip_and_rejections() {
        let dir = tempfile::tempdir().unwrap();
        let cache = DiskCache::open(dir.path(), &engine()).unwrap();
        let digest = "ab".repeat(32);
        assert!(matches!(cache.get(&digest), Err(Miss::Absent)));
        cache.put(&digest, b"payload").unwrap();
        assert_eq!(cache.get(&digest).unwrap(), b"payload");

        let path = cache.entry_path(&digest);
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        assert_eq!(
            fs::metadata(dir.path().join(KEY_FILE)).unwrap().mode() & 0o777,
            0o600
        );

        // A flipped byte in the payload.
        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        fs::write(&path, &bytes).unwrap();
        assert!(matches!(cache.get(&digest), Err(Miss::Rejected(_))));
        assert!(!path.exists(), "a rejected entry is deleted");

        // Truncated.
        cache.put(&digest, b"payload").unwrap();
        fs::write(&path, &fs::read(&path).unwrap()[..20]).unwrap();
        assert!(matches!(cache.get(&digest), Err(Miss::Rejected(_))));

        // Another key (another cache's entry copied in).
        cache.put(&digest, b"payload").unwrap();
        let other = tempfile::tempdir().unwrap();
        let other_cache = DiskCache::open(other.path(), &engine()).unwrap();
        other_cache.put(&digest, b"evil").unwrap();
        fs::copy(other_cache.entry_path(&digest), &path).unwrap();
        assert!(matches!(cache.get(&digest), Err(Miss::Rejected(_))));

        // The key persists across opens.
        cache.put(&digest, b"payload").unwrap();
        let again = DiskCache::open(dir.path(), &engine()).unwrap();
        assert_eq!(again.get(&digest).unwrap(), b"payload");
    }

    #[test]
    fn stale_files_are_recognised() {
        let ours = "0".repeat(32);
        let other = "f".repeat(32);
        let digest = "ab".repeat(32);
        let entry = |engine: &str| format!("{digest}-{engine}.{EXTENSION}");
        assert_eq!(classify(&entry(&ours), &ours), Some(Stale::Own));
        assert_eq!(classify(&entry(&other), &ours), Some(Stale::OtherEngine));
        assert_eq!(
            classify(&format!(".{}.1a2b.tmp", entry(&ours)), &ours),
            Some(Stale::Temp)
        );
        for foreign in [KEY_FILE, "notes.txt", "ab-cd.cwasm", ".hidden", "x.cwasm"] {
            assert_eq!(classify(foreign, &ours), None, "{foreign}");
        }
    }

    #[test]
    fn opening_prunes_old_entries_of_other_engines() {
        let dir = tempfile::tempdir().unwrap();
        let cache = DiskCache::open(dir.path(), &engine()).unwrap();
        let digest = "ab".repeat(32);
        cache.put(&digest, b"payload").unwrap();
        let other_engine = if cache.compat.starts_with('f') {
            "e"
        } else {
            "f"
        }
        .repeat(32);
        let write_aged = |name: &str, age: std::time::Duration| {
            let path = dir.path().join(name);
            fs::write(&path, b"x").unwrap();
            let file = OpenOptions::new().write(true).open(&path).unwrap();
            file.set_modified(std::time::SystemTime::now() - age)
                .unwrap();
            path
        };
        let week = OTHER_ENGINE_STALE + std::time::Duration::from_secs(60);
        let old_other = write_aged(&format!("{digest}-{other_engine}.{EXTENSION}"), week);
        let new_other = write_aged(
            &format!("{}-{other_engine}.{EXTENSION}", "cd".repeat(32)),
            std::time::Duration::from_secs(60),
        );
        let old_temp = write_aged(
            &format!(".{digest}-x.{EXTENSION}.00ff.tmp"),
            TEMP_STALE + std::time::Duration::from_secs(60),
        );
        let foreign = write_aged("README", week);
        // Our own entry, however old, stays.
        let own = cache.entry_path(&digest);
        OpenOptions::new()
            .write(true)
            .open(&own)
            .unwrap()
            .set_modified(std::time::SystemTime::now() - week)
            .unwrap();

        let reopened = DiskCache::open(dir.path(), &engine()).unwrap();
        assert!(!old_other.exists());
        assert!(!old_temp.exists());
        assert!(new_other.exists(), "a recent entry of another engine stays");
        assert!(foreign.exists(), "files the cache did not write stay");
        assert_eq!(reopened.get(&digest).unwrap(), b"payload");
    }

    #[test]
    fn opening_prunes_long_unused_entries_and_keeps_the_size_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let cache = DiskCache::open(dir.path(), &engine()).unwrap();
        let age = |digest: &str, age: std::time::Duration| {
            OpenOptions::new()
                .write(true)
                .open(cache.entry_path(digest))
                .unwrap()
                .set_modified(std::time::SystemTime::now() - age)
                .unwrap();
        };
        let minutes = |m: u64| std::time::Duration::from_secs(60 * m);
        let (unused, oldest, older, recent) = (
            "a1".repeat(32),
            "b2".repeat(32),
            "c3".repeat(32),
            "d4".repeat(32),
        );
        for d in [&unused, &oldest, &older, &recent] {
            cache.put(d, &[7u8; 1000]).unwrap();
        }
        age(&unused, OWN_UNUSED + minutes(1));
        age(&oldest, minutes(30));
        age(&older, minutes(20));
        age(&recent, minutes(10));
        // A hit counts as a use: `oldest` becomes the most recent.
        let reopened = DiskCache::open(dir.path(), &engine()).unwrap();
        assert!(
            matches!(reopened.get(&unused), Err(Miss::Absent)),
            "unused for 30 days"
        );
        assert_eq!(reopened.get(&oldest).unwrap(), [7u8; 1000]);
        // Room for two entries (each is 1000 bytes plus the header):
        // the least recently used goes.
        let bounded = DiskCache::open_with_limit(dir.path(), &engine(), 2100).unwrap();
        assert!(matches!(bounded.get(&older), Err(Miss::Absent)));
        assert!(bounded.get(&recent).is_ok());
        assert!(bounded.get(&oldest).is_ok());
    }

    #[test]
    fn readable_key_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let cache = DiskCache::open(dir.path(), &engine()).unwrap();
        let digest = "cd".repeat(32);
        cache.put(&digest, b"payload").unwrap();
        fs::set_permissions(dir.path().join(KEY_FILE), fs::Permissions::from_mode(0o644)).unwrap();
        let reopened = DiskCache::open(dir.path(), &engine()).unwrap();
        assert!(matches!(reopened.get(&digest), Err(Miss::Rejected(_))));
    }
}
