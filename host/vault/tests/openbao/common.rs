//! Shared set-up: servers, clients, mounts, canaries.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use keyward_core::{
    Auditor, DeliveryKind, Engine, Grant, MemoryAudit, MountTable, SecretRef, SecretValue,
};
use keyward_testkit::{OpenBao, Postgres, unique_mount};
use keyward_vault::{AuthConfig, LeaseConfig, LeaseEvent, Vault, VaultConfig, VaultSource};
use serde_json::json;
use tokio::sync::mpsc::UnboundedReceiver;

/// A value no output may ever show.
pub(crate) fn canary() -> String {
    format!(
        "CANARY-{}",
        keyward_testkit::unique_mount("v").replace('-', "")
    )
}

/// Fail if `haystack` holds any of `needles`.
#[track_caller]
pub(crate) fn assert_clean(what: &str, haystack: &str, needles: &[&str]) {
    for n in needles {
        assert!(!n.is_empty());
        assert!(
            !haystack.contains(n),
            "{what} leaks a secret ({n:?}):\n{haystack}"
        );
    }
}

/// Write `text` to `dir/name`.
pub(crate) fn write_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// A client logged in with a token from a file.
pub(crate) async fn token_client(
    bao: &OpenBao,
    token: &str,
    audit: Option<Arc<MemoryAudit>>,
) -> Vault {
    let file = write_file(bao.dir(), &format!("token-{}", unique_mount("t")), token);
    let config = VaultConfig::new(
        bao.addr(),
        AuthConfig::Token {
            token_file: Some(file),
            token_env: None,
        },
    );
    client(config, audit).await
}

/// Fast lease settings for tests.
pub(crate) fn fast_leases() -> LeaseConfig {
    LeaseConfig {
        backoff_min: Duration::from_millis(200),
        backoff_max: Duration::from_secs(1),
        jitter: 0.05,
        ..LeaseConfig::default()
    }
}

/// Build a client and log in.
pub(crate) async fn client(config: VaultConfig, audit: Option<Arc<MemoryAudit>>) -> Vault {
    let auditor = match audit {
        Some(a) => Auditor::new(a, [7; 32]),
        None => Auditor::null(),
    };
    let vault = Vault::new(config, auditor).expect("valid config");
    vault.login().await.expect("login");
    vault
}

/// Classify `reference` against `mounts` and fetch it.
pub(crate) async fn fetch(
    source: &VaultSource,
    mounts: &MountTable,
    secret: &SecretRef,
    grant: &Grant,
) -> keyward_vault::Result<SecretValue> {
    let mut request = mounts
        .classify(secret, &[DeliveryKind::File])
        .expect("classify");
    request.reference = secret.key();
    source.fetch_secret(secret, &request, grant).await
}

/// A reference with parameters.
pub(crate) fn with_params(reference: &str, params: &[(&str, &str)]) -> SecretRef {
    SecretRef {
        reference: reference.into(),
        parameters: params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        kind: Default::default(),
    }
}

/// Wait for the first event matching `pick`, collecting all events seen.
pub(crate) async fn wait_for<T>(
    events: &mut UnboundedReceiver<LeaseEvent>,
    timeout: Duration,
    seen: &mut Vec<(tokio::time::Instant, LeaseEvent)>,
    mut pick: impl FnMut(&LeaseEvent) -> Option<T>,
) -> T {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let event = tokio::time::timeout_at(deadline, events.recv())
            .await
            .unwrap_or_else(|_| panic!("timed out after {timeout:?}; events so far: {seen:#?}"))
            .expect("the lease manager stopped");
        let found = pick(&event);
        seen.push((tokio::time::Instant::now(), event));
        if let Some(v) = found {
            return v;
        }
    }
}

/// A database secrets engine at a fresh mount, connected to `pg`, with a
/// role `app` (TTL `ttl`, max `max_ttl`).
pub(crate) async fn database_engine(
    bao: &OpenBao,
    pg: &Postgres,
    ttl: &str,
    max_ttl: &str,
) -> String {
    let mount = unique_mount("db");
    bao.enable_secrets("database", &mount).await.unwrap();
    bao.write(
        &format!("{mount}/config/pg"),
        json!({
            "plugin_name": "postgresql-database-plugin",
            "connection_url": format!("postgresql://{{{{username}}}}:{{{{password}}}}@127.0.0.1:{}/postgres?sslmode=disable", pg.port()),
            "username": pg.superuser(),
            "password": pg.password(),
            "allowed_roles": ["app"],
            "verify_connection": true,
        }),
    )
    .await
    .unwrap();
    bao.write(
        &format!("{mount}/roles/app"),
        json!({
            "db_name": "pg",
            "creation_statements": [
                "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';",
            ],
            "default_ttl": ttl,
            "max_ttl": max_ttl,
        }),
    )
    .await
    .unwrap();
    mount
}

/// Log in to PostgreSQL with dynamic credentials; `Ok` when it works.
pub(crate) async fn pg_login(pg: &Postgres, value: &SecretValue) -> Result<(), String> {
    let data = value.data.expose();
    let user = data["username"].as_str().ok_or("no username")?;
    let password = data["password"].as_str().ok_or("no password")?;
    let mut config = tokio_postgres::Config::new();
    config
        .host("127.0.0.1")
        .port(pg.port())
        .user(user)
        .password(password)
        .dbname("postgres")
        .connect_timeout(Duration::from_secs(5));
    let (client, connection) = config
        .connect(tokio_postgres::NoTls)
        .await
        .map_err(|e| e.to_string())?;
    let task = tokio::spawn(connection);
    let row = client
        .query_one("SELECT current_user::text", &[])
        .await
        .map_err(|e| e.to_string())?;
    let who: String = row.get(0);
    drop(client);
    let _ = task.await;
    if who == user {
        Ok(())
    } else {
        Err(format!("logged in as {who}, not {user}"))
    }
}

/// Mount table with one mount.
pub(crate) fn mounts(mount: &str, engine: Engine) -> MountTable {
    MountTable::new().with(mount, engine)
}
