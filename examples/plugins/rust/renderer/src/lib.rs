//! Keyward example renderer plugin (world `renderer`): Java `.properties`.
//!
//! Every key of every granted secret becomes one `key=value` line, keys sorted
//! by their UTF-8 bytes, with `.properties` escaping. A template, when given,
//! lists the secrets to include (one reference per line, `k=v` parameters
//! after it). The `prefix` setting is put in front of every key.
//!
//! The same behaviour is implemented in Python, JavaScript and C next to this
//! crate and checked by one suite: `tests/conformance/renderer`.

wit_bindgen::generate!({
    path: "../../../../wit",
    world: "renderer",
});

use std::collections::BTreeMap;

use exports::keyward::plugin::render::{
    Artifact, File, Guest, KubeSecret, RefKind, RenderRequest, SecretRef, SecretValue,
};
use keyward::plugin::host::{Level, log};
use keyward::plugin::types::{DeliveryKind, PluginError};
use serde_json::Value;

struct Plugin;

export!(Plugin);

/// The data key of the Kubernetes Secret this renderer writes.
const SECRET_KEY: &str = "application.properties";
/// File mode when the target gives none.
const DEFAULT_MODE: u32 = 0o600;
/// The largest integer every language's JSON parser reads exactly.
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

impl Guest for Plugin {
    fn validate_settings(settings: String) -> Result<(), PluginError> {
        Settings::parse(&settings).map(|_| ())
    }

    fn plan(template: Option<String>, settings: String) -> Result<Vec<SecretRef>, PluginError> {
        Settings::parse(&settings)?;
        match template {
            None => Ok(Vec::new()),
            Some(text) => parse_template(&text),
        }
    }

    fn render(request: RenderRequest) -> Result<Vec<Artifact>, PluginError> {
        let settings = Settings::parse(&request.settings)?;
        if settings.debug_hang {
            hang();
        }
        if settings.debug_allocate {
            allocate_until_failure();
        }
        let invalid = PluginError::InvalidInput;
        if request.target.kind == DeliveryKind::Env {
            return Err(invalid(
                "this renderer writes files and Kubernetes Secrets, not environment variables".into(),
            ));
        }
        if request.target.name.is_empty() {
            return Err(invalid("the target has no name".into()));
        }
        let selected: Vec<&SecretValue> = match &request.template {
            None => request.secrets.iter().collect(),
            Some(text) => parse_template(text)?
                .iter()
                .map(|r| {
                    request
                        .secrets
                        .iter()
                        .find(|s| s.reference == r.reference && s.parameters == r.parameters)
                        .ok_or_else(|| {
                            invalid(format!(
                                "secret `{}` named in the template was not granted",
                                r.reference
                            ))
                        })
                })
                .collect::<Result<_, _>>()?,
        };
        let mut entries: BTreeMap<String, String> = BTreeMap::new();
        for secret in selected {
            for (key, value) in secret_entries(secret)? {
                let full = format!("{}{key}", settings.prefix);
                if entries.contains_key(&full) {
                    return Err(invalid(format!("duplicate key `{full}`")));
                }
                entries.insert(full, value);
            }
        }
        // BTreeMap<String, _> iterates in byte order: the sort every language uses.
        let mut contents = String::new();
        for (key, value) in &entries {
            escape(&mut contents, key, true);
            contents.push('=');
            escape(&mut contents, value, false);
            contents.push('\n');
        }
        log(Level::Debug, &format!("rendered {} keys", entries.len()));
        let artifact = match request.target.kind {
            DeliveryKind::File => Artifact::File(File {
                path: request.target.name,
                mode: request.target.mode.unwrap_or(DEFAULT_MODE),
                contents: contents.into_bytes(),
            }),
            _ => Artifact::KubeSecret(KubeSecret {
                name: request.target.name,
                secret_type: "Opaque".into(),
                data: vec![(SECRET_KEY.into(), contents.into_bytes())],
                labels: Vec::new(),
                annotations: Vec::new(),
            }),
        };
        Ok(vec![artifact])
    }
}

struct Settings {
    prefix: String,
    debug_hang: bool,
    debug_allocate: bool,
}

const KNOWN: [&str; 3] = ["prefix", "debug-hang", "debug-allocate"];

impl Settings {
    fn parse(raw: &str) -> Result<Settings, PluginError> {
        let invalid = PluginError::InvalidSettings;
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
        let prefix = match map.get("prefix") {
            None => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(_) => return Err(invalid("`prefix` must be a string".into())),
        };
        let flag = |key: &str| match map.get(key) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(invalid(format!("`{key}` must be true or false"))),
        };
        Ok(Settings {
            prefix,
            debug_hang: flag("debug-hang")?,
            debug_allocate: flag("debug-allocate")?,
        })
    }
}

/// A template is a list of secrets, one per line: `reference [k=v ...]`.
/// Blank lines and lines starting with `#` are skipped.
fn parse_template(text: &str) -> Result<Vec<SecretRef>, PluginError> {
    let mut refs: Vec<SecretRef> = Vec::new();
    for (index, line) in text.split('\n').enumerate() {
        let number = index + 1;
        let line = line.trim_matches([' ', '\t', '\r']);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut tokens = line.split([' ', '\t']).filter(|t| !t.is_empty());
        let reference = tokens.next().unwrap_or_default().to_string();
        let mut parameters = Vec::new();
        for token in tokens {
            match token.split_once('=') {
                Some((key, value)) if !key.is_empty() => {
                    parameters.push((key.to_string(), value.to_string()));
                }
                _ => {
                    return Err(PluginError::InvalidInput(format!(
                        "template line {number}: parameter `{token}` is not key=value"
                    )));
                }
            }
        }
        if refs
            .iter()
            .any(|r| r.reference == reference && r.parameters == parameters)
        {
            return Err(PluginError::InvalidInput(format!(
                "template line {number}: `{reference}` is listed twice"
            )));
        }
        refs.push(SecretRef {
            reference,
            parameters,
            kind: RefKind::Secret,
        });
    }
    Ok(refs)
}

/// The keys and rendered values of one secret. KV v2 responses (`data` and
/// `metadata` side by side) are unwrapped to their inner `data`.
fn secret_entries(secret: &SecretValue) -> Result<Vec<(String, String)>, PluginError> {
    let reference = &secret.reference;
    let invalid = PluginError::InvalidInput;
    let doc: Value = serde_json::from_str(&secret.data)
        .map_err(|_| invalid(format!("secret `{reference}`: data is not a JSON object")))?;
    let Value::Object(mut map) = doc else {
        return Err(invalid(format!("secret `{reference}`: data is not a JSON object")));
    };
    if map.contains_key("data") && map.contains_key("metadata") {
        map = match map.remove("data") {
            Some(Value::Object(inner)) => inner,
            _ => {
                return Err(invalid(format!(
                    "secret `{reference}`: the KV v2 version holds no data (deleted or destroyed)"
                )));
            }
        };
    }
    map.into_iter()
        .map(|(key, value)| {
            let text = match value {
                Value::String(s) => s,
                Value::Bool(b) => b.to_string(),
                Value::Null => String::new(),
                Value::Number(n) => match n.as_f64() {
                    Some(f) if f.fract() == 0.0 && f.abs() <= MAX_SAFE_INTEGER => {
                        format!("{}", f as i64)
                    }
                    _ => return Err(unrenderable(reference, &key)),
                },
                Value::Array(_) | Value::Object(_) => return Err(unrenderable(reference, &key)),
            };
            Ok((key, text))
        })
        .collect()
}

fn unrenderable(reference: &str, key: &str) -> PluginError {
    PluginError::InvalidInput(format!(
        "secret `{reference}`, key `{key}`: only strings, integers, booleans and null can be written to .properties"
    ))
}

/// `.properties` escaping: `\`, `=`, `:`, `#`, `!` get a backslash; newline,
/// carriage return, tab and form feed become `\n`, `\r`, `\t`, `\f`; other
/// control characters `\uXXXX`; spaces are escaped everywhere in keys and
/// at the start of values.
fn escape(out: &mut String, text: &str, is_key: bool) {
    for (index, c) in text.chars().enumerate() {
        match c {
            '\\' | '=' | ':' | '#' | '!' => {
                out.push('\\');
                out.push(c);
            }
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{c}' => out.push_str("\\f"),
            ' ' if is_key || index == 0 => out.push_str("\\ "),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\u{:04X}", c as u32));
            }
            c => out.push(c),
        }
    }
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
