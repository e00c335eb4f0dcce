//! TTL values: a positive whole number of seconds, or a string of
//! `<number><unit>` parts with units `d`, `h`, `m`, `s` in that order
//! (`"90s"`, `"15m"`, `"1h30m"`, `"7d"`).

#[cfg(target_arch = "wasm32")]
use crate::prelude::*;

use crate::json::Json;

const HINT: &str = "use a positive number of seconds (3600) or a duration such as \
                    \"90s\", \"15m\", \"1h30m\" or \"7d\"";

/// Parse a TTL from its JSON value into seconds.
pub(crate) fn parse_ttl(value: &Json<'_>) -> Result<u64, String> {
    let seconds = match value {
        Json::Number(n) => n
            .as_u64()
            .ok_or_else(|| format!("{n} is not a whole number of seconds; {HINT}"))?,
        Json::String(s) => parse_duration(s).map_err(|e| format!("{s:?} {e}; {HINT}"))?,
        other => {
            return Err(format!(
                "must be a number or a string, not {}; {HINT}",
                crate::settings::json_type(other)
            ));
        }
    };
    if seconds == 0 {
        return Err(format!("must be greater than zero; {HINT}"));
    }
    Ok(seconds)
}

fn parse_duration(text: &str) -> Result<u64, String> {
    const UNITS: [(&str, u64); 4] = [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)];
    if text.is_empty() {
        return Err("is empty".into());
    }
    let mut total: u64 = 0;
    // Index into UNITS of the next unit allowed: units go largest first,
    // each at most once.
    let mut next_unit = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err("is not a duration (expected a number)".into());
        }
        let number: u64 = rest[..digits]
            .parse()
            .map_err(|_| "is too large".to_string())?;
        let unit_len = rest[digits..]
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len() - digits);
        let unit = &rest[digits..digits + unit_len];
        if unit.is_empty() {
            return Err("lacks a unit after the last number".into());
        }
        let position = UNITS
            .iter()
            .position(|(u, _)| *u == unit)
            .ok_or_else(|| format!("has an unknown unit {unit:?} (known: d, h, m, s)"))?;
        if position < next_unit {
            return Err("repeats a unit or lists units out of order".into());
        }
        next_unit = position + 1;
        total = number
            .checked_mul(UNITS[position].1)
            .and_then(|s| total.checked_add(s))
            .ok_or_else(|| "is too large".to_string())?;
        rest = &rest[digits + unit_len..];
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::parse_ttl;
    use crate::json::Json;

    fn ttl(text: &str) -> Result<u64, String> {
        parse_ttl(&Json::parse(text).unwrap())
    }

    #[test]
    fn valid() {
        let cases = [
            ("3600", 3600),
            ("1", 1),
            (r#""90s""#, 90),
            (r#""15m""#, 900),
            (r#""1h""#, 3600),
            (r#""1h30m""#, 5400),
            (r#""2d""#, 172_800),
            (r#""1d2h3m4s""#, 93_784),
        ];
        for (value, want) in cases {
            assert_eq!(ttl(value), Ok(want), "{value}");
        }
    }

    #[test]
    fn invalid() {
        let cases = [
            ("0", "greater than zero"),
            (r#""0s""#, "greater than zero"),
            ("-5", "not a whole number"),
            ("1.5", "not a whole number"),
            (r#""""#, "is empty"),
            (r#""1 hour""#, "unknown unit \" hour\""),
            (r#""1hour""#, "unknown unit \"hour\""),
            (r#""3600""#, "lacks a unit"),
            (r#""h""#, "expected a number"),
            (r#""30m1h""#, "out of order"),
            (r#""1h1h""#, "repeats a unit"),
            (r#""1x""#, "unknown unit \"x\""),
            (r#""1h-5m""#, "unknown unit \"h-\""),
            (r#""99999999999999999999s""#, "too large"),
            (r#""999999999999999d""#, "too large"),
            ("true", "not a boolean"),
            ("null", "not null"),
        ];
        for (value, want) in cases {
            let err = ttl(value).expect_err(value);
            assert!(err.contains(want), "{value}: {err:?} lacks {want:?}");
            assert!(err.contains("\"1h30m\""), "{value}: {err:?} lacks the hint");
        }
    }
}
