//! Plugin call and load costs, through the public API:
//!
//! * `decide_policy_rules`: fresh `Store`, instantiate and `decide` on
//!   policy-rules with small realistic settings, on the calling thread
//!   (`Plugin::decide_blocking`; target: <= 20 µs p50). The plugin is
//!   loaded as the agent runs it: pre-initialised with those settings
//!   (`PluginSpec::warmup`), so each fresh instance starts from a snapshot
//!   in which they are already parsed;
//! * `decide_policy_rules_cold`: the same without the warm-up, so every
//!   call parses the settings (reported);
//! * `decide_policy_rules_async`: the warmed plugin through the async
//!   `Policy` API, which adds the hand-off to tokio's blocking pool and
//!   back (reported);
//! * `decide_empty`: the plugin pre-initialised with no rules, asked about
//!   no secrets: the fixed cost of a sandboxed call (reported);
//! * `render_1k_template` / `render_1k_template_async`: a ~1 KiB template
//!   rendered by render-template pre-initialised with that template
//!   (target: <= 50 µs, on the calling thread);
//! * `render_1k_template_cold`: the same without the warm-up, so every
//!   call lexes and parses the template (reported);
//! * `cached_load`: `Runtime::load_file` of a component present in the
//!   precompiled disk cache, with the plugin table emptied first so that
//!   it really deserializes (target: <= 20 ms).
//!
//! Needs `target/plugins/*.wasm` (`cargo xtask plugins`).

use std::path::PathBuf;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use keyward_core::{
    DecideRequest, DeliveryKind, Engine, RenderRequest, SecretRef, SecretRequest, SecretValue,
    Target, Workload,
};
use keyward_runtime::{PluginSpec, Runtime, RuntimeConfig, Warmup};
use serde_json::json;

fn component_path(name: &str) -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let path = target.join("plugins").join(format!("{name}.wasm"));
    assert!(
        path.exists(),
        "{} not found: run `cargo xtask plugins` first",
        path.display()
    );
    path
}

fn workload() -> Workload {
    Workload {
        cluster: "prod-eu".into(),
        namespace: "team-a".into(),
        service_account: "api".into(),
        kind: "Deployment".into(),
        name: "api".into(),
        labels: [("app".to_string(), "api".to_string())].into(),
        namespace_labels: [("team".to_string(), "alpha".to_string())].into(),
        images: vec!["registry.example.com/team-a/api:1.2".into()],
        ..Workload::default()
    }
}

/// The caller's side: a current-thread runtime, so that `block_on` polls
/// the call on this thread and the measured hand-off is the one every
/// caller pays (to the blocking pool and back), not an extra hop to a
/// worker thread.
fn tokio() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn runtime(cache: &std::path::Path) -> Runtime {
    Runtime::new(RuntimeConfig {
        cache_dir: Some(cache.to_path_buf()),
        ..RuntimeConfig::default()
    })
    .expect("runtime")
}

/// policy-rules loaded as the agent runs it: pre-initialised with its
/// settings (`PluginSpec::warmup`), so each fresh instance starts from a
/// snapshot in which they are already parsed.
fn policy_rules_for(rt: &Runtime, settings: &str) -> keyward_runtime::Plugin {
    let plugin = rt
        .load_file(
            &component_path("policy-rules"),
            &PluginSpec {
                warmup: Some(Warmup {
                    settings: vec![settings.to_string()],
                    plans: Vec::new(),
                }),
                ..PluginSpec::named("policy-rules")
            },
        )
        .expect("load");
    assert!(plugin.load_stats().preinitialized, "the warm-up failed");
    plugin
}

fn decide(c: &mut Criterion) {
    let cache = tempfile::tempdir().expect("temp dir");
    let rt = runtime(cache.path());
    let cold = rt
        .load_file(
            &component_path("policy-rules"),
            &PluginSpec::named("policy-rules"),
        )
        .expect("load");
    let settings = json!({
        "rules": [
            {"name": "platform", "match": {"namespaces": ["kube-system"]}, "deny": {"paths": ["**"], "reason": "no secrets in kube-system"}},
            {"name": "team-a", "match": {"namespaces": ["team-a", "team-a-*"], "labels": {"app": "*"}},
             "allow": {"paths": ["secret/team-a/**", "database/creds/team-a-*"], "max-ttl": "1h", "delivery": ["file", "env"]}},
            {"name": "team-b", "match": {"namespaces": ["team-b"]}, "allow": {"paths": ["secret/team-b/**"]}}
        ]
    })
    .to_string();
    let request = DecideRequest {
        workload: workload(),
        secrets: vec![
            SecretRequest {
                reference: "secret/data/team-a/db".into(),
                engine: Engine::Kv2,
                mount: "secret".into(),
                path: "team-a/db".into(),
                version: None,
                parameters: Vec::new(),
                delivery: vec![DeliveryKind::File],
            },
            SecretRequest {
                reference: "database/creds/team-a-ro".into(),
                engine: Engine::Database,
                mount: "database".into(),
                path: "creds/team-a-ro".into(),
                version: None,
                parameters: Vec::new(),
                delivery: vec![DeliveryKind::Env],
            },
        ],
        settings,
    };
    let plugin = policy_rules_for(&rt, &request.settings);
    let policy = plugin.policy().expect("policy");
    let tokio = tokio();
    // Fail loudly if the settings or request are wrong.
    tokio
        .block_on(policy.validate_settings(&request.settings))
        .expect("valid settings");
    tokio
        .block_on(policy.decide(request.clone()))
        .expect("decide");
    assert_eq!(
        plugin.decide_blocking(&request).expect("decide"),
        tokio
            .block_on(policy.decide(request.clone()))
            .expect("decide")
    );
    assert_eq!(
        plugin.decide_blocking(&request).expect("decide"),
        cold.decide_blocking(&request).expect("decide")
    );
    c.bench_function("decide_policy_rules", |b| {
        b.iter(|| plugin.decide_blocking(&request).expect("decide"))
    });
    c.bench_function("decide_policy_rules_cold", |b| {
        b.iter(|| cold.decide_blocking(&request).expect("decide"))
    });
    // The floor: the same plugin with no rules and no secrets, pre-
    // initialised like the measured one, so that almost all that remains
    // is the sandbox (Store, instantiate, lowering the workload, memory
    // reset).
    let mut empty = request.clone();
    empty.settings = r#"{"rules": []}"#.into();
    empty.secrets.clear();
    let floor = policy_rules_for(&rt, &empty.settings);
    assert_eq!(floor.decide_blocking(&empty).expect("decide"), Vec::new());
    c.bench_function("decide_empty", |b| {
        b.iter(|| floor.decide_blocking(&empty).expect("decide"))
    });
    c.bench_function("decide_policy_rules_async", |b| {
        b.iter(|| {
            tokio
                .block_on(policy.decide(request.clone()))
                .expect("decide")
        })
    });
}

/// About 1 KiB of template: a config file reading two secrets.
fn template_1k() -> String {
    let mut t = String::from(
        "# generated by keyward for {{ with secret \"secret/data/app\" }}{{ .Data.metadata.version }}{{ end }}\n\
         [database]\n\
         {{ with secret \"secret/data/app\" -}}\n\
         host = \"{{ .Data.data.host }}\"\n\
         port = {{ .Data.data.port }}\n\
         user = \"{{ .Data.data.username }}\"\n\
         password = \"{{ .Data.data.password }}\"\n\
         {{- end }}\n\n[features]\n",
    );
    for i in 0..6 {
        t.push_str(&format!(
            "feature_{i:02} = {{{{ with secret \"secret/data/app\" }}}}{{{{ if .Data.data.flags }}}}\"on\"{{{{ else }}}}\"off\"{{{{ end }}}}{{{{ end }}}}\n"
        ));
    }
    t.push_str("\n[tls]\n{{ with secret \"secret/data/tls\" }}cert = \"\"\"\n{{ .Data.data.cert }}\n\"\"\"{{ end }}\n");
    t
}

fn render(c: &mut Criterion) {
    let cache = tempfile::tempdir().expect("temp dir");
    let rt = runtime(cache.path());
    let template = template_1k();
    let cold = rt
        .load_file(
            &component_path("render-template"),
            &PluginSpec::named("render-template"),
        )
        .expect("load");
    let plugin = rt
        .load_file(
            &component_path("render-template"),
            &PluginSpec {
                warmup: Some(Warmup {
                    settings: vec!["{}".into()],
                    plans: vec![(Some(template.clone()), "{}".into())],
                }),
                ..PluginSpec::named("render-template")
            },
        )
        .expect("load");
    assert!(plugin.load_stats().preinitialized, "the warm-up failed");
    let renderer = plugin.renderer().expect("renderer");
    assert!(
        (900..1400).contains(&template.len()),
        "template is {} bytes",
        template.len()
    );
    let app = SecretValue::from_response(
        &SecretRef::read("secret/data/app"),
        &json!({"data": {
            "data": {"host": "db.internal", "port": "5432", "username": "app", "password": "s3cret-pw-123", "flags": "yes"},
            "metadata": {"version": 7}
        }}),
    )
    .expect("value");
    let tls = SecretValue::from_response(
        &SecretRef::read("secret/data/tls"),
        &json!({"data": {"data": {"cert": "-----BEGIN CERTIFICATE-----\nMIIB...\n-----END CERTIFICATE-----"}, "metadata": {"version": 1}}}),
    )
    .expect("value");
    let request = RenderRequest {
        workload: workload(),
        template: Some(template),
        settings: "{}".into(),
        target: Target {
            kind: DeliveryKind::File,
            name: "app.toml".into(),
            mode: Some(0o600),
        },
        secrets: vec![app, tls],
    };
    let tokio = tokio();
    let artifacts = tokio
        .block_on(renderer.render(request.clone()))
        .expect("render");
    assert_eq!(artifacts.len(), 1);
    assert_eq!(plugin.render_blocking(&request).expect("render"), artifacts);
    assert_eq!(cold.render_blocking(&request).expect("render"), artifacts);
    c.bench_function("render_1k_template", |b| {
        b.iter(|| plugin.render_blocking(&request).expect("render"))
    });
    c.bench_function("render_1k_template_cold", |b| {
        b.iter(|| cold.render_blocking(&request).expect("render"))
    });
    c.bench_function("render_1k_template_async", |b| {
        b.iter(|| {
            tokio
                .block_on(renderer.render(request.clone()))
                .expect("render")
        })
    });
}

fn cached_load(c: &mut Criterion) {
    let cache = tempfile::tempdir().expect("temp dir");
    let rt = runtime(cache.path());
    let path = component_path("render-template");
    let spec = PluginSpec::named("render-template");
    // Populate the disk cache.
    assert!(
        !rt.load_file(&path, &spec)
            .expect("compile")
            .load_stats()
            .cache_hit
    );
    c.bench_function("cached_load", |b| {
        b.iter(|| {
            rt.unload_all();
            let plugin = rt.load_file(&path, &spec).expect("load");
            assert!(plugin.load_stats().cache_hit);
            plugin
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(8));
    targets = decide, render, cached_load
}
criterion_main!(benches);
