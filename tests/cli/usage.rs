//! Usage and configuration errors: exit 2, a first line naming the option, never a panic.
#![forbid(unsafe_code)]

use std::time::Duration;

use super::common::{refused_port, watchdog};
use super::harness::{command, run_to_exit};

fn refused_url() -> String {
    format!("ws://127.0.0.1:{}/", refused_port())
}

/// Runs wsbeat with `args`, expects exit 2 and a first stderr line starting with `first`.
fn expect_usage_error(args: &[&str], first: &str) {
    let (status, stderr) = run_to_exit(args);
    assert_eq!(status.code(), Some(2), "{args:?}: stderr:\n{stderr}");
    let line = stderr.lines().next().unwrap_or("");
    assert!(
        line.starts_with(first),
        "{args:?}: first line {line:?}, expected it to start with {first:?}"
    );
    assert!(!stderr.contains("panicked"), "{args:?} panicked:\n{stderr}");
}

#[test]
fn bad_options_exit_2_naming_the_option() {
    let _w = watchdog(
        Duration::from_secs(60),
        "bad_options_exit_2_naming_the_option",
    );
    let url = refused_url();
    let url = url.as_str();
    expect_usage_error(&["--bogus", url], "wsbeat: --bogus: unknown option");
    expect_usage_error(&["-x", url], "wsbeat: -x: unknown option");
    // A value given to a flag is refused, not dropped.
    expect_usage_error(&["--quiet=x", url], "wsbeat: --quiet: takes no value");
    expect_usage_error(
        &["--keep-open=1", url],
        "wsbeat: --keep-open: takes no value",
    );
    expect_usage_error(
        &["--ping-interval", "abc", url],
        "wsbeat: --ping-interval: invalid duration \"abc\"",
    );
    expect_usage_error(
        &["--pong-timeout", "5", url],
        "wsbeat: --pong-timeout: invalid duration \"5\": missing unit",
    );
    expect_usage_error(&[], "wsbeat: <URL>: missing");
    expect_usage_error(&["--max-retries", "2"], "wsbeat: <URL>: missing");
    expect_usage_error(
        &["http://127.0.0.1:1/"],
        "wsbeat: <URL>: scheme must be ws or wss",
    );
    expect_usage_error(&["not a url"], "wsbeat: <URL>: ");
    expect_usage_error(
        &["--max-missed", "0", url],
        "wsbeat: --max-missed: must be at least 1",
    );
    expect_usage_error(
        &["--ping-interval", "0ms", url],
        "wsbeat: --ping-interval: ",
    );
    expect_usage_error(
        &[url, "--max-missed"],
        "wsbeat: --max-missed: missing value",
    );
    expect_usage_error(
        &["--proxy", "socks5://proxy:1080", url],
        "wsbeat: --proxy: ",
    );
    expect_usage_error(
        &["--app-ping", "ping", url],
        "wsbeat: --app-ping: needs --app-pong",
    );
    expect_usage_error(&["--header", "no colon", url], "wsbeat: --header: ");
    expect_usage_error(&["--header", "Bad Name: x", url], "wsbeat: --header: ");
    expect_usage_error(
        &["--max-message-size", "lots", url],
        "wsbeat: --max-message-size: ",
    );
    expect_usage_error(&["--outbox", "0", url], "wsbeat: --outbox: ");
    expect_usage_error(
        &["--backoff-initial", "5s", "--backoff-max", "1s", url],
        "wsbeat: --backoff-max: must not be less than --backoff-initial",
    );
    expect_usage_error(
        &["--reconnect-spread", "soon", url],
        "wsbeat: --reconnect-spread: invalid duration \"soon\"",
    );
    expect_usage_error(
        &["--reconnect-spread", "10", url],
        "wsbeat: --reconnect-spread: invalid duration \"10\": missing unit",
    );
    expect_usage_error(
        &["--reconnect-spread", "721h", url],
        "wsbeat: --reconnect-spread: must be at most 30 days",
    );
    expect_usage_error(
        &["--backoff-strategy", "exponential", url],
        "wsbeat: --backoff-strategy: expected proportional, full or decorrelated",
    );
    expect_usage_error(
        &[url, "--reconnect-spread"],
        "wsbeat: --reconnect-spread: missing value",
    );
    expect_usage_error(
        &["--binary-stdout", "base64", url],
        "wsbeat: --binary-stdout: ",
    );
    expect_usage_error(
        &["--events", "/nonexistent-dir/events.jsonl", url],
        "wsbeat: --events: cannot open",
    );
    #[cfg(feature = "tls")]
    {
        expect_usage_error(
            &["--ca-file", "/nonexistent.pem", url],
            "wsbeat: --ca-file: cannot read",
        );
        expect_usage_error(
            &["--cert", "/nonexistent.pem", url],
            "wsbeat: --cert: needs --key",
        );
    }
}

/// A port that is no number from 1 to 65535 is a usage error naming the URL (or the proxy),
/// not a connect to port 80: `http::Uri` parses `:99999`, `:abc` and `:-1` and the library
/// once fell back to the default port when it could not read them as a `u16`.
#[test]
fn a_bad_port_exits_2_naming_the_url() {
    let _w = watchdog(Duration::from_secs(60), "a_bad_port_exits_2_naming_the_url");
    for port in ["99999", "abc", "-1", "0"] {
        expect_usage_error(
            &[&format!("ws://127.0.0.1:{port}/")],
            "wsbeat: <URL>: port must be a number from 1 to 65535",
        );
    }
    expect_usage_error(
        &["--proxy", "http://127.0.0.1:99999", &refused_url()],
        "wsbeat: --proxy: port must be a number from 1 to 65535",
    );
}

#[test]
fn help_and_version_exit_0() {
    let _w = watchdog(Duration::from_secs(30), "help_and_version_exit_0");
    let out = command(&["--help"]).output().expect("run --help");
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "Usage: wsbeat [OPTIONS] <URL>",
        "--ping-interval DUR",
        "[default: 20s]",
        "--max-retries N",
        "--reconnect-spread DUR",
        "--backoff-strategy S",
        "--keep-open",
        "--events PATH|-",
    ] {
        assert!(help.contains(needle), "--help lacks {needle:?}:\n{help}");
    }
    let out = command(&["--version"]).output().expect("run --version");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        format!("wsbeat {}", env!("CARGO_PKG_VERSION"))
    );
}

#[cfg(feature = "tls")]
#[test]
fn insecure_prints_a_warning() {
    let _w = watchdog(Duration::from_secs(30), "insecure_prints_a_warning");
    let url = refused_url().replace("ws://", "wss://");
    let (status, stderr) = run_to_exit(&["-q", "--insecure", "--max-retries", "0", &url]);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("warning: --insecure"), "{stderr}");
}
