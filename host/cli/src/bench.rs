//! `keyward plugin bench`: per-call latency (a fresh instance per call, as in
//! production), peak memory, and first versus cached load time.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::Serialize;

use keyward_runtime::Warmup;

use crate::BenchArgs;
use crate::cases::{Case, Input};
use crate::inspect::human_size;
use crate::plugin;
use crate::test::{call, check_worlds, select};

#[derive(Debug, Serialize)]
struct CaseBench {
    name: String,
    call: &'static str,
    iterations: u32,
    p50_us: f64,
    p99_us: f64,
    /// Growth of the process's peak resident memory while the case ran.
    peak_rss_delta_bytes: u64,
    /// Timed from a snapshot warmed with the case's configuration
    /// (`--preinit`).
    preinitialized: bool,
    /// `None` when the case's expectation held on the first call.
    #[serde(skip_serializing_if = "Option::is_none")]
    failure: Option<String>,
}

#[derive(Debug, Serialize)]
struct Report {
    component: String,
    world: &'static str,
    first_load_ms: f64,
    cached_load_ms: f64,
    cached_load_hit: bool,
    cases: Vec<CaseBench>,
}

pub(crate) fn run(args: &BenchArgs) -> Result<ExitCode> {
    let cases = select(&args.cases, args.filter.as_deref())?;
    // A private cache directory so the first load really compiles.
    let cache = tempfile::tempdir().context("cannot create a temporary cache directory")?;

    let start = Instant::now();
    {
        let cold_runtime = plugin::runtime(Some(cache.path().to_path_buf()))?;
        plugin::load(&cold_runtime, &args.component)?;
    }
    let first_load = start.elapsed();

    let start = Instant::now();
    let runtime = plugin::runtime(Some(cache.path().to_path_buf()))?;
    let loaded = plugin::load(&runtime, &args.component)?;
    let cached_load = start.elapsed();
    let cached_hit = loaded.plugin.load_stats().cache_hit;
    check_worlds(&cases, &loaded.api, &args.component)?;

    let bytes = if args.preinit {
        std::fs::read(&args.component)
            .with_context(|| format!("cannot read {}", args.component.display()))?
    } else {
        Vec::new()
    };
    let mut results = Vec::with_capacity(cases.len());
    for case in &cases {
        // With --preinit, a plugin of its own per case (the compiled
        // component is shared), warmed with the case's configuration.
        let own;
        let plugin = if args.preinit {
            own = plugin::load(&runtime, &args.component)?.plugin;
            if let Err(e) = own.preinitialize(&bytes, &warmup(case)) {
                tracing::debug!(case = %case.name, "timed without pre-initialisation: {e}");
            }
            &own
        } else {
            &loaded.plugin
        };
        let preinitialized = plugin.load_stats().preinitialized;
        // The first call also checks the case, so a benchmark never measures
        // a broken call by accident.
        let first = call(plugin, case);
        let failure = case.check(&first).err().map(|m| m.summary);
        let rss_before = memory::current_rss();
        memory::reset_peak();
        let mut times = Vec::with_capacity(args.iterations as usize);
        for _ in 0..args.iterations {
            let t = Instant::now();
            let outcome = call(plugin, case);
            times.push(t.elapsed());
            drop(outcome);
        }
        let peak = memory::peak_rss().saturating_sub(rss_before);
        if args.preinit {
            // Each case's snapshot is compiled code of its own: let it go
            // (the plain component is deserialized again from the cache).
            runtime.unload_all();
        }
        times.sort();
        results.push(CaseBench {
            name: case.name.clone(),
            call: case.call.as_str(),
            iterations: args.iterations,
            p50_us: micros(percentile(&times, 50.0)),
            p99_us: micros(percentile(&times, 99.0)),
            peak_rss_delta_bytes: peak,
            preinitialized,
            failure,
        });
    }

    let report = Report {
        component: args.component.display().to_string(),
        world: loaded.api.world_name(),
        first_load_ms: millis(first_load),
        cached_load_ms: millis(cached_load),
        cached_load_hit: cached_hit,
        cases: results,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&report);
    }
    Ok(ExitCode::SUCCESS)
}

/// What a running agent would warm a plugin up with for this case: its
/// settings, and for a renderer's plan or render its template.
fn warmup(case: &Case) -> Warmup {
    let plans = match &case.input {
        Input::Plan { template } | Input::Render { template, .. } => {
            vec![(template.clone(), case.settings.clone())]
        }
        Input::ValidateSettings | Input::Decide { .. } => Vec::new(),
    };
    Warmup {
        settings: vec![case.settings.clone()],
        plans,
    }
}

fn print_table(r: &Report) {
    println!("{} ({} plugin)", r.component, r.world);
    println!(
        "load: first {:.1} ms (compile), cached {:.1} ms{}",
        r.first_load_ms,
        r.cached_load_ms,
        if r.cached_load_hit {
            ""
        } else {
            " (cache miss!)"
        }
    );
    let width = r
        .cases
        .iter()
        .map(|c| c.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    println!(
        "{:<width$}  {:<17}  {:>6}  {:>10}  {:>10}  {:>10}",
        "case", "call", "calls", "p50 µs", "p99 µs", "peak mem"
    );
    for c in &r.cases {
        println!(
            "{:<width$}  {:<17}  {:>6}  {:>10.1}  {:>10.1}  {:>10}{}{}",
            c.name,
            c.call,
            c.iterations,
            c.p50_us,
            c.p99_us,
            human_size(c.peak_rss_delta_bytes),
            if c.preinitialized {
                "  (pre-initialised)"
            } else {
                ""
            },
            c.failure
                .as_ref()
                .map(|f| format!("  (case fails: {f})"))
                .unwrap_or_default()
        );
    }
    println!("peak mem: growth of the process's peak resident memory during the case's calls");
}

/// Nearest-rank percentile of sorted samples.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Process memory from `/proc/self` (Linux); zeros elsewhere.
mod memory {
    fn status_kib(field: &str) -> u64 {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with(field))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|n| n.parse().ok())
            })
            .unwrap_or(0)
    }

    pub(super) fn current_rss() -> u64 {
        status_kib("VmRSS:") * 1024
    }

    pub(super) fn peak_rss() -> u64 {
        status_kib("VmHWM:") * 1024
    }

    /// Reset the peak-RSS watermark (`echo 5 > /proc/self/clear_refs`).
    pub(super) fn reset_peak() {
        let _ = std::fs::write("/proc/self/clear_refs", "5");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_micros).collect();
        assert_eq!(percentile(&v, 50.0), Duration::from_micros(50));
        assert_eq!(percentile(&v, 99.0), Duration::from_micros(99));
        assert_eq!(percentile(&v[..1], 99.0), Duration::from_micros(1));
    }
}
