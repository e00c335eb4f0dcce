//! Auth methods, token lifecycle and TLS.

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use keyward_core::Engine;
use keyward_testkit::{KubeApiServer, OpenBao, unique_mount};
use keyward_vault::{
    AuthConfig, CancellationToken, Error, LeaseConfig, LeaseEvent, Leases, TlsConfig, Vault,
    VaultConfig, VaultSource,
};
use serde_json::json;

use crate::common::*;

/// A KV v2 mount with one secret and a policy `reader` that may read it.
async fn seed_kv(bao: &OpenBao, value: &str) -> String {
    let kv = unique_mount("kv");
    bao.enable_secrets("kv-v2", &kv).await.unwrap();
    bao.write(
        &format!("{kv}/data/app"),
        json!({"data": {"password": value}}),
    )
    .await
    .unwrap();
    bao.put_policy(
        "reader",
        &format!("path \"{kv}/data/*\" {{ capabilities = [\"read\"] }}"),
    )
    .await
    .unwrap();
    kv
}

async fn read_app(vault: &Vault, kv: &str) -> keyward_vault::Result<String> {
    let v = vault.kv2_read(kv, "app", None).await?;
    Ok(v.data.expose()["data"]["password"]
        .as_str()
        .unwrap()
        .to_string())
}

#[tokio::test]
async fn token_auth_reads_and_reports_bad_tokens() {
    let bao = OpenBao::start_dev().await.unwrap();
    let secret = canary();
    let kv = seed_kv(&bao, &secret).await;
    let token = bao.create_token(&["reader"], "1h", None).await.unwrap();
    let vault = token_client(&bao, &token, None).await;
    let info = vault.token_info().unwrap();
    assert_eq!(info.method, "token");
    assert!(info.policies.contains(&"reader".to_string()), "{info:?}");
    assert!(info.ttl.unwrap() > Duration::from_secs(3000));
    assert_eq!(read_app(&vault, &kv).await.unwrap(), secret);

    // A token variable that is not set is a login error naming it
    // (setting variables in a threaded test process is unsound).
    let var = format!("KEYWARD_TEST_TOKEN_{}", std::process::id());
    let env_vault = Vault::new(
        VaultConfig::new(
            bao.addr(),
            AuthConfig::Token {
                token_file: None,
                token_env: Some(var.clone()),
            },
        ),
        keyward_core::Auditor::null(),
    )
    .unwrap();
    match env_vault.login().await {
        Err(Error::Login {
            method: "token",
            detail,
            ..
        }) => assert!(detail.contains(&var), "{detail}"),
        other => panic!("expected a login error, got {other:?}"),
    }

    // A bogus token fails at login, without showing the token.
    let bogus = format!("s.{}", unique_mount("bogus").replace('-', ""));
    let file = write_file(bao.dir(), "bogus-token", &bogus);
    let bad = Vault::new(
        VaultConfig::new(
            bao.addr(),
            AuthConfig::Token {
                token_file: Some(file),
                token_env: None,
            },
        ),
        keyward_core::Auditor::null(),
    )
    .unwrap();
    let err = bad.login().await.unwrap_err();
    assert!(matches!(err, Error::Login { .. }), "{err:?}");
    assert_clean(
        "login error",
        &format!("{err} {err:?}"),
        &[&bogus, &token, &secret],
    );
    assert_clean("client Debug", &format!("{vault:?}"), &[&token, &secret]);
}

#[tokio::test]
async fn approle_login_and_wrong_secret_id() {
    let bao = OpenBao::start_dev().await.unwrap();
    let secret = canary();
    let kv = seed_kv(&bao, &secret).await;
    let mount = unique_mount("approle");
    bao.enable_auth("approle", &mount).await.unwrap();
    bao.write(
        &format!("auth/{mount}/role/app"),
        json!({"token_policies": ["reader"], "token_ttl": "10m", "token_max_ttl": "1h"}),
    )
    .await
    .unwrap();
    let role_id = bao
        .read(&format!("auth/{mount}/role/app/role-id"))
        .await
        .unwrap()
        .unwrap()["data"]["role_id"]
        .as_str()
        .unwrap()
        .to_string();
    let secret_id = bao
        .write(&format!("auth/{mount}/role/app/secret-id"), json!({}))
        .await
        .unwrap()
        .unwrap()["data"]["secret_id"]
        .as_str()
        .unwrap()
        .to_string();
    let sid_file = write_file(bao.dir(), "secret-id", &secret_id);
    let role_file = write_file(bao.dir(), "role-id", &role_id);
    let config = VaultConfig::new(
        bao.addr(),
        AuthConfig::Approle {
            role_id: None,
            role_id_file: Some(role_file),
            secret_id_file: Some(sid_file),
            mount: mount.clone(),
        },
    );
    let vault = client(config, None).await;
    let info = vault.token_info().unwrap();
    assert_eq!(info.method, "approle");
    assert!(info.renewable);
    assert!(info.ttl.unwrap() <= Duration::from_secs(600));
    assert_eq!(read_app(&vault, &kv).await.unwrap(), secret);

    // A wrong secret id is a login error naming the mount, not the id.
    let wrong = uuid_like();
    let wrong_file = write_file(bao.dir(), "wrong-secret-id", &wrong);
    let bad = Vault::new(
        VaultConfig::new(
            bao.addr(),
            AuthConfig::Approle {
                role_id: Some(role_id.clone()),
                role_id_file: None,
                secret_id_file: Some(wrong_file),
                mount: mount.clone(),
            },
        ),
        keyward_core::Auditor::null(),
    )
    .unwrap();
    let err = bad.login().await.unwrap_err();
    match &err {
        Error::Login {
            method: "approle",
            mount: m,
            ..
        } => assert_eq!(m, &mount),
        other => panic!("expected a login error, got {other:?}"),
    }
    assert_clean(
        "login error",
        &format!("{err} {err:?}"),
        &[&wrong, &secret_id, &secret],
    );
    assert_clean(
        "client Debug",
        &format!("{vault:?}"),
        &[&secret_id, &secret],
    );

    // A missing secret-id file is named.
    let missing = Vault::new(
        VaultConfig::new(
            bao.addr(),
            AuthConfig::Approle {
                role_id: Some(role_id),
                role_id_file: None,
                secret_id_file: Some(bao.dir().join("nope")),
                mount,
            },
        ),
        keyward_core::Auditor::null(),
    )
    .unwrap();
    assert!(matches!(
        missing.login().await,
        Err(Error::ReadFile {
            what: "secret id",
            ..
        })
    ));
}

fn uuid_like() -> String {
    let hex = unique_mount("x").replace('-', "");
    let hex: String = hex
        .chars()
        .filter(|c| c.is_ascii_hexdigit())
        .chain(std::iter::repeat('0'))
        .take(32)
        .collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// An EC P-256 key pair: (PKCS#8 DER private key, SPKI PEM public key).
fn es256_key() -> (Vec<u8>, String) {
    use ring::rand::SystemRandom;
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let pair =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    // SubjectPublicKeyInfo for id-ecPublicKey / prime256v1, then the point.
    let mut spki = vec![
        0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08,
        0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
    ];
    spki.extend_from_slice(pair.public_key().as_ref());
    let b64 = base64::engine::general_purpose::STANDARD.encode(&spki);
    let mut pem = String::from("-----BEGIN PUBLIC KEY-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(chunk).unwrap());
        pem.push('\n');
    }
    pem.push_str("-----END PUBLIC KEY-----\n");
    (pkcs8.as_ref().to_vec(), pem)
}

fn sign_jwt(key: &[u8], sub: &str, aud: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = json!({
        "iss": "https://issuer.keyward.test",
        "sub": sub,
        "aud": aud,
        "iat": now,
        "nbf": now - 5,
        "exp": now + 300,
    });
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256),
        &claims,
        &jsonwebtoken::EncodingKey::from_ec_der(key),
    )
    .unwrap()
}

#[tokio::test]
async fn jwt_login_with_locally_signed_tokens() {
    let bao = OpenBao::start_dev().await.unwrap();
    let secret = canary();
    let kv = seed_kv(&bao, &secret).await;
    let (key, public_pem) = es256_key();
    let mount = unique_mount("jwt");
    bao.enable_auth("jwt", &mount).await.unwrap();
    bao.write(
        &format!("auth/{mount}/config"),
        json!({"jwt_validation_pubkeys": [public_pem], "bound_issuer": "https://issuer.keyward.test"}),
    )
    .await
    .unwrap();
    bao.write(
        &format!("auth/{mount}/role/ci"),
        json!({
            "role_type": "jwt",
            "bound_audiences": ["keyward"],
            "user_claim": "sub",
            "bound_subject": "pipeline-7",
            "token_policies": ["reader"],
            "token_ttl": "5m",
        }),
    )
    .await
    .unwrap();
    let jwt = sign_jwt(&key, "pipeline-7", "keyward");
    let jwt_file = write_file(bao.dir(), "jwt", &jwt);
    let vault = client(
        VaultConfig::new(
            bao.addr(),
            AuthConfig::Jwt {
                role: "ci".into(),
                jwt_file: jwt_file.clone(),
                mount: mount.clone(),
            },
        ),
        None,
    )
    .await;
    assert_eq!(vault.token_info().unwrap().method, "jwt");
    assert_eq!(read_app(&vault, &kv).await.unwrap(), secret);

    // Wrong audience, and a token signed by another key: login errors.
    for (name, bad_jwt) in [
        ("audience", sign_jwt(&key, "pipeline-7", "someone-else")),
        ("key", sign_jwt(&es256_key().0, "pipeline-7", "keyward")),
    ] {
        let f = write_file(bao.dir(), &format!("bad-{name}"), &bad_jwt);
        let bad = Vault::new(
            VaultConfig::new(
                bao.addr(),
                AuthConfig::Jwt {
                    role: "ci".into(),
                    jwt_file: f,
                    mount: mount.clone(),
                },
            ),
            keyward_core::Auditor::null(),
        )
        .unwrap();
        let err = bad.login().await.unwrap_err();
        assert!(
            matches!(err, Error::Login { method: "jwt", .. }),
            "{name}: {err:?}"
        );
        assert_clean(
            "login error",
            &format!("{err} {err:?}"),
            &[&bad_jwt, &jwt, &secret],
        );
    }
    assert_clean("client Debug", &format!("{vault:?}"), &[&jwt, &secret]);
}

/// A `kubernetes` auth config logging in as `role` at `mount` with the
/// token in `jwt_file`.
fn kubernetes_config(bao: &OpenBao, role: &str, mount: &str, jwt_file: PathBuf) -> VaultConfig {
    VaultConfig::new(
        bao.addr(),
        AuthConfig::Kubernetes {
            role: role.into(),
            jwt_file,
            mount: mount.into(),
        },
    )
}

#[tokio::test]
async fn kubernetes_login_through_a_real_token_review() {
    let started = std::time::Instant::now();
    let (bao, kube) = tokio::join!(OpenBao::start_dev(), KubeApiServer::start());
    let (bao, kube) = (bao.unwrap(), kube.unwrap());
    eprintln!(
        "openbao + kube-apiserver ready after {:?} (kube-apiserver alone: {:?})",
        started.elapsed(),
        kube.ready_after()
    );
    let secret = canary();
    let kv = seed_kv(&bao, &secret).await;

    // The workload's namespace and service account, a second account the
    // role does not name, and a token reviewer for OpenBao.
    let ns = unique_mount("app");
    kube.create_namespace(&ns).await.unwrap();
    for sa in ["app", "intruder"] {
        kube.create_service_account(&ns, sa).await.unwrap();
    }
    // A token whose claims match the role, but whose account is deleted
    // and re-created (new UID) right away: only the API server's
    // TokenReview can tell. Done first, so that its service-account cache
    // has caught up when the token is tried (a successful review would be
    // cached for 10 s).
    let stale = kube
        .service_account_token(&ns, "app", &["keyward-test"])
        .await
        .unwrap();
    let sa_path = format!("/api/v1/namespaces/{ns}/serviceaccounts/app");
    kube.api("DELETE", &sa_path, None).await.unwrap();
    kube.create_service_account(&ns, "app").await.unwrap();
    let reviewer = kube.token_reviewer_token(&ns).await.unwrap();

    let mount = unique_mount("kubernetes");
    bao.enable_auth("kubernetes", &mount).await.unwrap();
    bao.write(
        &format!("auth/{mount}/config"),
        json!({
            "kubernetes_host": kube.url(),
            "kubernetes_ca_cert": kube.ca_pem(),
            "token_reviewer_jwt": reviewer,
            "disable_local_ca_jwt": true,
        }),
    )
    .await
    .unwrap();
    bao.write(
        &format!("auth/{mount}/role/app"),
        json!({
            "bound_service_account_names": ["app"],
            "bound_service_account_namespaces": [ns],
            "audience": "keyward-test",
            "token_policies": ["reader"],
            "token_ttl": "10m",
        }),
    )
    .await
    .unwrap();

    let jwt = kube
        .service_account_token(&ns, "app", &["keyward-test"])
        .await
        .unwrap();
    let jwt_file = write_file(bao.dir(), "sa-token", &jwt);
    let vault = client(kubernetes_config(&bao, "app", &mount, jwt_file), None).await;
    let info = vault.token_info().unwrap();
    assert_eq!(info.method, "kubernetes");
    assert!(info.policies.contains(&"reader".to_string()), "{info:?}");
    assert!(info.ttl.unwrap() <= Duration::from_secs(600), "{info:?}");
    assert_eq!(read_app(&vault, &kv).await.unwrap(), secret);

    // Another service account of the same namespace, and the right one
    // with a token for another audience: both refused at login, as
    // kubernetes login errors that show neither token nor secret.
    let intruder = kube
        .service_account_token(&ns, "intruder", &["keyward-test"])
        .await
        .unwrap();
    let elsewhere = kube
        .service_account_token(&ns, "app", &["someone-else"])
        .await
        .unwrap();
    let bad_login = |bad_jwt: &str| {
        let f = write_file(bao.dir(), &unique_mount("bad-sa-token"), bad_jwt);
        let bad = Vault::new(
            kubernetes_config(&bao, "app", &mount, f),
            keyward_core::Auditor::null(),
        )
        .unwrap();
        async move { bad.login().await }
    };
    let check = |name: &str, err: &Error, bad_jwt: &str, why: &str| {
        eprintln!("{name}: {err}");
        match err {
            Error::Login {
                method: "kubernetes",
                mount: m,
                detail,
            } => {
                assert_eq!(m, &mount, "{name}");
                assert!(detail.contains(why), "{name}: {detail}");
            }
            other => panic!("{name}: expected a kubernetes login error, got {other:?}"),
        }
        assert_clean(
            "login error",
            &format!("{err} {err:?}"),
            &[bad_jwt, &jwt, &reviewer, &secret, &stale],
        );
    };
    for (name, bad_jwt, why) in [
        ("other service account", &intruder, "not authorized"),
        ("wrong audience", &elsewhere, "audience"),
    ] {
        let err = bad_login(bad_jwt).await.unwrap_err();
        check(name, &err, bad_jwt, why);
    }

    // The stale token (see above): refused once the API server's
    // service-account cache has seen the re-creation, which it normally
    // has by now; poll in case it has not.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let err = loop {
        match bad_login(&stale).await {
            Err(e) => break e,
            Ok(_) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Ok(info) => panic!("a re-created account's old token still logs in: {info:?}"),
        }
    };
    check("re-created service account", &err, &stale, "");
    assert_clean(
        "client Debug",
        &format!("{vault:?}"),
        &[&jwt, &reviewer, &secret],
    );
    eprintln!("kubernetes auth test took {:?}", started.elapsed());
}

/// An approle whose tokens live `ttl` and at most `max_ttl`.
async fn short_lived_approle(bao: &OpenBao, ttl: &str, max_ttl: &str) -> VaultConfig {
    let mount = unique_mount("approle");
    bao.enable_auth("approle", &mount).await.unwrap();
    bao.write(
        &format!("auth/{mount}/role/app"),
        json!({"token_policies": ["reader"], "token_ttl": ttl, "token_max_ttl": max_ttl, "bind_secret_id": false, "secret_id_bound_cidrs": ["127.0.0.0/8"]}),
    )
    .await
    .unwrap();
    let role_id = bao
        .read(&format!("auth/{mount}/role/app/role-id"))
        .await
        .unwrap()
        .unwrap()["data"]["role_id"]
        .as_str()
        .unwrap()
        .to_string();
    VaultConfig::new(
        bao.addr(),
        AuthConfig::Approle {
            role_id: Some(role_id),
            role_id_file: None,
            secret_id_file: None,
            mount,
        },
    )
}

#[tokio::test]
async fn expired_or_revoked_token_triggers_relogin() {
    let bao = OpenBao::start_dev().await.unwrap();
    let secret = canary();
    let kv = seed_kv(&bao, &secret).await;
    let config = short_lived_approle(&bao, "2s", "2s").await;
    let mount = match &config.auth {
        AuthConfig::Approle { mount, .. } => mount.clone(),
        _ => unreachable!(),
    };
    let vault = client(config, None).await;
    let first = vault.token_info().unwrap().generation;

    // Revoked behind our back: the next read gets 403, finds the token
    // invalid, logs in again and succeeds.
    bao.write(
        &format!("sys/leases/revoke-prefix/auth/{mount}/login"),
        json!({}),
    )
    .await
    .unwrap();
    assert_eq!(read_app(&vault, &kv).await.unwrap(), secret);
    let second = vault.token_info().unwrap().generation;
    assert!(second > first, "no re-login after revocation");

    // Expired: wait out the 2 s TTL, then read.
    tokio::time::sleep(Duration::from_millis(2300)).await;
    assert_eq!(read_app(&vault, &kv).await.unwrap(), secret);
    assert!(
        vault.token_info().unwrap().generation > second,
        "no re-login after expiry"
    );

    // A real policy denial is not mistaken for a dead token.
    let gen_before = vault.token_info().unwrap().generation;
    let other = unique_mount("kv");
    bao.enable_secrets("kv-v2", &other).await.unwrap();
    bao.write(&format!("{other}/data/x"), json!({"data": {"a": "b"}}))
        .await
        .unwrap();
    match vault.kv2_read(&other, "x", None).await {
        Err(Error::PermissionDenied { path, .. }) => assert_eq!(path, format!("{other}/data/x")),
        r => panic!("expected permission denied, got {r:?}"),
    }
    assert_eq!(vault.token_info().unwrap().generation, gen_before);
}

#[tokio::test]
async fn lease_manager_renews_then_replaces_the_token() {
    let bao = OpenBao::start_dev().await.unwrap();
    let secret = canary();
    let kv = seed_kv(&bao, &secret).await;
    // Renewable for 3 s at a time, 5 s at most: one renewal, then the
    // renewal falls short of 3 s and the manager logs in again.
    let mut config = short_lived_approle(&bao, "3s", "5s").await;
    config.leases = LeaseConfig {
        jitter: 0.0,
        ..fast_leases()
    };
    let vault = client(config, None).await;
    let generation = vault.token_info().unwrap().generation;
    let cancel = CancellationToken::new();
    let (leases, mut events) = Leases::start(vault.clone(), cancel.clone());
    let mut seen = Vec::new();
    let start = tokio::time::Instant::now();
    let renewed_ttl = wait_for(
        &mut events,
        Duration::from_secs(10),
        &mut seen,
        |e| match e {
            LeaseEvent::TokenRenewed { ttl } => Some(*ttl),
            _ => None,
        },
    )
    .await;
    let at = start.elapsed();
    assert!(
        at >= Duration::from_millis(1500) && at <= Duration::from_millis(3000),
        "renewed at {at:?}"
    );
    assert!(renewed_ttl <= Duration::from_secs(3));
    wait_for(&mut events, Duration::from_secs(10), &mut seen, |e| {
        matches!(e, LeaseEvent::LoggedIn { .. }).then_some(())
    })
    .await;
    assert!(vault.token_info().unwrap().generation > generation);
    // The new token works without any re-login on the request path.
    let generation = vault.token_info().unwrap().generation;
    assert_eq!(read_app(&vault, &kv).await.unwrap(), secret);
    assert_eq!(vault.token_info().unwrap().generation, generation);
    leases.shutdown().await;
    assert!(cancel.is_cancelled());
}

#[tokio::test]
async fn tls_with_ca_bundle_and_server_name() {
    let bao = OpenBao::start_dev_tls().await.unwrap();
    let ca = bao.ca_file().unwrap();
    let token_file = write_file(bao.dir(), "root-token", bao.root_token());
    let config = |tls: TlsConfig| VaultConfig {
        tls,
        ..VaultConfig::new(
            bao.addr(),
            AuthConfig::Token {
                token_file: Some(token_file.clone()),
                token_env: None,
            },
        )
    };
    let kv = unique_mount("kv");
    bao.enable_secrets("kv-v1", &kv).await.unwrap();
    bao.write(&format!("{kv}/app"), json!({"k": "v"}))
        .await
        .unwrap();

    // The CA bundle verifies the server (its certificate names 127.0.0.1).
    let vault = client(
        config(TlsConfig {
            ca_file: Some(ca.clone()),
            ..Default::default()
        }),
        None,
    )
    .await;
    assert_eq!(
        vault.kv1_read(&kv, "app").await.unwrap().data.expose()["k"],
        "v"
    );

    // A server name the certificate holds, though we connect to an IP.
    let vault = client(
        config(TlsConfig {
            ca_file: Some(ca.clone()),
            server_name: Some("localhost".into()),
            ..Default::default()
        }),
        None,
    )
    .await;
    assert!(vault.kv1_read(&kv, "app").await.is_ok());

    // A server name it does not hold, and no CA: both refused, as
    // "unreachable" (the TLS handshake fails).
    for (name, tls) in [
        (
            "wrong server name",
            TlsConfig {
                ca_file: Some(ca.clone()),
                server_name: Some("vault.elsewhere.test".into()),
                ..Default::default()
            },
        ),
        ("system roots only", TlsConfig::default()),
    ] {
        let vault = Vault::new(config(tls), keyward_core::Auditor::null()).unwrap();
        let err = vault.login().await.unwrap_err();
        assert!(err.is_unreachable(), "{name}: {err:?}");
    }

    // A client certificate is presented when configured (the dev server
    // does not ask for one; a bad pair is refused at set-up).
    let bad = VaultConfig {
        tls: TlsConfig {
            ca_file: Some(ca.clone()),
            client_cert: Some(ca.clone()),
            client_key: Some(ca.clone()),
            ..Default::default()
        },
        ..config(TlsConfig::default())
    };
    assert!(matches!(
        Vault::new(bad, keyward_core::Auditor::null()),
        Err(Error::Tls { .. })
    ));
    let good = VaultConfig {
        tls: TlsConfig {
            ca_file: Some(ca.clone()),
            client_cert: Some(bao.dir().join("tls/vault-cert.pem")),
            client_key: Some(bao.dir().join("tls/vault-key.pem")),
            ..Default::default()
        },
        ..config(TlsConfig::default())
    };
    let vault = client(good, None).await;
    let source = VaultSource::new(vault);
    let v = fetch(
        &source,
        &mounts(&kv, Engine::Kv1),
        &keyward_core::SecretRef::read(format!("{kv}/app")),
        &Default::default(),
    )
    .await
    .unwrap();
    assert_eq!(v.data.expose()["k"], "v");
}

#[tokio::test]
async fn unreachable_server_is_reported_as_such() {
    let port = keyward_testkit::free_port().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "t", "s.whatever");
    let vault = Vault::new(
        VaultConfig {
            request_timeout: Duration::from_secs(2),
            ..VaultConfig::new(
                format!("http://127.0.0.1:{port}"),
                AuthConfig::Token {
                    token_file: Some(file),
                    token_env: None,
                },
            )
        },
        keyward_core::Auditor::null(),
    )
    .unwrap();
    let err = vault.login().await.unwrap_err();
    assert!(err.is_unreachable(), "{err:?}");
    assert!(err.to_string().contains(&port.to_string()), "{err}");
}
