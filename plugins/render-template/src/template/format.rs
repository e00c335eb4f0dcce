//! Go's `fmt` for template values: `%v` printing, `print`, `println` and
//! `printf` with the common verbs, flags, width and precision.

use super::value::Value;

/// How a pipeline's final value is written into the output. Go prints nil
/// as `<no value>` / `<nil>`; Keyward writes nothing, so a null in Vault
/// data can never put a placeholder into a config file.
pub(crate) fn print_value(v: &Value) -> String {
    match v {
        Value::Nil => String::new(),
        Value::Str(s) => s.to_string(),
        other => {
            let mut out = String::new();
            Printer::default().print_arg(&mut out, Some(other), 'v');
            out
        }
    }
}

/// `fmt.Sprint`: spaces between operands when neither is a string.
pub(crate) fn sprint(args: &[Value]) -> String {
    let mut out = String::new();
    let mut prev_string = false;
    for (i, a) in args.iter().enumerate() {
        let is_string = matches!(a, Value::Str(_));
        if i > 0 && !is_string && !prev_string {
            out.push(' ');
        }
        Printer::default().print_arg(&mut out, Some(a), 'v');
        prev_string = is_string;
    }
    out
}

/// `fmt.Sprintln`: spaces between all operands and a trailing newline.
pub(crate) fn sprintln(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        Printer::default().print_arg(&mut out, Some(a), 'v');
    }
    out.push('\n');
    out
}

/// `fmt.Sprintf`.
pub(crate) fn sprintf(format: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let chars: Vec<char> = format.chars().collect();
    let end = chars.len();
    let mut i = 0;
    let mut arg_num = 0usize;
    let mut reordered = false;
    while i < end {
        let lasti = i;
        while i < end && chars[i] != '%' {
            i += 1;
        }
        out.extend(&chars[lasti..i]);
        if i >= end {
            break;
        }
        i += 1; // '%'
        let mut p = Printer::default();
        // Flags.
        while i < end {
            match chars[i] {
                '#' => p.sharp = true,
                '0' => p.zero = !p.minus,
                '+' => p.plus = true,
                '-' => {
                    p.minus = true;
                    p.zero = false;
                }
                ' ' => p.space = true,
                _ => break,
            }
            i += 1;
        }
        let mut good_arg_num = true;
        // Argument index: [n]
        let mut after_index = false;
        let arg_number =
            |i: &mut usize, arg_num: &mut usize, good: &mut bool, reordered: &mut bool| -> bool {
                if *i >= end || chars[*i] != '[' {
                    return false;
                }
                *reordered = true;
                let mut j = *i + 1;
                let mut n = 0usize;
                let mut digits = false;
                while j < end && chars[j].is_ascii_digit() {
                    n = n
                        .saturating_mul(10)
                        .saturating_add(chars[j] as usize - '0' as usize);
                    digits = true;
                    j += 1;
                }
                if j < end && chars[j] == ']' && digits && n >= 1 && n <= args.len() {
                    *arg_num = n - 1;
                    *i = j + 1;
                    true
                } else {
                    *good = false;
                    // Skip to the closing bracket, if any.
                    while j < end && chars[j] != ']' {
                        j += 1;
                    }
                    *i = (j + 1).min(end);
                    true
                }
            };
        after_index =
            arg_number(&mut i, &mut arg_num, &mut good_arg_num, &mut reordered) || after_index;
        // Width.
        if i < end && chars[i] == '*' {
            i += 1;
            match args.get(arg_num) {
                Some(Value::Int(w)) => {
                    p.wid_present = true;
                    if *w < 0 {
                        p.minus = true;
                        p.zero = false;
                    }
                    p.wid = w.unsigned_abs().min(1_000_000) as usize;
                }
                _ => out.push_str("%!(BADWIDTH)"),
            }
            arg_num += 1;
            after_index = false;
        } else {
            let (n, present, ni) = parse_num(&chars, i);
            if present {
                p.wid = n;
                p.wid_present = true;
                if after_index {
                    good_arg_num = false;
                }
            }
            i = ni;
        }
        // Precision.
        if i < end && chars[i] == '.' {
            i += 1;
            if after_index {
                good_arg_num = false;
            }
            after_index = arg_number(&mut i, &mut arg_num, &mut good_arg_num, &mut reordered);
            if i < end && chars[i] == '*' {
                i += 1;
                match args.get(arg_num) {
                    Some(Value::Int(pr)) if *pr >= 0 => {
                        p.prec = (*pr).min(1_000_000) as usize;
                        p.prec_present = true;
                    }
                    _ => out.push_str("%!(BADPREC)"),
                }
                arg_num += 1;
                after_index = false;
            } else {
                let (n, _, ni) = parse_num(&chars, i);
                p.prec = n;
                p.prec_present = true;
                i = ni;
            }
        }
        if !after_index {
            arg_number(&mut i, &mut arg_num, &mut good_arg_num, &mut reordered);
        }
        if i >= end {
            out.push_str("%!(NOVERB)");
            break;
        }
        let verb = chars[i];
        i += 1;
        if verb == '%' {
            out.push('%');
        } else if !good_arg_num {
            out.push_str(&format!("%!{verb}(BADINDEX)"));
        } else if arg_num >= args.len() {
            out.push_str(&format!("%!{verb}(MISSING)"));
        } else {
            p.print_arg(&mut out, Some(&args[arg_num]), verb);
            arg_num += 1;
        }
    }
    if !reordered && arg_num < args.len() {
        out.push_str("%!(EXTRA ");
        for (k, a) in args[arg_num..].iter().enumerate() {
            if k > 0 {
                out.push_str(", ");
            }
            if matches!(a, Value::Nil) {
                out.push_str("<nil>");
            } else {
                out.push_str(a.type_name());
                out.push('=');
                Printer::default().print_arg(&mut out, Some(a), 'v');
            }
        }
        out.push(')');
    }
    out
}

fn parse_num(chars: &[char], mut i: usize) -> (usize, bool, usize) {
    let start = i;
    let mut n = 0usize;
    while i < chars.len() && chars[i].is_ascii_digit() {
        n = n
            .saturating_mul(10)
            .saturating_add(chars[i] as usize - '0' as usize);
        if n > 1_000_000 {
            return (0, false, i);
        }
        i += 1;
    }
    (n, i > start, i)
}

/// Formatting state for one verb (Go's `fmt.fmt` flags).
#[derive(Clone, Default)]
struct Printer {
    sharp: bool,
    zero: bool,
    plus: bool,
    minus: bool,
    space: bool,
    wid: usize,
    wid_present: bool,
    prec: usize,
    prec_present: bool,
}

impl Printer {
    fn pad(&self, out: &mut String, s: &str) {
        if !self.wid_present || self.wid == 0 {
            out.push_str(s);
            return;
        }
        let n = s.chars().count();
        if n >= self.wid {
            out.push_str(s);
            return;
        }
        let fill = self.wid - n;
        if self.minus {
            out.push_str(s);
            out.extend(std::iter::repeat_n(' ', fill));
        } else {
            let c = if self.zero { '0' } else { ' ' };
            out.extend(std::iter::repeat_n(c, fill));
            out.push_str(s);
        }
    }

    fn bad_verb(&self, out: &mut String, v: Option<&Value>, verb: char) {
        out.push_str("%!");
        out.push(verb);
        out.push('(');
        match v {
            None | Some(Value::Nil) => out.push_str("<nil>"),
            Some(v) => {
                out.push_str(v.type_name());
                out.push('=');
                Printer::default().print_arg(out, Some(v), 'v');
            }
        }
        out.push(')');
    }

    /// Go's `printArg` / `printValue`.
    fn print_arg(&self, out: &mut String, v: Option<&Value>, verb: char) {
        let Some(v) = v else {
            self.bad_verb(out, None, verb);
            return;
        };
        if verb == 'T' {
            self.pad(out, v.type_name());
            return;
        }
        match v {
            Value::Nil => match verb {
                'v' => self.pad(out, "<nil>"),
                _ => self.bad_verb(out, Some(v), verb),
            },
            Value::Bool(b) => match verb {
                't' | 'v' => self.pad(out, if *b { "true" } else { "false" }),
                _ => self.bad_verb(out, Some(v), verb),
            },
            Value::Int(i) => self.fmt_integer(out, *i, verb, v),
            Value::Float(f) => self.fmt_float_verb(out, *f, verb, v),
            Value::Str(s) => self.fmt_string(out, s, verb, v),
            Value::List(items) => {
                out.push('[');
                for (k, item) in items.iter().enumerate() {
                    if k > 0 {
                        out.push(' ');
                    }
                    self.print_arg(out, Some(item), verb);
                }
                out.push(']');
            }
            Value::Map(m) => {
                out.push_str("map[");
                for (k, (key, item)) in m.iter().enumerate() {
                    if k > 0 {
                        out.push(' ');
                    }
                    self.fmt_string(out, key, verb, &Value::str(key.as_str()));
                    out.push(':');
                    self.print_arg(out, Some(item), verb);
                }
                out.push(']');
            }
            Value::Struct(s) => {
                out.push_str("&{");
                for (k, (name, item)) in s.fields.iter().enumerate() {
                    if k > 0 {
                        out.push(' ');
                    }
                    if self.plus {
                        out.push_str(name);
                        out.push(':');
                    }
                    self.print_arg(out, Some(item), verb);
                }
                out.push('}');
            }
        }
    }

    fn fmt_integer(&self, out: &mut String, i: i64, verb: char, v: &Value) {
        match verb {
            'v' | 'd' => self.fmt_int_base(out, i, 10, verb, false),
            'b' => self.fmt_int_base(out, i, 2, verb, false),
            'o' | 'O' => self.fmt_int_base(out, i, 8, verb, false),
            'x' => self.fmt_int_base(out, i, 16, verb, false),
            'X' => self.fmt_int_base(out, i, 16, verb, true),
            'c' => {
                let c = u32::try_from(i)
                    .ok()
                    .and_then(char::from_u32)
                    .unwrap_or('\u{FFFD}');
                self.pad(out, &c.to_string());
            }
            'q' => {
                let c = u32::try_from(i)
                    .ok()
                    .and_then(char::from_u32)
                    .unwrap_or('\u{FFFD}');
                self.pad(out, &quote_rune(c));
            }
            'U' => {
                let s = format!("U+{:04X}", i);
                self.pad(out, &s);
            }
            // Lenient: numbers from Vault JSON are integers here but
            // json.Number in Vault Agent; float verbs format them.
            'e' | 'E' | 'f' | 'F' | 'g' | 'G' => self.fmt_float_verb(out, i as f64, verb, v),
            // Lenient: %s of a number prints it (Vault Agent's json.Number
            // is a string type).
            's' => self.fmt_int_base(out, i, 10, 'd', false),
            _ => self.bad_verb(out, Some(v), verb),
        }
    }

    fn fmt_int_base(&self, out: &mut String, i: i64, base: u32, verb: char, upper: bool) {
        let negative = i < 0;
        let u = i.unsigned_abs();
        if self.prec_present && self.prec == 0 && u == 0 {
            let mut p = self.clone();
            p.zero = false;
            p.pad(out, "");
            return;
        }
        let mut digits = match base {
            2 => format!("{u:b}"),
            8 => format!("{u:o}"),
            16 if upper => format!("{u:X}"),
            16 => format!("{u:x}"),
            _ => u.to_string(),
        };
        let mut prec = 0usize;
        if self.prec_present {
            prec = self.prec;
        } else if self.zero && !self.minus && self.wid_present {
            prec = self.wid;
            if negative || self.plus || self.space {
                prec = prec.saturating_sub(1);
            }
        }
        if digits.len() < prec {
            digits = "0".repeat(prec - digits.len()) + &digits;
        }
        let mut prefix = String::new();
        if self.sharp {
            match base {
                2 => prefix.push_str("0b"),
                8 if !digits.starts_with('0') => prefix.push('0'),
                16 => prefix.push_str(if upper { "0X" } else { "0x" }),
                _ => {}
            }
        }
        if verb == 'O' {
            prefix = "0o".into();
        }
        let sign = if negative {
            "-"
        } else if self.plus {
            "+"
        } else if self.space {
            " "
        } else {
            ""
        };
        let s = format!("{sign}{prefix}{digits}");
        let mut p = self.clone();
        p.zero = false;
        p.pad(out, &s);
    }

    fn fmt_float_verb(&self, out: &mut String, f: f64, verb: char, v: &Value) {
        let (verb, default_prec) = match verb {
            'v' => ('g', None),
            'g' | 'G' => (verb, None),
            'e' | 'E' | 'f' => (verb, Some(6)),
            'F' => ('f', Some(6)),
            's' => ('g', None),
            _ => {
                self.bad_verb(out, Some(v), verb);
                return;
            }
        };
        let prec = if self.prec_present {
            Some(self.prec)
        } else {
            default_prec
        };
        let mut num = format_float(f, verb, prec);
        if !num.starts_with(['-', '+']) {
            num.insert(0, '+');
        }
        if self.space && num.starts_with('+') && !self.plus {
            num.replace_range(0..1, " ");
        }
        if num[1..].starts_with(['I', 'N']) {
            let mut p = self.clone();
            p.zero = false;
            if num[1..].starts_with('N') && !self.space && !self.plus {
                num.remove(0);
            }
            p.pad(out, &num);
            return;
        }
        if self.plus || !num.starts_with('+') {
            if self.zero && !self.minus && self.wid_present && self.wid > num.len() {
                out.push_str(&num[..1]);
                out.extend(std::iter::repeat_n('0', self.wid - num.len()));
                out.push_str(&num[1..]);
                return;
            }
            self.pad(out, &num);
            return;
        }
        self.pad(out, &num[1..]);
    }

    fn fmt_string(&self, out: &mut String, s: &str, verb: char, v: &Value) {
        match verb {
            'v' | 's' => {
                let s = self.truncate(s);
                self.pad(out, s);
            }
            'q' => {
                let s = self.truncate(s);
                let q = if self.sharp
                    && !s.contains('`')
                    && !s.chars().any(|c| c.is_control() && c != '\t')
                {
                    format!("`{s}`")
                } else {
                    quote(s, self.plus)
                };
                self.pad(out, &q);
            }
            'x' | 'X' => {
                let bytes = s.as_bytes();
                let bytes = if self.prec_present {
                    &bytes[..self.prec.min(bytes.len())]
                } else {
                    bytes
                };
                let mut h = String::new();
                for (k, b) in bytes.iter().enumerate() {
                    if self.space && k > 0 {
                        h.push(' ');
                    }
                    if self.sharp && (self.space || k == 0) {
                        h.push_str(if verb == 'x' { "0x" } else { "0X" });
                    }
                    if verb == 'x' {
                        h.push_str(&format!("{b:02x}"));
                    } else {
                        h.push_str(&format!("{b:02X}"));
                    }
                }
                self.pad(out, &h);
            }
            _ => self.bad_verb(out, Some(v), verb),
        }
    }

    fn truncate<'s>(&self, s: &'s str) -> &'s str {
        if self.prec_present {
            match s.char_indices().nth(self.prec) {
                Some((i, _)) => &s[..i],
                None => s,
            }
        } else {
            s
        }
    }
}

/// Decimal digits and decimal-point position of `f` (|f| > 0), shortest
/// round-trip (`prec == None`) or rounded to `sig` significant digits.
fn digits(f: f64, sig: Option<usize>) -> (String, i32) {
    let s = match sig {
        None => format!("{:e}", f.abs()),
        Some(p) => format!("{:.*e}", p.saturating_sub(1), f.abs()),
    };
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let mut d: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    while d.len() > 1 && d.ends_with('0') {
        d.pop();
    }
    (d, exp + 1)
}

fn fmt_e(neg: bool, d: &str, dp: i32, prec: usize, e: char) -> String {
    let mut s = String::new();
    if neg {
        s.push('-');
    }
    let bytes: Vec<char> = d.chars().collect();
    s.push(bytes.first().copied().unwrap_or('0'));
    if prec > 0 {
        s.push('.');
        for k in 1..=prec {
            s.push(bytes.get(k).copied().unwrap_or('0'));
        }
    }
    let exp = if d == "0" { 0 } else { dp - 1 };
    s.push(e);
    s.push(if exp < 0 { '-' } else { '+' });
    let a = exp.unsigned_abs();
    if a < 10 {
        s.push('0');
    }
    s.push_str(&a.to_string());
    s
}

fn fmt_f(neg: bool, d: &str, dp: i32, prec: usize) -> String {
    let mut s = String::new();
    if neg {
        s.push('-');
    }
    let bytes: Vec<char> = d.chars().collect();
    if dp > 0 {
        for k in 0..dp as usize {
            s.push(bytes.get(k).copied().unwrap_or('0'));
        }
    } else {
        s.push('0');
    }
    if prec > 0 {
        s.push('.');
        for k in 1..=prec as i32 {
            let j = dp + k - 1;
            let c = if j >= 0 {
                bytes.get(j as usize).copied().unwrap_or('0')
            } else {
                '0'
            };
            s.push(c);
        }
    }
    s
}

/// Go's `strconv.FormatFloat(f, verb, prec, 64)` for verbs e, E, f, g, G.
pub(crate) fn format_float(f: f64, verb: char, prec: Option<usize>) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    let neg = f.is_sign_negative();
    match verb {
        'f' => {
            let p = prec.unwrap_or(6);
            match prec {
                Some(p) => {
                    let s = format!("{:.*}", p, f.abs());
                    if neg { format!("-{s}") } else { s }
                }
                None => {
                    if f == 0.0 {
                        return if neg { "-0".into() } else { "0".into() };
                    }
                    let (d, dp) = digits(f, None);
                    let _ = p;
                    fmt_f(neg, &d, dp, (d.len() as i32 - dp).max(0) as usize)
                }
            }
        }
        'e' | 'E' => {
            if f == 0.0 {
                return fmt_e(neg, "0", 1, prec.unwrap_or(0), verb);
            }
            match prec {
                Some(p) => {
                    let (d, dp) = digits(f, Some(p + 1));
                    fmt_e(neg, &d, dp, p, verb)
                }
                None => {
                    let (d, dp) = digits(f, None);
                    fmt_e(neg, &d, dp, d.len() - 1, verb)
                }
            }
        }
        _ => {
            // 'g' / 'G'
            let e = if verb == 'G' { 'E' } else { 'e' };
            if f == 0.0 {
                return if neg { "-0".into() } else { "0".into() };
            }
            let shortest = prec.is_none();
            let p = match prec {
                Some(0) => 1,
                Some(p) => p,
                None => 0,
            };
            let (d, dp) = digits(f, if shortest { None } else { Some(p) });
            let nd = d.len() as i32;
            let mut eprec = if shortest { nd } else { p as i32 };
            if eprec > nd && nd >= dp {
                eprec = nd;
            }
            if shortest {
                eprec = 6;
            }
            let exp = dp - 1;
            let mut prec = if shortest { nd } else { p as i32 };
            if exp < -4 || exp >= eprec {
                if prec > nd {
                    prec = nd;
                }
                return fmt_e(neg, &d, dp, (prec - 1).max(0) as usize, e);
            }
            if prec > dp {
                prec = nd;
            }
            fmt_f(neg, &d, dp, (prec - dp).max(0) as usize)
        }
    }
}

/// Go's `strconv.Quote` (`ascii_only`: `QuoteToASCII`).
pub(crate) fn quote(s: &str, ascii_only: bool) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        push_escaped(&mut out, c, '"', ascii_only);
    }
    out.push('"');
    out
}

fn quote_rune(c: char) -> String {
    let mut out = String::from("'");
    push_escaped(&mut out, c, '\'', false);
    out.push('\'');
    out
}

fn is_print(c: char) -> bool {
    c == ' '
        || !(c.is_control()
            || c.is_whitespace()
            || matches!(c, '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{feff}'))
}

fn push_escaped(out: &mut String, c: char, q: char, ascii_only: bool) {
    if c == q || c == '\\' {
        out.push('\\');
        out.push(c);
        return;
    }
    if ascii_only {
        if c.is_ascii() && is_print(c) {
            out.push(c);
            return;
        }
    } else if is_print(c) {
        out.push(c);
        return;
    }
    match c {
        '\x07' => out.push_str("\\a"),
        '\x08' => out.push_str("\\b"),
        '\x0c' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\x0b' => out.push_str("\\v"),
        c if (c as u32) < 0x20 || c == '\x7f' => out.push_str(&format!("\\x{:02x}", c as u32)),
        c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
        c => out.push_str(&format!("\\U{:08x}", c as u32)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn s(v: &str) -> Value {
        Value::str(v)
    }

    #[test]
    fn printf_verbs() {
        let cases: Vec<(&str, Vec<Value>, &str)> = vec![
            ("%s-%d", vec![s("a"), Value::Int(42)], "a-42"),
            (
                "%5d|%-5d|%05d",
                vec![Value::Int(42), Value::Int(42), Value::Int(-42)],
                "   42|42   |-0042",
            ),
            (
                "%x %X %o %b %#x",
                vec![
                    Value::Int(255),
                    Value::Int(255),
                    Value::Int(8),
                    Value::Int(5),
                    Value::Int(255),
                ],
                "ff FF 10 101 0xff",
            ),
            ("%q", vec![s("a\"b\n")], "\"a\\\"b\\n\""),
            ("%x", vec![s("hi")], "6869"),
            (
                "%.2f|%5.1f|%f",
                vec![Value::Float(4.56789), Value::Float(2.25), Value::Float(1.0)],
                "4.57|  2.2|1.000000",
            ),
            (
                "%e|%g|%g",
                vec![
                    Value::Float(1234.5678),
                    Value::Float(1e6),
                    Value::Float(0.0001),
                ],
                "1.234568e+03|1e+06|0.0001",
            ),
            (
                "%t %v",
                vec![Value::Bool(true), Value::Bool(false)],
                "true false",
            ),
            (
                "%v",
                vec![Value::list(vec![s("a"), Value::Int(1)])],
                "[a 1]",
            ),
            ("%d", vec![s("x")], "%!d(string=x)"),
            ("%s %s", vec![s("x")], "x %!s(MISSING)"),
            ("%s", vec![s("x"), Value::Int(2)], "x%!(EXTRA int=2)"),
            (
                "%%|%c|%U",
                vec![Value::Int(65), Value::Int(65)],
                "%|A|U+0041",
            ),
            (
                "%T %T %T",
                vec![s("x"), Value::Int(1), Value::Nil],
                "string int <nil>",
            ),
            ("%[2]s %[1]s", vec![s("a"), s("b")], "b a"),
            (
                "%.3s|%8s|%-4s|",
                vec![s("abcdef"), s("right"), s("l")],
                "abc|   right|l   |",
            ),
            (
                "%+d %+.1e",
                vec![Value::Int(5), Value::Float(-12345.0)],
                "+5 -1.2e+04",
            ),
            ("%v", vec![Value::Nil], "<nil>"),
            ("%6.2f%%", vec![Value::Float(99.5)], " 99.50%"),
            ("%*d", vec![Value::Int(4), Value::Int(7)], "   7"),
        ];
        for (f, args, want) in cases {
            assert_eq!(sprintf(f, &args), want, "format {f:?}");
        }
    }

    #[test]
    fn maps_print_sorted() {
        let mut m = BTreeMap::new();
        m.insert("b".to_string(), Value::Int(2));
        m.insert("a".to_string(), Value::Int(1));
        assert_eq!(sprintf("%v", &[Value::map(m)]), "map[a:1 b:2]");
    }

    #[test]
    fn floats_like_go() {
        assert_eq!(format_float(1e6, 'g', None), "1e+06");
        assert_eq!(format_float(123456.0, 'g', None), "123456");
        assert_eq!(format_float(1e-5, 'g', None), "1e-05");
        assert_eq!(format_float(0.1 + 0.2, 'g', None), "0.30000000000000004");
        assert_eq!(format_float(100.0, 'g', Some(2)), "1e+02");
        assert_eq!(format_float(100.0, 'g', Some(3)), "100");
        assert_eq!(format_float(2.5, 'f', Some(0)), "2");
        assert_eq!(format_float(0.125, 'f', Some(2)), "0.12");
        assert_eq!(format_float(-0.0, 'g', None), "-0");
        assert_eq!(format_float(f64::INFINITY, 'g', None), "+Inf");
    }

    #[test]
    fn sprint_spacing() {
        assert_eq!(
            sprint(&[s("a"), Value::Int(1), Value::Int(2), s("b")]),
            "a1 2b"
        );
        assert_eq!(sprintln(&[s("a"), Value::Int(1)]), "a 1\n");
    }
}
