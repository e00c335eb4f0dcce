//! The lease manager: one task that keeps every fetched secret and the
//! token alive, and tells its owner (the agent, the operator) what to do
//! through a channel of [`LeaseEvent`]s.
//!
//! - renewable leases are renewed at about 2/3 of their TTL, with jitter;
//! - when Vault grants less than asked (the lease reaches its max TTL, or
//!   the grant's TTL cap), when a lease is not renewable, when renewal fails
//!   for good, when a certificate nears its NotAfter or a static secret is
//!   due for a refresh, it sends [`LeaseEvent::NeedsRefetch`]; the owner
//!   re-fetches through the pipeline (which hands the new value back here);
//! - while Vault is unreachable it retries with exponential backoff and
//!   jitter, so a lease that survives an outage is renewed, not duplicated;
//! - the token is renewed, or replaced by logging in again when it is not
//!   renewable or reaches its max TTL;
//! - on cancellation (checked first) it revokes leases and the token when
//!   configured, and stops.
//!
//! Every renewal and revocation is audited through the client's auditor,
//! with hashed lease ids.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use keyward_core::{AuditEvent, Engine, Grant, SecretRequest, SecretValue, hash_id};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::backoff::{Backoff, renew_after};
use crate::cert::{Validity, issued_validity};
use crate::client::Vault;
use crate::config::LeaseConfig;
use crate::error::{Error, Result};

/// Why a secret must be fetched again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefetchReason {
    /// The lease reached its max TTL (or the grant's TTL cap).
    MaxTtl,
    /// Renewal was refused (lease expired, revoked, or not found).
    RenewalFailed,
    /// A lease that cannot be renewed is about to expire.
    Expiring,
    /// A static secret is due for its periodic re-read.
    Refresh,
    /// A certificate is near its NotAfter.
    CertificateExpiring,
    /// The token its lease belongs to is being replaced.
    TokenReplaced,
    /// The previous fetch failed; try again.
    Retry,
}

impl RefetchReason {
    /// Stable label for logs and metrics.
    pub fn label(self) -> &'static str {
        match self {
            RefetchReason::MaxTtl => "max-ttl",
            RefetchReason::RenewalFailed => "renewal-failed",
            RefetchReason::Expiring => "expiring",
            RefetchReason::Refresh => "refresh",
            RefetchReason::CertificateExpiring => "certificate-expiring",
            RefetchReason::TokenReplaced => "token-replaced",
            RefetchReason::Retry => "retry",
        }
    }
}

/// What the manager tells its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseEvent {
    /// A lease was renewed.
    Renewed {
        /// The secret's key.
        key: String,
        /// SHA-256 of the lease id.
        lease_id_sha256: String,
        /// New TTL.
        ttl: Duration,
    },
    /// Fetch the secret again (through the pipeline) and re-render.
    NeedsRefetch {
        /// The secret's key ([`keyward_core::SecretRef::key`]).
        key: String,
        /// Why.
        reason: RefetchReason,
    },
    /// Renewing a lease failed; it is retried after `retry_in`.
    RenewalFailed {
        /// The secret's key.
        key: String,
        /// Vault was unreachable (keep last-good values).
        unreachable: bool,
        /// What happened.
        detail: String,
        /// Next attempt.
        retry_in: Duration,
    },
    /// The token was renewed.
    TokenRenewed {
        /// New TTL.
        ttl: Duration,
    },
    /// The manager logged in again.
    LoggedIn {
        /// TTL of the new token; `None` when it never expires.
        ttl: Option<Duration>,
    },
    /// Renewing or replacing the token failed; retried after `retry_in`.
    TokenFailed {
        /// Vault was unreachable.
        unreachable: bool,
        /// What happened.
        detail: String,
        /// Next attempt.
        retry_in: Duration,
    },
    /// A lease was revoked on request.
    Revoked {
        /// The secret's key.
        key: String,
        /// SHA-256 of the lease id.
        lease_id_sha256: String,
    },
}

/// One tracked secret, as the manager sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseStatus {
    /// The secret's key.
    pub key: String,
    /// `lease`, `static`, `certificate`, `expiring` or `awaiting-refetch`.
    pub kind: &'static str,
    /// SHA-256 of the lease id, if leased.
    pub lease_id_sha256: Option<String>,
    /// Time until the lease (or certificate) expires, if known.
    pub expires_in: Option<Duration>,
    /// Time until the manager acts on it next.
    pub next_action_in: Duration,
    /// Failed attempts in a row.
    pub failures: u32,
}

/// What happened at shutdown.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Leases revoked.
    pub revoked: usize,
    /// Leases whose revocation failed.
    pub failed: usize,
    /// The token was revoked.
    pub token_revoked: bool,
}

/// A fetched secret handed to the manager.
#[derive(Clone)]
pub(crate) struct Tracked {
    key: String,
    reference: String,
    kind: TrackKind,
    cap: Option<Duration>,
    /// Lease of the value this one replaces.
    replaced_lease: Option<String>,
}

#[derive(Clone)]
enum TrackKind {
    Lease {
        id: String,
        ttl: Duration,
        renewable: bool,
    },
    Static,
    Certificate(Validity, Option<String>),
    Expiring(Duration),
    None,
}

impl Tracked {
    pub(crate) fn new(
        key: String,
        request: &SecretRequest,
        grant: &Grant,
        value: &SecretValue,
        previous: Option<&SecretValue>,
    ) -> Tracked {
        let data = value.data.expose();
        let ttl = Duration::from_secs(value.lease_duration);
        let kind = match request.engine {
            Engine::Pki => match issued_validity(data) {
                Some(v) => Certificate(
                    v,
                    (!value.lease_id.is_empty()).then(|| value.lease_id.clone()),
                ),
                None => TrackKind::None,
            },
            _ if !value.lease_id.is_empty() => TrackKind::Lease {
                id: value.lease_id.clone(),
                ttl,
                renewable: value.renewable,
            },
            Engine::Database => match data.get("ttl").and_then(serde_json::Value::as_u64) {
                Some(secs) if secs > 0 => TrackKind::Expiring(Duration::from_secs(secs)),
                _ => TrackKind::Static,
            },
            Engine::Kv1 | Engine::Kv2 => TrackKind::Static,
            Engine::Generic if request.parameters.is_empty() => TrackKind::Static,
            _ => TrackKind::None,
        };
        use TrackKind::Certificate;
        Tracked {
            key,
            reference: request.full_path(),
            kind,
            cap: grant.max_ttl_seconds.map(Duration::from_secs),
            replaced_lease: previous
                .filter(|p| !p.lease_id.is_empty() && p.lease_id != value.lease_id)
                .map(|p| p.lease_id.clone()),
        }
    }
}

enum Command {
    Track(Box<Tracked>),
    FetchFailed {
        key: String,
        unreachable: bool,
    },
    Revoke {
        key: String,
        reply: oneshot::Sender<Result<()>>,
    },
    Forget {
        key: String,
    },
    Status {
        reply: oneshot::Sender<Vec<LeaseStatus>>,
    },
}

/// Handle to the lease manager task. Cloning is cheap.
#[derive(Clone)]
pub struct Leases {
    tx: mpsc::UnboundedSender<Command>,
    cancel: CancellationToken,
    task: Arc<tokio::sync::Mutex<Option<JoinHandle<ShutdownReport>>>>,
}

impl std::fmt::Debug for Leases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leases")
            .field("stopped", &self.cancel.is_cancelled())
            .finish()
    }
}

impl Leases {
    /// Start the manager for `vault` (settings from its configuration's
    /// `leases`). It stops when `cancel` is cancelled or
    /// [`Leases::shutdown`] is called. Events arrive on the receiver; the
    /// channel closes when the manager stops.
    pub fn start(
        vault: Vault,
        cancel: CancellationToken,
    ) -> (Leases, mpsc::UnboundedReceiver<LeaseEvent>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let config = vault.config().leases.clone();
        let manager = Manager {
            vault,
            config,
            entries: BTreeMap::new(),
            events: events_tx,
            token: TokenPlan::default(),
        };
        let task = tokio::spawn(manager.run(rx, cancel.clone()));
        (
            Leases {
                tx,
                cancel,
                task: Arc::new(tokio::sync::Mutex::new(Some(task))),
            },
            events_rx,
        )
    }

    pub(crate) fn track(&self, tracked: Tracked) {
        let _ = self.tx.send(Command::Track(Box::new(tracked)));
    }

    pub(crate) fn fetch_failed(&self, key: &str, unreachable: bool) {
        let _ = self.tx.send(Command::FetchFailed {
            key: key.to_string(),
            unreachable,
        });
    }

    /// Revoke the lease of `key` now and stop tracking it (a deleted
    /// workload, a removed binding).
    pub async fn revoke(&self, key: &str) -> Result<()> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Revoke {
                key: key.to_string(),
                reply,
            })
            .map_err(|_| Error::LeasesStopped)?;
        rx.await.map_err(|_| Error::LeasesStopped)?
    }

    /// Stop tracking `key` without revoking anything.
    pub fn forget(&self, key: &str) {
        let _ = self.tx.send(Command::Forget {
            key: key.to_string(),
        });
    }

    /// What is tracked, for `/metrics` and diagnostics.
    pub async fn status(&self) -> Result<Vec<LeaseStatus>> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Status { reply })
            .map_err(|_| Error::LeasesStopped)?;
        rx.await.map_err(|_| Error::LeasesStopped)
    }

    /// Cancel the manager and wait for it: leases and the token are
    /// revoked first when configured.
    pub async fn shutdown(&self) -> ShutdownReport {
        self.cancel.cancel();
        let task = self.task.lock().await.take();
        match task {
            Some(task) => task.await.unwrap_or_default(),
            None => ShutdownReport::default(),
        }
    }
}

/// One tracked key.
struct Entry {
    reference: String,
    state: State,
    due: Instant,
    backoff: Backoff,
    /// Hard end: the grant's TTL cap, or the expiry of the token the lease
    /// belongs to when that token is being replaced.
    cap_at: Option<Instant>,
    /// Lease id, if any (also for certificates issued with a lease).
    lease: Option<String>,
    expires: Option<Instant>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Renew at `due`; `increment` is the TTL asked for.
    Lease { increment: Duration },
    /// Signal a re-fetch at `due`.
    Refetch(RefetchReason),
    /// Signalled; waiting for the new value (or a failure report).
    Awaiting(RefetchReason),
}

#[derive(Default)]
struct TokenPlan {
    /// (generation, since) the plan was made for.
    made_for: Option<(u64, Instant)>,
    due: Option<Instant>,
    relogin: bool,
    /// The last renewal got less than asked: log in next time.
    at_max: bool,
    backoff: Option<Backoff>,
    /// Expiry of the token the current plan is for.
    expires: Option<Instant>,
}

struct Manager {
    vault: Vault,
    config: LeaseConfig,
    entries: BTreeMap<String, Entry>,
    events: mpsc::UnboundedSender<LeaseEvent>,
    token: TokenPlan,
}

/// Grace under which a renewal counts as "less than asked".
const SHORT_GRACE: Duration = Duration::from_secs(1);

impl Manager {
    async fn run(
        mut self,
        mut rx: mpsc::UnboundedReceiver<Command>,
        cancel: CancellationToken,
    ) -> ShutdownReport {
        let vault = self.vault.clone();
        loop {
            self.plan_token();
            let next = self.next_due();
            tokio::select! {
                biased;
                _ = cancel.cancelled() => break,
                cmd = rx.recv() => match cmd {
                    Some(cmd) => self.command(cmd).await,
                    None => {
                        // Every handle is gone: nobody can consume events.
                        break;
                    }
                },
                _ = vault.token_changed().notified() => {}
                _ = sleep_until_opt(next) => {
                    if cancel.is_cancelled() {
                        break;
                    }
                    self.work(&cancel).await;
                }
            }
        }
        self.shutdown().await
    }

    fn next_due(&self) -> Option<Instant> {
        let entries = self.entries.values().map(|e| e.due).min();
        match (entries, self.token.due) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn emit(&self, event: LeaseEvent) {
        let _ = self.events.send(event);
    }

    fn new_backoff(&self) -> Backoff {
        Backoff::new(self.config.backoff_min, self.config.backoff_max)
    }

    /// Make a plan for the current token if it changed.
    fn plan_token(&mut self) {
        let Some(state) = self.vault.token_state() else {
            self.token.made_for = None;
            self.token.due = None;
            return;
        };
        let key = (state.generation, state.since);
        if self.token.made_for == Some(key) {
            return;
        }
        if let Some((old_generation, _)) = self.token.made_for
            && old_generation != state.generation
        {
            // A new token: leases of the old one die with it.
            self.token.at_max = false;
            if let Some(old_expiry) = self.token.expires {
                let now = Instant::now();
                for e in self.entries.values_mut() {
                    if e.lease.is_some() {
                        let cap = e.cap_at.map_or(old_expiry, |c| c.min(old_expiry));
                        e.cap_at = Some(cap);
                        let act = now
                            + renew_after(
                                cap.saturating_duration_since(now),
                                self.config.renew_fraction,
                                0.0,
                            );
                        if act < e.due {
                            e.due = act;
                            e.state = State::Refetch(RefetchReason::TokenReplaced);
                        }
                    }
                }
            }
        }
        self.token.made_for = Some(key);
        self.token.expires = state.expires_at();
        self.token.backoff = None;
        if state.ttl.is_zero() {
            self.token.due = None;
            return;
        }
        self.token.relogin = !state.renewable || self.token.at_max;
        self.token.due = Some(
            state.since + renew_after(state.ttl, self.config.renew_fraction, self.config.jitter),
        );
    }

    async fn command(&mut self, cmd: Command) {
        match cmd {
            Command::Track(t) => self.track(*t).await,
            Command::FetchFailed { key, unreachable } => {
                if let Some(Entry {
                    state: State::Lease { .. },
                    ..
                }) = self.entries.get(&key)
                {
                    // A live lease is still being renewed: keep it (asking
                    // for a re-fetch would create a second lease).
                    return;
                }
                let backoff = self.new_backoff();
                let entry = self.entries.entry(key.clone()).or_insert_with(|| Entry {
                    reference: key.clone(),
                    state: State::Awaiting(RefetchReason::Retry),
                    due: Instant::now(),
                    backoff,
                    cap_at: None,
                    lease: None,
                    expires: None,
                });
                let delay = entry.backoff.next_delay();
                entry.due = Instant::now() + delay;
                entry.state = State::Refetch(RefetchReason::Retry);
                tracing::debug!(
                    key = %key,
                    unreachable,
                    retry_in_ms = delay.as_millis() as u64,
                    "fetch failed; will ask again"
                );
            }
            Command::Revoke { key, reply } => {
                let result = match self.entries.remove(&key) {
                    Some(Entry {
                        lease: Some(id),
                        reference,
                        ..
                    }) => {
                        let r = self.revoke_one(&reference, &id).await;
                        if r.is_ok() {
                            self.emit(LeaseEvent::Revoked {
                                key: key.clone(),
                                lease_id_sha256: hash_id(&id).unwrap_or_default(),
                            });
                        }
                        r
                    }
                    _ => Ok(()),
                };
                let _ = reply.send(result);
            }
            Command::Forget { key } => {
                self.entries.remove(&key);
            }
            Command::Status { reply } => {
                let now = Instant::now();
                let status = self
                    .entries
                    .iter()
                    .map(|(key, e)| LeaseStatus {
                        key: key.clone(),
                        kind: match e.state {
                            State::Lease { .. } => "lease",
                            State::Refetch(RefetchReason::Refresh) => "static",
                            State::Refetch(RefetchReason::CertificateExpiring) => "certificate",
                            State::Refetch(_) => "expiring",
                            State::Awaiting(_) => "awaiting-refetch",
                        },
                        lease_id_sha256: e.lease.as_deref().and_then(hash_id),
                        expires_in: e.expires.map(|x| x.saturating_duration_since(now)),
                        next_action_in: e.due.saturating_duration_since(now),
                        failures: e.backoff.attempts(),
                    })
                    .collect();
                let _ = reply.send(status);
            }
        }
    }

    async fn track(&mut self, t: Tracked) {
        let now = Instant::now();
        let previous = self.entries.remove(&t.key);
        let was_awaiting = previous.as_ref().is_some_and(|p| {
            matches!(p.state, State::Awaiting(_) | State::Refetch(_)) && p.lease.is_some()
        });
        if let Some(old) = t.replaced_lease.as_deref()
            && self.config.revoke_replaced
        {
            let _ = self.revoke_one(&t.reference, old).await;
        }
        let cap_at = t.cap.map(|c| now + c);
        let cfg = &self.config;
        let (state, due, lease, expires) = match t.kind {
            TrackKind::None => return,
            TrackKind::Lease { id, ttl, renewable } => {
                if was_awaiting {
                    self.vault.auditor().record(AuditEvent::Renewal {
                        reference: t.key.clone(),
                        lease_id_sha256: hash_id(&id),
                        ttl_seconds: ttl.as_secs(),
                        outcome: "re-fetched".into(),
                    });
                }
                let life = match cap_at {
                    Some(cap) => ttl.min(cap.saturating_duration_since(now)),
                    None => ttl,
                };
                let due = now + renew_after(life, cfg.renew_fraction, cfg.jitter);
                // A cap shorter than the TTL is handled at renewal time:
                // the increment shrinks to what is left, then re-fetch.
                let state = if renewable && !ttl.is_zero() {
                    State::Lease { increment: ttl }
                } else {
                    State::Refetch(RefetchReason::Expiring)
                };
                (state, due, Some(id), Some(now + ttl))
            }
            TrackKind::Static => (
                State::Refetch(RefetchReason::Refresh),
                now + crate::backoff::spread(cfg.static_refresh, cfg.jitter),
                None,
                None,
            ),
            TrackKind::Expiring(ttl) => (
                State::Refetch(RefetchReason::Expiring),
                now + renew_after(ttl, cfg.renew_fraction, cfg.jitter),
                None,
                Some(now + ttl),
            ),
            TrackKind::Certificate(validity, lease) => {
                let mut due = instant_of(validity.at_fraction(cfg.certificate_renew_fraction));
                if due <= now {
                    // Short-lived or back-dated: take the fraction of what
                    // is left, so a fresh certificate is never re-issued
                    // at once.
                    let left = instant_of(validity.not_after).saturating_duration_since(now);
                    due = now + left.mul_f64(cfg.certificate_renew_fraction);
                }
                let due = match cap_at {
                    Some(cap) => due.min(
                        now + renew_after(
                            cap.saturating_duration_since(now),
                            cfg.renew_fraction,
                            0.0,
                        ),
                    ),
                    None => due,
                };
                (
                    State::Refetch(RefetchReason::CertificateExpiring),
                    due,
                    lease,
                    Some(instant_of(validity.not_after)),
                )
            }
        };
        self.entries.insert(
            t.key,
            Entry {
                reference: t.reference,
                state,
                due,
                backoff: self.new_backoff(),
                cap_at,
                lease,
                expires,
            },
        );
    }

    /// Act on everything that is due.
    async fn work(&mut self, cancel: &CancellationToken) {
        let now = Instant::now();
        if self.token.due.is_some_and(|d| d <= now) {
            self.token_work().await;
        }
        let due: Vec<String> = self
            .entries
            .iter()
            .filter(|(_, e)| e.due <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for key in due {
            if cancel.is_cancelled() {
                return;
            }
            self.entry_work(&key, cancel).await;
        }
    }

    async fn token_work(&mut self) {
        let relogin = self.token.relogin;
        let result = if relogin {
            self.vault.login().await.map(|info| {
                self.emit(LeaseEvent::LoggedIn { ttl: info.ttl });
            })
        } else {
            match self.vault.renew_token().await {
                Ok(ttl) => {
                    let asked = self
                        .vault
                        .token_state()
                        .map(|t| t.creation_ttl)
                        .unwrap_or_default();
                    if ttl + SHORT_GRACE < asked {
                        self.token.at_max = true;
                    }
                    self.emit(LeaseEvent::TokenRenewed { ttl });
                    Ok(())
                }
                Err(e) if !e.is_unreachable() => {
                    // Expired, revoked or not renewable after all: log in.
                    tracing::info!(error = %e, "token renewal refused; logging in again");
                    self.vault.login().await.map(|info| {
                        self.emit(LeaseEvent::LoggedIn { ttl: info.ttl });
                    })
                }
                Err(e) => Err(e),
            }
        };
        match result {
            Ok(()) => {
                // The token state changed (new `since` or generation):
                // plan_token() makes the next plan from it.
            }
            Err(e) => {
                let min = self.config.backoff_min;
                let max = self.config.backoff_max;
                let backoff = self
                    .token
                    .backoff
                    .get_or_insert_with(|| Backoff::new(min, max));
                let delay = backoff.next_delay();
                self.token.due = Some(Instant::now() + delay);
                tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "keeping the Vault token alive failed");
                self.emit(LeaseEvent::TokenFailed {
                    unreachable: e.is_unreachable(),
                    detail: e.to_string(),
                    retry_in: delay,
                });
            }
        }
    }

    async fn entry_work(&mut self, key: &str, cancel: &CancellationToken) {
        let Some(entry) = self.entries.get(key) else {
            return;
        };
        let (state, lease, cap_at, reference) = (
            entry.state,
            entry.lease.clone(),
            entry.cap_at,
            entry.reference.clone(),
        );
        let now = Instant::now();
        match state {
            State::Refetch(reason) | State::Awaiting(reason) => {
                let reason = if matches!(state, State::Awaiting(_)) {
                    RefetchReason::Retry
                } else {
                    reason
                };
                if let Some(id) = &lease {
                    self.vault.auditor().record(AuditEvent::Renewal {
                        reference: key.to_string(),
                        lease_id_sha256: hash_id(id),
                        ttl_seconds: 0,
                        outcome: "re-fetch".into(),
                    });
                }
                self.emit(LeaseEvent::NeedsRefetch {
                    key: key.to_string(),
                    reason,
                });
                if let Some(e) = self.entries.get_mut(key) {
                    e.state = State::Awaiting(reason);
                    // Safety net: ask again if neither a new value nor a
                    // failure report arrives.
                    e.due = now + self.config.backoff_max.max(Duration::from_secs(30));
                }
            }
            State::Lease { increment } => {
                let Some(id) = lease else {
                    return;
                };
                let increment = match cap_at {
                    Some(cap) => {
                        let left = cap.saturating_duration_since(now);
                        if left < Duration::from_secs(2) {
                            self.signal_refetch(key, RefetchReason::MaxTtl, &id, None);
                            return;
                        }
                        increment.min(left)
                    }
                    None => increment,
                };
                let renewed = tokio::select! {
                    biased;
                    _ = cancel.cancelled() => return,
                    r = self.vault.renew_lease(&id, Some(increment)) => r,
                };
                let hashed = hash_id(&id).unwrap_or_default();
                match renewed {
                    Ok(r) => {
                        let ttl = Duration::from_secs(r.lease_duration);
                        self.vault.auditor().record(AuditEvent::Renewal {
                            reference: key.to_string(),
                            lease_id_sha256: Some(hashed.clone()),
                            ttl_seconds: ttl.as_secs(),
                            outcome: "renewed".into(),
                        });
                        tracing::debug!(key, path = %reference, ttl_seconds = ttl.as_secs(), "lease renewed");
                        self.emit(LeaseEvent::Renewed {
                            key: key.to_string(),
                            lease_id_sha256: hashed,
                            ttl,
                        });
                        let cfg = &self.config;
                        let short = ttl + SHORT_GRACE < increment || !r.renewable || ttl.is_zero();
                        if let Some(e) = self.entries.get_mut(key) {
                            e.backoff.reset();
                            e.expires = Some(now + ttl);
                            e.due = now + renew_after(ttl, cfg.renew_fraction, cfg.jitter);
                            if short {
                                // The next renewal would pass the max TTL.
                                e.state = State::Refetch(RefetchReason::MaxTtl);
                            }
                        }
                    }
                    Err(err) if err.is_unreachable() => {
                        let Some(e) = self.entries.get_mut(key) else {
                            return;
                        };
                        let first = e.backoff.attempts() == 0;
                        let delay = e.backoff.next_delay();
                        e.due = now + delay;
                        if first {
                            self.vault.auditor().record(AuditEvent::Renewal {
                                reference: key.to_string(),
                                lease_id_sha256: Some(hashed),
                                ttl_seconds: 0,
                                outcome: "failed".into(),
                            });
                        }
                        tracing::warn!(key, error = %err, retry_in_ms = delay.as_millis() as u64, "lease renewal failed; Vault unreachable");
                        self.emit(LeaseEvent::RenewalFailed {
                            key: key.to_string(),
                            unreachable: true,
                            detail: err.to_string(),
                            retry_in: delay,
                        });
                    }
                    Err(err) => {
                        tracing::warn!(key, error = %err, "lease renewal refused; re-fetching");
                        let err = Error::LeaseRenewal {
                            key: key.to_string(),
                            lease_id_sha256: hashed,
                            source: Box::new(err),
                        };
                        self.signal_refetch(key, RefetchReason::RenewalFailed, &id, Some(err));
                    }
                }
            }
        }
    }

    fn signal_refetch(
        &mut self,
        key: &str,
        reason: RefetchReason,
        lease_id: &str,
        err: Option<Error>,
    ) {
        self.vault.auditor().record(AuditEvent::Renewal {
            reference: key.to_string(),
            lease_id_sha256: hash_id(lease_id),
            ttl_seconds: 0,
            outcome: if err.is_some() { "failed" } else { "re-fetch" }.into(),
        });
        if let Some(err) = err {
            self.emit(LeaseEvent::RenewalFailed {
                key: key.to_string(),
                unreachable: false,
                detail: err.to_string(),
                retry_in: Duration::ZERO,
            });
        }
        self.emit(LeaseEvent::NeedsRefetch {
            key: key.to_string(),
            reason,
        });
        let wait = self.config.backoff_max.max(Duration::from_secs(30));
        if let Some(e) = self.entries.get_mut(key) {
            e.state = State::Awaiting(reason);
            e.due = Instant::now() + wait;
        }
    }

    async fn revoke_one(&self, reference: &str, lease_id: &str) -> Result<()> {
        let result = self.vault.revoke_lease(lease_id).await;
        self.vault.auditor().record(AuditEvent::Revocation {
            reference: reference.to_string(),
            lease_id_sha256: hash_id(lease_id),
            outcome: if result.is_ok() { "revoked" } else { "failed" }.into(),
        });
        result
    }

    async fn shutdown(mut self) -> ShutdownReport {
        let mut report = ShutdownReport::default();
        if self.config.revoke_on_shutdown {
            let entries = std::mem::take(&mut self.entries);
            for (key, e) in entries {
                let Some(id) = e.lease else { continue };
                let revoke =
                    tokio::time::timeout(Duration::from_secs(10), self.revoke_one(&key, &id));
                match revoke.await {
                    Ok(Ok(())) => report.revoked += 1,
                    Ok(Err(err)) => {
                        tracing::warn!(key = %key, error = %err, "revoking a lease at shutdown failed");
                        report.failed += 1;
                    }
                    Err(_) => {
                        tracing::warn!(key = %key, "revoking a lease at shutdown timed out");
                        report.failed += 1;
                    }
                }
            }
        }
        if self.config.revoke_token_on_shutdown {
            match tokio::time::timeout(Duration::from_secs(10), self.vault.revoke_token()).await {
                Ok(Ok(())) => report.token_revoked = true,
                Ok(Err(err)) => {
                    tracing::warn!(error = %err, "revoking the token at shutdown failed")
                }
                Err(_) => tracing::warn!("revoking the token at shutdown timed out"),
            }
        }
        report
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// A wall-clock time as a monotonic instant.
fn instant_of(t: SystemTime) -> Instant {
    let now_sys = SystemTime::now();
    let now = Instant::now();
    match t.duration_since(now_sys) {
        Ok(ahead) => now + ahead,
        Err(_) => now,
    }
}
