//! JSON encoding with Go's `encoding/json` conventions: map keys sorted,
//! struct fields in order, HTML characters escaped unless asked otherwise,
//! Go's float formatting.

use super::format::format_float;
use super::value::Value;

/// Output layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum JsonStyle {
    /// `json.Marshal`.
    Compact,
    /// `json.MarshalIndent(v, "", "  ")`.
    Pretty,
}

/// Encodes `v`. Fails only for NaN and infinities (as Go does).
pub(crate) fn to_json(v: &Value, style: JsonStyle, escape_html: bool) -> Result<String, String> {
    let mut out = String::new();
    let enc = Encoder {
        pretty: style == JsonStyle::Pretty,
        escape_html,
    };
    enc.value(&mut out, v, 0)?;
    Ok(out)
}

struct Encoder {
    pretty: bool,
    escape_html: bool,
}

impl Encoder {
    fn newline(&self, out: &mut String, depth: usize) {
        if self.pretty {
            out.push('\n');
            for _ in 0..depth {
                out.push_str("  ");
            }
        }
    }

    fn value(&self, out: &mut String, v: &Value, depth: usize) -> Result<(), String> {
        match v {
            Value::Nil => out.push_str("null"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Int(i) => out.push_str(&i.to_string()),
            Value::Float(f) => out.push_str(&float(*f)?),
            Value::Str(s) => self.string(out, s),
            Value::List(items) => {
                if items.is_empty() {
                    out.push_str("[]");
                    return Ok(());
                }
                out.push('[');
                for (k, item) in items.iter().enumerate() {
                    if k > 0 {
                        out.push(',');
                    }
                    self.newline(out, depth + 1);
                    self.value(out, item, depth + 1)?;
                }
                self.newline(out, depth);
                out.push(']');
            }
            Value::Map(m) => {
                let entries: Vec<(&str, &Value)> = m.iter().map(|(k, v)| (k.as_str(), v)).collect();
                self.object(out, &entries, depth)?;
            }
            Value::Struct(s) => {
                let entries: Vec<(&str, &Value)> = s.fields.iter().map(|(k, v)| (*k, v)).collect();
                self.object(out, &entries, depth)?;
            }
        }
        Ok(())
    }

    fn object(
        &self,
        out: &mut String,
        entries: &[(&str, &Value)],
        depth: usize,
    ) -> Result<(), String> {
        if entries.is_empty() {
            out.push_str("{}");
            return Ok(());
        }
        out.push('{');
        for (k, (key, item)) in entries.iter().enumerate() {
            if k > 0 {
                out.push(',');
            }
            self.newline(out, depth + 1);
            self.string(out, key);
            out.push(':');
            if self.pretty {
                out.push(' ');
            }
            self.value(out, item, depth + 1)?;
        }
        self.newline(out, depth);
        out.push('}');
        Ok(())
    }

    fn string(&self, out: &mut String, s: &str) {
        out.push('"');
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\x08' => out.push_str("\\b"),
                '\x0c' => out.push_str("\\f"),
                '<' | '>' | '&' if self.escape_html => {
                    out.push_str(&format!("\\u{:04x}", c as u32));
                }
                '\u{2028}' | '\u{2029}' => out.push_str(&format!("\\u{:04x}", c as u32)),
                c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
                c => out.push(c),
            }
        }
        out.push('"');
    }
}

/// Go's JSON float: shortest `f` form, `e` form below 1e-6 or from 1e21.
fn float(f: f64) -> Result<String, String> {
    if !f.is_finite() {
        return Err(format!(
            "json: unsupported value: {}",
            format_float(f, 'g', None)
        ));
    }
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let s = format_float(f, 'e', None);
        // Go cleans up e-09 to e-9.
        if let Some(i) = s.find("e-0") {
            return Ok(format!("{}e-{}", &s[..i], &s[i + 3..]));
        }
        if let Some(i) = s.find("e+0") {
            return Ok(format!("{}e+{}", &s[..i], &s[i + 3..]));
        }
        return Ok(s);
    }
    Ok(format_float(f, 'f', None))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn sample() -> Value {
        let mut m = BTreeMap::new();
        m.insert(
            "b".to_string(),
            Value::list(vec![Value::Int(1), Value::Float(2.5)]),
        );
        m.insert("a".to_string(), Value::str("<x&y>"));
        m.insert("c".to_string(), Value::map(BTreeMap::new()));
        Value::map(m)
    }

    #[test]
    fn compact_sorted_and_html_escaped() {
        assert_eq!(
            to_json(&sample(), JsonStyle::Compact, true).unwrap(),
            r#"{"a":"\u003cx\u0026y\u003e","b":[1,2.5],"c":{}}"#
        );
        assert_eq!(
            to_json(&sample(), JsonStyle::Compact, false).unwrap(),
            r#"{"a":"<x&y>","b":[1,2.5],"c":{}}"#
        );
    }

    #[test]
    fn pretty() {
        assert_eq!(
            to_json(&sample(), JsonStyle::Pretty, false).unwrap(),
            "{\n  \"a\": \"<x&y>\",\n  \"b\": [\n    1,\n    2.5\n  ],\n  \"c\": {}\n}"
        );
    }

    #[test]
    fn floats() {
        assert_eq!(float(1e21).unwrap(), "1e+21");
        assert_eq!(float(1e-7).unwrap(), "1e-7");
        assert_eq!(float(123456789.0).unwrap(), "123456789");
        assert_eq!(float(0.5).unwrap(), "0.5");
        assert!(float(f64::NAN).is_err());
    }
}
