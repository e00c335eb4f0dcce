//! The settings document: parsing and validation.
//!
//! Settings are walked by hand rather than through `serde` derives so that
//! every error names exactly where it is (`rules[2].allow.max-ttl: ...`) and
//! every unknown key is rejected with the list of keys allowed there.
//! `README.md` documents the schema.
//!
//! The walk runs over a [`Json`] tree, which borrows from the document, and
//! carries its position as an [`At`] that is only rendered into a message
//! when there is an error: the host parses the settings on every call (each
//! call gets a fresh instance), so a valid document should cost little more
//! than reading it.

#[cfg(target_arch = "wasm32")]
use crate::prelude::*;

use core::fmt;

use crate::model::{DeliveryKind, Engine};

use crate::duration::parse_ttl;
use crate::json::{Json, Object};
use crate::pattern::{Glob, Template};

/// Longest rule name accepted.
const MAX_NAME_LEN: usize = 63;

/// A validated policy.
#[derive(Debug, Clone)]
pub struct Policy {
    pub(crate) rules: Vec<Rule>,
    pub(crate) fallback: Fallback,
}

/// What happens to a secret no rule decides on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fallback {
    Deny,
    Abstain,
}

#[derive(Debug, Clone)]
pub(crate) struct Rule {
    pub(crate) index: usize,
    pub(crate) name: Option<String>,
    pub(crate) matcher: Matcher,
    pub(crate) action: Action,
}

impl Rule {
    /// The rule as the `rule` field of a decision names it: `rules[0] team-a`.
    /// Built without `core::fmt`: it runs for every decision, and the
    /// formatting machinery costs more than the rest of a small decision.
    pub(crate) fn audit_label(&self) -> String {
        let name = self.name.as_deref();
        let mut label = String::with_capacity(32 + name.map_or(0, str::len));
        label.push_str("rules[");
        push_decimal(&mut label, self.index);
        label.push(']');
        if let Some(name) = name {
            label.push(' ');
            label.push_str(name);
        }
        label
    }

    /// The rule as reasons name it: `rule "team-a" (rules[0])`.
    pub(crate) fn describe(&self) -> String {
        match &self.name {
            Some(name) => format!("rule \"{name}\" (rules[{}])", self.index),
            None => format!("rule rules[{}]", self.index),
        }
    }
}

/// Appends `n` in decimal.
fn push_decimal(out: &mut String, mut n: usize) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b"0123456789"[n % 10];
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in &digits[start..] {
        out.push(char::from(d));
    }
}

/// Which workloads a rule applies to. Every given criterion must hold.
#[derive(Debug, Clone, Default)]
pub(crate) struct Matcher {
    pub(crate) namespaces: Option<Vec<Glob>>,
    pub(crate) service_accounts: Option<Vec<Glob>>,
    pub(crate) clusters: Option<Vec<Glob>>,
    pub(crate) kinds: Option<Vec<Glob>>,
    pub(crate) names: Option<Vec<Glob>>,
    pub(crate) images: Option<Vec<Glob>>,
    pub(crate) labels: Vec<(String, Glob)>,
    pub(crate) namespace_labels: Vec<(String, Glob)>,
}

/// What a rule does with the secrets it covers.
#[derive(Debug, Clone)]
pub(crate) enum Action {
    Allow(Allow),
    Deny(Deny),
}

#[derive(Debug, Clone)]
pub(crate) struct Allow {
    pub(crate) scope: Scope,
    pub(crate) delivery: Option<Vec<DeliveryKind>>,
    pub(crate) max_ttl_seconds: Option<u64>,
    pub(crate) keys: Option<Vec<String>>,
    pub(crate) targets: Option<Vec<Template>>,
}

#[derive(Debug, Clone)]
pub(crate) struct Deny {
    pub(crate) scope: Scope,
    pub(crate) reason: Option<String>,
}

/// Which secrets a rule covers: a path pattern matches and, when engines are
/// given, the engine is one of them.
#[derive(Debug, Clone)]
pub(crate) struct Scope {
    pub(crate) paths: Vec<Template>,
    pub(crate) engines: Option<Vec<Engine>>,
}

impl Action {
    pub(crate) fn scope(&self) -> &Scope {
        match self {
            Action::Allow(a) => &a.scope,
            Action::Deny(d) => &d.scope,
        }
    }
}

const TOP_KEYS: &[&str] = &["rules", "default"];
const RULE_KEYS: &[&str] = &["name", "description", "match", "allow", "deny"];
const MATCH_KEYS: &[&str] = &[
    "namespaces",
    "service-accounts",
    "labels",
    "namespace-labels",
    "images",
    "kinds",
    "clusters",
    "names",
];
const ALLOW_KEYS: &[&str] = &["paths", "engines", "delivery", "max-ttl", "keys", "targets"];
const DENY_KEYS: &[&str] = &["paths", "engines", "reason"];

/// Where a value is in the document, for error messages: it displays as
/// `rules[2].allow.max-ttl`. A chain of borrowed links built on the stack as
/// the walk descends, rendered only when an error is, so a document without
/// errors costs no formatting.
#[derive(Debug, Clone, Copy)]
enum At<'p> {
    /// A top-level name: `settings`, `rules`.
    Root(&'static str),
    /// `parent.key`.
    Key(&'p At<'p>, &'p str),
    /// `parent[index]`.
    Index(&'p At<'p>, usize),
}

impl At<'_> {
    fn key<'q>(&'q self, key: &'q str) -> At<'q> {
        At::Key(self, key)
    }

    fn index(&self, index: usize) -> At<'_> {
        At::Index(self, index)
    }
}

impl fmt::Display for At<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            At::Root(name) => f.write_str(name),
            At::Key(parent, key) => write!(f, "{parent}.{key}"),
            At::Index(parent, index) => write!(f, "{parent}[{index}]"),
        }
    }
}

impl Policy {
    /// Parse and validate a settings document. The error says where the
    /// problem is, e.g. `rules[0].allow.max-ttl: ...`.
    pub fn parse(settings: &str) -> Result<Policy, String> {
        let doc = Json::parse(settings).map_err(|e| format!("settings are not valid JSON: {e}"))?;
        let top = object(&doc, At::Root("settings"), TOP_KEYS)?;
        let fallback = match top.get("default") {
            None => Fallback::Deny,
            Some(Json::String(s)) if s == "deny" => Fallback::Deny,
            Some(Json::String(s)) if s == "abstain" => Fallback::Abstain,
            Some(other) => {
                return Err(format!(
                    "default: must be \"deny\" or \"abstain\", not {}",
                    describe_value(other)
                ));
            }
        };
        let rules = match top.get("rules") {
            None => return Err("settings: missing key \"rules\" (use [] for no rules)".into()),
            Some(Json::Array(items)) => items,
            Some(other) => {
                return Err(format!("rules: must be an array, not {}", json_type(other)));
            }
        };
        let mut parsed: Vec<Rule> = Vec::with_capacity(rules.len());
        for (index, item) in rules.iter().enumerate() {
            let rule = parse_rule(index, item)?;
            if let Some(name) = &rule.name
                && let Some(earlier) = parsed.iter().find(|r| r.name.as_ref() == Some(name))
            {
                return Err(format!(
                    "rules[{index}].name: \"{name}\" is already the name of rules[{}]",
                    earlier.index
                ));
            }
            parsed.push(rule);
        }
        Ok(Policy {
            rules: parsed,
            fallback,
        })
    }
}

fn parse_rule(index: usize, value: &Json<'_>) -> Result<Rule, String> {
    let at = At::Root("rules");
    let at = at.index(index);
    let obj = object(value, at, RULE_KEYS)?;
    let name = match obj.get("name") {
        None => None,
        Some(v) => Some(parse_name(v).map_err(|e| format!("{at}.name: {e}"))?),
    };
    if let Some(v) = obj.get("description")
        && v.as_str().is_none()
    {
        return Err(format!(
            "{at}.description: must be a string, not {}",
            json_type(v)
        ));
    }
    let matcher = match obj.get("match") {
        None => Matcher::default(),
        Some(v) => parse_match(v, at.key("match"))?,
    };
    let action = match (obj.get("allow"), obj.get("deny")) {
        (Some(v), None) => Action::Allow(parse_allow(v, at.key("allow"))?),
        (None, Some(v)) => Action::Deny(parse_deny(v, at.key("deny"))?),
        (Some(_), Some(_)) => {
            return Err(format!(
                "{at}: has both \"allow\" and \"deny\"; a rule does exactly one (split it in two)"
            ));
        }
        (None, None) => return Err(format!("{at}: needs either \"allow\" or \"deny\"")),
    };
    Ok(Rule {
        index,
        name,
        matcher,
        action,
    })
}

fn parse_name(value: &Json<'_>) -> Result<String, String> {
    let name = value
        .as_str()
        .ok_or_else(|| format!("must be a string, not {}", json_type(value)))?;
    let valid = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if valid {
        Ok(name.to_string())
    } else {
        Err(format!(
            "{name:?} is not a valid rule name (1 to {MAX_NAME_LEN} characters: letters, digits, \
             `-`, `_`, `.`, starting with a letter or digit)"
        ))
    }
}

fn parse_match(value: &Json<'_>, at: At<'_>) -> Result<Matcher, String> {
    let obj = object(value, at, MATCH_KEYS)?;
    let globs = |key: &str| -> Result<Option<Vec<Glob>>, String> {
        let Some(v) = obj.get(key) else {
            return Ok(None);
        };
        let at = at.key(key);
        strings(string_list(v, at)?)
            .enumerate()
            .map(|(i, s)| Glob::parse(s).map_err(|e| format!("{at}[{i}]: {e}")))
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    };
    let label_map = |key: &str| -> Result<Vec<(String, Glob)>, String> {
        let Some(v) = obj.get(key) else {
            return Ok(Vec::new());
        };
        let at = at.key(key);
        let map = v
            .as_object()
            .ok_or_else(|| format!("{at}: must be an object, not {}", json_type(v)))?;
        if map.is_empty() {
            return Err(format!(
                "{at}: must not be empty (leave it out to match any labels)"
            ));
        }
        map.iter()
            .map(|(label, pattern)| {
                let at = at.key(label);
                if label.is_empty() {
                    return Err(format!("{at}: label names must not be empty"));
                }
                let pattern = pattern.as_str().ok_or_else(|| {
                    format!("{at}: must be a string pattern, not {}", json_type(pattern))
                })?;
                let glob = Glob::parse(pattern).map_err(|e| format!("{at}: {e}"))?;
                Ok((label.to_string(), glob))
            })
            .collect()
    };
    Ok(Matcher {
        namespaces: globs("namespaces")?,
        service_accounts: globs("service-accounts")?,
        clusters: globs("clusters")?,
        kinds: globs("kinds")?,
        names: globs("names")?,
        images: globs("images")?,
        labels: label_map("labels")?,
        namespace_labels: label_map("namespace-labels")?,
    })
}

fn parse_scope(obj: &Object<'_>, at: At<'_>) -> Result<Scope, String> {
    let paths = obj
        .get("paths")
        .ok_or_else(|| format!("{at}: missing key \"paths\" (use [\"**\"] for every path)"))?;
    let paths = templates(paths, at.key("paths"))?;
    let engines = match obj.get("engines") {
        None => None,
        Some(v) => Some(parse_engines(v, at.key("engines"))?),
    };
    Ok(Scope { paths, engines })
}

fn parse_allow(value: &Json<'_>, at: At<'_>) -> Result<Allow, String> {
    let obj = object(value, at, ALLOW_KEYS)?;
    let scope = parse_scope(obj, at)?;
    let delivery = match obj.get("delivery") {
        None => None,
        Some(v) => Some(parse_delivery(v, at.key("delivery"))?),
    };
    let max_ttl_seconds = match obj.get("max-ttl") {
        None => None,
        Some(v) => Some(parse_ttl(v).map_err(|e| format!("{at}.max-ttl: {e}"))?),
    };
    let keys = match obj.get("keys") {
        None => None,
        Some(v) => {
            let at = at.key("keys");
            let keys = string_list(v, at)?;
            for (i, key) in strings(keys).enumerate() {
                if key.is_empty() {
                    return Err(format!("{at}[{i}]: key names must not be empty"));
                }
            }
            no_duplicates(keys, at)?;
            Some(strings(keys).map(str::to_string).collect())
        }
    };
    let targets = match obj.get("targets") {
        None => None,
        Some(v) => Some(templates(v, at.key("targets"))?),
    };
    Ok(Allow {
        scope,
        delivery,
        max_ttl_seconds,
        keys,
        targets,
    })
}

fn parse_deny(value: &Json<'_>, at: At<'_>) -> Result<Deny, String> {
    let obj = object(value, at, DENY_KEYS)?;
    let scope = parse_scope(obj, at)?;
    let reason = match obj.get("reason") {
        None => None,
        Some(Json::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Some(Json::String(_)) => {
            return Err(format!(
                "{at}.reason: must not be empty (leave it out for no reason)"
            ));
        }
        Some(v) => {
            return Err(format!(
                "{at}.reason: must be a string, not {}",
                json_type(v)
            ));
        }
    };
    Ok(Deny { scope, reason })
}

fn templates(value: &Json<'_>, at: At<'_>) -> Result<Vec<Template>, String> {
    strings(string_list(value, at)?)
        .enumerate()
        .map(|(i, s)| Template::parse(s).map_err(|e| format!("{at}[{i}]: {e}")))
        .collect()
}

fn parse_engines(value: &Json<'_>, at: At<'_>) -> Result<Vec<Engine>, String> {
    const ENGINES: [Engine; 6] = [
        Engine::Kv1,
        Engine::Kv2,
        Engine::Database,
        Engine::Pki,
        Engine::Transit,
        Engine::Generic,
    ];
    let names = string_list(value, at)?;
    no_duplicates(names, at)?;
    strings(names)
        .enumerate()
        .map(|(i, name)| {
            ENGINES
                .into_iter()
                .find(|e| e.as_str() == name)
                .ok_or_else(|| {
                    format!(
                        "{at}[{i}]: unknown engine {name:?} (known: kv1, kv2, database, pki, \
                         transit, generic)"
                    )
                })
        })
        .collect()
}

fn parse_delivery(value: &Json<'_>, at: At<'_>) -> Result<Vec<DeliveryKind>, String> {
    const KINDS: [DeliveryKind; 3] = [
        DeliveryKind::Env,
        DeliveryKind::File,
        DeliveryKind::KubeSecret,
    ];
    let names = string_list(value, at)?;
    no_duplicates(names, at)?;
    strings(names)
        .enumerate()
        .map(|(i, name)| {
            KINDS
                .into_iter()
                .find(|k| k.as_str() == name)
                .ok_or_else(|| {
                    format!(
                        "{at}[{i}]: unknown delivery kind {name:?} (known: env, file, kube-secret)"
                    )
                })
        })
        .collect()
}

/// `value` as an object holding only `known` keys.
fn object<'v, 'a>(
    value: &'v Json<'a>,
    at: At<'_>,
    known: &[&str],
) -> Result<&'v Object<'a>, String> {
    let obj = value
        .as_object()
        .ok_or_else(|| format!("{at}: must be an object, not {}", json_type(value)))?;
    if let Some(key) = obj.keys().find(|k| !known.contains(k)) {
        return Err(format!(
            "{at}: unknown key {key:?} (expected one of: {})",
            known.join(", ")
        ));
    }
    Ok(obj)
}

/// `value` as a non-empty array of strings; read them with [`strings`].
fn string_list<'v, 'a>(value: &'v Json<'a>, at: At<'_>) -> Result<&'v [Json<'a>], String> {
    let items = value.as_array().ok_or_else(|| {
        format!(
            "{at}: must be an array of strings, not {}",
            json_type(value)
        )
    })?;
    if items.is_empty() {
        return Err(format!("{at}: must not be empty"));
    }
    if let Some((i, item)) = items.iter().enumerate().find(|(_, v)| v.as_str().is_none()) {
        return Err(format!(
            "{at}[{i}]: must be a string, not {}",
            json_type(item)
        ));
    }
    Ok(items)
}

/// The strings of a list [`string_list`] accepted (all of its items).
fn strings<'v>(items: &'v [Json<'_>]) -> impl Iterator<Item = &'v str> + Clone {
    items.iter().filter_map(Json::as_str)
}

fn no_duplicates(items: &[Json<'_>], at: At<'_>) -> Result<(), String> {
    for (i, item) in strings(items).enumerate() {
        if strings(&items[..i]).any(|earlier| earlier == item) {
            return Err(format!("{at}[{i}]: {item:?} is listed twice"));
        }
    }
    Ok(())
}

/// A JSON value's type, for messages: `an array`, `null`, ...
pub(crate) fn json_type(value: &Json<'_>) -> &'static str {
    match value {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

/// A short description of a scalar value, or its type for anything else.
fn describe_value(value: &Json<'_>) -> String {
    match value {
        Json::String(s) => format!("{s:?}"),
        // As `serde_json::Value` renders them.
        Json::Bool(b) => serde_json::Value::Bool(*b).to_string(),
        Json::Number(n) => serde_json::Value::Number(n.clone()).to_string(),
        Json::Null => serde_json::Value::Null.to_string(),
        _ => json_type(value).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(settings: &str) -> String {
        Policy::parse(settings).expect_err(settings)
    }

    #[test]
    fn minimal_documents() {
        let p = Policy::parse(r#"{"rules": []}"#).unwrap();
        assert!(p.rules.is_empty());
        assert_eq!(p.fallback, Fallback::Deny);
        let p = Policy::parse(r#"{"rules": [], "default": "abstain"}"#).unwrap();
        assert_eq!(p.fallback, Fallback::Abstain);
    }

    #[test]
    fn full_rule() {
        let p = Policy::parse(
            r#"{"rules": [{
                "name": "team-a", "description": "team A's own secrets",
                "match": {"namespaces": ["team-a", "team-a-*"], "service-accounts": ["api"],
                          "labels": {"app": "api*"}, "namespace-labels": {"team": "a"},
                          "images": ["registry.example.com/**"], "kinds": ["Deployment"],
                          "clusters": ["prod-*"], "names": ["api"]},
                "allow": {"paths": ["secret/{namespace}/**"], "engines": ["kv2"],
                          "delivery": ["file", "env"], "max-ttl": "1h30m",
                          "keys": ["username", "password"], "targets": ["{namespace}-*"]}
            }]}"#,
        )
        .unwrap();
        let rule = &p.rules[0];
        assert_eq!(rule.audit_label(), "rules[0] team-a");
        assert_eq!(rule.describe(), "rule \"team-a\" (rules[0])");
        let Action::Allow(allow) = &rule.action else {
            panic!("not an allow rule")
        };
        assert_eq!(allow.max_ttl_seconds, Some(5400));
        assert_eq!(
            allow.delivery,
            Some(vec![DeliveryKind::File, DeliveryKind::Env])
        );
        assert_eq!(rule.matcher.labels.len(), 1);
    }

    #[test]
    fn unnamed_rule_labels() {
        let p = Policy::parse(r#"{"rules": [{"deny": {"paths": ["**"]}}]}"#).unwrap();
        assert_eq!(p.rules[0].audit_label(), "rules[0]");
        for index in [0, 7, 10, 99, 1234, usize::MAX] {
            let rule = Rule {
                index,
                ..p.rules[0].clone()
            };
            assert_eq!(rule.audit_label(), format!("rules[{index}]"));
        }
        assert_eq!(p.rules[0].describe(), "rule rules[0]");
    }

    #[test]
    fn errors_name_their_location() {
        let allow = r#""allow": {"paths": ["secret/x"]}"#;
        let cases = [
            ("{", "settings are not valid JSON"),
            ("[]", "settings: must be an object, not an array"),
            ("{}", "settings: missing key \"rules\""),
            (
                r#"{"rules": [], "extra": 1}"#,
                "settings: unknown key \"extra\" (expected one of: rules, default)",
            ),
            (r#"{"rules": {}}"#, "rules: must be an array, not an object"),
            (
                r#"{"rules": [], "default": "allow"}"#,
                "default: must be \"deny\" or \"abstain\", not \"allow\"",
            ),
            (
                r#"{"rules": [7]}"#,
                "rules[0]: must be an object, not a number",
            ),
            (
                r#"{"rules": [{"name": "a"}]}"#,
                "rules[0]: needs either \"allow\" or \"deny\"",
            ),
            (
                r#"{"rules": [{"allow": {"paths": ["a"]}, "deny": {"paths": ["a"]}}]}"#,
                "rules[0]: has both \"allow\" and \"deny\"",
            ),
            (
                &format!(r#"{{"rules": [{{"name": "a b", {allow}}}]}}"#),
                "rules[0].name: \"a b\" is not a valid rule name",
            ),
            (
                &format!(r#"{{"rules": [{{"name": "", {allow}}}]}}"#),
                "rules[0].name: \"\" is not a valid rule name",
            ),
            (
                &format!(r#"{{"rules": [{{"name": "a", {allow}}}, {{"name": "a", {allow}}}]}}"#),
                "rules[1].name: \"a\" is already the name of rules[0]",
            ),
            (
                &format!(r#"{{"rules": [{{"description": 1, {allow}}}]}}"#),
                "rules[0].description: must be a string",
            ),
            (
                &format!(r#"{{"rules": [{{"match": {{"namespace": ["a"]}}, {allow}}}]}}"#),
                "rules[0].match: unknown key \"namespace\"",
            ),
            (
                &format!(r#"{{"rules": [{{"match": {{"namespaces": []}}, {allow}}}]}}"#),
                "rules[0].match.namespaces: must not be empty",
            ),
            (
                &format!(r#"{{"rules": [{{"match": {{"namespaces": "a"}}, {allow}}}]}}"#),
                "rules[0].match.namespaces: must be an array of strings, not a string",
            ),
            (
                &format!(r#"{{"rules": [{{"match": {{"kinds": ["Pod", 3]}}, {allow}}}]}}"#),
                "rules[0].match.kinds[1]: must be a string, not a number",
            ),
            (
                &format!(
                    r#"{{"rules": [{{"match": {{"namespaces": ["{{namespace}}"]}}, {allow}}}]}}"#
                ),
                "rules[0].match.namespaces[0]: pattern \"{namespace}\" contains",
            ),
            (
                &format!(r#"{{"rules": [{{"match": {{"labels": {{}}}}, {allow}}}]}}"#),
                "rules[0].match.labels: must not be empty",
            ),
            (
                &format!(r#"{{"rules": [{{"match": {{"labels": {{"app": 1}}}}, {allow}}}]}}"#),
                "rules[0].match.labels.app: must be a string pattern, not a number",
            ),
            (
                &format!(
                    r#"{{"rules": [{{"match": {{"namespace-labels": {{"": "x"}}}}, {allow}}}]}}"#
                ),
                "rules[0].match.namespace-labels.: label names must not be empty",
            ),
            (
                &format!(r#"{{"rules": [{{"match": {{"images": ["/x"]}}, {allow}}}]}}"#),
                "rules[0].match.images[0]: pattern \"/x\" starts with `/`",
            ),
            (
                r#"{"rules": [{"allow": {}}]}"#,
                "rules[0].allow: missing key \"paths\"",
            ),
            (
                r#"{"rules": [{"allow": {"paths": ["a"], "ttl": 5}}]}"#,
                "rules[0].allow: unknown key \"ttl\" (expected one of: paths, engines, delivery, max-ttl, keys, targets)",
            ),
            (
                r#"{"rules": [{"allow": {"paths": ["secret/{team}/*"]}}]}"#,
                "rules[0].allow.paths[0]: unknown placeholder {team}",
            ),
            (
                r#"{"rules": [{"allow": {"paths": ["a"], "engines": ["kv3"]}}]}"#,
                "rules[0].allow.engines[0]: unknown engine \"kv3\"",
            ),
            (
                r#"{"rules": [{"allow": {"paths": ["a"], "engines": ["kv2", "kv2"]}}]}"#,
                "rules[0].allow.engines[1]: \"kv2\" is listed twice",
            ),
            (
                r#"{"rules": [{"allow": {"paths": ["a"], "delivery": ["secret"]}}]}"#,
                "rules[0].allow.delivery[0]: unknown delivery kind \"secret\"",
            ),
            (
                r#"{"rules": [{"allow": {"paths": ["a"], "max-ttl": "1 hour"}}]}"#,
                "rules[0].allow.max-ttl: \"1 hour\" has an unknown unit",
            ),
            (
                r#"{"rules": [{"allow": {"paths": ["a"], "max-ttl": 0}}]}"#,
                "rules[0].allow.max-ttl: must be greater than zero",
            ),
            (
                r#"{"rules": [{"allow": {"paths": ["a"], "keys": [""]}}]}"#,
                "rules[0].allow.keys[0]: key names must not be empty",
            ),
            (
                r#"{"rules": [{"allow": {"paths": ["a"], "keys": ["a", "a"]}}]}"#,
                "rules[0].allow.keys[1]: \"a\" is listed twice",
            ),
            (
                r#"{"rules": [{"allow": {"paths": ["a"], "targets": ["/etc/x"]}}]}"#,
                "rules[0].allow.targets[0]: pattern \"/etc/x\" starts with `/`",
            ),
            (
                r#"{"rules": [{"deny": {"paths": ["a"], "reason": ""}}]}"#,
                "rules[0].deny.reason: must not be empty",
            ),
            (
                r#"{"rules": [{"deny": {"paths": ["a"], "keys": ["x"]}}]}"#,
                "rules[0].deny: unknown key \"keys\" (expected one of: paths, engines, reason)",
            ),
        ];
        for (settings, want) in cases {
            let got = err(settings);
            assert!(
                got.starts_with(want),
                "{settings}\n  got:  {got}\n  want: {want}..."
            );
        }
    }
}
