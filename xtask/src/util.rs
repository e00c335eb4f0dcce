//! Running commands, step headers and workspace paths.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

use anyhow::{Context, Result, bail};

/// The workspace root.
pub(crate) fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

/// `cargo` (the one that runs us), in the workspace root.
pub(crate) fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(root());
    cmd
}

/// A command line as a shell would show it.
pub(crate) fn show(cmd: &Command) -> String {
    let program = Path::new(cmd.get_program());
    let program = program.file_name().unwrap_or(program.as_os_str());
    let mut parts = vec![program.to_string_lossy().into_owned()];
    parts.extend(cmd.get_args().map(|a| a.to_string_lossy().into_owned()));
    parts.join(" ")
}

/// Print a step header: `==> [2/6] cargo fmt`.
pub(crate) fn header(step: usize, total: usize, what: &str) {
    println!("\n==> [{step}/{total}] {what}");
    let _ = std::io::stdout().flush();
}

/// Print a progress line.
pub(crate) fn note(what: &str) {
    println!("--- {what}");
    let _ = std::io::stdout().flush();
}

/// Run a command with inherited output; fail on a non-zero exit.
pub(crate) fn exec(cmd: &mut Command) -> Result<()> {
    println!("$ {}", show(cmd));
    let _ = std::io::stdout().flush();
    let status = cmd
        .status()
        .with_context(|| format!("cannot start `{}`", show(cmd)))?;
    if !status.success() {
        bail!("`{}` failed ({status})", show(cmd));
    }
    Ok(())
}

/// Run a command, echoing its stdout line by line to ours while handing
/// each line to `each`; stderr is inherited.
pub(crate) fn run_lines(cmd: &mut Command, mut each: impl FnMut(&str)) -> Result<ExitStatus> {
    println!("$ {}", show(cmd));
    let _ = std::io::stdout().flush();
    let mut child = cmd
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start `{}`", show(cmd)))?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut out = std::io::stdout();
    for line in BufReader::new(stdout).lines() {
        let line = line.context("reading the command's output")?;
        let _ = writeln!(out, "{line}");
        each(&line);
    }
    child
        .wait()
        .with_context(|| format!("waiting for `{}`", show(cmd)))
}

/// Run a command and return its stdout; fail on a non-zero exit.
pub(crate) fn output(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .output()
        .with_context(|| format!("cannot start `{}`", show(cmd)))?;
    if !out.status.success() {
        bail!(
            "`{}` failed ({}): {}",
            show(cmd),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// An error chain on one line.
pub(crate) fn error_line(err: &anyhow::Error) -> String {
    format!("{err:#}")
        .split('\n')
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ")
}

/// `1.4 MiB`, `812 KiB`.
pub(crate) fn human_size(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= 1024.0 * 1024.0 {
        format!("{:.1} MiB", b / 1024.0 / 1024.0)
    } else {
        format!("{:.0} KiB", b / 1024.0)
    }
}

/// Pass/fail totals from test runners' closing lines.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Totals {
    pub(crate) passed: u64,
    pub(crate) failed: u64,
}

impl Totals {
    /// Add the counts of a cargo `test result:` line, if `line` is one.
    pub(crate) fn add_cargo_line(&mut self, line: &str) -> bool {
        let Some(rest) = line.trim().strip_prefix("test result: ") else {
            return false;
        };
        let passed = count_before(rest, " passed");
        let failed = count_before(rest, " failed");
        if let (Some(p), Some(f)) = (passed, failed) {
            self.passed += p;
            self.failed += f;
            true
        } else {
            false
        }
    }

    /// Parse a plain `N passed, N failed` closing line.
    pub(crate) fn parse_plain(line: &str) -> Option<Totals> {
        let (p, f) = line.trim().split_once(", ")?;
        Some(Totals {
            passed: p.strip_suffix(" passed")?.parse().ok()?,
            failed: f.strip_suffix(" failed")?.parse().ok()?,
        })
    }

    pub(crate) fn add(&mut self, other: Totals) {
        self.passed += other.passed;
        self.failed += other.failed;
    }
}

/// The number just before `word` in `text` (`"3 passed"` -> 3).
fn count_before(text: &str, word: &str) -> Option<u64> {
    let end = text.find(word)?;
    let start = text[..end]
        .rfind(|c: char| !c.is_ascii_digit())
        .map_or(0, |i| i + 1);
    text[start..end].parse().ok()
}

/// Median of `values` in any order (0 for none).
pub(crate) fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Round to two decimals, for JSON reports.
pub(crate) fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cargo_test_result_lines() {
        let mut t = Totals::default();
        assert!(t.add_cargo_line(
            "test result: ok. 18 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.01s"
        ));
        assert!(t.add_cargo_line(
            "test result: FAILED. 3 passed; 2 failed; 1 ignored; 0 measured; 0 filtered out"
        ));
        assert!(!t.add_cargo_line("running 3 tests"));
        assert_eq!(
            t,
            Totals {
                passed: 21,
                failed: 2
            }
        );
    }

    #[test]
    fn parses_plain_closing_lines() {
        assert_eq!(
            Totals::parse_plain("40 passed, 1 failed"),
            Some(Totals {
                passed: 40,
                failed: 1
            })
        );
        assert_eq!(Totals::parse_plain("ok   x (1.0 ms)"), None);
    }
}
