//! A deliberately hostile renderer for Keyward's sandbox tests.
//!
//! `render` does what its settings' `mode` says (`{"mode": "loop"}`):
//!
//! | mode | behaviour |
//! |---|---|
//! | `ok` | a normal render: one file `out` (or the target's name) with `ok` |
//! | `loop` | spins forever |
//! | `memory` | allocates and touches 1 MiB chunks forever |
//! | `recursion` | recurses without bound on the wasm stack |
//! | `stack-buffer` | recurses with big frames until the shadow stack in linear memory overflows |
//! | `flood` | writes `bytes` (default 32 MiB) each to stdout and stderr, then renders `ok` |
//! | `big-string` | passes a `bytes`-long (default 100 MiB) string to `log` |
//! | `big-artifact` | returns a `bytes`-long (default 100 MiB) file |
//! | `log-spam` | logs `lines` (default 1,000,000) lines, then renders `ok` |
//! | `leak` | logs, prints and writes to stderr every secret value it got, then renders `ok` |
//! | `trap` | panics (an `unreachable` trap with `panic = "abort"`) |
//! | `exit` | calls `exit(3)` |
//! | `sleep` | sleeps for `ms` milliseconds (default an hour), then renders `ok` |
//! | `tcp` | connects to 127.0.0.1:1; returns the error it gets as `failed` |
//! | `read-passwd` | reads `/etc/passwd`; returns the error it gets as `failed` |
//! | `probe` | renders a JSON file describing what it sees: environment, arguments, filesystem, clock |
//! | `traversal` | returns a file `../../etc/x` |
//! | `bad-env` | returns an env var `1BAD-NAME` |
//! | `remembered` | renders what the last `validate-settings` call kept (empty if none) |
//!
//! `validate-settings` keeps the settings text it got (for `remembered`)
//! and, by their `warmup` key, misbehaves while the host pre-initialises
//! the plugin: `print` writes a line to stdout (opening a WASI stream),
//! `loop` spins forever, `trap` panics; `big-heap` keeps 16 MiB of heap,
//! which the `big-heap` render mode sums up (`<len> <sum>`).

use std::hint::black_box;
use std::io::Write;

#[expect(
    unsafe_code,
    reason = "wit-bindgen's generated glue declares `unsafe extern \"C\"` functions with `export_name`"
)]
mod bindings {
    wit_bindgen::generate!({
        path: "../../../wit",
        world: "renderer",
    });

    use super::Hostile;

    export!(Hostile with_types_in self);
}

use bindings::exports::keyward::plugin::render::{
    Artifact, EnvVar, File, Guest, PluginError, RefKind, RenderRequest, SecretRef,
};
use bindings::keyward::plugin::host::{Level, log};

struct Hostile;

fn settings(raw: &str) -> Result<serde_json::Value, PluginError> {
    serde_json::from_str(raw).map_err(|e| PluginError::InvalidSettings(e.to_string()))
}

fn number(settings: &serde_json::Value, key: &str, default: u64) -> usize {
    usize::try_from(
        settings
            .get(key)
            .and_then(|v| v.as_u64())
            .unwrap_or(default),
    )
    .unwrap_or(usize::MAX)
}

fn ok_artifact(request: &RenderRequest) -> Vec<Artifact> {
    let path = if request.target.name.is_empty() {
        "out".to_string()
    } else {
        request.target.name.clone()
    };
    vec![Artifact::File(File {
        path,
        mode: 0o600,
        contents: b"ok".to_vec(),
    })]
}

/// Deep recursion on the wasm (native) stack: no locals in linear memory.
#[inline(never)]
fn recurse(depth: u64, stop: u64) -> u64 {
    if depth == stop {
        return depth;
    }
    recurse(depth + 1, stop)
        .wrapping_mul(31)
        .wrapping_add(depth)
}

/// Deep recursion with big frames on the shadow stack in linear memory.
#[inline(never)]
fn recurse_buffer(depth: u64) -> u64 {
    let frame = black_box([depth; 64]);
    if black_box(depth) == u64::MAX {
        return 0;
    }
    recurse_buffer(depth + 1).wrapping_add(frame[7])
}

fn string_leaves(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::String(s) => out.push(s.clone()),
        serde_json::Value::Array(items) => items.iter().for_each(|v| string_leaves(v, out)),
        serde_json::Value::Object(map) => map.values().for_each(|v| string_leaves(v, out)),
        _ => {}
    }
}

thread_local! {
    /// What a `big-heap` warm-up kept.
    static BIG_HEAP: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    /// The settings text of the last `validate-settings` call.
    static REMEMBERED: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

impl Guest for Hostile {
    fn validate_settings(raw: String) -> Result<(), PluginError> {
        let s = settings(&raw)?;
        match s.get("warmup").and_then(|w| w.as_str()) {
            Some("print") => println!("warming up"),
            Some("loop") => {
                let mut i = 0u64;
                loop {
                    i = black_box(i.wrapping_add(1));
                }
            }
            Some("trap") => panic!("refusing to warm up"),
            Some("big-heap") => {
                // Keep 16 MiB of non-zero heap, larger than one transfer's
                // fuel, so the snapshot must carry it.
                let heap: Vec<u8> = (0..16usize << 20).map(|i| (i % 251) as u8 + 1).collect();
                BIG_HEAP.with_borrow_mut(|h| *h = heap);
            }
            _ => {}
        }
        REMEMBERED.with_borrow_mut(|r| *r = raw);
        Ok(())
    }

    fn plan(_template: Option<String>, raw: String) -> Result<Vec<SecretRef>, PluginError> {
        let s = settings(&raw)?;
        Ok(s.get("reads")
            .and_then(|r| r.as_array())
            .map(|refs| {
                refs.iter()
                    .filter_map(|r| r.as_str())
                    .map(|r| SecretRef {
                        reference: r.to_string(),
                        parameters: Vec::new(),
                        kind: RefKind::Secret,
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    fn render(request: RenderRequest) -> Result<Vec<Artifact>, PluginError> {
        let s = settings(&request.settings)?;
        let mode = s.get("mode").and_then(|m| m.as_str()).unwrap_or("ok");
        match mode {
            "ok" => Ok(ok_artifact(&request)),
            "big-heap" => Ok(vec![Artifact::File(File {
                path: "big-heap".into(),
                mode: 0o600,
                contents: BIG_HEAP.with_borrow(|h| {
                    let sum: u64 = h.iter().map(|&b| u64::from(b)).sum();
                    format!("{} {sum}", h.len()).into_bytes()
                }),
            })]),
            "remembered" => Ok(vec![Artifact::File(File {
                path: "remembered".into(),
                mode: 0o600,
                contents: REMEMBERED.with_borrow(|r| r.clone().into_bytes()),
            })]),
            "loop" => {
                let mut i = 0u64;
                loop {
                    i = black_box(i.wrapping_add(1));
                }
            }
            "memory" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    let mut chunk = vec![0u8; 1 << 20];
                    for page in chunk.chunks_mut(4096) {
                        page[0] = 1;
                    }
                    hoard.push(black_box(chunk));
                }
            }
            "recursion" => {
                let stop = s.get("stop").and_then(|v| v.as_u64()).unwrap_or(u64::MAX);
                Err(PluginError::Failed(format!("{}", recurse(0, stop))))
            }
            "stack-buffer" => Err(PluginError::Failed(format!("{}", recurse_buffer(0)))),
            "flood" => {
                let total = number(&s, "bytes", 32 << 20);
                let line = [b'x'; 1023];
                let mut out = std::io::stdout().lock();
                let mut err = std::io::stderr().lock();
                let mut written = 0;
                while written < total {
                    // Errors are ignored: a guest that floods does not care.
                    let _ = out.write_all(&line);
                    let _ = out.write_all(b"\n");
                    let _ = err.write_all(&line);
                    let _ = err.write_all(b"\n");
                    written += line.len() + 1;
                }
                let _ = out.flush();
                let _ = err.flush();
                Ok(ok_artifact(&request))
            }
            "big-string" => {
                let big = "x".repeat(number(&s, "bytes", 100 << 20));
                log(Level::Info, &big);
                Ok(ok_artifact(&request))
            }
            "big-artifact" => Ok(vec![Artifact::File(File {
                path: "out".into(),
                mode: 0o600,
                contents: vec![b'x'; number(&s, "bytes", 100 << 20)],
            })]),
            "log-spam" => {
                for i in 0..number(&s, "lines", 1_000_000) {
                    log(Level::Info, &format!("spam line {i}"));
                }
                Ok(ok_artifact(&request))
            }
            "leak" => {
                let mut secrets = Vec::new();
                for secret in &request.secrets {
                    if let Ok(data) = serde_json::from_str::<serde_json::Value>(&secret.data) {
                        string_leaves(&data, &mut secrets);
                    }
                }
                for value in &secrets {
                    log(Level::Warn, &format!("the secret is {value}!"));
                    println!("stdout secret: {value}");
                    eprintln!("stderr secret: {value}");
                }
                Ok(ok_artifact(&request))
            }
            "trap" => panic!("hostile guest panics on purpose"),
            "exit" => std::process::exit(3),
            "sleep" => {
                let ms = number(&s, "ms", 3_600_000) as u64;
                std::thread::sleep(std::time::Duration::from_millis(ms));
                Ok(ok_artifact(&request))
            }
            "tcp" => match std::net::TcpStream::connect("127.0.0.1:1") {
                Ok(_) => Ok(vec![Artifact::File(File {
                    path: "out".into(),
                    mode: 0o600,
                    contents: b"connected".to_vec(),
                })]),
                Err(e) => Err(PluginError::Failed(format!("tcp connect failed: {e}"))),
            },
            "read-passwd" => match std::fs::read("/etc/passwd") {
                Ok(bytes) => Ok(vec![Artifact::File(File {
                    path: "out".into(),
                    mode: 0o600,
                    contents: bytes,
                })]),
                Err(e) => Err(PluginError::Failed(format!("read /etc/passwd failed: {e}"))),
            },
            "probe" => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                let report = serde_json::json!({
                    "env": std::env::vars().count(),
                    "args": std::env::args().count(),
                    "cwd": std::env::current_dir().is_ok(),
                    "root_listing": std::fs::read_dir("/").is_ok(),
                    "dot_listing": std::fs::read_dir(".").is_ok(),
                    "unix_time": now,
                });
                Ok(vec![Artifact::File(File {
                    path: "out".into(),
                    mode: 0o600,
                    contents: report.to_string().into_bytes(),
                })])
            }
            "traversal" => Ok(vec![Artifact::File(File {
                path: "../../etc/x".into(),
                mode: 0o600,
                contents: b"pwned".to_vec(),
            })]),
            "bad-env" => Ok(vec![Artifact::Env(EnvVar {
                name: "1BAD-NAME".into(),
                value: "x".into(),
            })]),
            other => Err(PluginError::InvalidSettings(format!(
                "unknown mode {other:?}"
            ))),
        }
    }
}
