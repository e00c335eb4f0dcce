//! The renderer's settings (a JSON object; unknown keys are rejected).
//!
//! | key           | values                       | default      |
//! |---------------|------------------------------|--------------|
//! | `missing-key` | `error`, `zero`              | `error`      |
//! | `format`      | `map`, `json`, `dotenv`      | `map`        |
//! | `secret-key`  | Kubernetes Secret data key   | none (`secret.json` / `secret.env` for the json / dotenv formats) |
//! | `secret-type` | Kubernetes Secret type       | `Opaque`     |
//! | `labels`      | object of strings            | `{}`         |
//! | `annotations` | object of strings            | `{}`         |
//! | `file-mode`   | octal string `"0640"` or integer | `0o600` (a target's own mode wins) |
//! | `env-names`   | `verbatim`, `upper`          | `verbatim`   |

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::PluginError;
use crate::template::MissingKey;

/// Default output format when no template is given.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Format {
    /// One artifact per data key.
    #[default]
    Map,
    /// One JSON object of all keys.
    Json,
    /// `KEY=value` lines.
    Dotenv,
}

/// How data keys become environment variable names in the default formats.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum EnvNames {
    /// As written (must already be valid names).
    #[default]
    Verbatim,
    /// Upper-cased, every character outside `[A-Za-z0-9_]` turned into `_`.
    Upper,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
enum MissingKeySetting {
    #[default]
    Error,
    Zero,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawMode {
    Int(u32),
    Text(String),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct Raw {
    #[serde(default)]
    missing_key: MissingKeySetting,
    #[serde(default)]
    format: Format,
    secret_key: Option<String>,
    secret_type: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    file_mode: Option<RawMode>,
    #[serde(default)]
    env_names: EnvNames,
}

/// Validated settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Settings {
    pub(crate) missing_key: MissingKey,
    pub(crate) format: Format,
    pub(crate) secret_key: Option<String>,
    pub(crate) secret_type: String,
    pub(crate) labels: BTreeMap<String, String>,
    pub(crate) annotations: BTreeMap<String, String>,
    pub(crate) file_mode: u32,
    pub(crate) env_names: EnvNames,
}

/// Files default to owner read/write only.
pub(crate) const DEFAULT_FILE_MODE: u32 = 0o600;

fn invalid(msg: impl Into<String>) -> PluginError {
    PluginError::InvalidSettings(msg.into())
}

/// Kubernetes Secret data keys: `[-._a-zA-Z0-9]+`, at most 253 characters.
pub(crate) fn valid_secret_key(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 253
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

impl Settings {
    /// Parses and validates a settings document (`""` means `{}`).
    pub(crate) fn parse(json: &str) -> Result<Settings, PluginError> {
        let raw: Raw = if json.trim().is_empty() {
            Raw::default()
        } else {
            serde_json::from_str(json).map_err(|e| invalid(format!("settings: {e}")))?
        };
        let file_mode = match raw.file_mode {
            None => DEFAULT_FILE_MODE,
            Some(RawMode::Int(m)) => m,
            Some(RawMode::Text(t)) => {
                let digits = t.strip_prefix("0o").unwrap_or(&t);
                u32::from_str_radix(digits, 8).map_err(|_| {
                    invalid(format!(
                        "settings: file-mode {t:?} is not an octal mode such as \"0640\""
                    ))
                })?
            }
        };
        if file_mode > 0o7777 {
            return Err(invalid(format!(
                "settings: file-mode {file_mode:o} is larger than 07777"
            )));
        }
        if let Some(k) = &raw.secret_key
            && !valid_secret_key(k)
        {
            return Err(invalid(format!(
                "settings: secret-key {k:?} is not a valid Kubernetes Secret key ([-._a-zA-Z0-9]+)"
            )));
        }
        if raw
            .secret_type
            .as_deref()
            .is_some_and(|t| t.trim().is_empty())
        {
            return Err(invalid("settings: secret-type must not be empty"));
        }
        Ok(Settings {
            missing_key: match raw.missing_key {
                MissingKeySetting::Error => MissingKey::Error,
                MissingKeySetting::Zero => MissingKey::Zero,
            },
            format: raw.format,
            secret_key: raw.secret_key,
            secret_type: raw.secret_type.unwrap_or_else(|| "Opaque".to_string()),
            labels: raw.labels,
            annotations: raw.annotations,
            file_mode,
            env_names: raw.env_names,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(json: &str) -> String {
        match Settings::parse(json) {
            Err(PluginError::InvalidSettings(m)) => m,
            other => panic!("expected invalid settings, got {other:?}"),
        }
    }

    #[test]
    fn defaults() {
        let s = Settings::parse("{}").unwrap();
        assert_eq!(s.missing_key, MissingKey::Error);
        assert_eq!(s.format, Format::Map);
        assert_eq!(s.secret_type, "Opaque");
        assert_eq!(s.file_mode, 0o600);
        assert_eq!(Settings::parse("").unwrap(), s);
    }

    #[test]
    fn values() {
        let s = Settings::parse(
            r#"{"missing-key":"zero","format":"json","secret-key":"a.json","file-mode":"0640","labels":{"a":"b"}}"#,
        )
        .unwrap();
        assert_eq!(s.missing_key, MissingKey::Zero);
        assert_eq!(s.format, Format::Json);
        assert_eq!(s.file_mode, 0o640);
        assert_eq!(
            Settings::parse(r#"{"file-mode":420}"#).unwrap().file_mode,
            0o644
        );
    }

    #[test]
    fn rejects() {
        assert!(err(r#"{"nope":1}"#).contains("unknown field `nope`"));
        assert!(err(r#"{"format":"xml"}"#).contains("unknown variant `xml`"));
        assert!(err("{not json").contains("settings:"));
        assert!(err(r#"{"file-mode":"rw"}"#).contains("not an octal mode"));
        assert!(err(r#"{"secret-key":"a/b"}"#).contains("not a valid Kubernetes Secret key"));
        assert!(err("[]").contains("settings:"));
    }
}
