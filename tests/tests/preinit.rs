//! Pre-initialisation: a plugin warmed up with its configuration starts
//! every call from a snapshot that carries what the warm-up left in guest
//! memory; results are the same as without it; a warm-up that misbehaves
//! is refused with its reason, and the plugin keeps working without it.
//!
//! Needs `target/plugins/{hostile-guest,policy-rules,render-template}.wasm`
//! (`cargo xtask plugins`).

use std::time::{Duration, Instant};

use keyward_core::{
    Artifact, DecideRequest, DeliveryKind, Engine, PluginError, PluginFailure, RenderRequest,
    SandboxReason, SecretRef, SecretRequest, SecretValue, Target, Workload,
};
use keyward_runtime::{Error, Plugin, PluginSpec, Runtime, RuntimeConfig, Warmup};
use keyward_tests::component;
use serde_json::json;

fn runtime(cache: &std::path::Path) -> Runtime {
    Runtime::new(RuntimeConfig {
        cache_dir: Some(cache.to_path_buf()),
        ..RuntimeConfig::default()
    })
    .expect("runtime")
}

fn warmed(rt: &Runtime, name: &str, warmup: Warmup) -> Plugin {
    rt.load_bytes(
        &component(name),
        &PluginSpec {
            warmup: Some(warmup),
            ..PluginSpec::named(name)
        },
    )
    .expect("load")
}

fn settings_only(settings: &str) -> Warmup {
    Warmup {
        settings: vec![settings.to_string()],
        plans: Vec::new(),
    }
}

fn render_request(
    settings: &str,
    template: Option<&str>,
    secrets: Vec<SecretValue>,
) -> RenderRequest {
    RenderRequest {
        workload: Workload::default(),
        template: template.map(str::to_string),
        settings: settings.into(),
        target: Target {
            kind: DeliveryKind::File,
            name: "out".into(),
            mode: Some(0o600),
        },
        secrets,
    }
}

fn file_contents(artifacts: &[Artifact]) -> String {
    match artifacts {
        [Artifact::File { contents, .. }] => {
            String::from_utf8(contents.expose().to_vec()).expect("utf-8")
        }
        other => panic!("expected one file, got {other:?}"),
    }
}

#[test]
fn the_snapshot_carries_what_the_warm_up_left_in_memory() {
    let cache = tempfile::tempdir().expect("temp dir");
    let rt = runtime(cache.path());
    let settings = r#"{"mode": "remembered", "note": "warm"}"#;
    let plain = rt
        .load_bytes(&component("hostile-guest"), &PluginSpec::named("plain"))
        .expect("load");
    assert!(!plain.load_stats().preinitialized);
    let warm = warmed(&rt, "hostile-guest", settings_only(settings));
    assert!(warm.load_stats().preinitialized);
    assert_eq!(
        warm.digest(),
        plain.digest(),
        "the snapshot keeps the plugin's digest"
    );

    let request = render_request(settings, None, Vec::new());
    // A fresh instance of the plain component remembers nothing ...
    assert_eq!(
        file_contents(&plain.render_blocking(&request).expect("render")),
        ""
    );
    // ... while every fresh instance of the snapshot starts with the
    // warm-up's state, and one call's changes never reach the next.
    for _ in 0..3 {
        assert_eq!(
            file_contents(&warm.render_blocking(&request).expect("render")),
            settings
        );
        warm.validate_settings_blocking(r#"{"note": "changed in one call"}"#)
            .expect("validate");
    }
}

#[test]
fn a_second_runtime_takes_the_snapshot_from_the_disk_cache() {
    let cache = tempfile::tempdir().expect("temp dir");
    let settings = r#"{"mode": "remembered"}"#;
    let first = warmed(
        &runtime(cache.path()),
        "hostile-guest",
        settings_only(settings),
    );
    assert!(first.load_stats().preinitialized);
    let second = warmed(
        &runtime(cache.path()),
        "hostile-guest",
        settings_only(settings),
    );
    let stats = second.load_stats();
    assert!(stats.preinitialized && stats.cache_hit, "{stats:?}");
    assert_eq!(
        file_contents(
            &second
                .render_blocking(&render_request(settings, None, Vec::new()))
                .expect("render")
        ),
        settings
    );
    // Another warm-up is another snapshot.
    let other = warmed(
        &runtime(cache.path()),
        "hostile-guest",
        settings_only(r#"{"mode": "remembered", "other": 1}"#),
    );
    assert!(!other.load_stats().cache_hit);
}

/// A warm-up that misbehaves is refused with its reason; the plugin is
/// still loaded, without a snapshot, and works.
#[test]
fn a_misbehaving_warm_up_is_refused_and_the_plugin_still_works() {
    let cache = tempfile::tempdir().expect("temp dir");
    let rt = runtime(cache.path());
    let bytes = component("hostile-guest");
    let plugin = rt
        .load_bytes(&bytes, &PluginSpec::named("hostile"))
        .expect("load");
    let cases = [
        ("print", "WASI resources open"),
        ("loop", "deadline of"),
        ("trap", "validate-settings failed"),
        ("invalid", "returned an error"),
    ];
    for (warmup, expected) in cases {
        let settings = if warmup == "invalid" {
            "not json".to_string()
        } else {
            json!({"mode": "ok", "warmup": warmup}).to_string()
        };
        let started = Instant::now();
        match plugin.preinitialize(&bytes, &settings_only(&settings)) {
            Err(e @ Error::Preinit { .. }) => {
                let text = e.to_string();
                assert!(text.contains(expected), "{warmup}: {text}");
                assert!(
                    text.contains("\"hostile\""),
                    "{warmup}: names the plugin: {text}"
                );
            }
            other => panic!("{warmup}: expected a pre-initialisation error, got {other:?}"),
        }
        // The loop is stopped at the plugin's deadline (250 ms), not later.
        assert!(started.elapsed() < Duration::from_secs(20), "{warmup}");
        assert!(!plugin.load_stats().preinitialized, "{warmup}");
        let ok = plugin
            .render_blocking(&render_request(r#"{"mode": "ok"}"#, None, Vec::new()))
            .expect("the plugin still works");
        assert_eq!(file_contents(&ok), "ok");
    }
    // Through the spec, the same failure is a warning and a plain plugin.
    let plugin = warmed(
        &rt,
        "hostile-guest",
        settings_only(&json!({"warmup": "print"}).to_string()),
    );
    assert!(!plugin.load_stats().preinitialized);
    assert_eq!(
        plugin
            .render_blocking(&render_request(r#"{"mode": "ok"}"#, None, Vec::new()))
            .map(|a| file_contents(&a))
            .expect("render"),
        "ok"
    );
}

#[test]
fn preinitialize_checks_the_bytes_and_the_warm_up() {
    let cache = tempfile::tempdir().expect("temp dir");
    let rt = runtime(cache.path());
    let plugin = rt
        .load_bytes(&component("hostile-guest"), &PluginSpec::named("hostile"))
        .expect("load");
    match plugin.preinitialize(&component("policy-rules"), &settings_only("{}")) {
        Err(Error::DigestMismatch { .. }) => {}
        other => panic!("{other:?}"),
    }
    match plugin.preinitialize(&component("hostile-guest"), &Warmup::default()) {
        Err(e @ Error::Preinit { .. }) => assert!(e.to_string().contains("empty"), "{e}"),
        other => panic!("{other:?}"),
    }
    let policy = rt
        .load_bytes(&component("policy-rules"), &PluginSpec::named("rules"))
        .expect("load");
    let plans = Warmup {
        settings: Vec::new(),
        plans: vec![(Some("{{ . }}".into()), "{}".into())],
    };
    match policy.preinitialize(&component("policy-rules"), &plans) {
        Err(e @ Error::Preinit { .. }) => assert!(e.to_string().contains("renderers"), "{e}"),
        other => panic!("{other:?}"),
    }
}

/// A heap larger than one call's transfer fuel is still snapshotted
/// whole.
#[test]
fn a_big_heap_is_carried_by_the_snapshot() {
    let cache = tempfile::tempdir().expect("temp dir");
    let rt = runtime(cache.path());
    let settings = json!({"mode": "big-heap", "warmup": "big-heap"}).to_string();
    let plugin = warmed(&rt, "hostile-guest", settings_only(&settings));
    assert!(plugin.load_stats().preinitialized);
    let len = 16u64 << 20;
    let sum: u64 = (0..len).map(|i| i % 251 + 1).sum();
    assert_eq!(
        file_contents(
            &plugin
                .render_blocking(&render_request(&settings, None, Vec::new()))
                .expect("render")
        ),
        format!("{len} {sum}")
    );
}

/// The limits still hold in a snapshot: a loop after the warm-up is
/// stopped at the deadline.
#[test]
fn a_snapshot_runs_under_the_same_limits() {
    let cache = tempfile::tempdir().expect("temp dir");
    let rt = runtime(cache.path());
    let plugin = warmed(&rt, "hostile-guest", settings_only(r#"{"mode": "loop"}"#));
    assert!(plugin.load_stats().preinitialized);
    match plugin.render_blocking(&render_request(r#"{"mode": "loop"}"#, None, Vec::new())) {
        Err(PluginFailure::Sandbox {
            reason: SandboxReason::Timeout,
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
}

fn rules_settings() -> String {
    json!({
        "rules": [
            {"name": "platform", "match": {"namespaces": ["kube-system"]}, "deny": {"paths": ["**"], "reason": "no secrets in kube-system"}},
            {"name": "team-a", "match": {"namespaces": ["team-a"]},
             "allow": {"paths": ["secret/team-a/**"], "max-ttl": "1h", "delivery": ["file"]}}
        ]
    })
    .to_string()
}

fn decide_request(namespace: &str, settings: &str) -> DecideRequest {
    DecideRequest {
        workload: Workload {
            namespace: namespace.into(),
            service_account: "api".into(),
            ..Workload::default()
        },
        secrets: vec![SecretRequest {
            reference: "secret/data/team-a/db".into(),
            engine: Engine::Kv2,
            mount: "secret".into(),
            path: "team-a/db".into(),
            version: None,
            parameters: Vec::new(),
            delivery: vec![DeliveryKind::File],
        }],
        settings: settings.into(),
    }
}

#[test]
fn policy_rules_decides_the_same_with_and_without_a_snapshot() {
    let cache = tempfile::tempdir().expect("temp dir");
    let rt = runtime(cache.path());
    let settings = rules_settings();
    let plain = rt
        .load_bytes(
            &component("policy-rules"),
            &PluginSpec::named("policy-rules"),
        )
        .expect("load");
    let warm = warmed(&rt, "policy-rules", settings_only(&settings));
    assert!(warm.load_stats().preinitialized);
    let other_settings =
        json!({"rules": [{"name": "all", "match": {}, "allow": {"paths": ["**"]}}]}).to_string();
    for namespace in ["team-a", "kube-system", "team-b"] {
        // The warmed settings, and settings the warm-up never saw.
        for s in [&settings, &other_settings] {
            let request = decide_request(namespace, s);
            assert_eq!(
                warm.decide_blocking(&request).expect("decide"),
                plain.decide_blocking(&request).expect("decide"),
                "{namespace} with {s}"
            );
        }
    }
    // Invalid settings are still reported, with the same message.
    let bad = decide_request("team-a", r#"{"rules": [{"name": 1}]}"#);
    match (warm.decide_blocking(&bad), plain.decide_blocking(&bad)) {
        (
            Err(PluginFailure::Plugin(PluginError::InvalidSettings(a))),
            Err(PluginFailure::Plugin(PluginError::InvalidSettings(b))),
        ) => assert_eq!(a, b),
        other => panic!("{other:?}"),
    }
}

#[test]
fn render_template_renders_the_same_with_and_without_a_snapshot() {
    let cache = tempfile::tempdir().expect("temp dir");
    let rt = runtime(cache.path());
    let template = "{{ with secret \"secret/data/app\" }}user={{ .Data.data.user }} v={{ .Data.metadata.version }}{{ end }}\n";
    let other = "{{ with secret \"secret/data/app\" }}{{ .Data.data.user | toUpper }}{{ end }}";
    let warm = warmed(
        &rt,
        "render-template",
        Warmup {
            settings: vec!["{}".into()],
            plans: vec![(Some(template.into()), "{}".into()), (None, "{}".into())],
        },
    );
    assert!(warm.load_stats().preinitialized);
    let plain = rt
        .load_bytes(
            &component("render-template"),
            &PluginSpec::named("render-template"),
        )
        .expect("load");
    let value = SecretValue::from_response(
        &SecretRef::read("secret/data/app"),
        &json!({"data": {"data": {"user": "app"}, "metadata": {"version": 3}}}),
    )
    .expect("value");
    for t in [Some(template), Some(other), None] {
        let request = render_request("{}", t, vec![value.clone()]);
        let a = warm.render_blocking(&request).expect("render");
        assert_eq!(a, plain.render_blocking(&request).expect("render"), "{t:?}");
        assert_eq!(
            warm.plan_blocking(t, "{}").expect("plan"),
            plain.plan_blocking(t, "{}").expect("plan")
        );
    }
    assert_eq!(
        file_contents(
            &warm
                .render_blocking(&render_request("{}", Some(template), vec![value.clone()]))
                .expect("render")
        ),
        "user=app v=3\n"
    );
    // A missing key is still an error from the kept template.
    let missing = SecretValue::from_response(
        &SecretRef::read("secret/data/app"),
        &json!({"data": {"data": {}, "metadata": {"version": 3}}}),
    )
    .expect("value");
    match warm.render_blocking(&render_request("{}", Some(template), vec![missing])) {
        Err(PluginFailure::Plugin(PluginError::InvalidInput(m))) => {
            assert!(m.contains("user"), "{m}")
        }
        other => panic!("{other:?}"),
    }
}
