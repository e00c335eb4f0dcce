//! `keyward policy check`: ask a policy plugin, offline, what it decides for
//! a workload and the secrets it asks for.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use keyward_core::{DecideRequest, DeliveryKind, SecretDecision, SecretRef, Verdict, Workload};
use serde::{Deserialize, Serialize};

use crate::PolicyCheckArgs;
use crate::plugin::{self, Api};
use crate::render::mount_table;
use crate::show;

/// Exit code when at least one secret is not allowed.
pub const EXIT_DENIED: u8 = 3;

/// A request file: who asks and for what.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct RequestFile {
    #[serde(default)]
    workload: Workload,
    secrets: Vec<Wanted>,
}

/// One wanted secret; the engine, mount and path come from the mount table.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct Wanted {
    reference: String,
    #[serde(default)]
    parameters: Vec<(String, String)>,
    #[serde(default = "default_delivery")]
    delivery: Vec<DeliveryKind>,
}

fn default_delivery() -> Vec<DeliveryKind> {
    vec![DeliveryKind::File]
}

#[derive(Debug, Serialize)]
struct Report {
    allowed: usize,
    denied: usize,
    decisions: Vec<SecretDecision>,
}

pub(crate) fn run(
    args: &PolicyCheckArgs,
    cache_dir: Option<std::path::PathBuf>,
) -> Result<ExitCode> {
    let request = read_request(&args.request)?;
    let settings = match &args.settings {
        Some(path) => read_settings(path)?,
        None => "{}".to_string(),
    };
    let mounts = mount_table(
        &args.mounts,
        request.secrets.iter().map(|s| s.reference.as_str()),
    )?;
    let mut secrets = Vec::with_capacity(request.secrets.len());
    for (i, wanted) in request.secrets.iter().enumerate() {
        let secret = SecretRef {
            reference: wanted.reference.clone(),
            parameters: wanted.parameters.clone(),
            kind: Default::default(),
        };
        let mut classified = mounts
            .classify(&secret, &wanted.delivery)
            .with_context(|| format!("request file {}: secrets[{i}]", args.request.display()))?;
        classified.reference = secret.key();
        secrets.push(classified);
    }

    let runtime = plugin::runtime(cache_dir)?;
    let loaded = plugin::load(&runtime, &args.component)?;
    let Api::Policy(policy) = loaded.api.clone() else {
        bail!(
            "{} is a {} plugin; `keyward policy check` needs a policy plugin",
            args.component.display(),
            loaded.api.world_name()
        );
    };
    let name = plugin::plugin_name(&args.component);
    let rt = crate::tokio()?;
    rt.block_on(policy.validate_settings(&settings))
        .map_err(|f| anyhow!("plugin {name:?} rejected its settings: {f}"))?;
    let references: Vec<String> = secrets.iter().map(|s| s.reference.clone()).collect();
    let decisions = rt
        .block_on(policy.decide(DecideRequest {
            workload: request.workload,
            secrets,
            settings,
        }))
        .map_err(|f| anyhow!("plugin {name:?} failed in decide: {f}"))?;

    // One line per requested secret, in request order; a secret the plugin
    // did not answer is an abstention.
    let mut ordered = Vec::with_capacity(references.len());
    for reference in &references {
        ordered.push(
            decisions
                .iter()
                .find(|d| &d.reference == reference)
                .cloned()
                .unwrap_or(SecretDecision {
                    reference: reference.clone(),
                    verdict: Verdict::Abstain,
                    rule: None,
                }),
        );
    }
    if let Some(extra) = decisions
        .iter()
        .find(|d| !references.contains(&d.reference))
    {
        bail!(
            "plugin {name:?} broke the contract: it decided on {:?}, which was not requested",
            extra.reference
        );
    }
    let allowed = ordered
        .iter()
        .filter(|d| matches!(d.verdict, Verdict::Allow(_)))
        .count();
    let denied = ordered.len() - allowed;
    if args.json {
        let report = Report {
            allowed,
            denied,
            decisions: ordered,
        };
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for d in &ordered {
            println!("{}", line(d));
        }
        println!("{allowed} allowed, {denied} not allowed");
    }
    Ok(if denied == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_DENIED)
    })
}

/// `allow   ref (rule "r") {grant}` / `deny    ref (rule "r"): reason`.
fn line(d: &SecretDecision) -> String {
    let rule = d
        .rule
        .as_ref()
        .map(|r| format!(" (rule {r:?})"))
        .unwrap_or_default();
    match &d.verdict {
        Verdict::Allow(g) => format!("allow    {}{rule} {}", d.reference, show::grant(g)),
        Verdict::Deny(reason) => format!("deny     {}{rule}: {reason}", d.reference),
        Verdict::Abstain => format!(
            "abstain  {}{rule} (no policy allowing it: denied)",
            d.reference
        ),
    }
}

fn read_request(path: &Path) -> Result<RequestFile> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read request file {}", path.display()))?;
    serde_yaml::from_str(&text).with_context(|| format!("request file {}", path.display()))
}

/// Settings from a JSON or YAML file, as the JSON document plugins take.
fn read_settings(path: &Path) -> Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read settings file {}", path.display()))?;
    let value: serde_yaml::Value =
        serde_yaml::from_str(&text).with_context(|| format!("settings file {}", path.display()))?;
    let json = serde_json::to_value(&value).with_context(|| {
        format!(
            "settings file {}: cannot be expressed as JSON",
            path.display()
        )
    })?;
    Ok(json.to_string())
}
