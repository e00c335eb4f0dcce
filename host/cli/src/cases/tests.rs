use std::collections::BTreeMap;
use std::path::Path;

use keyward_core::{
    Artifact, DeliveryKind, Engine, Grant, RefKind, SecretDecision, SecretRef, Sensitive, Verdict,
};

use super::*;

fn case(text: &str) -> Case {
    parse(Path::new("cases/sample.yaml"), text).unwrap_or_else(|e| panic!("{e:#}"))
}

fn parse_err(text: &str) -> String {
    format!(
        "{:#}",
        parse(Path::new("cases/bad.yaml"), text).expect_err("should not parse")
    )
}

fn failed(kind: &str, message: &str) -> Outcome {
    Outcome::Failed {
        kind: kind.into(),
        message: message.into(),
    }
}

fn file(path: &str, mode: u32, contents: &str) -> Artifact {
    Artifact::File {
        path: path.into(),
        mode,
        contents: Sensitive(contents.as_bytes().to_vec()),
    }
}

#[test]
fn parses_a_decide_case() {
    let c = case(
        r#"
description: team-a may read its own prefix
call: decide
settings: { rules: [ { name: team-a, paths: ["secret/team-a/*"] } ] }
workload:
  namespace: team-a
  service-account: api
  labels: { app: api }
  images: [registry.example.com/api:1.2]
secrets:
  - reference: secret/data/team-a/db?version=2
    engine: kv2
    mount: secret
    path: team-a/db
    version: 2
    parameters: [[role, x]]
    delivery: [file, kube-secret]
expect:
  decisions:
    - reference: secret/data/team-a/db?version=2
      allow: { max-ttl-seconds: 3600 }
      rule: "rules[0] team-a"
"#,
    );
    assert_eq!(c.name, "sample");
    assert_eq!(c.call, Call::Decide);
    assert_eq!(
        c.settings,
        r#"{"rules":[{"name":"team-a","paths":["secret/team-a/*"]}]}"#
    );
    let Input::Decide { workload, secrets } = &c.input else {
        panic!("not a decide input")
    };
    assert_eq!(workload.service_account, "api");
    assert_eq!(workload.labels.get("app").map(String::as_str), Some("api"));
    assert_eq!(secrets[0].engine, Engine::Kv2);
    assert_eq!(secrets[0].version, Some(2));
    assert_eq!(
        secrets[0].parameters,
        vec![("role".to_string(), "x".to_string())]
    );
    assert_eq!(
        secrets[0].delivery,
        vec![DeliveryKind::File, DeliveryKind::KubeSecret]
    );

    let allow = |ttl, rule: &str| SecretDecision {
        reference: "secret/data/team-a/db?version=2".into(),
        verdict: Verdict::Allow(Grant {
            max_ttl_seconds: ttl,
            ..Grant::default()
        }),
        rule: Some(rule.into()),
    };
    assert!(
        c.check(&Outcome::Decisions(vec![allow(
            Some(3600),
            "rules[0] team-a"
        )]))
        .is_ok()
    );
    // The grant is compared exactly, the rule when given.
    let m = c
        .check(&Outcome::Decisions(vec![allow(None, "rules[0] team-a")]))
        .unwrap_err();
    assert!(
        m.summary.starts_with("decisions[0]: expected"),
        "{}",
        m.summary
    );
    assert!(
        m.summary
            .contains("got secret/data/team-a/db?version=2: allow {}"),
        "{}",
        m.summary
    );
    assert!(
        c.check(&Outcome::Decisions(vec![allow(Some(3600), "rules[1]")]))
            .is_err()
    );
    let m = c.check(&Outcome::Decisions(vec![])).unwrap_err();
    assert_eq!(m.summary, "expected 1 decision, got 0");
    assert!(!m.detail.is_empty());
    let m = c
        .check(&failed("invalid-settings", "rules[0]: bad"))
        .unwrap_err();
    assert_eq!(
        m.summary,
        "expected 1 decision, got error invalid-settings: rules[0]: bad"
    );
}

#[test]
fn deny_is_a_substring_and_abstain_is_exact() {
    let c = case(
        r#"
call: decide
secrets:
  - { reference: a, engine: generic, mount: a, path: "" }
  - { reference: b, engine: kv1, mount: b, path: x }
expect:
  decisions:
    - { reference: a, deny: "no rule" }
    - { reference: b, abstain: true }
"#,
    );
    let d = |r: &str, v: Verdict| SecretDecision {
        reference: r.into(),
        verdict: v,
        rule: None,
    };
    assert!(
        c.check(&Outcome::Decisions(vec![
            d("a", Verdict::Deny("denied: no rule allows a".into())),
            d("b", Verdict::Abstain)
        ]))
        .is_ok()
    );
    let m = c
        .check(&Outcome::Decisions(vec![
            d("a", Verdict::Deny("denied".into())),
            d("b", Verdict::Abstain),
        ]))
        .unwrap_err();
    assert_eq!(
        m.summary,
        r#"decisions[0]: expected a: deny containing "no rule", got a: deny "denied""#
    );
    // Order matters.
    assert!(
        c.check(&Outcome::Decisions(vec![
            d("b", Verdict::Abstain),
            d("a", Verdict::Deny("no rule".into()))
        ]))
        .is_err()
    );
}

#[test]
fn settings_default_raw_and_errors() {
    assert_eq!(
        case("call: validate-settings\nexpect: { ok: true }").settings,
        "{}"
    );
    let c = case(
        "call: validate-settings\nsettings-raw: \"{not json\"\nexpect: { error: { kind: invalid-settings } }",
    );
    assert_eq!(c.settings, "{not json");
    assert!(c.check(&failed("invalid-settings", "x")).is_ok());
    assert!(c.check(&failed("failed", "x")).is_err());
    let m = c.check(&Outcome::Valid).unwrap_err();
    assert_eq!(m.summary, "expected error invalid-settings, got success");
    assert!(
        parse_err("call: validate-settings\nsettings: {}\nsettings-raw: x\nexpect: { ok: true }")
            .contains("not both")
    );
}

#[test]
fn ok_expectation() {
    let c = case("call: validate-settings\nexpect: { ok: true }");
    assert!(c.check(&Outcome::Valid).is_ok());
    let m = c
        .check(&failed("invalid-settings", "rules: missing"))
        .unwrap_err();
    assert_eq!(
        m.summary,
        "expected success, got error invalid-settings: rules: missing"
    );
}

#[test]
fn error_expectation_kind_and_substring() {
    let c = case(
        "call: plan\ntemplate: '{{ secret }}'\nexpect: { error: { kind: invalid-input, contains: \"line 1\" } }",
    );
    assert!(
        c.check(&failed(
            "invalid-input",
            "template: line 1: secret needs a path"
        ))
        .is_ok()
    );
    let m = c.check(&failed("invalid-input", "other")).unwrap_err();
    assert_eq!(
        m.summary,
        r#"expected error invalid-input containing "line 1", got error invalid-input: other"#
    );
    let m = c
        .check(&Outcome::Refs(vec![SecretRef::read("x")]))
        .unwrap_err();
    assert_eq!(m.detail, vec!["x (secret)".to_string()]);
    // Any failure.
    let any = case("call: validate-settings\nexpect: { error: {} }");
    assert!(any.check(&failed("trap", "unreachable")).is_ok());
}

#[test]
fn plan_refs_are_exact_and_ordered() {
    let c = case(
        r#"
call: plan
template: x
expect:
  refs:
    - { reference: secret/data/app, parameters: [], kind: secret }
    - { reference: pki/issue/web, parameters: [[common_name, a.example.com]], kind: pki-cert }
"#,
    );
    let want = vec![
        SecretRef::read("secret/data/app"),
        SecretRef {
            reference: "pki/issue/web".into(),
            parameters: vec![("common_name".into(), "a.example.com".into())],
            kind: RefKind::PkiCert,
        },
    ];
    assert!(c.check(&Outcome::Refs(want.clone())).is_ok());
    let mut reversed = want.clone();
    reversed.reverse();
    let m = c.check(&Outcome::Refs(reversed)).unwrap_err();
    assert!(m.summary.contains("that differ"), "{}", m.summary);
}

#[test]
fn render_case_defaults_values_and_artifacts() {
    let c = case(
        r#"
call: render
template: "{{ with secret \"secret/data/app\" }}{{ .Data.data.password }}{{ end }}"
values:
  secret/data/app:
    data:
      data: { password: s3cret }
      metadata: { version: 3 }
    lease_duration: 0
  "pki/issue/web common_name=a.example.com":
    lease_id: pki/issue/web/abc
    lease_duration: 3600
    renewable: false
    data: { certificate: CERT }
expect:
  artifacts:
    - file: { path: out, mode: 0o600, contents: "s3cret\n" }
"#,
    );
    let Input::Render {
        target,
        values,
        template,
        ..
    } = &c.input
    else {
        panic!("not render")
    };
    assert!(template.is_some());
    assert_eq!(
        (target.kind, target.name.as_str(), target.mode),
        (DeliveryKind::File, "out", Some(0o600))
    );
    assert_eq!(values.len(), 2);
    assert_eq!(values[0].reference, "secret/data/app");
    assert_eq!(values[0].data.expose()["data"]["password"], "s3cret");
    assert_eq!(values[1].reference, "pki/issue/web");
    assert_eq!(
        values[1].parameters,
        vec![("common_name".to_string(), "a.example.com".to_string())]
    );
    assert_eq!(values[1].lease_duration, 3600);

    assert!(
        c.check(&Outcome::Artifacts(vec![file("out", 0o600, "s3cret\n")]))
            .is_ok()
    );
    let m = c
        .check(&Outcome::Artifacts(vec![file("out", 0o600, "s3cret")]))
        .unwrap_err();
    assert_eq!(
        m.summary,
        "expected 1 artifact, got 1 that differ (- expected, + got)"
    );
    assert_eq!(
        m.detail,
        vec![
            "  file out (mode 0o600)",
            "    |s3cret",
            "+   \\ no newline at end",
        ]
    );
    let m = c
        .check(&failed("check", "artifact \"../x\" rejected (file-path)"))
        .unwrap_err();
    assert!(
        m.summary
            .starts_with("expected 1 artifact, got error check:")
    );
}

#[test]
fn artifact_kinds_and_base64() {
    let c = case(
        r#"
call: render
target: { kind: kube-secret, name: app }
expect:
  artifacts:
    - kube-secret:
        name: app
        type: kubernetes.io/tls
        data: { tls.crt: CERT }
        data-base64: { raw: AAEC }
        labels: { app: web }
"#,
    );
    let want = Artifact::KubeSecret {
        name: "app".into(),
        secret_type: "kubernetes.io/tls".into(),
        data: BTreeMap::from([
            ("raw".to_string(), Sensitive(vec![0u8, 1, 2])),
            ("tls.crt".to_string(), Sensitive(b"CERT".to_vec())),
        ]),
        labels: BTreeMap::from([("app".to_string(), "web".to_string())]),
        annotations: BTreeMap::new(),
    };
    assert!(c.check(&Outcome::Artifacts(vec![want])).is_ok());

    let env = case(
        "call: render\ntarget: { kind: env, name: APP_ }\nexpect:\n  artifacts:\n    - env: { name: APP_X, value: v }\n    - file: { path: b, mode: 420, contents-base64: aGk= }",
    );
    let want = vec![
        Artifact::Env {
            name: "APP_X".into(),
            value: Sensitive("v".into()),
        },
        file("b", 0o644, "hi"),
    ];
    assert!(env.check(&Outcome::Artifacts(want)).is_ok());
}

#[test]
fn template_file_is_relative_to_the_case() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("app.tmpl"), "{{ .x }}").unwrap();
    let path = dir.path().join("a.yaml");
    std::fs::write(
        &path,
        "call: plan\ntemplate-file: app.tmpl\nexpect: { refs: [] }",
    )
    .unwrap();
    let c = load_file(&path).unwrap();
    let Input::Plan { template } = &c.input else {
        panic!()
    };
    assert_eq!(template.as_deref(), Some("{{ .x }}"));
    std::fs::write(
        &path,
        "call: plan\ntemplate-file: missing.tmpl\nexpect: { refs: [] }",
    )
    .unwrap();
    let e = format!("{:#}", load_file(&path).unwrap_err());
    assert!(
        e.contains("a.yaml") && e.contains("template-file") && e.contains("missing.tmpl"),
        "{e}"
    );
}

#[test]
fn malformed_cases_name_the_field() {
    let table: &[(&str, &str, &str)] = &[
        (
            "unknown top-level key",
            "call: plan\ntemplat: x\nexpect: { ok: true }",
            "unknown field `templat`",
        ),
        (
            "unknown call",
            "call: fetch\nexpect: { ok: true }",
            "unknown variant `fetch`",
        ),
        (
            "missing call",
            "expect: { ok: true }",
            "missing field `call`",
        ),
        ("missing expect", "call: plan", "missing field `expect`"),
        (
            "two expectations",
            "call: plan\nexpect: { ok: true, refs: [] }",
            "give only one of `ok`, `refs`",
        ),
        (
            "no expectation",
            "call: plan\nexpect: {}",
            "give one of `ok`",
        ),
        (
            "ok false",
            "call: plan\nexpect: { ok: false }",
            "ok: must be `true`",
        ),
        (
            "refs for decide",
            "call: decide\nexpect: { refs: [] }",
            "refs: only `call: plan`",
        ),
        (
            "artifacts for plan",
            "call: plan\nexpect: { artifacts: [] }",
            "artifacts: only `call: render`",
        ),
        (
            "decisions for render",
            "call: render\nexpect: { decisions: [] }",
            "decisions: only `call: decide`",
        ),
        (
            "unknown error kind",
            "call: plan\nexpect: { error: { kind: oops } }",
            "error.kind: unknown kind \"oops\"",
        ),
        (
            "secrets for plan",
            "call: plan\nsecrets: []\nexpect: { ok: true }",
            "`secrets` is not used by `call: plan`",
        ),
        (
            "values for decide",
            "call: decide\nvalues: {}\nexpect: { ok: true }",
            "`values` is not used by `call: decide`",
        ),
        (
            "both templates",
            "call: plan\ntemplate: a\ntemplate-file: b\nexpect: { ok: true }",
            "not both",
        ),
        (
            "bad engine",
            "call: decide\nsecrets: [{ reference: a, engine: kv3, mount: a, path: b }]\nexpect: { ok: true }",
            "unknown variant `kv3`",
        ),
        (
            "unknown workload field",
            "call: decide\nworkload: { namespce: x }\nexpect: { ok: true }",
            "unknown field `namespce`",
        ),
        (
            "verdict missing",
            "call: decide\nexpect: { decisions: [{ reference: a }] }",
            "decisions[0]: verdict: give one of",
        ),
        (
            "two verdicts",
            "call: decide\nexpect: { decisions: [{ reference: a, deny: x, abstain: true }] }",
            "give only one of `deny`, `abstain`",
        ),
        (
            "abstain false",
            "call: decide\nexpect: { decisions: [{ reference: a, abstain: false }] }",
            "abstain: must be `true`",
        ),
        (
            "unknown grant field",
            "call: decide\nexpect: { decisions: [{ reference: a, allow: { ttl: 1 } }] }",
            "unknown field `ttl`",
        ),
        (
            "unknown artifact kind",
            "call: render\nexpect: { artifacts: [ { secret: {} } ] }",
            "unknown field `secret`, expected one of `file`, `env`, `kube-secret`",
        ),
        (
            "file without contents",
            "call: render\nexpect: { artifacts: [ { file: { path: a, mode: 0o600 } } ] }",
            "artifacts[0]: file: give one of `contents`, `contents-base64`",
        ),
        (
            "bad base64",
            "call: render\nexpect: { artifacts: [ { file: { path: a, mode: 0o600, contents-base64: '!!' } } ] }",
            "contents-base64: not valid base64",
        ),
        (
            "value not an object",
            "call: render\nvalues: { secret/data/a: 3 }\nexpect: { ok: true }",
            "values.secret/data/a",
        ),
        (
            "not yaml",
            "call: plan\nexpect: { ok: true\n",
            "did not find expected",
        ),
    ];
    for (name, text, want) in table {
        let got = parse_err(text);
        assert!(
            got.contains(want),
            "{name}: {got:?} should contain {want:?}"
        );
    }
}

#[test]
fn load_dir_sorts_yaml_files_and_names_the_bad_one() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("b.yaml"),
        "call: validate-settings\nexpect: { ok: true }",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("a.yaml"),
        "call: validate-settings\nexpect: { ok: true }",
    )
    .unwrap();
    std::fs::write(dir.path().join("notes.md"), "ignored").unwrap();
    std::fs::create_dir(dir.path().join("sub.yaml")).unwrap();
    let names: Vec<String> = load_dir(dir.path())
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(names, ["a", "b"]);
    std::fs::write(
        dir.path().join("c.yaml"),
        "call: plan\nexpect: { ok: true }\nextra: 1",
    )
    .unwrap();
    let e = format!("{:#}", load_dir(dir.path()).unwrap_err());
    assert!(
        e.contains("c.yaml") && e.contains("unknown field `extra`"),
        "{e}"
    );
}
