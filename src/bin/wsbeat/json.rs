//! Just enough JSON to write one flat object per line: a string escaper and a line builder.
#![forbid(unsafe_code)]

use std::fmt::Write as _;

/// Appends `s` to `out` as a JSON string literal, quotes included.
///
/// Escapes `"` and `\`, every control character below U+0020 (short forms where JSON has
/// them, `\u00XX` otherwise), DEL, and U+2028/U+2029, which are valid JSON but end a line in
/// JavaScript and some log viewers. The input is a Rust `str`, so it is valid UTF-8 already and
/// everything else passes through unchanged: whatever the server sent, the line stays one line
/// of valid JSON.
pub fn push_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if c < '\u{20}' || c == '\u{7f}' || c == '\u{2028}' || c == '\u{2029}' => {
                // Writing to a String cannot fail.
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// One JSON object under construction; fields appear in the order they are added.
pub struct Line {
    buf: String,
}

impl Line {
    /// Starts `{"event":"<name>","t_ms":<t_ms>`.
    pub fn new(event: &str, t_ms: u128) -> Line {
        let mut buf = String::with_capacity(128);
        buf.push_str("{\"event\":");
        push_str(&mut buf, event);
        let _ = write!(buf, ",\"t_ms\":{t_ms}");
        Line { buf }
    }

    fn key(&mut self, key: &str) {
        self.buf.push(',');
        push_str(&mut self.buf, key);
        self.buf.push(':');
    }

    /// Adds a string field.
    pub fn str(mut self, key: &str, value: &str) -> Line {
        self.key(key);
        push_str(&mut self.buf, value);
        self
    }

    /// Adds a string field, or `null`.
    pub fn opt_str(self, key: &str, value: Option<&str>) -> Line {
        match value {
            Some(v) => self.str(key, v),
            None => self.null(key),
        }
    }

    /// Adds an integer field.
    pub fn int(mut self, key: &str, value: impl Into<u128>) -> Line {
        self.key(key);
        let _ = write!(self.buf, "{}", value.into());
        self
    }

    /// Adds an integer field, or `null`.
    pub fn opt_int(self, key: &str, value: Option<impl Into<u128>>) -> Line {
        match value {
            Some(v) => self.int(key, v),
            None => self.null(key),
        }
    }

    /// Adds milliseconds with microsecond precision (`0.123`), or `null`. Trailing zeros are
    /// trimmed so whole values read as integers (`5`).
    pub fn opt_ms(mut self, key: &str, value: Option<std::time::Duration>) -> Line {
        let Some(d) = value else {
            return self.null(key);
        };
        self.key(key);
        let micros = d.as_micros();
        let _ = write!(self.buf, "{}", micros / 1000);
        let frac = micros % 1000;
        if frac != 0 {
            let digits = format!("{frac:03}");
            let _ = write!(self.buf, ".{}", digits.trim_end_matches('0'));
        }
        self
    }

    /// Adds `null`.
    pub fn null(mut self, key: &str) -> Line {
        self.key(key);
        self.buf.push_str("null");
        self
    }

    /// Closes the object and adds the newline.
    pub fn finish(mut self) -> String {
        self.buf.push_str("}\n");
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn quoted(s: &str) -> String {
        let mut out = String::new();
        push_str(&mut out, s);
        out
    }

    #[test]
    fn plain_text_passes_through() {
        assert_eq!(quoted("hello, wörld ✓"), "\"hello, wörld ✓\"");
        assert_eq!(quoted(""), "\"\"");
    }

    #[test]
    fn quotes_and_backslashes_are_escaped() {
        assert_eq!(quoted(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(quoted(r#"\""#), r#""\\\"""#);
        assert_eq!(quoted(r"\u0000"), r#""\\u0000""#);
    }

    #[test]
    fn every_control_character_is_escaped() {
        for c in (0u32..0x20).chain([0x7f]) {
            let c = char::from_u32(c).unwrap();
            let out = quoted(&c.to_string());
            assert!(
                out.chars().all(|o| o >= ' ' && o != '\u{7f}'),
                "{c:?} -> {out}"
            );
            assert!(out.starts_with("\"\\") && out.ends_with('"'), "{out}");
        }
        assert_eq!(quoted("\0\u{1b}[31m"), "\"\\u0000\\u001b[31m\"");
        assert_eq!(quoted("a\nb\r\tc\u{8}\u{c}"), "\"a\\nb\\r\\tc\\b\\f\"");
    }

    #[test]
    fn line_and_paragraph_separators_are_escaped() {
        assert_eq!(quoted("a\u{2028}b\u{2029}c"), "\"a\\u2028b\\u2029c\"");
    }

    #[test]
    fn hostile_mix_stays_one_line_of_balanced_quotes() {
        let hostile = "\"}\n{\"event\":\"gave_up\"\\\u{0}\u{2028}\r\n\u{85}\u{feff}";
        let out = quoted(hostile);
        assert!(!out.contains('\n') && !out.contains('\r') && !out.contains('\u{2028}'));
        // Every quote inside is preceded by an odd run of backslashes.
        let inner = &out[1..out.len() - 1];
        let bytes = inner.as_bytes();
        for (i, &b) in bytes.iter().enumerate() {
            if b == b'"' {
                let run = bytes[..i].iter().rev().take_while(|&&c| c == b'\\').count();
                assert_eq!(run % 2, 1, "unescaped quote at {i} in {out}");
            }
        }
    }

    #[test]
    fn line_builds_a_flat_object() {
        let line = Line::new("pong", 1234)
            .int("seq", 7u64)
            .opt_ms("rtt_ms", Some(Duration::from_micros(1500)))
            .opt_str("protocol", None)
            .str("detail", "x\"y")
            .finish();
        assert_eq!(
            line,
            "{\"event\":\"pong\",\"t_ms\":1234,\"seq\":7,\"rtt_ms\":1.5,\"protocol\":null,\"detail\":\"x\\\"y\"}\n"
        );
    }

    #[test]
    fn milliseconds_keep_microseconds_and_trim_zeros() {
        let ms = |us: u64| {
            Line::new("e", 0)
                .opt_ms("v", Some(Duration::from_micros(us)))
                .finish()
        };
        assert!(ms(5_000).contains("\"v\":5}"));
        assert!(ms(123).contains("\"v\":0.123}"));
        assert!(ms(2_050).contains("\"v\":2.05}"));
        assert!(Line::new("e", 0)
            .opt_ms("v", None)
            .finish()
            .contains("\"v\":null"));
    }
}
