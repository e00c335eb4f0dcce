//! Template functions: Go's builtins, consul-template's helpers and the
//! sprig functions Vault Secrets Operator users write.
//!
//! Error messages never include argument values: an argument may be a
//! secret. They name the function (the executor adds the call's source
//! text and position).

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use sha2::{Digest, Sha256};

use super::exec::MissingKey;
use super::format::{self, quote, sprint, sprintf, sprintln};
use super::json::{JsonStyle, to_json};
use super::value::Value;
use super::yaml::to_yaml;

/// What functions may consult besides their arguments.
#[derive(Debug)]
pub(crate) struct FnCtx {
    pub(crate) missing_key: MissingKey,
}

/// Every function name a template may use. `secret` and `pkiCert` are
/// implemented by the executor.
const NAMES: &[&str] = &[
    // Go builtins
    "and",
    "or",
    "not",
    "len",
    "index",
    "slice",
    "print",
    "printf",
    "println",
    "html",
    "js",
    "urlquery",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    // consul-template
    "secret",
    "pkiCert",
    "base64Decode",
    "base64Encode",
    "base64URLDecode",
    "base64URLEncode",
    "contains",
    "containsAll",
    "containsAny",
    "containsNone",
    "containsNotAll",
    "env",
    "mustEnv",
    "envOrDefault",
    "in",
    "indent",
    "join",
    "loop",
    "trimSpace",
    "trim",
    "trimPrefix",
    "trimSuffix",
    "parseBool",
    "parseFloat",
    "parseInt",
    "parseUint",
    "parseJSON",
    "parseYAML",
    "replaceAll",
    "sha256Hex",
    "split",
    "splitToMap",
    "timestamp",
    "toJSON",
    "toJSONPretty",
    "toUnescapedJSON",
    "toUnescapedJSONPretty",
    "toLower",
    "toTitle",
    "toUpper",
    "toYAML",
    "add",
    "subtract",
    "multiply",
    "divide",
    "modulo",
    "minimum",
    "maximum",
    "explodeMap",
    // sprig
    "default",
    "empty",
    "coalesce",
    "ternary",
    "hasKey",
    "get",
    "keys",
    "list",
    "dict",
    "first",
    "last",
    "hasPrefix",
    "hasSuffix",
    "upper",
    "lower",
    "title",
    "quote",
    "squote",
    "b64enc",
    "b64dec",
    "nindent",
    "repeat",
    "replace",
    "trimAll",
    "sortAlpha",
    "toString",
    "toJson",
    "toPrettyJson",
    "fromJson",
];

/// Whether `name` is a known function.
pub(crate) fn exists(name: &str) -> bool {
    NAMES.contains(&name)
}

type R = Result<Value, String>;

fn want(name: &str, args: &[Value], n: usize) -> Result<(), String> {
    if args.len() != n {
        return Err(format!(
            "wrong number of args for {name}: want {n} got {}",
            args.len()
        ));
    }
    Ok(())
}

fn want_range(name: &str, args: &[Value], lo: usize, hi: usize) -> Result<(), String> {
    if args.len() < lo || args.len() > hi {
        let want = if hi == usize::MAX {
            format!("at least {lo}")
        } else {
            format!("{lo} to {hi}")
        };
        return Err(format!(
            "wrong number of args for {name}: want {want} got {}",
            args.len()
        ));
    }
    Ok(())
}

fn string(args: &[Value], i: usize) -> Result<&str, String> {
    match &args[i] {
        Value::Str(s) => Ok(s),
        other => Err(format!(
            "wrong type for argument {}: expected string; got {}",
            i + 1,
            other.type_name()
        )),
    }
}

fn int(args: &[Value], i: usize) -> Result<i64, String> {
    match &args[i] {
        Value::Int(n) => Ok(*n),
        Value::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(*f as i64),
        other => Err(format!(
            "wrong type for argument {}: expected int; got {}",
            i + 1,
            other.type_name()
        )),
    }
}

/// sprig's `strval`: strings as they are, anything else as `%v`.
fn strval(v: &Value) -> String {
    match v {
        Value::Str(s) => s.to_string(),
        Value::Nil => String::new(),
        other => format::sprint(std::slice::from_ref(other)),
    }
}

fn string_list(v: &Value, what: &str) -> Result<Vec<String>, String> {
    match v {
        Value::List(items) => Ok(items.iter().map(strval).collect()),
        Value::Nil => Ok(Vec::new()),
        other => Err(format!(
            "{what}: expected a list; got {}",
            other.type_name()
        )),
    }
}

/// Go's html/js/urlquery argument handling: one string as is, else Sprint.
fn eval_args(args: &[Value]) -> String {
    match args {
        [Value::Str(s)] => s.to_string(),
        _ => sprint(args),
    }
}

/// Calls function `name`.
pub(crate) fn call(name: &str, ctx: &mut FnCtx, args: Vec<Value>) -> R {
    let a = &args[..];
    match name {
        "not" => {
            want(name, a, 1)?;
            Ok(Value::Bool(!a[0].is_true()))
        }
        "and" | "or" => {
            // Normally short-circuited by the executor.
            want_range(name, a, 1, usize::MAX)?;
            for v in a {
                if (name == "and") != v.is_true() {
                    return Ok(v.clone());
                }
            }
            Ok(a[a.len() - 1].clone())
        }
        "len" => {
            want(name, a, 1)?;
            match &a[0] {
                Value::Str(s) => Ok(Value::Int(s.len() as i64)),
                Value::List(l) => Ok(Value::Int(l.len() as i64)),
                Value::Map(m) => Ok(Value::Int(m.len() as i64)),
                other => Err(format!("len of type {}", other.type_name())),
            }
        }
        "index" => {
            want_range(name, a, 1, usize::MAX)?;
            let mut item = a[0].clone();
            for idx in &a[1..] {
                item = index_one(ctx, &item, idx)?;
            }
            Ok(item)
        }
        "slice" => {
            want_range(name, a, 1, 4)?;
            slice(a)
        }
        "print" => Ok(Value::str(sprint(a))),
        "println" => Ok(Value::str(sprintln(a))),
        "printf" => {
            want_range(name, a, 1, usize::MAX)?;
            let f = string(a, 0)?;
            Ok(Value::str(sprintf(f, &a[1..])))
        }
        "html" => Ok(Value::str(html_escape(&eval_args(a)))),
        "js" => Ok(Value::str(js_escape(&eval_args(a)))),
        "urlquery" => Ok(Value::str(query_escape(&eval_args(a)))),
        "eq" => {
            want_range(name, a, 2, usize::MAX)?;
            for other in &a[1..] {
                if equal(&a[0], other)? {
                    return Ok(Value::Bool(true));
                }
            }
            Ok(Value::Bool(false))
        }
        "ne" => {
            want(name, a, 2)?;
            Ok(Value::Bool(!equal(&a[0], &a[1])?))
        }
        "lt" | "le" | "gt" | "ge" => {
            want(name, a, 2)?;
            let ord = order(&a[0], &a[1])?;
            use std::cmp::Ordering::*;
            Ok(Value::Bool(match name {
                "lt" => ord == Less,
                "le" => ord != Greater,
                "gt" => ord == Greater,
                _ => ord != Less,
            }))
        }

        // ---- consul-template -------------------------------------------
        "base64Encode" | "b64enc" => {
            want(name, a, 1)?;
            Ok(Value::str(STANDARD.encode(string(a, 0)?)))
        }
        "base64URLEncode" => {
            want(name, a, 1)?;
            Ok(Value::str(URL_SAFE.encode(string(a, 0)?)))
        }
        "base64Decode" | "b64dec" | "base64URLDecode" => {
            want(name, a, 1)?;
            let input: String = string(a, 0)?.chars().filter(|c| *c != '\r' && *c != '\n').collect();
            let engine = if name == "base64URLDecode" { URL_SAFE } else { STANDARD };
            let bytes = engine
                .decode(input.as_bytes())
                .map_err(|_| "the input is not valid base64".to_string())?;
            let s = String::from_utf8(bytes)
                .map_err(|_| "the decoded bytes are not UTF-8 text".to_string())?;
            Ok(Value::str(s))
        }
        "contains" => {
            want(name, a, 2)?;
            Ok(Value::Bool(contained(&a[1], &a[0])))
        }
        "in" => {
            want(name, a, 2)?;
            Ok(Value::Bool(contained(&a[0], &a[1])))
        }
        "containsAll" | "containsAny" | "containsNone" | "containsNotAll" => {
            want(name, a, 2)?;
            let needles = match &a[0] {
                Value::List(l) => l.to_vec(),
                Value::Nil => Vec::new(),
                other => return Err(format!("expected a list; got {}", other.type_name())),
            };
            let (ret_true, invert) = match name {
                "containsAll" => (true, true),
                "containsAny" => (false, false),
                "containsNone" => (true, false),
                _ => (false, true),
            };
            for n in &needles {
                if contained(&a[1], n) != invert {
                    return Ok(Value::Bool(!ret_true));
                }
            }
            Ok(Value::Bool(ret_true))
        }
        "env" => {
            // The sandbox has no environment.
            want(name, a, 1)?;
            string(a, 0)?;
            Ok(Value::str(""))
        }
        "mustEnv" => {
            want(name, a, 1)?;
            string(a, 0)?;
            Err("required environment variable is empty (plugins have no environment)".into())
        }
        "envOrDefault" => {
            want(name, a, 2)?;
            string(a, 0)?;
            Ok(Value::str(string(a, 1)?))
        }
        "indent" | "nindent" => {
            want(name, a, 2)?;
            let n = int(a, 0)?;
            if !(0..=1000).contains(&n) {
                return Err("indent value must be between 0 and 1000".into());
            }
            let s = string(a, 1)?;
            let pad = " ".repeat(n as usize);
            if name == "nindent" {
                // sprig: every line, empty ones included.
                return Ok(Value::str(format!("\n{pad}{}", s.replace('\n', &format!("\n{pad}")))));
            }
            // consul-template: empty lines stay empty.
            let mut out = String::with_capacity(s.len());
            let mut at_line_start = true;
            for c in s.chars() {
                if at_line_start && c != '\n' {
                    out.push_str(&pad);
                }
                out.push(c);
                at_line_start = c == '\n';
            }
            Ok(Value::str(out))
        }
        "join" => {
            want(name, a, 2)?;
            let sep = string(a, 0)?;
            Ok(Value::str(string_list(&a[1], "join")?.join(sep)))
        }
        "split" => {
            want(name, a, 2)?;
            let sep = string(a, 0)?;
            let s = string(a, 1)?.trim();
            if s.is_empty() {
                return Ok(Value::list(Vec::new()));
            }
            let parts: Vec<Value> = if sep.is_empty() {
                s.chars().map(|c| Value::str(c.to_string())).collect()
            } else {
                s.split(sep).map(Value::str).collect()
            };
            Ok(Value::list(parts))
        }
        "splitToMap" => {
            want(name, a, 3)?;
            let (sep1, sep2) = (string(a, 0)?, string(a, 1)?);
            let s = string(a, 2)?.trim();
            let mut m = BTreeMap::new();
            if !s.is_empty() && !sep1.is_empty() && !sep2.is_empty() {
                for part in s.split(sep1) {
                    if let Some((k, v)) = part.split_once(sep2) {
                        m.insert(k.to_string(), Value::str(v));
                    }
                }
            }
            Ok(Value::map(m))
        }
        "loop" => {
            want_range(name, a, 1, 2)?;
            let to_int = |v: &Value| -> Result<i64, String> {
                match v {
                    Value::Int(i) => Ok(*i),
                    Value::Str(s) if s.is_empty() => Ok(0),
                    Value::Str(s) => s.parse().map_err(|_| "loop: bad argument".to_string()),
                    other => Err(format!("loop: bad argument type: {}", other.type_name())),
                }
            };
            let (start, stop) = if a.len() == 1 {
                (0, to_int(&a[0])?)
            } else {
                (to_int(&a[0])?, to_int(&a[1])?)
            };
            if stop.saturating_sub(start) > 100_000 {
                return Err("loop: more than 100000 iterations".into());
            }
            Ok(Value::list((start..stop).map(Value::Int).collect()))
        }
        "trimSpace" => {
            want(name, a, 1)?;
            Ok(Value::str(string(a, 0)?.trim()))
        }
        "trim" | "trimAll" => {
            want(name, a, 2)?;
            let cutset: Vec<char> = string(a, 0)?.chars().collect();
            Ok(Value::str(string(a, 1)?.trim_matches(|c| cutset.contains(&c))))
        }
        "trimPrefix" => {
            want(name, a, 2)?;
            let (p, s) = (string(a, 0)?, string(a, 1)?);
            Ok(Value::str(s.strip_prefix(p).unwrap_or(s)))
        }
        "trimSuffix" => {
            want(name, a, 2)?;
            let (p, s) = (string(a, 0)?, string(a, 1)?);
            Ok(Value::str(s.strip_suffix(p).unwrap_or(s)))
        }
        "hasPrefix" => {
            want(name, a, 2)?;
            Ok(Value::Bool(string(a, 1)?.starts_with(string(a, 0)?)))
        }
        "hasSuffix" => {
            want(name, a, 2)?;
            Ok(Value::Bool(string(a, 1)?.ends_with(string(a, 0)?)))
        }
        "parseBool" => {
            want(name, a, 1)?;
            match string(a, 0)? {
                "" => Ok(Value::Bool(false)),
                "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(Value::Bool(true)),
                "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(Value::Bool(false)),
                _ => Err("the input is not a boolean".into()),
            }
        }
        "parseInt" => {
            want(name, a, 1)?;
            let s = string(a, 0)?;
            if s.is_empty() {
                return Ok(Value::Int(0));
            }
            parse_go_int(s).map(Value::Int)
        }
        "parseUint" => {
            want(name, a, 1)?;
            let s = string(a, 0)?;
            if s.is_empty() {
                return Ok(Value::Int(0));
            }
            if s.starts_with(['-', '+']) {
                return Err("the input is not an unsigned integer".into());
            }
            parse_go_int(s).map(Value::Int)
        }
        "parseFloat" => {
            want(name, a, 1)?;
            let s = string(a, 0)?;
            if s.is_empty() {
                return Ok(Value::Float(0.0));
            }
            s.parse::<f64>()
                .map(Value::Float)
                .map_err(|_| "the input is not a number".into())
        }
        "parseJSON" | "fromJson" => {
            want(name, a, 1)?;
            let s = string(a, 0)?;
            if s.is_empty() {
                return Ok(Value::map(BTreeMap::new()));
            }
            let v: serde_json::Value = serde_json::from_str(s).map_err(|e| {
                format!("the input is not valid JSON (line {}, column {})", e.line(), e.column())
            })?;
            Ok(Value::from_json(&v))
        }
        "parseYAML" => {
            want(name, a, 1)?;
            let s = string(a, 0)?;
            if s.is_empty() {
                return Ok(Value::map(BTreeMap::new()));
            }
            let v: serde_yaml::Value = serde_yaml::from_str(s).map_err(|e| match e.location() {
                Some(l) => format!("the input is not valid YAML (line {}, column {})", l.line(), l.column()),
                None => "the input is not valid YAML".to_string(),
            })?;
            Ok(Value::from_yaml(&v))
        }
        "replaceAll" | "replace" => {
            want(name, a, 3)?;
            let (from, to, s) = (string(a, 0)?, string(a, 1)?, string(a, 2)?);
            Ok(Value::str(s.replace(from, to)))
        }
        "sha256Hex" => {
            want(name, a, 1)?;
            let digest = Sha256::digest(string(a, 0)?.as_bytes());
            let mut hex = String::with_capacity(64);
            for b in digest {
                hex.push_str(&format!("{b:02x}"));
            }
            Ok(Value::str(hex))
        }
        "timestamp" => Err(
            "timestamp is not available: Keyward renders deterministically and plugins have no clock"
                .into(),
        ),
        "toJSON" | "toJson" => {
            want(name, a, 1)?;
            Ok(Value::str(to_json(&a[0], JsonStyle::Compact, true)?))
        }
        "toJSONPretty" | "toPrettyJson" => {
            want(name, a, 1)?;
            Ok(Value::str(to_json(&a[0], JsonStyle::Pretty, true)?))
        }
        "toUnescapedJSON" => {
            want(name, a, 1)?;
            Ok(Value::str(to_json(&a[0], JsonStyle::Compact, false)?))
        }
        "toUnescapedJSONPretty" => {
            want(name, a, 1)?;
            Ok(Value::str(to_json(&a[0], JsonStyle::Pretty, false)?))
        }
        "toYAML" => {
            want(name, a, 1)?;
            Ok(Value::str(to_yaml(&a[0])))
        }
        "toLower" | "lower" => {
            want(name, a, 1)?;
            Ok(Value::str(string(a, 0)?.to_lowercase()))
        }
        "toUpper" | "upper" => {
            want(name, a, 1)?;
            Ok(Value::str(string(a, 0)?.to_uppercase()))
        }
        "toTitle" | "title" => {
            want(name, a, 1)?;
            Ok(Value::str(title(string(a, 0)?)))
        }
        "add" | "subtract" | "multiply" | "divide" | "modulo" | "minimum" | "maximum" => {
            want(name, a, 2)?;
            // consul-template: `add b a` is a + b, so `{{ 5 | subtract 2 }}`
            // is 3.
            arith(name, &a[1], &a[0])
        }
        "explodeMap" => {
            want(name, a, 1)?;
            let Value::Map(m) = &a[0] else {
                return Err(format!("expected a map; got {}", a[0].type_name()));
            };
            let mut out = BTreeMap::new();
            for (k, v) in m.iter() {
                explode(&mut out, k, v.clone())?;
            }
            Ok(Value::map(out))
        }

        // ---- sprig ------------------------------------------------------
        "default" => {
            want_range(name, a, 1, 2)?;
            if a.len() == 2 && a[1].is_true() {
                Ok(a[1].clone())
            } else {
                Ok(a[0].clone())
            }
        }
        "empty" => {
            want(name, a, 1)?;
            Ok(Value::Bool(!a[0].is_true()))
        }
        "coalesce" => Ok(a.iter().find(|v| v.is_true()).cloned().unwrap_or(Value::Nil)),
        "ternary" => {
            want(name, a, 3)?;
            Ok(if a[2].is_true() { a[0].clone() } else { a[1].clone() })
        }
        "hasKey" => {
            want(name, a, 2)?;
            let key = string(a, 1)?;
            match &a[0] {
                Value::Map(m) => Ok(Value::Bool(m.contains_key(key))),
                Value::Nil => Ok(Value::Bool(false)),
                other => Err(format!("expected a map; got {}", other.type_name())),
            }
        }
        "get" => {
            want(name, a, 2)?;
            let key = string(a, 1)?;
            match &a[0] {
                Value::Map(m) => Ok(m.get(key).cloned().unwrap_or_else(|| Value::str(""))),
                Value::Nil => Ok(Value::str("")),
                other => Err(format!("expected a map; got {}", other.type_name())),
            }
        }
        "keys" => {
            let mut keys = Vec::new();
            for m in a {
                match m {
                    Value::Map(m) => keys.extend(m.keys().cloned()),
                    Value::Nil => {}
                    other => return Err(format!("expected a map; got {}", other.type_name())),
                }
            }
            keys.sort();
            Ok(Value::list(keys.into_iter().map(Value::str).collect()))
        }
        "list" => Ok(Value::list(a.to_vec())),
        "dict" => {
            let mut m = BTreeMap::new();
            for pair in a.chunks(2) {
                let k = strval(&pair[0]);
                let v = pair.get(1).cloned().unwrap_or_else(|| Value::str(""));
                m.insert(k, v);
            }
            Ok(Value::map(m))
        }
        "first" | "last" => {
            want(name, a, 1)?;
            match &a[0] {
                Value::List(l) => Ok(if name == "first" { l.first() } else { l.last() }
                    .cloned()
                    .unwrap_or(Value::Nil)),
                Value::Nil => Ok(Value::Nil),
                other => Err(format!("expected a list; got {}", other.type_name())),
            }
        }
        "quote" => Ok(Value::str(
            a.iter()
                .filter(|v| !matches!(v, Value::Nil))
                .map(|v| quote(&strval(v), false))
                .collect::<Vec<_>>()
                .join(" "),
        )),
        "squote" => Ok(Value::str(
            a.iter()
                .filter(|v| !matches!(v, Value::Nil))
                .map(|v| format!("'{}'", strval(v)))
                .collect::<Vec<_>>()
                .join(" "),
        )),
        "repeat" => {
            want(name, a, 2)?;
            let n = int(a, 0)?;
            let s = string(a, 1)?;
            if n < 0 || (n as usize).saturating_mul(s.len()) > 1 << 20 {
                return Err("repeat count out of range".into());
            }
            Ok(Value::str(s.repeat(n as usize)))
        }
        "sortAlpha" => {
            want(name, a, 1)?;
            let mut l = string_list(&a[0], "sortAlpha")?;
            l.sort();
            Ok(Value::list(l.into_iter().map(Value::str).collect()))
        }
        "toString" => {
            want(name, a, 1)?;
            Ok(Value::str(strval(&a[0])))
        }
        _ => Err(format!("function {name:?} not defined")),
    }
}

fn index_one(ctx: &FnCtx, item: &Value, idx: &Value) -> R {
    match item {
        Value::List(l) => {
            let i = match idx {
                Value::Int(i) => *i,
                other => {
                    return Err(format!(
                        "cannot index slice/array with type {}",
                        other.type_name()
                    ));
                }
            };
            usize::try_from(i)
                .ok()
                .and_then(|i| l.get(i))
                .cloned()
                .ok_or_else(|| "index out of range".to_string())
        }
        Value::Str(s) => {
            let i = match idx {
                Value::Int(i) => *i,
                other => {
                    return Err(format!(
                        "cannot index string with type {}",
                        other.type_name()
                    ));
                }
            };
            usize::try_from(i)
                .ok()
                .and_then(|i| s.as_bytes().get(i))
                .map(|b| Value::Int(i64::from(*b)))
                .ok_or_else(|| "index out of range".to_string())
        }
        Value::Map(m) => {
            let Value::Str(key) = idx else {
                return Err(format!(
                    "value has type {}; should be string",
                    idx.type_name()
                ));
            };
            match m.get(&**key) {
                Some(v) => Ok(v.clone()),
                None => match ctx.missing_key {
                    MissingKey::Error => Err("map has no entry for the key (use hasKey, get or default for optional keys)".into()),
                    MissingKey::Zero => Ok(Value::Nil),
                },
            }
        }
        Value::Nil => match ctx.missing_key {
            MissingKey::Zero => Ok(Value::Nil),
            MissingKey::Error => Err("index of untyped nil".into()),
        },
        other => Err(format!("can't index item of type {}", other.type_name())),
    }
}

fn slice(a: &[Value]) -> R {
    let idx: Vec<i64> = (1..a.len()).map(|i| int(a, i)).collect::<Result<_, _>>()?;
    let len = match &a[0] {
        Value::Str(s) => {
            if idx.len() > 2 {
                return Err("cannot 3-index slice a string".into());
            }
            s.len()
        }
        Value::List(l) => l.len(),
        other => return Err(format!("can't slice item of type {}", other.type_name())),
    };
    let lo = idx.first().copied().unwrap_or(0);
    let hi = idx.get(1).copied().unwrap_or(len as i64);
    if lo < 0 || hi < lo || hi as usize > len {
        return Err("slice index out of range".into());
    }
    let (lo, hi) = (lo as usize, hi as usize);
    match &a[0] {
        Value::Str(s) => s
            .get(lo..hi)
            .map(Value::str)
            .ok_or_else(|| "slice boundary is inside a UTF-8 character".into()),
        Value::List(l) => Ok(Value::list(l[lo..hi].to_vec())),
        _ => unreachable!("checked above"),
    }
}

/// consul-template's `in(l, v)`: list membership or substring.
fn contained(haystack: &Value, needle: &Value) -> bool {
    match haystack {
        Value::List(items) => items.iter().any(|item| match (item, needle) {
            (Value::Int(a), Value::Int(b)) => a == b,
            (Value::Float(a), Value::Float(b)) => a == b,
            (Value::Str(a), Value::Str(b)) => a == b,
            _ => false,
        }),
        Value::Str(s) => match needle {
            Value::Str(n) => s.contains(&**n),
            _ => false,
        },
        _ => false,
    }
}

/// Go's `eq` on two values.
fn equal(a: &Value, b: &Value) -> Result<bool, String> {
    match (a, b) {
        (Value::Nil, Value::Nil) => Ok(true),
        (Value::Nil, _) | (_, Value::Nil) => Ok(false),
        (Value::Bool(x), Value::Bool(y)) => Ok(x == y),
        (Value::Int(x), Value::Int(y)) => Ok(x == y),
        (Value::Float(x), Value::Float(y)) => Ok(x == y),
        // Lenient: Vault numbers are integers here when integral.
        (Value::Int(x), Value::Float(y)) | (Value::Float(y), Value::Int(x)) => {
            Ok((*x as f64) == *y)
        }
        (Value::Str(x), Value::Str(y)) => Ok(x == y),
        (Value::Struct(x), Value::Struct(y)) => Ok(std::rc::Rc::ptr_eq(x, y)),
        (Value::List(_) | Value::Map(_), _) | (_, Value::List(_) | Value::Map(_)) => Err(format!(
            "non-comparable types {} and {}",
            a.type_name(),
            b.type_name()
        )),
        _ => Err(format!(
            "incompatible types for comparison: {} and {}",
            a.type_name(),
            b.type_name()
        )),
    }
}

fn order(a: &Value, b: &Value) -> Result<std::cmp::Ordering, String> {
    let incomparable = || {
        format!(
            "incompatible types for comparison: {} and {}",
            a.type_name(),
            b.type_name()
        )
    };
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => Ok(x.cmp(y)),
        (Value::Str(x), Value::Str(y)) => Ok(x.cmp(y)),
        (Value::Float(_) | Value::Int(_), Value::Float(_) | Value::Int(_)) => {
            let (x, y) = (num(a), num(b));
            x.partial_cmp(&y)
                .ok_or_else(|| "NaN is not comparable".to_string())
        }
        (Value::Bool(_) | Value::Nil | Value::List(_) | Value::Map(_) | Value::Struct(_), _)
        | (_, Value::Bool(_) | Value::Nil | Value::List(_) | Value::Map(_) | Value::Struct(_)) => {
            Err(format!(
                "invalid type for comparison: {} and {}",
                a.type_name(),
                b.type_name()
            ))
        }
        _ => Err(incomparable()),
    }
}

fn num(v: &Value) -> f64 {
    match v {
        Value::Int(i) => *i as f64,
        Value::Float(f) => *f,
        _ => 0.0,
    }
}

fn arith(name: &str, a: &Value, b: &Value) -> R {
    let bad = |v: &Value| format!("unknown type for value ({})", v.type_name());
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => {
            let (x, y) = (*x, *y);
            Ok(Value::Int(match name {
                "add" => x.wrapping_add(y),
                "subtract" => x.wrapping_sub(y),
                "multiply" => x.wrapping_mul(y),
                "divide" => {
                    if y == 0 {
                        return Err("integer divide by zero".into());
                    }
                    x.wrapping_div(y)
                }
                "modulo" => {
                    if y == 0 {
                        return Err("integer divide by zero".into());
                    }
                    x.wrapping_rem(y)
                }
                "minimum" => x.min(y),
                _ => x.max(y),
            }))
        }
        (Value::Int(_) | Value::Float(_), Value::Int(_) | Value::Float(_)) => {
            let (x, y) = (num(a), num(b));
            Ok(Value::Float(match name {
                "add" => x + y,
                "subtract" => x - y,
                "multiply" => x * y,
                "divide" => x / y,
                "modulo" => return Err(bad(if matches!(a, Value::Float(_)) { a } else { b })),
                "minimum" => x.min(y),
                _ => x.max(y),
            }))
        }
        (Value::Int(_) | Value::Float(_), other) | (other, _) => Err(bad(other)),
    }
}

/// Go's `strconv.ParseInt(s, 10, 64)`.
fn parse_go_int(s: &str) -> Result<i64, String> {
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    if body.is_empty() || !body.bytes().all(|b| b.is_ascii_digit()) {
        return Err("the input is not an integer".into());
    }
    s.parse::<i64>()
        .map_err(|_| "the value is out of range".into())
}

fn explode(out: &mut BTreeMap<String, Value>, key: &str, v: Value) -> Result<(), String> {
    match key.split_once('/') {
        Some((top, rest)) => {
            let entry = out
                .entry(top.to_string())
                .or_insert_with(|| Value::map(BTreeMap::new()));
            let Value::Map(m) = entry else {
                return Err(format!("explodeMap: {top:?} already has a value"));
            };
            let mut nested = (**m).clone();
            explode(&mut nested, rest, v)?;
            *entry = Value::map(nested);
            Ok(())
        }
        None => {
            if !key.is_empty() {
                out.insert(key.to_string(), v);
            }
            Ok(())
        }
    }
}

/// Title-cases the first letter of each word, leaving the rest alone
/// (consul-template's `toTitle`, sprig's `title`).
fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_word = false;
    for c in s.chars() {
        if c.is_alphanumeric() || c == '_' || c == '\'' {
            if in_word {
                out.push(c);
            } else {
                out.extend(c.to_uppercase());
            }
            in_word = true;
        } else {
            out.push(c);
            in_word = false;
        }
    }
    out
}

/// `template.HTMLEscapeString`.
fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\'' => out.push_str("&#39;"),
            '"' => out.push_str("&#34;"),
            '\0' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// `template.JSEscapeString`.
fn js_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// `url.QueryEscape`.
fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(name: &str, args: Vec<Value>) -> R {
        call(
            name,
            &mut FnCtx {
                missing_key: MissingKey::Error,
            },
            args,
        )
    }

    fn s(v: &str) -> Value {
        Value::str(v)
    }

    #[test]
    fn every_listed_name_is_implemented() {
        for name in NAMES {
            if *name == "secret" || *name == "pkiCert" {
                continue;
            }
            if let Err(e) = c(name, vec![]) {
                assert!(!e.contains("not defined"), "{name}: {e}");
            }
        }
    }

    #[test]
    fn strings() {
        assert_eq!(
            c("split", vec![s(","), s(" a,b ")]).unwrap(),
            Value::list(vec![s("a"), s("b")])
        );
        assert_eq!(
            c("split", vec![s(","), s("  ")]).unwrap(),
            Value::list(vec![])
        );
        assert_eq!(
            c(
                "join",
                vec![s("-"), Value::list(vec![s("a"), Value::Int(1)])]
            )
            .unwrap(),
            s("a-1")
        );
        assert_eq!(
            c("indent", vec![Value::Int(2), s("a\n\nb")]).unwrap(),
            s("  a\n\n  b")
        );
        assert_eq!(
            c("nindent", vec![Value::Int(2), s("a\nb")]).unwrap(),
            s("\n  a\n  b")
        );
        assert_eq!(
            c("toTitle", vec![s("hello wORLD-x")]).unwrap(),
            s("Hello WORLD-X")
        );
        assert_eq!(
            c("replaceAll", vec![s("a"), s("b"), s("aXa")]).unwrap(),
            s("bXb")
        );
        assert_eq!(c("trim", vec![s("-"), s("--x--")]).unwrap(), s("x"));
        assert_eq!(c("trimPrefix", vec![s("ab"), s("abc")]).unwrap(), s("c"));
        assert_eq!(
            c("quote", vec![s("a\"b"), Value::Int(1)]).unwrap(),
            s("\"a\\\"b\" \"1\"")
        );
    }

    #[test]
    fn encodings() {
        assert_eq!(c("base64Encode", vec![s("hi?")]).unwrap(), s("aGk/"));
        assert_eq!(c("base64URLEncode", vec![s("hi?")]).unwrap(), s("aGk_"));
        assert_eq!(c("base64Decode", vec![s("aGk/")]).unwrap(), s("hi?"));
        assert!(
            c("base64Decode", vec![s("CANARY-x")])
                .unwrap_err()
                .contains("not valid base64")
        );
        assert_eq!(
            c("sha256Hex", vec![s("abc")]).unwrap(),
            s("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        );
        assert_eq!(c("urlquery", vec![s("a b&c")]).unwrap(), s("a+b%26c"));
        assert_eq!(
            c("html", vec![s("<a href='x'>")]).unwrap(),
            s("&lt;a href=&#39;x&#39;&gt;")
        );
        assert_eq!(c("js", vec![s("a'b<")]).unwrap(), s("a\\'b\\u003C"));
    }

    #[test]
    fn parsing_never_echoes_input() {
        for f in [
            "parseInt",
            "parseFloat",
            "parseBool",
            "parseJSON",
            "parseYAML",
            "base64Decode",
        ] {
            let e = c(f, vec![s("{CANARY-x")]).unwrap_err();
            assert!(!e.contains("CANARY"), "{f}: {e}");
        }
    }

    #[test]
    fn comparisons() {
        assert_eq!(
            c("eq", vec![s("a"), s("b"), s("a")]).unwrap(),
            Value::Bool(true)
        );
        assert_eq!(
            c("eq", vec![Value::Int(1), Value::Nil]).unwrap(),
            Value::Bool(false)
        );
        assert!(c("eq", vec![Value::Int(1), s("1")]).is_err());
        assert_eq!(
            c("lt", vec![Value::Int(1), Value::Float(1.5)]).unwrap(),
            Value::Bool(true)
        );
        assert_eq!(c("ge", vec![s("b"), s("a")]).unwrap(), Value::Bool(true));
        assert!(c("lt", vec![Value::Bool(true), Value::Bool(false)]).is_err());
    }

    #[test]
    fn math_follows_consul_template_argument_order() {
        assert_eq!(
            c("subtract", vec![Value::Int(2), Value::Int(5)]).unwrap(),
            Value::Int(3)
        );
        assert_eq!(
            c("divide", vec![Value::Int(2), Value::Int(10)]).unwrap(),
            Value::Int(5)
        );
        assert_eq!(
            c("modulo", vec![Value::Int(3), Value::Int(10)]).unwrap(),
            Value::Int(1)
        );
        assert_eq!(
            c("add", vec![Value::Float(0.5), Value::Int(1)]).unwrap(),
            Value::Float(1.5)
        );
        assert!(c("divide", vec![Value::Int(0), Value::Int(1)]).is_err());
    }

    #[test]
    fn collections() {
        let m = c("dict", vec![s("b"), Value::Int(2), s("a"), Value::Int(1)]).unwrap();
        assert_eq!(
            c("keys", vec![m.clone()]).unwrap(),
            Value::list(vec![s("a"), s("b")])
        );
        assert_eq!(
            c("hasKey", vec![m.clone(), s("a")]).unwrap(),
            Value::Bool(true)
        );
        assert_eq!(c("get", vec![m.clone(), s("z")]).unwrap(), s(""));
        assert!(c("index", vec![m.clone(), s("z")]).is_err());
        assert_eq!(c("index", vec![m, s("a")]).unwrap(), Value::Int(1));
        let l = Value::list(vec![s("x"), s("y"), s("z")]);
        assert_eq!(
            c("slice", vec![l.clone(), Value::Int(1), Value::Int(2)]).unwrap(),
            Value::list(vec![s("y")])
        );
        assert_eq!(c("len", vec![l.clone()]).unwrap(), Value::Int(3));
        assert_eq!(
            c("contains", vec![s("y"), l.clone()]).unwrap(),
            Value::Bool(true)
        );
        assert_eq!(
            c("containsAll", vec![Value::list(vec![s("x"), s("q")]), l]).unwrap(),
            Value::Bool(false)
        );
        assert_eq!(c("default", vec![s("d"), s("")]).unwrap(), s("d"));
        assert_eq!(c("default", vec![s("d"), s("v")]).unwrap(), s("v"));
    }
}
