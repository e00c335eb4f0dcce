//! Recursive-descent parser producing the template tree, following the
//! grammar and checks of Go's `text/template/parse`.
//!
//! The tree borrows names and text from the template source (`'a`), so
//! parsing allocates little more than the node vectors themselves.

use std::collections::BTreeMap;
use std::rc::Rc;

use super::Error;
use super::funcs;
use super::lexer::{Tok, Token, lex};
use super::value::Value;

/// A parsed template: the main tree, `define`d templates, and every
/// `secret` / `pkiCert` call in source order.
#[derive(Debug)]
pub(crate) struct Template<'a> {
    pub(crate) src: &'a str,
    pub(crate) root: Vec<Node<'a>>,
    pub(crate) defines: BTreeMap<String, Rc<Vec<Node<'a>>>>,
    pub(crate) calls: Vec<SecretCall>,
}

/// Which function read a secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RefKind {
    Secret,
    PkiCert,
}

/// One `secret` / `pkiCert` call with literal arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SecretCall {
    pub(crate) kind: RefKind,
    pub(crate) reference: Rc<str>,
    pub(crate) parameters: Vec<(String, String)>,
}

#[derive(Debug)]
pub(crate) enum Node<'a> {
    Text(&'a str),
    Action(Pipeline<'a>),
    // Branches are stored inline (not boxed): one allocation less per
    // control structure, for a slightly larger node.
    If(Branch<'a>),
    With(Branch<'a>),
    Range(Branch<'a>),
    Template {
        pos: usize,
        name: String,
        pipe: Option<Pipeline<'a>>,
    },
    Break,
    Continue,
}

#[derive(Debug)]
pub(crate) struct Branch<'a> {
    pub(crate) pipe: Pipeline<'a>,
    pub(crate) list: Vec<Node<'a>>,
    pub(crate) else_list: Option<Vec<Node<'a>>>,
}

#[derive(Debug)]
pub(crate) struct Pipeline<'a> {
    pub(crate) pos: usize,
    /// Declared or assigned variables, with their `$`.
    pub(crate) decl: Vec<&'a str>,
    pub(crate) is_assign: bool,
    pub(crate) cmds: Vec<Command<'a>>,
}

#[derive(Debug)]
pub(crate) struct Command<'a> {
    pub(crate) pos: usize,
    pub(crate) args: Vec<Arg<'a>>,
}

/// An operand with the byte span it covers in the source.
#[derive(Debug)]
pub(crate) struct Arg<'a> {
    pub(crate) start: usize,
    pub(crate) end: usize,
    pub(crate) op: Operand<'a>,
}

#[derive(Debug)]
pub(crate) enum Operand<'a> {
    Dot,
    Nil,
    Bool(bool),
    Number(Value),
    Str(Rc<str>),
    /// `.a.b` on dot.
    Field(FieldChain<'a>),
    /// `$x.a.b` (the chain is empty for a plain `$x`).
    Variable(&'a str, FieldChain<'a>),
    /// A function name.
    Ident(&'a str),
    /// `( pipeline )`.
    Pipe(Box<Pipeline<'a>>),
    /// `(pipeline).a.b` or `ident.a`.
    Chain(Box<Arg<'a>>, FieldChain<'a>),
}

/// Field names `.a.b.c`, kept as their source text `a.b.c`: the lexer
/// emits a chain as adjacent tokens, so the text is contiguous and the
/// names need no allocation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct FieldChain<'a>(&'a str);

impl<'a> FieldChain<'a> {
    pub(crate) fn is_empty(self) -> bool {
        self.0.is_empty()
    }

    /// The field names, in order (`str::split('.')`, as a plain byte scan:
    /// names are a few bytes long, and this runs on every evaluation of a
    /// field, where the general char searcher costs more than the scan).
    pub(crate) fn names(self) -> impl Iterator<Item = &'a str> {
        let mut rest = self.0;
        let mut done = rest.is_empty();
        std::iter::from_fn(move || {
            if done {
                return None;
            }
            match rest.bytes().position(|b| b == b'.') {
                Some(i) => {
                    let name = &rest[..i];
                    rest = &rest[i + 1..];
                    Some(name)
                }
                None => {
                    done = true;
                    Some(rest)
                }
            }
        })
    }
}

/// What ended an item list.
enum Stop {
    End,
    Else {
        pos: usize,
        chained: Option<&'static str>,
    },
}

/// What an action turned out to be.
enum ActionItem<'a> {
    Node(Node<'a>),
    Stop(Stop),
}

impl<'a> Template<'a> {
    /// Parses `src`.
    pub(crate) fn parse(src: &'a str) -> Result<Template<'a>, Error> {
        let tokens = lex(src)?;
        let mut p = Parser {
            src,
            tokens,
            idx: 0,
            vars: vec!["$"],
            range_depth: 0,
            nesting: 0,
            defines: BTreeMap::new(),
            calls: Vec::new(),
        };
        let root = p.parse_top()?;
        Ok(Template {
            src,
            root,
            defines: p.defines,
            calls: p.calls,
        })
    }
}

struct Parser<'a> {
    src: &'a str,
    tokens: Vec<Token<'a>>,
    idx: usize,
    /// Variables in scope, with their `$`.
    vars: Vec<&'a str>,
    range_depth: usize,
    /// Current depth of nested pipelines and control structures.
    nesting: usize,
    defines: BTreeMap<String, Rc<Vec<Node<'a>>>>,
    calls: Vec<SecretCall>,
}

/// Deepest nesting of parentheses and control structures accepted (keeps
/// the recursive parser and executor far from the stack limit).
const MAX_NESTING: usize = 100;

fn describe(tok: &Tok<'_>) -> String {
    match tok {
        Tok::Text(_) => "text".into(),
        Tok::LeftDelim => "\"{{\"".into(),
        Tok::RightDelim => "\"}}\"".into(),
        Tok::Space => "space".into(),
        Tok::Field(n) => format!("field .{n}"),
        Tok::Variable(n) => format!("variable {n}"),
        Tok::Identifier(n) => format!("identifier {n:?}"),
        Tok::Keyword(k) => format!("<{k}>"),
        Tok::Bool(b) => format!("{b}"),
        Tok::Nil => "nil".into(),
        Tok::Number(n) => format!("number {n}"),
        Tok::Char(_) => "character constant".into(),
        Tok::Str(_) => "string".into(),
        Tok::Dot => "\".\"".into(),
        Tok::Pipe => "\"|\"".into(),
        Tok::LeftParen => "\"(\"".into(),
        Tok::RightParen => "\")\"".into(),
        Tok::Declare => "\":=\"".into(),
        Tok::Assign => "\"=\"".into(),
        Tok::Comma => "\",\"".into(),
        Tok::Eof => "end of template".into(),
    }
}

impl<'a> Parser<'a> {
    fn err(&self, pos: usize, msg: impl Into<String>) -> Error {
        Error::at(self.src, pos, msg)
    }

    fn peek(&self) -> &Token<'a> {
        &self.tokens[self.idx.min(self.tokens.len() - 1)]
    }

    fn next(&mut self) -> Token<'a> {
        let t = self.peek().clone();
        // May move past the end token; peek() stays on it, and backup()
        // then returns to it.
        self.idx += 1;
        t
    }

    fn backup(&mut self) {
        self.idx -= 1;
    }

    fn skip_spaces(&mut self) {
        while matches!(self.peek().tok, Tok::Space) {
            self.idx += 1;
        }
    }

    fn next_non_space(&mut self) -> Token<'a> {
        self.skip_spaces();
        self.next()
    }

    fn peek_non_space(&mut self) -> &Token<'a> {
        self.skip_spaces();
        self.peek()
    }

    /// End offset of the previously consumed token.
    fn last_end(&self) -> usize {
        self.idx.checked_sub(1).map_or(0, |i| self.tokens[i].end)
    }

    fn unexpected(&self, t: &Token<'_>, context: &str) -> Error {
        self.err(
            t.pos,
            format!("unexpected {} in {context}", describe(&t.tok)),
        )
    }

    fn expect_right_delim(&mut self, context: &str) -> Result<(), Error> {
        let t = self.next_non_space();
        if !matches!(t.tok, Tok::RightDelim) {
            return Err(self.unexpected(&t, context));
        }
        Ok(())
    }

    fn parse_top(&mut self) -> Result<Vec<Node<'a>>, Error> {
        let mut list = Vec::new();
        loop {
            let t = self.peek().clone();
            match t.tok {
                Tok::Eof => return Ok(list),
                Tok::Text(s) => {
                    self.next();
                    list.push(Node::Text(s));
                }
                Tok::LeftDelim => {
                    let save = self.idx;
                    self.next();
                    if matches!(self.peek_non_space().tok, Tok::Keyword("define")) {
                        self.next();
                        self.parse_define(t.pos)?;
                        continue;
                    }
                    self.idx = save;
                    match self.action()? {
                        ActionItem::Node(n) => list.push(n),
                        ActionItem::Stop(Stop::End) => {
                            return Err(self.err(t.pos, "unexpected {{end}}"));
                        }
                        ActionItem::Stop(Stop::Else { pos, .. }) => {
                            return Err(self.err(pos, "unexpected {{else}}"));
                        }
                    }
                }
                _ => return Err(self.unexpected(&t, "template")),
            }
        }
    }

    /// `{{define "name"}} ... {{end}}` (after the keyword).
    fn parse_define(&mut self, pos: usize) -> Result<(), Error> {
        let t = self.next_non_space();
        let Tok::Str(name) = t.tok else {
            return Err(self.unexpected(&t, "define clause"));
        };
        self.expect_right_delim("define clause")?;
        let body = self.definition_body("define", pos)?;
        self.add_define(pos, name.into_owned(), body)
    }

    /// Parses a template body with a fresh variable scope, up to `{{end}}`.
    fn definition_body(&mut self, context: &str, open: usize) -> Result<Vec<Node<'a>>, Error> {
        let saved_vars = std::mem::replace(&mut self.vars, vec!["$"]);
        let saved_depth = std::mem::replace(&mut self.range_depth, 0);
        let result = self.item_list(context, open);
        self.vars = saved_vars;
        self.range_depth = saved_depth;
        let (list, stop) = result?;
        match stop {
            Stop::End => Ok(list),
            Stop::Else { pos, .. } => {
                Err(self.err(pos, format!("unexpected {{{{else}}}} in {context}")))
            }
        }
    }

    fn add_define(&mut self, pos: usize, name: String, body: Vec<Node<'a>>) -> Result<(), Error> {
        let empty = body
            .iter()
            .all(|n| matches!(n, Node::Text(t) if t.trim().is_empty()));
        match self.defines.get(&name) {
            Some(existing) if !empty && !existing.is_empty() => Err(self.err(
                pos,
                format!("template: multiple definition of template {name:?}"),
            )),
            Some(_) if empty => Ok(()),
            _ => {
                self.defines.insert(name, Rc::new(body));
                Ok(())
            }
        }
    }

    /// Nodes up to `{{end}}` or `{{else}}`; `open` is where the enclosing
    /// keyword is, for the error when `{{end}}` is missing.
    fn item_list(&mut self, context: &str, open: usize) -> Result<(Vec<Node<'a>>, Stop), Error> {
        let mut list = Vec::new();
        loop {
            let t = self.peek().clone();
            match t.tok {
                Tok::Eof => {
                    return Err(self.err(
                        open,
                        format!("unclosed {{{{{context}}}}}: missing {{{{end}}}}"),
                    ));
                }
                Tok::Text(s) => {
                    self.next();
                    list.push(Node::Text(s));
                }
                Tok::LeftDelim => match self.action()? {
                    ActionItem::Node(n) => list.push(n),
                    ActionItem::Stop(stop) => return Ok((list, stop)),
                },
                _ => return Err(self.unexpected(&t, context)),
            }
        }
    }

    /// Parses one `{{ ... }}` starting at the left delimiter.
    fn action(&mut self) -> Result<ActionItem<'a>, Error> {
        let delim = self.next();
        debug_assert_eq!(delim.tok, Tok::LeftDelim);
        let t = self.next_non_space();
        match t.tok {
            Tok::Keyword("block") => self.block_control(t.pos).map(ActionItem::Node),
            Tok::Keyword(kw @ ("break" | "continue")) => {
                if self.range_depth == 0 {
                    return Err(self.err(t.pos, format!("{{{{{kw}}}}} outside {{{{range}}}}")));
                }
                self.expect_right_delim(kw)?;
                Ok(ActionItem::Node(if kw == "break" {
                    Node::Break
                } else {
                    Node::Continue
                }))
            }
            Tok::Keyword("else") => {
                let peek = self.peek_non_space().tok.clone();
                let chained = match peek {
                    Tok::Keyword("if") => Some("if"),
                    Tok::Keyword("with") => Some("with"),
                    _ => None,
                };
                if chained.is_some() {
                    self.next();
                } else {
                    self.expect_right_delim("else")?;
                }
                Ok(ActionItem::Stop(Stop::Else {
                    pos: t.pos,
                    chained,
                }))
            }
            Tok::Keyword("end") => {
                self.expect_right_delim("end")?;
                Ok(ActionItem::Stop(Stop::End))
            }
            Tok::Keyword("if") => Ok(ActionItem::Node(Node::If(self.control("if", t.pos)?))),
            Tok::Keyword("with") => Ok(ActionItem::Node(Node::With(self.control("with", t.pos)?))),
            Tok::Keyword("range") => {
                Ok(ActionItem::Node(Node::Range(self.control("range", t.pos)?)))
            }
            Tok::Keyword("template") => self.template_control(t.pos).map(ActionItem::Node),
            Tok::Keyword("define") => Err(self.err(
                t.pos,
                "{{define}} is only allowed at the top level of a template",
            )),
            _ => {
                self.backup();
                let pipe = self.pipeline("command", &Tok::RightDelim)?;
                Ok(ActionItem::Node(Node::Action(pipe)))
            }
        }
    }

    /// `if`, `with` and `range` (after the keyword) up to their `{{end}}`.
    fn control(&mut self, context: &'static str, open: usize) -> Result<Branch<'a>, Error> {
        self.nesting += 1;
        if self.nesting > MAX_NESTING {
            return Err(self.err(
                open,
                format!("the template nests more than {MAX_NESTING} levels deep"),
            ));
        }
        let result = self.control_inner(context, open);
        self.nesting -= 1;
        result
    }

    fn control_inner(&mut self, context: &'static str, open: usize) -> Result<Branch<'a>, Error> {
        let mark = self.vars.len();
        let pipe = self.pipeline(context, &Tok::RightDelim)?;
        let after_pipe = self.vars.len();
        if context == "range" {
            self.range_depth += 1;
        }
        let listed = self.item_list(context, open);
        if context == "range" {
            self.range_depth -= 1;
        }
        let (list, stop) = listed?;
        self.vars.truncate(after_pipe);
        let else_list = match stop {
            Stop::End => None,
            Stop::Else {
                chained: Some(kw),
                pos,
            } => {
                if kw != context {
                    return Err(self.err(
                        pos,
                        format!("{{{{else {kw}}}}} is only allowed in {{{{{kw}}}}}"),
                    ));
                }
                // `{{else if}}` is `{{else}}{{if}}...{{end}}` sharing one
                // `{{end}}`, which the nested control consumes.
                let nested = self.control(context, pos)?;
                Some(vec![if context == "if" {
                    Node::If(nested)
                } else {
                    Node::With(nested)
                }])
            }
            Stop::Else { chained: None, .. } => {
                let (list, stop) = self.item_list(context, open)?;
                if let Stop::Else { pos, .. } = stop {
                    return Err(self.err(
                        pos,
                        format!("expected {{{{end}}}}; found {{{{else}}}} in {context}"),
                    ));
                }
                Some(list)
            }
        };
        self.vars.truncate(mark);
        Ok(Branch {
            pipe,
            list,
            else_list,
        })
    }

    fn template_control(&mut self, pos: usize) -> Result<Node<'a>, Error> {
        let t = self.next_non_space();
        let Tok::Str(name) = t.tok else {
            return Err(self.unexpected(&t, "template clause"));
        };
        let pipe = if matches!(self.peek_non_space().tok, Tok::RightDelim) {
            self.next();
            None
        } else {
            Some(self.pipeline("template clause", &Tok::RightDelim)?)
        };
        Ok(Node::Template {
            pos,
            name: name.into_owned(),
            pipe,
        })
    }

    /// `{{block "name" pipeline}} body {{end}}`: define + template.
    fn block_control(&mut self, pos: usize) -> Result<Node<'a>, Error> {
        let t = self.next_non_space();
        let Tok::Str(name) = t.tok else {
            return Err(self.unexpected(&t, "block clause"));
        };
        let pipe = self.pipeline("block clause", &Tok::RightDelim)?;
        let body = self.definition_body("block", pos)?;
        let name = name.into_owned();
        self.add_define(pos, name.clone(), body)?;
        Ok(Node::Template {
            pos,
            name,
            pipe: Some(pipe),
        })
    }

    fn var_defined(&self, name: &str) -> bool {
        self.vars.contains(&name)
    }

    /// A pipeline up to (and including) `end`.
    fn pipeline(&mut self, context: &str, end: &Tok<'_>) -> Result<Pipeline<'a>, Error> {
        let pos = self.peek_non_space().pos;
        self.nesting += 1;
        if self.nesting > MAX_NESTING {
            return Err(self.err(
                pos,
                format!("the template nests more than {MAX_NESTING} levels deep"),
            ));
        }
        let result = self.pipeline_inner(context, end, pos);
        self.nesting -= 1;
        result
    }

    fn pipeline_inner(
        &mut self,
        context: &str,
        end: &Tok<'_>,
        pos: usize,
    ) -> Result<Pipeline<'a>, Error> {
        let mut decl = Vec::new();
        let mut is_assign = false;
        if let Tok::Variable(name) = self.peek_non_space().tok.clone() {
            let save = self.idx;
            self.next();
            match self.peek_non_space().tok.clone() {
                Tok::Declare | Tok::Assign => {
                    is_assign = matches!(self.next().tok, Tok::Assign);
                    decl.push(name);
                }
                Tok::Comma if context == "range" => {
                    self.next();
                    decl.push(name);
                    let t = self.next_non_space();
                    let Tok::Variable(second) = t.tok else {
                        return Err(self.err(t.pos, "range can only initialize variables"));
                    };
                    decl.push(second);
                    let t = self.next_non_space();
                    match t.tok {
                        Tok::Declare => {}
                        Tok::Assign => is_assign = true,
                        _ => return Err(self.unexpected(&t, "range declaration")),
                    }
                }
                Tok::Comma => {
                    return Err(self.err(pos, format!("too many declarations in {context}")));
                }
                _ => self.idx = save,
            }
        }
        for name in &decl {
            if is_assign {
                if !self.var_defined(name) {
                    return Err(self.err(pos, format!("undefined variable {name:?}")));
                }
            } else {
                self.vars.push(name);
            }
        }
        let mut cmds = Vec::new();
        let mut after_pipe_token = false;
        loop {
            let t = self.next_non_space();
            // `end` is a delimiter or a paren: comparing kinds suffices.
            if std::mem::discriminant(&t.tok) == std::mem::discriminant(end) {
                if cmds.is_empty() {
                    return Err(self.err(t.pos, format!("missing value for {context}")));
                }
                if after_pipe_token {
                    return Err(
                        self.err(t.pos, format!("missing command after \"|\" in {context}"))
                    );
                }
                break;
            }
            match t.tok {
                Tok::Bool(_)
                | Tok::Char(_)
                | Tok::Dot
                | Tok::Field(_)
                | Tok::Identifier(_)
                | Tok::Number(_)
                | Tok::Nil
                | Tok::Str(_)
                | Tok::Variable(_)
                | Tok::LeftParen => {
                    self.backup();
                    let (cmd, piped) = self.command()?;
                    cmds.push(cmd);
                    after_pipe_token = piped;
                }
                _ => return Err(self.unexpected(&t, context)),
            }
        }
        for (i, cmd) in cmds.iter().enumerate().skip(1) {
            if matches!(
                cmd.args[0].op,
                Operand::Bool(_)
                    | Operand::Dot
                    | Operand::Nil
                    | Operand::Number(_)
                    | Operand::Str(_)
            ) {
                return Err(self.err(
                    cmd.pos,
                    format!("non executable command in pipeline stage {}", i + 1),
                ));
            }
        }
        for (i, cmd) in cmds.iter().enumerate() {
            self.record_secret_call(cmd, i > 0)?;
        }
        Ok(Pipeline {
            pos,
            decl,
            is_assign,
            cmds,
        })
    }

    /// Checks and records `secret` / `pkiCert` calls: the path and the
    /// parameters must be literals so that `plan` knows them up front.
    fn record_secret_call(&mut self, cmd: &Command<'a>, piped: bool) -> Result<(), Error> {
        for (i, arg) in cmd.args.iter().enumerate().skip(1) {
            if let Operand::Ident(name) = &arg.op
                && is_secret_fn(name)
            {
                return Err(self.err(
                        arg.start,
                        format!("{name} must be called with its path, in parentheses when used as an argument (argument {i})"),
                    ));
            }
        }
        let Operand::Ident(name) = &cmd.args[0].op else {
            return Ok(());
        };
        let kind = match *name {
            "secret" => RefKind::Secret,
            "pkiCert" => RefKind::PkiCert,
            _ => return Ok(()),
        };
        if piped {
            return Err(self.err(
                cmd.pos,
                format!("{name}: the path must be a string literal argument, not piped in, so that plan can list it"),
            ));
        }
        for (i, arg) in cmd.args.iter().enumerate().skip(1) {
            if !matches!(arg.op, Operand::Str(_)) {
                let what = if i == 1 { "the path" } else { "each parameter" };
                return Err(self.err(
                    arg.start,
                    format!("{name}: {what} must be a string literal so that plan can list it"),
                ));
            }
        }
        // All arguments are string literals now.
        let literal = |arg: &'_ Arg<'a>| match &arg.op {
            Operand::Str(s) => Rc::clone(s),
            _ => unreachable!("checked above"),
        };
        let Some((reference, params)) = cmd.args[1..].split_first() else {
            return Err(self.err(cmd.pos, format!("{name}: missing path")));
        };
        let reference = literal(reference);
        let params: Vec<Rc<str>> = params.iter().map(literal).collect();
        if reference.trim().is_empty() {
            return Err(self.err(cmd.pos, format!("{name}: empty path")));
        }
        let parameters =
            split_parameters(&params).map_err(|m| self.err(cmd.pos, format!("{name}: {m}")))?;
        let call = SecretCall {
            kind,
            reference,
            parameters,
        };
        self.calls.push(call);
        Ok(())
    }

    /// A command: operands separated by spaces, up to `|` or the end of
    /// the pipeline. Returns whether it ended with `|`.
    fn command(&mut self) -> Result<(Command<'a>, bool), Error> {
        let pos = self.peek_non_space().pos;
        let mut args = Vec::new();
        let mut piped = false;
        loop {
            self.skip_spaces();
            if let Some(arg) = self.operand()? {
                args.push(arg);
            }
            let t = self.next();
            match t.tok {
                Tok::Space => continue,
                Tok::RightDelim | Tok::RightParen => self.backup(),
                Tok::Pipe => piped = true,
                _ => return Err(self.unexpected(&t, "operand")),
            }
            break;
        }
        if args.is_empty() {
            return Err(self.err(pos, "empty command"));
        }
        Ok((Command { pos, args }, piped))
    }

    fn operand(&mut self) -> Result<Option<Arg<'a>>, Error> {
        self.skip_spaces();
        let start = self.peek().pos;
        let Some(op) = self.term()? else {
            return Ok(None);
        };
        let inner_end = self.last_end();
        while let Tok::Field(_) = self.peek().tok {
            self.next();
        }
        let end = self.last_end();
        if end == inner_end {
            return Ok(Some(Arg { start, end, op }));
        }
        // The fields after the term, without the first dot.
        let chain = FieldChain(&self.src[inner_end + 1..end]);
        let op = match op {
            // `.a` then `.b.c`: the whole `.a.b.c` is one chain.
            Operand::Field(_) => Operand::Field(FieldChain(&self.src[start + 1..end])),
            Operand::Variable(name, _) => Operand::Variable(name, chain),
            Operand::Ident(ref name) if is_secret_fn(name) => {
                return Err(self.err(
                    start,
                    format!("{name}: missing path (write ({name} \"path\").Field)"),
                ));
            }
            op @ (Operand::Pipe(_) | Operand::Ident(_)) => Operand::Chain(
                Box::new(Arg {
                    start,
                    end: inner_end,
                    op,
                }),
                chain,
            ),
            _ => {
                return Err(self.err(start, "unexpected . after term"));
            }
        };
        Ok(Some(Arg { start, end, op }))
    }

    fn term(&mut self) -> Result<Option<Operand<'a>>, Error> {
        let t = self.next_non_space();
        let op = match t.tok {
            Tok::Identifier(name) => {
                if !funcs::exists(name) {
                    return Err(self.err(t.pos, format!("function {name:?} not defined")));
                }
                Operand::Ident(name)
            }
            Tok::Dot => Operand::Dot,
            Tok::Nil => Operand::Nil,
            Tok::Variable(name) => {
                if !self.var_defined(name) {
                    return Err(self.err(t.pos, format!("undefined variable {name:?}")));
                }
                Operand::Variable(name, FieldChain::default())
            }
            Tok::Field(name) => Operand::Field(FieldChain(name)),
            Tok::Bool(b) => Operand::Bool(b),
            Tok::Char(c) => Operand::Number(Value::Int(c)),
            Tok::Number(text) => Operand::Number(
                parse_number(text)
                    .ok_or_else(|| self.err(t.pos, format!("bad number syntax: {text:?}")))?,
            ),
            Tok::LeftParen => Operand::Pipe(Box::new(
                self.pipeline("parenthesized pipeline", &Tok::RightParen)?,
            )),
            Tok::Str(s) => Operand::Str(Rc::from(s.as_ref())),
            _ => {
                self.backup();
                return Ok(None);
            }
        };
        Ok(Some(op))
    }
}

fn is_secret_fn(name: &str) -> bool {
    name == "secret" || name == "pkiCert"
}

/// Splits `k=v` parameters at the first `=`, trimming both sides and
/// skipping empty strings, as consul-template does.
pub(crate) fn split_parameters<S: AsRef<str>>(
    params: &[S],
) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for p in params {
        let p = p.as_ref();
        if p.is_empty() {
            continue;
        }
        let Some((k, v)) = p.split_once('=') else {
            return Err(format!("parameter {p:?} is not a key=value pair"));
        };
        out.push((k.trim().to_string(), v.trim().to_string()));
    }
    Ok(out)
}

/// Parses a Go number literal: an `int` unless it has a fraction or an
/// exponent (then `float64`).
pub(crate) fn parse_number(text: &str) -> Option<Value> {
    let clean: String = text.chars().filter(|c| *c != '_').collect();
    let (neg, body) = match clean.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, clean.strip_prefix('+').unwrap_or(&clean)),
    };
    let lower = body.to_ascii_lowercase();
    let int = if let Some(h) = lower.strip_prefix("0x") {
        if h.contains('.') || h.contains('p') {
            return None; // hex floats are not supported
        }
        i64::from_str_radix(h, 16).ok()
    } else if let Some(o) = lower.strip_prefix("0o") {
        i64::from_str_radix(o, 8).ok()
    } else if let Some(b) = lower.strip_prefix("0b") {
        i64::from_str_radix(b, 2).ok()
    } else if lower.contains(['.', 'e']) {
        let f: f64 = body.parse().ok()?;
        return Some(Value::Float(if neg { -f } else { f }));
    } else if lower.len() > 1 && lower.starts_with('0') {
        i64::from_str_radix(&lower[1..], 8).ok()
    } else {
        match lower.parse::<i64>() {
            Ok(i) => Some(i),
            Err(_) => {
                let f: f64 = lower.parse().ok()?;
                return Some(Value::Float(if neg { -f } else { f }));
            }
        }
    };
    int.map(|i| Value::Int(if neg { -i } else { i }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_err(src: &str) -> String {
        Template::parse(src).unwrap_err().to_string()
    }

    #[test]
    fn field_chain_names_split_like_str_split() {
        for text in ["", "a", "Data.data.host", "a..b", "a.", ".a", "ä.ö"] {
            let want: Vec<&str> = if text.is_empty() {
                Vec::new()
            } else {
                text.split('.').collect()
            };
            assert_eq!(
                FieldChain(text).names().collect::<Vec<_>>(),
                want,
                "{text:?}"
            );
        }
    }

    #[test]
    fn parses_control_structures() {
        let t = Template::parse(
            "{{ if .a }}x{{ else if .b }}y{{ else }}z{{ end }}{{ range $i, $v := .l }}{{ $i }}{{ break }}{{ end }}",
        )
        .unwrap();
        assert_eq!(t.root.len(), 2);
    }

    #[test]
    fn parse_errors_have_positions() {
        assert_eq!(
            parse_err("a\n{{ if .x }}"),
            "template:2:4: unclosed {{if}}: missing {{end}}"
        );
        assert_eq!(
            parse_err("{{ nosuch 1 }}"),
            "template:1:4: function \"nosuch\" not defined"
        );
        assert_eq!(
            parse_err("{{ $x }}"),
            "template:1:4: undefined variable \"$x\""
        );
        assert_eq!(parse_err("{{ end }}"), "template:1:1: unexpected {{end}}");
        assert_eq!(
            parse_err("{{ break }}"),
            "template:1:4: {{break}} outside {{range}}"
        );
        assert!(parse_err("{{ .a | 1 }}").contains("non executable command in pipeline stage 2"));
        assert!(parse_err("{{ }}").contains("missing value for command"));
        assert!(parse_err("{{ \"a\".b }}").contains("unexpected . after term"));
    }

    #[test]
    fn variables_are_scoped_to_their_control() {
        assert!(Template::parse("{{ if 1 }}{{ $x := 1 }}{{ end }}{{ $x }}").is_err());
        assert!(Template::parse("{{ $x := 1 }}{{ if 1 }}{{ $x = 2 }}{{ end }}{{ $x }}").is_ok());
        assert!(Template::parse("{{ with $v := 1 }}{{ else }}{{ $v }}{{ end }}").is_ok());
    }

    #[test]
    fn records_secret_calls_in_order() {
        let t = Template::parse(
            r#"{{ with secret "a/b" }}{{ end }}{{ (pkiCert "pki/issue/x" "common_name= a.b " "ttl=1h").Data.Cert }}"#,
        )
        .unwrap();
        assert_eq!(t.calls.len(), 2);
        assert_eq!(&*t.calls[0].reference, "a/b");
        assert_eq!(t.calls[1].kind, RefKind::PkiCert);
        assert_eq!(
            t.calls[1].parameters,
            vec![
                ("common_name".into(), "a.b".into()),
                ("ttl".into(), "1h".into())
            ]
        );
    }

    #[test]
    fn secret_paths_must_be_literals() {
        assert!(
            parse_err("{{ secret .path }}").contains("secret: the path must be a string literal")
        );
        assert!(parse_err(r#"{{ "a" | secret }}"#).contains("not piped in"));
        assert!(
            parse_err(r#"{{ secret "a" .x }}"#).contains("each parameter must be a string literal")
        );
        assert!(parse_err(r#"{{ secret "a" "novalue" }}"#).contains("is not a key=value pair"));
        assert!(parse_err("{{ secret }}").contains("missing path"));
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_number("42"), Some(Value::Int(42)));
        assert_eq!(parse_number("-0x1F"), Some(Value::Int(-31)));
        assert_eq!(parse_number("017"), Some(Value::Int(15)));
        assert_eq!(parse_number("1e3"), Some(Value::Float(1000.0)));
        assert_eq!(parse_number("1_000"), Some(Value::Int(1000)));
        assert_eq!(parse_number("2.5"), Some(Value::Float(2.5)));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = format!("{{{{ {}1{} }}}}", "(".repeat(500), ")".repeat(500));
        assert!(parse_err(&deep).contains("nests more than 100 levels"));
        let ifs = format!("{}x{}", "{{ if 1 }}".repeat(500), "{{ end }}".repeat(500));
        assert!(parse_err(&ifs).contains("nests more than 100 levels"));
        assert!(
            Template::parse(&format!("{{{{ {}1{} }}}}", "(".repeat(50), ")".repeat(50))).is_ok()
        );
    }

    #[test]
    fn define_and_block() {
        let t = Template::parse(
            r#"{{ define "a" }}A{{ end }}{{ block "b" . }}B{{ end }}{{ template "a" }}"#,
        )
        .unwrap();
        assert!(t.defines.contains_key("a"));
        assert!(t.defines.contains_key("b"));
        assert!(
            Template::parse(r#"{{ define "a" }}A{{ end }}{{ define "a" }}B{{ end }}"#).is_err()
        );
    }
}
