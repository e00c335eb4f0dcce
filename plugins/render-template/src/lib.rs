//! Keyward's first-party renderer plugin: a Go `text/template` engine that
//! speaks the consul-template / Vault Agent / VSO dialect, plus `map`,
//! `json` and `dotenv` default formats for requests without a template.
//!
//! It owns template parsing and execution and the shaping of output into
//! artifacts (env vars, files, Kubernetes Secrets). It depends on nothing
//! of Keyward's: it sees only what the `renderer` world of `wit/` passes in.
//!
//! The engine is plain Rust and runs natively: [`validate_settings`],
//! [`plan`] and [`render`] are the three entry points, with types mirroring
//! the WIT records. The WebAssembly component glue (`wit-bindgen`) lives in
//! a module compiled only for `wasm32`.
//!
//! Settings are documented in [`settings`](crate#settings):
//! `missing-key` (`error` | `zero`), `format` (`map` | `json` | `dotenv`),
//! `secret-key`, `secret-type` (`Opaque`), `labels`, `annotations`,
//! `file-mode` (`0o600`), `env-names` (`verbatim` | `upper`).

use std::cell::{Cell, RefCell};
use std::fmt;
use std::rc::Rc;

mod output;
mod settings;
mod template;

#[cfg(target_arch = "wasm32")]
#[expect(
    unsafe_code,
    reason = "wit-bindgen's export! declares `unsafe extern \"C\"` functions with `export_name`"
)]
mod component;

use settings::Settings;
use template::{ExecOptions, GrantedSecret, Template};

/// How a secret may be delivered (WIT `delivery-kind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryKind {
    Env,
    File,
    KubeSecret,
}

/// Which template function referenced a secret (WIT `ref-kind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefKind {
    Secret,
    PkiCert,
}

/// A secret a template reads (WIT `secret-ref`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretRef {
    /// The path exactly as written, including `?version=N`.
    pub reference: String,
    /// `k=v` parameters split at the first `=`, in order.
    pub parameters: Vec<(String, String)>,
    pub kind: RefKind,
}

/// A granted secret's value (WIT `secret-value`).
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue {
    pub reference: String,
    pub parameters: Vec<(String, String)>,
    pub lease_id: String,
    pub lease_duration: u64,
    pub renewable: bool,
    /// The response's `data` object as JSON.
    pub data: String,
    pub warnings: Vec<String>,
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretValue")
            .field("reference", &self.reference)
            .field("parameters", &self.parameters)
            .field("lease_duration", &self.lease_duration)
            .field("renewable", &self.renewable)
            .field("data", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// Where the output goes (WIT `target`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub kind: DeliveryKind,
    /// File path, Secret name, or env var prefix.
    pub name: String,
    pub mode: Option<u32>,
}

/// Everything `render` needs (WIT `render-request`, minus the workload,
/// which this renderer does not use).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenderRequest {
    pub template: Option<String>,
    pub settings: String,
    pub target: Target,
    pub secrets: Vec<SecretValue>,
}

/// An environment variable.
#[derive(Clone, PartialEq, Eq)]
pub struct EnvVar {
    pub name: String,
    pub value: String,
}

/// A file in the output directory.
#[derive(Clone, PartialEq, Eq)]
pub struct File {
    pub path: String,
    pub mode: u32,
    pub contents: Vec<u8>,
}

/// A Kubernetes Secret.
#[derive(Clone, PartialEq, Eq)]
pub struct KubeSecret {
    pub name: String,
    pub secret_type: String,
    pub data: Vec<(String, Vec<u8>)>,
    pub labels: Vec<(String, String)>,
    pub annotations: Vec<(String, String)>,
}

impl fmt::Debug for EnvVar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnvVar")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for File {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("File")
            .field("path", &self.path)
            .field("mode", &format_args!("{:#o}", self.mode))
            .field("bytes", &self.contents.len())
            .finish()
    }
}

impl fmt::Debug for KubeSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys: Vec<&str> = self.data.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("KubeSecret")
            .field("name", &self.name)
            .field("secret_type", &self.secret_type)
            .field("keys", &keys)
            .field("labels", &self.labels)
            .field("annotations", &self.annotations)
            .finish()
    }
}

/// One rendered output (WIT `artifact`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Artifact {
    Env(EnvVar),
    File(File),
    KubeSecret(KubeSecret),
}

/// The plugin's own failures (WIT `plugin-error`). Messages never contain
/// secret values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PluginError {
    InvalidSettings(String),
    InvalidInput(String),
    Failed(String),
}

impl fmt::Display for PluginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PluginError::InvalidSettings(m) => write!(f, "invalid settings: {m}"),
            PluginError::InvalidInput(m) => write!(f, "invalid input: {m}"),
            PluginError::Failed(m) => write!(f, "failed: {m}"),
        }
    }
}

impl std::error::Error for PluginError {}

/// Checks a settings document.
pub fn validate_settings(settings: &str) -> Result<(), PluginError> {
    Settings::parse(settings).map(|_| ())
}

fn parse_template(src: &str) -> Result<Template<'_>, PluginError> {
    Template::parse(src).map_err(|e| PluginError::InvalidInput(e.to_string()))
}

/// Templates kept parsed (the first ones `plan` saw).
const KEPT: usize = 16;

/// Template sources leaked at most (kept ones, and ones that failed to
/// parse), so that a long-lived native caller leaks a bounded amount.
const MAX_LEAKED: usize = 4 * KEPT;

thread_local! {
    /// Templates `plan` parsed, over their leaked (so `'static`) source.
    /// Every call runs in a fresh instance, so this only lasts if the host
    /// pre-initialises the plugin: it calls `plan` with each configured
    /// template and snapshots the instance, and every later `render` of
    /// the same text (compared byte for byte) skips lexing and parsing.
    static KNOWN: RefCell<Vec<Rc<Template<'static>>>> = const { RefCell::new(Vec::new()) };
    static LEAKED: Cell<usize> = const { Cell::new(0) };
}

fn known(src: &str) -> Option<Rc<Template<'static>>> {
    KNOWN.with_borrow(|known| known.iter().find(|t| t.src == src).cloned())
}

/// Parse `src` and keep it, while there is room.
fn parse_and_keep(src: &str) -> Option<Result<Rc<Template<'static>>, PluginError>> {
    if KNOWN.with_borrow(Vec::len) >= KEPT || LEAKED.get() >= MAX_LEAKED {
        return None;
    }
    LEAKED.set(LEAKED.get() + 1);
    let leaked: &'static str = Box::leak(src.to_string().into_boxed_str());
    Some(parse_template(leaked).map(|t| {
        let t = Rc::new(t);
        KNOWN.with_borrow_mut(|known| known.push(t.clone()));
        t
    }))
}

/// A template kept from an earlier `plan`, or parsed for this call.
enum Parsed<'a> {
    Kept(Rc<Template<'static>>),
    Fresh(Template<'a>),
}

impl<'a> std::ops::Deref for Parsed<'a> {
    type Target = Template<'a>;

    fn deref(&self) -> &Template<'a> {
        match self {
            Parsed::Kept(t) => t,
            Parsed::Fresh(t) => t,
        }
    }
}

/// The parsed form of `src`: a kept one if there is one, else parsed now
/// (and kept, if `keep` and there is room).
fn template_for(src: &str, keep: bool) -> Result<Parsed<'_>, PluginError> {
    if let Some(t) = known(src) {
        return Ok(Parsed::Kept(t));
    }
    if keep && let Some(kept) = parse_and_keep(src) {
        return kept.map(Parsed::Kept);
    }
    parse_template(src).map(Parsed::Fresh)
}

/// Lists the secrets a template reads: every `secret` / `pkiCert` call,
/// deduplicated, in order of first occurrence. No template reads nothing.
pub fn plan(template: Option<&str>, settings: &str) -> Result<Vec<SecretRef>, PluginError> {
    Settings::parse(settings)?;
    let Some(src) = template else {
        return Ok(Vec::new());
    };
    let tmpl = template_for(src, true)?;
    let mut refs: Vec<SecretRef> = Vec::new();
    for call in &tmpl.calls {
        let r = SecretRef {
            reference: call.reference.to_string(),
            parameters: call.parameters.clone(),
            kind: match call.kind {
                template::RefKind::Secret => RefKind::Secret,
                template::RefKind::PkiCert => RefKind::PkiCert,
            },
        };
        if !refs.contains(&r) {
            refs.push(r);
        }
    }
    Ok(refs)
}

/// Renders granted secrets into artifacts for the request's target.
pub fn render(req: &RenderRequest) -> Result<Vec<Artifact>, PluginError> {
    let settings = Settings::parse(&req.settings)?;
    let Some(src) = &req.template else {
        return output::default_format(&req.secrets, &req.target, &settings);
    };
    let tmpl = template_for(src, false)?;
    // The engine borrows the granted values; nothing is copied.
    let granted: Vec<GrantedSecret<'_>> = req
        .secrets
        .iter()
        .map(|s| GrantedSecret {
            reference: &s.reference,
            parameters: &s.parameters,
            lease_id: &s.lease_id,
            lease_duration: s.lease_duration,
            renewable: s.renewable,
            data: &s.data,
            warnings: &s.warnings,
        })
        .collect();
    let out = tmpl
        .execute(&ExecOptions {
            missing_key: settings.missing_key,
            secrets: &granted,
        })
        .map_err(|e| PluginError::InvalidInput(e.to_string()))?;
    output::from_template(out, &req.target, &settings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(template: &str) -> RenderRequest {
        RenderRequest {
            template: Some(template.into()),
            settings: "{}".into(),
            target: Target {
                kind: DeliveryKind::File,
                name: "out".into(),
                mode: None,
            },
            secrets: vec![SecretValue {
                reference: "secret/data/app".into(),
                parameters: Vec::new(),
                lease_id: String::new(),
                lease_duration: 0,
                renewable: false,
                data: r#"{"data": {"user": "app"}, "metadata": {"version": 2}}"#.into(),
                warnings: Vec::new(),
            }],
        }
    }

    #[test]
    fn planned_templates_are_kept_and_render_the_same() {
        let templates: Vec<String> = (0..KEPT + 3)
            .map(|n| format!("{n}: {{{{ with secret \"secret/data/app\" }}}}{{{{ .Data.data.user }}}}{{{{ end }}}}"))
            .collect();
        let fresh: Vec<_> = templates
            .iter()
            .map(|t| render(&request(t)).unwrap())
            .collect();
        for t in &templates {
            assert_eq!(plan(Some(t), "{}").unwrap().len(), 1);
            // Planning again finds the kept one.
            assert_eq!(plan(Some(t), "{}").unwrap().len(), 1);
        }
        for (n, t) in templates.iter().enumerate() {
            assert_eq!(known(t).is_some(), n < KEPT, "{n}");
            assert_eq!(render(&request(t)).unwrap(), fresh[n], "{n}");
        }
        // A template that does not parse is reported, and not kept.
        KNOWN.with_borrow_mut(Vec::clear);
        assert!(plan(Some("{{ if }}"), "{}").is_err());
        assert!(known("{{ if }}").is_none());
        assert!(LEAKED.get() <= MAX_LEAKED);
    }
}
