//! The decision: which rule decides each requested secret, and how.
//!
//! For every secret, among the rules whose `match` holds for the workload and
//! whose `paths` (and `engines`) cover the secret:
//!
//! 1. the first covering `deny` rule denies it, wherever it stands;
//! 2. otherwise the first covering `allow` rule decides: it denies the secret
//!    when a wanted delivery kind is not among its `delivery` kinds, and
//!    grants it with the rule's limits otherwise;
//! 3. otherwise `default` decides: deny, or abstain.

#[cfg(target_arch = "wasm32")]
use crate::prelude::*;

use crate::model::{DeliveryKind, Grant, SecretDecision, SecretRequest, Verdict, Workload};

use crate::settings::{Action, Allow, Fallback, Matcher, Policy, Rule, Scope};

impl Policy {
    /// Decide on every secret, in request order, one decision each.
    pub fn decide(&self, workload: &Workload, secrets: &[SecretRequest]) -> Vec<SecretDecision> {
        let applicable: Vec<&Rule> = self
            .rules
            .iter()
            .filter(|rule| rule.matcher.matches(workload))
            .collect();
        secrets
            .iter()
            .map(|secret| self.decide_one(&applicable, workload, secret))
            .collect()
    }

    fn decide_one(
        &self,
        applicable: &[&Rule],
        workload: &Workload,
        secret: &SecretRequest,
    ) -> SecretDecision {
        let path = secret.full_path();
        let covering = || {
            applicable
                .iter()
                .copied()
                .filter(|rule| rule.action.scope().covers(workload, secret, &path))
        };
        let denial = covering().find_map(|rule| match &rule.action {
            Action::Deny(deny) => Some((rule, deny)),
            Action::Allow(_) => None,
        });
        let decision = |verdict, rule: Option<&Rule>| SecretDecision {
            reference: secret.reference.clone(),
            verdict,
            rule: rule.map(Rule::audit_label),
        };
        if let Some((rule, deny)) = denial {
            let mut reason = format!("{path} is denied by {}", rule.describe());
            if let Some(extra) = &deny.reason {
                reason.push_str(": ");
                reason.push_str(extra);
            }
            return decision(Verdict::Deny(reason), Some(rule));
        }
        let grant = covering().find_map(|rule| match &rule.action {
            Action::Allow(allow) => Some((rule, allow)),
            Action::Deny(_) => None,
        });
        match grant {
            Some((rule, allow)) => {
                decision(allow.verdict(rule, workload, secret, &path), Some(rule))
            }
            None => match self.fallback {
                Fallback::Deny => SecretDecision {
                    reference: secret.reference.clone(),
                    verdict: Verdict::Deny(format!(
                        "no rule allows {path} for this workload (default: deny)"
                    )),
                    rule: Some("default".into()),
                },
                Fallback::Abstain => decision(Verdict::Abstain, None),
            },
        }
    }
}

impl Matcher {
    /// Whether every given criterion holds for the workload. Unknown (empty)
    /// values never satisfy a criterion.
    pub(crate) fn matches(&self, w: &Workload) -> bool {
        let one = |patterns: &Option<Vec<_>>, value: &str| {
            patterns
                .as_ref()
                .is_none_or(|ps: &Vec<crate::pattern::Glob>| ps.iter().any(|p| p.matches(value)))
        };
        let labels = |wanted: &[(String, crate::pattern::Glob)],
                      have: &alloc::collections::BTreeMap<String, String>| {
            wanted
                .iter()
                .all(|(name, p)| have.get(name).is_some_and(|v| p.matches(v)))
        };
        // Every image must match some pattern, and there must be an image:
        // one trusted container must not carry an untrusted one along.
        let images = self.images.as_ref().is_none_or(|ps| {
            !w.images.is_empty() && w.images.iter().all(|i| ps.iter().any(|p| p.matches(i)))
        });
        one(&self.namespaces, &w.namespace)
            && one(&self.service_accounts, &w.service_account)
            && one(&self.clusters, &w.cluster)
            && one(&self.kinds, &w.kind)
            && one(&self.names, &w.name)
            && images
            && labels(&self.labels, &w.labels)
            && labels(&self.namespace_labels, &w.namespace_labels)
    }
}

impl Scope {
    fn covers(&self, workload: &Workload, secret: &SecretRequest, path: &str) -> bool {
        self.engines
            .as_ref()
            .is_none_or(|engines| engines.contains(&secret.engine))
            && self.paths.iter().any(|p| p.matches(workload, path))
    }
}

impl Allow {
    fn verdict(
        &self,
        rule: &Rule,
        workload: &Workload,
        secret: &SecretRequest,
        path: &str,
    ) -> Verdict {
        if let Some(allowed) = &self.delivery {
            let refused: Vec<DeliveryKind> = secret
                .delivery
                .iter()
                .copied()
                .filter(|k| !allowed.contains(k))
                .fold(Vec::new(), |mut acc, k| {
                    if !acc.contains(&k) {
                        acc.push(k);
                    }
                    acc
                });
            if !refused.is_empty() {
                return Verdict::Deny(format!(
                    "{} does not allow delivering {path} as {} (allowed: {})",
                    rule.describe(),
                    join(&refused),
                    join(allowed),
                ));
            }
        }
        let targets = match &self.targets {
            None => None,
            Some(patterns) => {
                let mut expanded = Vec::new();
                let mut missing = Vec::new();
                for p in patterns {
                    match p.expand(workload) {
                        Ok(pattern) => expanded.push(pattern),
                        Err(placeholder) => missing.push(placeholder.to_string()),
                    }
                }
                if expanded.is_empty() {
                    missing.dedup();
                    return Verdict::Deny(format!(
                        "{} allows {path}, but none of its target patterns applies to this \
                         workload (no usable value for {})",
                        rule.describe(),
                        missing.join(", "),
                    ));
                }
                Some(expanded)
            }
        };
        Verdict::Allow(Grant {
            allowed_keys: self.keys.clone(),
            max_ttl_seconds: self.max_ttl_seconds,
            delivery: self.delivery.clone(),
            targets,
        })
    }
}

fn join(kinds: &[DeliveryKind]) -> String {
    kinds
        .iter()
        .map(|k| k.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use crate::model::Engine;

    use super::*;

    fn workload() -> Workload {
        Workload {
            cluster: "prod-eu".into(),
            namespace: "team-a".into(),
            service_account: "api".into(),
            kind: "Deployment".into(),
            name: "api".into(),
            labels: [("app".into(), "api".into())].into(),
            namespace_labels: [("team".into(), "alpha".into())].into(),
            images: vec!["registry.example.com/team-a/api:1.2".into()],
        }
    }

    fn secret(mount: &str, path: &str, delivery: &[DeliveryKind]) -> SecretRequest {
        SecretRequest {
            reference: format!("{mount}/{path}"),
            engine: Engine::Kv2,
            mount: mount.into(),
            path: path.into(),
            version: None,
            parameters: Vec::new(),
            delivery: delivery.to_vec(),
        }
    }

    fn decide(settings: &str, w: &Workload, secrets: &[SecretRequest]) -> Vec<SecretDecision> {
        Policy::parse(settings).unwrap().decide(w, secrets)
    }

    fn one(settings: &str, w: &Workload, s: SecretRequest) -> SecretDecision {
        decide(settings, w, &[s]).remove(0)
    }

    fn deny_reason(d: &SecretDecision) -> &str {
        match &d.verdict {
            Verdict::Deny(reason) => reason,
            other => panic!("expected a denial, got {other:?}"),
        }
    }

    #[test]
    fn matcher_criteria() {
        let w = workload();
        let cases = [
            (r#"{}"#, true),
            (r#"{"namespaces": ["team-b", "team-*"]}"#, true),
            (r#"{"namespaces": ["team-b"]}"#, false),
            (
                r#"{"service-accounts": ["api"], "kinds": ["Deployment"]}"#,
                true,
            ),
            (r#"{"service-accounts": ["api"], "kinds": ["Job"]}"#, false),
            (r#"{"clusters": ["prod-*"], "names": ["a?i"]}"#, true),
            (r#"{"labels": {"app": "api*"}}"#, true),
            (r#"{"labels": {"app": "api", "tier": "*"}}"#, false),
            (r#"{"namespace-labels": {"team": "alpha"}}"#, true),
            (r#"{"namespace-labels": {"team": "beta"}}"#, false),
            (r#"{"images": ["registry.example.com/**"]}"#, true),
            (r#"{"images": ["registry.example.com/*"]}"#, false),
        ];
        for (matcher, want) in cases {
            let settings =
                format!(r#"{{"rules": [{{"match": {matcher}, "allow": {{"paths": ["**"]}}}}]}}"#);
            let policy = Policy::parse(&settings).unwrap();
            assert_eq!(policy.rules[0].matcher.matches(&w), want, "{matcher}");
        }
    }

    #[test]
    fn every_image_must_match() {
        let settings = r#"{"rules": [{"match": {"images": ["registry.example.com/**"]}, "allow": {"paths": ["**"]}}]}"#;
        let policy = Policy::parse(settings).unwrap();
        let mut w = workload();
        w.images.push("docker.io/library/busybox".into());
        assert!(!policy.rules[0].matcher.matches(&w));
        w.images.clear();
        assert!(!policy.rules[0].matcher.matches(&w));
    }

    #[test]
    fn unknown_values_never_match() {
        let settings =
            r#"{"rules": [{"match": {"namespaces": ["*"]}, "allow": {"paths": ["**"]}}]}"#;
        let policy = Policy::parse(settings).unwrap();
        assert!(!policy.rules[0].matcher.matches(&Workload::default()));
    }

    #[test]
    fn deny_wins_over_an_earlier_allow() {
        let settings = r#"{"rules": [
            {"name": "all", "allow": {"paths": ["secret/**"]}},
            {"name": "no-admin", "deny": {"paths": ["secret/*/admin"], "reason": "ask the platform team"}}
        ]}"#;
        let d = one(settings, &workload(), secret("secret", "team-a/admin", &[]));
        assert_eq!(d.rule.as_deref(), Some("rules[1] no-admin"));
        assert_eq!(
            deny_reason(&d),
            "secret/team-a/admin is denied by rule \"no-admin\" (rules[1]): ask the platform team"
        );
        let d = one(settings, &workload(), secret("secret", "team-a/db", &[]));
        assert_eq!(d.verdict, Verdict::Allow(Grant::default()));
        assert_eq!(d.rule.as_deref(), Some("rules[0] all"));
    }

    #[test]
    fn first_allow_grants() {
        let settings = r#"{"rules": [
            {"name": "narrow", "allow": {"paths": ["secret/team-a/db"], "max-ttl": 60}},
            {"name": "wide", "allow": {"paths": ["secret/team-a/*"], "max-ttl": "1h"}}
        ]}"#;
        let ds = decide(
            settings,
            &workload(),
            &[
                secret("secret", "team-a/db", &[]),
                secret("secret", "team-a/cache", &[]),
            ],
        );
        assert_eq!(ds[0].rule.as_deref(), Some("rules[0] narrow"));
        assert_eq!(
            ds[0].verdict,
            Verdict::Allow(Grant {
                max_ttl_seconds: Some(60),
                ..Grant::default()
            })
        );
        assert_eq!(ds[1].rule.as_deref(), Some("rules[1] wide"));
        assert_eq!(
            ds[1].verdict,
            Verdict::Allow(Grant {
                max_ttl_seconds: Some(3600),
                ..Grant::default()
            })
        );
    }

    #[test]
    fn engines_narrow_the_scope() {
        let settings = r#"{"rules": [
            {"name": "db", "allow": {"paths": ["**"], "engines": ["database"]}}
        ]}"#;
        let d = one(settings, &workload(), secret("secret", "team-a/db", &[]));
        assert_eq!(d.rule.as_deref(), Some("default"));
        assert_eq!(
            deny_reason(&d),
            "no rule allows secret/team-a/db for this workload (default: deny)"
        );
    }

    #[test]
    fn delivery_kinds() {
        let settings =
            r#"{"rules": [{"name": "files", "allow": {"paths": ["**"], "delivery": ["file"]}}]}"#;
        let d = one(
            settings,
            &workload(),
            secret(
                "secret",
                "x",
                &[
                    DeliveryKind::File,
                    DeliveryKind::Env,
                    DeliveryKind::KubeSecret,
                ],
            ),
        );
        assert_eq!(
            deny_reason(&d),
            "rule \"files\" (rules[0]) does not allow delivering secret/x as env, kube-secret \
             (allowed: file)"
        );
        assert_eq!(d.rule.as_deref(), Some("rules[0] files"));
        let d = one(
            settings,
            &workload(),
            secret("secret", "x", &[DeliveryKind::File]),
        );
        assert_eq!(
            d.verdict,
            Verdict::Allow(Grant {
                delivery: Some(vec![DeliveryKind::File]),
                ..Grant::default()
            })
        );
    }

    #[test]
    fn placeholders_in_paths_and_targets() {
        let settings = r#"{"rules": [{"name": "own", "allow": {
            "paths": ["secret/{namespace-label:team}/**"],
            "targets": ["{namespace}-*", "{label:missing}-*"]}}]}"#;
        let d = one(settings, &workload(), secret("secret", "alpha/db", &[]));
        assert_eq!(
            d.verdict,
            Verdict::Allow(Grant {
                targets: Some(vec!["team-a-*".into()]),
                ..Grant::default()
            })
        );
        let d = one(settings, &workload(), secret("secret", "beta/db", &[]));
        assert_eq!(d.rule.as_deref(), Some("default"));

        let mut w = workload();
        w.namespace.clear();
        w.namespace_labels.insert("team".into(), String::new());
        let d = one(settings, &w, secret("secret", "/db", &[]));
        assert_eq!(d.rule.as_deref(), Some("default"));
    }

    #[test]
    fn targets_without_any_usable_pattern_deny() {
        let settings = r#"{"rules": [{"name": "own", "allow": {"paths": ["**"], "targets": ["{label:team}-*"]}}]}"#;
        let d = one(settings, &workload(), secret("secret", "x", &[]));
        assert_eq!(
            deny_reason(&d),
            "rule \"own\" (rules[0]) allows secret/x, but none of its target patterns applies to \
             this workload (no usable value for {label:team})"
        );
    }

    #[test]
    fn abstain_by_default() {
        let d = one(
            r#"{"rules": [], "default": "abstain"}"#,
            &workload(),
            secret("secret", "x", &[]),
        );
        assert_eq!(d.verdict, Verdict::Abstain);
        assert_eq!(d.rule, None);
    }

    #[test]
    fn mount_only_path() {
        let settings = r#"{"rules": [{"allow": {"paths": ["transit"]}}]}"#;
        let d = one(settings, &workload(), secret("transit", "", &[]));
        assert_eq!(d.rule.as_deref(), Some("rules[0]"));
    }
}
