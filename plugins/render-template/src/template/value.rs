//! Template values: the dynamic types a Go template sees.
//!
//! Vault data arrives as JSON; Go's `encoding/json` would turn it into
//! `map[string]interface{}`, `[]interface{}`, strings, numbers, bools and nil.
//! Those are modelled here, plus `Struct` for the objects `secret` and
//! `pkiCert` return (Go structs: fields in declaration order, a missing field
//! is always an error, whatever the missing-key mode).

use std::collections::BTreeMap;
use std::rc::Rc;

/// A dynamically typed template value.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Value {
    /// Go's untyped `nil` (JSON `null`, a missing key in lenient mode).
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Rc<str>),
    List(Rc<Vec<Value>>),
    /// Maps iterate, print and serialise sorted by key, as Go does.
    Map(Rc<BTreeMap<String, Value>>),
    Struct(Rc<Struct>),
}

/// A Go struct (always handled through a pointer, like consul-template's
/// `*dependency.Secret`).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Struct {
    /// Type name used in messages and `%T`, e.g. `*Secret`.
    pub(crate) type_name: &'static str,
    pub(crate) fields: Vec<(&'static str, Value)>,
}

impl Struct {
    pub(crate) fn field(&self, name: &str) -> Option<&Value> {
        self.fields.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }
}

impl Value {
    pub(crate) fn str(s: impl Into<Rc<str>>) -> Value {
        Value::Str(s.into())
    }

    pub(crate) fn list(items: Vec<Value>) -> Value {
        Value::List(Rc::new(items))
    }

    pub(crate) fn map(entries: BTreeMap<String, Value>) -> Value {
        Value::Map(Rc::new(entries))
    }

    /// Go's `template.IsTrue`: false for nil, false, zero numbers, empty
    /// strings, lists and maps; true otherwise (structs are always true).
    pub(crate) fn is_true(&self) -> bool {
        match self {
            Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::List(l) => !l.is_empty(),
            Value::Map(m) => !m.is_empty(),
            Value::Struct(_) => true,
        }
    }

    /// The Go type name, as `%T` prints it.
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Value::Nil => "<nil>",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float64",
            Value::Str(_) => "string",
            Value::List(_) => "[]interface {}",
            Value::Map(_) => "map[string]interface {}",
            Value::Struct(s) => s.type_name,
        }
    }

    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Converts parsed JSON into a value. Integral numbers that fit an
    /// `i64` become `Int` (so `{{ .Data.port }}` prints `5432`, as Vault
    /// Agent prints Vault's `json.Number`), the rest `Float`.
    pub(crate) fn from_json(json: &serde_json::Value) -> Value {
        match json {
            serde_json::Value::Null => Value::Nil,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Value::Int(i)
                } else if let Some(u) = n.as_u64() {
                    Value::Float(u as f64)
                } else {
                    Value::Float(n.as_f64().unwrap_or(0.0))
                }
            }
            serde_json::Value::String(s) => Value::str(s.as_str()),
            serde_json::Value::Array(items) => {
                Value::list(items.iter().map(Value::from_json).collect())
            }
            serde_json::Value::Object(entries) => Value::map(
                entries
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::from_json(v)))
                    .collect(),
            ),
        }
    }

    /// Parses a JSON document straight into a value, with the same result
    /// as [`Value::from_json`] on `serde_json::from_str`'s tree (a later
    /// duplicate key wins, numbers convert alike) but without building that
    /// tree: no `serde_json::Map`, no key hashing, one copy of each string.
    pub(crate) fn parse_json(text: &str) -> Result<Value, serde_json::Error> {
        serde_json::from_str::<JsonValue>(text).map(|v| v.0)
    }

    /// Converts parsed YAML into a value (for `parseYAML`). Non-string map
    /// keys are stringified, as they would print in Go.
    pub(crate) fn from_yaml(yaml: &serde_yaml::Value) -> Value {
        match yaml {
            serde_yaml::Value::Null => Value::Nil,
            serde_yaml::Value::Bool(b) => Value::Bool(*b),
            serde_yaml::Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Value::Int(i)
                } else {
                    Value::Float(n.as_f64().unwrap_or(0.0))
                }
            }
            serde_yaml::Value::String(s) => Value::str(s.as_str()),
            serde_yaml::Value::Sequence(items) => {
                Value::list(items.iter().map(Value::from_yaml).collect())
            }
            serde_yaml::Value::Mapping(entries) => Value::map(
                entries
                    .iter()
                    .map(|(k, v)| {
                        let key = match k {
                            serde_yaml::Value::String(s) => s.clone(),
                            other => crate::template::format::sprint(&[Value::from_yaml(other)]),
                        };
                        (key, Value::from_yaml(v))
                    })
                    .collect(),
            ),
            serde_yaml::Value::Tagged(tagged) => Value::from_yaml(&tagged.value),
        }
    }
}

/// A [`Value`] deserialised from JSON (see [`Value::parse_json`]).
struct JsonValue(Value);

impl<'de> serde::Deserialize<'de> for JsonValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<JsonValue, D::Error> {
        d.deserialize_any(JsonVisitor).map(JsonValue)
    }
}

struct JsonVisitor;

impl<'de> serde::de::Visitor<'de> for JsonVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any valid JSON value")
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Nil)
    }

    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }

    fn visit_i64<E>(self, i: i64) -> Result<Value, E> {
        Ok(Value::Int(i))
    }

    /// Integers beyond `i64` become floats, as in [`Value::from_json`].
    fn visit_u64<E>(self, u: u64) -> Result<Value, E> {
        Ok(i64::try_from(u).map_or(Value::Float(u as f64), Value::Int))
    }

    fn visit_f64<E>(self, f: f64) -> Result<Value, E> {
        Ok(Value::Float(f))
    }

    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::str(s))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(JsonValue(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(Value::list(items))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries = BTreeMap::new();
        while let Some((k, JsonValue(v))) = map.next_entry::<String, JsonValue>()? {
            entries.insert(k, v);
        }
        Ok(Value::map(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truthiness_follows_go() {
        assert!(!Value::Nil.is_true());
        assert!(!Value::Int(0).is_true());
        assert!(!Value::Float(0.0).is_true());
        assert!(!Value::str("").is_true());
        assert!(!Value::list(vec![]).is_true());
        assert!(!Value::map(BTreeMap::new()).is_true());
        assert!(Value::str("0").is_true());
        assert!(Value::Int(-1).is_true());
        assert!(
            Value::Struct(Rc::new(Struct {
                type_name: "*Secret",
                fields: vec![]
            }))
            .is_true()
        );
    }

    #[test]
    fn json_numbers_become_ints_when_integral() {
        let v: serde_json::Value = serde_json::from_str(r#"{"a":5432,"b":1.5,"c":null}"#).unwrap();
        let Value::Map(m) = Value::from_json(&v) else {
            panic!("not a map")
        };
        assert_eq!(m["a"], Value::Int(5432));
        assert_eq!(m["b"], Value::Float(1.5));
        assert_eq!(m["c"], Value::Nil);
    }

    #[test]
    fn parse_json_matches_from_json() {
        for text in [
            r#"{"a":5432,"b":1.5,"c":null,"d":[true,false,"x",{"e":[]}],"a":-7}"#,
            r#"[18446744073709551615, 9223372036854775807, -9223372036854775808, 1e300, 0.0]"#,
            r#""\u00e9\n""#,
            "  {}  ",
        ] {
            let tree: serde_json::Value = serde_json::from_str(text).unwrap();
            assert_eq!(
                Value::parse_json(text).unwrap(),
                Value::from_json(&tree),
                "{text}"
            );
        }
        for bad in ["", "{", "[1,]", "{} x", "nul"] {
            assert!(Value::parse_json(bad).is_err(), "{bad}");
        }
    }
}
