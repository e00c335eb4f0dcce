#![cfg_attr(target_arch = "wasm32", no_std)]
//! `policy-rules`: Keyward's first-party declarative policy plugin.
//!
//! Built for `wasm32-wasip2`, this crate is a component of the `policy` world
//! (`wit/keyward.wit`) that grants or denies requested secrets from ordered
//! rules in its settings: workload criteria (namespace, service account,
//! labels, namespace labels, images, kind, cluster, name) and path patterns
//! with placeholders, with limits (keys, TTL cap, delivery kinds, targets).
//! `README.md` documents the settings schema.
//!
//! The decision logic is plain Rust over the crate's own [`model`] of the
//! WIT types, so that it tests natively; the WIT glue (`component`, wasm32
//! only) only converts. It never sees a secret value.
//!
//! On wasm32 the crate is `no_std` (with `alloc`): Rust's `std` on
//! `wasm32-wasip2` links WASI's CLI, I/O and terminal interfaces (13
//! imports) for panics and stdio this plugin never uses, and every
//! instantiation pays for wiring them up. Without them the component
//! imports only `keyward:plugin/*`, and a sandboxed `decide` costs about a
//! sixth less (interleaved A/B: p50 20.3 against 24.9 µs pre-initialised,
//! 30.7 against 36.5 µs cold). The allocator and the panic handler are in
//! `component`.

extern crate alloc;

mod decide;
mod duration;
/// `keyward-core`'s glob matcher: the pattern language the host documents,
/// shared by source so that this `no_std` guest need not link the host's
/// crate.
#[path = "../../../host/core/src/glob.rs"]
#[allow(
    unreachable_pub,
    reason = "the file is also keyward-core's public module"
)]
mod glob;
mod json;
pub mod model;
mod pattern;
mod settings;

/// What `std`'s prelude would bring, for the `no_std` build.
#[cfg(target_arch = "wasm32")]
mod prelude {
    pub(crate) use alloc::borrow::ToOwned;
    pub(crate) use alloc::format;
    pub(crate) use alloc::string::{String, ToString};
    pub(crate) use alloc::vec;
    pub(crate) use alloc::vec::Vec;
}

#[cfg(target_arch = "wasm32")]
#[expect(
    unsafe_code,
    reason = "wit-bindgen's export! declares `unsafe extern \"C\"` functions with `export_name`"
)]
mod component;

use alloc::rc::Rc;

use crate::model::{DecideRequest, PluginError, SecretDecision};
#[cfg(target_arch = "wasm32")]
use crate::prelude::*;

pub use settings::Policy;

/// Settings documents kept parsed (the most recently validated ones).
const KEPT: usize = 4;

/// The last settings documents `validate-settings` accepted, parsed.
/// Every call runs in a fresh instance, so this only lasts if the host
/// pre-initialises the plugin: it calls `validate-settings` with the
/// configured settings and snapshots the instance, and every later
/// `decide` with the same text (compared byte for byte) skips parsing.
type Known = Vec<(String, Rc<Policy>)>;

#[cfg(not(target_arch = "wasm32"))]
fn with_known<R>(f: impl FnOnce(&mut Known) -> R) -> R {
    std::thread_local! {
        static KNOWN: std::cell::RefCell<Known> = const { std::cell::RefCell::new(Vec::new()) };
    }
    KNOWN.with_borrow_mut(f)
}

#[cfg(target_arch = "wasm32")]
fn with_known<R>(f: impl FnOnce(&mut Known) -> R) -> R {
    component::with_known(f)
}

fn known(settings: &str) -> Option<Rc<Policy>> {
    with_known(|known| {
        known
            .iter()
            .find(|(text, _)| same_text(text, settings))
            .map(|(_, policy)| policy.clone())
    })
}

/// Whether two texts are byte for byte the same, compared eight bytes at a
/// time. Every call compares its settings document (hundreds of bytes) with
/// the kept ones, and on wasm32 `==` ends in the C library's `memcmp`, which
/// compares one byte at a time: that was the plugin's hottest function.
fn same_text(a: &str, b: &str) -> bool {
    fn word(bytes: &[u8]) -> u64 {
        let mut word = [0; 8];
        word.copy_from_slice(bytes);
        u64::from_le_bytes(word)
    }
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let (mut a, mut b) = (a.chunks_exact(8), b.chunks_exact(8));
    a.by_ref().zip(b.by_ref()).all(|(x, y)| word(x) == word(y)) && a.remainder() == b.remainder()
}

/// Check a settings document (`validate-settings`), and keep it parsed.
pub fn validate_settings(settings: &str) -> Result<(), PluginError> {
    if known(settings).is_some() {
        return Ok(());
    }
    let policy = Policy::parse(settings).map_err(PluginError::InvalidSettings)?;
    with_known(|known| {
        if known.len() == KEPT {
            known.remove(0);
        }
        known.push((settings.to_string(), Rc::new(policy)));
    });
    Ok(())
}

/// Decide on every requested secret, in request order (`decide`).
pub fn decide(request: &DecideRequest) -> Result<Vec<SecretDecision>, PluginError> {
    let policy = match known(&request.settings) {
        Some(policy) => policy,
        None => Rc::new(Policy::parse(&request.settings).map_err(PluginError::InvalidSettings)?),
    };
    for (i, secret) in request.secrets.iter().enumerate() {
        if request.secrets[..i]
            .iter()
            .any(|s| s.reference == secret.reference)
        {
            return Err(PluginError::InvalidInput(format!(
                "secrets[{i}]: reference {:?} is requested twice",
                secret.reference
            )));
        }
    }
    Ok(policy.decide(&request.workload, &request.secrets))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{DeliveryKind, Engine, SecretRequest, Workload};

    fn request(settings: &str) -> DecideRequest {
        DecideRequest {
            workload: Workload {
                namespace: "team-a".into(),
                ..Workload::default()
            },
            secrets: vec![SecretRequest {
                reference: "secret/data/team-a/db".into(),
                engine: Engine::Kv2,
                mount: "secret".into(),
                path: "team-a/db".into(),
                version: None,
                parameters: Vec::new(),
                delivery: vec![DeliveryKind::File],
            }],
            settings: settings.into(),
        }
    }

    fn settings(n: usize) -> String {
        format!(
            r#"{{"rules": [{{"name": "r{n}", "match": {{"namespaces": ["team-a"]}}, "allow": {{"paths": ["secret/team-a/**"]}}}}]}}"#
        )
    }

    #[test]
    fn same_text_is_byte_equality() {
        let base = "0123456789abcdefghij";
        for len in 0..=base.len() {
            let a = &base[..len];
            assert!(same_text(a, a), "{a:?}");
            assert!(!same_text(a, &base[..len.saturating_sub(1)]) || len == 0);
            // One byte changed anywhere: in a full word or in the remainder.
            for at in 0..len {
                let mut b = a.as_bytes().to_vec();
                b[at] = b'#';
                let b = String::from_utf8(b).unwrap();
                assert!(!same_text(a, &b), "{a:?} vs {b:?}");
            }
        }
    }

    #[test]
    fn validated_settings_are_kept_and_give_the_same_decisions() {
        let fresh: Vec<_> = (0..6)
            .map(|n| decide(&request(&settings(n))).unwrap())
            .collect();
        for n in 0..6 {
            validate_settings(&settings(n)).unwrap();
        }
        // Only the last KEPT are kept, oldest evicted first.
        for (n, expected) in fresh.iter().enumerate() {
            assert_eq!(known(&settings(n)).is_some(), n >= 6 - KEPT, "{n}");
            assert_eq!(&decide(&request(&settings(n))).unwrap(), expected, "{n}");
        }
        // Same text only: a reformatted document is parsed on its own.
        let spaced = settings(5).replace(": ", ":  ");
        assert!(known(&spaced).is_none());
        assert_eq!(decide(&request(&spaced)).unwrap(), fresh[5]);
        // Invalid settings are never kept.
        assert!(validate_settings("{").is_err());
        assert!(known("{").is_none());
    }
}
