use std::sync::Arc;

use super::*;
use crate::audit::MemoryAudit;
use crate::fixture::FixtureSource;
use crate::types::{PluginError, Sensitive};

/// A policy that answers from a fixed table of path prefixes.
struct Table(Vec<(&'static str, Verdict)>);

#[async_trait]
impl Policy for Table {
    async fn validate_settings(&self, _: &str) -> Result<(), PluginFailure> {
        Ok(())
    }
    async fn decide(&self, req: DecideRequest) -> Result<Vec<SecretDecision>, PluginFailure> {
        Ok(req
            .secrets
            .iter()
            .filter_map(|s| {
                self.0
                    .iter()
                    .find(|(p, _)| s.full_path().starts_with(p))
                    .map(|(p, v)| SecretDecision {
                        reference: s.reference.clone(),
                        verdict: v.clone(),
                        rule: Some(format!("prefix {p}")),
                    })
            })
            .collect())
    }
}

/// Renders `key=value` lines of every secret's KV v2 data into one file.
struct Lines;

#[async_trait]
impl Renderer for Lines {
    async fn validate_settings(&self, _: &str) -> Result<(), PluginFailure> {
        Ok(())
    }
    async fn plan(&self, t: Option<&str>, _: &str) -> Result<Vec<SecretRef>, PluginFailure> {
        Ok(t.map(|t| t.lines().map(SecretRef::read).collect())
            .unwrap_or_default())
    }
    async fn render(&self, req: RenderRequest) -> Result<Vec<Artifact>, PluginFailure> {
        let mut out = String::new();
        for s in &req.secrets {
            let data = s.data.expose()["data"]
                .as_object()
                .ok_or(PluginFailure::Plugin(PluginError::InvalidInput(
                    "not kv2".into(),
                )))?;
            for (k, v) in data {
                out.push_str(&format!("{k}={}\n", v.as_str().unwrap_or_default()));
            }
        }
        Ok(vec![Artifact::File {
            path: req.target.name.clone(),
            mode: req.target.mode.unwrap_or(0o600),
            contents: Sensitive(out.into_bytes()),
        }])
    }
}

fn kv2(data: serde_json::Value) -> serde_json::Value {
    serde_json::json!({"data": {"data": data, "metadata": {"version": 1}}, "lease_duration": 0})
}

fn binding(name: &str, template: &str, file: &str) -> Binding {
    Binding {
        name: name.into(),
        renderer_name: "lines".into(),
        renderer: Arc::new(Lines),
        template: Some(template.into()),
        settings: "{}".into(),
        target: Target {
            kind: DeliveryKind::File,
            name: file.into(),
            mode: None,
        },
        secrets: vec![],
    }
}

fn fixtures() -> FixtureSource {
    let mut f = FixtureSource::default();
    f.insert(
        "secret/data/a/db",
        kv2(serde_json::json!({"user": "u", "password": "CANARY-pw"})),
    );
    f.insert("secret/data/b/x", kv2(serde_json::json!({"k": "v"})));
    f
}

fn mounts() -> MountTable {
    MountTable::new().with("secret", Engine::Kv2)
}

fn step(name: &str, t: Vec<(&'static str, Verdict)>) -> PolicyStep {
    PolicyStep {
        name: name.into(),
        policy: Arc::new(Table(t)),
        settings: "{}".into(),
    }
}

#[tokio::test]
async fn allowed_secret_renders_and_is_audited_without_values() {
    let audit = Arc::new(MemoryAudit::default());
    let p = Pipeline::new(
        vec![step(
            "p",
            vec![("secret/a", Verdict::Allow(Grant::default()))],
        )],
        mounts(),
    )
    .with_auditor(Auditor::new(audit.clone(), [7; 32]));
    let w = Workload::default();
    let (_, _, rendered) = p
        .run(
            &w,
            &[binding("b", "secret/data/a/db", "app.env")],
            &fixtures(),
        )
        .await
        .unwrap();
    let Artifact::File { contents, .. } = &rendered[0].artifacts[0] else {
        panic!()
    };
    assert_eq!(contents.expose(), b"user=u\npassword=CANARY-pw\n");
    let log = serde_json::to_string(&audit.events()).unwrap();
    assert!(log.contains("\"event\":\"decision\"") && log.contains("\"event\":\"render\""));
    assert!(!log.contains("CANARY"), "audit leaked a value: {log}");
    assert!(
        !format!("{rendered:?}").contains("CANARY"),
        "Debug leaked a value"
    );
}

#[tokio::test]
async fn any_deny_wins_and_nothing_is_fetched() {
    let p = Pipeline::new(
        vec![
            step("first", vec![("secret", Verdict::Allow(Grant::default()))]),
            step(
                "second",
                vec![("secret/b", Verdict::Deny("b is closed".into()))],
            ),
        ],
        mounts(),
    );
    let err = p
        .run(
            &Workload::default(),
            &[binding("b", "secret/data/a/db\nsecret/data/b/x", "f")],
            &FixtureSource::default(),
        )
        .await
        .unwrap_err();
    match err {
        Error::Denied(d) => {
            assert_eq!(d.len(), 1);
            assert_eq!(d[0].reference, "secret/data/b/x");
            assert_eq!(d[0].policy, "second");
            assert!(d[0].to_string().contains("b is closed"));
        }
        other => panic!("{other}"),
    }
}

#[tokio::test]
async fn abstain_everywhere_is_a_denial() {
    let p = Pipeline::new(
        vec![step("p", vec![("secret/a", Verdict::Abstain)])],
        mounts(),
    );
    let err = p
        .decide(
            &Workload::default(),
            &[binding("b", "secret/data/a/db", "f")],
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Denied(ref d) if d[0].reason.contains("no policy allowed")),
        "{err}"
    );
}

#[tokio::test]
async fn grants_intersect_and_keys_are_filtered() {
    let g1 = Grant {
        allowed_keys: Some(vec!["user".into(), "password".into()]),
        max_ttl_seconds: Some(600),
        ..Default::default()
    };
    let g2 = Grant {
        allowed_keys: Some(vec!["user".into()]),
        max_ttl_seconds: Some(60),
        ..Default::default()
    };
    let p = Pipeline::new(
        vec![
            step("p1", vec![("secret", Verdict::Allow(g1))]),
            step("p2", vec![("secret", Verdict::Allow(g2))]),
        ],
        mounts(),
    );
    let (decided, fetched, rendered) = p
        .run(
            &Workload::default(),
            &[binding("b", "secret/data/a/db", "f")],
            &fixtures(),
        )
        .await
        .unwrap();
    let d = &decided.secrets["secret/data/a/db"];
    assert_eq!(d.grant.max_ttl_seconds, Some(60));
    assert_eq!(d.grant.allowed_keys, Some(vec!["user".to_string()]));
    assert!(
        !serde_json::to_string(fetched.values["secret/data/a/db"].data.expose())
            .unwrap()
            .contains("password")
    );
    let Artifact::File { contents, .. } = &rendered[0].artifacts[0] else {
        panic!()
    };
    assert_eq!(contents.expose(), b"user=u\n");
}

#[tokio::test]
async fn check_rejects_traversal_from_binding_target() {
    let p = Pipeline::new(
        vec![step(
            "p",
            vec![("secret", Verdict::Allow(Grant::default()))],
        )],
        mounts(),
    );
    let err = p
        .run(
            &Workload::default(),
            &[binding("b", "secret/data/a/db", "../escape")],
            &fixtures(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Check {
                rule: crate::CheckRule::FilePath,
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn shared_secret_is_planned_once() {
    let p = Pipeline::new(
        vec![step(
            "p",
            vec![("secret", Verdict::Allow(Grant::default()))],
        )],
        mounts(),
    );
    let bindings = [
        binding("one", "secret/data/a/db", "1"),
        binding("two", "secret/data/a/db\nsecret/data/b/x", "2"),
    ];
    let decided = p.decide(&Workload::default(), &bindings).await.unwrap();
    assert_eq!(decided.secrets.len(), 2);
    assert_eq!(decided.binding_secrets[1].len(), 2);
}

#[tokio::test]
async fn decision_for_unknown_reference_is_a_contract_error() {
    struct Liar;
    #[async_trait]
    impl Policy for Liar {
        async fn validate_settings(&self, _: &str) -> Result<(), PluginFailure> {
            Ok(())
        }
        async fn decide(&self, _: DecideRequest) -> Result<Vec<SecretDecision>, PluginFailure> {
            Ok(vec![SecretDecision {
                reference: "secret/data/other".into(),
                verdict: Verdict::Abstain,
                rule: None,
            }])
        }
    }
    let p = Pipeline::new(
        vec![PolicyStep {
            name: "liar".into(),
            policy: Arc::new(Liar),
            settings: "{}".into(),
        }],
        mounts(),
    );
    let err = p
        .decide(
            &Workload::default(),
            &[binding("b", "secret/data/a/db", "f")],
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Plugin {
                source: PluginFailure::Sandbox {
                    reason: SandboxReason::Contract,
                    ..
                },
                ..
            }
        ),
        "{err}"
    );
}
