//! Turning rendered text, or raw secret data, into artifacts for a target.

use std::collections::BTreeMap;

use crate::settings::{EnvNames, Format, Settings, valid_secret_key};
use crate::{Artifact, DeliveryKind, EnvVar, File, KubeSecret, PluginError, SecretValue, Target};

fn invalid(msg: impl Into<String>) -> PluginError {
    PluginError::InvalidInput(msg.into())
}

/// `[A-Za-z_][A-Za-z0-9_]*`
pub(crate) fn valid_env_name(n: &str) -> bool {
    let mut bytes = n.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn file_mode(target: &Target, settings: &Settings) -> u32 {
    target.mode.unwrap_or(settings.file_mode)
}

fn check_target_name(target: &Target) -> Result<(), PluginError> {
    if target.kind != DeliveryKind::Env && target.name.trim().is_empty() {
        return Err(invalid("the target has no name (file path or Secret name)"));
    }
    Ok(())
}

fn kube_secret(target: &Target, settings: &Settings, data: Vec<(String, Vec<u8>)>) -> Artifact {
    Artifact::KubeSecret(KubeSecret {
        name: target.name.clone(),
        secret_type: settings.secret_type.clone(),
        data,
        labels: settings.labels.clone().into_iter().collect(),
        annotations: settings.annotations.clone().into_iter().collect(),
    })
}

/// Artifacts from a template's output.
pub(crate) fn from_template(
    out: String,
    target: &Target,
    settings: &Settings,
) -> Result<Vec<Artifact>, PluginError> {
    check_target_name(target)?;
    match target.kind {
        DeliveryKind::File => Ok(vec![Artifact::File(File {
            path: target.name.clone(),
            mode: file_mode(target, settings),
            contents: out.into_bytes(),
        })]),
        DeliveryKind::Env => {
            let vars = parse_dotenv(&out)?;
            vars.into_iter()
                .map(|(k, v)| {
                    let name = format!("{}{k}", target.name);
                    if !valid_env_name(&name) {
                        // The key itself is valid, so the prefix is not.
                        return Err(invalid(format!(
                            "the target's prefix {:?} does not start a valid environment variable name",
                            target.name
                        )));
                    }
                    Ok(Artifact::Env(EnvVar { name, value: v }))
                })
                .collect()
        }
        DeliveryKind::KubeSecret => {
            let data = match &settings.secret_key {
                Some(key) => vec![(key.clone(), out.into_bytes())],
                None => parse_object(&out)?
                    .into_iter()
                    .map(|(k, v)| (k, v.into_bytes()))
                    .collect(),
            };
            Ok(vec![kube_secret(target, settings, data)])
        }
    }
}

/// Parses a kube-secret template's output: a JSON or YAML object whose
/// values are strings. Errors give positions, never content.
fn parse_object(out: &str) -> Result<BTreeMap<String, String>, PluginError> {
    let shape = "the template output for a kube-secret target must be a JSON or YAML object of string values (or set the secret-key setting to store the whole output under one key)";
    if out.trim().is_empty() {
        return Err(invalid(format!("{shape}; it is empty")));
    }
    let value: serde_yaml::Value = if out.trim_start().starts_with('{') {
        let json: serde_json::Value = serde_json::from_str(out).map_err(|e| {
            invalid(format!(
                "{shape}; it is not valid JSON (line {}, column {})",
                e.line(),
                e.column()
            ))
        })?;
        serde_yaml::to_value(json).map_err(|_| invalid(shape))?
    } else {
        serde_yaml::from_str(out).map_err(|e| match e.location() {
            Some(l) => invalid(format!(
                "{shape}; it is not valid YAML (line {}, column {})",
                l.line(),
                l.column()
            )),
            None => invalid(format!("{shape}; it is not valid YAML")),
        })?
    };
    let serde_yaml::Value::Mapping(map) = value else {
        return Err(invalid(shape));
    };
    // Keys and values come from rendered output and may be secret: errors
    // point at the output line of the key instead of quoting it.
    let mut data = BTreeMap::new();
    for (n, (k, v)) in map.into_iter().enumerate() {
        let serde_yaml::Value::String(key) = k else {
            return Err(invalid(format!(
                "{shape}; key number {} is not a string",
                n + 1
            )));
        };
        let place = match key_line(out, &key) {
            Some(line) => format!("output line {line}"),
            None => format!("key number {}", n + 1),
        };
        if !valid_secret_key(&key) {
            return Err(invalid(format!(
                "{place}: the key is not a valid Kubernetes Secret key ([-._a-zA-Z0-9]+)"
            )));
        }
        let serde_yaml::Value::String(value) = v else {
            return Err(invalid(format!(
                "{place}: the value is not a string; quote it in the template (for example with `| toJSON` or `quote`)"
            )));
        };
        data.insert(key, value);
    }
    Ok(data)
}

/// The 1-based line of `out` where `key` is written as a mapping key.
fn key_line(out: &str, key: &str) -> Option<usize> {
    let quoted = format!("{key:?}");
    out.lines()
        .position(|line| {
            let t = line.trim_start().trim_start_matches(['{', ',', ' ']);
            [key, quoted.as_str()].iter().any(|k| {
                t.strip_prefix(k)
                    .is_some_and(|rest| rest.trim_start().starts_with(':'))
            })
        })
        .map(|i| i + 1)
}

/// Parses dotenv text: `KEY=value` lines, optional `export `, `#`
/// comments, single- or double-quoted values (double quotes understand
/// `\n \r \t \\ \" \$` and may span lines). Errors give the line number only.
pub(crate) fn parse_dotenv(text: &str) -> Result<Vec<(String, String)>, PluginError> {
    let lines: Vec<&str> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    let mut out: Vec<(String, String)> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let lineno = i + 1;
        let line = lines[i].trim_start();
        i += 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line
            .strip_prefix("export ")
            .or_else(|| line.strip_prefix("export\t"))
            .map_or(line, str::trim_start);
        let Some((key, rest)) = line.split_once('=') else {
            return Err(invalid(format!(
                "env output line {lineno}: expected KEY=value"
            )));
        };
        let key = key.trim_end();
        if !valid_env_name(key) {
            return Err(invalid(format!(
                "env output line {lineno}: the variable name is not valid ([A-Za-z_][A-Za-z0-9_]*)"
            )));
        }
        let rest = rest.trim_start();
        let (value, after) = if let Some(body) = rest.strip_prefix('"') {
            let mut value = String::new();
            let mut chunk = body.to_string();
            let after;
            loop {
                let mut chars = chunk.char_indices();
                let mut closed = None;
                while let Some((j, c)) = chars.next() {
                    match c {
                        '\\' => match chars.next() {
                            Some((_, 'n')) => value.push('\n'),
                            Some((_, 'r')) => value.push('\r'),
                            Some((_, 't')) => value.push('\t'),
                            Some((_, e @ ('\\' | '"' | '$' | '\''))) => value.push(e),
                            Some((_, other)) => {
                                value.push('\\');
                                value.push(other);
                            }
                            None => value.push('\\'),
                        },
                        '"' => {
                            closed = Some(j + 1);
                            break;
                        }
                        c => value.push(c),
                    }
                }
                if let Some(j) = closed {
                    after = chunk[j..].to_string();
                    break;
                }
                if i >= lines.len() {
                    return Err(invalid(format!(
                        "env output line {lineno}: unterminated double-quoted value"
                    )));
                }
                value.push('\n');
                chunk = lines[i].to_string();
                i += 1;
            }
            (value, after)
        } else if let Some(body) = rest.strip_prefix('\'') {
            let mut value = String::new();
            let mut chunk = body;
            loop {
                if let Some(j) = chunk.find('\'') {
                    value.push_str(&chunk[..j]);
                    chunk = &chunk[j + 1..];
                    break;
                }
                value.push_str(chunk);
                if i >= lines.len() {
                    return Err(invalid(format!(
                        "env output line {lineno}: unterminated single-quoted value"
                    )));
                }
                value.push('\n');
                chunk = lines[i];
                i += 1;
            }
            (value, chunk.to_string())
        } else {
            // Unquoted: up to a " #" comment, trailing space trimmed.
            let mut end = rest.len();
            let bytes = rest.as_bytes();
            for j in 1..bytes.len() {
                if bytes[j] == b'#' && (bytes[j - 1] == b' ' || bytes[j - 1] == b'\t') {
                    end = j;
                    break;
                }
            }
            (rest[..end].trim_end().to_string(), String::new())
        };
        let after = after.trim_start();
        if !after.is_empty() && !after.starts_with('#') {
            return Err(invalid(format!(
                "env output line {lineno}: unexpected characters after the closing quote"
            )));
        }
        if out.iter().any(|(k, _)| k == key) {
            return Err(invalid(format!(
                "env output line {lineno}: the variable is already set on an earlier line"
            )));
        }
        out.push((key.to_string(), value));
    }
    Ok(out)
}

/// Formats one `KEY=value` line, quoting the value when needed.
fn dotenv_line(key: &str, value: &str) -> String {
    let plain = value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"_./:@%+,=-".contains(&b));
    if plain {
        return format!("{key}={value}\n");
    }
    let mut q = String::with_capacity(value.len() + 2);
    for c in value.chars() {
        match c {
            '\\' => q.push_str("\\\\"),
            '"' => q.push_str("\\\""),
            '$' => q.push_str("\\$"),
            '\n' => q.push_str("\\n"),
            '\r' => q.push_str("\\r"),
            '\t' => q.push_str("\\t"),
            c => q.push(c),
        }
    }
    format!("{key}=\"{q}\"\n")
}

fn display_ref(s: &SecretValue) -> String {
    let mut r = s.reference.clone();
    for (k, v) in &s.parameters {
        r.push_str(&format!(" {k}={v}"));
    }
    r
}

/// The data keys of one secret: KV v2's `data.data`, else `data`.
fn secret_entries(
    s: &SecretValue,
) -> Result<serde_json::Map<String, serde_json::Value>, PluginError> {
    let json: serde_json::Value = serde_json::from_str(&s.data).map_err(|_| {
        invalid(format!(
            "secret {:?}: its data is not a valid JSON document",
            s.reference
        ))
    })?;
    let serde_json::Value::Object(mut obj) = json else {
        return Err(invalid(format!(
            "secret {:?}: its data is not a JSON object",
            s.reference
        )));
    };
    let kv2 = obj.len() == 2
        && obj
            .get("metadata")
            .is_some_and(serde_json::Value::is_object)
        && obj
            .get("data")
            .is_some_and(|d| d.is_object() || d.is_null());
    if kv2 {
        return match obj.remove("data") {
            Some(serde_json::Value::Object(inner)) => Ok(inner),
            _ => Err(invalid(format!(
                "secret {:?}: this KV v2 version has no data (deleted or destroyed)",
                s.reference
            ))),
        };
    }
    Ok(obj)
}

fn json_to_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn env_name(key: &str, target: &Target, settings: &Settings) -> Result<String, PluginError> {
    let key = match settings.env_names {
        EnvNames::Verbatim => key.to_string(),
        EnvNames::Upper => key
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_uppercase()
                } else {
                    '_'
                }
            })
            .collect(),
    };
    let name = format!(
        "{}{key}",
        if target.kind == DeliveryKind::Env {
            &target.name
        } else {
            ""
        }
    );
    if !valid_env_name(&name) {
        return Err(invalid(format!(
            "{name:?} is not a valid environment variable name ([A-Za-z_][A-Za-z0-9_]*); set env-names to \"upper\" or use a template"
        )));
    }
    Ok(name)
}

/// Artifacts when no template is given.
pub(crate) fn default_format(
    secrets: &[SecretValue],
    target: &Target,
    settings: &Settings,
) -> Result<Vec<Artifact>, PluginError> {
    check_target_name(target)?;
    // Every key of every secret, sorted by key; a key two secrets provide
    // is an error.
    let mut keys: BTreeMap<String, (serde_json::Value, String)> = BTreeMap::new();
    for s in secrets {
        for (k, v) in secret_entries(s)? {
            let source = display_ref(s);
            if let Some((_, first)) = keys.get(&k) {
                return Err(invalid(format!(
                    "key {k:?} is provided by both {first:?} and {source:?}"
                )));
            }
            keys.insert(k, (v, source));
        }
    }
    let mode = file_mode(target, settings);
    match (settings.format, target.kind) {
        (Format::Json, DeliveryKind::Env) => Err(invalid(
            "format \"json\" cannot be delivered as environment variables; use \"map\" or \"dotenv\"",
        )),
        (Format::Map | Format::Dotenv, DeliveryKind::Env) => keys
            .iter()
            .map(|(k, (v, _))| {
                Ok(Artifact::Env(EnvVar {
                    name: env_name(k, target, settings)?,
                    value: json_to_text(v),
                }))
            })
            .collect(),
        (Format::Map, DeliveryKind::File) => keys
            .iter()
            .map(|(k, (v, _))| {
                if k.is_empty() || k == "." || k == ".." || k.contains(['/', '\\', '\0']) {
                    return Err(invalid(format!(
                        "key {k:?} cannot be a file name; use a template or the json format"
                    )));
                }
                Ok(Artifact::File(File {
                    path: format!("{}/{k}", target.name.trim_end_matches('/')),
                    mode,
                    contents: json_to_text(v).into_bytes(),
                }))
            })
            .collect(),
        (Format::Map, DeliveryKind::KubeSecret) => {
            let mut data = Vec::new();
            for (k, (v, _)) in &keys {
                if !valid_secret_key(k) {
                    return Err(invalid(format!(
                        "key {k:?} is not a valid Kubernetes Secret key ([-._a-zA-Z0-9]+)"
                    )));
                }
                data.push((k.clone(), json_to_text(v).into_bytes()));
            }
            Ok(vec![kube_secret(target, settings, data)])
        }
        (Format::Json | Format::Dotenv, DeliveryKind::File | DeliveryKind::KubeSecret) => {
            let text = if settings.format == Format::Json {
                let obj: serde_json::Map<String, serde_json::Value> = keys
                    .iter()
                    .map(|(k, (v, _))| (k.clone(), v.clone()))
                    .collect();
                let mut s = serde_json::to_string_pretty(&serde_json::Value::Object(obj))
                    .map_err(|_| PluginError::Failed("cannot encode JSON".into()))?;
                s.push('\n');
                s
            } else {
                let mut s = String::new();
                for (k, (v, _)) in &keys {
                    s.push_str(&dotenv_line(
                        &env_name(k, target, settings)?,
                        &json_to_text(v),
                    ));
                }
                s
            };
            if target.kind == DeliveryKind::File {
                Ok(vec![Artifact::File(File {
                    path: target.name.clone(),
                    mode,
                    contents: text.into_bytes(),
                })])
            } else {
                let default_key = if settings.format == Format::Json {
                    "secret.json"
                } else {
                    "secret.env"
                };
                let key = settings
                    .secret_key
                    .clone()
                    .unwrap_or_else(|| default_key.to_string());
                Ok(vec![kube_secret(
                    target,
                    settings,
                    vec![(key, text.into_bytes())],
                )])
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dotenv(text: &str) -> Vec<(String, String)> {
        parse_dotenv(text).unwrap()
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn dotenv_parsing() {
        assert_eq!(
            dotenv(
                "# c\nA=1\nexport B = two words # note\n\nC=\"x\\ny \\\"q\\\" \\$HOME\"\nD='single $x \\n'\nE=\"multi\nline\"\nF=\n"
            ),
            pairs(&[
                ("A", "1"),
                ("B", "two words"),
                ("C", "x\ny \"q\" $HOME"),
                ("D", "single $x \\n"),
                ("E", "multi\nline"),
                ("F", ""),
            ])
        );
        assert_eq!(
            dotenv("URL=http://x/#frag"),
            pairs(&[("URL", "http://x/#frag")])
        );
    }

    #[test]
    fn dotenv_errors_name_lines_not_content() {
        for (text, want) in [
            ("A=1\nCANARY-SECRET\n", "line 2: expected KEY=value"),
            ("1A=x", "line 1: the variable name is not valid"),
            ("A=\"CANARY", "line 1: unterminated double-quoted value"),
            (
                "A=\"x\" CANARY",
                "line 1: unexpected characters after the closing quote",
            ),
            (
                "A=1\nA=2",
                "line 2: the variable is already set on an earlier line",
            ),
        ] {
            let Err(PluginError::InvalidInput(m)) = parse_dotenv(text) else {
                panic!("{text:?} should fail")
            };
            assert!(m.contains(want), "{m}");
            assert!(!m.contains("CANARY"), "{m}");
        }
    }

    #[test]
    fn dotenv_round_trip() {
        let values = [
            "plain",
            "with space",
            "q\"uote",
            "new\nline",
            "$VAR",
            "back\\slash",
            "",
            "a=b",
        ];
        let mut text = String::new();
        for (i, v) in values.iter().enumerate() {
            text.push_str(&dotenv_line(&format!("K{i}"), v));
        }
        let parsed = dotenv(&text);
        for (i, v) in values.iter().enumerate() {
            assert_eq!(parsed[i].1, *v);
        }
    }

    #[test]
    fn kube_objects() {
        let m = parse_object("{\"a\": \"1\", \"b.c\": \"x\"}").unwrap();
        assert_eq!(m["a"], "1");
        let m = parse_object("user: app\npassword: \"007\"\n").unwrap();
        assert_eq!(m["password"], "007");
        let Err(PluginError::InvalidInput(e)) = parse_object("port: 5432") else {
            panic!()
        };
        assert!(
            e.contains("output line 1: the value is not a string"),
            "{e}"
        );
        let Err(PluginError::InvalidInput(e)) = parse_object("{\"a\": \"x\",\n \"b/c\": \"y\"}")
        else {
            panic!()
        };
        assert!(e.contains("output line 2: the key is not a valid"), "{e}");
        assert!(parse_object("- a").is_err());
        assert!(parse_object("a/b: x").is_err());
    }
}
