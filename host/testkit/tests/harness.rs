//! The harnesses themselves: ports, restarts, persistence, PostgreSQL.

use std::process::Command;

use keyward_testkit::{OpenBao, Postgres, ensure_postgres, unique_mount};
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
