//! Keyward example policy plugin (world `policy`).
//!
//! * A team may read only the paths under `<mount>/<team>/`, where `<team>` is
//!   the value of the namespace label named by `team-label` (default `team`).
//! * A production secret (a path with a segment `prod`) is denied unless every
//!   image of the workload starts with the `registry` setting.
//!
//! The same behaviour is implemented in Python, JavaScript and C next to this
//! crate and checked by one suite: `tests/conformance/policy`.

wit_bindgen::generate!({
    path: "../../../../wit",
    world: "policy",
});

use exports::keyward::plugin::decider::{DecideRequest, Guest};
use keyward::plugin::host::{Level, log};
use keyward::plugin::types::{Grant, PluginError, SecretDecision, SecretRequest, Verdict};
use serde_json::Value;

struct Plugin;

export!(Plugin);

impl Guest for Plugin {
    fn validate_settings(settings: String) -> Result<(), PluginError> {
        Settings::parse(&settings).map(|_| ())
    }

    fn decide(request: DecideRequest) -> Result<Vec<SecretDecision>, PluginError> {
        let settings = Settings::parse(&request.settings)?;
        if settings.debug_hang {
            hang();
        }
        if settings.debug_allocate {
            allocate_until_failure();
        }
        let team = request
            .workload
            .namespace_labels
            .iter()
            .find(|(key, _)| *key == settings.team_label)
            .map(|(_, value)| value.as_str())
            .filter(|value| !value.is_empty());
        let decisions: Vec<SecretDecision> = request
            .secrets
            .iter()
            .map(|secret| decide_one(&settings, team, &request.workload.images, secret))
            .collect();
        let allowed = decisions
            .iter()
            .filter(|d| matches!(d.verdict, Verdict::Allow(_)))
            .count();
        log(
            Level::Debug,
            &format!(
                "team {}: {allowed} allowed, {} denied",
                team.unwrap_or("(none)"),
                decisions.len() - allowed
            ),
        );
        Ok(decisions)
    }
}

/// The policy's settings, checked in a fixed order so that every language
/// reports the same first problem.
struct Settings {
    registry: String,
    team_label: String,
    max_ttl_seconds: Option<u64>,
    debug_hang: bool,
    debug_allocate: bool,
}

const KNOWN: [&str; 5] = [
    "registry",
    "team-label",
    "max-ttl-seconds",
    "debug-hang",
    "debug-allocate",
];

impl Settings {
    fn parse(raw: &str) -> Result<Settings, PluginError> {
        let invalid = |message: String| PluginError::InvalidSettings(message);
        let doc: Value = serde_json::from_str(raw)
            .map_err(|e| invalid(format!("settings are not valid JSON: {e}")))?;
        let Value::Object(map) = doc else {
            return Err(invalid("settings must be a JSON object".into()));
        };
        let mut unknown: Vec<&String> = map.keys().filter(|k| !KNOWN.contains(&k.as_str())).collect();
        unknown.sort();
        if let Some(key) = unknown.first() {
            return Err(invalid(format!("unknown setting `{key}`")));
        }
        let registry = match map.get("registry") {
            None => return Err(invalid("`registry` is required".into())),
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            Some(_) => return Err(invalid("`registry` must be a non-empty string".into())),
        };
        let team_label = match map.get("team-label") {
            None => "team".to_string(),
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            Some(_) => return Err(invalid("`team-label` must be a non-empty string".into())),
        };
        let max_ttl_seconds = match map.get("max-ttl-seconds") {
            None => None,
            Some(value) => match value.as_u64() {
                Some(n) if n > 0 && n <= MAX_SAFE_INTEGER => Some(n),
                _ => return Err(invalid("`max-ttl-seconds` must be a positive integer".into())),
            },
        };
        Ok(Settings {
            registry,
            team_label,
            max_ttl_seconds,
            debug_hang: flag(&map, "debug-hang")?,
            debug_allocate: flag(&map, "debug-allocate")?,
        })
    }
}

/// The largest integer every language's JSON parser reads exactly.
const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

fn flag(map: &serde_json::Map<String, Value>, key: &str) -> Result<bool, PluginError> {
    match map.get(key) {
        None => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(PluginError::InvalidSettings(format!("`{key}` must be true or false"))),
    }
}

fn decide_one(
    settings: &Settings,
    team: Option<&str>,
    images: &[String],
    secret: &SecretRequest,
) -> SecretDecision {
    let decision = |verdict: Verdict, rule: &str| SecretDecision {
        reference: secret.reference.clone(),
        verdict,
        rule: Some(rule.to_string()),
    };
    let deny = |reason: String, rule: &str| decision(Verdict::Deny(reason), rule);
    let Some(team) = team else {
        return deny(
            format!("the namespace has no `{}` label", settings.team_label),
            "team-label",
        );
    };
    let full = format!("{}/{}", secret.mount, secret.path);
    let segments: Vec<&str> = secret.path.split('/').collect();
    if segments.iter().any(|s| s.is_empty() || *s == "." || *s == "..") {
        return deny(format!("`{full}` is not a normalised path"), "team-prefix");
    }
    if segments.len() < 2 || segments[0] != team {
        return deny(
            format!("`{full}` is outside team `{team}`'s prefix `{}/{team}/`", secret.mount),
            "team-prefix",
        );
    }
    let grant = Grant {
        allowed_keys: None,
        max_ttl_seconds: settings.max_ttl_seconds,
        delivery: None,
        targets: None,
    };
    if !segments.contains(&"prod") {
        return decision(Verdict::Allow(grant), "team-prefix");
    }
    if images.is_empty() {
        return deny(
            format!("production secret `{full}`: the workload lists no images"),
            "prod-registry",
        );
    }
    if let Some(image) = images.iter().find(|i| !i.starts_with(&settings.registry)) {
        return deny(
            format!(
                "production secret `{full}`: image `{image}` is not from `{}`",
                settings.registry
            ),
            "prod-registry",
        );
    }
    decision(Verdict::Allow(grant), "prod-registry")
}

/// Test-only (`debug-hang`): spin until the host's deadline stops us.
fn hang() -> ! {
    loop {
        std::hint::spin_loop();
    }
}

/// Test-only (`debug-allocate`): allocate 1 MiB after 1 MiB, writing to
/// each, until the host's memory limit makes an allocation fail (which
/// aborts: a trap). One write per chunk, neither a fill nor `vec![0; n]`
/// (calloc clears every page): the limit is then reached in milliseconds,
/// well before the deadline.
fn allocate_until_failure() -> ! {
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    loop {
        let mut chunk = Vec::with_capacity(1 << 20);
        chunk.push(0xA5u8);
        chunks.push(std::hint::black_box(chunk));
    }
}
