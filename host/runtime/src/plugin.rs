//! A loaded plugin and its calls: a fresh `Store` per call with the
//! plugin's limits, run on tokio's blocking pool behind the runtime's
//! semaphore; failures mapped to `PluginFailure`.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use keyward_core::{
    Artifact, DecideRequest, PluginFailure, RenderRequest, SandboxReason, SecretDecision, SecretRef,
};
use wasmtime::component::Instance;
use wasmtime::{Store, Trap};

use crate::bindings::{decider, render, types};
use crate::config::{LoadStats, PluginLimits, World};
use crate::convert;
use crate::error::{Error, Result};
use crate::host::{HostState, HostStop};
use crate::preinit::Warmup;
use crate::redact::Redactor;
use crate::runtime::{EPOCH_TICK, GuestIndices, Loaded, RuntimeInner};

/// A loaded plugin. Cheap to clone; calls may run concurrently.
#[derive(Clone)]
pub struct Plugin {
    inner: Arc<PluginInner>,
}

struct PluginInner {
    name: Arc<str>,
    limits: PluginLimits,
    /// What calls instantiate: the component as loaded, or its
    /// pre-initialised snapshot once [`Plugin::preinitialize`] succeeded.
    /// Both have the same digest, world and language.
    loaded: RwLock<Arc<Loaded>>,
    /// The component as loaded, for its digest, world and language.
    metadata: Arc<Loaded>,
    runtime: Arc<RuntimeInner>,
    stats: LoadStats,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.inner.name)
            .field("world", &self.world())
            .field("digest", &self.digest())
            .field("language", &self.language())
            .field("limits", &self.inner.limits)
            .finish()
    }
}

/// Which export a call runs, for deadlines and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    ValidateSettings,
    Decide,
    Plan,
    Render,
}

impl Call {
    fn as_str(self) -> &'static str {
        match self {
            Call::ValidateSettings => "validate-settings",
            Call::Decide => "decide",
            Call::Plan => "plan",
            Call::Render => "render",
        }
    }
}

type GuestResult<R> = wasmtime::Result<std::result::Result<R, types::PluginError>>;

impl Plugin {
    pub(crate) fn new(
        name: &str,
        limits: PluginLimits,
        loaded: Arc<Loaded>,
        runtime: Arc<RuntimeInner>,
        stats: LoadStats,
    ) -> Plugin {
        Plugin {
            inner: Arc::new(PluginInner {
                name: name.into(),
                limits,
                metadata: loaded.clone(),
                loaded: RwLock::new(loaded),
                runtime,
                stats,
            }),
        }
    }

    /// The name from its [`crate::PluginSpec`].
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The world it targets.
    pub fn world(&self) -> World {
        self.inner.metadata.world
    }

    /// `sha256:<hex>` of the component.
    pub fn digest(&self) -> &str {
        &self.inner.metadata.digest
    }

    /// Guest language, when the component says.
    pub fn language(&self) -> Option<&str> {
        self.inner.metadata.language.as_deref()
    }

    /// The limits every call runs under.
    pub fn limits(&self) -> &PluginLimits {
        &self.inner.limits
    }

    /// How the load went (and whether calls now start from a
    /// pre-initialised snapshot).
    pub fn load_stats(&self) -> LoadStats {
        LoadStats {
            preinitialized: self.inner.current().preinitialized,
            ..self.inner.stats
        }
    }

    /// Warm this plugin up with the configuration it will be called with
    /// (see [`Warmup`]) and start every later call, from any clone, from a
    /// snapshot of that instance. Calls already running finish on the
    /// previous image. `component` must be the bytes the plugin was loaded
    /// from (its digest is checked). Blocks for a compile on a cache miss
    /// (hundreds of milliseconds for a Rust plugin): call it from a thread
    /// of its own, or a blocking task.
    pub fn preinitialize(&self, component: &[u8], warmup: &Warmup) -> Result<()> {
        let name = self.name().to_string();
        let runtime = crate::Runtime {
            inner: self.inner.runtime.clone(),
        };
        let snapshot = runtime.preinitialize_loaded(
            &name,
            &self.inner.limits,
            &self.inner.metadata,
            component,
            warmup,
        )?;
        *self.inner.loaded.write().unwrap_or_else(|e| e.into_inner()) = snapshot;
        Ok(())
    }

    /// This plugin as a policy; an error if it is a renderer.
    pub fn policy(&self) -> Result<Arc<dyn keyward_core::Policy>> {
        self.expect_world(World::Policy)?;
        Ok(Arc::new(PolicyPlugin(self.clone())))
    }

    /// This plugin as a renderer; an error if it is a policy.
    pub fn renderer(&self) -> Result<Arc<dyn keyward_core::Renderer>> {
        self.expect_world(World::Renderer)?;
        Ok(Arc::new(RendererPlugin(self.clone())))
    }

    fn expect_world(&self, wanted: World) -> Result<()> {
        if self.world() == wanted {
            Ok(())
        } else {
            Err(Error::WrongWorld {
                name: self.name().to_string(),
                actual: self.world(),
                wanted,
            })
        }
    }

    /// Run `f` against a fresh instance on the blocking pool.
    async fn call<R, F>(&self, call: Call, redactor: Redactor, f: F) -> Result<R, PluginFailure>
    where
        R: Send + 'static,
        F: FnOnce(&mut Store<HostState>, &Instance, &GuestIndices) -> GuestResult<R>
            + Send
            + 'static,
    {
        let permit = self
            .inner
            .runtime
            .calls
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| shutting_down())?;
        let span =
            tracing::debug_span!("plugin_call", plugin = %self.inner.name, call = call.as_str());
        let dispatch = tracing::dispatcher::get_default(|d| d.clone());
        let inner = self.inner.clone();
        let joined = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            tracing::dispatcher::with_default(&dispatch, || {
                span.in_scope(|| inner.run(call, redactor, f))
            })
        })
        .await;
        match joined {
            Ok(result) => result,
            Err(e) => Err(PluginFailure::Sandbox {
                reason: SandboxReason::Trap,
                detail: if e.is_panic() {
                    "the host side of the call panicked (a Keyward bug)".into()
                } else {
                    "the call was cancelled".into()
                },
            }),
        }
    }

    /// Run `f` against a fresh instance on this thread, waiting for a
    /// call slot if `max_concurrent_calls` are running.
    fn call_blocking<R, F>(&self, call: Call, redactor: Redactor, f: F) -> Result<R, PluginFailure>
    where
        F: FnOnce(&mut Store<HostState>, &Instance, &GuestIndices) -> GuestResult<R>,
    {
        let calls = &self.inner.runtime.calls;
        let _permit = match calls.try_acquire() {
            Ok(permit) => permit,
            Err(tokio::sync::TryAcquireError::NoPermits) => {
                block_on(calls.acquire()).map_err(|_| shutting_down())?
            }
            Err(tokio::sync::TryAcquireError::Closed) => return Err(shutting_down()),
        };
        let span =
            tracing::debug_span!("plugin_call", plugin = %self.inner.name, call = call.as_str());
        span.in_scope(|| self.inner.run(call, redactor, f))
    }

    /// `validate-settings`, on this thread. For callers that are not on an
    /// async runtime's worker (a CLI, a thread of their own, a blocking
    /// task): the call occupies the thread until it returns or its
    /// deadline passes.
    pub fn validate_settings_blocking(&self, settings: &str) -> Result<(), PluginFailure> {
        match self.world() {
            World::Policy => self.call_blocking(
                Call::ValidateSettings,
                Redactor::none(),
                policy_validate(settings.to_string()),
            ),
            World::Renderer => self.call_blocking(
                Call::ValidateSettings,
                Redactor::none(),
                renderer_validate(settings.to_string()),
            ),
        }
    }

    /// `decide`, on this thread (see [`Plugin::validate_settings_blocking`]).
    pub fn decide_blocking(
        &self,
        request: &DecideRequest,
    ) -> Result<Vec<SecretDecision>, PluginFailure> {
        self.call_blocking(
            Call::Decide,
            Redactor::none(),
            decide_fn(convert::decide_request(request)),
        )
        .map(convert::decisions_from)
    }

    /// `plan`, on this thread (see [`Plugin::validate_settings_blocking`]).
    pub fn plan_blocking(
        &self,
        template: Option<&str>,
        settings: &str,
    ) -> Result<Vec<SecretRef>, PluginFailure> {
        self.call_blocking(
            Call::Plan,
            Redactor::none(),
            plan_fn(template.map(str::to_string), settings.to_string()),
        )
        .map(convert::secret_refs_from)
    }

    /// `render`, on this thread (see [`Plugin::validate_settings_blocking`]).
    pub fn render_blocking(&self, request: &RenderRequest) -> Result<Vec<Artifact>, PluginFailure> {
        self.call_blocking(
            Call::Render,
            Redactor::from_values(&request.secrets),
            render_fn(convert::render_request(request)),
        )
        .and_then(convert::artifacts_from)
    }
}

fn shutting_down() -> PluginFailure {
    PluginFailure::Sandbox {
        reason: SandboxReason::Load,
        detail: "the runtime is shutting down".into(),
    }
}

/// Drive a future to completion on this thread (the semaphore's acquire,
/// a snapshot; nothing that needs a reactor).
pub(crate) fn block_on<F: std::future::Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = std::task::Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = std::task::Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let std::task::Poll::Ready(value) = future.as_mut().poll(&mut cx) {
            return value;
        }
        std::thread::park();
    }
}

impl PluginInner {
    /// What a call instantiates now.
    fn current(&self) -> Arc<Loaded> {
        self.loaded
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn deadline(&self, call: Call) -> Duration {
        match call {
            Call::Decide => self.limits.decide_deadline,
            Call::ValidateSettings | Call::Plan | Call::Render => self.limits.render_deadline,
        }
    }

    fn run<R, F>(&self, call: Call, redactor: Redactor, f: F) -> Result<R, PluginFailure>
    where
        F: FnOnce(&mut Store<HostState>, &Instance, &GuestIndices) -> GuestResult<R>,
    {
        let started = Instant::now();
        let deadline = self.deadline(call);
        // The epoch only advances while some call holds a guard.
        let _ticking = self.runtime.ticker.enter();
        let mut store = sandbox_store(
            &self.runtime,
            self.name.clone(),
            &self.limits,
            started,
            deadline,
            redactor,
        );

        let loaded = self.current();
        let instance = loaded.pre.instantiate(&mut store);
        let outcome = match instance {
            Err(e) => Err((true, e)),
            Ok(instance) => f(&mut store, &instance, &loaded.guest).map_err(|e| (false, e)),
        };
        let state = store.data_mut();
        let stop = state.take_stop();
        state.log.finish(&state.stdout, &state.stderr);
        let result = match outcome {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(plugin_error)) => Err(PluginFailure::Plugin(convert::plugin_error_from(
                plugin_error,
            ))),
            Err((instantiating, error)) => Err(classify(
                &error,
                stop,
                instantiating,
                deadline,
                &self.limits,
            )),
        };
        let elapsed_ms = started.elapsed().as_secs_f64() * 1e3;
        match &result {
            Ok(_) => tracing::trace!(elapsed_ms, "plugin call done"),
            Err(failure) => tracing::debug!(
                elapsed_ms,
                kind = failure.kind_label(),
                "plugin call failed: {failure}"
            ),
        }
        result
    }
}

/// A fresh store with a plugin's limits: memory cap, hostcall fuel, and a
/// deadline of `deadline` from `started` (the caller holds a ticker guard).
pub(crate) fn sandbox_store(
    runtime: &RuntimeInner,
    name: Arc<str>,
    limits: &PluginLimits,
    started: Instant,
    deadline: Duration,
    redactor: Redactor,
) -> Store<HostState> {
    let state = HostState::new(name, limits, started + deadline, Arc::new(redactor));
    let mut store = Store::new(&runtime.engine, state);
    store.limiter(|s| s.limiter());
    store.set_epoch_deadline(deadline_ticks(deadline));
    store.epoch_deadline_trap();
    store.set_hostcall_fuel(limits.hostcall_fuel);
    store
}

/// Ticks for a deadline: rounded up, plus one because the current tick is
/// already partly over.
pub(crate) fn deadline_ticks(deadline: Duration) -> u64 {
    let tick = EPOCH_TICK.as_nanos();
    let ticks = deadline.as_nanos().div_ceil(tick);
    u64::try_from(ticks)
        .unwrap_or(u64::MAX / 2)
        .saturating_add(1)
}

/// The text wasmtime 48 gives hostcall-fuel exhaustion. Its error type is
/// private to wasmtime, so this is the one place that matches on a
/// message; wasmtime is pinned to an exact version, and the hostile-plugin
/// suite (`big-string`) fails if the text ever changes.
const HOSTCALL_FUEL_EXHAUSTED: &str = "fuel allocated for hostcalls has been exhausted";

pub(crate) fn classify(
    error: &wasmtime::Error,
    stop: Option<HostStop>,
    instantiating: bool,
    deadline: Duration,
    limits: &PluginLimits,
) -> PluginFailure {
    let (reason, detail) = match stop {
        Some(HostStop::Memory { desired, limit }) => (
            SandboxReason::MemoryLimit,
            format!(
                "memory limit of {limit} bytes reached (the plugin asked for {desired} bytes in all)"
            ),
        ),
        Some(HostStop::Sleep { requested }) => (
            SandboxReason::Timeout,
            format!(
                "the plugin tried to sleep for {requested:?}, past its deadline of {} ms",
                deadline.as_millis()
            ),
        ),
        None => {
            if let Some(trap) = error.downcast_ref::<Trap>() {
                match trap {
                    Trap::Interrupt => (
                        SandboxReason::Timeout,
                        format!("deadline of {} ms exceeded", deadline.as_millis()),
                    ),
                    Trap::StackOverflow => (SandboxReason::Trap, "stack overflow".to_string()),
                    other => (SandboxReason::Trap, other.to_string()),
                }
            } else if let Some(exit) = error.downcast_ref::<wasmtime_wasi::I32Exit>() {
                (
                    SandboxReason::Trap,
                    format!("the plugin called exit({})", exit.0),
                )
            } else if error
                .chain()
                .any(|e| e.to_string().contains(HOSTCALL_FUEL_EXHAUSTED))
            {
                (
                    SandboxReason::HostcallLimit,
                    format!(
                        "more than {} bytes crossed from the plugin to the host in one transfer",
                        limits.hostcall_fuel
                    ),
                )
            } else if instantiating {
                (
                    SandboxReason::Load,
                    format!("instantiation failed: {}", error.root_cause()),
                )
            } else {
                // Host-side errors (invalid UTF-8, bad discriminants, ...):
                // their messages describe the failure, never guest memory.
                (SandboxReason::Trap, error.root_cause().to_string())
            }
        }
    };
    PluginFailure::Sandbox { reason, detail }
}

type CallFn<R> =
    Box<dyn FnOnce(&mut Store<HostState>, &Instance, &GuestIndices) -> GuestResult<R> + Send>;

fn policy_indices(guest: &GuestIndices) -> wasmtime::Result<&decider::GuestIndices> {
    match guest {
        GuestIndices::Policy(indices) => Ok(indices),
        GuestIndices::Renderer(_) => Err(wasmtime::format_err!("not a policy component")),
    }
}

fn renderer_indices(guest: &GuestIndices) -> wasmtime::Result<&render::GuestIndices> {
    match guest {
        GuestIndices::Renderer(indices) => Ok(indices),
        GuestIndices::Policy(_) => Err(wasmtime::format_err!("not a renderer component")),
    }
}

fn policy_validate(settings: String) -> CallFn<()> {
    Box::new(move |store, instance, guest| {
        policy_indices(guest)?
            .load(&mut *store, instance)?
            .call_validate_settings(store, &settings)
    })
}

fn decide_fn(request: decider::DecideRequest) -> CallFn<Vec<types::SecretDecision>> {
    Box::new(move |store, instance, guest| {
        policy_indices(guest)?
            .load(&mut *store, instance)?
            .call_decide(store, &request)
    })
}

fn renderer_validate(settings: String) -> CallFn<()> {
    Box::new(move |store, instance, guest| {
        renderer_indices(guest)?
            .load(&mut *store, instance)?
            .call_validate_settings(store, &settings)
    })
}

fn plan_fn(template: Option<String>, settings: String) -> CallFn<Vec<render::SecretRef>> {
    Box::new(move |store, instance, guest| {
        renderer_indices(guest)?
            .load(&mut *store, instance)?
            .call_plan(store, template.as_deref(), &settings)
    })
}

fn render_fn(request: render::RenderRequest) -> CallFn<Vec<render::Artifact>> {
    Box::new(move |store, instance, guest| {
        renderer_indices(guest)?
            .load(&mut *store, instance)?
            .call_render(store, &request)
    })
}

/// A policy plugin behind `keyward_core::Policy`.
struct PolicyPlugin(Plugin);

#[async_trait]
impl keyward_core::Policy for PolicyPlugin {
    async fn validate_settings(&self, settings: &str) -> Result<(), PluginFailure> {
        self.0
            .call(
                Call::ValidateSettings,
                Redactor::none(),
                policy_validate(settings.to_string()),
            )
            .await
    }

    async fn decide(&self, request: DecideRequest) -> Result<Vec<SecretDecision>, PluginFailure> {
        self.0
            .call(
                Call::Decide,
                Redactor::none(),
                decide_fn(convert::decide_request(&request)),
            )
            .await
            .map(convert::decisions_from)
    }
}

/// A renderer plugin behind `keyward_core::Renderer`.
struct RendererPlugin(Plugin);

#[async_trait]
impl keyward_core::Renderer for RendererPlugin {
    async fn validate_settings(&self, settings: &str) -> Result<(), PluginFailure> {
        self.0
            .call(
                Call::ValidateSettings,
                Redactor::none(),
                renderer_validate(settings.to_string()),
            )
            .await
    }

    async fn plan(
        &self,
        template: Option<&str>,
        settings: &str,
    ) -> Result<Vec<SecretRef>, PluginFailure> {
        self.0
            .call(
                Call::Plan,
                Redactor::none(),
                plan_fn(template.map(str::to_string), settings.to_string()),
            )
            .await
            .map(convert::secret_refs_from)
    }

    async fn render(&self, request: RenderRequest) -> Result<Vec<Artifact>, PluginFailure> {
        let redactor = Redactor::from_values(&request.secrets);
        self.0
            .call(
                Call::Render,
                redactor,
                render_fn(convert::render_request(&request)),
            )
            .await
            .and_then(convert::artifacts_from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_round_up() {
        assert_eq!(deadline_ticks(Duration::from_millis(100)), 11);
        assert_eq!(deadline_ticks(Duration::from_millis(101)), 12);
        assert_eq!(deadline_ticks(Duration::from_millis(1)), 2);
    }
}
