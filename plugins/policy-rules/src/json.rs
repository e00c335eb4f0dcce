//! A borrowed JSON tree for the settings walker.
//!
//! The host instantiates the plugin afresh for every call, so the settings
//! document is parsed on every call, and building a `serde_json::Value` was
//! most of that call: every string is copied into its own allocation, and
//! (with the workspace's `preserve_order` feature) every object is an
//! `IndexMap` hashed with SipHash. [`Json`] borrows strings from the document
//! when they hold no escapes, and keeps an object as a list of entries
//! searched linearly: settings objects have a handful of keys.
//!
//! The tree is built by `serde_json`'s own parser through [`Deserialize`], so
//! what is valid JSON, and every syntax error message, is exactly as before.
//! It also models the same values as `serde_json::Value`: numbers are
//! `serde_json::Number`s built the same way, and a key given twice in one
//! object keeps the position of its first occurrence and the value of its
//! last, as `serde_json::Map::insert` does.

#[cfg(target_arch = "wasm32")]
use crate::prelude::*;

use alloc::borrow::Cow;
use core::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Number;

/// A JSON value whose strings borrow from the document where they can.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Json<'a> {
    Null,
    Bool(bool),
    Number(Number),
    String(Cow<'a, str>),
    Array(Vec<Json<'a>>),
    Object(Object<'a>),
}

/// A JSON object: its entries in document order, each key once.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Object<'a> {
    entries: Vec<(Cow<'a, str>, Json<'a>)>,
}

impl<'a> Json<'a> {
    /// Parse a whole document (`serde_json::from_str`, errors included).
    pub(crate) fn parse(text: &'a str) -> serde_json::Result<Json<'a>> {
        serde_json::from_str(text)
    }

    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Json::String(s) => Some(s),
            _ => None,
        }
    }

    pub(crate) fn as_array(&self) -> Option<&[Json<'a>]> {
        match self {
            Json::Array(items) => Some(items),
            _ => None,
        }
    }

    pub(crate) fn as_object(&self) -> Option<&Object<'a>> {
        match self {
            Json::Object(obj) => Some(obj),
            _ => None,
        }
    }
}

impl<'a> Object<'a> {
    /// The value under `key`.
    pub(crate) fn get(&self, key: &str) -> Option<&Json<'a>> {
        self.entries
            .iter()
            .find_map(|(k, v)| (k == key).then_some(v))
    }

    /// The keys, in document order.
    pub(crate) fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(k, _)| k.as_ref())
    }

    /// The entries, in document order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &Json<'a>)> {
        self.entries.iter().map(|(k, v)| (k.as_ref(), v))
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Build an object from entries in document order, merging repeated keys
    /// as `serde_json::Map` does: the first position, the last value.
    fn from_entries(mut entries: Vec<(Cow<'a, str>, Json<'a>)>) -> Object<'a> {
        /// Up to this many entries, look for a repeated key pairwise.
        const SMALL: usize = 16;
        let repeated = if entries.len() <= SMALL {
            entries
                .iter()
                .enumerate()
                .any(|(i, (key, _))| entries[..i].iter().any(|(k, _)| k == key))
        } else {
            let mut keys: Vec<&str> = entries.iter().map(|(k, _)| k.as_ref()).collect();
            keys.sort_unstable();
            keys.windows(2).any(|pair| pair[0] == pair[1])
        };
        if repeated {
            // Entry indexes grouped by key, each group in document order (the
            // sort is stable). The first entry of a group takes the value of
            // the last; the others go.
            let mut order: Vec<usize> = (0..entries.len()).collect();
            order.sort_by(|&a, &b| entries[a].0.cmp(&entries[b].0));
            let mut keep = vec![true; entries.len()];
            let mut moves = Vec::new();
            for group in order.chunk_by(|&a, &b| entries[a].0 == entries[b].0) {
                if let [first, .., last] = *group {
                    moves.push((first, last));
                    for &i in &group[1..] {
                        keep[i] = false;
                    }
                }
            }
            for (first, last) in moves {
                // The keys are equal, so swapping whole entries moves the value.
                entries.swap(first, last);
            }
            let mut keep = keep.into_iter();
            entries.retain(|_| keep.next().unwrap_or(true));
        }
        Object { entries }
    }
}

impl<'de> Deserialize<'de> for Json<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Json<'de>, D::Error> {
        deserializer.deserialize_any(JsonVisitor)
    }
}

/// Builds a [`Json`] as `serde_json::Value`'s own visitor builds a `Value`.
struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json<'de>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("any valid JSON value")
    }

    fn visit_bool<E>(self, value: bool) -> Result<Json<'de>, E> {
        Ok(Json::Bool(value))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Json<'de>, E> {
        Ok(Json::Number(value.into()))
    }

    fn visit_u64<E>(self, value: u64) -> Result<Json<'de>, E> {
        Ok(Json::Number(value.into()))
    }

    fn visit_f64<E>(self, value: f64) -> Result<Json<'de>, E> {
        Ok(Number::from_f64(value).map_or(Json::Null, Json::Number))
    }

    fn visit_borrowed_str<E>(self, value: &'de str) -> Result<Json<'de>, E> {
        Ok(Json::String(Cow::Borrowed(value)))
    }

    fn visit_str<E>(self, value: &str) -> Result<Json<'de>, E> {
        Ok(Json::String(Cow::Owned(value.to_owned())))
    }

    fn visit_string<E>(self, value: String) -> Result<Json<'de>, E> {
        Ok(Json::String(Cow::Owned(value)))
    }

    fn visit_none<E>(self) -> Result<Json<'de>, E> {
        Ok(Json::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Json<'de>, D::Error> {
        Json::deserialize(deserializer)
    }

    fn visit_unit<E>(self) -> Result<Json<'de>, E> {
        Ok(Json::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json<'de>, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json<'de>, A::Error> {
        let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0));
        while let Some(Key(key)) = map.next_key()? {
            entries.push((key, map.next_value()?));
        }
        Ok(Json::Object(Object::from_entries(entries)))
    }
}

/// An object key, borrowed when it holds no escapes. (`Cow<str>`'s own
/// `Deserialize` always copies.)
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Key<'de>, D::Error> {
        deserializer.deserialize_str(KeyVisitor)
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Key<'de>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a string key")
    }

    fn visit_borrowed_str<E>(self, value: &'de str) -> Result<Key<'de>, E> {
        Ok(Key(Cow::Borrowed(value)))
    }

    fn visit_str<E>(self, value: &str) -> Result<Key<'de>, E> {
        Ok(Key(Cow::Owned(value.to_owned())))
    }

    fn visit_string<E>(self, value: String) -> Result<Key<'de>, E> {
        Ok(Key(Cow::Owned(value)))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    /// The same tree as a `serde_json::Value`, keys in order.
    fn to_value(json: &Json<'_>) -> Value {
        match json {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(*b),
            Json::Number(n) => Value::Number(n.clone()),
            Json::String(s) => Value::String(s.to_string()),
            Json::Array(items) => Value::Array(items.iter().map(to_value).collect()),
            Json::Object(obj) => Value::Object(
                obj.iter()
                    .map(|(k, v)| (k.to_string(), to_value(v)))
                    .collect(),
            ),
        }
    }

    /// Parses as `serde_json::Value` does: same tree (key order included),
    /// same errors.
    fn same_as_value(text: &str) {
        let ours = Json::parse(text).map_err(|e| e.to_string());
        let theirs = serde_json::from_str::<Value>(text).map_err(|e| e.to_string());
        match (ours, theirs) {
            (Ok(ours), Ok(theirs)) => {
                let ours = to_value(&ours);
                assert_eq!(ours, theirs, "{text}");
                // `Value`'s equality ignores key order; its rendering does not.
                assert_eq!(ours.to_string(), theirs.to_string(), "{text}");
            }
            (ours, theirs) => assert_eq!(ours.err(), theirs.err(), "{text}"),
        }
    }

    #[test]
    fn matches_serde_json_value() {
        let large_with_repeats = {
            let mut entries: Vec<String> = (0..40).map(|i| format!("\"k{i}\": {i}")).collect();
            entries.push("\"k7\": \"seven\"".into());
            entries.push("\"k3\": [3]".into());
            entries.push("\"k7\": \"last\"".into());
            format!("{{{}}}", entries.join(", "))
        };
        let large_distinct = {
            let entries: Vec<String> = (0..40).map(|i| format!("\"k{i}\": {i}")).collect();
            format!("{{{}}}", entries.join(", "))
        };
        let cases = [
            "null",
            "true",
            "[1, -2, 3.5, 1e3, -0.0, 18446744073709551615, -9223372036854775808]",
            r#"{"a": "plain", "b": "esc\"aped\n", "c": "\u00e9\ud83d\ude00", "d": {}}"#,
            r#"{"b": 1, "a": 2, "b": 3}"#,
            r#"{"x": {"y": 1}, "x": {"z": 2}, "w": null}"#,
            r#"{"a\u0062": 1, "ab": 2}"#,
            &large_with_repeats,
            &large_distinct,
            "",
            "{",
            "[1,]",
            r#"{"a": 1,}"#,
            "{} x",
            "1e400",
            "\"\\x\"",
            &"[".repeat(200),
        ];
        for text in cases {
            same_as_value(text);
        }
    }

    #[test]
    fn strings_borrow_when_unescaped() {
        let json = Json::parse(r#"{"plain": "text", "esc\n": "a\tb"}"#).unwrap();
        let obj = json.as_object().unwrap();
        let entries: Vec<_> = obj.entries.iter().collect();
        assert!(matches!(entries[0].0, Cow::Borrowed("plain")));
        assert!(matches!(entries[0].1, Json::String(Cow::Borrowed("text"))));
        assert!(matches!(entries[1].0, Cow::Owned(_)));
        assert_eq!(obj.get("esc\n").and_then(Json::as_str), Some("a\tb"));
    }
}
