//! Ports, names, readiness polling.

use std::net::{Ipv4Addr, TcpListener};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rand::Rng;

use crate::error::{Error, Result, io};

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> Result<u16> {
    let l =
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(io("binding a free loopback port"))?;
    Ok(l.local_addr().map_err(io("reading a bound port"))?.port())
}

/// Two consecutive free ports `p` and `p + 1` (OpenBao's dev server puts
/// its cluster listener on the next port).
pub(crate) fn free_port_pair() -> Result<u16> {
    for _ in 0..200 {
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .map_err(io("binding a free loopback port"))?;
        let p = l.local_addr().map_err(io("reading a bound port"))?.port();
        if p == u16::MAX {
            continue;
        }
        if TcpListener::bind((Ipv4Addr::LOCALHOST, p + 1)).is_ok() {
            return Ok(p);
        }
    }
    Err(Error::Io {
        context: "finding two consecutive free loopback ports".into(),
        source: std::io::Error::other("none found in 200 tries"),
    })
}

/// A mount path no other test uses: `<prefix>-<counter>-<random>`.
pub fn unique_mount(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let r: u32 = rand::rng().random();
    format!("{}-{n}-{r:08x}", prefix.trim_matches('/'))
}

/// A random alphanumeric string.
pub(crate) fn random_token(len: usize) -> String {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect()
}

/// Poll `check` every 50 ms (then up to 250 ms) until it returns `Some`,
/// or fail after `timeout`.
pub(crate) async fn poll<T, F, Fut>(timeout: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    let mut interval = Duration::from_millis(50);
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(interval).await;
        interval = (interval * 2).min(Duration::from_millis(250));
    }
}

/// The last `n` lines of a log file.
pub(crate) fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// An HTTP client for plain-http loopback servers (TLS is configured with
/// the ring provider only because the workspace's reqwest has no default
/// provider).
pub(crate) fn http_client() -> Result<reqwest::Client> {
    client_with_roots(rustls::RootCertStore::empty())
}

/// An HTTP client trusting the CA certificates in `ca`.
pub(crate) fn http_client_with_ca(ca: &Path) -> Result<reqwest::Client> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let pem = std::fs::read(ca).map_err(io(format!("reading {}", ca.display())))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem).flatten() {
        let _ = roots.add(cert);
    }
    client_with_roots(roots)
}

fn client_with_roots(roots: rustls::RootCertStore) -> Result<reqwest::Client> {
    let tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| Error::Io {
        context: "configuring TLS".into(),
        source: std::io::Error::other(e.to_string()),
    })?
    .with_root_certificates(roots)
    .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| Error::Io {
            context: "building an HTTP client".into(),
            source: std::io::Error::other(e.to_string()),
        })
}
