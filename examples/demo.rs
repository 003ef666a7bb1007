//! The README's first command: `cargo run --example demo`.
//!
//! Starts its own loopback echo server, connects wsbeat to it, shows the heartbeat, freezes the
//! server (TCP stays open, nothing answers: a half-open link) so the missed pongs and the
//! detection at the documented bound are visible, keeps the server down so the backoff shows,
//! brings it back and reconnects, delivers what was queued offline, and closes cleanly.
//! Ends by itself in about 13 s. No network beyond 127.0.0.1.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use wsbeat::{Client, Config, Event, Message};

fn main() {
    let started = Instant::now();
    let say = |what: String| println!("[{:6.3}s] {what}", started.elapsed().as_secs_f64());

    let mut server = DemoServer::start(0);
    let port = server.addr.port();
    let config = Config::new(format!("ws://127.0.0.1:{port}/demo"))
        .ping_interval(Duration::from_millis(1000))
        .pong_timeout(Duration::from_millis(500))
        .max_missed_pongs(3)
        .backoff(Duration::from_millis(500), Duration::from_secs(2))
        .connect_timeout(Duration::from_secs(1));
    let bound = config.heartbeat.detection_bound();
    say(format!("demo server on 127.0.0.1:{port}"));
    say(format!(
        "heartbeat: ping after 1 s of silence, 500 ms pong timeout, 3 missed -> dead {} ms after the last byte",
        bound.as_millis()
    ));
    let mut client = Client::new(config).expect("valid config");

    // (when, what the script does) -- the client is polled in between.
    let mut script: Vec<(Duration, &str)> = vec![
        (Duration::from_millis(2600), "send"),
        (Duration::from_millis(3200), "freeze"),
        (Duration::from_millis(6300), "stop"),
        (Duration::from_millis(6800), "offline-send"),
        (Duration::from_millis(9000), "restart"),
        (Duration::from_millis(12000), "close"),
    ];
    script.reverse();
    let mut frozen_at = None;
    loop {
        let next = script.last().map(|(at, _)| *at);
        let wait = next.map_or(Duration::from_secs(1), |at| {
            at.saturating_sub(started.elapsed())
        });
        if let Some(event) = client.poll(wait) {
            match event {
                Event::Connecting { attempt, url, .. } => {
                    say(format!("connecting to {url} (attempt {attempt})"))
                }
                Event::Connected {
                    attempt, handshake, ..
                } => {
                    say(format!(
                        "connected (attempt {attempt}, handshake {:.1} ms)",
                        ms(handshake)
                    ));
                }
                Event::Message(Message::Text(t)) => say(format!("echo: {t}")),
                Event::Message(m) => say(format!("echo: {} bytes", m.len())),
                Event::Ping { seq } => say(format!("ping #{seq}")),
                Event::Pong { seq, rtt } => say(format!(
                    "pong #{seq}, rtt {:.2} ms",
                    rtt.map_or(f64::NAN, ms)
                )),
                Event::PongMissed { missed, max } => say(format!("missed pong {missed} of {max}")),
                Event::Disconnected {
                    reason,
                    unconfirmed,
                    ..
                } => {
                    let after = frozen_at.map(|t: Instant| {
                        format!(", {} ms after the freeze", t.elapsed().as_millis())
                    });
                    say(format!(
                        "DISCONNECTED: {reason}{} ({unconfirmed} sent messages unconfirmed)",
                        after.unwrap_or_default()
                    ));
                }
                Event::ConnectFailed { attempt, error } => {
                    say(format!("attempt {attempt} failed: {error}"))
                }
                Event::Reconnecting { attempt, delay, .. } => say(format!(
                    "reconnecting in {} ms (attempt {attempt})",
                    delay.as_millis()
                )),
                Event::GaveUp { attempts } => say(format!("gave up after {attempts} attempts")),
                Event::Closed { code } => {
                    say(format!(
                        "closed cleanly (code {code:?}); stats: {:?}",
                        client.stats()
                    ));
                    break;
                }
                other => say(format!("{other:?}")),
            }
            continue;
        }
        let Some((at, action)) = script.last().copied() else {
            continue;
        };
        if started.elapsed() < at {
            continue;
        }
        script.pop();
        match action {
            "send" => {
                say("sending two messages".into());
                let _ = client.send(Message::text("hello from the device"));
                let _ = client.send(Message::text("reading: 21.5 C"));
            }
            "freeze" => {
                say("-- freezing the server: TCP stays open, nothing is answered --".into());
                server.freeze();
                frozen_at = Some(Instant::now());
            }
            "stop" => {
                say("-- stopping the server: the port now refuses connections --".into());
                server.stop();
            }
            "offline-send" => {
                say(format!(
                    "sending while offline ({:?})",
                    client.ready_state()
                ));
                let _ = client.send(Message::text("queued while offline"));
                say(format!(
                    "outbox holds {} message(s)",
                    client.buffered_messages()
                ));
            }
            "restart" => {
                say("-- server back on the same port --".into());
                server = DemoServer::start(port);
            }
            _ => {
                say("closing".into());
                client.close();
            }
        }
    }
    server.stop();
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A minimal echo server that can freeze (stop reading and answering) and stop.
struct DemoServer {
    addr: SocketAddr,
    frozen: Arc<AtomicBool>,
    stopped: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl DemoServer {
    fn start(port: u16) -> DemoServer {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind 127.0.0.1");
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let addr = listener.local_addr().expect("local addr");
        let frozen = Arc::new(AtomicBool::new(false));
        let stopped = Arc::new(AtomicBool::new(false));
        let (f, s) = (frozen.clone(), stopped.clone());
        let accept = std::thread::spawn(move || {
            let mut conns = Vec::new();
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((tcp, _)) => {
                        let (f, s) = (f.clone(), s.clone());
                        conns.push(std::thread::spawn(move || serve(tcp, &f, &s)));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
            drop(listener);
            for c in conns {
                let _ = c.join();
            }
        });
        DemoServer {
            addr,
            frozen,
            stopped,
            accept: Some(accept),
        }
    }

    fn freeze(&self) {
        self.frozen.store(true, Ordering::Relaxed);
    }

    fn stop(&mut self) {
        self.stopped.store(true, Ordering::Relaxed);
        if let Some(a) = self.accept.take() {
            let _ = a.join();
        }
    }
}

fn serve(tcp: TcpStream, frozen: &AtomicBool, stopped: &AtomicBool) {
    let _ = tcp.set_nonblocking(false);
    let Ok(mut ws) = tungstenite::accept(tcp) else {
        return;
    };
    let _ = ws
        .get_ref()
        .set_read_timeout(Some(Duration::from_millis(20)));
    while !stopped.load(Ordering::Relaxed) {
        if frozen.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        match ws.read() {
            Ok(msg) if msg.is_text() || msg.is_binary() => {
                if ws.send(msg).is_err() {
                    return;
                }
            }
            Ok(_) => {
                let _ = ws.flush(); // sends the queued pong at once
            }
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
    }
}
