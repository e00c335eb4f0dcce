//! The WIT glue: the `decider` export, converting between the generated
//! bindings and the crate's [`model`](crate::model). No decision logic lives
//! here. Being the wasm32-only module, it also holds what a `no_std`
//! component needs: the global allocator (`plugins/common/bump.rs`,
//! compiled in as a module), the panic handler, the exported `cabi_realloc`
//! and the instance-wide settings cache.

use alloc::collections::BTreeMap;
use core::alloc::{GlobalAlloc, Layout};
use core::cell::RefCell;

#[path = "../../common/bump.rs"]
mod bump;
use bump::{ALLOCATOR, OneThread};

use crate::model;
use crate::prelude::*;

wit_bindgen::generate!({
    path: "../../wit",
    world: "policy",
    // The generated `std::error::Error` impls stay behind a `std` feature
    // this crate never enables.
    std_feature,
});

use exports::keyward::plugin::decider::{DecideRequest, Guest};

use keyward::plugin::types::{
    DeliveryKind, Engine, Grant, PluginError, SecretDecision, SecretRequest, Verdict, Workload,
};

struct Component;

export!(Component);

impl Guest for Component {
    fn validate_settings(settings: String) -> Result<(), PluginError> {
        crate::validate_settings(&settings).map_err(plugin_error)
    }

    fn decide(request: DecideRequest) -> Result<Vec<SecretDecision>, PluginError> {
        let request = model::DecideRequest {
            workload: workload(request.workload)?,
            secrets: request.secrets.into_iter().map(secret).collect(),
            settings: request.settings,
        };
        let decisions = crate::decide(&request).map_err(plugin_error)?;
        Ok(decisions.into_iter().map(decision).collect())
    }
}

static KNOWN: OneThread<RefCell<crate::Known>> = OneThread(RefCell::new(Vec::new()));

/// The settings cache (see `crate::with_known`).
pub(crate) fn with_known<R>(f: impl FnOnce(&mut crate::Known) -> R) -> R {
    f(&mut KNOWN.0.borrow_mut())
}

/// A panic (a bug) traps the call, and the host reports the trap. Its
/// message is not reported: that would take the host's `log` import, and
/// importing a function that takes a string makes wit-component wire the
/// component through two more core instances (a shim and a fixup), which
/// costs every call about 2 µs, an eighth of a warm `decide`. The native
/// build (unit tests, the case runner) runs the same code with `std`'s
/// panic messages.
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    core::arch::wasm32::unreachable()
}

/// The canonical ABI's allocation entry point, which the host calls to
/// pass strings and lists in (`std` builds get it from wasi-libc).
///
/// # Safety
/// Called by the host with the canonical ABI's contract: `align` a power of
/// two, and (`old_ptr`, `old_len`, `align`) a block this function returned.
#[unsafe(no_mangle)]
pub(crate) unsafe extern "C" fn cabi_realloc(
    old_ptr: *mut u8,
    old_len: usize,
    align: usize,
    new_len: usize,
) -> *mut u8 {
    if new_len == 0 {
        return align as *mut u8;
    }
    // SAFETY: see the function's contract; a failed allocation traps.
    unsafe {
        let ptr = if old_len == 0 {
            ALLOCATOR.alloc(Layout::from_size_align_unchecked(new_len, align))
        } else {
            ALLOCATOR.realloc(
                old_ptr,
                Layout::from_size_align_unchecked(old_len, align),
                new_len,
            )
        };
        if ptr.is_null() {
            core::arch::wasm32::unreachable();
        }
        ptr
    }
}

fn workload(w: Workload) -> Result<model::Workload, PluginError> {
    Ok(model::Workload {
        cluster: w.cluster,
        namespace: w.namespace,
        service_account: w.service_account,
        kind: w.kind,
        name: w.name,
        labels: pairs(w.labels, "workload.labels")?,
        // No rule reads annotations.
        namespace_labels: pairs(w.namespace_labels, "workload.namespace-labels")?,
        images: w.images,
    })
}

/// Labels as a map. A repeated key is an error rather than silently taking
/// one of the values: rules match on them.
fn pairs(list: Vec<(String, String)>, at: &str) -> Result<BTreeMap<String, String>, PluginError> {
    let mut map = BTreeMap::new();
    for (key, value) in list {
        if map.contains_key(&key) {
            return Err(PluginError::InvalidInput(format!(
                "{at}: key {key:?} appears twice"
            )));
        }
        map.insert(key, value);
    }
    Ok(map)
}

fn secret(s: SecretRequest) -> model::SecretRequest {
    model::SecretRequest {
        reference: s.reference,
        engine: match s.engine {
            Engine::Kv1 => model::Engine::Kv1,
            Engine::Kv2 => model::Engine::Kv2,
            Engine::Database => model::Engine::Database,
            Engine::Pki => model::Engine::Pki,
            Engine::Transit => model::Engine::Transit,
            Engine::Generic => model::Engine::Generic,
        },
        mount: s.mount,
        path: s.path,
        version: s.version,
        parameters: s.parameters,
        delivery: s.delivery.into_iter().map(delivery_from_wit).collect(),
    }
}

fn delivery_from_wit(kind: DeliveryKind) -> model::DeliveryKind {
    match kind {
        DeliveryKind::Env => model::DeliveryKind::Env,
        DeliveryKind::File => model::DeliveryKind::File,
        DeliveryKind::KubeSecret => model::DeliveryKind::KubeSecret,
    }
}

fn delivery_to_wit(kind: model::DeliveryKind) -> DeliveryKind {
    match kind {
        model::DeliveryKind::Env => DeliveryKind::Env,
        model::DeliveryKind::File => DeliveryKind::File,
        model::DeliveryKind::KubeSecret => DeliveryKind::KubeSecret,
    }
}

fn decision(d: model::SecretDecision) -> SecretDecision {
    SecretDecision {
        reference: d.reference,
        verdict: match d.verdict {
            model::Verdict::Allow(g) => Verdict::Allow(Grant {
                allowed_keys: g.allowed_keys,
                max_ttl_seconds: g.max_ttl_seconds,
                delivery: g
                    .delivery
                    .map(|kinds| kinds.into_iter().map(delivery_to_wit).collect()),
                targets: g.targets,
            }),
            model::Verdict::Deny(reason) => Verdict::Deny(reason),
            model::Verdict::Abstain => Verdict::Abstain,
        },
        rule: d.rule,
    }
}

fn plugin_error(e: model::PluginError) -> PluginError {
    match e {
        model::PluginError::InvalidSettings(m) => PluginError::InvalidSettings(m),
        model::PluginError::InvalidInput(m) => PluginError::InvalidInput(m),
    }
}
