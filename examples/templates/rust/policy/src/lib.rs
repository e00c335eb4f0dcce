//! {{name}}: a Keyward policy plugin (world `policy`).
//!
//! Starter rule: a workload may read the secrets whose path starts with its
//! namespace (`<mount>/<namespace>/...`); `max-ttl-seconds` in the settings
//! caps every grant. Change it, then the cases in `cases/`.

wit_bindgen::generate!({
    path: "wit",
    world: "policy",
});

use exports::keyward::plugin::decider::{DecideRequest, Guest};
use keyward::plugin::host::{Level, log};
use keyward::plugin::types::{Grant, PluginError, SecretDecision, Verdict};
use serde_json::Value;

struct Plugin;

export!(Plugin);

struct Settings {
    max_ttl_seconds: Option<u64>,
}

fn parse_settings(raw: &str) -> Result<Settings, PluginError> {
    let invalid = PluginError::InvalidSettings;
    let doc: Value = serde_json::from_str(raw)
        .map_err(|e| invalid(format!("settings are not valid JSON: {e}")))?;
    let Value::Object(map) = doc else {
        return Err(invalid("settings must be a JSON object".into()));
    };
    let mut max_ttl_seconds = None;
    for (key, value) in &map {
        match key.as_str() {
            "max-ttl-seconds" => match value.as_u64() {
                Some(n) if n > 0 => max_ttl_seconds = Some(n),
                _ => return Err(invalid("`max-ttl-seconds` must be a positive integer".into())),
            },
            other => return Err(invalid(format!("unknown setting `{other}`"))),
        }
    }
    Ok(Settings { max_ttl_seconds })
}

impl Guest for Plugin {
    fn validate_settings(settings: String) -> Result<(), PluginError> {
        parse_settings(&settings).map(|_| ())
    }

    fn decide(request: DecideRequest) -> Result<Vec<SecretDecision>, PluginError> {
        let settings = parse_settings(&request.settings)?;
        let namespace = &request.workload.namespace;
        let decisions: Vec<SecretDecision> = request
            .secrets
            .iter()
            .map(|secret| {
                let verdict = if namespace.is_empty() {
                    Verdict::Deny("the workload has no namespace".into())
                } else if secret.path.starts_with(&format!("{namespace}/")) {
                    Verdict::Allow(Grant {
                        allowed_keys: None,
                        max_ttl_seconds: settings.max_ttl_seconds,
                        delivery: None,
                        targets: None,
                    })
                } else {
                    Verdict::Deny(format!(
                        "`{}/{}` is outside namespace `{namespace}`",
                        secret.mount, secret.path
                    ))
                };
                SecretDecision {
                    reference: secret.reference.clone(),
                    verdict,
                    rule: Some("namespace-prefix".into()),
                }
            })
            .collect();
        log(Level::Debug, &format!("decided {} secrets", decisions.len()));
        Ok(decisions)
    }
}
