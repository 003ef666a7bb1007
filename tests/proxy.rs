//! Through an HTTP CONNECT proxy (the in-process `ConnectProxy`): `ws://` and `wss://` tunnels,
//! Basic proxy authentication from the proxy URL, refusals with their status (407, 502) and
//! the backoff after them, a proxy that never answers, and the opt-in `proxy_from_env`.

mod common;

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use common::drive::{for_span, is, ms, names, until};
use common::proxy::{base64, ConnectProxy, ProxyMode};
use common::{refused_port, watchdog, Mode, TestServer};
use wsbeat::{Client, Config, Error, Event, Jitter, Message};

fn config(url: &str) -> Config {
    let mut c = Config::new(url)
        .ping_interval(Duration::from_millis(300))
        .backoff(Duration::from_millis(200), Duration::from_millis(400))
        .connect_timeout(Duration::from_secs(1))
        .seed(5);
    // The 407 test counts attempts by the proportional policy's spacing.
    c.backoff.strategy = Jitter::Proportional;
    c
}

#[cfg(feature = "tls")]
fn tls_config(url: &str) -> Config {
    let mut c = config(url);
    c.tls = wsbeat::TlsConfig::default().add_root_pem(common::certs::certs().ca_pem.clone());
    c
}

/// Connects (first attempt), echoes a message, and sees a pong.
fn connect_echo_pong(client: &mut Client) {
    let (_, before) = until(client, Duration::from_secs(5), "connected", is("connected"));
    assert_eq!(names(&before), ["connecting"]);
    client.send(Message::text("via proxy")).unwrap();
    let (echo, _) = until(client, Duration::from_secs(5), "echo", is("message"));
    assert!(
        matches!(&echo.event, Event::Message(m) if m.as_text() == Some("via proxy")),
        "{:?}",
        echo.event
    );
    until(client, Duration::from_secs(5), "pong", is("pong"));
}

/// When the first `ConnectFailed` came, and its error.
fn first_failure(client: &mut Client) -> (Instant, Error) {
    let (failed, _) = until(
        client,
        Duration::from_secs(5),
        "connect_failed",
        is("connect_failed"),
    );
    match failed.event {
        Event::ConnectFailed { error, .. } => (failed.at, error),
        other => panic!("unexpected {other:?}"),
    }
}

fn assert_proxy_status(error: &Error, want: u16) {
    match error {
        Error::Proxy { status, detail } => {
            assert_eq!(*status, Some(want), "{detail}");
            assert!(error.to_string().contains(&want.to_string()), "{error}");
        }
        other => panic!("expected a proxy error {want}, got {other:?}"),
    }
}

#[test]
fn ws_through_the_proxy_names_the_target_and_reconnects_through_it() {
    common::init_logs();
    let _w = watchdog(Duration::from_secs(20), "ws_proxy");
    let server = TestServer::start(Mode::Echo);
    let proxy = ConnectProxy::start(ProxyMode::Open);
    let mut client = Client::new(config(&server.url()).proxy(proxy.url())).unwrap();
    connect_echo_pong(&mut client);
    let target = format!("127.0.0.1:{}", server.port());
    let reqs = proxy.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].line, format!("CONNECT {target} HTTP/1.1"));
    assert_eq!(reqs[0].header("host"), Some(target.as_str()));
    assert_eq!(reqs[0].header("proxy-authorization"), None);
    assert_eq!(proxy.tunnels(), 1);
    // The upgrade itself went through the tunnel, to the server.
    assert_eq!(server.handshakes(), 1);
    assert_eq!(
        server.request_headers()[0]
            .iter()
            .find(|(n, _)| n == "host")
            .map(|(_, v)| v.as_str()),
        Some(target.as_str())
    );

    // A lost link comes back through the proxy again.
    server.drop_all();
    let (_, before) = until(
        &mut client,
        Duration::from_secs(5),
        "reconnected",
        is("connected"),
    );
    assert_eq!(
        names(&before),
        ["disconnected", "reconnecting", "connecting"]
    );
    assert_eq!(proxy.tunnels(), 2);
    assert_eq!(proxy.requests().len(), 2);
}

#[cfg(feature = "tls")]
#[test]
fn wss_through_the_proxy_verifies_the_server_not_the_proxy() {
    use common::tls::TlsFront;
    common::init_logs();
    let _w = watchdog(Duration::from_secs(20), "wss_proxy");
    let server = TestServer::start(Mode::Echo);
    let front = TlsFront::normal(server.port());
    let proxy = ConnectProxy::start(ProxyMode::Open);
    let mut client = Client::new(tls_config(&front.url()).proxy(proxy.url())).unwrap();
    connect_echo_pong(&mut client);
    let reqs = proxy.requests();
    assert_eq!(
        reqs[0].line,
        format!("CONNECT localhost:{} HTTP/1.1", front.port())
    );
    assert_eq!(proxy.tunnels(), 1);
    assert_eq!(front.handshakes(), 1);

    // The certificate is still checked end to end: an untrusted one is refused through it.
    let mut cfg = config(&front.url()).proxy(proxy.url());
    cfg.tls = wsbeat::TlsConfig::default();
    let mut client = Client::new(cfg).unwrap();
    let (_, error) = first_failure(&mut client);
    assert!(
        matches!(&error, Error::Tls { detail, .. } if detail.starts_with("unknown certificate authority")),
        "{error:?}"
    );
    assert_eq!(proxy.tunnels(), 2);
}

#[test]
fn proxy_auth_from_the_proxy_url_is_sent_as_basic() {
    common::init_logs();
    let _w = watchdog(Duration::from_secs(20), "proxy_auth_ok");
    let server = TestServer::start(Mode::Echo);
    let proxy = ConnectProxy::start(ProxyMode::RequireAuth {
        user: "dev".into(),
        pass: "pr0xy:p@ss".into(),
    });
    // Reserved characters percent-encoded in the URL, decoded before encoding as Basic.
    let url = proxy.url_with_auth("dev", "pr0xy%3Ap%40ss");
    let mut client = Client::new(config(&server.url()).proxy(url)).unwrap();
    connect_echo_pong(&mut client);
    let expected = format!("Basic {}", base64(b"dev:pr0xy:p@ss"));
    assert_eq!(
        proxy.requests()[0].header("proxy-authorization"),
        Some(expected.as_str())
    );
    // Proxy credentials are for the proxy only: the server never sees them.
    for headers in server.request_headers() {
        assert!(
            headers
                .iter()
                .all(|(n, _)| n != "proxy-authorization" && n != "authorization"),
            "{headers:?}"
        );
    }
}

#[test]
fn proxy_auth_missing_or_wrong_is_a_407_that_follows_the_backoff() {
    common::init_logs();
    let _w = watchdog(Duration::from_secs(20), "proxy_407");
    let server = TestServer::start(Mode::Echo);
    let proxy = ConnectProxy::start(ProxyMode::RequireAuth {
        user: "dev".into(),
        pass: "right".into(),
    });
    // Wrong credentials first.
    let mut client =
        Client::new(config(&server.url()).proxy(proxy.url_with_auth("dev", "wrong"))).unwrap();
    let (_, error) = first_failure(&mut client);
    assert_proxy_status(&error, 407);

    // No credentials: 407 on every attempt, spaced by the backoff.
    let cfg = config(&server.url()).proxy(proxy.url());
    let floor = cfg.backoff.initial.mul_f64(1.0 - cfg.backoff.jitter);
    let mut client = Client::new(cfg).unwrap();
    let seen = for_span(&mut client, Duration::from_millis(1500));
    let mut attempts = 0;
    let mut scheduled: Option<(Instant, Duration)> = None;
    for s in &seen {
        match &s.event {
            Event::ConnectFailed { error, .. } => assert_proxy_status(error, 407),
            Event::Reconnecting { delay, .. } => {
                assert!(*delay >= floor, "delay {delay:?} under {floor:?}");
                scheduled = Some((s.at, *delay));
            }
            Event::Connecting { .. } => {
                attempts += 1;
                if let Some((at, delay)) = scheduled.take() {
                    let waited = ms(s.at, at);
                    assert!(
                        waited >= delay.as_secs_f64() * 1000.0 - 1.0,
                        "waited {waited:.1} ms, delay {delay:?}"
                    );
                }
            }
            Event::Connected { .. } => panic!("connected without proxy credentials"),
            _ => {}
        }
    }
    // 0, then 160-200, 320-400, 320-400, ... ms apart: 4 to 6 attempts in 1.5 s.
    assert!((4..=6).contains(&attempts), "{:?}", names(&seen));
    assert_eq!(server.accepted(), 0, "nothing got through");
    assert_eq!(proxy.tunnels(), 0);
    let req = &proxy.requests()[1];
    assert_eq!(req.header("proxy-authorization"), None);
}

#[test]
fn proxy_502_is_reported_with_its_status() {
    common::init_logs();
    let _w = watchdog(Duration::from_secs(20), "proxy_502");
    // A proxy that answers 502 outright.
    let server = TestServer::start(Mode::Echo);
    let proxy = ConnectProxy::start(ProxyMode::Status(502));
    let mut client = Client::new(config(&server.url()).proxy(proxy.url())).unwrap();
    let (_, error) = first_failure(&mut client);
    assert_proxy_status(&error, 502);
    eprintln!("proxy 502: {error}");
    let (next, _) = until(&mut client, Duration::from_secs(5), "next", |_| true);
    assert!(is("reconnecting")(&next.event), "{:?}", next.event);

    // And one that cannot reach the server (nothing listens there).
    let open = ConnectProxy::start(ProxyMode::Open);
    let url = format!("ws://127.0.0.1:{}/", refused_port());
    let mut client = Client::new(config(&url).proxy(open.url())).unwrap();
    let (_, error) = first_failure(&mut client);
    assert_proxy_status(&error, 502);
    assert_eq!(open.tunnels(), 0);
}

#[test]
fn silent_proxy_times_out_at_the_connect_timeout() {
    common::init_logs();
    let _w = watchdog(Duration::from_secs(20), "proxy_silent");
    let server = TestServer::start(Mode::Echo);
    let proxy = ConnectProxy::start(ProxyMode::Silent);
    let cfg = config(&server.url())
        .proxy(proxy.url())
        .connect_timeout(Duration::from_millis(500));
    let mut client = Client::new(cfg).unwrap();
    for round in 0..2 {
        let (connecting, _) = until(
            &mut client,
            Duration::from_secs(5),
            "connecting",
            is("connecting"),
        );
        let (failed, error) = first_failure(&mut client);
        // From the instant the library started the attempt (its deadline counts from there),
        // not from when this loop saw the event.
        let Event::Connecting { at: started, .. } = connecting.event else {
            unreachable!()
        };
        let took = ms(failed, started);
        assert!(
            (500.0..=600.0).contains(&took),
            "round {round}: timed out after {took:.1} ms (connect_timeout 500)"
        );
        assert!(matches!(error, Error::ConnectTimeout(_)), "{error:?}");
    }
    assert_eq!(proxy.requests().len(), 2, "the CONNECT was sent each time");
    assert_eq!(server.accepted(), 0);
}

/// The proxy variables, cleared for a test and restored afterwards. Holding it serializes the
/// tests that touch the environment.
struct ProxyEnv {
    saved: Vec<(&'static str, Option<String>)>,
    _lock: MutexGuard<'static, ()>,
}

const PROXY_VARS: [&str; 6] = [
    "http_proxy",
    "HTTP_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "no_proxy",
    "NO_PROXY",
];

impl ProxyEnv {
    fn clean() -> ProxyEnv {
        static ENV_LOCK: Mutex<()> = Mutex::new(());
        let lock = ENV_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let saved = PROXY_VARS
            .iter()
            .map(|&n| (n, std::env::var(n).ok()))
            .collect();
        for n in PROXY_VARS {
            std::env::remove_var(n);
        }
        ProxyEnv { saved, _lock: lock }
    }

    fn set(&self, name: &str, value: &str) {
        std::env::set_var(name, value);
    }
}

impl Drop for ProxyEnv {
    fn drop(&mut self) {
        for (n, v) in &self.saved {
            match v {
                Some(v) => std::env::set_var(n, v),
                None => std::env::remove_var(n),
            }
        }
    }
}

#[test]
fn proxy_from_env_picks_the_variable_for_the_scheme() {
    common::init_logs();
    let _w = watchdog(Duration::from_secs(20), "proxy_env");
    let env = ProxyEnv::clean();
    let server = TestServer::start(Mode::Echo);
    let proxy = ConnectProxy::start(ProxyMode::Open);

    // Nothing set: no proxy, and nothing read unless asked.
    assert_eq!(config(&server.url()).proxy_from_env().proxy, None);
    env.set("http_proxy", &proxy.url());
    assert_eq!(config(&server.url()).proxy, None, "opt-in only");

    // ws:// uses http_proxy.
    let cfg = config(&server.url()).proxy_from_env();
    assert_eq!(cfg.proxy.as_deref(), Some(proxy.url().as_str()));
    let mut client = Client::new(cfg).unwrap();
    connect_echo_pong(&mut client);
    assert_eq!(proxy.tunnels(), 1);

    // ... and not https_proxy; upper case works too.
    std::env::remove_var("http_proxy");
    env.set("HTTPS_PROXY", &proxy.url());
    assert_eq!(config(&server.url()).proxy_from_env().proxy, None);
    env.set("HTTP_PROXY", &proxy.url());
    assert_eq!(
        config(&server.url()).proxy_from_env().proxy.as_deref(),
        Some(proxy.url().as_str())
    );
    drop(env);
}

#[cfg(feature = "tls")]
#[test]
fn proxy_from_env_uses_https_proxy_for_wss() {
    use common::tls::TlsFront;
    common::init_logs();
    let _w = watchdog(Duration::from_secs(20), "proxy_env_wss");
    let env = ProxyEnv::clean();
    let server = TestServer::start(Mode::Echo);
    let front = TlsFront::normal(server.port());
    let proxy = ConnectProxy::start(ProxyMode::Open);
    env.set("http_proxy", "http://127.0.0.1:9");
    env.set("https_proxy", &proxy.url());
    let cfg = tls_config(&front.url()).proxy_from_env();
    assert_eq!(cfg.proxy.as_deref(), Some(proxy.url().as_str()));
    let mut client = Client::new(cfg).unwrap();
    connect_echo_pong(&mut client);
    assert_eq!(proxy.tunnels(), 1);
    assert_eq!(
        proxy.requests()[0].line,
        format!("CONNECT localhost:{} HTTP/1.1", front.port())
    );
}

#[test]
fn no_proxy_excludes_matching_hosts() {
    common::init_logs();
    let _w = watchdog(Duration::from_secs(20), "no_proxy");
    let env = ProxyEnv::clean();
    let server = TestServer::start(Mode::Echo);
    let proxy = ConnectProxy::start(ProxyMode::Open);
    env.set("http_proxy", &proxy.url());
    env.set("https_proxy", &proxy.url());
    let uses_proxy = |url: &str| config(url).proxy_from_env().proxy.is_some();

    env.set("no_proxy", "example.com, 127.0.0.1");
    assert!(!uses_proxy(&server.url()));
    let mut client = Client::new(config(&server.url()).proxy_from_env()).unwrap();
    connect_echo_pong(&mut client);
    assert_eq!(proxy.accepted(), 0, "went direct");

    // Host suffixes, with or without a leading dot; never a partial label.
    env.set("no_proxy", ".internal.example,plant.local");
    assert!(!uses_proxy("ws://gw.internal.example/"));
    assert!(!uses_proxy("ws://plant.local:8080/"));
    assert!(!uses_proxy("wss://a.b.plant.local/"));
    assert!(uses_proxy("ws://notplant.local/"));
    assert!(uses_proxy("ws://cloud.example/"));

    // `*` excludes everything; NO_PROXY (upper case) counts as well.
    std::env::remove_var("no_proxy");
    env.set("NO_PROXY", "*");
    assert!(!uses_proxy("ws://cloud.example/"));
    assert!(!uses_proxy(&server.url()));
    drop(env);
}
