//! `policy-rules`: Keyward's first-party declarative policy plugin.
//!
//! Built for `wasm32-wasip2`, this crate is a component of the `policy` world
//! (`wit/keyward.wit`) that grants or denies requested secrets from ordered
//! rules in its settings: workload criteria (namespace, service account,
//! labels, namespace labels, images, kind, cluster, name) and path patterns
//! with placeholders, with limits (keys, TTL cap, delivery kinds, targets).
//! `README.md` documents the settings schema.
//!
//! The decision logic is plain Rust over `keyward-core`'s types so that it
//! tests natively; the WIT glue (`component`, wasm32 only) only converts.
//! It depends on `keyward-core` alone, and never sees a secret value.

mod decide;
mod duration;
mod json;
mod pattern;
mod settings;

#[cfg(target_arch = "wasm32")]
#[expect(
    unsafe_code,
    reason = "wit-bindgen's export! declares `unsafe extern \"C\"` functions with `export_name`"
)]
mod component;

use keyward_core::{DecideRequest, PluginError, SecretDecision};

pub use settings::Policy;

/// Check a settings document (`validate-settings`).
pub fn validate_settings(settings: &str) -> Result<(), PluginError> {
    Policy::parse(settings)
        .map(drop)
        .map_err(PluginError::InvalidSettings)
}

/// Decide on every requested secret, in request order (`decide`).
pub fn decide(request: &DecideRequest) -> Result<Vec<SecretDecision>, PluginError> {
    let policy = Policy::parse(&request.settings).map_err(PluginError::InvalidSettings)?;
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
