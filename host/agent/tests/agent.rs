//! The agent end to end against a real OpenBao (and PostgreSQL), with the
//! first-party plugins built by `cargo xtask plugins`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use keyward_agent::{AgentConfig, RunOptions, run};
use keyward_testkit::{OpenBao, Postgres, unique_mount};
use keyward_vault::CancellationToken;
use serde_json::json;

fn plugin_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/plugins");
    for name in ["policy-rules.wasm", "render-template.wasm"] {
        assert!(
            dir.join(name).exists(),
            "{} is missing: run `cargo xtask plugins` first",
            dir.join(name).display()
        );
    }
    dir.canonicalize().unwrap()
}

fn canary() -> String {
    format!("CANARY-{}", unique_mount("v").replace('-', ""))
}

struct Setup {
    dir: tempfile::TempDir,
    out: PathBuf,
    audit: PathBuf,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let audit = dir.path().join("audit.jsonl");
        Setup { dir, out, audit }
    }

    /// Write a config: `vault` and `secrets` given as YAML snippets.
    fn config(&self, bao: &OpenBao, body: &str) -> AgentConfig {
        let token = self.dir.path().join("token");
        std::fs::write(&token, bao.root_token()).unwrap();
        let text = format!(
            "vault:\n  address: {addr}\n  auth:\n    method: token\n    token-file: {token}\n  leases:\n    backoff-min: 200ms\n    backoff-max: 1s\n    revoke-on-shutdown: true\n    static-refresh: 1s\nlisten: null\naudit: {audit}\nworkload:\n  name: demo\n  namespace: team-a\n  service-account: api\noutputs:\n  directory: {out}\n  env-file:\n    path: app.env\n    format: export\nplugins:\n  dir: {plugins}\n{body}",
            addr = bao.addr(),
            token = token.display(),
            audit = self.audit.display(),
            out = self.out.display(),
            plugins = plugin_dir().display(),
        );
        let path = self.dir.path().join("agent.yaml");
        std::fs::write(&path, text).unwrap();
        AgentConfig::load(&path).unwrap_or_else(|e| panic!("{e}"))
    }

    fn opts(&self, once: bool) -> RunOptions {
        RunOptions {
            once,
            exec: None,
            config_dir: self.dir.path().to_path_buf(),
        }
    }

    fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.out.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }

    fn audit_text(&self) -> String {
        std::fs::read_to_string(&self.audit).unwrap_or_default()
    }
}

fn policy(paths: &[&str]) -> String {
    let settings = json!({"rules": [{"name": "team-a", "match": {"namespaces": ["team-a"]}, "allow": {"paths": paths}}]});
    format!(
        "  policies:\n    - name: rules\n      component: policy-rules\n      settings: {settings}\n"
    )
}

async fn kv_and_pki(bao: &OpenBao, value: &str) -> (String, String) {
    let kv = unique_mount("kv");
    bao.enable_secrets("kv-v2", &kv).await.unwrap();
    bao.write(
        &format!("{kv}/data/app"),
        json!({"data": {"username": "app", "password": value}}),
    )
    .await
    .unwrap();
    let pki = unique_mount("pki");
    bao.enable_pki(&pki, "Keyward Test CA", "example.com")
        .await
        .unwrap();
    (kv, pki)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_renders_kv_pki_and_env_files_through_plugins() {
    let bao = OpenBao::start_dev().await.unwrap();
    let secret = canary();
    let (kv, pki) = kv_and_pki(&bao, &secret).await;
    let s = Setup::new();
    let body = format!(
        "{policy}mounts:\n  {kv}: kv2\n  {pki}: pki\nsecrets:\n  - name: config\n    file: {{path: app/config.ini, mode: 0o640}}\n    template: |\n      {{{{ with secret \"{kv}/data/app\" -}}}}\n      user={{{{ .Data.data.username }}}}\n      password={{{{ .Data.data.password }}}}\n      {{{{- end }}}}\n  - name: tls\n    file: {{path: tls/web.pem}}\n    template: |\n      {{{{ with pkiCert \"{pki}/issue/web\" \"common_name=web.example.com\" \"ttl=1h\" }}}}{{{{ .Data.Cert }}}}{{{{ .Data.Key }}}}{{{{ end }}}}\n  - name: env\n    env: {{prefix: APP_}}\n    secrets: [\"{kv}/data/app\"]\n",
        policy = policy(&[&format!("{kv}/app"), &format!("{pki}/issue/web")]),
    );
    let cfg = s.config(&bao, &body);
    let outcome = run(cfg, s.opts(true), CancellationToken::new())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(outcome.files_written >= 3);
    assert_eq!(
        s.read("app/config.ini"),
        format!("user=app\npassword={secret}\n")
    );
    let mode = std::fs::metadata(s.out.join("app/config.ini")).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
        0o640
    );
    let pem = s.read("tls/web.pem");
    assert!(
        pem.contains("BEGIN CERTIFICATE") && pem.contains("PRIVATE KEY"),
        "{pem}"
    );
    let env = s.read("app.env");
    assert!(
        env.contains(&format!("export APP_password='{secret}'")),
        "{env}"
    );
    assert!(env.contains("export APP_username='app'"), "{env}");
    let audit = s.audit_text();
    for event in ["\"decision\"", "\"fetch\"", "\"render\"", "\"delivery\""] {
        assert!(audit.contains(event), "no {event} record in {audit}");
    }
    assert!(
        !audit.contains(&secret),
        "the audit log leaks a secret value"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_template_reading_a_denied_path_renders_nothing() {
    let bao = OpenBao::start_dev().await.unwrap();
    let secret = canary();
    let (kv, _) = kv_and_pki(&bao, &secret).await;
    bao.write(&format!("{kv}/data/other"), json!({"data": {"x": secret}}))
        .await
        .unwrap();
    let s = Setup::new();
    let body = format!(
        "{policy}mounts:\n  {kv}: kv2\nsecrets:\n  - name: ok\n    file: {{path: ok.txt}}\n    template: '{{{{ with secret \"{kv}/data/app\" }}}}{{{{ .Data.data.username }}}}{{{{ end }}}}'\n  - name: sneaky\n    file: {{path: sneaky.txt}}\n    template: '{{{{ with secret \"{kv}/data/other\" }}}}{{{{ .Data.data.x }}}}{{{{ end }}}}'\n",
        policy = policy(&[&format!("{kv}/app")]),
    );
    let cfg = s.config(&bao, &body);
    let err = run(cfg, s.opts(true), CancellationToken::new())
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("denied") && msg.contains(&format!("{kv}/data/other")),
        "{msg}"
    );
    assert!(!msg.contains(&secret));
    let written: Vec<_> = std::fs::read_dir(&s.out)
        .map(|d| d.collect())
        .unwrap_or_default();
    assert!(written.is_empty(), "nothing may be delivered: {written:?}");
    assert!(s.audit_text().contains("\"verdict\":\"deny\""));
}

async fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    while tokio::time::Instant::now() < deadline {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    f()
}

async fn pg_login(pg: &Postgres, creds: &str) -> Result<(), String> {
    let mut user = "";
    let mut password = "";
    for line in creds.lines() {
        if let Some(u) = line.strip_prefix("user=") {
            user = u;
        }
        if let Some(p) = line.strip_prefix("password=") {
            password = p;
        }
    }
    let mut config = tokio_postgres::Config::new();
    config
        .host("127.0.0.1")
        .port(pg.port())
        .user(user)
        .password(password)
        .dbname("postgres")
        .connect_timeout(Duration::from_secs(5));
    let (client, conn) = config
        .connect(tokio_postgres::NoTls)
        .await
        .map_err(|e| e.to_string())?;
    let task = tokio::spawn(conn);
    client
        .query_one("SELECT 1", &[])
        .await
        .map_err(|e| e.to_string())?;
    drop(client);
    let _ = task.await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_credentials_are_rotated_at_max_ttl_and_revoked_on_shutdown() {
    let bao = OpenBao::start_dev().await.unwrap();
    let pg = Postgres::start().await.unwrap();
    let db = unique_mount("db");
    bao.enable_secrets("database", &db).await.unwrap();
    bao.write(
        &format!("{db}/config/pg"),
        json!({
            "plugin_name": "postgresql-database-plugin",
            "connection_url": format!("postgresql://{{{{username}}}}:{{{{password}}}}@127.0.0.1:{}/postgres?sslmode=disable", pg.port()),
            "username": pg.superuser(), "password": pg.password(), "allowed_roles": ["app"],
        }),
    )
    .await
    .unwrap();
    bao.write(
        &format!("{db}/roles/app"),
        json!({"db_name": "pg", "creation_statements": ["CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';"], "default_ttl": "3s", "max_ttl": "8s"}),
    )
    .await
    .unwrap();
    let s = Setup::new();
    let body = format!(
        "{policy}mounts:\n  {db}: database\nsecrets:\n  - name: db\n    file: {{path: db.env}}\n    template: |\n      {{{{ with secret \"{db}/creds/app\" -}}}}\n      user={{{{ .Data.username }}}}\n      password={{{{ .Data.password }}}}\n      {{{{- end }}}}\n",
        policy = policy(&[&format!("{db}/creds/app")]),
    );
    let cfg = s.config(&bao, &body);
    let cancel = CancellationToken::new();
    let task = tokio::spawn(run(cfg, s.opts(false), cancel.clone()));
    let file = s.out.join("db.env");
    assert!(
        wait_until(Duration::from_secs(20), || file.exists()).await,
        "first render"
    );
    let first = s.read("db.env");
    pg_login(&pg, &first)
        .await
        .expect("the first credentials work");
    // Renewed at ~2/3 of 3s, then re-issued before the 8s max TTL.
    assert!(
        wait_until(Duration::from_secs(20), || std::fs::read_to_string(&file)
            .map(|c| c != first)
            .unwrap_or(false))
        .await,
        "credentials were not re-issued before max TTL"
    );
    let second = s.read("db.env");
    pg_login(&pg, &second)
        .await
        .expect("the re-issued credentials work");
    cancel.cancel();
    let outcome = task.await.unwrap().unwrap_or_else(|e| panic!("{e}"));
    assert!(outcome.revoked >= 1, "{outcome:?}");
    assert!(
        pg_login(&pg, &second).await.is_err(),
        "revoked credentials must stop working"
    );
    let audit = s.audit_text();
    assert!(
        audit.contains("\"renewal\"") || audit.contains("\"revocation\""),
        "{audit}"
    );
    for creds in [&first, &second] {
        let pw = creds
            .lines()
            .find_map(|l| l.strip_prefix("password="))
            .unwrap();
        assert!(!audit.contains(pw), "the audit log leaks a password");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openbao_down_keeps_last_good_files_and_recovers() {
    let mut bao = OpenBao::start_persistent().await.unwrap();
    let kv = unique_mount("kv");
    bao.enable_secrets("kv-v2", &kv).await.unwrap();
    bao.write(
        &format!("{kv}/data/app"),
        json!({"data": {"password": "first"}}),
    )
    .await
    .unwrap();
    let s = Setup::new();
    let body = format!(
        "{policy}mounts:\n  {kv}: kv2\nsecrets:\n  - name: app\n    file: {{path: app.txt}}\n    template: '{{{{ with secret \"{kv}/data/app\" }}}}{{{{ .Data.data.password }}}}{{{{ end }}}}'\n",
        policy = policy(&[&format!("{kv}/app")]),
    );
    let cfg = s.config(&bao, &body);
    let cancel = CancellationToken::new();
    let task = tokio::spawn(run(cfg, s.opts(false), cancel.clone()));
    let file = s.out.join("app.txt");
    assert!(wait_until(Duration::from_secs(20), || file.exists()).await);
    assert_eq!(s.read("app.txt"), "first");
    bao.kill();
    // Several refresh intervals pass with Vault down: the file stays.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(s.read("app.txt"), "first");
    assert!(
        !task.is_finished(),
        "the agent must keep running while Vault is down"
    );
    bao.restart().await.unwrap();
    bao.write(
        &format!("{kv}/data/app"),
        json!({"data": {"password": "second"}}),
    )
    .await
    .unwrap();
    assert!(
        wait_until(Duration::from_secs(30), || std::fs::read_to_string(&file)
            .map(|c| c == "second")
            .unwrap_or(false))
        .await,
        "the agent did not recover after OpenBao came back"
    );
    cancel.cancel();
    task.await.unwrap().unwrap_or_else(|e| panic!("{e}"));
}

/// A long-running agent pre-initialises its plugins in the background
/// with exactly the settings the pipeline passes: the hostile guest's
/// `remembered` mode renders what `validate-settings` left in memory,
/// which is empty in a plain instance and the binding's settings once
/// calls start from the snapshot. A policy snapshot keeps deciding.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_agent_preinitialises_its_plugins_with_their_configuration() {
    let bao = OpenBao::start_dev().await.unwrap();
    let kv = unique_mount("kv");
    bao.enable_secrets("kv-v2", &kv).await.unwrap();
    let write = |n: u32| {
        let (bao, kv) = (&bao, &kv);
        async move {
            bao.write(&format!("{kv}/data/app"), json!({"data": {"n": n}}))
                .await
                .unwrap();
        }
    };
    write(0).await;
    let s = Setup::new();
    let body = format!(
        "{policy}  renderers:\n    - name: hostile\n      component: hostile-guest\nmounts:\n  {kv}: kv2\nsecrets:\n  - name: app\n    file: {{path: app.txt}}\n    template: '{{{{ with secret \"{kv}/data/app\" }}}}n={{{{ .Data.data.n }}}}{{{{ end }}}}'\n  - name: probe\n    renderer: hostile\n    settings: {{mode: remembered}}\n    secrets: [\"{kv}/data/app\"]\n    file: {{path: remembered}}\n",
        policy = policy(&[&format!("{kv}/app")]),
    );
    let cfg = s.config(&bao, &body);
    let cancel = CancellationToken::new();
    let task = tokio::spawn(run(cfg, s.opts(false), cancel.clone()));
    let remembered = s.out.join("remembered");
    assert!(wait_until(Duration::from_secs(20), || remembered.exists()).await);
    // New versions make the agent render again, until a render runs from
    // the snapshot (compiling it takes a few seconds in a debug build).
    let mut n = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while std::fs::read_to_string(&remembered).unwrap_or_default() != r#"{"mode":"remembered"}"# {
        assert!(
            std::time::Instant::now() < deadline,
            "the hostile renderer was never pre-initialised with its binding's settings (last: {:?})",
            std::fs::read_to_string(&remembered)
        );
        n += 1;
        write(n).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // The template renderer and the policy still work after their own
    // snapshots: the next version is rendered.
    n += 1;
    write(n).await;
    let app = s.out.join("app.txt");
    let expected = format!("n={n}");
    assert!(
        wait_until(Duration::from_secs(30), || std::fs::read_to_string(&app)
            .map(|c| c == expected)
            .unwrap_or(false))
        .await,
        "app.txt: {:?}",
        std::fs::read_to_string(&app)
    );
    cancel.cancel();
    task.await.unwrap().unwrap_or_else(|e| panic!("{e}"));
}
