//! A small line diff (longest common subsequence) for case reports.

/// Lines of context kept around each change.
const CONTEXT: usize = 2;
/// Above this many cells the diff falls back to listing both sides.
const MAX_CELLS: usize = 4_000_000;

/// Diff two line lists: changed lines prefixed `- ` (expected) and `+ `
/// (got), unchanged ones `  `, with runs of unchanged lines far from a change
/// elided as `  ...`.
pub(crate) fn lines(want: &[String], got: &[String]) -> Vec<String> {
    let ops = if want.len().saturating_mul(got.len()) > MAX_CELLS {
        want.iter()
            .map(|l| Op::Del(l.as_str()))
            .chain(got.iter().map(|l| Op::Add(l.as_str())))
            .collect()
    } else {
        lcs_ops(want, got)
    };
    let changed: Vec<bool> = ops.iter().map(|op| !matches!(op, Op::Same(_))).collect();
    let near_change = |i: usize| {
        let lo = i.saturating_sub(CONTEXT);
        let hi = (i + CONTEXT).min(ops.len() - 1);
        changed[lo..=hi].iter().any(|c| *c)
    };
    let mut out = Vec::new();
    let mut elided = false;
    for (i, op) in ops.iter().enumerate() {
        match op {
            Op::Same(l) if near_change(i) => {
                out.push(format!("  {l}"));
                elided = false;
            }
            Op::Same(_) => {
                if !elided {
                    out.push("  ...".to_string());
                    elided = true;
                }
            }
            Op::Del(l) => {
                out.push(format!("- {l}"));
                elided = false;
            }
            Op::Add(l) => {
                out.push(format!("+ {l}"));
                elided = false;
            }
        }
    }
    out
}

#[derive(Debug, PartialEq, Eq)]
enum Op<'a> {
    Same(&'a str),
    Del(&'a str),
    Add(&'a str),
}

fn lcs_ops<'a>(a: &'a [String], b: &'a [String]) -> Vec<Op<'a>> {
    let (n, m) = (a.len(), b.len());
    // table[i][j]: LCS length of a[i..] and b[j..].
    let mut table = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            table[i][j] = if a[i] == b[j] {
                table[i + 1][j + 1] + 1
            } else {
                table[i + 1][j].max(table[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut ops = Vec::with_capacity(n + m);
    while i < n && j < m {
        if a[i] == b[j] {
            ops.push(Op::Same(&a[i]));
            i += 1;
            j += 1;
        } else if table[i + 1][j] >= table[i][j + 1] {
            ops.push(Op::Del(&a[i]));
            i += 1;
        } else {
            ops.push(Op::Add(&b[j]));
            j += 1;
        }
    }
    ops.extend(a[i..].iter().map(|l| Op::Del(l)));
    ops.extend(b[j..].iter().map(|l| Op::Add(l)));
    ops
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn marks_changes_and_elides_far_context() {
        let want = v(&["a", "b", "c", "d", "e", "f", "g", "x"]);
        let got = v(&["a", "b", "c", "d", "e", "f", "g", "y"]);
        assert_eq!(
            lines(&want, &got),
            v(&["  ...", "  f", "  g", "- x", "+ y"])
        );
    }

    #[test]
    fn insertions_and_deletions() {
        assert_eq!(
            lines(&v(&["a", "c"]), &v(&["a", "b", "c"])),
            v(&["  a", "+ b", "  c"])
        );
        assert_eq!(lines(&v(&["a", "b"]), &v(&[])), v(&["- a", "- b"]));
    }
}
