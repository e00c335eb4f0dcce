//! YAML encoding in the style of Go's `gopkg.in/yaml.v2` (what
//! consul-template's `toYAML` uses): block style, keys sorted, sequences
//! not indented under their key, strings quoted only when they would read
//! back as something else.

use super::format::format_float;
use super::value::Value;

/// Encodes `v`, without a trailing newline (consul-template trims it).
pub(crate) fn to_yaml(v: &Value) -> String {
    let mut out = String::new();
    match v {
        Value::Map(_) | Value::Struct(_) | Value::List(_) if !is_empty_collection(v) => {
            block(&mut out, v, 0);
        }
        other => {
            out.push_str(&scalar(other, 0));
        }
    }
    out.trim().to_string()
}

fn is_empty_collection(v: &Value) -> bool {
    match v {
        Value::Map(m) => m.is_empty(),
        Value::List(l) => l.is_empty(),
        Value::Struct(s) => s.fields.is_empty(),
        _ => false,
    }
}

fn entries(v: &Value) -> Vec<(String, Value)> {
    match v {
        Value::Map(m) => m.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        // yaml.v2 lowercases struct field names.
        Value::Struct(s) => s
            .fields
            .iter()
            .map(|(k, v)| (k.to_lowercase(), v.clone()))
            .collect(),
        _ => Vec::new(),
    }
}

/// Writes a non-empty map or list at `indent`, each line starting with
/// the indentation (the caller has written nothing on the line yet).
fn block(out: &mut String, v: &Value, indent: usize) {
    let pad = " ".repeat(indent);
    match v {
        Value::List(items) => {
            for item in items.iter() {
                out.push_str(&pad);
                out.push('-');
                item_after_dash(out, item, indent);
            }
        }
        _ => {
            for (k, item) in entries(v) {
                out.push_str(&pad);
                out.push_str(&string_scalar(&k, indent));
                out.push(':');
                match &item {
                    Value::Map(_) | Value::Struct(_) if !is_empty_collection(&item) => {
                        out.push('\n');
                        block(out, &item, indent + 2);
                    }
                    Value::List(_) if !is_empty_collection(&item) => {
                        out.push('\n');
                        block(out, &item, indent);
                    }
                    other => {
                        out.push(' ');
                        out.push_str(&scalar(other, indent + 2));
                        out.push('\n');
                    }
                }
            }
        }
    }
}

/// A sequence item after `-`.
fn item_after_dash(out: &mut String, item: &Value, indent: usize) {
    match item {
        Value::Map(_) | Value::Struct(_) if !is_empty_collection(item) => {
            // First entry on the dash line, the rest aligned under it.
            let mut nested = String::new();
            block(&mut nested, item, indent + 2);
            out.push(' ');
            out.push_str(nested.trim_start());
        }
        Value::List(_) if !is_empty_collection(item) => {
            let mut nested = String::new();
            block(&mut nested, item, indent + 2);
            out.push(' ');
            out.push_str(nested.trim_start());
        }
        other => {
            out.push(' ');
            out.push_str(&scalar(other, indent + 2));
            out.push('\n');
        }
    }
}

fn scalar(v: &Value, indent: usize) -> String {
    match v {
        Value::Nil => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => {
            if f.is_nan() {
                ".nan".into()
            } else if f.is_infinite() {
                if *f > 0.0 {
                    ".inf".into()
                } else {
                    "-.inf".into()
                }
            } else {
                format_float(*f, 'g', None)
            }
        }
        Value::Str(s) => string_scalar(s, indent),
        Value::List(_) => "[]".into(),
        Value::Map(_) | Value::Struct(_) => "{}".into(),
    }
}

/// Would a plain scalar `s` be read back as something other than a string
/// (YAML 1.1 as yaml.v2 resolves it)?
fn resolves_to_non_string(s: &str) -> bool {
    const WORDS: &[&str] = &[
        "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "true", "True", "TRUE", "false",
        "False", "FALSE", "on", "On", "ON", "off", "Off", "OFF", "null", "Null", "NULL", "~",
        ".inf", ".Inf", ".INF", "+.inf", "-.inf", "-.Inf", "+.Inf", ".nan", ".NaN", ".NAN", "<<",
    ];
    if WORDS.contains(&s) {
        return true;
    }
    let t = s.strip_prefix(['-', '+']).unwrap_or(s).replace('_', "");
    if t.is_empty() {
        return false;
    }
    let lower = t.to_ascii_lowercase();
    if let Some(h) = lower.strip_prefix("0x") {
        return !h.is_empty() && h.chars().all(|c| c.is_ascii_hexdigit());
    }
    if let Some(b) = lower.strip_prefix("0b") {
        return !b.is_empty() && b.chars().all(|c| c == '0' || c == '1');
    }
    // Integers, floats, and base-60 numbers like 1:20.
    let mut seen_digit = false;
    let mut seen_dot = false;
    let mut seen_e = false;
    let chars: Vec<char> = lower.chars().collect();
    let mut k = 0;
    while k < chars.len() {
        let c = chars[k];
        match c {
            '0'..='9' => seen_digit = true,
            '.' if !seen_dot && !seen_e => seen_dot = true,
            'e' if seen_digit && !seen_e => {
                seen_e = true;
                if matches!(chars.get(k + 1), Some('+') | Some('-')) {
                    k += 1;
                }
            }
            ':' if seen_digit && !seen_dot && !seen_e => {}
            _ => return false,
        }
        k += 1;
    }
    seen_digit
}

fn plain_allowed(s: &str) -> bool {
    let first = s.chars().next().unwrap_or(' ');
    if "-?:,[]{}#&*!|>'\"%@`".contains(first) {
        // "-x", "?x", ":x" are plain-safe only when followed by a non-space;
        // keep it simple and quote.
        return false;
    }
    if s.starts_with(' ') || s.ends_with(' ') || s.ends_with(':') {
        return false;
    }
    if s.contains(": ") || s.contains(" #") || s.contains('\t') {
        return false;
    }
    s.chars().all(|c| !c.is_control())
}

fn string_scalar(s: &str, indent: usize) -> String {
    if s.is_empty() {
        return "\"\"".into();
    }
    if s.contains('\n') && s.chars().all(|c| c == '\n' || !c.is_control()) {
        // Literal block scalar.
        let chomp = if s.ends_with("\n\n") || s == "\n" {
            "+"
        } else if s.ends_with('\n') {
            ""
        } else {
            "-"
        };
        let body = s.strip_suffix('\n').unwrap_or(s);
        let indicator = if body.starts_with(' ') { "2" } else { "" };
        let pad = " ".repeat(indent.max(2));
        let mut out = format!("|{indicator}{chomp}");
        for line in body.split('\n') {
            out.push('\n');
            if !line.is_empty() {
                out.push_str(&pad);
                out.push_str(line);
            }
        }
        return out;
    }
    if resolves_to_non_string(s) {
        return super::format::quote(s, false);
    }
    if plain_allowed(s) {
        return s.to_string();
    }
    if s.chars().any(|c| c.is_control()) {
        return super::format::quote(s, false);
    }
    format!("'{}'", s.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn maps_lists_and_quoting() {
        let mut inner = BTreeMap::new();
        inner.insert("port".to_string(), Value::Int(5432));
        let mut m = BTreeMap::new();
        m.insert(
            "b".to_string(),
            Value::list(vec![Value::str("x"), Value::str("true")]),
        );
        m.insert("a".to_string(), Value::map(inner));
        m.insert("c".to_string(), Value::str("a: b"));
        m.insert("d".to_string(), Value::str(""));
        m.insert("e".to_string(), Value::str("123"));
        m.insert("f".to_string(), Value::str("line1\nline2"));
        assert_eq!(
            to_yaml(&Value::map(m)),
            "a:\n  port: 5432\nb:\n- x\n- \"true\"\nc: 'a: b'\nd: \"\"\ne: \"123\"\nf: |-\n  line1\n  line2"
        );
    }

    #[test]
    fn list_of_maps() {
        let mut a = BTreeMap::new();
        a.insert("k".to_string(), Value::Int(1));
        a.insert("l".to_string(), Value::Int(2));
        let v = Value::list(vec![Value::map(a)]);
        assert_eq!(to_yaml(&v), "- k: 1\n  l: 2");
    }

    #[test]
    fn scalars() {
        assert_eq!(to_yaml(&Value::str("plain")), "plain");
        assert_eq!(to_yaml(&Value::map(BTreeMap::new())), "{}");
        assert_eq!(to_yaml(&Value::Float(1.5)), "1.5");
    }
}
