//! {{name}}: a Keyward renderer plugin (world `renderer`).
//!
//! Starter format: every key of every granted secret as a `key=value` line,
//! sorted, in one file. Change it, then the cases in `cases/`.

wit_bindgen::generate!({
    path: "wit",
    world: "renderer",
});

use std::collections::BTreeMap;

use exports::keyward::plugin::render::{Artifact, File, Guest, RenderRequest, SecretRef};
use keyward::plugin::host::{Level, log};
use keyward::plugin::types::{DeliveryKind, PluginError};
use serde_json::Value;

struct Plugin;

export!(Plugin);

fn check_settings(raw: &str) -> Result<(), PluginError> {
    let invalid = PluginError::InvalidSettings;
    let doc: Value = serde_json::from_str(raw)
        .map_err(|e| invalid(format!("settings are not valid JSON: {e}")))?;
    let Value::Object(map) = doc else {
        return Err(invalid("settings must be a JSON object".into()));
    };
    match map.keys().next() {
        Some(key) => Err(invalid(format!("unknown setting `{key}`"))),
        None => Ok(()),
    }
}

impl Guest for Plugin {
    fn validate_settings(settings: String) -> Result<(), PluginError> {
        check_settings(&settings)
    }

    fn plan(template: Option<String>, settings: String) -> Result<Vec<SecretRef>, PluginError> {
        check_settings(&settings)?;
        match template {
            None => Ok(Vec::new()),
            Some(_) => Err(PluginError::InvalidInput("this renderer takes no template".into())),
        }
    }

    fn render(request: RenderRequest) -> Result<Vec<Artifact>, PluginError> {
        check_settings(&request.settings)?;
        let invalid = PluginError::InvalidInput;
        if request.template.is_some() {
            return Err(invalid("this renderer takes no template".into()));
        }
        if request.target.kind != DeliveryKind::File {
            return Err(invalid("this renderer writes files only".into()));
        }
        let mut lines = BTreeMap::new();
        for secret in &request.secrets {
            let mut data: Value = serde_json::from_str(&secret.data)
                .map_err(|_| invalid(format!("secret `{}`: data is not JSON", secret.reference)))?;
            // KV v2 responses hold the secret under `data`, next to `metadata`.
            if data.get("metadata").is_some() {
                data = data["data"].take();
            }
            let Value::Object(map) = data else {
                return Err(invalid(format!("secret `{}` holds no key/value data", secret.reference)));
            };
            for (key, value) in map {
                let Value::String(text) = value else {
                    return Err(invalid(format!("key `{key}` of `{}` is not a string", secret.reference)));
                };
                lines.insert(key, text);
            }
        }
        let contents: String = lines.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        log(Level::Debug, &format!("rendered {} keys", lines.len()));
        Ok(vec![Artifact::File(File {
            path: request.target.name,
            mode: request.target.mode.unwrap_or(0o600),
            contents: contents.into_bytes(),
        })])
    }
}
