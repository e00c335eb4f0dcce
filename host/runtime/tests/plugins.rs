//! The runtime against the first-party plugins, as built by
//! `cargo xtask plugins` into `target/plugins/`.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use keyward_core::{
    Artifact, Binding, DecideRequest, DeliveryKind, Engine, FixtureSource, MountTable, Pipeline,
    PluginError, PluginFailure, PolicyStep, RefKind, RenderRequest, SecretRef, SecretRequest,
    SecretValue, Target, Verdict, Workload,
};
use keyward_runtime::{
    Error, Plugin, PluginLimits, PluginSpec, Runtime, RuntimeConfig, World, inspect,
};
use serde_json::json;

fn component_path(name: &str) -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    target.join("plugins").join(format!("{name}.wasm"))
}

/// A built component; fails (never skips) when it is missing.
fn component(name: &str) -> Vec<u8> {
    let path = component_path(name);
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "component {name:?} not found at {} ({e}): run `cargo xtask plugins` first",
            path.display()
        )
    })
}

fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        Runtime::new(RuntimeConfig {
            cache_dir: Some(tempfile::tempdir().expect("temp dir").keep()),
            ..RuntimeConfig::default()
        })
        .expect("runtime")
    })
}

/// Loaded through `load_file`, the path the CLI takes.
fn policy_rules() -> Plugin {
    // Fails with the "run `cargo xtask plugins` first" hint when missing.
    component("policy-rules");
    runtime()
        .load_file(
            &component_path("policy-rules"),
            &PluginSpec::named("policy-rules"),
        )
        .expect("load policy-rules")
}

fn render_template() -> Plugin {
    runtime()
        .load_bytes(
            &component("render-template"),
            &PluginSpec::named("render-template"),
        )
        .expect("load render-template")
}

fn workload(namespace: &str) -> Workload {
    Workload {
        cluster: "prod-eu".into(),
        namespace: namespace.into(),
        service_account: "api".into(),
        kind: "Deployment".into(),
        name: "api".into(),
        images: vec!["registry.example.com/team-a/api:1.2".into()],
        ..Workload::default()
    }
}

fn team_a_settings() -> String {
    json!({
        "rules": [{
            "name": "team-a",
            "match": {"namespaces": ["team-a", "team-a-*"]},
            "allow": {"paths": ["secret/team-a/**"]}
        }]
    })
    .to_string()
}

fn kv2_request(path: &str) -> SecretRequest {
    SecretRequest {
        reference: format!("secret/data/{path}"),
        engine: Engine::Kv2,
        mount: "secret".into(),
        path: path.into(),
        version: None,
        parameters: Vec::new(),
        delivery: vec![DeliveryKind::File],
    }
}

#[test]
fn inspect_reports_what_a_component_is() {
    for (name, world) in [
        ("policy-rules", World::Policy),
        ("render-template", World::Renderer),
    ] {
        let bytes = component(name);
        let info = inspect(&bytes).expect("inspect");
        assert_eq!(info.world, Some(world), "{name}");
        assert_eq!(info.package.as_deref(), Some("keyward:plugin"), "{name}");
        assert_eq!(info.version.as_deref(), Some("0.1.0"), "{name}");
        assert_eq!(
            info.language.as_deref(),
            Some("rust"),
            "{name}: {:?}",
            info.producers
        );
        assert_eq!(info.size, bytes.len());
        assert_eq!(info.digest, keyward_runtime::digest(&bytes));
        assert!(
            info.refused_imports.is_empty(),
            "{name}: {:?}",
            info.refused_imports
        );
        assert!(
            info.imports
                .iter()
                .any(|i| i.starts_with("keyward:plugin/types@0.1")),
            "{name}: {:?}",
            info.imports
        );
    }
}

#[tokio::test]
async fn policy_rules_decides() {
    let plugin = policy_rules();
    assert_eq!(plugin.world(), World::Policy);
    assert_eq!(plugin.language(), Some("rust"));
    let policy = plugin.policy().expect("a policy");
    policy
        .validate_settings(&team_a_settings())
        .await
        .expect("valid settings");

    let decisions = policy
        .decide(DecideRequest {
            workload: workload("team-a-dev"),
            secrets: vec![kv2_request("team-a/db"), kv2_request("team-b/db")],
            settings: team_a_settings(),
        })
        .await
        .expect("decide");
    assert_eq!(decisions.len(), 2);
    assert_eq!(decisions[0].reference, "secret/data/team-a/db");
    assert!(
        matches!(decisions[0].verdict, Verdict::Allow(_)),
        "{decisions:?}"
    );
    assert_eq!(decisions[0].rule.as_deref(), Some("rules[0] team-a"));
    assert!(
        matches!(decisions[1].verdict, Verdict::Deny(_)),
        "{decisions:?}"
    );
}

#[tokio::test]
async fn policy_rules_reports_invalid_settings_as_its_own_error() {
    let policy = policy_rules().policy().expect("a policy");
    match policy.validate_settings("{\"rules\": 3}").await {
        Err(PluginFailure::Plugin(PluginError::InvalidSettings(message))) => {
            assert!(message.contains("rules"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

/// policy-rules is built without `std` so that it imports nothing from
/// WASI, and without the host's `log`, so that it imports no function at
/// all: each imported function costs every instantiation (one taking a
/// string adds two core instances). A dependency that pulls `std` back in,
/// or a `log` call, shows up here.
#[test]
fn policy_rules_imports_nothing_from_wasi() {
    let info = inspect(&component("policy-rules")).expect("inspect");
    let imports: Vec<&String> = info
        .imports
        .iter()
        .filter(|i| !i.starts_with("keyward:plugin/types@"))
        .collect();
    assert!(imports.is_empty(), "{imports:?}");
}

/// render-template needs `std` but is built for wasm32-unknown-unknown, so
/// that it imports no WASI interface (they would cost every instantiation);
/// it imports the host's `log`, to report a panic's message.
#[test]
fn render_template_imports_only_the_keyward_package() {
    let info = inspect(&component("render-template")).expect("inspect");
    assert_eq!(
        info.imports,
        ["keyward:plugin/host@0.1.0", "keyward:plugin/types@0.1.0"],
        "{:?}",
        info.imports
    );
}

#[tokio::test]
async fn render_template_plans_and_renders() {
    let renderer = render_template().renderer().expect("a renderer");
    let template = "user={{ with secret \"secret/data/app\" }}{{ .Data.data.username }}\n\
                    pass={{ .Data.data.password }}{{ end }}\n";
    let refs = renderer.plan(Some(template), "{}").await.expect("plan");
    assert_eq!(
        refs,
        vec![SecretRef {
            reference: "secret/data/app".into(),
            parameters: Vec::new(),
            kind: RefKind::Secret,
        }]
    );
    let value = SecretValue::from_response(
        &refs[0],
        &json!({"data": {"data": {"username": "app", "password": "s3cret"}, "metadata": {"version": 3}}}),
    )
    .expect("value");
    let artifacts = renderer
        .render(RenderRequest {
            workload: workload("team-a"),
            template: Some(template.into()),
            settings: "{}".into(),
            target: Target {
                kind: DeliveryKind::File,
                name: "app.conf".into(),
                mode: Some(0o640),
            },
            secrets: vec![value],
        })
        .await
        .expect("render");
    match artifacts.as_slice() {
        [
            Artifact::File {
                path,
                mode,
                contents,
            },
        ] => {
            assert_eq!(path, "app.conf");
            assert_eq!(*mode, 0o640);
            assert_eq!(contents.expose(), b"user=app\npass=s3cret\n");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn pipeline_runs_both_plugins() {
    let policy = policy_rules().policy().expect("policy");
    let renderer = render_template().renderer().expect("renderer");
    let pipeline = Pipeline::new(
        vec![PolicyStep {
            name: "rules".into(),
            policy,
            settings: team_a_settings(),
        }],
        MountTable::new().with("secret", Engine::Kv2),
    );
    let binding = Binding {
        name: "db".into(),
        renderer_name: "render-template".into(),
        renderer,
        template: Some(
            "{{ with secret \"secret/data/team-a/db\" }}{{ .Data.data.password }}{{ end }}".into(),
        ),
        settings: "{}".into(),
        target: Target {
            kind: DeliveryKind::File,
            name: "db.pass".into(),
            mode: Some(0o600),
        },
        secrets: Vec::new(),
    };
    let mut source = FixtureSource::default();
    source.insert(
        "secret/data/team-a/db",
        json!({"data": {"data": {"password": "pw-1234"}, "metadata": {"version": 1}}}),
    );
    let bindings = [binding];
    pipeline.validate(&bindings).await.expect("validate");
    let (_, _, rendered) = pipeline
        .run(&workload("team-a"), &bindings, &source)
        .await
        .expect("run");
    match rendered[0].artifacts.as_slice() {
        [Artifact::File { contents, .. }] => assert_eq!(contents.expose(), b"pw-1234"),
        other => panic!("{other:?}"),
    }
    // Another namespace is denied before anything is fetched or rendered.
    let denied = pipeline.run(&workload("team-b"), &bindings, &source).await;
    assert!(
        matches!(denied, Err(keyward_core::Error::Denied(_))),
        "{denied:?}"
    );
}

#[test]
fn a_second_load_reuses_the_compiled_component() {
    let bytes = component("policy-rules");
    let first = runtime()
        .load_bytes(&bytes, &PluginSpec::named("a"))
        .expect("load");
    let second = runtime()
        .load_bytes(&bytes, &PluginSpec::named("b"))
        .expect("load");
    assert!(second.load_stats().cache_hit);
    assert_eq!(second.load_stats().compile_ms, 0.0);
    assert_eq!(first.digest(), second.digest());
    assert_eq!(second.name(), "b");
}

#[test]
fn worlds_are_not_interchangeable() {
    assert!(matches!(
        policy_rules().renderer(),
        Err(Error::WrongWorld {
            actual: World::Policy,
            wanted: World::Renderer,
            ..
        })
    ));
    assert!(render_template().policy().is_err());
}

#[test]
fn limits_above_the_runtime_maximum_are_refused() {
    let spec = PluginSpec {
        name: "greedy".into(),
        digest: None,
        limits: Some(PluginLimits {
            memory_bytes: 4 << 30,
            ..PluginLimits::NATIVE
        }),
        warmup: None,
    };
    match runtime().load_bytes(&component("policy-rules"), &spec) {
        Err(e @ Error::Limits { .. }) => assert!(e.to_string().contains("max_memory_bytes"), "{e}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_missing_file_names_the_plugin_and_path() {
    match runtime().load_file(
        &PathBuf::from("/nonexistent/plugin.wasm"),
        &PluginSpec::named("ghost"),
    ) {
        Err(e @ Error::Read { .. }) => {
            let message = e.to_string();
            assert!(
                message.contains("ghost") && message.contains("/nonexistent/plugin.wasm"),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_calls_share_one_instance_pre() {
    let policy: Arc<dyn keyward_core::Policy> = policy_rules().policy().expect("policy");
    let mut calls = Vec::new();
    for i in 0..64 {
        let policy = policy.clone();
        calls.push(tokio::spawn(async move {
            let namespace = if i % 2 == 0 { "team-a" } else { "team-b" };
            let decisions = policy
                .decide(DecideRequest {
                    workload: workload(namespace),
                    secrets: vec![kv2_request("team-a/db")],
                    settings: team_a_settings(),
                })
                .await
                .expect("decide");
            (i, matches!(decisions[0].verdict, Verdict::Allow(_)))
        }));
    }
    for call in calls {
        let (i, allowed) = call.await.expect("join");
        assert_eq!(allowed, i % 2 == 0, "call {i}");
    }
}
