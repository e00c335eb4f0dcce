//! Secrets engines through `VaultSource` and `Vault`.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use keyward_core::{Engine, Grant, MemoryAudit, MountTable, RefKind, SecretRef, SecretSource};
use keyward_testkit::{OpenBao, Postgres, unique_mount};
use keyward_vault::{Ciphertext, Error, VaultSource, pem_validity};
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn kv_v1_and_v2_with_version_pinning_and_metadata() {
    let bao = OpenBao::start_dev().await.unwrap();
    let v1 = unique_mount("kv1");
    let v2 = unique_mount("kv2");
    bao.enable_secrets("kv-v1", &v1).await.unwrap();
    bao.enable_secrets("kv-v2", &v2).await.unwrap();
    bao.write(
        &format!("{v1}/app"),
        json!({"user": "u1", "password": "p1"}),
    )
    .await
    .unwrap();
    for (i, password) in ["first", "second", "third"].iter().enumerate() {
        let out = bao
            .write(
                &format!("{v2}/data/app"),
                json!({"data": {"password": password}, "options": {}}),
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(out["data"]["version"], i + 1);
    }
    bao.write(&format!("{v2}/delete/app"), json!({"versions": [1]}))
        .await
        .unwrap();
    let mounts = MountTable::new()
        .with(&v1, Engine::Kv1)
        .with(&v2, Engine::Kv2);
    let vault = token_client(&bao, bao.root_token(), None).await;
    let source = VaultSource::new(vault.clone());
    let grant = Grant::default();

    // KV v1: `data` is exactly the secret.
    let r = SecretRef::read(format!("{v1}/app"));
    let got = fetch(&source, &mounts, &r, &grant).await.unwrap();
    assert_eq!(got.data.expose(), &json!({"user": "u1", "password": "p1"}));
    assert!(got.lease_id.is_empty());
    assert!(got.lease_duration > 0, "KV v1 reports its refresh TTL");

    // KV v2 latest: `data` holds `data` and `metadata` as Vault sent them.
    let r = SecretRef::read(format!("{v2}/data/app"));
    let got = fetch(&source, &mounts, &r, &grant).await.unwrap();
    let data = got.data.expose();
    assert_eq!(data["data"], json!({"password": "third"}));
    assert_eq!(data["metadata"]["version"], 3);
    assert!(data["metadata"]["created_time"].is_string());
    assert_eq!(got.reference, format!("{v2}/data/app"));

    // Pinned version.
    let r = SecretRef::read(format!("{v2}/data/app?version=2"));
    let got = fetch(&source, &mounts, &r, &grant).await.unwrap();
    assert_eq!(got.data.expose()["data"]["password"], "second");
    assert_eq!(got.data.expose()["metadata"]["version"], 2);
    // Same with the typed call.
    let got = vault.kv2_read(&v2, "app", Some(2)).await.unwrap();
    assert_eq!(got.data.expose()["data"]["password"], "second");

    // A deleted version and a missing path are "not found".
    let r = SecretRef::read(format!("{v2}/data/app?version=1"));
    match fetch(&source, &mounts, &r, &grant).await {
        Err(Error::NotFound { path, .. }) => assert_eq!(path, format!("{v2}/data/app")),
        other => panic!("expected not found, got {other:?}"),
    }
    let r = SecretRef::read(format!("{v2}/data/missing"));
    assert!(matches!(
        fetch(&source, &mounts, &r, &grant).await,
        Err(Error::NotFound { .. })
    ));
    let r = SecretRef::read(format!("{v1}/missing"));
    assert!(matches!(
        fetch(&source, &mounts, &r, &grant).await,
        Err(Error::NotFound { .. })
    ));

    // Through the SecretSource trait, errors stay typed behind the box.
    let r = SecretRef::read(format!("{v2}/data/missing"));
    let mut req = mounts.classify(&r, &[]).unwrap();
    req.reference = r.key();
    let boxed = SecretSource::fetch(&source, &r, &req, &grant)
        .await
        .unwrap_err();
    assert!(matches!(
        boxed.downcast_ref::<Error>(),
        Some(Error::NotFound { .. })
    ));
}

#[tokio::test]
async fn permission_denied_names_the_path() {
    let bao = OpenBao::start_dev().await.unwrap();
    let kv = unique_mount("kv");
    bao.enable_secrets("kv-v2", &kv).await.unwrap();
    bao.write(&format!("{kv}/data/open"), json!({"data": {"a": "1"}}))
        .await
        .unwrap();
    bao.write(&format!("{kv}/data/closed"), json!({"data": {"a": "2"}}))
        .await
        .unwrap();
    bao.put_policy(
        "open-only",
        &format!("path \"{kv}/data/open\" {{ capabilities = [\"read\"] }}"),
    )
    .await
    .unwrap();
    let token = bao.create_token(&["open-only"], "1h", None).await.unwrap();
    let vault = token_client(&bao, &token, None).await;
    let source = VaultSource::new(vault);
    let mounts = mounts(&kv, Engine::Kv2);
    let open = fetch(
        &source,
        &mounts,
        &SecretRef::read(format!("{kv}/data/open")),
        &Grant::default(),
    )
    .await;
    assert_eq!(open.unwrap().data.expose()["data"]["a"], "1");
    match fetch(
        &source,
        &mounts,
        &SecretRef::read(format!("{kv}/data/closed")),
        &Grant::default(),
    )
    .await
    {
        Err(Error::PermissionDenied { path, .. }) => assert_eq!(path, format!("{kv}/data/closed")),
        other => panic!("expected permission denied, got {other:?}"),
    }
}

/// A PKI mount with a root CA and a role `web` for `*.example.test`.
async fn pki(bao: &OpenBao) -> String {
    let pki = unique_mount("pki");
    bao.enable_secrets("pki", &pki).await.unwrap();
    bao.write(
        &format!("sys/mounts/{pki}/tune"),
        json!({"max_lease_ttl": "87600h"}),
    )
    .await
    .unwrap();
    bao.write(
        &format!("{pki}/root/generate/internal"),
        json!({"common_name": "Keyward Test Root", "ttl": "8760h", "key_type": "ec"}),
    )
    .await
    .unwrap();
    bao.write(
        &format!("{pki}/roles/web"),
        json!({"allowed_domains": ["example.test"], "allow_subdomains": true, "max_ttl": "72h", "key_type": "ec", "not_before_duration": "1s"}),
    )
    .await
    .unwrap();
    pki
}

#[tokio::test]
async fn pki_issue_caps_the_ttl_at_the_grant() {
    let bao = OpenBao::start_dev().await.unwrap();
    let pki = pki(&bao).await;
    let vault = token_client(&bao, bao.root_token(), None).await;
    let source = VaultSource::new(vault.clone());
    let mounts = mounts(&pki, Engine::Pki);
    let r = with_params(
        &format!("{pki}/issue/web"),
        &[("common_name", "api.example.test"), ("ttl", "48h")],
    );

    // Asked 48 h, granted 1 h at most.
    let capped = Grant {
        max_ttl_seconds: Some(3600),
        ..Grant::default()
    };
    let got = fetch(&source, &mounts, &r, &capped).await.unwrap();
    let data = got.data.expose();
    for key in ["certificate", "private_key", "issuing_ca", "serial_number"] {
        assert!(data[key].is_string(), "no {key}");
    }
    assert!(
        data["ca_chain"].as_array().is_some_and(|c| !c.is_empty()),
        "no ca_chain"
    );
    let validity = pem_validity(data["certificate"].as_str().unwrap()).unwrap();
    let left = validity
        .not_after
        .duration_since(SystemTime::now())
        .unwrap();
    assert!(
        left <= Duration::from_secs(3600) && left > Duration::from_secs(3500),
        "{left:?}"
    );

    // Without a cap the asked TTL stands.
    let got = fetch(&source, &mounts, &r, &Grant::default())
        .await
        .unwrap();
    let validity = pem_validity(got.data.expose()["certificate"].as_str().unwrap()).unwrap();
    let left = validity
        .not_after
        .duration_since(SystemTime::now())
        .unwrap();
    assert!(left > Duration::from_secs(47 * 3600), "{left:?}");

    // A pkiCert reference (template function) issues too, capped.
    let cert_ref = SecretRef {
        kind: RefKind::PkiCert,
        ..with_params(
            &format!("{pki}/issue/web"),
            &[("common_name", "b.example.test")],
        )
    };
    let got = fetch(
        &source,
        &mounts,
        &cert_ref,
        &Grant {
            max_ttl_seconds: Some(600),
            ..Grant::default()
        },
    )
    .await
    .unwrap();
    let validity = pem_validity(got.data.expose()["certificate"].as_str().unwrap()).unwrap();
    assert!(
        validity
            .not_after
            .duration_since(SystemTime::now())
            .unwrap()
            <= Duration::from_secs(600)
    );

    // The typed call, and a name the role refuses.
    let got = vault
        .pki_issue(
            &pki,
            "web",
            &[("common_name".into(), "c.example.test".into())],
            Some(Duration::from_secs(120)),
        )
        .await
        .unwrap();
    assert!(
        got.data.expose()["certificate"]
            .as_str()
            .unwrap()
            .contains("BEGIN CERTIFICATE")
    );
    let refused = vault
        .pki_issue(
            &pki,
            "web",
            &[("common_name".into(), "evil.example.org".into())],
            None,
        )
        .await;
    assert!(
        matches!(refused, Err(Error::Api { status: 400, .. })),
        "{refused:?}"
    );
}

#[tokio::test]
async fn transit_roundtrip_and_generic_write() {
    let bao = OpenBao::start_dev().await.unwrap();
    let transit = unique_mount("transit");
    bao.enable_secrets("transit", &transit).await.unwrap();
    bao.write(&format!("{transit}/keys/app"), json!({}))
        .await
        .unwrap();
    let audit = Arc::new(MemoryAudit::default());
    let vault = token_client(&bao, bao.root_token(), Some(audit)).await;
    let plaintext = canary();

    // Typed calls.
    let ct = vault
        .transit_encrypt(&transit, "app", plaintext.as_bytes())
        .await
        .unwrap();
    assert!(ct.0.starts_with("vault:v1:"), "{}", ct.0);
    assert!(!ct.0.contains(&plaintext));
    let back = vault.transit_decrypt(&transit, "app", &ct).await.unwrap();
    assert_eq!(back.expose(), plaintext.as_bytes());
    assert!(!format!("{back:?}").contains(&plaintext));
    let bad = vault
        .transit_decrypt(&transit, "app", &Ciphertext("vault:v1:AAAA".into()))
        .await;
    assert!(
        matches!(bad, Err(Error::Api { status: 400, .. })),
        "{bad:?}"
    );

    // Through the source: a transit write with parameters.
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(plaintext.as_bytes());
    let source = VaultSource::new(vault.clone());
    let mounts = mounts(&transit, Engine::Transit);
    let enc = fetch(
        &source,
        &mounts,
        &with_params(&format!("{transit}/encrypt/app"), &[("plaintext", &b64)]),
        &Grant::default(),
    )
    .await
    .unwrap();
    let ciphertext = enc.data.expose()["ciphertext"]
        .as_str()
        .unwrap()
        .to_string();
    let dec = fetch(
        &source,
        &mounts,
        &with_params(
            &format!("{transit}/decrypt/app"),
            &[("ciphertext", &ciphertext)],
        ),
        &Grant::default(),
    )
    .await
    .unwrap();
    assert_eq!(dec.data.expose()["plaintext"], b64);

    // Generic write and read back, on a KV v1 mount used as a plain path.
    let kv = unique_mount("plain");
    bao.enable_secrets("kv-v1", &kv).await.unwrap();
    let answer = vault
        .write(&format!("{kv}/written"), &json!({"k": "v", "n": 3}))
        .await
        .unwrap();
    assert!(answer.is_none(), "KV v1 writes answer 204");
    let read = vault.read(&format!("{kv}/written"), &[]).await.unwrap();
    assert_eq!(read.data.expose(), &json!({"k": "v", "n": 3}));

    // A generic write with parameters through the source (random bytes).
    let generic = MountTable::new();
    let random = fetch(
        &source,
        &generic,
        &with_params("sys/tools/random/16", &[("format", "hex")]),
        &Grant::default(),
    )
    .await
    .unwrap();
    assert_eq!(
        random.data.expose()["random_bytes"].as_str().unwrap().len(),
        32
    );
}

#[tokio::test]
async fn database_credentials_log_in_to_postgres() {
    let (bao, pg) = tokio::join!(OpenBao::start_dev(), Postgres::start());
    let (bao, pg) = (bao.unwrap(), pg.unwrap());
    let db = database_engine(&bao, &pg, "1h", "2h").await;
    let vault = token_client(&bao, bao.root_token(), None).await;
    let source = VaultSource::new(vault.clone());
    let got = fetch(
        &source,
        &mounts(&db, Engine::Database),
        &SecretRef::read(format!("{db}/creds/app")),
        &Grant::default(),
    )
    .await
    .unwrap();
    assert!(got.lease_id.starts_with(&format!("{db}/creds/app/")));
    assert_eq!(got.lease_duration, 3600);
    assert!(got.renewable);
    pg_login(&pg, &got).await.unwrap();
    let password = got.data.expose()["password"].as_str().unwrap().to_string();
    assert_clean(
        "SecretValue Debug",
        &format!("{got:?}"),
        &[&password, &got.lease_id],
    );

    // Revoked: the credentials stop working.
    vault.revoke_lease(&got.lease_id).await.unwrap();
    let after = pg_login(&pg, &got).await;
    assert!(after.is_err(), "credentials still work after revocation");

    // A wrong database path is refused before any call.
    let bad = fetch(
        &source,
        &mounts(&db, Engine::Database),
        &SecretRef::read(format!("{db}/config/pg")),
        &Grant::default(),
    )
    .await;
    assert!(matches!(bad, Err(Error::InvalidRequest { .. })), "{bad:?}");
}

#[tokio::test]
async fn namespace_header_scopes_logins_and_reads() {
    let bao = OpenBao::start_dev().await.unwrap();
    let ns = unique_mount("team");
    bao.write(&format!("sys/namespaces/{ns}"), json!({}))
        .await
        .unwrap();
    bao.api_in(
        &ns,
        "POST",
        "sys/mounts/kv",
        Some(json!({"type": "kv", "options": {"version": "1"}})),
    )
    .await
    .unwrap();
    bao.api_in(&ns, "POST", "kv/app", Some(json!({"where": "inside"})))
        .await
        .unwrap();
    let token_file = write_file(bao.dir(), "root", bao.root_token());
    let config = keyward_vault::VaultConfig {
        namespace: Some(ns.clone()),
        ..keyward_vault::VaultConfig::new(
            bao.addr(),
            keyward_vault::AuthConfig::Token {
                token_file: Some(token_file.clone()),
                token_env: None,
            },
        )
    };
    // Login (vaultrs) and the read (raw call) both carry the namespace.
    let inside = client(config, None).await;
    assert_eq!(
        inside.kv1_read("kv", "app").await.unwrap().data.expose()["where"],
        "inside"
    );
    let outside = token_client(&bao, bao.root_token(), None).await;
    assert!(matches!(
        outside.kv1_read("kv", "app").await,
        Err(Error::NotFound { .. })
    ));
}
