//! From parsed options to a library [`Config`], and from the library's config errors back to
//! the option the user typed.
#![forbid(unsafe_code)]

use wsbeat::{AppHeartbeat, Config, Error, Message};

use crate::args::{Args, UsageError};

/// Builds the client configuration. Checks the library cannot make (files, option pairs)
/// happen here; value checks are left to `Client::new`, whose errors [`config_error`] maps.
pub fn config(args: &Args) -> Result<Config, UsageError> {
    let mut c = Config::new(args.url.clone());
    // Only what the user gave: the environment's http_proxy is not read implicitly, so a
    // daemon's behaviour does not depend on the shell it was started from.
    c.proxy = args.proxy.clone();
    // On for the CLI (off by default in the library): a device's link whose address,
    // interface or route goes is known dead in the probe timeout, not the heartbeat bound.
    c.network.watch = !args.no_network_watch;
    if let Some(d) = args.ping_interval {
        c = c.ping_interval(d);
    }
    if let Some(d) = args.pong_timeout {
        c = c.pong_timeout(d);
    }
    if let Some(n) = args.max_missed {
        c = c.max_missed_pongs(n);
    }
    match (&args.app_ping, &args.app_pong) {
        (Some(ping), Some(pong)) => {
            c = c.app_heartbeat(AppHeartbeat::new(
                Message::text(ping.as_str()),
                Message::text(pong.as_str()),
            ))
        }
        (Some(_), None) => return Err(UsageError::new("--app-ping", "needs --app-pong too")),
        (None, Some(_)) => return Err(UsageError::new("--app-pong", "needs --app-ping too")),
        (None, None) => {}
    }
    if let Some(d) = args.backoff_initial {
        c.backoff.initial = d;
    }
    if let Some(d) = args.backoff_max {
        c.backoff.max = d;
    }
    if let Some(s) = args.backoff_strategy {
        c.backoff.strategy = s;
    }
    if let Some(d) = args.reconnect_spread {
        c.backoff.first_spread = d;
    }
    if let Some(d) = args.min_uptime {
        c = c.min_uptime(d);
    }
    if args.max_retries.is_some() {
        c = c.max_retries(args.max_retries);
    }
    if let Some(d) = args.connect_timeout {
        c = c.connect_timeout(d);
    }
    if let Some(d) = args.close_timeout {
        c = c.close_timeout(d);
    }
    for (name, value) in &args.headers {
        c = c.header(name.as_str(), value.as_str());
    }
    for p in &args.protocols {
        c = c.protocol(p.as_str());
    }
    c.origin = args.origin.clone();
    if let Some(n) = args.max_message_size {
        c = c.max_message_size(n);
    }
    if let Some(n) = args.outbox {
        c.outbox.max_messages = n;
    }
    if let Some(d) = args.delivery {
        c.delivery = d;
    }
    if let Some(w) = args.outbox_full {
        c.outbox.when_full = w;
    }
    if let Some(path) = &args.outbox_file {
        c.outbox.file = Some(path.into());
    }
    if let Some(sync) = args.outbox_sync {
        c.outbox.sync = sync;
    }
    tls(args, &mut c)?;
    Ok(c)
}

#[cfg(feature = "tls")]
fn tls(args: &Args, c: &mut Config) -> Result<(), UsageError> {
    let read = |option: &str, path: &str| {
        std::fs::read(path)
            .map_err(|e| UsageError::new(option, format!("cannot read {path:?}: {e}")))
    };
    for path in &args.ca_files {
        c.tls.extra_roots_pem.push(read("--ca-file", path)?);
    }
    match (&args.cert, &args.key) {
        (Some(cert), Some(key)) => {
            c.tls.identity = Some(wsbeat::ClientIdentity::Pem {
                cert: read("--cert", cert)?,
                key: read("--key", key)?,
            })
        }
        (Some(_), None) => return Err(UsageError::new("--cert", "needs --key too")),
        (None, Some(_)) => return Err(UsageError::new("--key", "needs --cert too")),
        (None, None) => {}
    }
    c.tls.danger_accept_invalid_certs = args.insecure;
    Ok(())
}

#[cfg(not(feature = "tls"))]
fn tls(args: &Args, _c: &mut Config) -> Result<(), UsageError> {
    let used = [
        ("--ca-file", !args.ca_files.is_empty()),
        ("--cert", args.cert.is_some()),
        ("--key", args.key.is_some()),
        ("--insecure", args.insecure),
    ];
    match used.iter().find(|(_, on)| *on) {
        Some((option, _)) => Err(UsageError::new(
            *option,
            "this wsbeat was built without TLS (cargo feature `tls`)",
        )),
        None => Ok(()),
    }
}

/// Names a library config field the way the user spelled it on the command line.
fn option_for(field: &str) -> &'static str {
    match field {
        "url" => "<URL>",
        "heartbeat.ping_interval" => "--ping-interval",
        "heartbeat.pong_timeout" => "--pong-timeout",
        "heartbeat.max_missed_pongs" => "--max-missed",
        "heartbeat.app_heartbeat" => "--app-ping/--app-pong",
        "backoff.initial" => "--backoff-initial",
        "backoff.max" => "--backoff-max",
        "backoff.first_spread" => "--reconnect-spread",
        "backoff.min_uptime" => "--min-uptime",
        "backoff.max_retries" => "--max-retries",
        "connect_timeout" => "--connect-timeout",
        "close_timeout" => "--close-timeout",
        "outbox.max_messages" => "--outbox",
        "outbox.file" => "--outbox-file",
        "outbox.sync" => "--outbox-sync",
        "max_message_size" | "max_frame_size" => "--max-message-size",
        "headers" => "--header",
        "protocols" => "--protocol",
        "origin" => "--origin",
        "proxy" => "--proxy",
        "tls.extra_roots_pem" => "--ca-file",
        "tls.identity" => "--cert/--key",
        _ => "",
    }
}

/// Turns an error from `Client::new` into a usage error naming the option where one fits.
pub fn config_error(e: &Error) -> UsageError {
    match e {
        Error::Config { field, problem } => match option_for(field) {
            "" => UsageError::new(format!("config `{field}`"), problem.as_str()),
            option => {
                // The library mentions its own field names ("must not be less than
                // backoff.initial"); the user knows the options.
                let problem = problem
                    .replace("backoff.initial", "--backoff-initial")
                    .replace("heartbeat.ping_interval", "--ping-interval");
                UsageError::new(option, problem)
            }
        },
        other => UsageError::new("config", other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::{parse, Command};
    use std::ffi::OsString;

    fn build(argv: &[&str]) -> Result<wsbeat::Client, String> {
        let Command::Run(args) = parse(argv.iter().map(OsString::from)).unwrap() else {
            panic!("not run");
        };
        let c = config(&args).map_err(|e| e.to_string())?;
        wsbeat::Client::new(c).map_err(|e| config_error(&e).to_string())
    }

    #[test]
    fn library_errors_name_cli_options() {
        let e = build(&["--max-missed", "0", "ws://h/"]).unwrap_err();
        assert!(e.starts_with("--max-missed: "), "{e}");
        let e = build(&["--ping-interval", "0s", "ws://h/"]).unwrap_err();
        assert!(e.starts_with("--ping-interval: "), "{e}");
        let e = build(&["http://h/"]).unwrap_err();
        assert!(e.starts_with("<URL>: scheme must be ws or wss"), "{e}");
        let e = build(&["--backoff-initial", "5s", "--backoff-max", "1s", "ws://h/"]).unwrap_err();
        assert_eq!(e, "--backoff-max: must not be less than --backoff-initial");
        let e = build(&["--reconnect-spread", "721h", "ws://h/"]).unwrap_err();
        assert_eq!(e, "--reconnect-spread: must be at most 30 days");
        let e = build(&["--outbox", "0", "ws://h/"]).unwrap_err();
        assert!(e.starts_with("--outbox: "), "{e}");
        let e = build(&["--header", "Bad Name: v", "ws://h/"]).unwrap_err();
        assert!(e.starts_with("--header: "), "{e}");
    }

    #[test]
    fn cli_only_checks() {
        let e = build(&["--proxy", "socks5://p:1080", "ws://h/"]).unwrap_err();
        assert!(e.starts_with("--proxy: "), "{e}");
        assert!(build(&["--proxy", "http://p:3128", "ws://h/"]).is_ok());
        let e = build(&["--app-ping", "ping", "ws://h/"]).unwrap_err();
        assert!(e.starts_with("--app-ping: "), "{e}");
    }

    #[test]
    fn the_network_watch_is_on_unless_turned_off() {
        let watch = |argv: &[&str]| {
            let Command::Run(args) = parse(argv.iter().map(OsString::from)).unwrap() else {
                panic!("not run");
            };
            config(&args).unwrap().network.watch
        };
        assert!(watch(&["ws://h/"]));
        assert!(!watch(&["--no-network-watch", "ws://h/"]));
    }

    #[test]
    fn defaults_build_a_client() {
        assert!(build(&["ws://127.0.0.1:9/"]).is_ok());
    }
}
