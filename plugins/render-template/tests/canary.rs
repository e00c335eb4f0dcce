//! No error message may contain a secret value: every failing render below
//! reads a secret whose values are canaries, and no error text may contain
//! any part of them.

use render_template::{DeliveryKind, PluginError, RenderRequest, SecretValue, Target, render};

const CANARY: &str = "CANARY-7f3a9c";

fn secret(reference: &str, data: serde_json::Value) -> SecretValue {
    SecretValue {
        reference: reference.into(),
        parameters: vec![],
        lease_id: String::new(),
        lease_duration: 0,
        renewable: false,
        data: data.to_string(),
        warnings: vec![],
    }
}

fn secrets() -> Vec<SecretValue> {
    vec![
        secret(
            "secret/data/app",
            serde_json::json!({
                "data": {
                    "password": CANARY,
                    "json": format!("{{\"a\": {CANARY}"),
                    "yaml": format!("a: [{CANARY}"),
                    "list": [CANARY, CANARY],
                    "key-name": CANARY,
                    "number": 5,
                },
                "metadata": { "version": 1 }
            }),
        ),
        secret("kv/dup", serde_json::json!({ "password": CANARY })),
    ]
}

fn request(template: Option<&str>, kind: DeliveryKind, settings: &str) -> RenderRequest {
    RenderRequest {
        template: template.map(String::from),
        settings: settings.into(),
        target: Target {
            kind,
            name: "target".into(),
            mode: None,
        },
        secrets: secrets(),
    }
}

#[test]
fn errors_never_contain_secret_values() {
    use DeliveryKind::*;
    let w = r#"{{ with secret "secret/data/app" }}"#;
    let cases: Vec<(String, DeliveryKind, &str)> = vec![
        (
            format!("{w}{{{{ .Data.data.pasword }}}}{{{{ end }}}}"),
            File,
            "{}",
        ),
        (
            format!("{w}{{{{ parseInt .Data.data.password }}}}{{{{ end }}}}"),
            File,
            "{}",
        ),
        (
            format!("{w}{{{{ parseFloat .Data.data.password }}}}{{{{ end }}}}"),
            File,
            "{}",
        ),
        (
            format!("{w}{{{{ parseBool .Data.data.password }}}}{{{{ end }}}}"),
            File,
            "{}",
        ),
        (
            format!("{w}{{{{ parseUint .Data.data.password }}}}{{{{ end }}}}"),
            File,
            "{}",
        ),
        (
            format!("{w}{{{{ parseJSON .Data.data.json }}}}{{{{ end }}}}"),
            File,
            "{}",
        ),
        (
            format!("{w}{{{{ parseYAML .Data.data.yaml }}}}{{{{ end }}}}"),
            File,
            "{}",
        ),
        (
            format!("{w}{{{{ base64Decode .Data.data.password }}}}{{{{ end }}}}"),
            File,
            "{}",
        ),
        (
            format!("{w}{{{{ base64URLDecode .Data.data.password }}}}{{{{ end }}}}"),
            File,
            "{}",
        ),
        (
            format!("{w}{{{{ index .Data.data .Data.data.password }}}}{{{{ end }}}}"),
            File,
            "{}",
        ),
        (
            format!("{w}{{{{ index .Data.data.list 7 }}}}{{{{ end }}}}"),
            File,
            "{}",
        ),
        (
            format!("{w}{{{{ eq .Data.data.password 1 }}}}{{{{ end }}}}"),
            File,
            "{}",
        ),
        (
            format!("{w}{{{{ lt .Data.data.list 1 }}}}{{{{ end }}}}"),
            File,
            "{}",
        ),
        (
            format!("{w}{{{{ add .Data.data.password 1 }}}}{{{{ end }}}}"),
            File,
            "{}",
        ),
        (
            format!("{w}{{{{ .Data.data.password.x }}}}{{{{ end }}}}"),
            File,
            "{}",
        ),
        (
            format!("{w}{{{{ range .Data.data.password }}}}{{{{ end }}}}{{{{ end }}}}"),
            File,
            "{}",
        ),
        (
            format!("{w}{{{{ len .Data.data.number }}}}{{{{ end }}}}"),
            File,
            "{}",
        ),
        (
            format!("{w}{{{{ slice .Data.data.password 1 99 }}}}{{{{ end }}}}"),
            File,
            "{}",
        ),
        (
            format!("{w}{{{{ toJSON (divide 0 .Data.data.number) }}}}{{{{ end }}}}"),
            File,
            "{}",
        ),
        (
            format!("{w}{{{{ .Data.data.password }}}}{{{{ end }}}}"),
            Env,
            "{}",
        ),
        (
            format!("{w}X=\"{{{{ .Data.data.password }}}}{{{{ end }}}}"),
            Env,
            "{}",
        ),
        (
            format!("{w}{{{{ .Data.data.password }}}}=x{{{{ end }}}}"),
            Env,
            "{}",
        ),
        (
            format!("{w}{{{{ .Data.data.password }}}}{{{{ end }}}}"),
            KubeSecret,
            "{}",
        ),
        (
            format!("{w}{{{{ .Data.data.yaml }}}}{{{{ end }}}}"),
            KubeSecret,
            "{}",
        ),
        (
            format!("{w}{{{{ .Data.data.json }}}}{{{{ end }}}}"),
            KubeSecret,
            "{}",
        ),
        (
            format!("{w}a: {{{{ .Data.data.number }}}}{{{{ end }}}}"),
            KubeSecret,
            "{}",
        ),
        (
            format!("{w}{{{{ .Data.data.password }}}}/x: y{{{{ end }}}}"),
            KubeSecret,
            "{}",
        ),
        (
            format!("{w}{{{{ .Data.data.password }}}}: 1{{{{ end }}}}"),
            KubeSecret,
            "{}",
        ),
        (
            format!(
                "{w}{{{{ .Data.data.password }}}}_A=1\n{{{{ .Data.data.password }}}}_A=2{{{{ end }}}}"
            ),
            Env,
            r#"{}"#,
        ),
        (
            format!("{w}{{{{ template \"nope\" .Data.data.password }}}}{{{{ end }}}}"),
            File,
            "{}",
        ),
    ];
    let fragment = &CANARY[7..];
    let mut checked = 0;
    for (template, kind, settings) in &cases {
        let err = render(&request(Some(template), *kind, settings))
            .expect_err(&format!("template should fail: {template}"));
        let msg = err.to_string();
        assert!(
            !msg.contains(fragment),
            "error leaks the secret for {template}: {msg}"
        );
        checked += 1;
    }
    // Default formats: collisions and invalid names.
    for (kind, settings) in [
        (KubeSecret, "{}"),
        (Env, "{}"),
        (File, r#"{"format":"json"}"#),
    ] {
        let mut req = request(None, kind, settings);
        req.secrets
            .push(secret("kv/dup2", serde_json::json!({ "password": CANARY })));
        let err: PluginError = render(&req).expect_err("collision");
        assert!(!err.to_string().contains(fragment), "{err}");
        checked += 1;
    }
    assert_eq!(checked, cases.len() + 3);
}
