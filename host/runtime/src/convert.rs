//! Conversions between the generated WIT types and `keyward_core`'s. A WIT
//! change touches this file and `bindings.rs` only.

use std::collections::BTreeMap;

use keyward_core as core;
use keyward_core::{PluginFailure, SandboxReason};

use crate::bindings::{decider, render, types};

fn pairs(map: &BTreeMap<String, String>) -> Vec<(String, String)> {
    map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// Pairs from a plugin into a map; a repeated key is a contract violation.
fn map_from(
    list: Vec<(String, String)>,
    what: &str,
) -> Result<BTreeMap<String, String>, PluginFailure> {
    let mut map = BTreeMap::new();
    for (k, v) in list {
        if map.contains_key(&k) {
            return Err(contract(format!("{what}: key {k:?} appears twice")));
        }
        map.insert(k, v);
    }
    Ok(map)
}

fn contract(detail: String) -> PluginFailure {
    PluginFailure::Sandbox {
        reason: SandboxReason::Contract,
        detail,
    }
}

pub(crate) fn workload(w: &core::Workload) -> types::Workload {
    types::Workload {
        cluster: w.cluster.clone(),
        namespace: w.namespace.clone(),
        service_account: w.service_account.clone(),
        kind: w.kind.clone(),
        name: w.name.clone(),
        labels: pairs(&w.labels),
        annotations: pairs(&w.annotations),
        namespace_labels: pairs(&w.namespace_labels),
        images: w.images.clone(),
    }
}

pub(crate) fn delivery_kind(k: core::DeliveryKind) -> types::DeliveryKind {
    match k {
        core::DeliveryKind::Env => types::DeliveryKind::Env,
        core::DeliveryKind::File => types::DeliveryKind::File,
        core::DeliveryKind::KubeSecret => types::DeliveryKind::KubeSecret,
    }
}

fn delivery_kind_from(k: types::DeliveryKind) -> core::DeliveryKind {
    match k {
        types::DeliveryKind::Env => core::DeliveryKind::Env,
        types::DeliveryKind::File => core::DeliveryKind::File,
        types::DeliveryKind::KubeSecret => core::DeliveryKind::KubeSecret,
    }
}

fn engine(e: core::Engine) -> types::Engine {
    match e {
        core::Engine::Kv1 => types::Engine::Kv1,
        core::Engine::Kv2 => types::Engine::Kv2,
        core::Engine::Database => types::Engine::Database,
        core::Engine::Pki => types::Engine::Pki,
        core::Engine::Transit => types::Engine::Transit,
        core::Engine::Generic => types::Engine::Generic,
    }
}

fn secret_request(s: &core::SecretRequest) -> types::SecretRequest {
    types::SecretRequest {
        reference: s.reference.clone(),
        engine: engine(s.engine),
        mount: s.mount.clone(),
        path: s.path.clone(),
        version: s.version,
        parameters: s.parameters.clone(),
        delivery: s.delivery.iter().copied().map(delivery_kind).collect(),
    }
}

pub(crate) fn decide_request(r: &core::DecideRequest) -> decider::DecideRequest {
    decider::DecideRequest {
        workload: workload(&r.workload),
        secrets: r.secrets.iter().map(secret_request).collect(),
        settings: r.settings.clone(),
    }
}

fn grant_from(g: types::Grant) -> core::Grant {
    core::Grant {
        allowed_keys: g.allowed_keys,
        max_ttl_seconds: g.max_ttl_seconds,
        delivery: g
            .delivery
            .map(|kinds| kinds.into_iter().map(delivery_kind_from).collect()),
        targets: g.targets,
    }
}

pub(crate) fn decisions_from(list: Vec<types::SecretDecision>) -> Vec<core::SecretDecision> {
    list.into_iter()
        .map(|d| core::SecretDecision {
            reference: d.reference,
            verdict: match d.verdict {
                types::Verdict::Allow(g) => core::Verdict::Allow(grant_from(g)),
                types::Verdict::Deny(reason) => core::Verdict::Deny(reason),
                types::Verdict::Abstain => core::Verdict::Abstain,
            },
            rule: d.rule,
        })
        .collect()
}

pub(crate) fn plugin_error_from(e: types::PluginError) -> core::PluginError {
    match e {
        types::PluginError::InvalidSettings(m) => core::PluginError::InvalidSettings(m),
        types::PluginError::InvalidInput(m) => core::PluginError::InvalidInput(m),
        types::PluginError::Failed(m) => core::PluginError::Failed(m),
    }
}

pub(crate) fn secret_refs_from(list: Vec<render::SecretRef>) -> Vec<core::SecretRef> {
    list.into_iter()
        .map(|r| core::SecretRef {
            reference: r.reference,
            parameters: r.parameters,
            kind: match r.kind {
                render::RefKind::Secret => core::RefKind::Secret,
                render::RefKind::PkiCert => core::RefKind::PkiCert,
            },
        })
        .collect()
}

fn secret_value(v: &core::SecretValue) -> render::SecretValue {
    render::SecretValue {
        reference: v.reference.clone(),
        parameters: v.parameters.clone(),
        lease_id: v.lease_id.clone(),
        lease_duration: v.lease_duration,
        renewable: v.renewable,
        // Serialising a `serde_json::Value` cannot fail.
        data: serde_json::to_string(v.data.expose()).unwrap_or_default(),
        warnings: v.warnings.clone(),
    }
}

pub(crate) fn render_request(r: &core::RenderRequest) -> render::RenderRequest {
    render::RenderRequest {
        workload: workload(&r.workload),
        template: r.template.clone(),
        settings: r.settings.clone(),
        target: render::Target {
            kind: delivery_kind(r.target.kind),
            name: r.target.name.clone(),
            mode: r.target.mode,
        },
        secrets: r.secrets.iter().map(secret_value).collect(),
    }
}

pub(crate) fn artifacts_from(
    list: Vec<render::Artifact>,
) -> Result<Vec<core::Artifact>, PluginFailure> {
    list.into_iter()
        .map(|a| {
            Ok(match a {
                render::Artifact::Env(e) => core::Artifact::Env {
                    name: e.name,
                    value: core::Sensitive(e.value),
                },
                render::Artifact::File(f) => core::Artifact::File {
                    path: f.path,
                    mode: f.mode,
                    contents: core::Sensitive(f.contents),
                },
                render::Artifact::KubeSecret(s) => {
                    let mut data = BTreeMap::new();
                    for (k, v) in s.data {
                        if data.contains_key(&k) {
                            return Err(contract(format!(
                                "Kubernetes Secret {:?}: data key {k:?} appears twice",
                                s.name
                            )));
                        }
                        data.insert(k, core::Sensitive(v));
                    }
                    core::Artifact::KubeSecret {
                        labels: map_from(s.labels, "Kubernetes Secret labels")?,
                        annotations: map_from(s.annotations, "Kubernetes Secret annotations")?,
                        name: s.name,
                        secret_type: s.secret_type,
                        data,
                    }
                }
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_secret_keys_break_the_contract() {
        let a = render::Artifact::KubeSecret(render::KubeSecret {
            name: "app".into(),
            secret_type: "Opaque".into(),
            data: vec![("k".into(), b"1".to_vec()), ("k".into(), b"2".to_vec())],
            labels: vec![],
            annotations: vec![],
        });
        let err = artifacts_from(vec![a]).unwrap_err();
        assert_eq!(err.kind_label(), "contract");
    }

    #[test]
    fn render_request_carries_data_as_json() {
        let value = core::SecretValue {
            reference: "secret/data/app".into(),
            parameters: vec![],
            lease_id: String::new(),
            lease_duration: 0,
            renewable: false,
            data: core::Sensitive(serde_json::json!({"data": {"password": "hunter22"}})),
            warnings: vec![],
        };
        let req = core::RenderRequest {
            workload: core::Workload::default(),
            template: None,
            settings: "{}".into(),
            target: core::Target {
                kind: core::DeliveryKind::File,
                name: "out".into(),
                mode: Some(0o600),
            },
            secrets: vec![value],
        };
        let wit = render_request(&req);
        assert_eq!(wit.secrets[0].data, r#"{"data":{"password":"hunter22"}}"#);
        assert_eq!(wit.target.mode, Some(0o600));
    }
}
