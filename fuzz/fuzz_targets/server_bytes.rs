//! Bytes from a hostile server, through wsbeat's real read path.
//!
//! wsbeat has no public hook to feed it bytes, so this target uses the public API as a device
//! would: a tiny server thread on 127.0.0.1 answers the client's upgrade and then writes the
//! fuzz input, and a `Client` polls until the link ends. Slower than an in-memory stream, but
//! it runs wsbeat's own code (its HTTP upgrade parser, the metered stream, the frame loop,
//! heartbeat bookkeeping, close handling, the outbox) and not only tungstenite's.
//!
//! The first input byte picks the variant:
//! - bits 0-1, what the server writes: 0 or 1, a valid `101` reply, then the rest of the
//!   input as frames; 2, the rest of the input *as* the upgrade reply (wsbeat's `httparse`
//!   path); 3, a valid `101` status line and headers, then the rest of the input as more
//!   headers, the blank line and frames.
//! - bit 2: `max_message_size` 64 bytes instead of 1 MiB (limits hit early);
//! - bit 3: an application heartbeat (text "ping"/"pong") instead of Ping frames;
//! - bit 4: the client sends a message as soon as it is connected (its write path and the
//!   outbox run while the input is read).
//!
//! After writing, the server half-closes (FIN) and reads until the client leaves, so every
//! run ends: the input is finite. The client must report `Disconnected` or `ConnectFailed`
//! (a `GaveUp`/`Closed` never comes without them) within 5 s, never panic, and never
//! allocate more than `-rss_limit_mb` allows.
#![no_main]

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, TcpListener, TcpStream};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use wsbeat::{AppHeartbeat, Client, Config, Event, Message};

struct Job {
    variant: u8,
    bytes: Vec<u8>,
}

struct Server {
    port: u16,
    jobs: Mutex<Sender<Job>>,
    done: Mutex<Receiver<()>>,
}

fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local_addr").port();
        let (jobs_tx, jobs_rx) = mpsc::channel::<Job>();
        let (done_tx, done_rx) = mpsc::channel();
        thread::spawn(move || {
            for job in jobs_rx {
                if let Ok((tcp, _)) = listener.accept() {
                    serve(tcp, &job);
                }
                let _ = done_tx.send(());
            }
        });
        Server {
            port,
            jobs: Mutex::new(jobs_tx),
            done: Mutex::new(done_rx),
        }
    })
}

/// Reads the client's request head (at most 16 KiB) and returns its Sec-WebSocket-Key.
fn read_request(tcp: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tcp.read(&mut buf).ok()?;
        if n == 0 || head.len() > 16 << 10 {
            return None;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&head);
    text.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("sec-websocket-key")
            .then(|| value.trim().to_string())
    })
}

fn serve(mut tcp: TcpStream, job: &Job) {
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = tcp.set_write_timeout(Some(Duration::from_secs(5)));
    let Some(key) = read_request(&mut tcp) else {
        return;
    };
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    let head = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {accept}\r\n"
    );
    let mut out = Vec::with_capacity(head.len() + job.bytes.len() + 2);
    match job.variant & 3 {
        2 => {}
        3 => out.extend_from_slice(head.as_bytes()),
        _ => {
            out.extend_from_slice(head.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }
    out.extend_from_slice(&job.bytes);
    // The client may stop reading early (a protocol error): a failed write is fine.
    let _ = tcp.write_all(&out);
    let _ = tcp.shutdown(Shutdown::Write);
    let mut sink = [0u8; 4096];
    while let Ok(n) = tcp.read(&mut sink) {
        if n == 0 {
            break;
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&variant, bytes)) = data.split_first() else {
        return;
    };
    let server = server();
    let mut cfg = Config::new(format!("ws://127.0.0.1:{}/fuzz", server.port))
        .connect_timeout(Duration::from_secs(2))
        .max_retries(Some(0))
        .seed(1);
    if variant & 4 != 0 {
        cfg = cfg.max_message_size(64);
    }
    if variant & 8 != 0 {
        cfg = cfg.app_heartbeat(AppHeartbeat::new(
            Message::text("ping"),
            Message::text("pong"),
        ));
    }
    let mut client = Client::new(cfg).expect("a valid config");
    server
        .jobs
        .lock()
        .unwrap()
        .send(Job {
            variant,
            bytes: bytes.to_vec(),
        })
        .expect("server thread alive");
    let end = Instant::now() + Duration::from_secs(5);
    loop {
        assert!(Instant::now() < end, "the link did not end within 5 s");
        match client.poll(Duration::from_millis(100)) {
            Some(Event::Connected { .. }) if variant & 16 != 0 => {
                let _ = client.send(Message::binary(vec![0xab; 100]));
            }
            Some(Event::Disconnected { reason, .. }) => {
                let _ = reason.to_string();
                break;
            }
            Some(Event::ConnectFailed { error, .. }) => {
                let _ = error.to_string();
                break;
            }
            Some(Event::GaveUp { .. }) | Some(Event::Closed { .. }) => {
                panic!("stopped without a Disconnected or ConnectFailed")
            }
            _ => {}
        }
    }
    let _ = client.stats();
    let _ = client.take_unsent();
    drop(client);
    // The server has seen the client leave before the next input.
    let _ = server
        .done
        .lock()
        .unwrap()
        .recv_timeout(Duration::from_secs(10));
});
