//! The case file as written (serde), and its validation into a [`Case`].

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use keyward_core::{DeliveryKind, SecretRef, SecretRequest, SecretValue, Target, Workload};
use serde::Deserialize;

use super::expect::ExpectFile;
use super::{Call, Case, Input};

/// A case file exactly as written. Unknown keys are an error.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub(super) struct CaseFile {
    #[serde(default)]
    description: Option<String>,
    call: Call,
    #[serde(default)]
    settings: Option<serde_yaml::Value>,
    #[serde(default)]
    settings_raw: Option<String>,
    #[serde(default)]
    workload: Option<Workload>,
    #[serde(default)]
    secrets: Option<Vec<SecretRequest>>,
    #[serde(default)]
    template: Option<String>,
    #[serde(default)]
    template_file: Option<String>,
    #[serde(default)]
    target: Option<Target>,
    #[serde(default)]
    values: Option<serde_yaml::Mapping>,
    expect: ExpectFile,
}

impl CaseFile {
    pub(super) fn validate(self, name: String, file: PathBuf, base: &Path) -> Result<Case> {
        let call = self.call;
        let only_for = |field: &str, present: bool, calls: &[Call]| -> Result<()> {
            if present && !calls.contains(&call) {
                bail!(
                    "`{field}` is not used by `call: {}` (only by {})",
                    call.as_str(),
                    calls
                        .iter()
                        .map(|c| format!("`{}`", c.as_str()))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            Ok(())
        };
        only_for(
            "workload",
            self.workload.is_some(),
            &[Call::Decide, Call::Render],
        )?;
        only_for("secrets", self.secrets.is_some(), &[Call::Decide])?;
        only_for(
            "template",
            self.template.is_some(),
            &[Call::Plan, Call::Render],
        )?;
        only_for(
            "template-file",
            self.template_file.is_some(),
            &[Call::Plan, Call::Render],
        )?;
        only_for("target", self.target.is_some(), &[Call::Render])?;
        only_for("values", self.values.is_some(), &[Call::Render])?;

        let settings = match (self.settings, self.settings_raw) {
            (Some(_), Some(_)) => bail!("settings: give `settings` or `settings-raw`, not both"),
            (None, Some(raw)) => raw,
            (Some(value), None) => yaml_to_json_string(&value).context("settings")?,
            (None, None) => "{}".to_string(),
        };

        let template = match (self.template, self.template_file) {
            (Some(_), Some(_)) => bail!("template: give `template` or `template-file`, not both"),
            (Some(t), None) => Some(t),
            (None, Some(rel)) => {
                let path = base.join(&rel);
                Some(
                    std::fs::read_to_string(&path).with_context(|| {
                        format!("template-file: cannot read {}", path.display())
                    })?,
                )
            }
            (None, None) => None,
        };

        let input = match call {
            Call::ValidateSettings => Input::ValidateSettings,
            Call::Decide => Input::Decide {
                workload: self.workload.unwrap_or_default(),
                secrets: self.secrets.unwrap_or_default(),
            },
            Call::Plan => Input::Plan { template },
            Call::Render => Input::Render {
                workload: self.workload.unwrap_or_default(),
                template,
                target: self.target.unwrap_or(Target {
                    kind: DeliveryKind::File,
                    name: "out".into(),
                    mode: Some(0o600),
                }),
                values: self
                    .values
                    .map(|v| values(&v))
                    .transpose()?
                    .unwrap_or_default(),
            },
        };

        let expect = self.expect.validate(call).context("expect")?;
        Ok(Case {
            name,
            file,
            description: self.description,
            call,
            settings,
            input,
            expect,
        })
    }
}

/// Serialise a YAML value to a JSON document.
pub(super) fn yaml_to_json(value: &serde_yaml::Value) -> Result<serde_json::Value> {
    serde_json::to_value(value).map_err(|e| anyhow!("cannot be expressed as JSON: {e}"))
}

fn yaml_to_json_string(value: &serde_yaml::Value) -> Result<String> {
    Ok(yaml_to_json(value)?.to_string())
}

/// Turn `values` (key -> Vault response body) into secret values, in file
/// order. A key is the reference as the template writes it, followed by
/// ` k=v` for each parameter.
pub(crate) fn values(map: &serde_yaml::Mapping) -> Result<Vec<SecretValue>> {
    let mut out = Vec::with_capacity(map.len());
    for (key, body) in map {
        let key = key
            .as_str()
            .ok_or_else(|| anyhow!("values: every key must be a string (a secret reference)"))?;
        let body = yaml_to_json(body).with_context(|| format!("values.{key}"))?;
        out.push(value_from_key(key, &body).with_context(|| format!("values.{key}"))?);
    }
    Ok(out)
}

/// Split a fixture key (`path?version=N k=v ...`) into a reference.
pub(crate) fn secret_ref_from_key(key: &str) -> SecretRef {
    let mut parts = key.split(' ').filter(|p| !p.is_empty());
    let reference = parts.next().unwrap_or_default().to_string();
    let parameters = parts
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (p.to_string(), String::new()),
        })
        .collect();
    SecretRef {
        reference,
        parameters,
        kind: Default::default(),
    }
}

/// Build a secret value from a fixture key and a Vault response body.
pub(crate) fn value_from_key(key: &str, body: &serde_json::Value) -> Result<SecretValue> {
    let secret = secret_ref_from_key(key);
    if secret.reference.is_empty() {
        bail!("the key is empty; write the secret path as the template names it");
    }
    Ok(SecretValue::from_response(&secret, body)?)
}
