//! `keyward plugin test`: run case files against a plugin.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use keyward_core::{DecideRequest, Grant, Limits, RenderRequest, check_artifacts};
use keyward_runtime::{Plugin, World};
use serde::Serialize;

use crate::TestArgs;
use crate::cases::{self, Call, Case, Input, Outcome};
use crate::plugin::{self, Api};

/// Whether a call exists in a plugin's world.
pub(crate) fn fits(call: Call, api: &Api) -> bool {
    matches!(
        (call, api),
        (Call::ValidateSettings, _)
            | (Call::Decide, Api::Policy(_))
            | (Call::Plan | Call::Render, Api::Renderer(_))
    )
}

/// Load the cases of `dir`, apply the filter and refuse an empty selection.
pub(crate) fn select(dir: &std::path::Path, filter: Option<&str>) -> Result<Vec<Case>> {
    let all = cases::load_dir(dir)?;
    if all.is_empty() {
        bail!(
            "no case files (*.yaml) in {}; a plugin needs at least one case (see docs/cases.md)",
            dir.display()
        );
    }
    let total = all.len();
    let picked: Vec<Case> = match filter {
        Some(f) => all.into_iter().filter(|c| c.name.contains(f)).collect(),
        None => all,
    };
    if picked.is_empty() {
        bail!(
            "no case in {} matches --filter {:?} ({total} cases there)",
            dir.display(),
            filter.unwrap_or_default()
        );
    }
    Ok(picked)
}

/// Refuse cases whose call the plugin's world does not export.
pub(crate) fn check_worlds(cases: &[Case], api: &Api, component: &std::path::Path) -> Result<()> {
    for case in cases {
        if !fits(case.call, api) {
            bail!(
                "case file {}: `call: {}` needs a {} plugin, but {} is a {} plugin",
                case.file.display(),
                case.call.as_str(),
                if case.call == Call::Decide {
                    "policy"
                } else {
                    "renderer"
                },
                component.display(),
                api.world_name()
            );
        }
    }
    Ok(())
}

/// Make the call a case describes and capture what came back. The call
/// runs on this thread (`Plugin::*_blocking`): the production sandbox and
/// limits, without the async hand-off, so that `plugin bench` times the
/// sandboxed call itself.
pub(crate) fn call(plugin: &Plugin, case: &Case) -> Outcome {
    let failed = |f: keyward_core::PluginFailure| Outcome::Failed {
        kind: f.kind_label().to_string(),
        message: f.to_string(),
    };
    match (&case.input, plugin.world()) {
        (Input::ValidateSettings, _) => match plugin.validate_settings_blocking(&case.settings) {
            Ok(()) => Outcome::Valid,
            Err(f) => failed(f),
        },
        (Input::Decide { workload, secrets }, World::Policy) => {
            let request = DecideRequest {
                workload: workload.clone(),
                secrets: secrets.clone(),
                settings: case.settings.clone(),
            };
            match plugin.decide_blocking(&request) {
                Ok(d) => Outcome::Decisions(d),
                Err(f) => failed(f),
            }
        }
        (Input::Plan { template }, World::Renderer) => {
            match plugin.plan_blocking(template.as_deref(), &case.settings) {
                Ok(refs) => Outcome::Refs(refs),
                Err(f) => failed(f),
            }
        }
        (
            Input::Render {
                workload,
                template,
                target,
                values,
            },
            World::Renderer,
        ) => {
            let request = RenderRequest {
                workload: workload.clone(),
                template: template.clone(),
                settings: case.settings.clone(),
                target: target.clone(),
                secrets: values.clone(),
            };
            match plugin.render_blocking(&request) {
                Ok(artifacts) => {
                    // Grants that allow everything: only the target and the
                    // artifact rules (paths, names, sizes) apply.
                    let grants: Vec<(String, Grant)> = values
                        .iter()
                        .map(|v| (v.reference.clone(), Grant::default()))
                        .collect();
                    match check_artifacts(
                        &case.name,
                        target,
                        &grants,
                        &artifacts,
                        &Limits::default(),
                    ) {
                        Ok(()) => Outcome::Artifacts(artifacts),
                        Err(e) => Outcome::Failed {
                            kind: "check".into(),
                            message: e.to_string(),
                        },
                    }
                }
                Err(f) => failed(f),
            }
        }
        (_, world) => Outcome::Failed {
            kind: "contract".into(),
            message: format!(
                "`call: {}` does not exist in the {world} world",
                case.call.as_str(),
            ),
        },
    }
}

/// One case's result.
#[derive(Debug, Serialize)]
struct CaseReport {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    call: &'static str,
    passed: bool,
    duration_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    failure: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    diff: Vec<String>,
}

#[derive(Debug, Serialize)]
struct SuiteReport {
    component: PathBuf,
    world: &'static str,
    cases: Vec<CaseReport>,
    passed: usize,
    failed: usize,
}

pub(crate) fn run(args: &TestArgs, cache_dir: Option<PathBuf>) -> Result<ExitCode> {
    let cases = select(&args.cases, args.filter.as_deref())?;
    let runtime = plugin::runtime(cache_dir)?;
    let loaded = plugin::load(&runtime, &args.component)?;
    check_worlds(&cases, &loaded.api, &args.component)?;

    let mut reports = Vec::with_capacity(cases.len());
    for case in &cases {
        let start = Instant::now();
        let outcome = call(&loaded.plugin, case);
        let elapsed = start.elapsed();
        let result = case.check(&outcome);
        let report = CaseReport {
            name: case.name.clone(),
            description: case.description.clone(),
            call: case.call.as_str(),
            passed: result.is_ok(),
            duration_ms: elapsed.as_secs_f64() * 1000.0,
            failure: result.as_ref().err().map(|m| m.summary.clone()),
            diff: result.err().map(|m| m.detail).unwrap_or_default(),
        };
        if !args.json {
            print_case(&report, elapsed);
        }
        reports.push(report);
    }
    let passed = reports.iter().filter(|r| r.passed).count();
    let failed = reports.len() - passed;
    if args.json {
        let suite = SuiteReport {
            component: args.component.clone(),
            world: loaded.api.world_name(),
            cases: reports,
            passed,
            failed,
        };
        println!("{}", serde_json::to_string_pretty(&suite)?);
    } else {
        println!("{passed} passed, {failed} failed");
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn print_case(report: &CaseReport, elapsed: Duration) {
    match &report.failure {
        None => println!("ok   {} ({})", report.name, format_duration(elapsed)),
        Some(summary) => {
            println!("FAIL {}: {summary}", report.name);
            for line in &report.diff {
                println!("    {line}");
            }
        }
    }
}

/// `850 µs`, `1.2 ms`, `3.40 s`.
pub(crate) fn format_duration(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 1000.0 {
        format!("{us:.0} µs")
    } else if us < 1e6 {
        format!("{:.1} ms", us / 1000.0)
    } else {
        format!("{:.2} s", us / 1e6)
    }
}
