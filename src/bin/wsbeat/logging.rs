//! Logging setup: a small stderr logger, one line per record whatever the message holds.
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
    let logger = Stderr::parse(&filter);
    log::set_max_level(logger.max_level());
    // Lives as long as the process. Only fails if a logger is already set, which nothing
    // else in this binary does.
    let _ = log::set_logger(Box::leak(Box::new(logger)));
}

/// A stderr logger with `RUST_LOG`-style directives (`level`, `target=level`, comma-separated;
/// the longest matching target prefix wins). A few lines instead of env_logger: on a device
/// the CLI is flash, and this is all it needs.
struct Stderr {
    default: log::LevelFilter,
    targets: Vec<(String, log::LevelFilter)>,
}

impl Stderr {
    fn parse(spec: &str) -> Stderr {
        let mut logger = Stderr {
            default: log::LevelFilter::Error,
            targets: Vec::new(),
        };
        for directive in spec.split(',').map(str::trim).filter(|d| !d.is_empty()) {
            match directive.split_once('=') {
                Some((target, level)) => {
                    if let Ok(level) = level.trim().parse() {
                        logger.targets.push((target.trim().to_string(), level));
                    }
                }
                None => match directive.parse() {
                    Ok(level) => logger.default = level,
                    // A bare target name means "everything from it".
                    Err(_) => logger
                        .targets
                        .push((directive.to_string(), log::LevelFilter::Trace)),
                },
            }
        }
        logger
    }

    fn max_level(&self) -> log::LevelFilter {
        self.targets
            .iter()
            .map(|(_, l)| *l)
            .fold(self.default, Ord::max)
    }

    fn level_for(&self, target: &str) -> log::LevelFilter {
        self.targets
            .iter()
            .filter(|(t, _)| target == t || target.starts_with(&format!("{t}::")))
            .max_by_key(|(t, _)| t.len())
            .map_or(self.default, |(_, l)| *l)
    }
}

impl log::Log for Stderr {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= self.level_for(metadata.target())
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let message = record.args().to_string();
        let line = format!(
            "[{:<5} {}] {}\n",
            record.level(),
            record.target(),
            one_line(&message)
        );
        // One write per record, so lines from the log and `--events -` never interleave.
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn flush(&self) {}
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
        let l = Stderr::parse("warn,wsbeat=debug,wsbeat::client=trace,tungstenite");
        assert_eq!(l.level_for("other"), log::LevelFilter::Warn);
        assert_eq!(l.level_for("wsbeat"), log::LevelFilter::Debug);
        assert_eq!(l.level_for("wsbeat::link"), log::LevelFilter::Debug);
        assert_eq!(l.level_for("wsbeat::client::open"), log::LevelFilter::Trace);
        assert_eq!(l.level_for("wsbeatx"), log::LevelFilter::Warn);
        assert_eq!(
            l.level_for("tungstenite::protocol"),
            log::LevelFilter::Trace
        );
        assert_eq!(l.max_level(), log::LevelFilter::Trace);
        assert_eq!(Stderr::parse("").level_for("x"), log::LevelFilter::Error);
        assert_eq!(
            Stderr::parse("info,bogus=loud").level_for("bogus"),
            log::LevelFilter::Info
        );
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
