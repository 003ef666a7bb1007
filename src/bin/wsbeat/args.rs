//! The command line, through `lexopt` (no dependencies, a few KB), into [`Args`]. Each option is
//! spelled once here (in `parse` for flags, `set_value` for options with a value), once in
//! `help.rs` and once where `settings.rs` uses it.
#![forbid(unsafe_code)]

use std::ffi::OsString;
use std::fmt;
use std::time::Duration;

use crate::duration;

/// What the user asked for.
pub enum Command {
    /// Connect and pump stdin/stdout.
    Run(Box<Args>),
    /// Print help and exit 0.
    Help,
    /// Print the version and exit 0.
    Version,
}

/// How binary messages reach stdout.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BinaryOut {
    /// One line of lowercase hex per message.
    #[default]
    Hex,
    /// The bytes as they are, no separator.
    Raw,
}

/// Parsed options. `None` means "the library's default".
#[derive(Debug, Default)]
pub struct Args {
    pub url: String,
    pub ping_interval: Option<Duration>,
    pub pong_timeout: Option<Duration>,
    pub max_missed: Option<u32>,
    pub app_ping: Option<String>,
    pub app_pong: Option<String>,
    pub backoff_initial: Option<Duration>,
    pub backoff_max: Option<Duration>,
    pub backoff_strategy: Option<wsbeat::Jitter>,
    pub reconnect_spread: Option<Duration>,
    pub min_uptime: Option<Duration>,
    pub max_retries: Option<u32>,
    pub connect_timeout: Option<Duration>,
    pub close_timeout: Option<Duration>,
    pub headers: Vec<(String, String)>,
    pub protocols: Vec<String>,
    pub origin: Option<String>,
    pub ca_files: Vec<String>,
    pub cert: Option<String>,
    pub key: Option<String>,
    pub insecure: bool,
    pub proxy: Option<String>,
    pub max_message_size: Option<usize>,
    pub outbox: Option<usize>,
    pub delivery: Option<wsbeat::Delivery>,
    pub outbox_full: Option<wsbeat::WhenFull>,
    pub outbox_file: Option<String>,
    pub outbox_sync: Option<wsbeat::OutboxSync>,
    pub events: Option<String>,
    pub keep_open: bool,
    /// `--no-network-watch`: do not subscribe to the kernel's network reports.
    pub no_network_watch: bool,
    pub binary_stdout: BinaryOut,
    /// `--stats-interval`: a `stats` event line this often; `None`: only on SIGUSR1.
    pub stats_interval: Option<Duration>,
    /// `-v` count minus `-q` count; `None` when neither was given (then `RUST_LOG` decides).
    pub verbosity: Option<i32>,
}

/// A usage or configuration mistake. `Display` gives `<option>: <problem>`, which `main`
/// prints after `wsbeat: ` as the first line on stderr.
#[derive(Debug, PartialEq, Eq)]
pub struct UsageError {
    pub option: String,
    pub problem: String,
}

impl UsageError {
    /// A mistake in `option` (e.g. `--ping-interval` or `<URL>`).
    pub fn new(option: impl Into<String>, problem: impl Into<String>) -> UsageError {
        UsageError {
            option: option.into(),
            problem: problem.into(),
        }
    }
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.option, self.problem)
    }
}

/// Parses the arguments after the program name. Left to right, like getopt: the first
/// mistake is the one reported, and `--help` or `--version` stops parsing where it stands.
pub fn parse(argv: impl IntoIterator<Item = OsString>) -> Result<Command, UsageError> {
    use lexopt::prelude::*;
    let mut args = Args::default();
    let mut positional: Vec<String> = Vec::new();
    let mut parser = lexopt::Parser::from_args(argv);
    while let Some(arg) = parser.next().map_err(usage)? {
        let name = match arg {
            Short('h') | Long("help") => return Ok(Command::Help),
            Short('V') | Long("version") => return Ok(Command::Version),
            Short('q') | Long("quiet") => {
                *args.verbosity.get_or_insert(0) -= 1;
                continue;
            }
            Short('v') | Long("verbose") => {
                *args.verbosity.get_or_insert(0) += 1;
                continue;
            }
            Long("insecure") => {
                args.insecure = true;
                continue;
            }
            Long("keep-open") => {
                args.keep_open = true;
                continue;
            }
            Long("no-network-watch") => {
                args.no_network_watch = true;
                continue;
            }
            Value(v) => {
                positional.push(v.string().map_err(usage)?);
                continue;
            }
            Short(c) => return Err(UsageError::new(format!("-{c}"), "unknown option")),
            Long(name) => format!("--{name}"),
        };
        // Only options that take a value are left: an unknown one is reported before its
        // value is looked for, so `--bogus` at the end is "unknown", not "missing value".
        if !is_value_option(&name) {
            return Err(UsageError::new(name, "unknown option"));
        }
        let value = parser.value().map_err(usage)?.string().map_err(usage)?;
        set_value(&mut args, &name, value)?;
    }
    match positional.len() {
        0 => Err(UsageError::new("<URL>", "missing")),
        1 => {
            args.url = positional.remove(0);
            Ok(Command::Run(Box::new(args)))
        }
        _ => Err(UsageError::new(
            format!("{:?}", positional[1]),
            "unexpected argument (only one <URL>)",
        )),
    }
}

/// lexopt's errors in this CLI's one-line `<option>: <problem>` form.
fn usage(e: lexopt::Error) -> UsageError {
    match e {
        lexopt::Error::MissingValue { option } => {
            UsageError::new(option.unwrap_or_default(), "missing value")
        }
        // A flag given a value (`--quiet=x`, `--keep-open=yes`).
        lexopt::Error::UnexpectedValue { option, .. } => UsageError::new(option, "takes no value"),
        lexopt::Error::NonUnicodeValue(a) => {
            UsageError::new(format!("{a:?}"), "argument is not valid UTF-8")
        }
        lexopt::Error::UnexpectedOption(o) => UsageError::new(o, "unknown option"),
        other => UsageError::new("arguments", other.to_string()),
    }
}

/// Whether `name` is an option that takes a value: exactly the names [`set_value`] knows.
fn is_value_option(name: &str) -> bool {
    // Probing with an empty value only asks "known?": an unknown name is the one error that
    // says "unknown option"; any other answer (a value error included) means known.
    let mut probe = Args::default();
    !matches!(set_value(&mut probe, name, String::new()), Err(e) if e.problem == UNKNOWN)
}

/// The problem reported for an option nobody knows.
const UNKNOWN: &str = "unknown option";

fn set_value(args: &mut Args, name: &str, value: String) -> Result<(), UsageError> {
    let dur = |v: &str| duration::parse(v).map_err(|e| UsageError::new(name, e));
    let count = |v: &str| {
        v.parse::<u32>()
            .map_err(|_| UsageError::new(name, format!("invalid number {v:?}")))
    };
    match name {
        "--ping-interval" => args.ping_interval = Some(dur(&value)?),
        "--pong-timeout" => args.pong_timeout = Some(dur(&value)?),
        "--max-missed" => args.max_missed = Some(count(&value)?),
        "--app-ping" => args.app_ping = Some(value),
        "--app-pong" => args.app_pong = Some(value),
        "--backoff-initial" => args.backoff_initial = Some(dur(&value)?),
        "--backoff-max" => args.backoff_max = Some(dur(&value)?),
        "--backoff-strategy" => {
            args.backoff_strategy = Some(match value.as_str() {
                "proportional" => wsbeat::Jitter::Proportional,
                "full" => wsbeat::Jitter::Full,
                "decorrelated" => wsbeat::Jitter::Decorrelated,
                _ => {
                    return Err(UsageError::new(
                        name,
                        format!("expected proportional, full or decorrelated, got {value:?}"),
                    ))
                }
            })
        }
        "--reconnect-spread" => args.reconnect_spread = Some(dur(&value)?),
        "--min-uptime" => args.min_uptime = Some(dur(&value)?),
        "--max-retries" => args.max_retries = Some(count(&value)?),
        "--connect-timeout" => args.connect_timeout = Some(dur(&value)?),
        "--close-timeout" => args.close_timeout = Some(dur(&value)?),
        "--header" => {
            let Some((n, v)) = value.split_once(':') else {
                return Err(UsageError::new(
                    name,
                    format!("expected 'Name: value', got {value:?}"),
                ));
            };
            args.headers
                .push((n.trim().to_string(), v.trim().to_string()));
        }
        "--protocol" => args.protocols.push(value),
        "--origin" => args.origin = Some(value),
        "--ca-file" => args.ca_files.push(value),
        "--cert" => args.cert = Some(value),
        "--key" => args.key = Some(value),
        "--proxy" => args.proxy = Some(value),
        "--max-message-size" => args.max_message_size = Some(parse_size(name, &value)?),
        "--outbox" => {
            args.outbox = Some(
                value
                    .parse()
                    .map_err(|_| UsageError::new(name, format!("invalid number {value:?}")))?,
            )
        }
        "--delivery" => {
            args.delivery = Some(match value.as_str() {
                "at-most-once" => wsbeat::Delivery::AtMostOnce,
                "at-least-once" => wsbeat::Delivery::AtLeastOnce,
                _ => {
                    return Err(UsageError::new(
                        name,
                        format!("expected at-most-once or at-least-once, got {value:?}"),
                    ))
                }
            })
        }
        "--outbox-full" => {
            args.outbox_full = Some(match value.as_str() {
                "refuse" => wsbeat::WhenFull::Refuse,
                "drop-oldest" => wsbeat::WhenFull::DropOldest,
                _ => {
                    return Err(UsageError::new(
                        name,
                        format!("expected refuse or drop-oldest, got {value:?}"),
                    ))
                }
            })
        }
        "--outbox-file" => args.outbox_file = Some(value),
        "--outbox-sync" => {
            args.outbox_sync = Some(match value.as_str() {
                "always" => wsbeat::OutboxSync::Always,
                "never" => wsbeat::OutboxSync::Never,
                _ => wsbeat::OutboxSync::Every(dur(&value)?),
            })
        }
        "--events" => args.events = Some(value),
        "--binary-stdout" => {
            args.binary_stdout = match value.as_str() {
                "hex" => BinaryOut::Hex,
                "raw" => BinaryOut::Raw,
                _ => {
                    return Err(UsageError::new(
                        name,
                        format!("expected hex or raw, got {value:?}"),
                    ))
                }
            }
        }
        "--stats-interval" => args.stats_interval = Some(dur(&value)?),
        _ => return Err(UsageError::new(name, UNKNOWN)),
    }
    Ok(())
}

/// Bytes, optionally with a binary `k` or `m` suffix (`65536`, `64k`, `1m`).
fn parse_size(name: &str, value: &str) -> Result<usize, UsageError> {
    let bad = || {
        UsageError::new(
            name,
            format!("invalid size {value:?} (e.g. 65536, 64k, 1m)"),
        )
    };
    let lower = value.to_ascii_lowercase();
    let (digits, unit) = match lower.strip_suffix('k') {
        Some(d) => (d, 1 << 10),
        None => match lower.strip_suffix('m') {
            Some(d) => (d, 1 << 20),
            None => (lower.as_str(), 1),
        },
    };
    let n: usize = digits.parse().map_err(|_| bad())?;
    n.checked_mul(unit).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(argv: &[&str]) -> Result<Args, UsageError> {
        match parse(argv.iter().map(OsString::from))? {
            Command::Run(a) => Ok(*a),
            _ => panic!("not a run command"),
        }
    }

    fn err(argv: &[&str]) -> String {
        run(argv).unwrap_err().to_string()
    }

    #[test]
    fn parses_values_in_both_spellings() {
        let a = run(&[
            "--ping-interval",
            "300ms",
            "--pong-timeout=2s",
            "--header",
            "X-Id: a:b",
            "--header=Y:z",
            "-qq",
            "-v",
            "ws://h/",
        ])
        .unwrap();
        assert_eq!(a.ping_interval, Some(Duration::from_millis(300)));
        assert_eq!(a.pong_timeout, Some(Duration::from_secs(2)));
        assert_eq!(
            a.headers,
            vec![("X-Id".into(), "a:b".into()), ("Y".into(), "z".into())]
        );
        assert_eq!(a.verbosity, Some(-1));
        assert_eq!(a.url, "ws://h/");
    }

    #[test]
    fn errors_name_the_option() {
        assert_eq!(
            err(&["--ping-interval", "abc", "ws://h/"]),
            "--ping-interval: invalid duration \"abc\" (expected e.g. 250ms, 2s, 1m, 1h)"
        );
        assert!(err(&["--bogus", "ws://h/"]).starts_with("--bogus: unknown option"));
        assert!(err(&["-x", "ws://h/"]).starts_with("-x: unknown option"));
        assert!(err(&["ws://h/", "--max-missed"]).starts_with("--max-missed: missing value"));
        assert!(err(&["--max-missed", "many", "ws://h/"]).starts_with("--max-missed: invalid"));
        assert!(err(&["--keep-open=yes", "ws://h/"]).starts_with("--keep-open: takes no value"));
        assert_eq!(err(&["--quiet=x", "ws://h/"]), "--quiet: takes no value");
        assert_eq!(err(&["ws://h/", "--bogus"]), "--bogus: unknown option");
        assert_eq!(err(&["-qx", "ws://h/"]), "-x: unknown option");
        assert!(err(&["--header", "novalue", "ws://h/"]).starts_with("--header: expected"));
        assert!(err(&["--reconnect-spread", "10", "ws://h/"])
            .starts_with("--reconnect-spread: invalid duration"));
        assert!(err(&["--backoff-strategy", "equal", "ws://h/"])
            .starts_with("--backoff-strategy: expected proportional, full or decorrelated"));
        assert!(err(&[]).starts_with("<URL>: missing"));
        assert!(err(&["ws://a/", "ws://b/"]).contains("unexpected argument"));
    }

    #[test]
    fn backoff_strategy_and_spread_parse() {
        let a = run(&[
            "--backoff-strategy",
            "full",
            "--reconnect-spread=0s",
            "ws://h/",
        ])
        .unwrap();
        assert_eq!(a.backoff_strategy, Some(wsbeat::Jitter::Full));
        assert_eq!(a.reconnect_spread, Some(Duration::ZERO));
        let a = run(&["--backoff-strategy=proportional", "ws://h/"]).unwrap();
        assert_eq!(a.backoff_strategy, Some(wsbeat::Jitter::Proportional));
        assert_eq!(a.reconnect_spread, None);
    }

    #[test]
    fn sizes_take_binary_suffixes() {
        assert_eq!(parse_size("--m", "65536"), Ok(65536));
        assert_eq!(parse_size("--m", "64k"), Ok(65536));
        assert_eq!(parse_size("--m", "1M"), Ok(1 << 20));
        assert!(parse_size("--m", "1g").is_err());
        assert!(parse_size("--m", "-1").is_err());
    }

    #[test]
    fn double_dash_ends_options() {
        assert_eq!(run(&["--", "-weird-url"]).unwrap().url, "-weird-url");
    }
}
