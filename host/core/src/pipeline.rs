//! The pipeline: plan -> decide -> fetch -> render -> check.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;

use crate::audit::{AuditEvent, Auditor, hash_id};
use crate::check::{Limits, check_artifacts};
use crate::error::{Denial, Error, PluginFailure, Result, SandboxReason, Stage};
use crate::mounts::MountTable;
use crate::types::{
    Artifact, DecideRequest, DeliveryKind, Engine, Grant, RenderRequest, SecretDecision, SecretRef,
    SecretRequest, SecretValue, Target, Verdict, Workload,
};

/// A policy: decides, value-blind, which secrets a workload may have.
#[async_trait]
pub trait Policy: Send + Sync {
    /// Check settings.
    async fn validate_settings(&self, settings: &str) -> Result<(), PluginFailure>;
    /// Decide on every requested secret.
    async fn decide(&self, request: DecideRequest) -> Result<Vec<SecretDecision>, PluginFailure>;
}

/// A renderer: lists the secrets a template reads and renders granted values.
#[async_trait]
pub trait Renderer: Send + Sync {
    /// Check settings.
    async fn validate_settings(&self, settings: &str) -> Result<(), PluginFailure>;
    /// Secrets a template reads.
    async fn plan(
        &self,
        template: Option<&str>,
        settings: &str,
    ) -> Result<Vec<SecretRef>, PluginFailure>;
    /// Render values into artifacts.
    async fn render(&self, request: RenderRequest) -> Result<Vec<Artifact>, PluginFailure>;
}

/// Where secret values come from (Vault, fixtures).
#[async_trait]
pub trait SecretSource: Send + Sync {
    /// Read or issue one secret within the grant's limits (TTL cap).
    async fn fetch(
        &self,
        secret: &SecretRef,
        request: &SecretRequest,
        grant: &Grant,
    ) -> Result<SecretValue, Box<dyn std::error::Error + Send + Sync>>;
}

/// One policy in the chain.
#[derive(Clone)]
pub struct PolicyStep {
    /// Name for errors and audit.
    pub name: String,
    /// The policy.
    pub policy: Arc<dyn Policy>,
    /// Its settings (JSON).
    pub settings: String,
}

impl std::fmt::Debug for PolicyStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyStep")
            .field("name", &self.name)
            .finish()
    }
}

/// One output: a template (or default format) rendered by a renderer into a
/// target.
#[derive(Clone)]
pub struct Binding {
    /// Unique name, for errors and audit.
    pub name: String,
    /// Renderer plugin name.
    pub renderer_name: String,
    /// The renderer.
    pub renderer: Arc<dyn Renderer>,
    /// Template text; `None` for the renderer's default format.
    pub template: Option<String>,
    /// Renderer settings (JSON).
    pub settings: String,
    /// Output target.
    pub target: Target,
    /// Secrets read besides those the template names (the default format
    /// reads only these).
    pub secrets: Vec<SecretRef>,
}

impl std::fmt::Debug for Binding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Binding")
            .field("name", &self.name)
            .field("renderer", &self.renderer_name)
            .field("target", &self.target)
            .field("secrets", &self.secrets)
            .finish()
    }
}

/// A secret the chain allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecidedSecret {
    /// The reference and parameters.
    pub secret: SecretRef,
    /// The classified request.
    pub request: SecretRequest,
    /// The effective grant (intersection of the allowing policies).
    pub grant: Grant,
    /// Policies (and rules) that allowed it.
    pub allowed_by: Vec<String>,
}

/// Result of plan + decide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decided {
    /// Allowed secrets, keyed by [`SecretRef::key`].
    pub secrets: BTreeMap<String, DecidedSecret>,
    /// For each binding (same order), the keys of the secrets it reads.
    pub binding_secrets: Vec<Vec<String>>,
}

/// Secrets [`Pipeline::fetch`] requests at once.
const MAX_CONCURRENT_FETCHES: usize = 8;

/// Fetched values, keyed by [`SecretRef::key`].
#[derive(Debug, Clone, Default)]
pub struct Fetched {
    /// Values.
    pub values: BTreeMap<String, SecretValue>,
}

/// A binding's checked output.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// Binding name.
    pub binding: String,
    /// Target.
    pub target: Target,
    /// Artifacts, checked.
    pub artifacts: Vec<Artifact>,
}

/// The pipeline.
#[derive(Debug, Clone)]
pub struct Pipeline {
    policies: Vec<PolicyStep>,
    mounts: MountTable,
    limits: Limits,
    auditor: Auditor,
}

impl Pipeline {
    /// A pipeline with a policy chain and a mount table.
    pub fn new(policies: Vec<PolicyStep>, mounts: MountTable) -> Self {
        Pipeline {
            policies,
            mounts,
            limits: Limits::default(),
            auditor: Auditor::null(),
        }
    }

    /// Set output limits.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Set the auditor.
    pub fn with_auditor(mut self, auditor: Auditor) -> Self {
        self.auditor = auditor;
        self
    }

    /// The auditor.
    pub fn auditor(&self) -> &Auditor {
        &self.auditor
    }

    /// The mount table.
    pub fn mounts(&self) -> &MountTable {
        &self.mounts
    }

    /// Validate every plugin's settings (configuration time).
    pub async fn validate(&self, bindings: &[Binding]) -> Result<()> {
        for step in &self.policies {
            step.policy
                .validate_settings(&step.settings)
                .await
                .map_err(|source| Error::Plugin {
                    plugin: step.name.clone(),
                    stage: Stage::ValidateSettings,
                    source,
                })?;
        }
        for b in bindings {
            b.renderer
                .validate_settings(&b.settings)
                .await
                .map_err(|source| Error::Plugin {
                    plugin: b.renderer_name.clone(),
                    stage: Stage::ValidateSettings,
                    source,
                })?;
        }
        Ok(())
    }

    /// Plan every binding and run the policy chain. Any denial fails the
    /// whole request: nothing is fetched or rendered.
    pub async fn decide(&self, workload: &Workload, bindings: &[Binding]) -> Result<Decided> {
        let mut names = std::collections::BTreeSet::new();
        for b in bindings {
            if !names.insert(b.name.as_str()) {
                return Err(Error::InvalidBinding {
                    binding: b.name.clone(),
                    detail: "two bindings have this name".into(),
                });
            }
        }
        // plan
        let mut refs: BTreeMap<String, (SecretRef, Vec<DeliveryKind>)> = BTreeMap::new();
        let mut order: Vec<String> = Vec::new();
        let mut binding_secrets = Vec::with_capacity(bindings.len());
        for b in bindings {
            let planned = b
                .renderer
                .plan(b.template.as_deref(), &b.settings)
                .await
                .map_err(|source| Error::Plugin {
                    plugin: b.renderer_name.clone(),
                    stage: Stage::Plan,
                    source,
                })?;
            let mut keys = Vec::new();
            for secret in b.secrets.iter().chain(planned.iter()) {
                let key = secret.key();
                let entry = refs.entry(key.clone()).or_insert_with(|| {
                    order.push(key.clone());
                    (secret.clone(), Vec::new())
                });
                if !entry.1.contains(&b.target.kind) {
                    entry.1.push(b.target.kind);
                }
                if !keys.contains(&key) {
                    keys.push(key);
                }
            }
            binding_secrets.push(keys);
        }
        // classify
        let mut requests = Vec::with_capacity(order.len());
        for key in &order {
            let (secret, delivery) = &refs[key];
            let mut request = self.mounts.classify(secret, delivery)?;
            request.reference = key.clone();
            requests.push(request);
        }
        // decide
        let who = workload_label(workload);
        let mut verdicts: BTreeMap<String, Vec<(String, SecretDecision)>> = BTreeMap::new();
        for step in &self.policies {
            let decisions = step
                .policy
                .decide(DecideRequest {
                    workload: workload.clone(),
                    secrets: requests.clone(),
                    settings: step.settings.clone(),
                })
                .await
                .map_err(|source| Error::Plugin {
                    plugin: step.name.clone(),
                    stage: Stage::Decide,
                    source,
                })?;
            let mut answered = std::collections::BTreeSet::new();
            for d in decisions {
                if !refs.contains_key(&d.reference) {
                    return Err(Error::Plugin {
                        plugin: step.name.clone(),
                        stage: Stage::Decide,
                        source: PluginFailure::Sandbox {
                            reason: SandboxReason::Contract,
                            detail: format!(
                                "decision for {:?}, which was not requested",
                                d.reference
                            ),
                        },
                    });
                }
                if !answered.insert(d.reference.clone()) {
                    return Err(Error::Plugin {
                        plugin: step.name.clone(),
                        stage: Stage::Decide,
                        source: PluginFailure::Sandbox {
                            reason: SandboxReason::Contract,
                            detail: format!("two decisions for {:?}", d.reference),
                        },
                    });
                }
                let request = requests.iter().find(|r| r.reference == d.reference);
                let (verdict, reason) = match &d.verdict {
                    Verdict::Allow(_) => ("allow", None),
                    Verdict::Deny(r) => ("deny", Some(r.clone())),
                    Verdict::Abstain => ("abstain", None),
                };
                self.auditor.record(AuditEvent::Decision {
                    workload: who.clone(),
                    reference: d.reference.clone(),
                    path: request.map(SecretRequest::full_path).unwrap_or_default(),
                    verdict: verdict.into(),
                    policy: step.name.clone(),
                    rule: d.rule.clone(),
                    reason,
                });
                verdicts
                    .entry(d.reference.clone())
                    .or_default()
                    .push((step.name.clone(), d));
            }
        }
        // combine: any deny wins; otherwise at least one allow is needed.
        let mut denials = Vec::new();
        let mut secrets = BTreeMap::new();
        for request in &requests {
            let key = &request.reference;
            let answers = verdicts.remove(key).unwrap_or_default();
            let mut grant: Option<Grant> = None;
            let mut allowed_by = Vec::new();
            let mut denied = false;
            for (policy, d) in &answers {
                match &d.verdict {
                    Verdict::Deny(reason) => {
                        denied = true;
                        denials.push(Denial {
                            reference: key.clone(),
                            policy: policy.clone(),
                            rule: d.rule.clone(),
                            reason: reason.clone(),
                        });
                    }
                    Verdict::Allow(g) => {
                        grant = Some(match grant {
                            None => g.clone(),
                            Some(prev) => prev.intersect(g),
                        });
                        allowed_by.push(match &d.rule {
                            Some(rule) => format!("{policy} ({rule})"),
                            None => policy.clone(),
                        });
                    }
                    Verdict::Abstain => {}
                }
            }
            if denied {
                continue;
            }
            match grant {
                None => denials.push(Denial {
                    reference: key.clone(),
                    policy: "chain".into(),
                    rule: None,
                    reason: if self.policies.is_empty() {
                        "no policy is configured, and secrets are denied by default".into()
                    } else {
                        "no policy allowed it".into()
                    },
                }),
                Some(grant) => {
                    if let Some(kinds) = &grant.delivery
                        && let Some(kind) = request.delivery.iter().find(|k| !kinds.contains(k))
                    {
                        denials.push(Denial {
                            reference: key.clone(),
                            policy: allowed_by.join(", "),
                            rule: None,
                            reason: format!("delivery as {kind} is not granted"),
                        });
                        continue;
                    }
                    secrets.insert(
                        key.clone(),
                        DecidedSecret {
                            secret: refs[key].0.clone(),
                            request: request.clone(),
                            grant,
                            allowed_by,
                        },
                    );
                }
            }
        }
        if !denials.is_empty() {
            for d in &denials {
                self.auditor.record(AuditEvent::Decision {
                    workload: who.clone(),
                    reference: d.reference.clone(),
                    path: requests
                        .iter()
                        .find(|r| r.reference == d.reference)
                        .map(SecretRequest::full_path)
                        .unwrap_or_default(),
                    verdict: "deny".into(),
                    policy: "chain".into(),
                    rule: d.rule.clone(),
                    reason: Some(d.reason.clone()),
                });
            }
            return Err(Error::Denied(denials));
        }
        Ok(Decided {
            secrets,
            binding_secrets,
        })
    }

    /// Fetch every allowed secret once, keeping only granted keys.
    pub async fn fetch(&self, decided: &Decided, source: &dyn SecretSource) -> Result<Fetched> {
        use futures_util::stream::{StreamExt as _, TryStreamExt as _};
        // Side by side (a PKI issue or a database credential can take tens
        // of milliseconds on the server), a bounded number at a time; the
        // first failure ends the fetch.
        let mut calls = Vec::with_capacity(decided.secrets.len());
        for (key, d) in &decided.secrets {
            calls.push(
                async move { Ok::<_, Error>((key.clone(), self.fetch_one(d, source).await?)) },
            );
        }
        let values: Vec<(String, SecretValue)> = futures_util::stream::iter(calls)
            .buffered(MAX_CONCURRENT_FETCHES)
            .try_collect()
            .await?;
        Ok(Fetched {
            values: values.into_iter().collect(),
        })
    }

    /// Fetch one allowed secret, keeping only granted keys, and audit it.
    pub async fn fetch_one(
        &self,
        d: &DecidedSecret,
        source: &dyn SecretSource,
    ) -> Result<SecretValue> {
        let mut value = source
            .fetch(&d.secret, &d.request, &d.grant)
            .await
            .map_err(|source| Error::Fetch {
                reference: d.request.reference.clone(),
                source,
            })?;
        value.reference = d.secret.reference.clone();
        value.parameters = d.secret.parameters.clone();
        if let Some(keys) = &d.grant.allowed_keys {
            filter_keys(&mut value, d.request.engine, keys);
        }
        self.auditor.record(AuditEvent::Fetch {
            reference: d.request.reference.clone(),
            path: d.request.full_path(),
            lease_id_sha256: hash_id(&value.lease_id),
            ttl_seconds: value.lease_duration,
            renewable: value.renewable,
        });
        Ok(value)
    }

    /// Render every binding and check its artifacts.
    pub async fn render(
        &self,
        workload: &Workload,
        bindings: &[Binding],
        decided: &Decided,
        fetched: &Fetched,
    ) -> Result<Vec<Rendered>> {
        let mut out = Vec::with_capacity(bindings.len());
        for (b, keys) in bindings.iter().zip(&decided.binding_secrets) {
            out.push(self.render_one(workload, b, keys, decided, fetched).await?);
        }
        Ok(out)
    }

    /// Render one binding (`keys` from [`Decided::binding_secrets`]).
    pub async fn render_one(
        &self,
        workload: &Workload,
        b: &Binding,
        keys: &[String],
        decided: &Decided,
        fetched: &Fetched,
    ) -> Result<Rendered> {
        let mut values = Vec::with_capacity(keys.len());
        let mut grants = Vec::with_capacity(keys.len());
        for key in keys {
            let (Some(d), Some(v)) = (decided.secrets.get(key), fetched.values.get(key)) else {
                return Err(Error::InvalidBinding {
                    binding: b.name.clone(),
                    detail: format!("{key:?} was not decided and fetched"),
                });
            };
            values.push(v.clone());
            grants.push((key.clone(), d.grant.clone()));
        }
        let artifacts = b
            .renderer
            .render(RenderRequest {
                workload: workload.clone(),
                template: b.template.clone(),
                settings: b.settings.clone(),
                target: b.target.clone(),
                secrets: values,
            })
            .await
            .map_err(|source| Error::Plugin {
                plugin: b.renderer_name.clone(),
                stage: Stage::Render,
                source,
            })?;
        check_artifacts(&b.name, &b.target, &grants, &artifacts, &self.limits)?;
        self.auditor.record(AuditEvent::Render {
            binding: b.name.clone(),
            artifacts: artifacts.iter().map(|a| self.auditor.digest(a)).collect(),
        });
        Ok(Rendered {
            binding: b.name.clone(),
            target: b.target.clone(),
            artifacts,
        })
    }

    /// Plan, decide, fetch, render and check.
    pub async fn run(
        &self,
        workload: &Workload,
        bindings: &[Binding],
        source: &dyn SecretSource,
    ) -> Result<(Decided, Fetched, Vec<Rendered>)> {
        let decided = self.decide(workload, bindings).await?;
        let fetched = self.fetch(&decided, source).await?;
        let rendered = self.render(workload, bindings, &decided, &fetched).await?;
        Ok((decided, fetched, rendered))
    }
}

/// `namespace/service-account`, or `kind/name` outside Kubernetes.
fn workload_label(w: &Workload) -> String {
    if !w.namespace.is_empty() || !w.service_account.is_empty() {
        format!("{}/{}", w.namespace, w.service_account)
    } else {
        format!("{}/{}", w.kind, w.name)
    }
}

/// Keep only `keys` of a value's data (KV v2: of `data.data`).
fn filter_keys(value: &mut SecretValue, engine: Engine, keys: &[String]) {
    let data = &mut value.data.0;
    let target = if engine == Engine::Kv2 {
        data.get_mut("data")
    } else {
        Some(data)
    };
    if let Some(serde_json::Value::Object(map)) = target {
        map.retain(|k, _| keys.iter().any(|allowed| allowed == k));
    }
}

#[cfg(test)]
mod tests;
