//! The WIT glue: the `decider` export, converting between the generated
//! bindings and `keyward-core`'s types. No decision logic lives here.

use std::collections::BTreeMap;

use keyward_core as core;

wit_bindgen::generate!({
    path: "../../wit",
    world: "policy",
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
        let request = core::DecideRequest {
            workload: workload(request.workload)?,
            secrets: request.secrets.into_iter().map(secret).collect(),
            settings: request.settings,
        };
        let decisions = crate::decide(&request).map_err(plugin_error)?;
        Ok(decisions.into_iter().map(decision).collect())
    }
}

fn workload(w: Workload) -> Result<core::Workload, PluginError> {
    Ok(core::Workload {
        cluster: w.cluster,
        namespace: w.namespace,
        service_account: w.service_account,
        kind: w.kind,
        name: w.name,
        labels: pairs(w.labels, "workload.labels")?,
        // No rule reads annotations; a repeated key is not worth failing for.
        annotations: w.annotations.into_iter().collect(),
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

fn secret(s: SecretRequest) -> core::SecretRequest {
    core::SecretRequest {
        reference: s.reference,
        engine: match s.engine {
            Engine::Kv1 => core::Engine::Kv1,
            Engine::Kv2 => core::Engine::Kv2,
            Engine::Database => core::Engine::Database,
            Engine::Pki => core::Engine::Pki,
            Engine::Transit => core::Engine::Transit,
            Engine::Generic => core::Engine::Generic,
        },
        mount: s.mount,
        path: s.path,
        version: s.version,
        parameters: s.parameters,
        delivery: s.delivery.into_iter().map(delivery_from_wit).collect(),
    }
}

fn delivery_from_wit(kind: DeliveryKind) -> core::DeliveryKind {
    match kind {
        DeliveryKind::Env => core::DeliveryKind::Env,
        DeliveryKind::File => core::DeliveryKind::File,
        DeliveryKind::KubeSecret => core::DeliveryKind::KubeSecret,
    }
}

fn delivery_to_wit(kind: core::DeliveryKind) -> DeliveryKind {
    match kind {
        core::DeliveryKind::Env => DeliveryKind::Env,
        core::DeliveryKind::File => DeliveryKind::File,
        core::DeliveryKind::KubeSecret => DeliveryKind::KubeSecret,
    }
}

fn decision(d: core::SecretDecision) -> SecretDecision {
    SecretDecision {
        reference: d.reference,
        verdict: match d.verdict {
            core::Verdict::Allow(g) => Verdict::Allow(Grant {
                allowed_keys: g.allowed_keys,
                max_ttl_seconds: g.max_ttl_seconds,
                delivery: g
                    .delivery
                    .map(|kinds| kinds.into_iter().map(delivery_to_wit).collect()),
                targets: g.targets,
            }),
            core::Verdict::Deny(reason) => Verdict::Deny(reason),
            core::Verdict::Abstain => Verdict::Abstain,
        },
        rule: d.rule,
    }
}

fn plugin_error(e: core::PluginError) -> PluginError {
    match e {
        core::PluginError::InvalidSettings(m) => PluginError::InvalidSettings(m),
        core::PluginError::InvalidInput(m) => PluginError::InvalidInput(m),
        core::PluginError::Failed(m) => PluginError::Failed(m),
    }
}
