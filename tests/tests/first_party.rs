//! The first-party plugins at the sandbox's limits (the hostile-plugin
//! suite covers arbitrary guests; these cover what is particular to ours).
//!
//! Needs `target/plugins/*.wasm` (`cargo xtask plugins`).

use keyward_core::{PluginFailure, SandboxReason};
use keyward_runtime::{PluginLimits, PluginSpec, Runtime, RuntimeConfig};
use keyward_tests::{LogCapture, component};
use serde_json::json;

/// policy-rules is built without `std`, with a bump allocator that frees
/// only the most recent block. A settings document that needs more than
/// the memory limit to parse stops the call with the memory-limit reason
/// (the sandbox traps the `memory.grow` past the limit, so the guest never
/// sees a failed allocation), nothing is logged as a plugin panic, and the
/// next call, in a fresh instance, is unaffected.
#[test]
fn policy_rules_out_of_memory_is_the_memory_limit_and_the_next_call_works() {
    let cache = tempfile::tempdir().expect("temp dir");
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: Some(cache.path().to_path_buf()),
        ..RuntimeConfig::default()
    })
    .expect("runtime");
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
