//! Logging setup: `env_logger` (default features off: no colour, no regex, no timestamps) with
//! a format of our own that keeps every record on one line whatever its message holds.
#![forbid(unsafe_code)]

use std::borrow::Cow;
use std::io::Write;

/// `-q`/`-v` win over `RUST_LOG`, which wins over the default `info`. `RUST_LOG` is
/// env_logger's syntax (`level`, `target=level`, comma-separated, `/text` to keep only
/// messages containing `text`: a substring, as the `regex` feature is off); an invalid
/// directive is reported on stderr with a warning and ignored.
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
    // Only fails if a logger is already set, which nothing else in this binary does.
    let _ = builder(&filter).try_init();
}

/// The logger for `filter`: `[LEVEL target] message`, one line per record. env_logger
/// formats a record into its own buffer and writes it with one `write`, so log lines and
/// `--events -` lines never interleave.
fn builder(filter: &str) -> env_logger::Builder {
    let mut b = env_logger::Builder::new();
    b.parse_filters(filter)
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
        });
    b
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
    fn directives_pick_the_longest_target_prefix() {
        let l = builder("warn,wsbeat=debug,wsbeat::client=trace,tungstenite").build();
        let on = |target: &str, level| {
            l.enabled(&log::Metadata::builder().target(target).level(level).build())
        };
        use log::{Level, Log};
        assert!(on("other", Level::Warn) && !on("other", Level::Info));
        assert!(on("wsbeat", Level::Debug) && !on("wsbeat", Level::Trace));
        assert!(on("wsbeat::link", Level::Debug) && !on("wsbeat::link", Level::Trace));
        assert!(on("wsbeat::client::open", Level::Trace));
        // env_logger matches plain string prefixes (the CLI's own subset matched whole path
        // segments): harmless, no crate in this binary starts with `wsbeat` but ours.
        assert!(on("wsbeatx", Level::Debug));
        assert!(!on("other", Level::Info));
        assert!(on("tungstenite::protocol", Level::Trace));
        assert_eq!(l.filter(), log::LevelFilter::Trace);
    }

    #[test]
    fn forged_event_line_stays_inside_the_log_line() {
        let reason = "bye\n{\"event\":\"gave_up\"}\r\u{2028}\u{1b}[2J";
        let line = one_line(reason);
        assert!(!line.contains('\n') && !line.contains('\r') && !line.contains('\u{1b}'));
        assert_eq!(line, "bye\\n{\"event\":\"gave_up\"}\\r\\u{2028}\\u{1b}[2J");
        assert!(matches!(one_line("plain ✓"), Cow::Borrowed(_)));
    }
}
