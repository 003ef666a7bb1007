//! Logging setup: env_logger on stderr, one line per record whatever the message holds.
#![forbid(unsafe_code)]

use std::borrow::Cow;
use std::io::Write;

/// `-q`/`-v` win over `RUST_LOG`, which wins over the default `info`.
pub fn init(verbosity: Option<i32>) {
    let filter = match verbosity {
        None => std::env::var("RUST_LOG").unwrap_or_else(|_| "info".to_string()),
        Some(v) if v <= -2 => "error".to_string(),
        Some(-1) => "warn".to_string(),
        Some(0) => "info".to_string(),
        // Our own and the library's debug lines, without tungstenite's.
        Some(1) => "info,wsbeat=debug".to_string(),
        Some(_) => "trace".to_string(),
    };
    env_logger::Builder::new()
        .parse_filters(&filter)
        .target(env_logger::Target::Stderr)
        .format(|buf, record| {
            let message = record.args().to_string();
            writeln!(
                buf,
                "[{:<5} {}] {}",
                record.level(),
                record.target(),
                one_line(&message)
            )
        })
        .init();
}

/// Escapes control characters and line separators. Log messages can carry text from the
/// server (a close reason); unescaped, a newline in it could forge a line that looks like an
/// `--events -` JSON line on the same stderr.
pub fn one_line(s: &str) -> Cow<'_, str> {
    let bad = |c: char| c.is_control() || c == '\u{2028}' || c == '\u{2029}';
    if !s.chars().any(bad) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if bad(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forged_event_line_stays_inside_the_log_line() {
        let reason = "bye\n{\"event\":\"gave_up\"}\r\u{2028}\u{1b}[2J";
        let line = one_line(reason);
        assert!(!line.contains('\n') && !line.contains('\r') && !line.contains('\u{1b}'));
        assert_eq!(line, "bye\\n{\"event\":\"gave_up\"}\\r\\u{2028}\\u{1b}[2J");
        assert!(matches!(one_line("plain ✓"), Cow::Borrowed(_)));
    }
}
