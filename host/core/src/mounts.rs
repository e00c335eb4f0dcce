//! The mount table: turns a reference as written (`secret/data/app?version=2`)
//! into a classified `SecretRequest`.

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::types::{DeliveryKind, Engine, SecretRef, SecretRequest};

/// Known mounts and their engines. References under no known mount are
/// classified `generic` with their first segment as the mount.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MountTable {
    mounts: BTreeMap<String, Engine>,
}

impl MountTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add or replace a mount.
    pub fn insert(&mut self, mount: &str, engine: Engine) -> &mut Self {
        self.mounts
            .insert(mount.trim_matches('/').to_string(), engine);
        self
    }

    /// Builder form of [`MountTable::insert`].
    pub fn with(mut self, mount: &str, engine: Engine) -> Self {
        self.insert(mount, engine);
        self
    }

    /// The engine of a mount, if known.
    pub fn engine(&self, mount: &str) -> Option<Engine> {
        self.mounts.get(mount.trim_matches('/')).copied()
    }

    /// Iterate over mounts.
    pub fn iter(&self) -> impl Iterator<Item = (&str, Engine)> {
        self.mounts.iter().map(|(k, v)| (k.as_str(), *v))
    }

    /// Classify a reference.
    pub fn classify(&self, secret: &SecretRef, delivery: &[DeliveryKind]) -> Result<SecretRequest> {
        let invalid = |detail: &str| Error::InvalidReference {
            reference: secret.reference.clone(),
            detail: detail.to_string(),
        };
        let (raw_path, query) = match secret.reference.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (secret.reference.as_str(), None),
        };
        let raw_path = raw_path.trim_matches('/');
        if raw_path.is_empty() {
            return Err(invalid("the path is empty"));
        }
        if raw_path
            .split('/')
            .any(|seg| seg.is_empty() || seg == "." || seg == "..")
        {
            return Err(invalid("the path has an empty, `.` or `..` segment"));
        }
        if raw_path.chars().any(|c| c.is_control()) {
            return Err(invalid("the path contains control characters"));
        }
        let mut version = None;
        if let Some(query) = query {
            for pair in query.split('&').filter(|p| !p.is_empty()) {
                match pair.split_once('=') {
                    Some(("version", v)) => {
                        version =
                            Some(v.parse::<u32>().map_err(|_| {
                                invalid("`version` must be a non-negative integer")
                            })?);
                    }
                    _ => {
                        return Err(invalid(&format!(
                            "unsupported query parameter {:?} (only `version=N` is understood)",
                            pair.split('=').next().unwrap_or_default()
                        )));
                    }
                }
            }
        }
        // Longest mount prefix wins.
        let found = self
            .mounts
            .iter()
            .filter(|(m, _)| raw_path == m.as_str() || raw_path.starts_with(&format!("{m}/")))
            .max_by_key(|(m, _)| m.len());
        let (mount, engine) = match found {
            Some((m, e)) => (m.clone(), *e),
            None => (
                raw_path.split('/').next().unwrap_or_default().to_string(),
                Engine::Generic,
            ),
        };
        let rest = raw_path[mount.len()..].trim_start_matches('/');
        let path = match engine {
            Engine::Kv2 => match rest.split_once('/') {
                Some(("data", p)) | Some(("metadata", p)) => p.to_string(),
                _ if rest == "data" || rest == "metadata" => String::new(),
                _ => {
                    return Err(invalid(&format!(
                        "mount {mount:?} is KV version 2: write the path as {mount}/data/<path>"
                    )));
                }
            },
            _ => rest.to_string(),
        };
        if version.is_some() && engine != Engine::Kv2 && engine != Engine::Generic {
            return Err(invalid("`?version=` only applies to KV version 2 secrets"));
        }
        Ok(SecretRequest {
            reference: secret.reference.clone(),
            engine,
            mount,
            path,
            version,
            parameters: secret.parameters.clone(),
            delivery: delivery.to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> MountTable {
        MountTable::new()
            .with("secret", Engine::Kv2)
            .with("kv", Engine::Kv1)
            .with("db", Engine::Database)
            .with("team/pki", Engine::Pki)
    }

    #[test]
    fn classifies() {
        let t = table();
        let r = t
            .classify(
                &SecretRef::read("secret/data/app/db?version=3"),
                &[DeliveryKind::File],
            )
            .unwrap();
        assert_eq!(
            (r.engine, r.mount.as_str(), r.path.as_str(), r.version),
            (Engine::Kv2, "secret", "app/db", Some(3))
        );
        let r = t.classify(&SecretRef::read("kv/app"), &[]).unwrap();
        assert_eq!((r.engine, r.path.as_str()), (Engine::Kv1, "app"));
        let r = t
            .classify(&SecretRef::read("team/pki/issue/web"), &[])
            .unwrap();
        assert_eq!(
            (r.engine, r.mount.as_str(), r.path.as_str()),
            (Engine::Pki, "team/pki", "issue/web")
        );
        let r = t.classify(&SecretRef::read("other/thing"), &[]).unwrap();
        assert_eq!(
            (r.engine, r.mount.as_str(), r.path.as_str()),
            (Engine::Generic, "other", "thing")
        );
        assert_eq!(r.full_path(), "other/thing");
    }

    #[test]
    fn rejects() {
        let t = table();
        for bad in [
            "",
            "secret/../x",
            "secret/app",
            "secret/data/a?version=x",
            "secret/data/a?foo=1",
            "db/creds/x?version=1",
            "a//b",
        ] {
            assert!(t.classify(&SecretRef::read(bad), &[]).is_err(), "{bad}");
        }
    }
}
