//! A strict parser for the flat JSON objects `wsbeat --events` writes (no serde in this crate).
//! Strict on purpose: it refuses raw control characters, bad escapes and lone surrogates, so
//! a line it accepts is valid JSON for any consumer.
#![forbid(unsafe_code)]

/// A field value. Events are flat: no arrays or nested objects.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Str(String),
    Num(f64),
    Bool(bool),
    Null,
}

/// One event line, fields in order.
#[derive(Clone, Debug)]
pub struct Object(pub Vec<(String, Value)>);

impl Object {
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The `event` field.
    pub fn name(&self) -> &str {
        self.str("event")
    }

    /// A string field; panics (with the line) if absent or not a string.
    pub fn str(&self, key: &str) -> &str {
        match self.get(key) {
            Some(Value::Str(s)) => s,
            other => panic!("{key}: expected a string, got {other:?} in {self:?}"),
        }
    }

    /// A number field; panics if absent or not a number.
    pub fn num(&self, key: &str) -> f64 {
        match self.get(key) {
            Some(Value::Num(n)) => *n,
            other => panic!("{key}: expected a number, got {other:?} in {self:?}"),
        }
    }

    /// A field that must be present and a number or null.
    pub fn num_or_null(&self, key: &str) -> Option<f64> {
        match self.get(key) {
            Some(Value::Num(n)) => Some(*n),
            Some(Value::Null) => None,
            other => panic!("{key}: expected a number or null, got {other:?} in {self:?}"),
        }
    }
}

/// Parses one line holding one object; `Err` says where it broke.
pub fn parse(line: &str) -> Result<Object, String> {
    let mut p = Parser {
        s: line.as_bytes(),
        i: 0,
    };
    p.ws();
    p.expect(b'{')?;
    let mut fields = Vec::new();
    p.ws();
    if p.peek() == Some(b'}') {
        p.i += 1;
    } else {
        loop {
            p.ws();
            let key = p.string()?;
            p.ws();
            p.expect(b':')?;
            p.ws();
            let value = p.value()?;
            fields.push((key, value));
            p.ws();
            match p.next() {
                Some(b',') => continue,
                Some(b'}') => break,
                other => return Err(p.err(&format!("expected , or }} got {other:?}"))),
            }
        }
    }
    p.ws();
    if p.i != p.s.len() {
        return Err(p.err("trailing characters"));
    }
    Ok(Object(fields))
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn err(&self, what: &str) -> String {
        format!("{what} at byte {}", self.i)
    }
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn next(&mut self) -> Option<u8> {
        let c = self.peek();
        self.i += 1;
        c
    }
    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }
    fn expect(&mut self, c: u8) -> Result<(), String> {
        match self.next() {
            Some(got) if got == c => Ok(()),
            got => Err(self.err(&format!("expected {:?} got {got:?}", c as char))),
        }
    }
    fn literal(&mut self, word: &str, v: Value) -> Result<Value, String> {
        if self.s[self.i..].starts_with(word.as_bytes()) {
            self.i += word.len();
            Ok(v)
        } else {
            Err(self.err("bad literal"))
        }
    }
    fn value(&mut self) -> Result<Value, String> {
        match self.peek() {
            Some(b'"') => Ok(Value::Str(self.string()?)),
            Some(b'n') => self.literal("null", Value::Null),
            Some(b't') => self.literal("true", Value::Bool(true)),
            Some(b'f') => self.literal("false", Value::Bool(false)),
            Some(b'-' | b'0'..=b'9') => self.number(),
            other => Err(self.err(&format!("unexpected {other:?}"))),
        }
    }
    fn number(&mut self) -> Result<Value, String> {
        let start = self.i;
        while matches!(
            self.peek(),
            Some(b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
        ) {
            self.i += 1;
        }
        let text = std::str::from_utf8(&self.s[start..self.i]).unwrap();
        let leading_zero = text.trim_start_matches('-').starts_with("0")
            && text.trim_start_matches('-').len() > 1
            && !text.trim_start_matches('-').starts_with("0.");
        if leading_zero || text.ends_with('.') || text.starts_with('.') {
            return Err(self.err("bad number"));
        }
        text.parse()
            .map(Value::Num)
            .map_err(|_| self.err("bad number"))
    }
    fn hex4(&mut self) -> Result<u32, String> {
        let digits = self.s.get(self.i..self.i + 4).ok_or("short \\u escape")?;
        let text = std::str::from_utf8(digits).map_err(|_| self.err("bad \\u"))?;
        let v = u32::from_str_radix(text, 16).map_err(|_| self.err("bad \\u"))?;
        self.i += 4;
        Ok(v)
    }
    fn string(&mut self) -> Result<String, String> {
        self.expect(b'"')?;
        let mut out = String::new();
        loop {
            let rest = std::str::from_utf8(&self.s[self.i..]).map_err(|_| self.err("utf-8"))?;
            let c = rest
                .chars()
                .next()
                .ok_or_else(|| self.err("unterminated"))?;
            self.i += c.len_utf8();
            match c {
                '"' => return Ok(out),
                '\\' => {
                    let e = self.next().ok_or_else(|| self.err("bad escape"))?;
                    match e {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let hi = self.hex4()?;
                            let code = if (0xd800..0xdc00).contains(&hi) {
                                if !self.s[self.i..].starts_with(b"\\u") {
                                    return Err(self.err("lone surrogate"));
                                }
                                self.i += 2;
                                let lo = self.hex4()?;
                                if !(0xdc00..0xe000).contains(&lo) {
                                    return Err(self.err("bad low surrogate"));
                                }
                                0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00)
                            } else {
                                hi
                            };
                            out.push(char::from_u32(code).ok_or_else(|| self.err("bad code"))?);
                        }
                        _ => return Err(self.err("bad escape")),
                    }
                }
                c if (c as u32) < 0x20 => return Err(self.err("raw control character")),
                c => out.push(c),
            }
        }
    }
}

#[test]
fn parser_accepts_valid_and_refuses_invalid_lines() {
    let o = parse(r#"{"event":"x","t_ms":12,"a":"q\"\\\n\u2028\ud83d\ude00","b":null,"c":1.5}"#)
        .unwrap();
    assert_eq!(o.name(), "x");
    assert_eq!(o.str("a"), "q\"\\\n\u{2028}\u{1f600}");
    assert_eq!(o.num("c"), 1.5);
    for bad in [
        "{\"a\":\"x\ny\"}",
        r#"{"a":"\x"}"#,
        r#"{"a":"\ud800"}"#,
        r#"{"a":1,}"#,
        r#"{"a":01}"#,
        r#"{"a":"x"} extra"#,
        r#"{"a":"x""#,
    ] {
        assert!(parse(bad).is_err(), "accepted {bad:?}");
    }
}
