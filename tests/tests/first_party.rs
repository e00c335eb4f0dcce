//! The first-party plugins at the sandbox's limits (the hostile-plugin
//! suite covers arbitrary guests; these cover what is particular to ours).
//!
//! Needs `target/plugins/*.wasm` (`cargo xtask plugins`).

use keyward_core::{
    Artifact, DeliveryKind, PluginFailure, RenderRequest, SandboxReason, SecretRef, SecretValue,
    Target, Workload,
};
use keyward_runtime::{PluginLimits, PluginSpec, Runtime, RuntimeConfig};
use keyward_tests::{LogCapture, component};
use serde_json::json;

/// A runtime with its own component cache.
fn runtime(cache: &std::path::Path) -> Runtime {
    Runtime::new(RuntimeConfig {
        cache_dir: Some(cache.to_path_buf()),
        ..RuntimeConfig::default()
    })
    .expect("runtime")
}

/// policy-rules is built without `std`, with a bump allocator that frees
/// only the most recent block. A settings document that needs more than
/// the memory limit to parse stops the call with the memory-limit reason
/// (the sandbox traps the `memory.grow` past the limit, so the guest never
/// sees a failed allocation), nothing is logged as a plugin panic, and the
/// next call, in a fresh instance, is unaffected.
#[test]
fn policy_rules_out_of_memory_is_the_memory_limit_and_the_next_call_works() {
    let cache = tempfile::tempdir().expect("temp dir");
    let runtime = runtime(cache.path());
    let spec = PluginSpec {
        limits: Some(PluginLimits {
            memory_bytes: 2 << 20,
            ..PluginLimits::for_language(Some("rust"))
        }),
        ..PluginSpec::named("policy-rules")
    };
    let plugin = runtime
        .load_bytes(&component("policy-rules"), &spec)
        .expect("load");
    let rules: Vec<_> = (0..3000)
        .map(|i| {
            json!({
                "name": format!("rule-{i}"),
                "match": {"namespaces": [format!("team-{i}"), format!("team-{i}-*")]},
                "allow": {"paths": [format!("secret/team-{i}/**")]}
            })
        })
        .collect();
    let big = json!({ "rules": rules }).to_string();
    // Small enough to be passed in; too big to parse within 2 MiB.
    assert!(big.len() < 1 << 20, "{}", big.len());

    let capture = LogCapture::start();
    match plugin.validate_settings_blocking(&big) {
        Err(PluginFailure::Sandbox {
            reason: SandboxReason::MemoryLimit,
            detail,
        }) => assert!(detail.contains("memory limit"), "{detail}"),
        other => panic!("{other:?}"),
    }
    let logs = capture.text();
    assert!(
        logs.contains("memory limit of 2097152 bytes reached"),
        "{logs}"
    );
    assert!(!logs.contains("panicked"), "{logs}");

    let small = json!({"rules": [{"allow": {"paths": ["secret/**"]}}]}).to_string();
    plugin
        .validate_settings_blocking(&small)
        .expect("the next call works");
}

/// render-template allocates with the bump allocator too (freed memory is
/// not reused, except for the most recent block), so a large render must
/// still fit the memory limit with room to spare: 1500 keys of 1 KiB each,
/// every one transformed (a temporary string each) and the whole map
/// serialised once more, ~3 MiB of output (most of what the pipeline's
/// 4 MiB output bound lets through), within half the default 64 MiB. It
/// needs 16-24 MiB; wasi-libc's `malloc` needed 8-16 MiB.
#[test]
fn render_template_renders_megabytes_within_half_the_default_memory_limit() {
    let cache = tempfile::tempdir().expect("temp dir");
    let runtime = runtime(cache.path());
    let plugin = runtime
        .load_bytes(
            &component("render-template"),
            &PluginSpec {
                limits: Some(PluginLimits {
                    memory_bytes: 32 << 20,
                    ..PluginLimits::for_language(Some("rust"))
                }),
                ..PluginSpec::named("render-template")
            },
        )
        .expect("load");
    let value = "x".repeat(1024);
    let data: serde_json::Map<String, serde_json::Value> = (0..1500)
        .map(|i| (format!("key-{i:04}"), json!(value)))
        .collect();
    let secret = SecretValue::from_response(
        &SecretRef::read("secret/data/big"),
        &json!({"data": {"data": data, "metadata": {"version": 1}}}),
    )
    .expect("value");
    let template = "{{ with secret \"secret/data/big\" }}\
                    {{ range $k, $v := .Data.data }}{{ $k }}={{ $v | toUpper }}\n{{ end }}\
                    {{ .Data.data | toJSON }}{{ end }}";
    let request = RenderRequest {
        workload: Workload::default(),
        template: Some(template.into()),
        settings: "{}".into(),
        target: Target {
            kind: DeliveryKind::File,
            name: "big.txt".into(),
            mode: None,
        },
        secrets: vec![secret],
    };
    let artifacts = plugin.render_blocking(&request).expect("render");
    let [Artifact::File { contents, .. }] = artifacts.as_slice() else {
        panic!("{artifacts:?}");
    };
    let contents = contents.expose();
    let upper = "X".repeat(1024);
    let lines = 1500 * ("key-0000=".len() + 1024 + 1);
    let json_len = 2 + 1500 * ("\"key-0000\":\"\"".len() + 1024) + 1499;
    assert_eq!(contents.len(), lines + json_len);
    let text = std::str::from_utf8(contents).expect("utf-8");
    assert!(text.starts_with(&format!("key-0000={upper}\nkey-0001={upper}\n")));
    assert!(text.ends_with(&format!("\"key-1499\":\"{value}\"}}")));
}
