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
}
