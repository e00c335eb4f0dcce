//! Pre-initialisation: a plugin's memory image taken after warm-up calls.
//!
//! A plugin parses its settings (and a renderer its template) on every
//! call, because every call starts from a fresh instance. When the host
//! knows that configuration in advance, it can do better: instantiate the
//! component once, call `validate-settings` with each settings document
//! and `plan` with each template, and freeze the instance's memories and
//! globals into a new component (wasmtime-wizer's snapshot and rewrite).
//! Every later call still gets a fresh instance, but one that starts from
//! that image: a guest that keeps what it parsed (policy-rules and
//! render-template keep their last settings and templates) finds it
//! there, and only checks that the request carries the same text.
//!
//! Guests that keep nothing are unaffected: the snapshot holds the same
//! state their own start-up would produce. The warm-up is refused (and
//! the plain component used) when a warm-up call fails, or when it leaves
//! a WASI resource alive, since a handle cached in guest memory would
//! dangle in every later instance.

use std::sync::Arc;
use std::time::Instant;

use sha2::{Digest, Sha256};
use wasmtime::Store;
use wasmtime::component::{Component, ComponentType, Instance, Lift, WasmList};
use wasmtime_wizer::{ComponentInstanceState, Wizer};

use crate::bindings::types::PluginError;
use crate::bindings::{decider, render};
use crate::config::{PluginLimits, World};
use crate::host::HostState;
use crate::plugin::{block_on, classify, deadline_ticks, sandbox_store};
use crate::redact::Redactor;
use crate::runtime::RuntimeInner;

/// Configuration a plugin is warmed up with before its memory image is
/// frozen (see [`crate::PluginSpec::warmup`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Warmup {
    /// Settings documents, each passed to `validate-settings`.
    pub settings: Vec<String>,
    /// Renderers only: `(template, settings)` pairs, each passed to `plan`.
    pub plans: Vec<(Option<String>, String)>,
}

impl Warmup {
    /// Nothing to warm up with.
    pub fn is_empty(&self) -> bool {
        self.settings.is_empty() && self.plans.is_empty()
    }

    /// The cache key of the snapshot of component `digest` warmed with
    /// this configuration (hex sha256 over a format tag, the digest and
    /// every input, each length-prefixed).
    pub(crate) fn key(&self, digest: &str) -> String {
        fn field(h: &mut Sha256, bytes: &[u8]) {
            h.update((bytes.len() as u64).to_le_bytes());
            h.update(bytes);
        }
        let mut h = Sha256::new();
        field(&mut h, b"keyward-preinit-v1");
        field(&mut h, digest.as_bytes());
        for s in &self.settings {
            field(&mut h, b"settings");
            field(&mut h, s.as_bytes());
        }
        for (template, settings) in &self.plans {
            match template {
                Some(t) => {
                    field(&mut h, b"plan");
                    field(&mut h, t.as_bytes());
                }
                None => field(&mut h, b"plan-default"),
            }
            field(&mut h, settings.as_bytes());
        }
        hex::encode(h.finalize())
    }
}

/// One warm-up call on the instance.
type WarmupCall<'a> =
    dyn FnMut(&mut Store<HostState>) -> wasmtime::Result<Result<(), PluginError>> + 'a;

/// Instantiate `bytes` (instrumented to expose its state), run the
/// warm-up calls under the plugin's limits, and return the rewritten
/// component. The error is a one-line reason. wasmtime-wizer asserts on
/// what it does not support (a `v128` global, for one), so a panic in it
/// is a refused warm-up too, not a crashed host thread.
pub(crate) fn snapshot(
    runtime: &RuntimeInner,
    name: &str,
    limits: &PluginLimits,
    world: World,
    bytes: &[u8],
    warmup: &Warmup,
) -> Result<Vec<u8>, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        snapshot_inner(runtime, name, limits, world, bytes, warmup)
    }))
    .unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown".into());
        Err(format!("the snapshot tool failed: {what}"))
    })
}

fn snapshot_inner(
    runtime: &RuntimeInner,
    name: &str,
    limits: &PluginLimits,
    world: World,
    bytes: &[u8],
    warmup: &Warmup,
) -> Result<Vec<u8>, String> {
    if world == World::Policy && !warmup.plans.is_empty() {
        return Err("plan warm-ups are for renderers".into());
    }
    let wizer = Wizer::new();
    let (context, instrumented) = wizer
        .instrument_component(bytes)
        .map_err(|e| format!("cannot instrument the component: {e:#}"))?;
    let component = Component::new(&runtime.engine, &instrumented)
        .map_err(|e| format!("the instrumented component does not compile: {e:#}"))?;
    let pre = runtime
        .linker
        .instantiate_pre(&component)
        .map_err(|e| format!("the instrumented component does not link: {e:#}"))?;

    let _ticking = runtime.ticker.enter();
    let deadline = limits.render_deadline;
    let mut store = sandbox_store(
        runtime,
        Arc::from(name),
        limits,
        Instant::now(),
        deadline,
        Redactor::none(),
    );
    let instance = pre
        .instantiate(&mut store)
        .map_err(|e| format!("instantiation failed: {e:#}"))?;

    // Each warm-up call gets the plugin's own deadline.
    let run = |store: &mut Store<HostState>, what: &str, call: &mut WarmupCall<'_>| {
        store.set_epoch_deadline(deadline_ticks(deadline));
        match call(store) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!(
                "{what} returned an error: {}",
                crate::convert::plugin_error_from(e)
            )),
            Err(e) => {
                let stop = store.data_mut().take_stop();
                Err(format!(
                    "{what} failed: {}",
                    classify(&e, stop, false, deadline, limits)
                ))
            }
        }
    };
    match world {
        World::Policy => {
            let guest = decider::GuestIndices::new(&pre)
                .and_then(|g| g.load(&mut store, &instance))
                .map_err(|e| format!("not a policy component: {e:#}"))?;
            for settings in &warmup.settings {
                run(&mut store, "validate-settings", &mut |s| {
                    guest.call_validate_settings(s, settings)
                })?;
            }
        }
        World::Renderer => {
            let guest = render::GuestIndices::new(&pre)
                .and_then(|g| g.load(&mut store, &instance))
                .map_err(|e| format!("not a renderer component: {e:#}"))?;
            for settings in &warmup.settings {
                run(&mut store, "validate-settings", &mut |s| {
                    guest.call_validate_settings(s, settings)
                })?;
            }
            for (template, settings) in &warmup.plans {
                run(&mut store, "plan", &mut |s| {
                    guest
                        .call_plan(s, template.as_deref(), settings)
                        .map(|r| r.map(drop))
                })?;
            }
        }
    }
    if store.data().holds_resources() {
        return Err(
            "the warm-up left WASI resources open (for example a stdout stream); \
             a handle kept in guest memory would dangle in every later call"
                .into(),
        );
    }

    // The accessors return each memory whole, as one `list<u8>`: the host
    // asks for that copy itself, and the memory limit bounds it, so the
    // per-transfer fuel that guards calls is raised to that limit here.
    store.set_hostcall_fuel(limits.memory_bytes.saturating_add(1 << 20));
    let mut state = Access {
        store: &mut store,
        instance,
        failure: None,
    };
    let rewritten = block_on(wizer.snapshot_component(&context, &mut state))
        .map_err(|e| format!("cannot snapshot the instance: {e:#}"))?;
    if let Some(failure) = state.failure {
        return Err(format!("cannot snapshot the instance: {failure}"));
    }
    Ok(rewritten)
}

/// The instrumented instance's state accessors, for wizer. Its trait
/// cannot report errors, so the first one is kept and checked after.
struct Access<'a> {
    store: &'a mut Store<HostState>,
    instance: Instance,
    failure: Option<String>,
}

impl Access<'_> {
    /// Call the accessor `func` of the exported instance `interface`.
    fn call<R>(&mut self, interface: &str, func: &str) -> Option<R>
    where
        R: ComponentType + Lift + Send + Sync + 'static,
    {
        if self.failure.is_some() {
            return None;
        }
        let result = (|| {
            let (_, parent) = self
                .instance
                .get_export(&mut *self.store, None, interface)
                .ok_or_else(|| format!("no exported instance {interface:?}"))?;
            let (_, index) = self
                .instance
                .get_export(&mut *self.store, Some(&parent), func)
                .ok_or_else(|| format!("no accessor {func:?}"))?;
            let typed = self
                .instance
                .get_typed_func::<(), (R,)>(&mut *self.store, index)
                .map_err(|e| format!("accessor {func:?}: {e}"))?;
            self.store
                .set_epoch_deadline(deadline_ticks(std::time::Duration::from_secs(5)));
            typed
                .call(&mut *self.store, ())
                .map(|(r,)| r)
                .map_err(|e| format!("accessor {func:?}: {e}"))
        })();
        match result {
            Ok(r) => Some(r),
            Err(e) => {
                self.failure = Some(e);
                None
            }
        }
    }
}

impl ComponentInstanceState for Access<'_> {
    async fn call_func_ret_list_u8(
        &mut self,
        instance: &str,
        func: &str,
        contents: impl FnOnce(&[u8]) + Send,
    ) {
        match self.call::<WasmList<u8>>(instance, func) {
            Some(list) => contents(list.as_le_slice(&*self.store)),
            None => contents(&[]),
        }
    }

    async fn call_func_ret_s32(&mut self, instance: &str, func: &str) -> i32 {
        self.call(instance, func).unwrap_or_default()
    }

    async fn call_func_ret_s64(&mut self, instance: &str, func: &str) -> i64 {
        self.call(instance, func).unwrap_or_default()
    }

    async fn call_func_ret_f32(&mut self, instance: &str, func: &str) -> u32 {
        self.call::<f32>(instance, func)
            .unwrap_or_default()
            .to_bits()
    }

    async fn call_func_ret_f64(&mut self, instance: &str, func: &str) -> u64 {
        self.call::<f64>(instance, func)
            .unwrap_or_default()
            .to_bits()
    }
}
