//! The lease manager against real leases.

use std::sync::Arc;
use std::time::Duration;

use keyward_core::{AuditEvent, Engine, Grant, MemoryAudit, SecretRef};
use keyward_testkit::{OpenBao, Postgres, unique_mount};
use keyward_vault::{
    AuthConfig, CancellationToken, LeaseConfig, LeaseEvent, Leases, RefetchReason, VaultConfig,
    VaultSource,
};
use serde_json::json;
use tracing_subscriber::fmt::MakeWriter;

use crate::common::*;

#[tokio::test]
async fn database_lease_renewed_at_two_thirds_then_reissued_at_max_ttl() {
    let (bao, pg) = tokio::join!(OpenBao::start_dev(), Postgres::start());
    let (bao, pg) = (bao.unwrap(), pg.unwrap());
    let db = database_engine(&bao, &pg, "6s", "15s").await;
    let audit = Arc::new(MemoryAudit::default());
    let token_file = write_file(bao.dir(), "root", bao.root_token());
    let mut config = VaultConfig::new(
        bao.addr(),
        AuthConfig::Token {
            token_file: Some(token_file),
            token_env: None,
        },
    );
    config.leases = fast_leases();
    let vault = client(config, Some(audit.clone())).await;
    let (leases, mut events) = Leases::start(vault.clone(), CancellationToken::new());
    let source = VaultSource::new(vault.clone()).with_leases(leases.clone());
    let mounts = mounts(&db, Engine::Database);
    let secret = SecretRef::read(format!("{db}/creds/app"));
    let key = secret.key();

    let first = fetch(&source, &mounts, &secret, &Grant::default())
        .await
        .unwrap();
    let fetched_at = tokio::time::Instant::now();
    assert_eq!(first.lease_duration, 6);
    pg_login(&pg, &first).await.unwrap();

    let mut seen = Vec::new();
    // First renewal at about 2/3 of 6 s (jitter 5 %).
    let ttl = wait_for(
        &mut events,
        Duration::from_secs(10),
        &mut seen,
        |e| match e {
            LeaseEvent::Renewed { key: k, ttl, .. } if *k == key => Some(*ttl),
            _ => None,
        },
    )
    .await;
    // Due at 4 s (two thirds, jitter 5 %): never early; and the answer must
    // arrive before the 6 s lease runs out, however slow a loaded machine
    // makes the round trip.
    let at = fetched_at.elapsed();
    assert!(
        at >= Duration::from_millis(3400) && at < Duration::from_millis(5900),
        "first renewal at {at:?}"
    );
    assert_eq!(ttl, Duration::from_secs(6));
    pg_login(&pg, &first)
        .await
        .expect("renewed credentials work");

    // Then, when renewal falls short of 6 s (the 15 s max is near): re-fetch.
    let reason = wait_for(
        &mut events,
        Duration::from_secs(14),
        &mut seen,
        |e| match e {
            LeaseEvent::NeedsRefetch { key: k, reason } if *k == key => Some(*reason),
            _ => None,
        },
    )
    .await;
    assert_eq!(reason, RefetchReason::MaxTtl, "{seen:#?}");
    let renewals = seen
        .iter()
        .filter(|(_, e)| matches!(e, LeaseEvent::Renewed { .. }))
        .count();
    assert!(renewals >= 2, "{seen:#?}");
    assert!(
        fetched_at.elapsed() < Duration::from_secs(15),
        "re-fetch asked too late"
    );

    // The owner re-fetches: a new lease, new credentials, tracked again.
    let second = fetch(&source, &mounts, &secret, &Grant::default())
        .await
        .unwrap();
    assert_ne!(second.lease_id, first.lease_id);
    assert_ne!(
        second.data.expose()["username"],
        first.data.expose()["username"]
    );
    pg_login(&pg, &second).await.unwrap();
    let status = leases.status().await.unwrap();
    let entry = status.iter().find(|s| s.key == key).unwrap();
    assert_eq!(entry.kind, "lease");
    assert_eq!(
        entry.lease_id_sha256,
        keyward_core::hash_id(&second.lease_id)
    );

    // Revoked on request: the credentials stop working at once.
    leases.revoke(&key).await.unwrap();
    assert!(
        pg_login(&pg, &second).await.is_err(),
        "revoked credentials still work"
    );
    // The first lease expires at its max TTL and its credentials with it.
    let wait = Duration::from_secs(16).saturating_sub(fetched_at.elapsed());
    tokio::time::sleep(wait).await;
    assert!(
        pg_login(&pg, &first).await.is_err(),
        "expired credentials still work"
    );

    let events = audit.events();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, AuditEvent::Renewal { outcome, .. } if outcome == "renewed"))
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, AuditEvent::Renewal { outcome, .. } if outcome == "re-fetch"))
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, AuditEvent::Revocation { outcome, .. } if outcome == "revoked"))
    );
    let json = serde_json::to_string(&events).unwrap();
    for v in [&first, &second] {
        assert_clean(
            "audit",
            &json,
            &[v.data.expose()["password"].as_str().unwrap(), &v.lease_id],
        );
    }
    leases.shutdown().await;
}

#[tokio::test]
async fn grant_ttl_cap_shortens_a_renewable_lease() {
    let (bao, pg) = tokio::join!(OpenBao::start_dev(), Postgres::start());
    let (bao, pg) = (bao.unwrap(), pg.unwrap());
    let db = database_engine(&bao, &pg, "1h", "2h").await;
    let vault = {
        let mut v = VaultConfig::new(
            bao.addr(),
            AuthConfig::Token {
                token_file: Some(write_file(bao.dir(), "root", bao.root_token())),
                token_env: None,
            },
        );
        v.leases = fast_leases();
        client(v, None).await
    };
    let (leases, mut events) = Leases::start(vault.clone(), CancellationToken::new());
    let source = VaultSource::new(vault).with_leases(leases.clone());
    let secret = SecretRef::read(format!("{db}/creds/app"));
    let got = fetch(
        &source,
        &mounts(&db, Engine::Database),
        &secret,
        &Grant {
            max_ttl_seconds: Some(4),
            ..Grant::default()
        },
    )
    .await
    .unwrap();
    // The cap runs from the fetch (however long creating the database
    // user took on a loaded machine); the re-fetch is due 2 s before it.
    let start = tokio::time::Instant::now();
    assert_eq!(got.lease_duration, 3600);
    let mut seen = Vec::new();
    let reason = wait_for(
        &mut events,
        Duration::from_secs(8),
        &mut seen,
        |e| match e {
            LeaseEvent::NeedsRefetch { reason, .. } => Some(*reason),
            _ => None,
        },
    )
    .await;
    assert!(matches!(reason, RefetchReason::MaxTtl), "{seen:#?}");
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "the 4 s cap was passed: {:?}",
        start.elapsed()
    );
    leases.shutdown().await;
}

#[tokio::test]
async fn static_secrets_refresh_and_certificates_reissue() {
    let bao = OpenBao::start_dev().await.unwrap();
    let kv = unique_mount("kv");
    bao.enable_secrets("kv-v2", &kv).await.unwrap();
    bao.write(&format!("{kv}/data/app"), json!({"data": {"v": "1"}}))
        .await
        .unwrap();
    let pki = unique_mount("pki");
    bao.enable_secrets("pki", &pki).await.unwrap();
    bao.write(
        &format!("{pki}/root/generate/internal"),
        json!({"common_name": "Root", "ttl": "24h", "key_type": "ec"}),
    )
    .await
    .unwrap();
    bao.write(
        &format!("{pki}/roles/web"),
        json!({"allow_any_name": true, "key_type": "ec", "not_before_duration": "1s"}),
    )
    .await
    .unwrap();
    let mut config = VaultConfig::new(
        bao.addr(),
        AuthConfig::Token {
            token_file: Some(write_file(bao.dir(), "root", bao.root_token())),
            token_env: None,
        },
    );
    config.leases = LeaseConfig {
        static_refresh: Duration::from_secs(1),
        certificate_renew_fraction: 0.5,
        ..fast_leases()
    };
    let vault = client(config, None).await;
    let (leases, mut events) = Leases::start(vault.clone(), CancellationToken::new());
    let source = VaultSource::new(vault).with_leases(leases.clone());
    let table = keyward_core::MountTable::new()
        .with(&kv, Engine::Kv2)
        .with(&pki, Engine::Pki);
    let kv_ref = SecretRef::read(format!("{kv}/data/app"));
    let cert_ref = with_params(
        &format!("{pki}/issue/web"),
        &[("common_name", "svc.test"), ("ttl", "8s")],
    );
    fetch(&source, &table, &kv_ref, &Grant::default())
        .await
        .unwrap();
    let cert = fetch(&source, &table, &cert_ref, &Grant::default())
        .await
        .unwrap();
    let issued = tokio::time::Instant::now();
    bao.write(&format!("{kv}/data/app"), json!({"data": {"v": "2"}}))
        .await
        .unwrap();

    let mut seen = Vec::new();
    let kv_key = kv_ref.key();
    wait_for(
        &mut events,
        Duration::from_secs(4),
        &mut seen,
        |e| match e {
            LeaseEvent::NeedsRefetch {
                key,
                reason: RefetchReason::Refresh,
            } if *key == kv_key => Some(()),
            _ => None,
        },
    )
    .await;
    let again = fetch(&source, &table, &kv_ref, &Grant::default())
        .await
        .unwrap();
    assert_eq!(again.data.expose()["data"]["v"], "2");

    let cert_key = cert_ref.key();
    wait_for(
        &mut events,
        Duration::from_secs(10),
        &mut seen,
        |e| match e {
            LeaseEvent::NeedsRefetch {
                key,
                reason: RefetchReason::CertificateExpiring,
            } if *key == cert_key => Some(()),
            _ => None,
        },
    )
    .await;
    let at = issued.elapsed();
    // Half of a 9 s lifetime (NotBefore is back-dated 1 s), give or take
    // the certificate's one-second time resolution.
    assert!(
        at >= Duration::from_millis(2000) && at < Duration::from_secs(8),
        "re-issue asked at {at:?}"
    );
    let reissued = fetch(&source, &table, &cert_ref, &Grant::default())
        .await
        .unwrap();
    assert_ne!(
        reissued.data.expose()["serial_number"],
        cert.data.expose()["serial_number"]
    );
    leases.shutdown().await;
}

#[tokio::test]
async fn openbao_killed_mid_run_keeps_last_good_and_recovers_without_duplicate_leases() {
    let (bao, pg) = tokio::join!(OpenBao::start_persistent(), Postgres::start());
    let (mut bao, pg) = (bao.unwrap(), pg.unwrap());
    // Renewal at a third of a 30 s TTL (~10 s): the lease still has ~20 s
    // left when OpenBao comes back, however slowly a loaded machine restarts
    // it. (With 15 s at two thirds, a restart slower than ~5 s let the lease
    // expire, and a refused renewal of an expired lease is rightly a
    // re-fetch.)
    let db = database_engine(&bao, &pg, "30s", "10m").await;
    let mut config = VaultConfig::new(
        bao.addr(),
        AuthConfig::Token {
            token_file: Some(write_file(bao.dir(), "root", bao.root_token())),
            token_env: None,
        },
    );
    config.request_timeout = Duration::from_secs(2);
    config.leases = LeaseConfig {
        renew_fraction: 0.34,
        ..fast_leases()
    };
    let vault = client(config, None).await;
    let (leases, mut events) = Leases::start(vault.clone(), CancellationToken::new());
    let source = VaultSource::new(vault).with_leases(leases.clone());
    let mounts = mounts(&db, Engine::Database);
    let secret = SecretRef::read(format!("{db}/creds/app"));
    let key = secret.key();
    let first = fetch(&source, &mounts, &secret, &Grant::default())
        .await
        .unwrap();
    let lease_hash = keyward_core::hash_id(&first.lease_id).unwrap();

    bao.kill();
    // A fetch now surfaces "unreachable"; the last good value stays.
    let err = fetch(&source, &mounts, &secret, &Grant::default())
        .await
        .unwrap_err();
    assert!(err.is_unreachable(), "{err:?}");
    assert_eq!(source.last_good(&key).unwrap().lease_id, first.lease_id);
    assert!(source.staleness().iter().any(|s| s.key == key && s.failing));
    pg_login(&pg, &first)
        .await
        .expect("last-good credentials still work");

    // The renewal (at ~10 s) fails as unreachable and is retried.
    let mut seen = Vec::new();
    wait_for(
        &mut events,
        Duration::from_secs(16),
        &mut seen,
        |e| match e {
            LeaseEvent::RenewalFailed {
                key: k,
                unreachable: true,
                ..
            } if *k == key => Some(()),
            _ => None,
        },
    )
    .await;
    assert!(source.staleness_of(&key).unwrap() > Duration::from_secs(5));

    // Back on the same port, unsealed, with its leases: the same lease is
    // renewed, no new one is created.
    bao.restart().await.unwrap();
    let renewed = wait_for(
        &mut events,
        Duration::from_secs(15),
        &mut seen,
        |e| match e {
            LeaseEvent::Renewed {
                key: k,
                lease_id_sha256,
                ..
            } if *k == key => Some(Ok(lease_id_sha256.clone())),
            LeaseEvent::NeedsRefetch { key: k, reason } if *k == key => Some(Err(*reason)),
            _ => None,
        },
    )
    .await
    .unwrap_or_else(|reason| panic!("asked to re-fetch ({reason:?}); events: {seen:#?}"));
    assert_eq!(renewed, lease_hash);
    let live = bao.leases(&format!("{db}/creds/app")).await.unwrap();
    assert_eq!(
        live,
        vec![first.lease_id.clone()],
        "duplicate or lost leases"
    );
    pg_login(&pg, &first)
        .await
        .expect("credentials work after recovery");
    leases.shutdown().await;
}

#[tokio::test]
async fn shutdown_revokes_leases_and_token_when_configured() {
    let (bao, pg) = tokio::join!(OpenBao::start_dev(), Postgres::start());
    let (bao, pg) = (bao.unwrap(), pg.unwrap());
    let db = database_engine(&bao, &pg, "1h", "2h").await;
    // Log in through approle so the token is ours to revoke.
    let mount = unique_mount("approle");
    bao.enable_auth("approle", &mount).await.unwrap();
    bao.put_policy(
        "db",
        &format!(
            "path \"{db}/creds/*\" {{ capabilities = [\"read\"] }}\npath \"sys/leases/revoke\" {{ capabilities = [\"update\"] }}"
        ),
    )
    .await
    .unwrap();
    bao.write(&format!("auth/{mount}/role/app"), json!({"token_policies": ["db"], "bind_secret_id": false, "secret_id_bound_cidrs": ["127.0.0.0/8"]}))
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
    let mut config = VaultConfig::new(
        bao.addr(),
        AuthConfig::Approle {
            role_id: Some(role_id),
            role_id_file: None,
            secret_id_file: None,
            mount,
        },
    );
    config.leases = LeaseConfig {
        revoke_on_shutdown: true,
        revoke_token_on_shutdown: true,
        ..fast_leases()
    };
    let audit = Arc::new(MemoryAudit::default());
    let vault = client(config, Some(audit.clone())).await;
    let cancel = CancellationToken::new();
    let (leases, _events) = Leases::start(vault.clone(), cancel.clone());
    let source = VaultSource::new(vault.clone()).with_leases(leases.clone());
    let got = fetch(
        &source,
        &mounts(&db, Engine::Database),
        &SecretRef::read(format!("{db}/creds/app")),
        &Grant::default(),
    )
    .await
    .unwrap();
    pg_login(&pg, &got).await.unwrap();
    let report = leases.shutdown().await;
    assert_eq!(
        (report.revoked, report.failed, report.token_revoked),
        (1, 0, true)
    );
    assert!(
        pg_login(&pg, &got).await.is_err(),
        "credentials survive shutdown"
    );
    assert!(vault.token_info().is_none());
    assert!(audit.events().iter().any(|e| matches!(e, AuditEvent::Revocation { reference, outcome, .. } if reference == "token" && outcome == "revoked")));
}

/// A writer collecting every log line of this test binary.
#[derive(Clone, Default)]
struct Logs(Arc<std::sync::Mutex<Vec<u8>>>);

/// The process-wide log capture, installed as the global subscriber on
/// first use. A thread-scoped subscriber (`set_default`) can miss events:
/// tracing caches each call site's interest, and a call site first hit by
/// a test running in parallel on another thread, with no subscriber there,
/// could be cached as uninteresting. Other tests' lines land here too;
/// the canary checks look only for this test's own values.
fn captured_logs() -> &'static Logs {
    static LOGS: std::sync::OnceLock<Logs> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Logs::default();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(logs.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::set_global_default(subscriber)
            .expect("no other global subscriber in this test binary");
        logs
    })
}

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Logs {
    type Writer = Logs;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn canary_values_never_reach_errors_debug_logs_or_audit() {
    let logs = captured_logs();

    let mut bao = OpenBao::start_dev().await.unwrap();
    let value = canary();
    let kv = unique_mount("kv");
    bao.enable_secrets("kv-v2", &kv).await.unwrap();
    bao.write(
        &format!("{kv}/data/app"),
        json!({"data": {"password": value}}),
    )
    .await
    .unwrap();
    bao.write(
        &format!("{kv}/data/other"),
        json!({"data": {"password": value}}),
    )
    .await
    .unwrap();
    bao.put_policy(
        "app-only",
        &format!("path \"{kv}/data/app\" {{ capabilities = [\"read\"] }}"),
    )
    .await
    .unwrap();
    let token = bao.create_token(&["app-only"], "1h", None).await.unwrap();
    let root = bao.root_token().to_string();
    let audit = Arc::new(MemoryAudit::default());
    let mut config = VaultConfig::new(
        bao.addr(),
        AuthConfig::Token {
            token_file: Some(write_file(bao.dir(), "t", &token)),
            token_env: None,
        },
    );
    config.request_timeout = Duration::from_secs(2);
    config.leases = LeaseConfig {
        static_refresh: Duration::from_millis(300),
        ..fast_leases()
    };
    let vault = client(config.clone(), Some(audit.clone())).await;
    let (leases, mut events) = Leases::start(vault.clone(), CancellationToken::new());
    let source = VaultSource::new(vault.clone()).with_leases(leases.clone());
    let mounts = mounts(&kv, Engine::Kv2);
    let secrets = [&value, &token, &root];
    let mut outputs: Vec<String> = Vec::new();

    let good = fetch(
        &source,
        &mounts,
        &SecretRef::read(format!("{kv}/data/app")),
        &Grant::default(),
    )
    .await
    .unwrap();
    assert_eq!(good.data.expose()["data"]["password"], value.as_str());
    outputs.push(format!("{good:?}"));
    for r in [format!("{kv}/data/other"), format!("{kv}/data/missing")] {
        let e = fetch(&source, &mounts, &SecretRef::read(r), &Grant::default())
            .await
            .unwrap_err();
        outputs.push(format!("{e} | {e:?}"));
    }
    let mut seen = Vec::new();
    wait_for(&mut events, Duration::from_secs(5), &mut seen, |e| {
        matches!(e, LeaseEvent::NeedsRefetch { .. }).then_some(())
    })
    .await;
    bao.kill();
    let e = fetch(
        &source,
        &mounts,
        &SecretRef::read(format!("{kv}/data/app")),
        &Grant::default(),
    )
    .await
    .unwrap_err();
    assert!(e.is_unreachable());
    outputs.push(format!("{e} | {e:?}"));
    let e = vault.renew_token().await.unwrap_err();
    outputs.push(format!("{e} | {e:?}"));
    outputs.push(format!(
        "{vault:?} {source:?} {leases:?} {config:?} {:?}",
        vault.token_info()
    ));
    outputs.push(format!("{:?} {seen:?}", leases.status().await.unwrap()));
    outputs.push(format!(
        "{:?} {:?}",
        source.staleness(),
        source.last_good(&format!("{kv}/data/app"))
    ));
    // The background refresh of the static secret fails (and logs it) on
    // its own schedule: give it time to, rather than racing it.
    let captured = || String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !captured().contains("fetching a secret failed") && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    outputs.push(serde_json::to_string(&audit.events()).unwrap());
    leases.shutdown().await;
    let logs = captured();
    assert!(
        logs.contains("fetching a secret failed"),
        "logs were not captured:\n{logs}"
    );
    outputs.push(logs);
    for (i, out) in outputs.iter().enumerate() {
        assert_clean(
            &format!("output #{i}"),
            out,
            &secrets.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        );
    }
}
