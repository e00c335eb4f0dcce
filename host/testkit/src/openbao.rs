//! An OpenBao server for one test.

use std::fs::File;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use serde_json::{Value, json};

use crate::error::{Error, Result, io};
use crate::net::{
    free_port, free_port_pair, http_client, http_client_with_ca, poll, random_token, tail,
};
use crate::tools::ensure_bao;

const READY_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug)]
enum Mode {
    /// `bao server -dev`: in memory; a restart starts empty (same root
    /// token), so tests must seed again.
    Dev,
    /// `bao server -dev -dev-tls`: like `Dev`, over HTTPS with a CA the
    /// server generates.
    DevTls,
    /// `bao server -config` with integrated (raft) storage on disk; keeps
    /// everything (leases included) across restarts.
    Persistent { config: PathBuf, unseal_key: String },
}

/// A running OpenBao server on 127.0.0.1, killed on drop.
#[derive(Debug)]
pub struct OpenBao {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    mode: Mode,
    root_token: String,
    child: Mutex<Option<Child>>,
    log: PathBuf,
    http: reqwest::Client,
    starts: u32,
}

impl OpenBao {
    /// `bao server -dev` on a free loopback port with a random root token.
    pub async fn start_dev() -> Result<OpenBao> {
        Self::start_dev_mode(false).await
    }

    /// `bao server -dev -dev-tls`: HTTPS on 127.0.0.1 with a certificate
    /// for `localhost` and `127.0.0.1`, signed by the CA in
    /// [`OpenBao::ca_file`].
    pub async fn start_dev_tls() -> Result<OpenBao> {
        Self::start_dev_mode(true).await
    }

    async fn start_dev_mode(tls: bool) -> Result<OpenBao> {
        let bin = ensure_bao()?;
        let mut last = None;
        // The dev server also binds port + 1; another process may take it
        // between our check and its start, so retry on a fresh pair.
        for _ in 0..5 {
            let dir = tempfile::Builder::new()
                .prefix("keyward-openbao-")
                .tempdir()
                .map_err(io("creating a temporary directory"))?;
            let mut bao = OpenBao {
                bin: bin.clone(),
                log: dir.path().join("openbao.log"),
                dir,
                port: free_port_pair()?,
                mode: if tls { Mode::DevTls } else { Mode::Dev },
                root_token: format!("root-{}", random_token(24)),
                child: Mutex::new(None),
                http: http_client()?,
                starts: 0,
            };
            match bao.launch().await {
                Ok(()) => return Ok(bao),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| Error::Io {
            context: "starting OpenBao".into(),
            source: std::io::Error::other("no attempt made"),
        }))
    }

    /// A real server (`bao server -config`) with integrated (raft) storage
    /// in a temp directory, initialised with one key share and unsealed. Leases and
    /// tokens survive [`OpenBao::restart`].
    pub async fn start_persistent() -> Result<OpenBao> {
        let bin = ensure_bao()?;
        let mut last = None;
        for _ in 0..5 {
            let dir = tempfile::Builder::new()
                .prefix("keyward-openbao-")
                .tempdir()
                .map_err(io("creating a temporary directory"))?;
            let port = free_port()?;
            let cluster_port = free_port()?;
            let config = dir.path().join("config.hcl");
            let data = dir.path().join("data");
            std::fs::create_dir_all(&data).map_err(io("creating the storage directory"))?;
            std::fs::write(
                &config,
                format!(
                    r#"storage "raft" {{
  path    = "{data}"
  node_id = "keyward-test"
}}
listener "tcp" {{
  address         = "127.0.0.1:{port}"
  cluster_address = "127.0.0.1:{cluster_port}"
  tls_disable     = true
}}
api_addr     = "http://127.0.0.1:{port}"
cluster_addr = "https://127.0.0.1:{cluster_port}"
ui           = false
log_level    = "info"
"#,
                    data = data.display()
                ),
            )
            .map_err(io("writing the OpenBao configuration"))?;
            let mut bao = OpenBao {
                bin: bin.clone(),
                log: dir.path().join("openbao.log"),
                dir,
                port,
                mode: Mode::Persistent {
                    config,
                    unseal_key: String::new(),
                },
                root_token: String::new(),
                child: Mutex::new(None),
                http: http_client()?,
                starts: 0,
            };
            match bao.launch().await {
                Ok(()) => return Ok(bao),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| Error::Io {
            context: "starting OpenBao".into(),
            source: std::io::Error::other("no attempt made"),
        }))
    }

    /// `http://127.0.0.1:<port>` (`https://` for a TLS server).
    pub fn addr(&self) -> String {
        let scheme = if matches!(self.mode, Mode::DevTls) {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}:{}", Ipv4Addr::LOCALHOST, self.port)
    }

    /// The CA certificate of a TLS server.
    pub fn ca_file(&self) -> Option<PathBuf> {
        matches!(self.mode, Mode::DevTls).then(|| self.dir.path().join("tls/vault-ca.pem"))
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The root token.
    pub fn root_token(&self) -> &str {
        &self.root_token
    }

    /// A scratch directory that lives as long as the server.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Is the process running?
    pub fn running(&self) -> bool {
        let mut child = self.child.lock().unwrap_or_else(|p| p.into_inner());
        match child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    async fn launch(&mut self) -> Result<()> {
        let log = File::options()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(io("opening the OpenBao log"))?;
        let log2 = log.try_clone().map_err(io("opening the OpenBao log"))?;
        let mut cmd = Command::new(&self.bin);
        cmd.arg("server");
        match &self.mode {
            Mode::Dev | Mode::DevTls => {
                if matches!(self.mode, Mode::DevTls) {
                    let dir = self.dir.path().join("tls");
                    let _ = std::fs::remove_dir_all(&dir);
                    std::fs::create_dir_all(&dir).map_err(io("creating the TLS directory"))?;
                    cmd.arg("-dev-tls")
                        .arg(format!("-dev-tls-cert-dir={}", dir.display()));
                }
                cmd.arg("-dev")
                    .arg(format!("-dev-root-token-id={}", self.root_token))
                    .arg(format!("-dev-listen-address=127.0.0.1:{}", self.port))
                    .arg("-dev-no-store-token");
            }
            Mode::Persistent { config, .. } => {
                cmd.arg(format!("-config={}", config.display()));
            }
        }
        cmd.env("HOME", self.dir.path())
            .env_remove("BAO_ADDR")
            .env_remove("VAULT_ADDR")
            .env_remove("BAO_TOKEN")
            .env_remove("VAULT_TOKEN")
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2));
        let child = cmd
            .spawn()
            .map_err(io(format!("starting {}", self.bin.display())))?;
        *self.child.lock().unwrap_or_else(|p| p.into_inner()) = Some(child);
        self.starts += 1;
        let result = self.wait_ready().await;
        if result.is_err() {
            self.kill();
        }
        result
    }

    fn start_error(&self, detail: String) -> Error {
        Error::Start {
            what: "OpenBao",
            detail,
            log: self.log.display().to_string(),
            tail: tail(&self.log, 30),
        }
    }

    /// Health status code (200 only for an active node), or `None` while
    /// nothing answers.
    async fn health(&self) -> Option<u16> {
        let url = format!(
            "{}/v1/sys/health?sealedcode=503&uninitcode=501&standbycode=429",
            self.addr()
        );
        match self.http.get(url).send().await {
            Ok(r) => Some(r.status().as_u16()),
            Err(_) => None,
        }
    }

    async fn wait_ready(&mut self) -> Result<()> {
        if let Some(ca) = self.ca_file() {
            // The server writes its CA before listening.
            let written = poll(READY_TIMEOUT, || {
                let found =
                    std::fs::read_to_string(&ca).is_ok_and(|t| t.contains("END CERTIFICATE"));
                let alive = self.running();
                async move {
                    match (found, alive) {
                        (true, _) => Some(true),
                        (false, false) => Some(false),
                        _ => None,
                    }
                }
            })
            .await;
            if written != Some(true) {
                return Err(self.start_error(format!("{} was not written", ca.display())));
            }
            self.http = http_client_with_ca(&ca)?;
        }
        // The listener answers (any status), or the process died.
        let answered = poll(READY_TIMEOUT, || async {
            if !self.running() {
                return Some(None);
            }
            self.health().await.map(Some)
        })
        .await;
        let mut status = match answered {
            Some(Some(status)) => status,
            Some(None) => return Err(self.start_error("the process exited".into())),
            None => {
                return Err(self.start_error(format!(
                    "no answer on {} within {READY_TIMEOUT:?}",
                    self.addr()
                )));
            }
        };
        if let Mode::Persistent { unseal_key, .. } = &self.mode {
            let mut unseal_key = unseal_key.clone();
            if status == 501 {
                let init = self
                    .raw(
                        "PUT",
                        "sys/init",
                        Some(json!({"secret_shares": 1, "secret_threshold": 1})),
                        false,
                    )
                    .await?
                    .unwrap_or(Value::Null);
                unseal_key = init["keys_base64"][0]
                    .as_str()
                    .or_else(|| init["keys"][0].as_str())
                    .unwrap_or_default()
                    .to_string();
                self.root_token = init["root_token"].as_str().unwrap_or_default().to_string();
                if unseal_key.is_empty() || self.root_token.is_empty() {
                    return Err(self.start_error("sys/init returned no key or root token".into()));
                }
                if let Mode::Persistent { unseal_key: k, .. } = &mut self.mode {
                    *k = unseal_key.clone();
                }
                status = 503;
            }
            if status == 503 {
                self.raw(
                    "PUT",
                    "sys/unseal",
                    Some(json!({ "key": unseal_key })),
                    false,
                )
                .await?;
            }
        }
        let ready = poll(READY_TIMEOUT, || async {
            (self.health().await == Some(200)).then_some(())
        })
        .await;
        if ready.is_none() {
            return Err(self.start_error(format!(
                "{} did not report healthy (HTTP 200 on sys/health) within {READY_TIMEOUT:?}",
                self.addr()
            )));
        }
        if !matches!(self.mode, Mode::Persistent { .. }) {
            return Ok(());
        }
        // Raft elects itself leader shortly after unsealing; until then
        // writes fail. Poll until this node is the leader and the root
        // token works.
        let ok = poll(READY_TIMEOUT, || async {
            let leader = self.raw("GET", "sys/leader", None, false).await.ok()??;
            if leader["is_self"] != Value::Bool(true) {
                return None;
            }
            self.raw("GET", "auth/token/lookup-self", None, true)
                .await
                .ok()
                .map(|_| ())
        })
        .await;
        ok.ok_or_else(|| self.start_error("the node did not become the active leader".into()))
    }

    /// Kill the server (SIGKILL) and wait for it. Idempotent.
    pub fn kill(&mut self) {
        let child = self.child.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(mut child) = child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stop the server gracefully (SIGTERM), killing it if it is still
    /// running after 10 s.
    pub async fn stop(&mut self) {
        let child = self.child.lock().unwrap_or_else(|p| p.into_inner()).take();
        let Some(mut child) = child else {
            return;
        };
        if let Some(pid) = rustix::process::Pid::from_raw(child.id() as i32) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        let exited = poll(Duration::from_secs(10), || {
            let status = child.try_wait();
            async move { matches!(status, Ok(Some(_))).then_some(()) }
        })
        .await;
        if exited.is_none() {
            let _ = child.kill();
        }
        let _ = child.wait();
    }

    /// Start the server again on the same port (killing it first if it
    /// runs). A persistent server is unsealed and keeps its data; a dev
    /// server starts empty with the same root token.
    pub async fn restart(&mut self) -> Result<()> {
        self.kill();
        // The port may linger briefly after the kill: poll until it binds.
        let port = self.port;
        let free = poll(Duration::from_secs(30), || async move {
            std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port))
                .ok()
                .map(|_| ())
        })
        .await;
        if free.is_none() {
            return Err(self.start_error(format!("port {port} did not become free")));
        }
        self.launch().await
    }

    async fn raw(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        with_token: bool,
    ) -> Result<Option<Value>> {
        self.raw_in(None, method, path, body, with_token).await
    }

    async fn raw_in(
        &self,
        namespace: Option<&str>,
        method: &str,
        path: &str,
        body: Option<Value>,
        with_token: bool,
    ) -> Result<Option<Value>> {
        let url = format!("{}/v1/{}", self.addr(), path.trim_start_matches('/'));
        let method_v = reqwest::Method::from_bytes(method.as_bytes()).map_err(|_| Error::Api {
            method: method.into(),
            path: path.into(),
            detail: "bad method".into(),
        })?;
        let mut req = self.http.request(method_v, url);
        if with_token {
            req = req.header("X-Vault-Token", &self.root_token);
        }
        if let Some(ns) = namespace {
            req = req.header("X-Vault-Namespace", ns);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let api_err = |detail: String| Error::Api {
            method: method.into(),
            path: path.into(),
            detail,
        };
        let resp = req.send().await.map_err(|e| api_err(e.to_string()))?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| api_err(e.to_string()))?;
        if !status.is_success() {
            return Err(api_err(format!(
                "HTTP {status}: {}",
                String::from_utf8_lossy(&bytes)
            )));
        }
        if bytes.is_empty() {
            return Ok(None);
        }
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| api_err(format!("not JSON: {e}")))
    }

    /// An API call with the root token (`method` is `GET`, `POST`, `PUT`,
    /// `DELETE` or `LIST`). Returns the body, `None` when empty.
    pub async fn api(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Option<Value>> {
        self.raw(method, path, body, true).await
    }

    /// An API call with the root token inside a namespace
    /// (`X-Vault-Namespace`).
    pub async fn api_in(
        &self,
        namespace: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Option<Value>> {
        self.raw_in(Some(namespace), method, path, body, true).await
    }

    /// `POST` with the root token.
    pub async fn write(&self, path: &str, body: Value) -> Result<Option<Value>> {
        self.api("POST", path, Some(body)).await
    }

    /// `GET` with the root token.
    pub async fn read(&self, path: &str) -> Result<Option<Value>> {
        self.api("GET", path, None).await
    }

    /// `LIST` keys under a path (empty when there are none).
    pub async fn list(&self, path: &str) -> Result<Vec<String>> {
        match self.api("LIST", path, None).await {
            Ok(Some(v)) => Ok(v["data"]["keys"]
                .as_array()
                .map(|keys| {
                    keys.iter()
                        .filter_map(|k| k.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()),
            Ok(None) => Ok(Vec::new()),
            Err(Error::Api { detail, .. }) if detail.starts_with("HTTP 404") => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// Mount a secrets engine: `kv-v2`, `kv-v1` (or `kv`), `database`,
    /// `pki`, `transit`, ...
    pub async fn enable_secrets(&self, engine: &str, path: &str) -> Result<()> {
        let body = match engine {
            "kv-v2" => json!({"type": "kv", "options": {"version": "2"}}),
            "kv-v1" | "kv" => json!({"type": "kv", "options": {"version": "1"}}),
            other => json!({ "type": other }),
        };
        let path = path.trim_matches('/');
        self.write(&format!("sys/mounts/{path}"), body).await?;
        if engine == "kv-v2" {
            // A new KV v2 mount upgrades its storage in the background and
            // refuses requests until done (seen under load on a raft
            // server): wait until its config reads.
            let ready = poll(READY_TIMEOUT, || async {
                self.read(&format!("{path}/config")).await.ok().map(|_| ())
            })
            .await;
            if ready.is_none() {
                return Err(self.start_error(format!(
                    "the KV v2 mount {path} did not become usable within {READY_TIMEOUT:?}"
                )));
            }
        }
        Ok(())
    }

    /// Mount PKI at `mount` with a root CA named `ca_name` (one year) and a
    /// role `web` issuing certificates for `domain` and its subdomains
    /// (at most 72 h).
    pub async fn enable_pki(&self, mount: &str, ca_name: &str, domain: &str) -> Result<()> {
        self.enable_secrets("pki", mount).await?;
        self.write(
            &format!("sys/mounts/{mount}/tune"),
            json!({"max_lease_ttl": "8760h"}),
        )
        .await?;
        self.write(
            &format!("{mount}/root/generate/internal"),
            json!({"common_name": ca_name, "ttl": "8760h"}),
        )
        .await?;
        self.write(
            &format!("{mount}/roles/web"),
            json!({"allowed_domains": [domain], "allow_subdomains": true, "max_ttl": "72h"}),
        )
        .await
        .map(|_| ())
    }

    /// Enable an auth method (`approle`, `jwt`, `kubernetes`, `userpass`).
    pub async fn enable_auth(&self, method: &str, path: &str) -> Result<()> {
        self.write(
            &format!("sys/auth/{}", path.trim_matches('/')),
            json!({ "type": method }),
        )
        .await
        .map(|_| ())
    }

    /// Create or replace an ACL policy.
    pub async fn put_policy(&self, name: &str, hcl: &str) -> Result<()> {
        self.api(
            "PUT",
            &format!("sys/policies/acl/{name}"),
            Some(json!({ "policy": hcl })),
        )
        .await
        .map(|_| ())
    }

    /// Lease ids under a prefix (`<mount>/creds/<role>`), from
    /// `sys/leases/lookup`.
    pub async fn leases(&self, prefix: &str) -> Result<Vec<String>> {
        let prefix = prefix.trim_matches('/');
        let keys = self.list(&format!("sys/leases/lookup/{prefix}")).await?;
        Ok(keys.into_iter().map(|k| format!("{prefix}/{k}")).collect())
    }

    /// A token with `policies`, `ttl` and optional `explicit_max_ttl`.
    pub async fn create_token(
        &self,
        policies: &[&str],
        ttl: &str,
        max_ttl: Option<&str>,
    ) -> Result<String> {
        let mut body = json!({ "policies": policies, "ttl": ttl, "no_parent": true });
        if let Some(m) = max_ttl {
            body["explicit_max_ttl"] = json!(m);
        }
        let out = self
            .write("auth/token/create", body)
            .await?
            .unwrap_or(Value::Null);
        out["auth"]["client_token"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| Error::Api {
                method: "POST".into(),
                path: "auth/token/create".into(),
                detail: "no client_token in the answer".into(),
            })
    }
}

impl Drop for OpenBao {
    fn drop(&mut self) {
        self.kill();
    }
}
