//! Executes a parsed template against granted secrets.
//!
//! Values are reference-counted, so handing one around is a pointer copy;
//! field chains are walked by reference and only their result is cloned.

use std::collections::BTreeMap;
use std::rc::Rc;

use super::funcs::{self, FnCtx};
use super::parser::{Arg, Branch, Command, FieldChain, Node, Operand, Pipeline, split_parameters};
use super::value::{Struct, Value};
use super::{Error, Template, format};

/// What a missing map key does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum MissingKey {
    /// An error naming the field chain (Go's `missingkey=error`; default).
    #[default]
    Error,
    /// The key reads as nil, which renders as an empty string.
    Zero,
}

/// A secret the host fetched for this render, borrowed from the request.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct GrantedSecret<'a> {
    pub(crate) reference: &'a str,
    pub(crate) parameters: &'a [(String, String)],
    pub(crate) lease_id: &'a str,
    pub(crate) lease_duration: u64,
    pub(crate) renewable: bool,
    /// The response's `data` object as JSON.
    pub(crate) data: &'a str,
    pub(crate) warnings: &'a [String],
}

/// Inputs of one execution.
#[derive(Debug)]
pub(crate) struct ExecOptions<'a> {
    pub(crate) missing_key: MissingKey,
    pub(crate) secrets: &'a [GrantedSecret<'a>],
}

/// Largest output a template may produce.
const MAX_OUTPUT: usize = 8 << 20;
/// Deepest nesting of `{{template}}` calls.
const MAX_DEPTH: usize = 100;

enum Flow {
    Normal,
    Break,
    Continue,
}

impl Template<'_> {
    /// Runs the template; the data (dot) is nil, as in consul-template.
    pub(crate) fn execute(&self, opts: &ExecOptions<'_>) -> Result<String, Error> {
        let mut st = State {
            tmpl: self,
            opts,
            // Rendered output is usually about as long as the template.
            out: String::with_capacity(self.src.len()),
            vars: vec![("$", Value::Nil)],
            depth: 0,
            secret_cache: BTreeMap::new(),
        };
        st.walk(&Value::Nil, &self.root)?;
        Ok(st.out)
    }
}

struct State<'t, 'a> {
    tmpl: &'t Template<'a>,
    opts: &'t ExecOptions<'t>,
    out: String,
    /// Variables in scope (names with their `$`), innermost last.
    vars: Vec<(&'a str, Value)>,
    depth: usize,
    /// Values built for secrets already read, by (kind, index).
    secret_cache: BTreeMap<(bool, usize), Value>,
}

impl<'a> State<'_, 'a> {
    fn err(&self, pos: usize, msg: impl Into<String>) -> Error {
        Error::at(self.tmpl.src, pos, msg)
    }

    /// An error while evaluating `arg`, quoting its source text.
    fn err_at(&self, start: usize, end: usize, msg: impl std::fmt::Display) -> Error {
        let src = &self.tmpl.src;
        let text = src.get(start..end.max(start)).unwrap_or("");
        let text: String = if text.chars().count() > 80 {
            text.chars().take(77).chain("...".chars()).collect()
        } else {
            text.to_string()
        };
        self.err(start, format!("executing <{text}>: {msg}"))
    }

    fn cmd_span(cmd: &Command<'_>) -> (usize, usize) {
        let end = cmd.args.last().map_or(cmd.pos, |a| a.end);
        (cmd.pos, end)
    }

    fn write(&mut self, s: &str, pos: usize) -> Result<(), Error> {
        if self.out.len() + s.len() > MAX_OUTPUT {
            return Err(self.err(pos, format!("output exceeds {} MiB", MAX_OUTPUT >> 20)));
        }
        self.out.push_str(s);
        Ok(())
    }

    fn walk(&mut self, dot: &Value, list: &[Node<'a>]) -> Result<Flow, Error> {
        for node in list {
            match node {
                Node::Text(t) => self.write(t, 0)?,
                Node::Action(pipe) => {
                    let v = self.eval_pipeline(dot, pipe)?;
                    if pipe.decl.is_empty() {
                        match &v {
                            // A string prints as itself: no need to copy it.
                            Value::Str(s) => self.write(s, pipe.pos)?,
                            other => {
                                let s = format::print_value(other);
                                self.write(&s, pipe.pos)?;
                            }
                        }
                    }
                }
                Node::If(b) | Node::With(b) => {
                    let with = matches!(node, Node::With(_));
                    let mark = self.vars.len();
                    let v = self.eval_pipeline(dot, &b.pipe)?;
                    let flow = if v.is_true() {
                        self.walk(if with { &v } else { dot }, &b.list)?
                    } else if let Some(else_list) = &b.else_list {
                        self.walk(dot, else_list)?
                    } else {
                        Flow::Normal
                    };
                    self.vars.truncate(mark);
                    if !matches!(flow, Flow::Normal) {
                        return Ok(flow);
                    }
                }
                Node::Range(b) => self.range(dot, b)?,
                Node::Template { pos, name, pipe } => {
                    let Some(body) = self.tmpl.defines.get(name).cloned() else {
                        return Err(self.err(*pos, format!("no such template {name:?}")));
                    };
                    let value = match pipe {
                        Some(p) => self.eval_pipeline(dot, p)?,
                        None => Value::Nil,
                    };
                    if self.depth >= MAX_DEPTH {
                        return Err(self.err(
                            *pos,
                            format!("exceeded maximum template depth ({MAX_DEPTH})"),
                        ));
                    }
                    self.depth += 1;
                    let saved = std::mem::replace(&mut self.vars, vec![("$", value.clone())]);
                    let result = self.walk(&value, &body);
                    self.vars = saved;
                    self.depth -= 1;
                    result?;
                }
                Node::Break => return Ok(Flow::Break),
                Node::Continue => return Ok(Flow::Continue),
            }
        }
        Ok(Flow::Normal)
    }

    fn range(&mut self, dot: &Value, b: &Branch<'a>) -> Result<(), Error> {
        let mark = self.vars.len();
        let v = self.eval_pipeline(dot, &b.pipe)?;
        let items: Vec<(Value, Value)> = match &v {
            Value::List(l) => l
                .iter()
                .enumerate()
                .map(|(i, e)| (Value::Int(i as i64), e.clone()))
                .collect(),
            Value::Map(m) => m
                .iter()
                .map(|(k, e)| (Value::str(k.as_str()), e.clone()))
                .collect(),
            Value::Int(n) => {
                if *n > 1_000_000 {
                    return Err(self.err(b.pipe.pos, "range over an integer above 1000000"));
                }
                (0..(*n).max(0))
                    .map(|i| (Value::Int(i), Value::Int(i)))
                    .collect()
            }
            Value::Nil => Vec::new(),
            other => {
                return Err(self.err(
                    b.pipe.pos,
                    format!(
                        "range can't iterate over a value of type {}",
                        other.type_name()
                    ),
                ));
            }
        };
        let n = b.pipe.decl.len();
        if items.is_empty()
            && let Some(else_list) = &b.else_list
        {
            self.walk(dot, else_list)?;
        }
        for (index, elem) in items {
            if b.pipe.is_assign {
                match n {
                    1 => self.set_var(b.pipe.decl[0], elem.clone(), b.pipe.pos)?,
                    2 => {
                        self.set_var(b.pipe.decl[0], index.clone(), b.pipe.pos)?;
                        self.set_var(b.pipe.decl[1], elem.clone(), b.pipe.pos)?;
                    }
                    _ => {}
                }
            } else {
                // The declared variables were pushed by eval_pipeline, the
                // element last.
                let len = self.vars.len();
                if n >= 1 {
                    self.vars[len - 1].1 = elem.clone();
                }
                if n == 2 {
                    self.vars[len - 2].1 = index.clone();
                }
            }
            let inner = self.vars.len();
            let flow = self.walk(&elem, &b.list)?;
            self.vars.truncate(inner);
            if matches!(flow, Flow::Break) {
                break;
            }
        }
        self.vars.truncate(mark);
        Ok(())
    }

    fn lookup_var(&self, name: &str, pos: usize) -> Result<&Value, Error> {
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v)
            .ok_or_else(|| self.err(pos, format!("undefined variable: {name}")))
    }

    fn set_var(&mut self, name: &str, value: Value, pos: usize) -> Result<(), Error> {
        match self.vars.iter_mut().rev().find(|(n, _)| *n == name) {
            Some(slot) => {
                slot.1 = value;
                Ok(())
            }
            None => Err(self.err(pos, format!("undefined variable: {name}"))),
        }
    }

    fn eval_pipeline(&mut self, dot: &Value, pipe: &Pipeline<'a>) -> Result<Value, Error> {
        let mut value = None;
        for cmd in &pipe.cmds {
            value = Some(self.eval_command(dot, cmd, value)?);
        }
        let value = value.unwrap_or(Value::Nil);
        for &name in &pipe.decl {
            if pipe.is_assign {
                self.set_var(name, value.clone(), pipe.pos)?;
            } else {
                self.vars.push((name, value.clone()));
            }
        }
        Ok(value)
    }

    fn not_a_function(&self, cmd: &Command<'_>, final_: &Option<Value>) -> Result<(), Error> {
        if cmd.args.len() > 1 || final_.is_some() {
            let a = &cmd.args[0];
            return Err(self.err_at(a.start, a.end, "can't give argument to non-function"));
        }
        Ok(())
    }

    fn eval_command(
        &mut self,
        dot: &Value,
        cmd: &Command<'a>,
        final_: Option<Value>,
    ) -> Result<Value, Error> {
        let first = &cmd.args[0];
        match &first.op {
            Operand::Field(chain) => {
                self.eval_field_chain(dot, *chain, first, cmd.args.len() > 1 || final_.is_some())
            }
            Operand::Variable(name, chain) => {
                let v = self.lookup_var(name, first.start)?;
                if chain.is_empty() {
                    let v = v.clone();
                    self.not_a_function(cmd, &final_)?;
                    return Ok(v);
                }
                self.eval_field_chain(v, *chain, first, cmd.args.len() > 1 || final_.is_some())
            }
            Operand::Chain(inner, chain) => {
                let v = self.eval_arg(dot, inner)?;
                self.eval_field_chain(&v, *chain, first, cmd.args.len() > 1 || final_.is_some())
            }
            Operand::Ident(name) => self.eval_function(dot, name, cmd, final_),
            Operand::Pipe(p) => {
                self.not_a_function(cmd, &final_)?;
                self.eval_pipeline(dot, p)
            }
            Operand::Nil => Err(self.err_at(first.start, first.end, "nil is not a command")),
            Operand::Dot => {
                self.not_a_function(cmd, &final_)?;
                Ok(dot.clone())
            }
            Operand::Bool(_) | Operand::Number(_) | Operand::Str(_) => {
                self.not_a_function(cmd, &final_)?;
                self.eval_arg(dot, first)
            }
        }
    }

    /// Evaluates an operand used as an argument.
    fn eval_arg(&mut self, dot: &Value, arg: &Arg<'a>) -> Result<Value, Error> {
        match &arg.op {
            Operand::Dot => Ok(dot.clone()),
            Operand::Nil => Ok(Value::Nil),
            Operand::Bool(b) => Ok(Value::Bool(*b)),
            Operand::Number(v) => Ok(v.clone()),
            Operand::Str(s) => Ok(Value::Str(s.clone())),
            Operand::Field(chain) => self.eval_field_chain(dot, *chain, arg, false),
            Operand::Variable(name, chain) => {
                let v = self.lookup_var(name, arg.start)?;
                self.eval_field_chain(v, *chain, arg, false)
            }
            Operand::Ident(name) => {
                let cmd = Command {
                    pos: arg.start,
                    args: Vec::new(),
                };
                self.call_function(dot, name, &cmd, Vec::new(), arg.start, arg.end)
            }
            Operand::Pipe(p) => self.eval_pipeline(dot, p),
            Operand::Chain(inner, chain) => {
                let v = self.eval_arg(dot, inner)?;
                self.eval_field_chain(&v, *chain, arg, false)
            }
        }
    }

    /// Follows `.a.b.c` from `receiver` by reference; only the value at
    /// the end of the chain is cloned.
    fn eval_field_chain(
        &self,
        receiver: &Value,
        chain: FieldChain<'_>,
        node: &Arg<'_>,
        has_args: bool,
    ) -> Result<Value, Error> {
        let mut receiver = receiver;
        let mut names = chain.names().peekable();
        while let Some(name) = names.next() {
            let last = names.peek().is_none();
            receiver = match receiver {
                Value::Map(m) => {
                    if last && has_args {
                        return Err(self.err_at(
                            node.start,
                            node.end,
                            format_args!("{name} is not a method but has arguments"),
                        ));
                    }
                    match m.get(name) {
                        Some(v) => v,
                        None => match self.opts.missing_key {
                            MissingKey::Error => {
                                return Err(self.err_at(
                                    node.start,
                                    node.end,
                                    format_args!("map has no entry for key {name:?}"),
                                ));
                            }
                            // Nil with the rest of the chain is nil too.
                            MissingKey::Zero => return Ok(Value::Nil),
                        },
                    }
                }
                Value::Struct(s) => match s.field(name) {
                    Some(v) => {
                        if last && has_args {
                            return Err(self.err_at(
                                node.start,
                                node.end,
                                format_args!("{name} is not a method but has arguments"),
                            ));
                        }
                        v
                    }
                    None => {
                        return Err(self.err_at(
                            node.start,
                            node.end,
                            format_args!("can't evaluate field {name} in type {}", s.type_name),
                        ));
                    }
                },
                Value::Nil => match self.opts.missing_key {
                    MissingKey::Zero => return Ok(Value::Nil),
                    MissingKey::Error => {
                        return Err(self.err_at(
                            node.start,
                            node.end,
                            format_args!("nil pointer evaluating interface {{}}.{name}"),
                        ));
                    }
                },
                other => {
                    return Err(self.err_at(
                        node.start,
                        node.end,
                        format_args!("can't evaluate field {name} in type {}", other.type_name()),
                    ));
                }
            };
        }
        Ok(receiver.clone())
    }

    fn eval_function(
        &mut self,
        dot: &Value,
        name: &str,
        cmd: &Command<'a>,
        final_: Option<Value>,
    ) -> Result<Value, Error> {
        let (start, end) = Self::cmd_span(cmd);
        if name == "and" || name == "or" {
            // Short-circuit: stop at the first falsy (and) / truthy (or)
            // argument and return it.
            let nargs = cmd.args.len() - 1 + usize::from(final_.is_some());
            if nargs == 0 {
                return Err(self.err_at(
                    start,
                    end,
                    format_args!("wrong number of args for {name}: want at least 1 got 0"),
                ));
            }
            let mut last = Value::Nil;
            for arg in &cmd.args[1..] {
                last = self.eval_arg(dot, arg)?;
                if (name == "and") != last.is_true() {
                    return Ok(last);
                }
            }
            if let Some(f) = final_ {
                last = f;
            }
            return Ok(last);
        }
        let mut args = Vec::with_capacity(cmd.args.len());
        for arg in &cmd.args[1..] {
            args.push(self.eval_arg(dot, arg)?);
        }
        if let Some(f) = final_ {
            args.push(f);
        }
        self.call_function(dot, name, cmd, args, start, end)
    }

    fn call_function(
        &mut self,
        _dot: &Value,
        name: &str,
        _cmd: &Command<'_>,
        args: Vec<Value>,
        start: usize,
        end: usize,
    ) -> Result<Value, Error> {
        match name {
            "secret" | "pkiCert" => self.read_secret(name == "pkiCert", &args, start),
            _ => {
                let mut ctx = FnCtx {
                    missing_key: self.opts.missing_key,
                };
                funcs::call(name, &mut ctx, args)
                    .map_err(|m| self.err_at(start, end, format_args!("error calling {name}: {m}")))
            }
        }
    }

    fn read_secret(&mut self, pki: bool, args: &[Value], pos: usize) -> Result<Value, Error> {
        let Some((reference, params)) = args.split_first() else {
            return Err(self.err(pos, "secret: missing path"));
        };
        let reference = reference.as_str().unwrap_or_default();
        let params: Vec<&str> = params
            .iter()
            .map(|a| a.as_str().unwrap_or_default())
            .collect();
        let parameters = split_parameters(&params).map_err(|m| self.err(pos, m))?;
        let Some(index) = self
            .opts
            .secrets
            .iter()
            .position(|s| s.reference == reference && s.parameters == parameters)
        else {
            let mut e = self.err(
                pos,
                format!("secret {reference:?} was not granted or fetched"),
            );
            e.not_granted = true;
            return Err(e);
        };
        if let Some(v) = self.secret_cache.get(&(pki, index)) {
            return Ok(v.clone());
        }
        let granted = &self.opts.secrets[index];
        let data = Value::parse_json(granted.data).map_err(|_| {
            self.err(
                pos,
                format!("secret {reference:?}: its data is not a valid JSON document"),
            )
        })?;
        let value = if pki {
            pki_value(&data)
        } else {
            secret_value(granted, data)
        };
        self.secret_cache.insert((pki, index), value.clone());
        Ok(value)
    }
}

/// consul-template's `*dependency.Secret`.
fn secret_value(granted: &GrantedSecret<'_>, data: Value) -> Value {
    Value::Struct(Rc::new(Struct {
        type_name: "*dependency.Secret",
        fields: vec![
            ("RequestID", Value::str("")),
            ("LeaseID", Value::str(granted.lease_id)),
            (
                "LeaseDuration",
                Value::Int(i64::try_from(granted.lease_duration).unwrap_or(i64::MAX)),
            ),
            ("Renewable", Value::Bool(granted.renewable)),
            ("Data", data),
            (
                "Warnings",
                Value::list(
                    granted
                        .warnings
                        .iter()
                        .map(|w| Value::str(w.as_str()))
                        .collect(),
                ),
            ),
            ("Auth", Value::Nil),
            ("WrapInfo", Value::Nil),
        ],
    }))
}

/// consul-template's `pkiCert` result: PEM strings, each ending in a
/// newline (consul-template re-encodes the PEM blocks, so they do), with
/// the same fields again under `.Data`.
fn pki_value(data: &Value) -> Value {
    let get = |key: &str| -> Value {
        match data {
            Value::Map(m) => match m.get(key) {
                Some(Value::Str(s)) => Value::str(pem_line(s)),
                _ => Value::str(""),
            },
            _ => Value::str(""),
        }
    };
    let chain = match data {
        Value::Map(m) => match m.get("ca_chain") {
            Some(Value::List(l)) => l
                .iter()
                .filter_map(|v| v.as_str().map(|s| Value::str(pem_line(s))))
                .collect(),
            _ => Vec::new(),
        },
        _ => Vec::new(),
    };
    let fields = vec![
        ("Cert", get("certificate")),
        ("Key", get("private_key")),
        ("CA", get("issuing_ca")),
        ("CAChain", Value::list(chain)),
    ];
    let inner = Value::Struct(Rc::new(Struct {
        type_name: "dependency.PemEncoded",
        fields: fields.clone(),
    }));
    let mut outer = fields;
    outer.push(("Data", inner));
    Value::Struct(Rc::new(Struct {
        type_name: "dependency.PemEncoded",
        fields: outer,
    }))
}

fn pem_line(s: &str) -> String {
    if s.is_empty() || s.ends_with('\n') {
        s.to_string()
    } else {
        format!("{s}\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn granted(reference: &'static str, data: &'static str) -> GrantedSecret<'static> {
        GrantedSecret {
            reference,
            parameters: &[],
            lease_id: "",
            lease_duration: 0,
            renewable: false,
            data,
            warnings: &[],
        }
    }

    fn run_with(
        src: &str,
        secrets: &[GrantedSecret<'_>],
        missing_key: MissingKey,
    ) -> Result<String, Error> {
        let t = Template::parse(src)?;
        t.execute(&ExecOptions {
            missing_key,
            secrets,
        })
    }

    fn run(src: &str) -> String {
        run_with(src, &[], MissingKey::Error).unwrap()
    }

    fn run_err(src: &str) -> String {
        run_with(src, &[], MissingKey::Error)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn text_actions_and_trimming() {
        assert_eq!(run("a {{- 1 -}} b"), "a1b");
        assert_eq!(run("{{ \"x\" }} {{/* c */}}y"), "x y");
        assert_eq!(run("{{ 1.5 }} {{ true }} {{ 'a' }}"), "1.5 true 97");
    }

    #[test]
    fn variables_and_assignment() {
        assert_eq!(
            run("{{ $x := 1 }}{{ if true }}{{ $x = 2 }}{{ end }}{{ $x }}"),
            "2"
        );
        assert_eq!(
            run("{{ range $i, $v := (parseJSON `[\"a\",\"b\"]`) }}{{ $i }}={{ $v }};{{ end }}"),
            "0=a;1=b;"
        );
        assert_eq!(
            run("{{ range $k, $v := (parseJSON `{\"b\":2,\"a\":1}`) }}{{ $k }}={{ $v }};{{ end }}"),
            "a=1;b=2;"
        );
    }

    #[test]
    fn range_else_break_continue() {
        assert_eq!(
            run("{{ range (parseJSON `[]`) }}x{{ else }}empty{{ end }}"),
            "empty"
        );
        assert_eq!(
            run(
                "{{ range $i := 5 }}{{ if eq $i 1 }}{{ continue }}{{ end }}{{ if eq $i 3 }}{{ break }}{{ end }}{{ $i }}{{ end }}"
            ),
            "02"
        );
    }

    #[test]
    fn with_else_with() {
        assert_eq!(
            run("{{ with \"\" }}a{{ else with \"b\" }}{{ . }}{{ end }}"),
            "b"
        );
        assert_eq!(run("{{ with 0 }}a{{ else }}none{{ end }}"), "none");
    }

    #[test]
    fn define_template_block() {
        assert_eq!(
            run(
                r#"{{ define "t" }}[{{ . }}]{{ end }}{{ template "t" "x" }}{{ block "b" 2 }}<{{ . }}>{{ end }}"#
            ),
            "[x]<2>"
        );
        assert!(run_err(r#"{{ template "nope" }}"#).contains("no such template \"nope\""));
        assert!(
            run_err(r#"{{ define "r" }}{{ template "r" }}{{ end }}{{ template "r" }}"#)
                .contains("exceeded maximum template depth")
        );
    }

    #[test]
    fn missing_keys() {
        let s = [granted("kv/app", r#"{"user":"u"}"#)];
        let e = run_with(
            "x\n{{ with secret \"kv/app\" }}{{ .Data.pass }}{{ end }}",
            &s,
            MissingKey::Error,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "template:2:30: executing <.Data.pass>: map has no entry for key \"pass\""
        );
        assert_eq!(
            run_with(
                "{{ with secret \"kv/app\" }}[{{ .Data.pass }}]{{ .Data.a.b }}{{ end }}",
                &s,
                MissingKey::Zero
            )
            .unwrap(),
            "[]"
        );
    }

    #[test]
    fn ungranted_secret() {
        let e = run_with("{{ secret \"kv/x\" }}", &[], MissingKey::Error).unwrap_err();
        assert!(e.not_granted);
        assert!(
            e.to_string()
                .contains("secret \"kv/x\" was not granted or fetched")
        );
    }

    #[test]
    fn secret_object_fields() {
        let mut g = granted("db/creds/app", r#"{"username":"u","password":"p"}"#);
        g.lease_id = "db/creds/app/abc";
        g.lease_duration = 3600;
        g.renewable = true;
        let out = run_with(
            "{{ with secret \"db/creds/app\" }}{{ .LeaseID }} {{ .LeaseDuration }} {{ .Renewable }} {{ .Data.username }}{{ end }}",
            &[g],
            MissingKey::Error,
        )
        .unwrap();
        assert_eq!(out, "db/creds/app/abc 3600 true u");
        let e = run_with(
            "{{ (secret \"kv/app\").Nope }}",
            &[granted("kv/app", "{}")],
            MissingKey::Zero,
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("can't evaluate field Nope in type *dependency.Secret")
        );
    }

    #[test]
    fn pki_fields() {
        let g = granted(
            "pki/issue/web",
            r#"{"certificate":"C","private_key":"K","issuing_ca":"I","ca_chain":["I","R"]}"#,
        );
        let out = run_with(
            "{{ with pkiCert \"pki/issue/web\" }}{{ .Data.Cert }}{{ .Key }}{{ .Data.CA }}{{ range .Data.CAChain }}{{ . }}{{ end }}{{ end }}",
            &[g],
            MissingKey::Error,
        )
        .unwrap();
        assert_eq!(out, "C\nK\nI\nI\nR\n");
    }

    #[test]
    fn non_function_arguments() {
        assert!(run_err("{{ 1 2 }}").contains("can't give argument to non-function"));
        assert!(run_err("{{ nil }}").contains("nil is not a command"));
    }

    #[test]
    fn and_or_short_circuit() {
        assert_eq!(run("{{ and 1 0 (index nil 1) }}"), "0");
        assert_eq!(run("{{ or 0 \"\" \"x\" }}"), "x");
        assert_eq!(run("{{ \"y\" | and 1 }}"), "y");
    }
}
