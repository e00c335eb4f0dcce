//! Redaction of secret values from everything a plugin emits (log lines,
//! stdout, stderr) before it reaches `tracing`.

use keyward_core::SecretValue;

/// What replaces a secret.
pub(crate) const MARKER: &str = "<redacted>";

/// Shortest string leaf treated as a secret (shorter ones would redact
/// ordinary words and numbers everywhere).
const MIN_SECRET_LEN: usize = 4;

/// The secret strings of one call, longest first.
pub(crate) struct Redactor {
    secrets: Vec<String>,
    /// `first_bytes[b]`: some secret starts with byte `b`.
    first_bytes: Box<[bool; 256]>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Redactor({} secrets)", self.secrets.len())
    }
}

impl Redactor {
    /// No secrets (decide calls are value-blind).
    pub(crate) fn none() -> Self {
        Redactor {
            secrets: Vec::new(),
            first_bytes: Box::new([false; 256]),
        }
    }

    /// Every string leaf (length >= 4) of every value's `data`, also in its
    /// JSON-escaped form when that differs.
    pub(crate) fn from_values(values: &[SecretValue]) -> Self {
        let mut secrets = Vec::new();
        for v in values {
            collect(v.data.expose(), &mut secrets);
        }
        Redactor::from_strings(secrets)
    }

    pub(crate) fn from_strings(mut secrets: Vec<String>) -> Self {
        let escaped: Vec<String> = secrets
            .iter()
            .filter_map(|s| {
                let json = serde_json::to_string(s).ok()?;
                let inner = &json[1..json.len() - 1];
                (inner != s).then(|| inner.to_string())
            })
            .collect();
        secrets.extend(escaped);
        secrets.retain(|s| s.len() >= MIN_SECRET_LEN);
        secrets.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        secrets.dedup();
        let mut first_bytes = Box::new([false; 256]);
        for s in &secrets {
            first_bytes[usize::from(s.as_bytes()[0])] = true;
        }
        Redactor {
            secrets,
            first_bytes,
        }
    }

    /// Replace every secret occurrence by [`MARKER`], longest match first,
    /// left to right, in one pass (a marker is never re-scanned).
    pub(crate) fn redact(&self, text: &str) -> String {
        if self.secrets.is_empty() {
            return text.to_string();
        }
        let bytes = text.as_bytes();
        let mut out = String::with_capacity(text.len());
        let mut copied = 0;
        let mut i = 0;
        while i < bytes.len() {
            if self.first_bytes[usize::from(bytes[i])]
                && let Some(s) = self
                    .secrets
                    .iter()
                    .find(|s| bytes[i..].starts_with(s.as_bytes()))
            {
                // A secret is a whole `str` and starts at a char
                // boundary of `text` (its first byte is not a UTF-8
                // continuation byte), so both slice ends are boundaries.
                out.push_str(&text[copied..i]);
                out.push_str(MARKER);
                i += s.len();
                copied = i;
                continue;
            }
            i += 1;
        }
        out.push_str(&text[copied..]);
        out
    }

    /// Like [`Redactor::redact`] for text that was cut off at its end: a
    /// trailing fragment that begins some secret is removed too, so that a
    /// cut through a secret does not leak its prefix.
    pub(crate) fn redact_cut(&self, text: &str) -> String {
        let mut out = self.redact(text);
        let mut cut = out.len();
        for s in &self.secrets {
            for len in (1..s.len().min(out.len() + 1)).rev() {
                if s.is_char_boundary(len) && out.ends_with(&s[..len]) {
                    cut = cut.min(out.len() - len);
                    break;
                }
            }
        }
        if cut < out.len() {
            out.truncate(cut);
            out.push_str(MARKER);
        }
        out
    }
}

fn collect(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::String(s) => out.push(s.clone()),
        serde_json::Value::Array(items) => items.iter().for_each(|v| collect(v, out)),
        serde_json::Value::Object(map) => map.values().for_each(|v| collect(v, out)),
        _ => {}
    }
}

/// Cut `text` to at most `max` bytes at a char boundary; returns whether it
/// was cut.
pub(crate) fn truncate_at_boundary(text: &mut String, max: usize) -> bool {
    if text.len() <= max {
        return false;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(secrets: &[&str]) -> Redactor {
        Redactor::from_strings(secrets.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn redacts() {
        let cases = [
            (
                "plain",
                &["hunter2"][..],
                "password=hunter2!",
                "password=<redacted>!",
            ),
            ("twice", &["abcd"], "abcd-abcd", "<redacted>-<redacted>"),
            (
                "longest first",
                &["abcd", "abcdef"],
                "xabcdefx",
                "x<redacted>x",
            ),
            ("too short", &["abc"], "abc", "abc"),
            ("marker not rescanned", &["dact"], "dact", "<redacted>"),
            ("unicode", &["pässwörd"], "é pässwörd é", "é <redacted> é"),
            (
                "json escaped",
                &["a\"b\\c"],
                r#"{"p":"a\"b\\c"}"#,
                r#"{"p":"<redacted>"}"#,
            ),
            ("no secrets", &[], "anything", "anything"),
        ];
        for (name, secrets, input, want) in cases {
            assert_eq!(r(secrets).redact(input), want, "{name}");
        }
    }

    #[test]
    fn cut_secret_prefix_is_removed() {
        let red = r(&["s3cr3t-value"]);
        assert_eq!(red.redact_cut("token: s3cr3t-v"), "token: <redacted>");
        assert_eq!(red.redact_cut("token: s"), "token: <redacted>");
        assert_eq!(red.redact_cut("token: x"), "token: x");
    }

    #[test]
    fn leaves_of_data() {
        let v = SecretValue {
            reference: "r".into(),
            parameters: vec![],
            lease_id: String::new(),
            lease_duration: 0,
            renewable: false,
            data: keyward_core::Sensitive(serde_json::json!({
                "data": {"password": "hunter22", "n": 12345, "short": "abc", "list": ["tok-1234"]}
            })),
            warnings: vec![],
        };
        let red = Redactor::from_values(&[v]);
        assert_eq!(
            red.redact("hunter22 12345 abc tok-1234"),
            "<redacted> 12345 abc <redacted>"
        );
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        let mut s = "ééé".to_string();
        assert!(truncate_at_boundary(&mut s, 3));
        assert_eq!(s, "é");
    }
}
