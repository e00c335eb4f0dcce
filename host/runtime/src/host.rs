//! Per-call store state: the denied-everything WASI context, bounded
//! stdout/stderr, the rate-limited and redacted `log` import, the memory
//! limiter and the sleep bound.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use wasmtime::ResourceLimiter;
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::clocks::WasiClocksCtxView;
use wasmtime_wasi::p2::bindings::clocks::monotonic_clock;
use wasmtime_wasi::p2::{DynPollable, OutputStream, Pollable, StreamResult};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::bindings::{Plugins, host, types};
use crate::config::PluginLimits;
use crate::redact::{Redactor, truncate_at_boundary};

/// Longest log line emitted; the rest is cut (after redaction).
pub(crate) const MAX_LOG_LINE: usize = 1024;

/// Largest `wasi:random` request served.
const MAX_RANDOM_BYTES: u64 = 1 << 20;

/// Most table elements any table may grow to.
const MAX_TABLE_ELEMENTS: usize = 1_000_000;

/// Why a host-side check stopped the call (set before the host returns an
/// error into the guest, read when the call's error is classified).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HostStop {
    /// Memory growth beyond the plugin's limit.
    Memory { desired: usize, limit: usize },
    /// A sleep that would outlast the call's deadline.
    Sleep { requested: Duration },
}

/// The marker error host functions return; details are in [`HostStop`].
#[derive(Debug)]
pub(crate) struct Stopped;

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("stopped by the Keyward sandbox")
    }
}

impl std::error::Error for Stopped {}

/// Store data of one call.
pub(crate) struct HostState {
    table: ResourceTable,
    /// Built on the first WASI call: most calls make none (a plugin that
    /// neither prints nor asks for the time or randomness), and building
    /// one seeds random generators and clocks.
    wasi: Option<WasiCtx>,
    limiter: Limiter,
    pub(crate) log: LogSink,
    pub(crate) stdout: CapturePipe,
    pub(crate) stderr: CapturePipe,
    /// Wall-clock deadline of the call (bounds sleeps).
    deadline: Instant,
    pub(crate) stop: Option<HostStop>,
}

impl HostState {
    pub(crate) fn new(
        plugin: Arc<str>,
        limits: &PluginLimits,
        deadline: Instant,
        redactor: Arc<Redactor>,
    ) -> Self {
        let stdout = CapturePipe::new(limits.output_bytes);
        let stderr = CapturePipe::new(limits.output_bytes);
        HostState {
            table: ResourceTable::new(),
            wasi: None,
            limiter: Limiter {
                limit: limits.memory_bytes,
                used: 0,
                hit: None,
            },
            log: LogSink {
                plugin,
                max_lines: limits.log_lines,
                emitted: 0,
                dropped: 0,
                redactor,
            },
            stdout,
            stderr,
            deadline,
            stop: None,
        }
    }

    pub(crate) fn limiter(&mut self) -> &mut dyn ResourceLimiter {
        &mut self.limiter
    }

    /// Whether any WASI resource (stream, pollable, descriptor, ...) is
    /// alive in this call's table.
    pub(crate) fn holds_resources(&self) -> bool {
        !self.table.is_empty()
    }

    /// The reason a host-side check stopped the call, if one did.
    pub(crate) fn take_stop(&mut self) -> Option<HostStop> {
        self.stop.take().or_else(|| {
            self.limiter
                .hit
                .take()
                .map(|(desired, limit)| HostStop::Memory { desired, limit })
        })
    }
}

/// The WASI context of a call: no preopened directories, no environment,
/// no arguments (all absent unless added); stdin is empty; stdout and
/// stderr are the call's capture pipes; sockets are refused both by
/// protocol and by address.
fn wasi_ctx(stdout: &CapturePipe, stderr: &CapturePipe) -> WasiCtx {
    let mut builder = WasiCtxBuilder::new();
    builder
        .stdout(stdout.clone())
        .stderr(stderr.clone())
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .socket_addr_check(|_, _| Box::pin(async { false }))
        .max_random_size(MAX_RANDOM_BYTES);
    builder.build()
}

/// The call's WASI context, built on first use. A function of the fields
/// rather than a method, so that callers can borrow the resource table
/// alongside it.
fn lazy_wasi<'a>(
    slot: &'a mut Option<WasiCtx>,
    stdout: &CapturePipe,
    stderr: &CapturePipe,
) -> &'a mut WasiCtx {
    slot.get_or_insert_with(|| wasi_ctx(stdout, stderr))
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: lazy_wasi(&mut self.wasi, &self.stdout, &self.stderr),
            table: &mut self.table,
        }
    }
}

/// Link WASI (denied at call time), the sleep bound and the `host`
/// interface.
pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_sync(linker)?;
    // Replace `wasi:clocks/monotonic-clock` so that no sleep can outlast the
    // call's deadline: epoch interruption only stops wasm code, not a host
    // blocked in `poll`.
    linker.allow_shadowing(true);
    monotonic_clock::add_to_linker::<HostState, BoundedClock>(linker, |s| BoundedClockView {
        inner: WasiClocksCtxView {
            ctx: lazy_wasi(&mut s.wasi, &s.stdout, &s.stderr).clocks(),
            table: &mut s.table,
        },
        deadline: s.deadline,
        stop: &mut s.stop,
    })?;
    linker.allow_shadowing(false);
    Plugins::add_to_linker::<HostState, wasmtime::component::HasSelf<HostState>>(linker, |s| s)?;
    Ok(())
}

struct BoundedClock;

impl HasData for BoundedClock {
    type Data<'a> = BoundedClockView<'a>;
}

struct BoundedClockView<'a> {
    inner: WasiClocksCtxView<'a>,
    deadline: Instant,
    stop: &'a mut Option<HostStop>,
}

impl BoundedClockView<'_> {
    fn check(&mut self, requested: Duration) -> wasmtime::Result<()> {
        let remaining = self.deadline.saturating_duration_since(Instant::now());
        if requested > remaining {
            *self.stop = Some(HostStop::Sleep { requested });
            return Err(Stopped.into());
        }
        Ok(())
    }
}

impl monotonic_clock::Host for BoundedClockView<'_> {
    fn now(&mut self) -> wasmtime::Result<monotonic_clock::Instant> {
        monotonic_clock::Host::now(&mut self.inner)
    }

    fn resolution(&mut self) -> wasmtime::Result<monotonic_clock::Duration> {
        monotonic_clock::Host::resolution(&mut self.inner)
    }

    fn subscribe_instant(
        &mut self,
        when: monotonic_clock::Instant,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        let now = monotonic_clock::Host::now(&mut self.inner)?;
        self.check(Duration::from_nanos(when.saturating_sub(now)))?;
        monotonic_clock::Host::subscribe_instant(&mut self.inner, when)
    }

    fn subscribe_duration(
        &mut self,
        duration: monotonic_clock::Duration,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        self.check(Duration::from_nanos(duration))?;
        monotonic_clock::Host::subscribe_duration(&mut self.inner, duration)
    }
}

/// Memory cap over all memories of the instance, trapping on growth
/// beyond it.
struct Limiter {
    limit: usize,
    used: usize,
    /// (desired total, limit) of the growth that was refused.
    hit: Option<(usize, usize)>,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if maximum.is_some_and(|max| desired > max) {
            // The module's own declared maximum: a normal `-1` from
            // memory.grow, as the spec says.
            return Ok(false);
        }
        let total = self.used.saturating_add(desired.saturating_sub(current));
        if total > self.limit {
            self.hit = Some((total, self.limit));
            return Err(Stopped.into());
        }
        self.used = total;
        Ok(true)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        // The allocator could not provide the memory (e.g. a pool slot
        // smaller than the limit): as much a memory limit as ours.
        self.hit.get_or_insert((self.used, self.limit));
        Err(error.context(Stopped))
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS && maximum.is_none_or(|max| desired <= max))
    }
}

/// The `log` import: rate-limited, redacted, truncated, emitted as
/// `tracing` events under target `keyward::plugin`.
pub(crate) struct LogSink {
    plugin: Arc<str>,
    max_lines: usize,
    emitted: usize,
    pub(crate) dropped: u64,
    redactor: Arc<Redactor>,
}

impl LogSink {
    fn emit(&mut self, level: host::Level, message: &str) {
        if self.emitted >= self.max_lines {
            self.dropped += 1;
            return;
        }
        self.emitted += 1;
        let enabled = match level {
            host::Level::Trace => {
                tracing::enabled!(target: "keyward::plugin", tracing::Level::TRACE)
            }
            host::Level::Debug => {
                tracing::enabled!(target: "keyward::plugin", tracing::Level::DEBUG)
            }
            host::Level::Info => tracing::enabled!(target: "keyward::plugin", tracing::Level::INFO),
            host::Level::Warn => tracing::enabled!(target: "keyward::plugin", tracing::Level::WARN),
            host::Level::Error => {
                tracing::enabled!(target: "keyward::plugin", tracing::Level::ERROR)
            }
        };
        if !enabled {
            return;
        }
        // Redact the whole line before cutting it, so that a cut cannot
        // split a secret and leave its prefix.
        let mut line = self.redactor.redact(message);
        let truncated = truncate_at_boundary(&mut line, MAX_LOG_LINE);
        let plugin = &*self.plugin;
        match level {
            host::Level::Trace => {
                tracing::trace!(target: "keyward::plugin", plugin, truncated, "{line}")
            }
            host::Level::Debug => {
                tracing::debug!(target: "keyward::plugin", plugin, truncated, "{line}")
            }
            host::Level::Info => {
                tracing::info!(target: "keyward::plugin", plugin, truncated, "{line}")
            }
            host::Level::Warn => {
                tracing::warn!(target: "keyward::plugin", plugin, truncated, "{line}")
            }
            host::Level::Error => {
                tracing::error!(target: "keyward::plugin", plugin, truncated, "{line}")
            }
        }
    }

    /// After the call: report dropped lines and the captured output.
    pub(crate) fn finish(&self, stdout: &CapturePipe, stderr: &CapturePipe) {
        let plugin = &*self.plugin;
        if self.dropped > 0 {
            tracing::warn!(
                target: "keyward::plugin",
                plugin,
                emitted = self.emitted,
                dropped = self.dropped,
                "plugin log rate limit: {} lines dropped",
                self.dropped
            );
        }
        for (stream, pipe) in [("stdout", stdout), ("stderr", stderr)] {
            let Some((text, kept, dropped)) = pipe.take() else {
                continue;
            };
            if dropped > 0 {
                tracing::warn!(
                    target: "keyward::plugin",
                    plugin,
                    stream,
                    kept,
                    dropped,
                    "plugin {stream} truncated: {dropped} bytes dropped"
                );
            }
            if tracing::enabled!(target: "keyward::plugin", tracing::Level::DEBUG) {
                let text = String::from_utf8_lossy(&text);
                let text = if dropped > 0 {
                    self.redactor.redact_cut(&text)
                } else {
                    self.redactor.redact(&text)
                };
                tracing::debug!(target: "keyward::plugin", plugin, stream, kept, dropped, "{text}");
            }
        }
    }
}

impl host::Host for HostState {
    fn log(&mut self, level: host::Level, message: String) {
        self.log.emit(level, &message);
    }
}

impl types::Host for HostState {}

/// A stdout/stderr that keeps its first `capacity` bytes and counts the
/// rest. Writes never fail, so a guest that prints too much keeps running
/// (and meets its deadline) rather than trapping on a full pipe.
#[derive(Clone)]
pub(crate) struct CapturePipe {
    inner: Arc<Mutex<Capture>>,
}

struct Capture {
    data: Vec<u8>,
    capacity: usize,
    dropped: u64,
}

/// Largest write a guest is invited to make at once.
const WRITE_BUDGET: usize = 64 << 10;

impl CapturePipe {
    fn new(capacity: usize) -> Self {
        CapturePipe {
            inner: Arc::new(Mutex::new(Capture {
                data: Vec::new(),
                capacity,
                dropped: 0,
            })),
        }
    }

    fn push(&self, bytes: &[u8]) {
        let mut c = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let room = c.capacity.saturating_sub(c.data.len());
        let keep = room.min(bytes.len());
        c.data.extend_from_slice(&bytes[..keep]);
        c.dropped += (bytes.len() - keep) as u64;
    }

    /// (contents, kept bytes, dropped bytes), or `None` when nothing was
    /// written.
    pub(crate) fn take(&self) -> Option<(Vec<u8>, usize, u64)> {
        let mut c = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if c.data.is_empty() && c.dropped == 0 {
            return None;
        }
        let data = std::mem::take(&mut c.data);
        let kept = data.len();
        Some((data, kept, std::mem::take(&mut c.dropped)))
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for CapturePipe {
    async fn ready(&mut self) {}
}

impl OutputStream for CapturePipe {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(WRITE_BUDGET)
    }
}

impl tokio::io::AsyncWrite for CapturePipe {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.push(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl IsTerminal for CapturePipe {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CapturePipe {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipe_keeps_capacity_and_counts_the_rest() {
        let pipe = CapturePipe::new(4);
        pipe.push(b"abc");
        pipe.push(b"defg");
        let (data, kept, dropped) = pipe.take().unwrap();
        assert_eq!((data.as_slice(), kept, dropped), (&b"abcd"[..], 4, 3));
        assert!(pipe.take().is_none());
    }

    #[test]
    fn limiter_counts_all_memories() {
        let mut l = Limiter {
            limit: 100,
            used: 0,
            hit: None,
        };
        assert!(l.memory_growing(0, 60, None).unwrap());
        assert!(l.memory_growing(0, 30, None).unwrap());
        assert!(l.memory_growing(30, 50, None).is_err());
        assert_eq!(l.hit, Some((110, 100)));
        assert!(!l.memory_growing(0, 10, Some(5)).unwrap());
    }
}
