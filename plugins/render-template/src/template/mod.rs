//! A Go `text/template` engine (the dialect consul-template, Vault Agent and
//! the Vault Secrets Operator use), with consul-template's and the common
//! sprig functions.
//!
//! `parse` checks syntax, function names, variables and that every `secret` /
//! `pkiCert` call names its path and parameters as literals (so that `plan`
//! sees exactly what `render` will read). `Template::execute` runs it.
//!
//! Error messages carry `template:LINE:COL:` and quote only template text
//! (field chains, function names, literal keys), never runtime values, so a
//! failing render cannot leak a secret into a log or an error.

mod exec;
pub(crate) mod format;
mod funcs;
mod json;
mod lexer;
mod parser;
pub(crate) mod value;
mod yaml;

use std::fmt;

pub(crate) use exec::{ExecOptions, GrantedSecret, MissingKey};
pub(crate) use parser::{RefKind, Template};

/// A parse or execution error, with its position in the template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Error {
    pub(crate) line: usize,
    pub(crate) col: usize,
    pub(crate) msg: String,
    /// The template referenced a secret that was not passed to `render`.
    pub(crate) not_granted: bool,
}

impl Error {
    /// An error at byte offset `pos` of `src`.
    pub(crate) fn at(src: &str, pos: usize, msg: impl Into<String>) -> Error {
        let (line, col) = line_col(src, pos);
        Error {
            line,
            col,
            msg: msg.into(),
            not_granted: false,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "template:{}:{}: {}", self.line, self.col, self.msg)
    }
}

/// 1-based line and column (in characters) of byte offset `pos`.
pub(crate) fn line_col(src: &str, pos: usize) -> (usize, usize) {
    let pos = pos.min(src.len());
    let before = &src[..pos];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before[line_start..].chars().count() + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based() {
        assert_eq!(line_col("abc", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
        assert_eq!(line_col("é\nx", 3), (2, 1));
    }
}
