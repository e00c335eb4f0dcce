//! Glob patterns for paths and names: `*` matches within one `/`-separated
//! segment, `**` matches across segments, `?` matches one character other
//! than `/`. Everything else matches itself.
//!
//! `core` and `alloc` only: the `policy-rules` plugin, built without
//! `std`, compiles this file as its own module.

use alloc::vec;
use alloc::vec::Vec;

/// Whether `text` matches `pattern`.
pub fn matches(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    // memo[i][j]: pattern[i..] vs text[j..] already known not to match.
    let mut failed = vec![false; (p.len() + 1) * (t.len() + 1)];
    match_at(&p, &t, 0, 0, &mut failed)
}

fn match_at(p: &[char], t: &[char], i: usize, j: usize, failed: &mut [bool]) -> bool {
    let idx = i * (t.len() + 1) + j;
    if failed[idx] {
        return false;
    }
    let ok = if i == p.len() {
        j == t.len()
    } else if p[i] == '*' {
        let double = i + 1 < p.len() && p[i + 1] == '*';
        let next = if double { i + 2 } else { i + 1 };
        // `**/` also matches zero segments.
        if double && next < p.len() && p[next] == '/' && match_at(p, t, next + 1, j, failed) {
            true
        } else {
            let mut k = j;
            loop {
                if match_at(p, t, next, k, failed) {
                    break true;
                }
                if k == t.len() || (!double && t[k] == '/') {
                    break false;
                }
                k += 1;
            }
        }
    } else if j < t.len() && ((p[i] == '?' && t[j] != '/') || p[i] == t[j]) {
        match_at(p, t, i + 1, j + 1, failed)
    } else {
        false
    };
    if !ok {
        failed[idx] = true;
    }
    ok
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn table() {
        let cases = [
            ("literal", "secret/app", "secret/app", true),
            ("literal mismatch", "secret/app", "secret/apps", false),
            (
                "star in segment",
                "secret/team-a/*",
                "secret/team-a/db",
                true,
            ),
            (
                "star stops at slash",
                "secret/team-a/*",
                "secret/team-a/db/x",
                false,
            ),
            (
                "double star crosses",
                "secret/team-a/**",
                "secret/team-a/db/x",
                true,
            ),
            (
                "double star zero segments",
                "secret/**/db",
                "secret/db",
                true,
            ),
            ("double star middle", "secret/**/db", "secret/a/b/db", true),
            ("question", "app?", "app1", true),
            ("question not slash", "a?b", "a/b", false),
            ("star everything", "*", "", true),
            ("prefix star", "APP_*", "APP_DB_PASSWORD", true),
            ("prefix star mismatch", "APP_*", "OTHER", false),
            ("empty pattern", "", "", true),
        ];
        for (name, pattern, text, want) in cases {
            assert_eq!(matches(pattern, text), want, "{name}: {pattern} vs {text}");
        }
    }
}
