//! The `keyward` binary end to end: exit codes, one-line errors, and real
//! runs against the first-party components in `target/plugins` (built by
//! `cargo xtask plugins`; a missing component fails the test, it never
//! skips).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A built first-party component; panics with how to build it.
fn component(name: &str) -> PathBuf {
    let path = root().join("target/plugins").join(format!("{name}.wasm"));
    assert!(
        path.is_file(),
        "{} is missing: build the plugins with `cargo xtask plugins` first",
        path.display()
    );
    path
}

fn keyward(args: &[&str]) -> Output {
    let cache = root().join("target/test-cache/keyward-cli");
    Command::new(env!("CARGO_BIN_EXE_keyward"))
        .args(args)
        .env("KEYWARD_CACHE_DIR", cache)
        .env_remove("KEYWARD_PLUGIN_DIR")
        .output()
        .expect("run keyward")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Exit code 1 and exactly one stderr line `error: ...` containing every
/// `needle`.
#[track_caller]
fn assert_one_line_error(o: &Output, needles: &[&str]) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(1), "exit code; stderr: {err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one error line expected, got: {err}");
    assert!(lines[0].starts_with("error: "), "{err}");
    for n in needles {
        assert!(lines[0].contains(n), "{n:?} not in {err:?}");
    }
}

fn p(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write fixture");
    path
}

// --- errors that need no component ------------------------------------------

#[test]
fn usage_errors_exit_2() {
    assert_eq!(
        keyward(&["plugin", "test", "x.wasm"]).status.code(),
        Some(2)
    );
    assert_eq!(keyward(&["frobnicate"]).status.code(), Some(2));
    assert_eq!(
        keyward(&["render", "--secrets", "s.json", "--target", "tape"])
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn missing_component_is_one_line() {
    let o = keyward(&["plugin", "inspect", "/nonexistent/thing.wasm"]);
    assert_one_line_error(&o, &["cannot read component /nonexistent/thing.wasm"]);
}

#[test]
fn malformed_case_file_names_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "010-bad.yaml",
        "call: decide\nexpect:\n  decisions:\n    - reference: a\n      allow: { max-ttl: 3600 }\n",
    );
    let o = keyward(&["plugin", "test", "unused.wasm", "--cases", p(dir.path())]);
    assert_one_line_error(
        &o,
        &[
            "010-bad.yaml",
            "expect.decisions[0].allow",
            "unknown field `max-ttl`",
        ],
    );
}

#[test]
fn empty_case_directory_fails() {
    let dir = tempfile::tempdir().unwrap();
    let o = keyward(&["plugin", "test", "unused.wasm", "--cases", p(dir.path())]);
    assert_one_line_error(&o, &["no case files"]);
    let o = keyward(&[
        "plugin",
        "test",
        "unused.wasm",
        "--cases",
        "/nonexistent/cases",
    ]);
    assert_one_line_error(&o, &["cannot read case directory /nonexistent/cases"]);
}

#[test]
fn filter_matching_nothing_fails() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "a.yaml",
        "call: validate-settings\nexpect: { ok: true }\n",
    );
    let o = keyward(&[
        "plugin",
        "test",
        "unused.wasm",
        "--cases",
        p(dir.path()),
        "--filter",
        "zzz",
    ]);
    assert_one_line_error(&o, &["no case", "matches --filter \"zzz\""]);
}

#[test]
fn render_input_errors_are_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let tmpl = write(dir.path(), "a.tmpl", "x");
    let good = write(dir.path(), "good.json", "{}");
    let bad_json = write(dir.path(), "bad.json", "{\"secret/data/a\": ");
    let not_object = write(dir.path(), "list.json", "[1, 2]");
    let bad_body = write(
        dir.path(),
        "body.json",
        "{\"secret/data/a\": {\"data\": 3}}",
    );

    let o = keyward(&[
        "render",
        "--template",
        "/nonexistent.tmpl",
        "--secrets",
        p(&good),
    ]);
    assert_one_line_error(&o, &["cannot read template /nonexistent.tmpl"]);
    let o = keyward(&[
        "render",
        "--template",
        p(&tmpl),
        "--secrets",
        "/nonexistent.json",
    ]);
    assert_one_line_error(&o, &["cannot read secrets file /nonexistent.json"]);
    let o = keyward(&["render", "--template", p(&tmpl), "--secrets", p(&bad_json)]);
    assert_one_line_error(&o, &["bad.json is not valid JSON", "line 1"]);
    let o = keyward(&[
        "render",
        "--template",
        p(&tmpl),
        "--secrets",
        p(&not_object),
    ]);
    assert_one_line_error(&o, &["expected a JSON object mapping secret paths"]);
    let o = keyward(&["render", "--template", p(&tmpl), "--secrets", p(&bad_body)]);
    assert_one_line_error(&o, &["\"secret/data/a\"", "`data` is not an object"]);
    let o = keyward(&[
        "render",
        "--template",
        p(&tmpl),
        "--secrets",
        p(&good),
        "--settings",
        "{nope",
    ]);
    assert_one_line_error(&o, &["--settings is not a JSON document"]);
    let o = keyward(&[
        "render",
        "--template",
        p(&tmpl),
        "--secrets",
        p(&good),
        "--plugin",
        "/nonexistent.wasm",
    ]);
    assert_one_line_error(&o, &["component /nonexistent.wasm not found"]);
}

// --- against the first-party components -------------------------------------

#[test]
fn inspect_shows_world_and_digest() {
    let policy = component("policy-rules");
    let o = keyward(&["plugin", "inspect", p(&policy)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("world      policy"), "{out}");
    assert!(out.contains("package    keyward:plugin@0.1.0"), "{out}");
    assert!(out.contains("digest     sha256:"), "{out}");

    let o = keyward(&[
        "plugin",
        "inspect",
        "--json",
        p(&component("render-template")),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["world"], "renderer");
    assert!(doc["size"].as_u64().unwrap() > 0);
    assert!(
        doc["exports"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e.as_str().unwrap().contains("render"))
    );
}

#[test]
fn wrong_world_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "plan.yaml",
        "call: plan\ntemplate: x\nexpect: { refs: [] }\n",
    );
    let o = keyward(&[
        "plugin",
        "test",
        p(&component("policy-rules")),
        "--cases",
        p(dir.path()),
    ]);
    assert_one_line_error(
        &o,
        &[
            "plan.yaml",
            "`call: plan` needs a renderer plugin",
            "is a policy plugin",
        ],
    );

    let demo = root().join("examples/demo");
    let o = keyward(&[
        "render",
        "--template",
        p(&demo.join("app.env.tmpl")),
        "--secrets",
        p(&demo.join("secrets.json")),
        "--plugin",
        p(&component("policy-rules")),
    ]);
    assert_one_line_error(&o, &["is a policy plugin", "needs a renderer plugin"]);
}

#[test]
fn plugin_test_reports_each_case_and_totals() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "a-pass.yaml",
        "call: render\ntemplate: \"{{ with secret \\\"secret/data/app\\\" }}{{ .Data.data.password }}{{ end }}\"\n\
         target: { kind: file, name: app.conf, mode: 0o640 }\n\
         values:\n  secret/data/app:\n    data: { data: { password: s3cret }, metadata: { version: 1 } }\n\
         expect:\n  artifacts:\n    - file: { path: app.conf, mode: 0o640, contents: s3cret }\n",
    );
    write(
        dir.path(),
        "b-fail.yaml",
        "call: render\ntemplate: \"{{ with secret \\\"secret/data/app\\\" }}{{ .Data.data.password }}{{ end }}\"\n\
         target: { kind: file, name: app.conf, mode: 0o640 }\n\
         values:\n  secret/data/app:\n    data: { data: { password: other }, metadata: { version: 1 } }\n\
         expect:\n  artifacts:\n    - file: { path: app.conf, mode: 0o640, contents: s3cret }\n",
    );
    write(
        dir.path(),
        "c-traversal.yaml",
        "call: render\ntemplate: x\ntarget: { kind: file, name: ../escape }\n\
         expect: { error: { kind: check, contains: file-path } }\n",
    );
    let o = keyward(&[
        "plugin",
        "test",
        p(&component("render-template")),
        "--cases",
        p(dir.path()),
    ]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}{}", stderr(&o));
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("ok   a-pass ("), "{out}");
    assert!(
        lines[0].ends_with(" ms)") || lines[0].ends_with(" µs)"),
        "{out}"
    );
    assert!(
        lines[1].starts_with("FAIL b-fail: expected 1 artifact, got 1 that differ"),
        "{out}"
    );
    assert!(
        out.contains("    - ") && out.contains("|s3cret") && out.contains("|other"),
        "{out}"
    );
    assert!(out.contains("ok   c-traversal ("), "{out}");
    assert_eq!(lines.last(), Some(&"2 passed, 1 failed"), "{out}");

    let o = keyward(&[
        "plugin",
        "test",
        p(&component("render-template")),
        "--cases",
        p(dir.path()),
        "--filter",
        "pass",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (doc["passed"].as_u64(), doc["failed"].as_u64()),
        (Some(1), Some(0))
    );
}

#[test]
fn render_demo_template_to_file_env_and_secret() {
    let demo = root().join("examples/demo");
    let secrets = demo.join("secrets.json");
    let renderer = component("render-template");
    let o = keyward(&[
        "render",
        "--template",
        p(&demo.join("app.conf.tmpl")),
        "--secrets",
        p(&secrets),
        "--plugin",
        p(&renderer),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("password = demo-only-not-a-secret"), "{out}");
    assert!(out.contains("KV v2 version 2"), "{out}");
    assert!(out.contains("-----BEGIN CERTIFICATE-----"), "{out}");

    let o = keyward(&[
        "render",
        "--template",
        p(&demo.join("app.env.tmpl")),
        "--secrets",
        p(&secrets),
        "--plugin",
        p(&renderer),
        "--target",
        "env",
        "--name",
        "APP_",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "APP_DB_HOST=db.team-a.svc:5432\nAPP_DB_USER=api\nAPP_DB_PASSWORD=demo-only-not-a-secret\n"
    );

    // No template: the default format renders every secret of the file.
    let o = keyward(&[
        "render",
        "--secrets",
        p(&secrets),
        "--plugin",
        p(&renderer),
        "--target",
        "kube-secret",
        "--name",
        "api-db",
        "--mount",
        "pki=pki",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.starts_with("apiVersion: v1\nkind: Secret\nmetadata:\n  name: api-db\n"),
        "{out}"
    );
}

#[test]
fn malformed_template_is_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let tmpl = write(
        dir.path(),
        "bad.tmpl",
        "{{ with secret \"secret/data/a\" }}\n{{ .Data.data.x \n",
    );
    let secrets = write(dir.path(), "s.json", "{}");
    let o = keyward(&[
        "render",
        "--template",
        p(&tmpl),
        "--secrets",
        p(&secrets),
        "--plugin",
        p(&component("render-template")),
    ]);
    assert_one_line_error(
        &o,
        &["cannot render template", "bad.tmpl", "render-template"],
    );
}

#[test]
fn settings_the_renderer_rejects_are_one_line() {
    let demo = root().join("examples/demo");
    let o = keyward(&[
        "render",
        "--template",
        p(&demo.join("app.env.tmpl")),
        "--secrets",
        p(&demo.join("secrets.json")),
        "--plugin",
        p(&component("render-template")),
        "--settings",
        r#"{"format": 3}"#,
    ]);
    assert_one_line_error(
        &o,
        &[
            "plugin \"render-template\" rejected --settings",
            "invalid settings",
        ],
    );
}

#[test]
fn missing_fixture_names_the_reference() {
    let dir = tempfile::tempdir().unwrap();
    let tmpl = write(
        dir.path(),
        "a.tmpl",
        "{{ with secret \"secret/data/missing\" }}{{ .Data.data.x }}{{ end }}",
    );
    let secrets = write(
        dir.path(),
        "s.json",
        "{\"secret/data/other\": {\"data\": {\"data\": {}}}}",
    );
    let o = keyward(&[
        "render",
        "--template",
        p(&tmpl),
        "--secrets",
        p(&secrets),
        "--plugin",
        p(&component("render-template")),
    ]);
    assert_one_line_error(&o, &["secret/data/missing", "secret/data/other"]);
}

#[test]
fn policy_check_allows_and_denies() {
    let demo = root().join("examples/demo");
    let policy = component("policy-rules");
    let args = |request: &str| {
        keyward(&[
            "policy",
            "check",
            p(&policy),
            "--settings",
            p(&demo.join("policy.yaml")),
            "--request",
            p(&demo.join(request)),
        ])
    };
    let o = args("request-allowed.yaml");
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).ends_with("2 allowed, 0 not allowed\n"),
        "{}",
        stdout(&o)
    );
    let o = args("request-denied.yaml");
    assert_eq!(o.status.code(), Some(3), "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("deny     secret/data/prod/payments"), "{out}");
    assert!(
        out.contains("development namespaces never receive production secrets"),
        "{out}"
    );
}

#[test]
fn plugin_bench_can_time_pre_initialised_plugins() {
    let cases = root().join("plugins/policy-rules/cases");
    let o = keyward(&[
        "plugin",
        "bench",
        p(&component("policy-rules")),
        "--cases",
        p(&cases),
        "--filter",
        "00",
        "--iterations",
        "3",
        "--preinit",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let rows = doc["cases"].as_array().unwrap();
    assert!(rows.len() >= 5, "{doc}");
    for row in rows {
        assert_eq!(row["preinitialized"], true, "{row}");
        assert!(row.get("failure").is_none(), "{row}");
    }
    // Invalid settings cannot be warmed with: that case is timed cold.
    let o = keyward(&[
        "plugin",
        "bench",
        p(&component("policy-rules")),
        "--cases",
        p(&cases),
        "--filter",
        "051-bad-json",
        "--iterations",
        "3",
        "--preinit",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("051-bad-json") && !out.contains("(pre-initialised)"),
        "{out}"
    );
    // Without the flag nothing is pre-initialised.
    let o = keyward(&[
        "plugin",
        "bench",
        p(&component("policy-rules")),
        "--cases",
        p(&cases),
        "--filter",
        "001",
        "--iterations",
        "3",
        "--json",
    ]);
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["cases"][0]["preinitialized"], false, "{doc}");
}
