//! `/healthz`, `/readyz` and `/metrics` on a loopback port.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};

/// The agent's state as health checks and metrics see it. Label sets are
/// bounded: outcomes only, never pod names or paths.
#[derive(Debug)]
pub struct Status {
    started: Instant,
    ready: AtomicBool,
    renders: AtomicU64,
    render_errors: AtomicU64,
    files_written: AtomicU64,
    renewals_ok: AtomicU64,
    renewals_failed: AtomicU64,
    refetches: AtomicU64,
    revocations: AtomicU64,
    vault_errors: AtomicU64,
    last_success_unix: AtomicU64,
}

impl Default for Status {
    fn default() -> Self {
        Status {
            started: Instant::now(),
            ready: AtomicBool::new(false),
            renders: AtomicU64::new(0),
            render_errors: AtomicU64::new(0),
            files_written: AtomicU64::new(0),
            renewals_ok: AtomicU64::new(0),
            renewals_failed: AtomicU64::new(0),
            refetches: AtomicU64::new(0),
            revocations: AtomicU64::new(0),
            vault_errors: AtomicU64::new(0),
            last_success_unix: AtomicU64::new(0),
        }
    }
}

/// Counters the agent bumps.
#[derive(Debug, Clone, Copy)]
pub enum Counter {
    /// A complete render of every binding.
    Render,
    /// A failed render.
    RenderError,
    /// A file (re)written.
    FileWritten,
    /// A lease renewed.
    RenewalOk,
    /// A renewal failed.
    RenewalFailed,
    /// A secret re-fetched.
    Refetch,
    /// A lease revoked.
    Revocation,
    /// Vault unreachable or erroring.
    VaultError,
}

impl Status {
    /// Bump a counter.
    pub fn inc(&self, c: Counter) {
        let a = match c {
            Counter::Render => &self.renders,
            Counter::RenderError => &self.render_errors,
            Counter::FileWritten => &self.files_written,
            Counter::RenewalOk => &self.renewals_ok,
            Counter::RenewalFailed => &self.renewals_failed,
            Counter::Refetch => &self.refetches,
            Counter::Revocation => &self.revocations,
            Counter::VaultError => &self.vault_errors,
        };
        a.fetch_add(1, Ordering::Relaxed);
    }

    /// Mark the first complete render (and every later success).
    pub fn mark_success(&self) {
        self.ready.store(true, Ordering::Release);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        self.last_success_unix.store(now, Ordering::Relaxed);
    }

    /// Ready after the first complete render.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Seconds since the last successful render from fresh Vault data.
    pub fn staleness_seconds(&self) -> f64 {
        let last = self.last_success_unix.load(Ordering::Relaxed);
        if last == 0 {
            return 0.0;
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(last);
        now.saturating_sub(last) as f64
    }

    /// Prometheus text exposition.
    pub fn render_metrics(&self) -> String {
        let mut out = String::new();
        let mut counter = |name: &str, help: &str, labels: &[(&str, u64)]| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (label, v) in labels {
                if label.is_empty() {
                    let _ = writeln!(out, "{name} {v}");
                } else {
                    let _ = writeln!(out, "{name}{{{label}}} {v}");
                }
            }
        };
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        counter(
            "keyward_agent_renders_total",
            "Complete renders of every binding.",
            &[("", g(&self.renders))],
        );
        counter(
            "keyward_agent_render_errors_total",
            "Failed renders.",
            &[("", g(&self.render_errors))],
        );
        counter(
            "keyward_agent_files_written_total",
            "Files written or replaced.",
            &[("", g(&self.files_written))],
        );
        counter(
            "keyward_agent_lease_renewals_total",
            "Lease and token renewals by outcome.",
            &[
                ("outcome=\"ok\"", g(&self.renewals_ok)),
                ("outcome=\"failed\"", g(&self.renewals_failed)),
            ],
        );
        counter(
            "keyward_agent_refetches_total",
            "Secrets fetched again (rotation, max TTL, refresh).",
            &[("", g(&self.refetches))],
        );
        counter(
            "keyward_agent_revocations_total",
            "Leases revoked.",
            &[("", g(&self.revocations))],
        );
        counter(
            "keyward_agent_vault_errors_total",
            "Vault requests that failed.",
            &[("", g(&self.vault_errors))],
        );
        let _ = writeln!(
            out,
            "# HELP keyward_agent_ready Whether the first complete render happened.\n# TYPE keyward_agent_ready gauge\nkeyward_agent_ready {}",
            u8::from(self.is_ready())
        );
        let _ = writeln!(
            out,
            "# HELP keyward_agent_staleness_seconds Seconds since secrets were last refreshed from Vault.\n# TYPE keyward_agent_staleness_seconds gauge\nkeyward_agent_staleness_seconds {}",
            self.staleness_seconds()
        );
        let _ = writeln!(
            out,
            "# HELP keyward_agent_uptime_seconds Seconds since the agent started.\n# TYPE keyward_agent_uptime_seconds gauge\nkeyward_agent_uptime_seconds {:.3}",
            self.started.elapsed().as_secs_f64()
        );
        out
    }
}

/// Serve health and metrics until `cancel` fires. Returns the bound address.
pub(crate) async fn serve(
    addr: SocketAddr,
    status: Arc<Status>,
    cancel: CancellationToken,
) -> Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Listen {
            addr: addr.to_string(),
            source,
        })?;
    let bound = listener.local_addr().map_err(|source| Error::Listen {
        addr: addr.to_string(),
        source,
    })?;
    let app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(status);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(cancel.cancelled_owned())
            .await;
    });
    Ok(bound)
}

async fn readyz(State(status): State<Arc<Status>>) -> impl IntoResponse {
    if status.is_ready() {
        (StatusCode::OK, "ready\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: the first render has not completed\n",
        )
    }
}

async fn metrics(State(status): State<Arc<Status>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        status.render_metrics(),
    )
}
