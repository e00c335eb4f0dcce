//! The WIT glue: the `decider` export, converting between the generated
//! bindings and the crate's [`model`](crate::model). No decision logic lives
//! here. Being the wasm32-only module, it also holds what a `no_std`
//! component needs: the global allocator, the panic handler, the exported
//! `cabi_realloc` and the instance-wide settings cache.

use alloc::collections::BTreeMap;
use core::alloc::{GlobalAlloc, Layout};
use core::cell::{Cell, RefCell};

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

/// A value shared by the instance's one thread. A component instance never
/// runs code on two threads (wasm32-wasip2 has no threads here), so
/// nothing can observe it from elsewhere.
struct OneThread<T>(T);

// SAFETY: see `OneThread`: there is no second thread on this target.
unsafe impl<T> Sync for OneThread<T> {}

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

/// WebAssembly page size.
const PAGE: usize = 65536;
/// Pages the heap grows by at least, so that a growing vector does not ask
/// the host for memory on every doubling.
const MIN_GROW_PAGES: usize = 4;

/// The global allocator: a bump allocator over the memory after the data
/// and stack, growing it as needed. Every call runs in a fresh instance
/// whose memory is thrown away afterwards, so freeing is not worth its
/// bookkeeping: only the most recent block is freed or resized in place,
/// which covers a growing `Vec` or `String` built last. What a call
/// allocates in all stays bounded by the host's memory limit.
struct Bump {
    /// First free address; 0 until the first allocation.
    next: Cell<usize>,
    /// Start of the most recent block.
    last: Cell<usize>,
}

#[global_allocator]
static ALLOCATOR: OneThread<Bump> = OneThread(Bump {
    next: Cell::new(0),
    last: Cell::new(0),
});

unsafe extern "C" {
    /// Where the heap starts (after data and stack), set by the linker.
    static __heap_base: u8;
}

impl Bump {
    fn next(&self) -> usize {
        match self.next.get() {
            0 => core::ptr::addr_of!(__heap_base) as usize,
            n => n,
        }
    }

    /// Make sure memory reaches `end` (exclusive).
    fn reach(&self, end: usize) -> bool {
        // A full 4 GiB memory would overflow 32-bit `usize`: saturate.
        let have = core::arch::wasm32::memory_size(0).saturating_mul(PAGE);
        if end <= have {
            return true;
        }
        let needed = (end - have).div_ceil(PAGE);
        core::arch::wasm32::memory_grow(0, needed.max(MIN_GROW_PAGES)) != usize::MAX
            || core::arch::wasm32::memory_grow(0, needed) != usize::MAX
    }

    fn is_last(&self, ptr: *mut u8, size: usize) -> bool {
        ptr as usize == self.last.get() && ptr as usize + size == self.next.get()
    }
}

// SAFETY: `alloc` hands out disjoint blocks inside linear memory (aligned
// as asked, checked against overflow, memory grown first); `dealloc` and
// `realloc` only move `next` back or forth for the block that ends at it.
unsafe impl GlobalAlloc for OneThread<Bump> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let bump = &self.0;
        let Some(start) = bump.next().checked_next_multiple_of(layout.align()) else {
            return core::ptr::null_mut();
        };
        let Some(end) = start.checked_add(layout.size()) else {
            return core::ptr::null_mut();
        };
        if !bump.reach(end) {
            return core::ptr::null_mut();
        }
        bump.last.set(start);
        bump.next.set(end);
        start as *mut u8
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let bump = &self.0;
        if bump.is_last(ptr, layout.size()) {
            bump.next.set(ptr as usize);
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let bump = &self.0;
        if bump.is_last(ptr, layout.size()) {
            let Some(end) = (ptr as usize).checked_add(new_size) else {
                return core::ptr::null_mut();
            };
            if !bump.reach(end) {
                return core::ptr::null_mut();
            }
            bump.next.set(end);
            return ptr;
        }
        // SAFETY: the caller's contract for `realloc` (a valid `layout`,
        // non-zero `new_size` that does not overflow when aligned) is the
        // one `alloc` needs; the old block stays valid for the copy.
        unsafe {
            let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
            let new = self.alloc(new_layout);
            if !new.is_null() {
                core::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
            }
            new
        }
    }
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
