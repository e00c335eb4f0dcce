//! Helpers for Keyward's cross-crate suites: where built components live,
//! and capturing `tracing` output of plugin calls.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// The workspace root (the parent of this crate's directory).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_else(|| unreachable!("tests/ lives inside the workspace"))
}

/// `<workspace>/target/plugins/<name>.wasm`, where `cargo xtask plugins`
/// puts every built plugin and test guest.
pub fn component_path(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    target.join("plugins").join(format!("{name}.wasm"))
}

/// The bytes of a built component. Panics (failing the test, never
/// skipping it) when the component has not been built.
pub fn component(name: &str) -> Vec<u8> {
    let path = component_path(name);
    match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) => panic!(
            "component {name:?} not found at {} ({e}): run `cargo xtask plugins` first",
            path.display()
        ),
    }
}

/// Captures every `tracing` event emitted on this thread (and on threads
/// that carry this thread's dispatcher, as plugin calls do) while alive.
pub struct LogCapture {
    buffer: Arc<Mutex<Vec<u8>>>,
    _guard: tracing::subscriber::DefaultGuard,
}

impl std::fmt::Debug for LogCapture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogCapture").finish_non_exhaustive()
    }
}

#[derive(Clone)]
struct Writer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Writer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogCapture {
    /// Start capturing Keyward's own events (targets `keyward*`, which
    /// includes plugin output under `keyward::plugin`) at every level.
    /// Wasmtime's per-hostcall trace events are left out.
    pub fn start() -> LogCapture {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = Writer(buffer.clone());
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("keyward=trace"))
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        LogCapture {
            buffer,
            _guard: tracing::subscriber::set_default(subscriber),
        }
    }

    /// Everything captured so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.buffer.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }

    /// Forget what was captured so far.
    pub fn clear(&self) {
        self.buffer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}
