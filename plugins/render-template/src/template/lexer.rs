//! Tokeniser for Go's `text/template` syntax with the default `{{ }}`
//! delimiters, trim markers (`{{- ` / ` -}}`) and comments (`{{/* */}}`).
//!
//! Tokens borrow their text from the template source: only string literals
//! with escape sequences (and raw strings with carriage returns) allocate.

use std::borrow::Cow;

use super::Error;

/// The kind of a token; the text it covers is `src[pos..end]`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Tok<'a> {
    /// Literal text outside actions, after trimming.
    Text(&'a str),
    /// `{{` or `{{- `.
    LeftDelim,
    /// `}}` or ` -}}`.
    RightDelim,
    /// Whitespace inside an action (separates operands).
    Space,
    /// `.Name` (the name without the dot).
    Field(&'a str),
    /// `$name` or `$` (with the `$`).
    Variable(&'a str),
    /// A function name.
    Identifier(&'a str),
    /// A keyword: if, else, end, range, with, define, template, block,
    /// break, continue.
    Keyword(&'static str),
    Bool(bool),
    Nil,
    /// A number literal, as written.
    Number(&'a str),
    /// A character constant, already decoded.
    Char(i64),
    /// A string literal, already unquoted (borrowed unless it had to be
    /// decoded).
    Str(Cow<'a, str>),
    /// `.`
    Dot,
    Pipe,
    LeftParen,
    RightParen,
    /// `:=`
    Declare,
    /// `=`
    Assign,
    Comma,
    Eof,
}

#[derive(Clone, Debug)]
pub(crate) struct Token<'a> {
    pub(crate) tok: Tok<'a>,
    /// Byte offset where the token starts.
    pub(crate) pos: usize,
    /// Byte offset just after the token (meaningful for action tokens).
    pub(crate) end: usize,
}

/// The keyword `word` is, if any.
fn keyword(word: &str) -> Option<&'static str> {
    Some(match word {
        "block" => "block",
        "break" => "break",
        "continue" => "continue",
        "define" => "define",
        "else" => "else",
        "end" => "end",
        "if" => "if",
        "range" => "range",
        "template" => "template",
        "with" => "with",
        _ => return None,
    })
}

/// Splits `src` into tokens.
pub(crate) fn lex(src: &str) -> Result<Vec<Token<'_>>, Error> {
    let mut lx = Lexer {
        src,
        pos: 0,
        // Action-heavy templates have about one token per 3 bytes; sizing
        // for that up front saves copying the vector as it grows.
        out: Vec::with_capacity(src.len() / 3 + 8),
        trim_next_text: false,
    };
    lx.run()?;
    Ok(lx.out)
}

struct Lexer<'a> {
    src: &'a str,
    pos: usize,
    out: Vec<Token<'a>>,
    /// The previous action ended with ` -}}`: trim leading space of the
    /// next text.
    trim_next_text: bool,
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn is_alnum(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

/// Byte offset of the first `{{` in `s`. Scans for `{` with `memchr`
/// (via `str::find(char)`), which is much cheaper than a substring search
/// on short texts.
fn find_left_delim(s: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = s[from..].find('{') {
        let at = from + i;
        if s.as_bytes().get(at + 1) == Some(&b'{') {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

impl<'a> Lexer<'a> {
    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn peek2(&self) -> Option<char> {
        let mut it = self.rest().chars();
        it.next();
        it.next()
    }

    fn err(&self, pos: usize, msg: impl Into<String>) -> Error {
        Error::at(self.src, pos, msg)
    }

    fn push(&mut self, tok: Tok<'a>, pos: usize) {
        self.out.push(Token {
            tok,
            pos,
            end: self.pos,
        });
    }

    fn run(&mut self) -> Result<(), Error> {
        loop {
            // Text up to the next left delimiter.
            let start = self.pos;
            let next = find_left_delim(self.rest()).map(|i| self.pos + i);
            let text_end = next.unwrap_or(self.src.len());
            let mut text = &self.src[start..text_end];
            if self.trim_next_text {
                text = text.trim_start_matches(is_space);
                self.trim_next_text = false;
            }
            let Some(delim) = next else {
                if !text.is_empty() {
                    self.push(Tok::Text(text), start);
                }
                self.pos = self.src.len();
                self.push(Tok::Eof, self.pos);
                return Ok(());
            };
            // `{{- ` trims the space before it.
            let after = &self.src[delim + 2..];
            let left_trim =
                after.starts_with('-') && after[1..].chars().next().is_some_and(is_space);
            if left_trim {
                text = text.trim_end_matches(is_space);
            }
            if !text.is_empty() {
                self.push(Tok::Text(text), start);
            }
            self.pos = delim + 2;
            if left_trim {
                self.pos += 2; // "-" and one space
            }
            // Comment?
            if self.rest().starts_with("/*") {
                self.comment(delim)?;
                continue;
            }
            self.push(Tok::LeftDelim, delim);
            self.inside_action(delim)?;
        }
    }

    fn comment(&mut self, delim: usize) -> Result<(), Error> {
        let Some(end) = self.rest().find("*/") else {
            return Err(self.err(delim, "unclosed comment"));
        };
        self.pos += end + 2;
        if self.rest().starts_with("}}") {
            self.pos += 2;
        } else if self.rest().starts_with(" -}}")
            || self.rest().starts_with("\t-}}")
            || self.rest().starts_with("\n-}}")
            || self.rest().starts_with("\r-}}")
        {
            self.pos += 4;
            self.trim_next_text = true;
        } else {
            return Err(self.err(delim, "comment ends before closing delimiter"));
        }
        Ok(())
    }

    /// Lexes inside `{{ ... }}` up to and including the right delimiter.
    fn inside_action(&mut self, delim: usize) -> Result<(), Error> {
        let mut paren_depth = 0usize;
        loop {
            let pos = self.pos;
            let rest = self.rest();
            if rest.starts_with("}}") {
                if paren_depth > 0 {
                    return Err(self.err(pos, "unclosed left paren"));
                }
                self.pos += 2;
                self.push(Tok::RightDelim, pos);
                return Ok(());
            }
            let Some(c) = self.peek() else {
                return Err(self.err(delim, "unclosed action"));
            };
            if is_space(c) {
                // ` -}}` is a trim-marked right delimiter.
                if rest[c.len_utf8()..].starts_with("-}}") {
                    if paren_depth > 0 {
                        return Err(self.err(pos, "unclosed left paren"));
                    }
                    self.pos += c.len_utf8() + 3;
                    self.push(Tok::RightDelim, pos);
                    self.trim_next_text = true;
                    return Ok(());
                }
                self.pos += c.len_utf8();
                if !matches!(
                    self.out.last(),
                    Some(Token {
                        tok: Tok::Space,
                        ..
                    })
                ) {
                    self.push(Tok::Space, pos);
                }
                continue;
            }
            match c {
                '|' => {
                    self.pos += 1;
                    self.push(Tok::Pipe, pos);
                }
                '(' => {
                    self.pos += 1;
                    paren_depth += 1;
                    self.push(Tok::LeftParen, pos);
                }
                ')' => {
                    self.pos += 1;
                    if paren_depth == 0 {
                        return Err(self.err(pos, "unexpected right paren"));
                    }
                    paren_depth -= 1;
                    self.push(Tok::RightParen, pos);
                }
                ',' => {
                    self.pos += 1;
                    self.push(Tok::Comma, pos);
                }
                ':' => {
                    if self.peek2() != Some('=') {
                        return Err(self.err(pos, "expected :="));
                    }
                    self.pos += 2;
                    self.push(Tok::Declare, pos);
                }
                '=' => {
                    self.pos += 1;
                    self.push(Tok::Assign, pos);
                }
                '"' => self.quoted(pos)?,
                '`' => self.raw_string(pos)?,
                '\'' => self.char_constant(pos)?,
                '$' => {
                    self.pos += 1;
                    self.alnum_run();
                    // The name with its `$`.
                    let text = &self.src[pos..self.pos];
                    self.check_terminator()?;
                    self.push(Tok::Variable(text), pos);
                }
                '.' => {
                    // ".5" is a number; ".name" a field; "." the dot.
                    if self.peek2().is_some_and(|d| d.is_ascii_digit()) {
                        self.number(pos)?;
                    } else {
                        self.pos += 1;
                        let name = self.alnum_run();
                        if name.is_empty() {
                            self.push(Tok::Dot, pos);
                        } else {
                            self.check_terminator()?;
                            self.push(Tok::Field(name), pos);
                        }
                    }
                }
                '+' | '-' | '0'..='9' => self.number(pos)?,
                c if is_alnum(c) => {
                    let word = self.alnum_run();
                    self.check_terminator()?;
                    let tok = match word {
                        "true" => Tok::Bool(true),
                        "false" => Tok::Bool(false),
                        "nil" => Tok::Nil,
                        _ => match keyword(word) {
                            Some(k) => Tok::Keyword(k),
                            None => Tok::Identifier(word),
                        },
                    };
                    self.push(tok, pos);
                }
                other => {
                    return Err(
                        self.err(pos, format!("unrecognized character in action: {other:?}"))
                    );
                }
            }
        }
    }

    fn alnum_run(&mut self) -> &'a str {
        let rest = self.rest();
        // ASCII bytes are checked directly; anything else is decoded.
        let bytes = rest.as_bytes();
        let mut len = 0;
        while let Some(&b) = bytes.get(len) {
            if b.is_ascii_alphanumeric() || b == b'_' {
                len += 1;
                continue;
            }
            match rest[len..].chars().next() {
                Some(c) if !c.is_ascii() && is_alnum(c) => len += c.len_utf8(),
                _ => break,
            }
        }
        let word = &rest[..len];
        self.pos += len;
        word
    }

    /// After a word, only a delimiter-ish character may follow.
    fn check_terminator(&self) -> Result<(), Error> {
        let rest = self.rest();
        match rest.chars().next() {
            None => Ok(()),
            Some(c) if is_space(c) || ".,|:)(=".contains(c) => Ok(()),
            Some(_) if rest.starts_with("}}") => Ok(()),
            Some(c) => Err(self.err(self.pos, format!("bad character {c:?}"))),
        }
    }

    fn number(&mut self, pos: usize) -> Result<(), Error> {
        let rest = self.rest();
        let mut len = 0;
        let bytes = rest.as_bytes();
        if len < bytes.len() && (bytes[len] == b'+' || bytes[len] == b'-') {
            len += 1;
        }
        let mut digits = "0123456789_";
        if rest[len..].starts_with("0x") || rest[len..].starts_with("0X") {
            len += 2;
            digits = "0123456789abcdefABCDEF_";
        } else if rest[len..].starts_with("0o") || rest[len..].starts_with("0O") {
            len += 2;
            digits = "01234567_";
        } else if rest[len..].starts_with("0b") || rest[len..].starts_with("0B") {
            len += 2;
            digits = "01_";
        }
        let run = |len: &mut usize, set: &str| {
            while *len < bytes.len() && set.as_bytes().contains(&bytes[*len]) {
                *len += 1;
            }
        };
        run(&mut len, digits);
        if len < bytes.len() && bytes[len] == b'.' {
            len += 1;
            run(&mut len, digits);
        }
        let exp: &[u8] = if digits.len() == 23 { b"pP" } else { b"eE" };
        if len < bytes.len() && exp.contains(&bytes[len]) {
            len += 1;
            if len < bytes.len() && (bytes[len] == b'+' || bytes[len] == b'-') {
                len += 1;
            }
            run(&mut len, "0123456789_");
        }
        let text = &rest[..len];
        let bad = text.is_empty()
            || !text.bytes().any(|b| b.is_ascii_digit())
            || rest[len..].chars().next().is_some_and(is_alnum);
        if bad {
            let shown: String = rest
                .chars()
                .take_while(|c| !is_space(*c))
                .take(20)
                .collect();
            return Err(self.err(pos, format!("bad number syntax: {shown:?}")));
        }
        self.pos += len;
        self.push(Tok::Number(text), pos);
        Ok(())
    }

    fn quoted(&mut self, pos: usize) -> Result<(), Error> {
        let rest = self.rest();
        // Without escapes the literal is the text between the quotes.
        if let Some(end) = rest[1..].find(['"', '\\', '\n'])
            && rest.as_bytes()[1 + end] == b'"'
        {
            self.pos += end + 2;
            self.push(Tok::Str(Cow::Borrowed(&rest[1..=end])), pos);
            return Ok(());
        }
        let mut out = String::new();
        let mut chars = rest.char_indices();
        chars.next(); // opening quote
        loop {
            let Some((i, c)) = chars.next() else {
                return Err(self.err(pos, "unterminated quoted string"));
            };
            match c {
                '"' => {
                    self.pos += i + 1;
                    break;
                }
                '\n' => return Err(self.err(pos, "unterminated quoted string")),
                '\\' => {
                    let decoded = decode_escape(&mut chars, '"').map_err(|m| self.err(pos, m))?;
                    out.push_str(&decoded);
                }
                c => out.push(c),
            }
        }
        self.push(Tok::Str(Cow::Owned(out)), pos);
        Ok(())
    }

    fn raw_string(&mut self, pos: usize) -> Result<(), Error> {
        let rest = &self.rest()[1..];
        let Some(end) = rest.find('`') else {
            return Err(self.err(pos, "unterminated raw quoted string"));
        };
        // Go's strconv.Unquote drops carriage returns from raw strings.
        let raw = &rest[..end];
        let text = if raw.contains('\r') {
            Cow::Owned(raw.chars().filter(|c| *c != '\r').collect())
        } else {
            Cow::Borrowed(raw)
        };
        self.pos += end + 2;
        self.push(Tok::Str(text), pos);
        Ok(())
    }

    fn char_constant(&mut self, pos: usize) -> Result<(), Error> {
        let mut chars = self.rest().char_indices();
        chars.next();
        let value = match chars.next() {
            Some((_, '\\')) => {
                let s = decode_escape(&mut chars, '\'').map_err(|m| self.err(pos, m))?;
                let mut it = s.chars();
                match (it.next(), it.next()) {
                    (Some(c), None) => c as i64,
                    // A \xHH byte escape outside ASCII.
                    _ => s.bytes().next().map_or(0, i64::from),
                }
            }
            Some((_, '\'')) | Some((_, '\n')) | None => {
                return Err(self.err(pos, "malformed character constant"));
            }
            Some((_, c)) => c as i64,
        };
        match chars.next() {
            Some((i, '\'')) => self.pos += i + 1,
            _ => return Err(self.err(pos, "unterminated character constant")),
        }
        self.push(Tok::Char(value), pos);
        Ok(())
    }
}

/// Decodes one escape sequence after a backslash, as Go's strconv.Unquote.
fn decode_escape(
    chars: &mut std::str::CharIndices<'_>,
    quote: char,
) -> Result<String, &'static str> {
    let Some((_, c)) = chars.next() else {
        return Err("unterminated escape sequence");
    };
    let simple = match c {
        'a' => Some('\x07'),
        'b' => Some('\x08'),
        'f' => Some('\x0c'),
        'n' => Some('\n'),
        'r' => Some('\r'),
        't' => Some('\t'),
        'v' => Some('\x0b'),
        '\\' => Some('\\'),
        c if c == quote => Some(c),
        _ => None,
    };
    if let Some(s) = simple {
        return Ok(s.to_string());
    }
    let (count, radix) = match c {
        'x' => (2, 16),
        'u' => (4, 16),
        'U' => (8, 16),
        '0'..='7' => (2, 8),
        _ => return Err("unknown escape sequence"),
    };
    let mut digits = String::new();
    if radix == 8 {
        digits.push(c);
    }
    for _ in 0..count {
        match chars.next() {
            Some((_, d)) if d.is_digit(radix) => digits.push(d),
            _ => return Err("invalid escape sequence"),
        }
    }
    let n = u32::from_str_radix(&digits, radix).map_err(|_| "invalid escape sequence")?;
    match c {
        'x' | '0'..='7' => {
            if n > 255 {
                return Err("octal escape value > 255");
            }
            // A byte; only ASCII bytes can stay valid UTF-8 on their own.
            if n < 128 {
                Ok(char::from(n as u8).to_string())
            } else {
                Ok(char::from_u32(n).map(String::from).unwrap_or_default())
            }
        }
        _ => char::from_u32(n)
            .map(String::from)
            .ok_or("escape sequence is invalid Unicode code point"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(src: &str) -> Vec<Tok<'_>> {
        lex(src).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn text_and_fields() {
        assert_eq!(
            toks("a{{ .Data.data }}b"),
            vec![
                Tok::Text("a"),
                Tok::LeftDelim,
                Tok::Space,
                Tok::Field("Data"),
                Tok::Field("data"),
                Tok::Space,
                Tok::RightDelim,
                Tok::Text("b"),
                Tok::Eof
            ]
        );
    }

    #[test]
    fn trim_markers() {
        assert_eq!(
            toks("a \n {{- 1 -}} \n b"),
            vec![
                Tok::Text("a"),
                Tok::LeftDelim,
                Tok::Number("1"),
                Tok::RightDelim,
                Tok::Text("b"),
                Tok::Eof
            ]
        );
        // Without a space, "-3" is a number.
        assert_eq!(
            toks("{{-3}}"),
            vec![Tok::LeftDelim, Tok::Number("-3"), Tok::RightDelim, Tok::Eof]
        );
    }

    #[test]
    fn comments_vanish() {
        assert_eq!(
            toks("a {{- /* x\ny */ -}} b"),
            vec![Tok::Text("a"), Tok::Text("b"), Tok::Eof]
        );
        assert!(lex("{{/* x */ }}").is_err());
        assert!(lex("{{/* x ").is_err());
    }

    #[test]
    fn strings_and_escapes() {
        assert_eq!(
            toks(r#"{{"a\tb\"\u00e9\x41"}}"#)[1],
            Tok::Str("a\tb\"éA".into())
        );
        assert_eq!(toks("{{`a\\n`}}")[1], Tok::Str("a\\n".into()));
        assert_eq!(toks("{{'a'}}")[1], Tok::Char(97));
        assert!(lex(r#"{{"abc}}"#).is_err());
    }

    #[test]
    fn variables_and_declarations() {
        assert_eq!(
            toks("{{$x := $.a}}"),
            vec![
                Tok::LeftDelim,
                Tok::Variable("$x"),
                Tok::Space,
                Tok::Declare,
                Tok::Space,
                Tok::Variable("$"),
                Tok::Field("a"),
                Tok::RightDelim,
                Tok::Eof
            ]
        );
    }

    #[test]
    fn bad_numbers() {
        assert!(lex("{{ 12ab }}").is_err());
        assert!(lex("{{ - }}").is_err());
        assert_eq!(toks("{{ 0x1F }}")[2], Tok::Number("0x1F"));
        assert_eq!(toks("{{ 1.5e3 }}")[2], Tok::Number("1.5e3"));
    }

    #[test]
    fn unclosed_action() {
        let e = lex("line1\n{{ .a ").unwrap_err();
        assert!(e.to_string().contains("2:1"), "{e}");
    }
}
