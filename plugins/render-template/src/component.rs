//! WebAssembly component glue: the `renderer` world's exports, converting
//! between the WIT types and the crate's native API, and the global
//! allocator. Compiled for `wasm32` only.

// Generated code: its public items are not part of this crate's API.
#[allow(unreachable_pub, missing_debug_implementations)]
mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "renderer",
    });
}

// The first-party plugins' bump allocator (see its docs): each call is a
// fresh instance, and a general-purpose allocator cost every render ~7%.
#[path = "../../common/bump.rs"]
mod bump;

use bindings::exports::keyward::plugin::render as wit;
use bindings::keyward::plugin::types as wit_types;

struct Component;

fn to_wit_error(e: crate::PluginError) -> wit_types::PluginError {
    match e {
        crate::PluginError::InvalidSettings(m) => wit_types::PluginError::InvalidSettings(m),
        crate::PluginError::InvalidInput(m) => wit_types::PluginError::InvalidInput(m),
        crate::PluginError::Failed(m) => wit_types::PluginError::Failed(m),
    }
}

fn from_wit_kind(k: wit_types::DeliveryKind) -> crate::DeliveryKind {
    match k {
        wit_types::DeliveryKind::Env => crate::DeliveryKind::Env,
        wit_types::DeliveryKind::File => crate::DeliveryKind::File,
        wit_types::DeliveryKind::KubeSecret => crate::DeliveryKind::KubeSecret,
    }
}

fn to_wit_artifact(a: crate::Artifact) -> wit::Artifact {
    match a {
        crate::Artifact::Env(e) => wit::Artifact::Env(wit::EnvVar {
            name: e.name,
            value: e.value,
        }),
        crate::Artifact::File(f) => wit::Artifact::File(wit::File {
            path: f.path,
            mode: f.mode,
            contents: f.contents,
        }),
        crate::Artifact::KubeSecret(k) => wit::Artifact::KubeSecret(wit::KubeSecret {
            name: k.name,
            secret_type: k.secret_type,
            data: k.data,
            labels: k.labels,
            annotations: k.annotations,
        }),
    }
}

/// Report a panic (a bug) through the host's `log` before the call traps:
/// the crate is built for `wasm32-unknown-unknown` (see its Cargo.toml), where
/// `std` prints panic messages nowhere. Installed once per instance (a
/// pre-initialised snapshot already has it). The `log` import costs each
/// call ~3 µs (wit-component adds a shim and a fixup instance for it), the
/// price of seeing what went wrong.
fn report_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            bindings::keyward::plugin::host::log(
                bindings::keyward::plugin::host::Level::Error,
                &format!("render-template panicked: {info}"),
            );
        }));
    });
}

impl wit::Guest for Component {
    fn validate_settings(settings: String) -> Result<(), wit_types::PluginError> {
        report_panics();
        crate::validate_settings(&settings).map_err(to_wit_error)
    }

    fn plan(
        template: Option<String>,
        settings: String,
    ) -> Result<Vec<wit::SecretRef>, wit_types::PluginError> {
        report_panics();
        let refs = crate::plan(template.as_deref(), &settings).map_err(to_wit_error)?;
        Ok(refs
            .into_iter()
            .map(|r| wit::SecretRef {
                reference: r.reference,
                parameters: r.parameters,
                kind: match r.kind {
                    crate::RefKind::Secret => wit::RefKind::Secret,
                    crate::RefKind::PkiCert => wit::RefKind::PkiCert,
                },
            })
            .collect())
    }

    fn render(request: wit::RenderRequest) -> Result<Vec<wit::Artifact>, wit_types::PluginError> {
        report_panics();
        let req = crate::RenderRequest {
            template: request.template,
            settings: request.settings,
            target: crate::Target {
                kind: from_wit_kind(request.target.kind),
                name: request.target.name,
                mode: request.target.mode,
            },
            secrets: request
                .secrets
                .into_iter()
                .map(|s| crate::SecretValue {
                    reference: s.reference,
                    parameters: s.parameters,
                    lease_id: s.lease_id,
                    lease_duration: s.lease_duration,
                    renewable: s.renewable,
                    data: s.data,
                    warnings: s.warnings,
                })
                .collect(),
        };
        let artifacts = crate::render(&req).map_err(to_wit_error)?;
        Ok(artifacts.into_iter().map(to_wit_artifact).collect())
    }
}

bindings::export!(Component with_types_in bindings);
