//! The hostile-plugin suite: every way a plugin can misbehave is stopped
//! with the right reason, the host stays healthy, and the very next normal
//! call on the same plugin succeeds.
//!
//! Needs `target/plugins/hostile-guest.wasm` (`cargo xtask plugins`).

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use keyward_core::{
    Artifact, CheckRule, DeliveryKind, Error as CoreError, Limits, PluginError, PluginFailure,
    RenderRequest, SandboxReason, SecretValue, Sensitive, Target, Workload, check_artifacts,
};
use keyward_runtime::{Error, Plugin, PluginLimits, PluginSpec, Runtime, RuntimeConfig, World};
use keyward_tests::{LogCapture, component};
use serde_json::json;

const HOSTILE: &str = "hostile-guest";

fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        let cache = tempfile::tempdir().expect("temp dir").keep();
        Runtime::new(RuntimeConfig {
            cache_dir: Some(cache),
            ..RuntimeConfig::default()
        })
        .expect("runtime")
    })
}

/// The hostile guest with default limits.
fn hostile() -> Plugin {
    static PLUGIN: OnceLock<Plugin> = OnceLock::new();
    PLUGIN
        .get_or_init(|| {
            runtime()
                .load_bytes(&component(HOSTILE), &PluginSpec::named("hostile"))
                .expect("load hostile guest")
        })
        .clone()
}

/// The hostile guest (same digest, so the same compiled component) with
/// other limits.
fn hostile_with(name: &str, limits: PluginLimits) -> Plugin {
    runtime()
        .load_bytes(
            &component(HOSTILE),
            &PluginSpec {
                name: name.into(),
                digest: None,
                limits: Some(limits),
                warmup: None,
            },
        )
        .expect("load hostile guest")
}

fn request(settings: serde_json::Value, secrets: Vec<SecretValue>) -> RenderRequest {
    RenderRequest {
        workload: Workload::default(),
        template: None,
        settings: settings.to_string(),
        target: Target {
            kind: DeliveryKind::File,
            name: "out".into(),
            mode: Some(0o600),
        },
        secrets,
    }
}

async fn render(
    plugin: &Plugin,
    settings: serde_json::Value,
) -> Result<Vec<Artifact>, PluginFailure> {
    plugin
        .renderer()
        .expect("a renderer")
        .render(request(settings, Vec::new()))
        .await
}

/// Render `mode` and return the sandbox reason and detail it was stopped with.
async fn stopped(plugin: &Plugin, settings: serde_json::Value) -> (SandboxReason, String) {
    match render(plugin, settings.clone()).await {
        Err(PluginFailure::Sandbox { reason, detail }) => (reason, detail),
        other => panic!("{settings} was not stopped by the sandbox: {other:?}"),
    }
}

/// The next normal call on the same plugin works.
async fn assert_recovers(plugin: &Plugin) {
    let artifacts = render(plugin, json!({"mode": "ok"}))
        .await
        .expect("a normal render right after a hostile one");
    assert_eq!(artifacts.len(), 1);
    match &artifacts[0] {
        Artifact::File { path, contents, .. } => {
            assert_eq!(path, "out");
            assert_eq!(contents.expose(), b"ok");
        }
        other => panic!("unexpected artifact {other:?}"),
    }
}

#[tokio::test]
async fn ok_renders() {
    let plugin = hostile();
    assert_eq!(plugin.world(), World::Renderer);
    assert_eq!(plugin.language(), Some("rust"));
    assert_eq!(*plugin.limits(), PluginLimits::NATIVE);
    assert!(plugin.digest().starts_with("sha256:"));
    assert_recovers(&plugin).await;
}

#[tokio::test]
async fn infinite_loop_times_out() {
    let plugin = hostile();
    let started = Instant::now();
    let (reason, detail) = stopped(&plugin, json!({"mode": "loop"})).await;
    assert_eq!(reason, SandboxReason::Timeout, "{detail}");
    assert!(detail.contains("250 ms"), "{detail}");
    // 250 ms deadline, 10 ms ticks: stopped well before a second.
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_recovers(&plugin).await;
}

#[tokio::test]
async fn sleeping_past_the_deadline_times_out_at_once() {
    let plugin = hostile();
    let started = Instant::now();
    let (reason, detail) = stopped(&plugin, json!({"mode": "sleep"})).await;
    assert_eq!(reason, SandboxReason::Timeout, "{detail}");
    assert!(detail.contains("sleep"), "{detail}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_recovers(&plugin).await;
}

#[tokio::test]
async fn short_sleeps_within_the_deadline_work() {
    let plugin = hostile();
    render(&plugin, json!({"mode": "sleep", "ms": 20}))
        .await
        .expect("a 20 ms sleep fits in 250 ms");
}

#[tokio::test]
async fn endless_output_flood_times_out_with_output_bounded() {
    let plugin = hostile();
    let capture = LogCapture::start();
    let (reason, detail) = stopped(&plugin, json!({"mode": "flood", "bytes": 1u64 << 40})).await;
    assert_eq!(reason, SandboxReason::Timeout, "{detail}");
    let text = capture.text();
    assert!(text.contains("plugin stdout truncated"), "{text:.2000}");
    assert!(text.len() < 200 << 10, "{} bytes of logs", text.len());
    assert_recovers(&plugin).await;
}

#[tokio::test]
async fn unbounded_allocation_hits_the_memory_limit() {
    let plugin = hostile();
    let (reason, detail) = stopped(&plugin, json!({"mode": "memory"})).await;
    assert_eq!(reason, SandboxReason::MemoryLimit, "{detail}");
    assert!(detail.contains(&(64u64 << 20).to_string()), "{detail}");
    assert_recovers(&plugin).await;
}

#[tokio::test]
async fn unbounded_recursion_traps_on_stack_overflow() {
    let plugin = hostile();
    let (reason, detail) = stopped(&plugin, json!({"mode": "recursion"})).await;
    assert_eq!(reason, SandboxReason::Trap, "{detail}");
    assert!(detail.contains("stack overflow"), "{detail}");
    assert_recovers(&plugin).await;
}

#[tokio::test]
async fn shadow_stack_overflow_traps() {
    let plugin = hostile();
    let (reason, detail) = stopped(&plugin, json!({"mode": "stack-buffer"})).await;
    assert_eq!(reason, SandboxReason::Trap, "{detail}");
    assert_recovers(&plugin).await;
}

#[tokio::test]
async fn panic_is_a_trap() {
    let plugin = hostile();
    let capture = LogCapture::start();
    let (reason, detail) = stopped(&plugin, json!({"mode": "trap"})).await;
    assert_eq!(reason, SandboxReason::Trap, "{detail}");
    assert!(detail.contains("unreachable"), "{detail}");
    // The panic message went to the captured stderr, logged at debug.
    assert!(
        capture.text().contains("hostile guest panics on purpose"),
        "{}",
        capture.text()
    );
    assert_recovers(&plugin).await;
}

#[tokio::test]
async fn exit_is_a_trap() {
    let plugin = hostile();
    let (reason, detail) = stopped(&plugin, json!({"mode": "exit"})).await;
    assert_eq!(reason, SandboxReason::Trap, "{detail}");
    // WASI 0.2's `exit` carries success or failure only.
    assert!(detail.contains("the plugin called exit(1)"), "{detail}");
    assert_recovers(&plugin).await;
}

#[tokio::test]
async fn output_flood_is_truncated_and_counted() {
    // Thousands of WASI writes take longer than 250 ms in a debug build.
    let plugin = patient();
    let capture = LogCapture::start();
    let artifacts = render(&plugin, json!({"mode": "flood", "bytes": 8 << 20}))
        .await
        .expect("flooding stdout and stderr is not an error");
    assert_eq!(artifacts.len(), 1);
    let text = capture.text();
    for stream in ["stdout", "stderr"] {
        let line = text
            .lines()
            .find(|l| l.contains(&format!("plugin {stream} truncated")))
            .unwrap_or_else(|| panic!("no truncation report for {stream} in:\n{text:.2000}"));
        assert!(line.contains(&format!("kept={}", 64 << 10)), "{line}");
        assert!(line.contains("dropped="), "{line}");
    }
    // What was logged is bounded: two 64 KiB captures plus reports.
    assert!(
        text.len() < 200 << 10,
        "{} bytes of logs: {:.3000}",
        text.len(),
        &text[text.len() / 2..]
    );
    assert_recovers(&plugin).await;
}

#[tokio::test]
async fn log_spam_is_rate_limited() {
    // A million host calls need more than the default 250 ms in a debug
    // build; the point here is the rate limit, not the deadline.
    let plugin = patient();
    let capture = LogCapture::start();
    render(&plugin, json!({"mode": "log-spam"}))
        .await
        .expect("log spam is not an error");
    let text = capture.text();
    let emitted = text.lines().filter(|l| l.contains("spam line")).count();
    assert_eq!(emitted, PluginLimits::NATIVE.log_lines, "{text:.2000}");
    assert!(
        text.contains(&format!(
            "{} lines dropped",
            1_000_000 - PluginLimits::NATIVE.log_lines
        )),
        "{text:.2000}"
    );
    assert_recovers(&plugin).await;
}

/// The hostile guest with a long deadline, for tests about something else.
fn patient() -> Plugin {
    hostile_with(
        "hostile-patient",
        PluginLimits {
            render_deadline: Duration::from_secs(120),
            ..PluginLimits::NATIVE
        },
    )
}

/// Big transfers need a memory limit above their size, so that hostcall
/// fuel, not memory, is what stops them.
fn roomy() -> Plugin {
    hostile_with(
        "hostile-roomy",
        PluginLimits {
            memory_bytes: 256 << 20,
            render_deadline: Duration::from_secs(30),
            ..PluginLimits::NATIVE
        },
    )
}

#[tokio::test]
async fn huge_log_message_exceeds_hostcall_fuel() {
    let plugin = roomy();
    let (reason, detail) = stopped(&plugin, json!({"mode": "big-string"})).await;
    assert_eq!(reason, SandboxReason::HostcallLimit, "{detail}");
    assert_recovers(&plugin).await;
}

#[tokio::test]
async fn huge_result_exceeds_hostcall_fuel() {
    let plugin = roomy();
    let (reason, detail) = stopped(&plugin, json!({"mode": "big-artifact"})).await;
    assert_eq!(reason, SandboxReason::HostcallLimit, "{detail}");
    assert_recovers(&plugin).await;
}

#[tokio::test]
async fn results_within_the_fuel_pass() {
    let plugin = roomy();
    let artifacts = render(&plugin, json!({"mode": "big-artifact", "bytes": 2 << 20}))
        .await
        .expect("a 2 MiB file is within the hostcall fuel");
    assert_eq!(artifacts[0].size(), (2 << 20) + "out".len());
}

#[tokio::test]
async fn tcp_connect_is_refused() {
    let plugin = hostile();
    match render(&plugin, json!({"mode": "tcp"})).await {
        Err(failure @ PluginFailure::Plugin(PluginError::Failed(_))) => {
            assert_eq!(failure.kind_label(), "failed");
            assert!(
                failure.to_string().contains("tcp connect failed"),
                "{failure}"
            );
        }
        other => panic!("tcp: {other:?}"),
    }
    assert_recovers(&plugin).await;
}

#[tokio::test]
async fn reading_host_files_is_refused() {
    let plugin = hostile();
    match render(&plugin, json!({"mode": "read-passwd"})).await {
        Err(failure @ PluginFailure::Plugin(PluginError::Failed(_))) => {
            assert!(
                failure.to_string().contains("read /etc/passwd failed"),
                "{failure}"
            );
        }
        other => panic!("read-passwd: {other:?}"),
    }
    assert_recovers(&plugin).await;
}

#[tokio::test]
async fn the_guest_sees_no_environment_arguments_or_filesystem() {
    let plugin = hostile();
    let artifacts = render(&plugin, json!({"mode": "probe"}))
        .await
        .expect("probe");
    let Artifact::File { contents, .. } = &artifacts[0] else {
        panic!("{artifacts:?}")
    };
    let report: serde_json::Value = serde_json::from_slice(contents.expose()).expect("json");
    assert_eq!(report["env"], 0, "{report}");
    assert_eq!(report["args"], 0, "{report}");
    assert_eq!(report["root_listing"], false, "{report}");
    assert_eq!(report["dot_listing"], false, "{report}");
    // Clocks work (plugins may format dates).
    assert!(
        report["unix_time"].as_u64().unwrap_or(0) > 1_600_000_000,
        "{report}"
    );
}

#[tokio::test]
async fn path_traversal_is_rejected_by_the_check() {
    let plugin = hostile();
    let artifacts = render(&plugin, json!({"mode": "traversal"}))
        .await
        .expect("the plugin returns its artifact; the host check rejects it");
    let target = Target {
        kind: DeliveryKind::File,
        name: String::new(),
        mode: None,
    };
    match check_artifacts("b", &target, &[], &artifacts, &Limits::default()) {
        Err(CoreError::Check { rule, artifact, .. }) => {
            assert_eq!(rule, CheckRule::FilePath);
            assert_eq!(artifact, "../../etc/x");
        }
        other => panic!("traversal passed the check: {other:?}"),
    }
    assert_recovers(&plugin).await;
}

#[tokio::test]
async fn invalid_env_name_is_rejected_by_the_check() {
    let plugin = hostile();
    let artifacts = render(&plugin, json!({"mode": "bad-env"}))
        .await
        .expect("artifacts");
    let target = Target {
        kind: DeliveryKind::Env,
        name: String::new(),
        mode: None,
    };
    match check_artifacts("b", &target, &[], &artifacts, &Limits::default()) {
        Err(CoreError::Check { rule, .. }) => assert_eq!(rule, CheckRule::EnvName),
        other => panic!("bad env name passed the check: {other:?}"),
    }
    assert_recovers(&plugin).await;
}

#[tokio::test]
async fn secret_values_are_redacted_from_logs_and_output() {
    let plugin = hostile();
    let secret = "hunter2-very-secret";
    let value = SecretValue {
        reference: "secret/data/app".into(),
        parameters: Vec::new(),
        lease_id: String::new(),
        lease_duration: 0,
        renewable: false,
        data: Sensitive(
            json!({"data": {"password": secret, "user": "app-user"}, "metadata": {"version": 1}}),
        ),
        warnings: Vec::new(),
    };
    let capture = LogCapture::start();
    plugin
        .renderer()
        .expect("renderer")
        .render(request(json!({"mode": "leak"}), vec![value]))
        .await
        .expect("leak renders");
    let text = capture.text();
    assert!(!text.contains(secret), "a secret reached the logs:\n{text}");
    assert!(
        !text.contains("app-user"),
        "a secret reached the logs:\n{text}"
    );
    assert!(text.contains("the secret is <redacted>!"), "{text}");
    assert!(text.contains("stdout secret: <redacted>"), "{text}");
    assert!(text.contains("stderr secret: <redacted>"), "{text}");
    assert!(
        text.contains("plugin=\"hostile\"") || text.contains("plugin=hostile"),
        "{text}"
    );
}

#[tokio::test]
async fn a_renderer_is_not_a_policy() {
    let plugin = hostile();
    match plugin.policy() {
        Err(Error::WrongWorld { actual, wanted, .. }) => {
            assert_eq!((actual, wanted), (World::Renderer, World::Policy));
        }
        Err(other) => panic!("{other}"),
        Ok(_) => panic!("a renderer became a policy"),
    }
}

#[tokio::test]
async fn hostile_calls_in_parallel_leave_normal_calls_working() {
    let plugin = hostile();
    let mut calls = Vec::new();
    for mode in [
        "loop",
        "memory",
        "recursion",
        "trap",
        "sleep",
        "ok",
        "loop",
        "ok",
    ] {
        let plugin = plugin.clone();
        calls.push(tokio::spawn(async move {
            (mode, render(&plugin, json!({"mode": mode})).await)
        }));
    }
    for call in calls {
        let (mode, result) = call.await.expect("join");
        assert_eq!(result.is_ok(), mode == "ok", "{mode}: {result:?}");
    }
    assert_recovers(&plugin).await;
}

// --- refused at load -------------------------------------------------------

#[test]
fn wasi_http_import_is_refused() {
    let wat = r#"(component (import "wasi:http/outgoing-handler@0.2.0" (instance)))"#;
    match runtime().load_bytes(wat.as_bytes(), &PluginSpec::named("http")) {
        Err(e @ Error::ForbiddenImport { .. }) => {
            assert!(
                e.to_string().contains("wasi:http/outgoing-handler@0.2.0"),
                "{e}"
            );
        }
        other => panic!("wasi:http import: {other:?}"),
    }
}

#[test]
fn unknown_package_import_is_refused() {
    for name in ["evil:thing/x", "evil:thing/x@1.0.0"] {
        let wat = format!(r#"(component (import "{name}" (instance)))"#);
        match runtime().load_bytes(wat.as_bytes(), &PluginSpec::named("evil")) {
            Err(e @ Error::ForbiddenImport { .. }) => {
                assert!(e.to_string().contains(name), "{e}");
            }
            other => panic!("{name}: {other:?}"),
        }
    }
}

#[test]
fn component_exporting_no_world_is_refused() {
    let wat = r#"
        (component
          (core module $m (func (export "f") (result i32) i32.const 1))
          (core instance $i (instantiate $m))
          (func $f (result u32) (canon lift (core func $i "f")))
          (export "hello" (func $f)))
    "#;
    match runtime().load_bytes(wat.as_bytes(), &PluginSpec::named("nothing")) {
        Err(e @ Error::UnknownWorld { .. }) => {
            let message = e.to_string();
            assert!(message.contains("hello"), "{message}");
            assert!(
                message.contains("keyward:plugin/decider@0.1.x"),
                "{message}"
            );
            assert!(message.contains("keyward:plugin/render@0.1.x"), "{message}");
        }
        other => panic!("no world: {other:?}"),
    }
}

#[test]
fn core_module_is_refused() {
    match runtime().load_bytes(b"(module)", &PluginSpec::named("core")) {
        Err(Error::NotAComponent { detail, .. }) => {
            assert!(detail.contains("component"), "{detail}")
        }
        other => panic!("core module: {other:?}"),
    }
}

#[test]
fn digest_mismatch_is_refused() {
    let bytes = component(HOSTILE);
    let actual = keyward_runtime::digest(&bytes);
    let pinned = format!("sha256:{}", "0".repeat(64));
    let spec = PluginSpec {
        name: "pinned".into(),
        digest: Some(pinned.clone()),
        limits: None,
        warmup: None,
    };
    match runtime().load_bytes(&bytes, &spec) {
        Err(e @ Error::DigestMismatch { .. }) => {
            let message = e.to_string();
            assert!(message.contains(&pinned), "{message}");
            assert!(message.contains(&actual), "{message}");
        }
        other => panic!("digest mismatch: {other:?}"),
    }
    // The right digest loads.
    let spec = PluginSpec {
        digest: Some(actual.to_uppercase().replace("SHA256:", "sha256:")),
        ..spec
    };
    runtime()
        .load_bytes(&bytes, &spec)
        .expect("the right digest loads");
}

#[tokio::test]
async fn corrupted_cache_entry_is_detected_and_recompiled() {
    let bytes = component(HOSTILE);
    let dir = tempfile::tempdir().expect("temp dir");
    let config = RuntimeConfig {
        cache_dir: Some(dir.path().to_path_buf()),
        ..RuntimeConfig::default()
    };
    let spec = PluginSpec::named("cached");

    let first = Runtime::new(config.clone()).expect("runtime");
    let plugin = first.load_bytes(&bytes, &spec).expect("compile");
    assert!(!plugin.load_stats().cache_hit);
    let entry = first
        .cache_entry_path(plugin.digest())
        .expect("a cache is configured");
    assert!(entry.exists(), "{} was not written", entry.display());
    drop(first);

    let second = Runtime::new(config.clone()).expect("runtime");
    let plugin = second.load_bytes(&bytes, &spec).expect("deserialize");
    assert!(
        plugin.load_stats().cache_hit,
        "a fresh runtime uses the disk cache"
    );
    assert_recovers(&plugin).await;

    // Flip bytes in the middle of the precompiled code.
    let mut cached = std::fs::read(&entry).expect("read entry");
    let middle = cached.len() / 2;
    for b in &mut cached[middle..middle + 16] {
        *b ^= 0xa5;
    }
    std::fs::write(&entry, &cached).expect("corrupt entry");

    let capture = LogCapture::start();
    let third = Runtime::new(config.clone()).expect("runtime");
    let plugin = third.load_bytes(&bytes, &spec).expect("recompile");
    assert!(
        !plugin.load_stats().cache_hit,
        "a corrupted entry must not be used"
    );
    assert!(
        capture.text().contains("integrity tag mismatch"),
        "{}",
        capture.text()
    );
    assert_recovers(&plugin).await;
    assert_ne!(
        std::fs::read(&entry).expect("rewritten"),
        cached,
        "the entry was rewritten"
    );

    let fourth = Runtime::new(config).expect("runtime");
    assert!(
        fourth
            .load_bytes(&bytes, &spec)
            .expect("load")
            .load_stats()
            .cache_hit
    );
}
