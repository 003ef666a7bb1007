//! The CLI's JSON event writer (`src/bin/wsbeat/json.rs`, included as is: it has no
//! crate-internal dependencies) with arbitrary strings, numbers and durations. Whatever the
//! server or the user put in a string, the output must be exactly one line holding one valid
//! JSON object whose strings decode back to the input, and `push_str` alone must give one
//! valid JSON string literal that decodes back to its input. Checked by a small strict
//! decoder below (RFC 8259: no raw control characters, only the defined escapes, surrogate
//! pairs complete), plus the writer's own promise: no raw DEL, U+2028 or U+2029.
#![no_main]

use std::time::Duration;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../src/bin/wsbeat/json.rs"]
mod json;

#[derive(Arbitrary, Debug)]
enum Field {
    Str(String, String),
    OptStr(String, Option<String>),
    Int(String, u64),
    OptInt(String, Option<u128>),
    Ms(String, Option<(u64, u32)>),
    Null(String),
}

#[derive(Arbitrary, Debug)]
struct Input {
    event: String,
    t_ms: u128,
    fields: Vec<Field>,
    lone: String,
}

/// A JSON value as the checker understands it: flat objects only, like the writer's.
#[derive(Debug, PartialEq)]
enum Value {
    Str(String),
    Num(String),
    Null,
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn expect(&mut self, b: u8) -> Result<(), String> {
        if self.peek() == Some(b) {
            self.i += 1;
            Ok(())
        } else {
            Err(format!("expected {:?} at {}", b as char, self.i))
        }
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let h = self.s.get(self.i..self.i + 4).ok_or("short \\u escape")?;
        let h = std::str::from_utf8(h).map_err(|_| "non-ASCII \\u escape")?;
        let v = u32::from_str_radix(h, 16).map_err(|_| format!("bad \\u escape {h:?}"))?;
        self.i += 4;
        Ok(v)
    }

    /// A string literal, decoded.
    fn string(&mut self) -> Result<String, String> {
        self.expect(b'"')?;
        let mut out = String::new();
        loop {
            let rest = std::str::from_utf8(&self.s[self.i..]).map_err(|_| "invalid UTF-8")?;
            let c = rest.chars().next().ok_or("unterminated string")?;
            self.i += c.len_utf8();
            match c {
                '"' => return Ok(out),
                '\\' => {
                    let e = self.peek().ok_or("dangling backslash")?;
                    self.i += 1;
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
                                self.expect(b'\\')?;
                                self.expect(b'u')?;
                                let lo = self.hex4()?;
                                if !(0xdc00..0xe000).contains(&lo) {
                                    return Err("lone high surrogate".into());
                                }
                                0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00)
                            } else if (0xdc00..0xe000).contains(&hi) {
                                return Err("lone low surrogate".into());
                            } else {
                                hi
                            };
                            out.push(char::from_u32(code).ok_or("bad code point")?);
                        }
                        other => return Err(format!("bad escape \\{}", other as char)),
                    }
                }
                c if c < ' ' => return Err(format!("raw control character {c:?}")),
                c => out.push(c),
            }
        }
    }

    /// A number (RFC 8259 grammar), as its text.
    fn number(&mut self) -> Result<String, String> {
        let start = self.i;
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        let digits = |p: &mut Self| {
            let from = p.i;
            while p.peek().is_some_and(|b| b.is_ascii_digit()) {
                p.i += 1;
            }
            p.i - from
        };
        let int_start = self.i;
        let n = digits(self);
        if n == 0 || (n > 1 && self.s[int_start] == b'0') {
            return Err(format!("bad integer part at {start}"));
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            if digits(self) == 0 {
                return Err(format!("bad fraction at {start}"));
            }
        }
        Ok(String::from_utf8(self.s[start..self.i].to_vec()).unwrap())
    }

    fn value(&mut self) -> Result<Value, String> {
        match self.peek() {
            Some(b'"') => self.string().map(Value::Str),
            Some(b'n') => {
                if self.s[self.i..].starts_with(b"null") {
                    self.i += 4;
                    Ok(Value::Null)
                } else {
                    Err("bad literal".into())
                }
            }
            _ => self.number().map(Value::Num),
        }
    }

    fn object(&mut self) -> Result<Vec<(String, Value)>, String> {
        self.expect(b'{')?;
        let mut fields = Vec::new();
        if self.peek() == Some(b'}') {
            self.i += 1;
            return Ok(fields);
        }
        loop {
            let key = self.string()?;
            self.expect(b':')?;
            fields.push((key, self.value()?));
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    return Ok(fields);
                }
                _ => return Err(format!("expected , or }} at {}", self.i)),
            }
        }
    }
}

/// The writer's promise on top of JSON: nothing that ends a line anywhere.
fn no_line_breakers(out: &str) {
    assert!(
        !out.contains(['\u{7f}', '\u{2028}', '\u{2029}', '\r']),
        "raw DEL/U+2028/U+2029/CR in {out:?}"
    );
}

/// What `opt_ms` writes for `d`: milliseconds with up to three decimals, zeros trimmed.
fn ms_text(d: Duration) -> String {
    let micros = d.as_micros();
    let frac = micros % 1000;
    if frac == 0 {
        format!("{}", micros / 1000)
    } else {
        format!(
            "{}.{}",
            micros / 1000,
            format!("{frac:03}").trim_end_matches('0')
        )
    }
}

fuzz_target!(|input: Input| {
    // push_str alone: one literal that decodes back to the input.
    let mut lit = String::new();
    json::push_str(&mut lit, &input.lone);
    no_line_breakers(&lit);
    assert!(!lit.contains('\n'));
    let mut p = Parser {
        s: lit.as_bytes(),
        i: 0,
    };
    assert_eq!(p.string().as_deref(), Ok(input.lone.as_str()), "{lit:?}");
    assert_eq!(p.i, lit.len(), "trailing bytes after the literal: {lit:?}");

    // A whole event line.
    let mut line = json::Line::new(&input.event, input.t_ms);
    let mut expected = vec![
        ("event".to_string(), Value::Str(input.event.clone())),
        ("t_ms".to_string(), Value::Num(input.t_ms.to_string())),
    ];
    for f in &input.fields {
        let (key, value) = match f {
            Field::Str(k, v) => {
                line = line.str(k, v);
                (k, Value::Str(v.clone()))
            }
            Field::OptStr(k, v) => {
                line = line.opt_str(k, v.as_deref());
                (k, v.clone().map_or(Value::Null, Value::Str))
            }
            Field::Int(k, v) => {
                line = line.int(k, *v);
                (k, Value::Num(v.to_string()))
            }
            Field::OptInt(k, v) => {
                line = line.opt_int(k, *v);
                (k, v.map_or(Value::Null, |n| Value::Num(n.to_string())))
            }
            Field::Ms(k, v) => {
                let d = v.map(|(s, n)| Duration::new(s % (1 << 40), n % 1_000_000_000));
                line = line.opt_ms(k, d);
                (k, d.map_or(Value::Null, |d| Value::Num(ms_text(d))))
            }
            Field::Null(k) => {
                line = line.null(k);
                (k, Value::Null)
            }
        };
        expected.push((key.clone(), value));
    }
    let out = line.finish();
    no_line_breakers(&out);
    let body = out.strip_suffix('\n').expect("ends with a newline");
    assert!(!body.contains('\n'), "more than one line: {out:?}");
    let mut p = Parser {
        s: body.as_bytes(),
        i: 0,
    };
    let fields = p.object().unwrap_or_else(|e| panic!("{e}: {out:?}"));
    assert_eq!(p.i, body.len(), "trailing bytes: {out:?}");
    assert_eq!(fields, expected, "{out:?}");
});
