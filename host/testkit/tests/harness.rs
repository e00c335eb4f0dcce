//! The harnesses themselves: ports, restarts, persistence, PostgreSQL,
//! kube-apiserver.

use std::process::Command;

use keyward_testkit::{
    KubeApiServer, OpenBao, Postgres, ensure_kube_apiserver, ensure_postgres, unique_mount,
};
use serde_json::json;

#[test]
fn unique_mounts_differ() {
    let a = unique_mount("kv");
    let b = unique_mount("kv");
    assert_ne!(a, b);
    assert!(a.starts_with("kv-"));
}

#[tokio::test]
async fn dev_server_restarts_on_the_same_port_empty() {
    let mut bao = OpenBao::start_dev().await.unwrap();
    let (addr, token) = (bao.addr(), bao.root_token().to_string());
    let kv = unique_mount("kv");
    bao.enable_secrets("kv-v1", &kv).await.unwrap();
    bao.write(&format!("{kv}/x"), json!({"a": "b"}))
        .await
        .unwrap();
    bao.kill();
    assert!(!bao.running());
    assert!(bao.read(&format!("{kv}/x")).await.is_err());
    bao.restart().await.unwrap();
    assert_eq!((bao.addr(), bao.root_token()), (addr, token.as_str()));
    // A dev server keeps nothing.
    assert!(bao.read(&format!("{kv}/x")).await.is_err());
    bao.stop().await;
    assert!(!bao.running());
}

#[tokio::test]
async fn persistent_server_keeps_data_across_restarts() {
    let mut bao = OpenBao::start_persistent().await.unwrap();
    let addr = bao.addr();
    let kv = unique_mount("kv");
    bao.enable_secrets("kv-v2", &kv).await.unwrap();
    bao.write(&format!("{kv}/data/x"), json!({"data": {"a": "b"}}))
        .await
        .unwrap();
    bao.restart().await.unwrap();
    assert_eq!(bao.addr(), addr);
    let back = bao.read(&format!("{kv}/data/x")).await.unwrap().unwrap();
    assert_eq!(back["data"]["data"]["a"], "b");
}

#[tokio::test]
async fn postgres_accepts_the_superuser_over_tcp() {
    let pg = Postgres::start().await.unwrap();
    let bin = ensure_postgres().unwrap();
    let out = Command::new(bin.tool("psql"))
        .arg(pg.connection_url())
        .args(["-tAc", "SELECT 40 + 2"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "42");
    // A wrong password is refused (password authentication is on).
    let wrong = pg.connection_url().replace(pg.password(), "wrong");
    let out = Command::new(bin.tool("psql"))
        .arg(wrong)
        .args(["-tAc", "SELECT 1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[tokio::test]
async fn kube_apiserver_issues_and_reviews_service_account_tokens() {
    let kube = KubeApiServer::start().await.unwrap();
    eprintln!("kube-apiserver ready after {:?}", kube.ready_after());
    assert!(kube.url().starts_with("https://127.0.0.1:"));
    assert!(kube.ca_pem().contains("BEGIN CERTIFICATE"));
    let kubeconfig = std::fs::read_to_string(kube.kubeconfig_path()).unwrap();
    assert!(kubeconfig.contains(&kube.url()), "{kubeconfig}");
    assert!(!format!("{kube:?}").contains(kube.admin_token()));
    let version = kube.api("GET", "/version", None).await.unwrap();
    assert_eq!(version["gitVersion"], "v1.20.2", "{version}");

    let ns = unique_mount("ns");
    kube.create_namespace(&ns).await.unwrap();
    kube.create_service_account(&ns, "app").await.unwrap();
    // Creating it twice is a conflict, reported as an API error.
    let again = kube.create_service_account(&ns, "app").await.unwrap_err();
    assert!(again.to_string().contains("409"), "{again}");
    let token = kube
        .service_account_token(&ns, "app", &["keyward-test"])
        .await
        .unwrap();
    let reviewer = kube.token_reviewer_token(&ns).await.unwrap();

    // The reviewer (system:auth-delegator) may review tokens; the
    // application's token is valid for its audience only.
    let http = reqwest_with_ca(&kube.ca_file());
    let review = |audience: &'static str| {
        let (http, url, reviewer, token) = (&http, kube.url(), &reviewer, &token);
        async move {
            let r = http
                .post(format!("{url}/apis/authentication.k8s.io/v1/tokenreviews"))
                .bearer_auth(reviewer)
                .json(&json!({
                    "apiVersion": "authentication.k8s.io/v1",
                    "kind": "TokenReview",
                    "spec": {"token": token, "audiences": [audience]},
                }))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201);
            r.json::<serde_json::Value>().await.unwrap()
        }
    };
    let ok = review("keyward-test").await;
    assert_eq!(ok["status"]["authenticated"], true, "{ok}");
    assert_eq!(
        ok["status"]["user"]["username"],
        format!("system:serviceaccount:{ns}:app")
    );
    let wrong = review("someone-else").await;
    assert_ne!(wrong["status"]["authenticated"], true, "{wrong}");
}

#[test]
fn kube_apiserver_build_is_reused() {
    let first = ensure_kube_apiserver().unwrap();
    let started = std::time::Instant::now();
    let again = ensure_kube_apiserver().unwrap();
    let took = started.elapsed();
    eprintln!("a warm ensure_kube_apiserver took {took:?}");
    assert_eq!(first, again);
    assert!(took < std::time::Duration::from_millis(500), "{took:?}");
    let out = Command::new(&again.kube_apiserver)
        .arg("--version")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "Kubernetes v1.20.2"
    );
}

fn reqwest_with_ca(ca: &std::path::Path) -> reqwest::Client {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .build()
        .unwrap()
}
