//! Glob patterns, plain and templated.
//!
//! Plain patterns (`match` criteria) are globs as `keyward_core::glob`
//! understands them. Templated patterns (`allow`/`deny` paths and `targets`)
//! may also hold placeholders that are replaced by the asking workload's
//! identity before matching:
//!
//! | placeholder              | value                                  |
//! |--------------------------|----------------------------------------|
//! | `{namespace}`            | the workload's namespace               |
//! | `{service-account}`      | the workload's service account         |
//! | `{cluster}`              | the cluster name                       |
//! | `{name}`                 | the workload's name                    |
//! | `{label:NAME}`           | the workload's label `NAME`            |
//! | `{namespace-label:NAME}` | the namespace's label `NAME`           |
//!
//! A placeholder whose value is missing, empty, `.` or `..`, or holds `/`,
//! `*` or `?` has no usable value: the pattern then matches nothing. Values
//! are inserted literally, never as glob syntax.

#[cfg(target_arch = "wasm32")]
use crate::prelude::*;

use core::fmt;

use crate::glob;
use crate::model::Workload;

/// A workload attribute a templated pattern refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Placeholder {
    Namespace,
    ServiceAccount,
    Cluster,
    Name,
    Label(String),
    NamespaceLabel(String),
}

impl Placeholder {
    fn parse(inner: &str) -> Result<Placeholder, String> {
        let labelled = |prefix: &str| -> Option<Result<String, String>> {
            let name = inner.strip_prefix(prefix)?;
            Some(if name.is_empty() {
                Err(format!("placeholder {{{inner}}} names no label"))
            } else {
                Ok(name.to_string())
            })
        };
        match inner {
            "namespace" => Ok(Placeholder::Namespace),
            "service-account" => Ok(Placeholder::ServiceAccount),
            "cluster" => Ok(Placeholder::Cluster),
            "name" => Ok(Placeholder::Name),
            _ => {
                if let Some(name) = labelled("label:") {
                    name.map(Placeholder::Label)
                } else if let Some(name) = labelled("namespace-label:") {
                    name.map(Placeholder::NamespaceLabel)
                } else {
                    Err(format!(
                        "unknown placeholder {{{inner}}} (known: {{namespace}}, \
                         {{service-account}}, {{cluster}}, {{name}}, {{label:NAME}}, \
                         {{namespace-label:NAME}})"
                    ))
                }
            }
        }
    }

    /// The workload's value for this placeholder, if it is usable.
    fn value<'w>(&self, workload: &'w Workload) -> Option<&'w str> {
        let value = match self {
            Placeholder::Namespace => workload.namespace.as_str(),
            Placeholder::ServiceAccount => workload.service_account.as_str(),
            Placeholder::Cluster => workload.cluster.as_str(),
            Placeholder::Name => workload.name.as_str(),
            Placeholder::Label(name) => workload.labels.get(name)?.as_str(),
            Placeholder::NamespaceLabel(name) => workload.namespace_labels.get(name)?.as_str(),
        };
        let usable =
            !value.is_empty() && value != "." && value != ".." && !value.contains(['/', '*', '?']);
        usable.then_some(value)
    }
}

impl fmt::Display for Placeholder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Placeholder::Namespace => f.write_str("{namespace}"),
            Placeholder::ServiceAccount => f.write_str("{service-account}"),
            Placeholder::Cluster => f.write_str("{cluster}"),
            Placeholder::Name => f.write_str("{name}"),
            Placeholder::Label(name) => write!(f, "{{label:{name}}}"),
            Placeholder::NamespaceLabel(name) => write!(f, "{{namespace-label:{name}}}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Placeholder(Placeholder),
}

/// A glob pattern that may hold placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Template {
    parts: Vec<Part>,
}

impl Template {
    /// Parse and validate a templated pattern.
    pub(crate) fn parse(source: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        // The pattern with every placeholder replaced by a plain character,
        // for the glob checks below; built only when there are placeholders.
        let mut shape = String::new();
        let mut rest = source;
        // Braces are ASCII, so a byte search finds them.
        while let Some(brace) = rest.bytes().position(|b| matches!(b, b'{' | b'}')) {
            let (literal, from_brace) = rest.split_at(brace);
            if from_brace.starts_with('}') {
                return Err(format!("unmatched `}}` in pattern {source:?}"));
            }
            let end = from_brace
                .find('}')
                .ok_or_else(|| format!("unclosed `{{` in pattern {source:?}"))?;
            let inner = &from_brace[1..end];
            if inner.contains('{') {
                return Err(format!("nested `{{` in pattern {source:?}"));
            }
            if !literal.is_empty() {
                parts.push(Part::Literal(literal.to_string()));
            }
            parts.push(Part::Placeholder(Placeholder::parse(inner)?));
            shape.push_str(literal);
            shape.push('x');
            rest = &from_brace[end + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_string()));
        }
        let shape = if shape.is_empty() {
            source
        } else {
            shape.push_str(rest);
            &shape
        };
        check_glob(shape).map_err(|e| format!("pattern {source:?} {e}"))?;
        Ok(Template { parts })
    }

    /// The pattern with the workload's values filled in, or the first
    /// placeholder that has no usable value.
    pub(crate) fn expand(&self, workload: &Workload) -> Result<String, &Placeholder> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Placeholder(p) => out.push_str(p.value(workload).ok_or(p)?),
            }
        }
        Ok(out)
    }

    /// Whether `text` matches the pattern expanded for `workload`. A pattern
    /// with a placeholder that has no usable value matches nothing.
    pub(crate) fn matches(&self, workload: &Workload, text: &str) -> bool {
        match self.parts.as_slice() {
            // Nothing to fill in: match without building a copy.
            [Part::Literal(pattern)] => glob_matches(pattern, text),
            _ => self
                .expand(workload)
                .is_ok_and(|pattern| glob_matches(&pattern, text)),
        }
    }
}

/// A glob pattern without placeholders (for `match` criteria).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Glob(String);

impl Glob {
    /// Parse and validate a plain pattern.
    pub(crate) fn parse(source: &str) -> Result<Glob, String> {
        if source.bytes().any(|b| matches!(b, b'{' | b'}')) {
            return Err(format!(
                "pattern {source:?} contains `{{` or `}}`; placeholders are only \
                 allowed in `paths` and `targets`"
            ));
        }
        check_glob(source).map_err(|e| format!("pattern {source:?} {e}"))?;
        Ok(Glob(source.to_string()))
    }

    /// Whether `text` matches. An empty text (an unknown value) never does.
    pub(crate) fn matches(&self, text: &str) -> bool {
        !text.is_empty() && glob_matches(&self.0, text)
    }
}

/// `keyward_core::glob::matches`, answering the common shapes of pattern
/// without its general matcher (which allocates on every call). With PREFIX
/// free of `*` and `?`: a pattern without them matches only itself;
/// `PREFIX**` matches every text that starts with PREFIX, and `PREFIX*`
/// every such text with no `/` after PREFIX. Anything else goes to
/// `keyward_core::glob::matches`.
fn glob_matches(pattern: &str, text: &str) -> bool {
    let Some(wildcard) = pattern.bytes().position(|b| matches!(b, b'*' | b'?')) else {
        return pattern == text;
    };
    let (prefix, tail) = pattern.split_at(wildcard);
    match tail {
        "**" => text.starts_with(prefix),
        "*" => text
            .strip_prefix(prefix)
            .is_some_and(|rest| !rest.contains('/')),
        _ => glob::matches(pattern, text),
    }
}

/// Checks shared by every pattern: no empty pattern or segment, no leading or
/// trailing `/`, `**` only as a whole segment.
fn check_glob(shape: &str) -> Result<(), String> {
    if shape.is_empty() {
        return Err("is empty".into());
    }
    // `char::is_control` is exactly `u8::is_ascii_control` on ASCII text.
    let control = if shape.is_ascii() {
        shape.bytes().any(|b| b.is_ascii_control())
    } else {
        shape.chars().any(char::is_control)
    };
    if control {
        return Err("contains a control character".into());
    }
    if shape.starts_with('/') {
        return Err("starts with `/` (patterns are relative, e.g. `secret/app/*`)".into());
    }
    if shape.ends_with('/') {
        return Err("ends with `/`".into());
    }
    let has_pair = |c: u8| shape.as_bytes().windows(2).any(|w| w[0] == c && w[1] == c);
    if has_pair(b'/') {
        return Err("contains an empty segment (`//`)".into());
    }
    if !has_pair(b'*') {
        return Ok(());
    }
    for segment in shape.split('/') {
        if segment.contains("**") && segment != "**" {
            return Err(format!(
                "has `**` inside the segment {segment:?}; `**` must be a whole segment \
                 (`a/**/b`), use `*` within a segment"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workload() -> Workload {
        Workload {
            namespace: "team-a".into(),
            service_account: "api".into(),
            cluster: "prod-eu".into(),
            name: "api".into(),
            labels: [
                ("app".into(), "api".into()),
                ("empty".into(), String::new()),
            ]
            .into(),
            namespace_labels: [
                ("team".into(), "alpha".into()),
                ("evil".into(), "*".into()),
                ("slash".into(), "a/b".into()),
                ("dots".into(), "..".into()),
            ]
            .into(),
            ..Workload::default()
        }
    }

    #[test]
    fn parse_errors() {
        let cases = [
            ("empty", "", "is empty"),
            (
                "unknown placeholder",
                "secret/{team}/*",
                "unknown placeholder {team}",
            ),
            ("unclosed", "secret/{namespace/*", "unclosed `{`"),
            ("unmatched", "secret/namespace}/*", "unmatched `}`"),
            ("nested", "secret/{label:{x}}", "nested `{`"),
            ("label without name", "secret/{label:}/x", "names no label"),
            ("leading slash", "/secret/x", "starts with `/`"),
            ("trailing slash", "secret/x/", "ends with `/`"),
            ("empty segment", "secret//x", "empty segment"),
            (
                "double star in segment",
                "secret/team-a**",
                "`**` must be a whole segment",
            ),
            ("triple star", "secret/***", "`**` must be a whole segment"),
            (
                "star next to placeholder",
                "secret/{namespace}**",
                "whole segment",
            ),
        ];
        for (name, pattern, want) in cases {
            let err = Template::parse(pattern).expect_err(name);
            assert!(err.contains(want), "{name}: {err:?} lacks {want:?}");
        }
    }

    #[test]
    fn plain_globs_reject_braces() {
        let err = Glob::parse("team-{namespace}").unwrap_err();
        assert!(err.contains("placeholders are only allowed"), "{err}");
        assert!(Glob::parse("registry.example.com/**").is_ok());
    }

    #[test]
    fn expansion() {
        let w = workload();
        let cases = [
            ("secret/{namespace}/**", Ok("secret/team-a/**")),
            ("kv/{cluster}/{service-account}", Ok("kv/prod-eu/api")),
            ("secret/{namespace-label:team}/*", Ok("secret/alpha/*")),
            ("secret/{label:app}-{name}", Ok("secret/api-api")),
            ("secret/{label:missing}/*", Err("{label:missing}")),
            ("secret/{label:empty}/*", Err("{label:empty}")),
            (
                "secret/{namespace-label:evil}/*",
                Err("{namespace-label:evil}"),
            ),
            (
                "secret/{namespace-label:slash}/*",
                Err("{namespace-label:slash}"),
            ),
            (
                "secret/{namespace-label:dots}/*",
                Err("{namespace-label:dots}"),
            ),
        ];
        for (pattern, want) in cases {
            let t = Template::parse(pattern).unwrap();
            let got = t.expand(&w).map_err(|p| p.to_string());
            assert_eq!(got.as_deref().map_err(String::as_str), want, "{pattern}");
        }
    }

    #[test]
    fn unusable_placeholder_matches_nothing() {
        let w = Workload::default();
        let t = Template::parse("secret/{namespace}/**").unwrap();
        assert!(!t.matches(&w, "secret//x"));
        assert!(!t.matches(&w, "secret/x"));
        let t = Template::parse("**/{namespace}").unwrap();
        assert!(!t.matches(&w, ""));
    }

    #[test]
    fn shortcuts_agree_with_the_general_matcher() {
        let patterns = [
            "**",
            "*",
            "?",
            "a",
            "secret/team-a",
            "secret/team-a/**",
            "secret/team-a/*",
            "team-a-*",
            "team-a-**",
            "é/*",
            "é/**",
            "secret/*/db",
            "a?c",
            "**/x",
            "a/**/b",
            "a*",
            "*a",
            "",
        ];
        let texts = [
            "",
            "a",
            "ab",
            "a/",
            "a/b",
            "abc",
            "team-a",
            "team-a-",
            "team-a-dev",
            "team-a-dev/x",
            "secret/team-a",
            "secret/team-a/",
            "secret/team-a/db",
            "secret/team-a/db/x",
            "secret/team-ab",
            "é",
            "é/",
            "é/x",
            "é/x/y",
            "x",
            "a/b/b",
        ];
        for pattern in patterns {
            for text in texts {
                assert_eq!(
                    glob_matches(pattern, text),
                    glob::matches(pattern, text),
                    "{pattern:?} vs {text:?}"
                );
            }
        }
    }

    #[test]
    fn plain_glob_never_matches_empty_text() {
        assert!(!Glob::parse("*").unwrap().matches(""));
        assert!(Glob::parse("*").unwrap().matches("team-a"));
        assert!(Glob::parse("team-a-*").unwrap().matches("team-a-dev"));
        assert!(!Glob::parse("team-a-*").unwrap().matches("team-a"));
    }
}
