//! The `--help` text. Its defaults come from the library's `Config::new`, so they cannot drift
//! from what the client really does.
#![forbid(unsafe_code)]

use crate::duration;

/// The `--help` text, with the library's defaults.
pub fn help() -> String {
    let c = wsbeat::Config::new("");
    let d = duration::format;
    let tls = if cfg!(feature = "tls") {
        ""
    } else {
        " (this build has no TLS)"
    };
    format!(
        "\
wsbeat {version}: a WebSocket client for scripts and devices that notices dead links and
reconnects. Each stdin line is sent as a text message; each text message received is written
to stdout as one line (binary messages as lowercase hex). Logs go to stderr.

Usage: wsbeat [OPTIONS] <URL>        URL: ws://host[:port]/path or wss://...

Heartbeat (a dead link is noticed ping-interval + max-missed x pong-timeout after the last byte):
      --ping-interval DUR     ping after this much silence [default: {ping}]
      --pong-timeout DUR      wait this long for any reply to a ping [default: {pong}]
      --max-missed N          unanswered pings that declare the link dead [default: {missed}]
      --app-ping TEXT         send this text message instead of Ping frames (needs --app-pong)
      --app-pong TEXT         the text reply that counts as a pong (needs --app-ping)
Reconnecting:
      --backoff-initial DUR   first delay after a failure [default: {b_init}]
      --backoff-max DUR       longest delay [default: {b_max}]
      --backoff-strategy S    how delays are drawn: proportional, full or decorrelated
                              [default: {strategy}]
      --reconnect-spread DUR  after a lost link (one that lasted --min-uptime) reconnect at a
                              random time within DUR and retry no faster than DUR, so a fleet
                              that lost one server returns spread out [default: {spread}]
      --min-uptime DUR        a link must last this long to reset the delay [default: {uptime}]
      --max-retries N         give up after N failed retries in a row [default: retry forever]
      --connect-timeout DUR   bound on TCP + TLS + upgrade [default: {connect}]
      --close-timeout DUR     wait this long for the server's Close reply [default: {close}]
      --no-network-watch      ignore the kernel's address, route and link changes (by default
                              a link whose own address, interface or route goes gets a ping
                              and is declared dead unless it is answered within {probe})
Request:
      --header 'Name: value'  extra header on the upgrade request (repeatable)
      --protocol NAME         offer this subprotocol (repeatable)
      --origin URL            send this Origin header
      --proxy URL             HTTP CONNECT proxy, http://[user:pass@]host:port
                              [default: none; http_proxy is not read]
TLS{tls}:
      --ca-file PEM           also trust this CA certificate (repeatable)
      --cert PEM --key PEM    client certificate and PKCS#8 key for mutual TLS
      --insecure              accept any certificate and host name (testing only)
Data:
      --max-message-size N    largest message in or out, bytes (64k, 1m) [default: {max_msg}]
      --outbox N              messages kept while disconnected [default: {outbox}]
      --delivery MODE         at-most-once, or at-least-once: a line is kept until a pong
                              proves the server read it, and sent again after a dead link
                              [default: at-most-once]
      --outbox-full POLICY    refuse (stop reading stdin until there is room) or drop-oldest
                              (drop the oldest waiting line, reported as `dropped`)
                              [default: refuse]
      --outbox-file PATH      keep the outbox in PATH across restarts and power loss (implies
                              at-least-once); restored lines go first [default: none]
      --outbox-sync WHEN      always (fsync before a line is accepted), a period such as 1s
                              (at most one fsync per period), or never [default: 1s]
      --binary-stdout MODE    hex or raw [default: hex]
      --keep-open             at end of stdin stay connected until SIGINT/SIGTERM
Output:
      --events PATH|-         lifecycle events as JSON lines to PATH (appended) or - (stderr)
      --stats-interval DUR    also write a `stats` event line this often (SIGUSR1 asks for
                              one at any time) [default: off]
  -q, --quiet                 warnings only (-qq: errors only)
  -v, --verbose               debug logs (-vv: trace); without -q/-v, RUST_LOG decides
                              [default: info]
  -h, --help                  print this help
  -V, --version               print the version

Durations: 250ms, 2s, 1m, 1h. SIGINT/SIGTERM or end of stdin: queued lines are sent, then a
Close (1000); a second signal exits at once. SIGUSR1: one `stats` event line (to --events, or
stderr without it). Under systemd (NOTIFY_SOCKET set): READY=1, STATUS=, WATCHDOG=1 and
STOPPING=1, see the README's \"Running on a device\".
Exit status: 0 clean close, 1 gave up, 2 usage or configuration error, 130 second signal.
",
        version = env!("CARGO_PKG_VERSION"),
        ping = d(c.heartbeat.ping_interval),
        pong = d(c.heartbeat.pong_timeout),
        missed = c.heartbeat.max_missed_pongs,
        b_init = d(c.backoff.initial),
        b_max = d(c.backoff.max),
        strategy = strategy_name(c.backoff.strategy),
        spread = d(c.backoff.first_spread),
        uptime = d(c.backoff.min_uptime),
        connect = d(c.connect_timeout),
        close = d(c.close_timeout),
        probe = d(c.network.probe_timeout),
        max_msg = c.max_message_size,
        outbox = c.outbox.max_messages,
    )
}

/// The `--backoff-strategy` spelling of `strategy`.
fn strategy_name(strategy: wsbeat::Jitter) -> &'static str {
    match strategy {
        wsbeat::Jitter::Proportional => "proportional",
        wsbeat::Jitter::Full => "full",
        wsbeat::Jitter::Decorrelated => "decorrelated",
        // `Jitter` is non-exhaustive; a new strategy gets its spelling with its option value.
        _ => "the library's",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::{parse, Command};
    use std::ffi::OsString;

    #[test]
    fn help_shows_library_defaults() {
        let h = help();
        assert!(h.contains("[default: 20s]"), "{h}");
        assert!(h.contains("[default: 1m]"), "{h}");
        assert!(h.contains("[default: decorrelated]"), "{h}");
        assert!(h.contains("[default: 10s]"), "{h}");
        // Every option the help names is one the parser knows (given a value when it wants
        // one, the next argument is taken as that value, so only "unknown option" is a miss).
        let mut named = 0;
        for word in h.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-')) {
            if !word.starts_with("--") || word.len() < 3 {
                continue;
            }
            named += 1;
            let argv = [word, "1s", "ws://h/"].map(OsString::from);
            if let Err(e) = parse(argv) {
                assert_ne!(e.problem, "unknown option", "--help names {word}");
            }
        }
        assert!(named > 30, "only {named} options found in --help");
        assert!(matches!(
            parse(["--stats-interval", "5s", "ws://h/"].map(OsString::from)),
            Ok(Command::Run(a)) if a.stats_interval == Some(std::time::Duration::from_secs(5))
        ));
    }
}
