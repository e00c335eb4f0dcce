//! A real kube-apiserver (with its etcd) for one test.

use std::fs::File;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::error::{Error, Result, io};
use crate::kube_build::{KubeBins, ensure_kube_apiserver};
use crate::net::{free_port, http_client, http_client_with_ca, poll, random_token, tail};
use crate::tools::run;

const READY_TIMEOUT: Duration = Duration::from_secs(90);

/// The issuer of service-account tokens.
pub const SERVICE_ACCOUNT_ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

/// A kube-apiserver on 127.0.0.1 backed by its own etcd, both stopped on
/// drop. Authentication: client certificates signed by [`ca_pem`] (an
/// admin one in `O=system:masters`) and a static admin bearer token;
/// authorisation: RBAC. No controller-manager, scheduler or kubelet runs:
/// objects are stored, pods never start, namespaces get no `default`
/// ServiceAccount on their own.
///
/// [`ca_pem`]: KubeApiServer::ca_pem
pub struct KubeApiServer {
    dir: tempfile::TempDir,
    port: u16,
    admin_token: String,
    etcd: Mutex<Option<Child>>,
    apiserver: Mutex<Option<Child>>,
    http: reqwest::Client,
    ready_after: Duration,
}

impl KubeApiServer {
    /// Generate the PKI, start etcd and kube-apiserver on free loopback
    /// ports, and wait until `/readyz` answers `ok`. Builds the binaries
    /// first if needed ([`ensure_kube_apiserver`]).
    pub async fn start() -> Result<KubeApiServer> {
        let bins = tokio::task::spawn_blocking(ensure_kube_apiserver)
            .await
            .map_err(|e| Error::Io {
                context: "installing kube-apiserver".into(),
                source: std::io::Error::other(e.to_string()),
            })??;
        let mut last = None;
        // A port found free may be taken before the server binds it:
        // retry with fresh ports.
        for _ in 0..3 {
            match Self::launch(&bins).await {
                Ok(server) => return Ok(server),
                Err(e @ Error::Missing { .. }) => return Err(e),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| Error::Io {
            context: "starting kube-apiserver".into(),
            source: std::io::Error::other("no attempt made"),
        }))
    }

    async fn launch(bins: &KubeBins) -> Result<KubeApiServer> {
        let started = Instant::now();
        let dir = tempfile::Builder::new()
            .prefix("keyward-kube-")
            .tempdir()
            .map_err(io("creating a temporary directory"))?;
        let pki = dir.path().join("pki");
        std::fs::create_dir_all(&pki).map_err(io("creating the PKI directory"))?;
        make_pki(&pki)?;
        let admin_token = random_token(40);
        // Static token file: token,user,uid,"groups".
        std::fs::write(
            pki.join("tokens.csv"),
            format!("{admin_token},keyward-admin,keyward-admin,\"system:masters\"\n"),
        )
        .map_err(io("writing the token file"))?;

        let etcd_port = free_port()?;
        let peer_port = free_port()?;
        let port = free_port()?;
        let mut server = KubeApiServer {
            dir,
            port,
            admin_token,
            etcd: Mutex::new(None),
            apiserver: Mutex::new(None),
            http: http_client()?,
            ready_after: Duration::ZERO,
        };
        let d = server.dir.path().to_path_buf();
        let etcd_url = format!("http://127.0.0.1:{etcd_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        let mut etcd = Command::new(&bins.etcd);
        etcd.arg("--name=keyward")
            .arg(format!("--data-dir={}", d.join("etcd").display()))
            .arg(format!("--listen-client-urls={etcd_url}"))
            .arg(format!("--advertise-client-urls={etcd_url}"))
            .arg(format!("--listen-peer-urls={peer_url}"))
            .arg(format!("--initial-advertise-peer-urls={peer_url}"))
            .arg(format!("--initial-cluster=keyward={peer_url}"))
            .arg("--initial-cluster-state=new");
        *server.etcd.get_mut().unwrap_or_else(|p| p.into_inner()) =
            Some(spawn(&mut etcd, &d, "etcd.log")?);
        let etcd_health = format!("{etcd_url}/health");
        let healthy = poll(READY_TIMEOUT, || async {
            if !running(&server.etcd) {
                return Some(false);
            }
            let r = server.http.get(&etcd_health).send().await.ok()?;
            let v: Value = r.json().await.ok()?;
            (v["health"] == "true").then_some(true)
        })
        .await;
        if healthy != Some(true) {
            return Err(server.start_error("etcd", "etcd.log", "etcd did not report healthy"));
        }

        let mut api = Command::new(&bins.kube_apiserver);
        api.arg("--bind-address=127.0.0.1")
            .arg(format!("--secure-port={port}"))
            .arg("--insecure-port=0")
            .arg(format!("--etcd-servers={etcd_url}"))
            .arg(format!("--cert-dir={}", d.join("certs").display()))
            .arg(format!(
                "--tls-cert-file={}",
                pki.join("apiserver.crt").display()
            ))
            .arg(format!(
                "--tls-private-key-file={}",
                pki.join("apiserver.key").display()
            ))
            .arg(format!("--client-ca-file={}", pki.join("ca.crt").display()))
            .arg(format!(
                "--token-auth-file={}",
                pki.join("tokens.csv").display()
            ))
            .arg(format!(
                "--service-account-key-file={}",
                pki.join("sa.pub").display()
            ))
            .arg(format!(
                "--service-account-signing-key-file={}",
                pki.join("sa.key").display()
            ))
            .arg(format!("--service-account-issuer={SERVICE_ACCOUNT_ISSUER}"))
            .arg("--authorization-mode=Node,RBAC")
            .arg("--service-cluster-ip-range=10.96.0.0/24")
            .arg(
                "--enable-admission-plugins=NamespaceLifecycle,ServiceAccount,\
                 MutatingAdmissionWebhook,ValidatingAdmissionWebhook",
            )
            .arg("--profiling=false");
        *server
            .apiserver
            .get_mut()
            .unwrap_or_else(|p| p.into_inner()) = Some(spawn(&mut api, &d, "kube-apiserver.log")?);
        server.http = http_client_with_ca(&pki.join("ca.crt"))?;
        let readyz = format!("{}/readyz", server.url());
        let ready = poll(READY_TIMEOUT, || async {
            if !running(&server.apiserver) {
                return Some(false);
            }
            let r = server
                .http
                .get(&readyz)
                .bearer_auth(&server.admin_token)
                .send()
                .await
                .ok()?;
            let ok = r.status().is_success();
            let body = r.text().await.ok()?;
            (ok && body.trim() == "ok").then_some(true)
        })
        .await;
        if ready != Some(true) {
            return Err(server.start_error(
                "kube-apiserver",
                "kube-apiserver.log",
                "/readyz did not answer ok",
            ));
        }
        server.write_kubeconfig()?;
        server.ready_after = started.elapsed();
        Ok(server)
    }

    fn start_error(&self, what: &'static str, log: &str, detail: &str) -> Error {
        let log = self.dir.path().join(log);
        Error::Start {
            what,
            detail: format!("{detail} within {READY_TIMEOUT:?} (or the process exited)"),
            log: log.display().to_string(),
            tail: tail(&log, 30),
        }
    }

    fn write_kubeconfig(&self) -> Result<()> {
        let text = format!(
            "apiVersion: v1
kind: Config
clusters:
- name: keyward-test
  cluster:
    server: {url}
    certificate-authority: {ca}
users:
- name: keyward-admin
  user:
    client-certificate: {cert}
    client-key: {key}
contexts:
- name: keyward-test
  context:
    cluster: keyward-test
    user: keyward-admin
current-context: keyward-test
",
            url = self.url(),
            ca = self.ca_file().display(),
            cert = self.pki("admin.crt").display(),
            key = self.pki("admin.key").display(),
        );
        std::fs::write(self.kubeconfig_path(), text).map_err(io("writing the kubeconfig"))
    }

    fn pki(&self, name: &str) -> PathBuf {
        self.dir.path().join("pki").join(name)
    }

    /// `https://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("https://{}:{}", Ipv4Addr::LOCALHOST, self.port)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The CA that signed the serving and client certificates.
    pub fn ca_file(&self) -> PathBuf {
        self.pki("ca.crt")
    }

    /// The CA certificate, PEM.
    pub fn ca_pem(&self) -> String {
        std::fs::read_to_string(self.ca_file()).unwrap_or_default()
    }

    /// A kubeconfig for the admin (client certificate in
    /// `system:masters`); point `KUBECONFIG` at it.
    pub fn kubeconfig_path(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }

    /// A bearer token for a user in `system:masters`.
    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }

    /// A scratch directory that lives as long as the server.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The kube-apiserver's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("kube-apiserver.log")).unwrap_or_default()
    }

    /// How long the start took, PKI and etcd included, until `/readyz`
    /// said `ok`.
    pub fn ready_after(&self) -> Duration {
        self.ready_after
    }

    /// An API call as the admin: `method` on `path` (e.g.
    /// `/api/v1/namespaces`), JSON in and out.
    pub async fn api(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value> {
        let api_err = |detail: String| Error::Api {
            method: method.into(),
            path: path.into(),
            detail,
        };
        let method_v = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|_| api_err("bad method".into()))?;
        let mut req = self
            .http
            .request(method_v, format!("{}{path}", self.url()))
            .bearer_auth(&self.admin_token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.map_err(|e| api_err(e.to_string()))?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| api_err(e.to_string()))?;
        if !status.is_success() {
            // Status objects carry no secrets (tokens come back only in
            // successful TokenRequests).
            return Err(api_err(format!(
                "HTTP {status}: {}",
                String::from_utf8_lossy(&bytes)
            )));
        }
        serde_json::from_slice(&bytes).map_err(|e| api_err(format!("not JSON: {e}")))
    }

    /// Create a namespace.
    pub async fn create_namespace(&self, name: &str) -> Result<()> {
        self.api(
            "POST",
            "/api/v1/namespaces",
            Some(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})),
        )
        .await
        .map(|_| ())
    }

    /// Create a ServiceAccount (`automountServiceAccountToken: false`).
    pub async fn create_service_account(&self, namespace: &str, name: &str) -> Result<()> {
        self.api(
            "POST",
            &format!("/api/v1/namespaces/{namespace}/serviceaccounts"),
            Some(json!({
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": name, "namespace": namespace},
                "automountServiceAccountToken": false,
            })),
        )
        .await
        .map(|_| ())
    }

    /// Bind a ClusterRole to a ServiceAccount cluster-wide.
    pub async fn bind_cluster_role(
        &self,
        binding: &str,
        cluster_role: &str,
        namespace: &str,
        service_account: &str,
    ) -> Result<()> {
        self.api(
            "POST",
            "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
            Some(json!({
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": {"name": binding},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": cluster_role,
                },
                "subjects": [{
                    "kind": "ServiceAccount",
                    "name": service_account,
                    "namespace": namespace,
                }],
            })),
        )
        .await
        .map(|_| ())
    }

    /// A token for a ServiceAccount from the TokenRequest API, valid for
    /// an hour, for `audiences` (the API server's own audience, its
    /// issuer, when empty).
    pub async fn service_account_token(
        &self,
        namespace: &str,
        service_account: &str,
        audiences: &[&str],
    ) -> Result<String> {
        let path =
            format!("/api/v1/namespaces/{namespace}/serviceaccounts/{service_account}/token");
        let mut spec = json!({ "expirationSeconds": 3600 });
        if !audiences.is_empty() {
            spec["audiences"] = json!(audiences);
        }
        let out = self
            .api(
                "POST",
                &path,
                Some(json!({
                    "apiVersion": "authentication.k8s.io/v1",
                    "kind": "TokenRequest",
                    "spec": spec,
                })),
            )
            .await?;
        out["status"]["token"]
            .as_str()
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .ok_or_else(|| Error::Api {
                method: "POST".into(),
                path,
                detail: "no status.token in the answer".into(),
            })
    }

    /// A token for a token reviewer (what Vault/OpenBao's `kubernetes`
    /// auth method calls the TokenReview API with): a ServiceAccount
    /// `keyward-token-reviewer` in `namespace`, bound to the ClusterRole
    /// `system:auth-delegator`.
    pub async fn token_reviewer_token(&self, namespace: &str) -> Result<String> {
        let sa = "keyward-token-reviewer";
        self.create_service_account(namespace, sa).await?;
        self.bind_cluster_role(
            &format!("keyward-token-reviewer-{namespace}"),
            "system:auth-delegator",
            namespace,
            sa,
        )
        .await?;
        self.service_account_token(namespace, sa, &[]).await
    }

    /// Stop both processes (SIGKILL) and wait for them. Idempotent.
    pub fn kill(&mut self) {
        for slot in [&self.apiserver, &self.etcd] {
            let child = slot.lock().unwrap_or_else(|p| p.into_inner()).take();
            if let Some(mut child) = child {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

impl std::fmt::Debug for KubeApiServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeApiServer")
            .field("url", &self.url())
            .field("dir", &self.dir.path())
            .field("admin_token", &"<redacted>")
            .field("ready_after", &self.ready_after)
            .finish_non_exhaustive()
    }
}

impl Drop for KubeApiServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Is the process running?
fn running(child: &Mutex<Option<Child>>) -> bool {
    let mut child = child.lock().unwrap_or_else(|p| p.into_inner());
    match child.as_mut() {
        Some(c) => matches!(c.try_wait(), Ok(None)),
        None => false,
    }
}

fn spawn(cmd: &mut Command, dir: &Path, log_name: &str) -> Result<Child> {
    let log_path = dir.join(log_name);
    let log = File::options()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(io(format!("opening {}", log_path.display())))?;
    let log2 = log
        .try_clone()
        .map_err(io(format!("opening {}", log_path.display())))?;
    cmd.current_dir(dir)
        .env_remove("KUBECONFIG")
        .env_remove("ETCDCTL_API")
        .stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(log2))
        .spawn()
        .map_err(io(format!("starting {:?}", cmd.get_program())))
}

/// CA, serving certificate (127.0.0.1, localhost), admin client
/// certificate (`O=system:masters`) and the service-account key pair, with
/// openssl, in `pki`.
fn make_pki(pki: &Path) -> Result<()> {
    let openssl = |args: &[&str]| -> Result<()> {
        run(Command::new("openssl").current_dir(pki).args(args))
            .map(|_| ())
            .map_err(|e| match e {
                Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                    Error::Missing {
                        what: "openssl (to make the kube-apiserver's certificates)",
                        detail: "openssl is not on PATH".into(),
                        install: "apt-get install -y openssl".into(),
                    }
                }
                other => other,
            })
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509", "-days", "2", "-subj", "/CN=keyward-test-ca"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    openssl(&ca)?;
    for (name, subject, ext) in [
        (
            "apiserver",
            "/CN=kube-apiserver",
            "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n\
             extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n",
        ),
        (
            "admin",
            "/O=system:masters/CN=keyward-admin",
            "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n\
             extendedKeyUsage=clientAuth\n",
        ),
    ] {
        let ext_file = format!("{name}.ext");
        std::fs::write(pki.join(&ext_file), ext).map_err(io("writing a certificate profile"))?;
        let key = format!("{name}.key");
        let csr = format!("{name}.csr");
        let crt = format!("{name}.crt");
        let mut req = vec!["req", "-new", "-subj", subject];
        req.extend(ec);
        req.extend(["-keyout", &key, "-out", &csr]);
        openssl(&req)?;
        openssl(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &ext_file,
            "-out",
            &crt,
        ])?;
    }
    openssl(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
        "-out",
        "sa.key",
    ])?;
    openssl(&["pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub"])
}
