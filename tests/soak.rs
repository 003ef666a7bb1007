//! Soak: thousands of reconnect cycles through mixed faults, then the process must be back
//! where it started: the same open descriptors, VmRSS within 2 MiB, and the live heap of the
//! client's thread (a counting allocator) back to its level.
//!
//! Each attempt meets the fault the request hook picks for its number, from a rotation of
//! ten: the server drops the connection after the handshake (FIN), closes with a code
//! (1000, 1001, 1011, 1012, 1013, 4000 in turn), sends garbage, echoes one message then closes
//! with 1001, resets the connection (RST); the port refuses; or the server accepts and never
//! answers the handshake (a `connect_timeout` of 100 ms). Every attempt's outcome is checked
//! against its fault, and every wait against its announced delay.
//!
//! ```sh
//! cargo test --test soak -- --nocapture                      # 300 cycles, a few seconds
//! cargo test --release --test soak -- --ignored --nocapture  # 5,000 cycles, about a minute
//! ```

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU8, Ordering::SeqCst};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use common::{refused_port, watchdog};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::CloseFrame;
use wsbeat::{Client, Config, DisconnectReason, Error, Event, Message};

// ---------------------------------------------------------------------------------------------
// Live heap bytes of the threads that opt in (the client's): allocations minus frees.

struct Counting;

static LIVE: AtomicI64 = AtomicI64::new(0);
thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

fn counting() -> bool {
    // `try_with`: the allocator also runs while thread-locals are torn down.
    COUNTING.try_with(Cell::get).unwrap_or(false)
}

// SAFETY: delegates every call to the system allocator unchanged; only counts bytes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if counting() {
            LIVE.fetch_add(layout.size() as i64, SeqCst);
        }
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if counting() {
            LIVE.fetch_sub(layout.size() as i64, SeqCst);
        }
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if counting() {
            LIVE.fetch_add(new_size as i64 - layout.size() as i64, SeqCst);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn rss_kib() -> i64 {
    std::fs::read_to_string("/proc/self/status")
        .expect("read /proc/self/status")
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS")
}

fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("read /proc/self/fd")
        .count()
}

// ---------------------------------------------------------------------------------------------
// Faults

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum Fault {
    /// Handshake, then close the TCP connection (FIN).
    Drop,
    /// Handshake, then a Close frame with the next code of `CLOSE_CODES`.
    Close,
    /// Handshake, then bytes that are no WebSocket frame.
    Garbage,
    /// Handshake, echo one message, then Close 1001.
    EchoThenClose,
    /// Handshake, then a reset (SO_LINGER 0).
    Reset,
    /// The port refuses (the hook points the attempt at a closed port).
    Refused,
    /// TCP accepted, the handshake never answered.
    Silent,
}

const ROTATION: [Fault; 10] = [
    Fault::Drop,
    Fault::Close,
    Fault::Garbage,
    Fault::Refused,
    Fault::EchoThenClose,
    Fault::Reset,
    Fault::Close,
    Fault::Drop,
    Fault::Garbage,
    Fault::Silent,
];
const CLOSE_CODES: [u16; 6] = [1000, 1001, 1011, 1012, 1013, 4000];
const CONNECT_TIMEOUT: Duration = Duration::from_millis(100);

fn fault_of(attempt: u64) -> Fault {
    ROTATION[(attempt as usize - 1) % ROTATION.len()]
}

/// The close code of the n-th `Fault::Close` attempt, so client and server agree.
fn close_code(attempt: u64) -> u16 {
    let closes_before = (1..attempt)
        .filter(|a| fault_of(*a) == Fault::Close)
        .count();
    CLOSE_CODES[closes_before % CLOSE_CODES.len()]
}

/// The fault server: one connection at a time (the client makes one at a time), no
/// per-connection thread and nothing recorded, so its own memory stays flat.
struct FaultServer {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FaultServer {
    fn start(fault: Arc<AtomicU8>, code: Arc<AtomicI64>) -> FaultServer {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = thread::Builder::new()
            .name("soak-server".into())
            .spawn(move || {
                while !flag.load(SeqCst) {
                    match listener.accept() {
                        Ok((tcp, _)) => {
                            let f = fault.load(SeqCst);
                            serve(tcp, f, code.load(SeqCst) as u16);
                        }
                        Err(_) => thread::sleep(Duration::from_millis(1)),
                    }
                }
            })
            .unwrap();
        FaultServer {
            port,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for FaultServer {
    fn drop(&mut self) {
        self.stop.store(true, SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads and discards until the client closes (or 1 s passes).
fn drain(tcp: &mut TcpStream) {
    let mut buf = [0u8; 4096];
    while let Ok(n) = tcp.read(&mut buf) {
        if n == 0 {
            break;
        }
    }
}

fn serve(tcp: TcpStream, fault: u8, code: u16) {
    let _ = tcp.set_nonblocking(false);
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(1)));
    let _ = tcp.set_nodelay(true);
    let mut tcp = tcp;
    if fault == Fault::Silent as u8 {
        drain(&mut tcp);
        return;
    }
    let Ok(mut ws) = tungstenite::accept(tcp) else {
        return;
    };
    let close = |ws: &mut tungstenite::WebSocket<TcpStream>, code: u16| {
        let _ = ws.close(Some(CloseFrame {
            code: CloseCode::from(code),
            reason: "soak".into(),
        }));
        // Until the client's reply (then tungstenite ends the connection) or an error.
        while ws.read().is_ok() {}
    };
    match fault {
        f if f == Fault::Drop as u8 => {}
        f if f == Fault::Close as u8 => close(&mut ws, code),
        f if f == Fault::Garbage as u8 => {
            let _ = ws
                .get_mut()
                .write_all(b"\xff\xff\xffHTTP/1.1 200 OK\r\n\r\n");
            drain(ws.get_mut());
        }
        f if f == Fault::EchoThenClose as u8 => {
            if let Ok(msg) = ws.read() {
                let _ = ws.send(msg);
            }
            close(&mut ws, 1001);
        }
        f if f == Fault::Reset as u8 => {
            let linger = nix::libc::linger {
                l_onoff: 1,
                l_linger: 0,
            };
            let _ = nix::sys::socket::setsockopt(
                ws.get_ref(),
                nix::sys::socket::sockopt::Linger,
                &linger,
            );
        }
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------------
// The soak

#[derive(Default, Debug)]
struct Tally {
    connects: u64,
    disconnects: u64,
    connect_failures: u64,
    echoes: u64,
}

struct Soak {
    client: Client,
    tally: Tally,
    /// The attempt whose outcome is awaited, and whether its echo came back.
    attempt: u64,
    echoed: bool,
    /// When the last link or attempt ended (its `Reconnecting` is queued with that event).
    ended_at: Instant,
    /// The last `Reconnecting` event: when its link or attempt ended, and the delay.
    scheduled: Option<(Instant, Duration)>,
    /// Link and attempt cycles ended so far.
    cycles: u64,
}

impl Soak {
    /// Runs until `cycles` more links or attempts have ended; stops right after one ended
    /// (no link open), so that measurements are taken in the same state every time.
    fn run(&mut self, cycles: u64) {
        let target = self.cycles + cycles;
        let end = Instant::now() + Duration::from_secs(600);
        while self.cycles < target {
            assert!(Instant::now() < end, "soak stuck: {:?}", self.tally);
            let Some(event) = self.client.poll(Duration::from_millis(50)) else {
                continue;
            };
            self.see(event);
        }
        // The `Reconnecting` that came with the last end is already queued: take it now, so
        // its delay is timed from when it was announced, not after a measurement.
        if let Some(event) = self.client.poll(Duration::ZERO) {
            assert!(matches!(event, Event::Reconnecting { .. }), "{event:?}");
            self.see(event);
        }
    }

    fn see(&mut self, event: Event) {
        let fault = fault_of(self.attempt.max(1));
        match event {
            Event::Connecting {
                attempt,
                at: started,
                ..
            } => {
                // Judged on the library's own instants (when the retry was due, when it
                // started), never on when this loop happened to see the events.
                if let Some((due, delay)) = self.scheduled.take() {
                    assert!(
                        started >= due,
                        "attempt {attempt} started {:?} before the end of its {delay:?} delay",
                        due - started
                    );
                }
                self.attempt = attempt;
                self.echoed = false;
            }
            Event::Connected { .. } => {
                assert!(
                    !matches!(fault, Fault::Refused | Fault::Silent),
                    "attempt {} ({fault:?}) connected",
                    self.attempt
                );
                self.tally.connects += 1;
                if fault == Fault::EchoThenClose {
                    let text = format!("soak {}", self.attempt);
                    self.client.send(Message::text(text)).unwrap();
                }
            }
            Event::Message(m) => {
                assert_eq!(m, Message::text(format!("soak {}", self.attempt)));
                self.echoed = true;
                self.tally.echoes += 1;
            }
            Event::Disconnected { reason, .. } => {
                let a = self.attempt;
                match (fault, &reason) {
                    (Fault::Drop, DisconnectReason::Io(_)) => {}
                    (Fault::Reset, DisconnectReason::Io(Error::Io(e))) => assert_eq!(
                        e.kind(),
                        std::io::ErrorKind::ConnectionReset,
                        "attempt {a}: {e}"
                    ),
                    (Fault::Close, DisconnectReason::ClosedByServer { code, .. }) => {
                        assert_eq!(*code, Some(close_code(a)), "attempt {a}")
                    }
                    (Fault::EchoThenClose, DisconnectReason::ClosedByServer { code, .. }) => {
                        assert_eq!(*code, Some(1001));
                        assert!(self.echoed, "attempt {a}: closed before the echo");
                    }
                    (Fault::Garbage, DisconnectReason::Protocol(_)) => {}
                    (f, r) => panic!("attempt {a} ({f:?}): disconnected with {r:?}"),
                }
                self.tally.disconnects += 1;
                self.cycles += 1;
                self.ended_at = Instant::now();
            }
            Event::ConnectFailed { attempt, error } => {
                match (fault, &error) {
                    (Fault::Refused, Error::Io(e))
                        if e.kind() == std::io::ErrorKind::ConnectionRefused => {}
                    (Fault::Silent, Error::ConnectTimeout(d)) => assert_eq!(*d, CONNECT_TIMEOUT),
                    (f, e) => panic!("attempt {attempt} ({f:?}): failed with {e:?}"),
                }
                self.tally.connect_failures += 1;
                self.cycles += 1;
                self.ended_at = Instant::now();
            }
            Event::Reconnecting { delay, at, .. } => self.scheduled = Some((at, delay)),
            Event::Ping { .. } | Event::Pong { .. } => {}
            other => panic!("attempt {}: unexpected {other:?}", self.attempt),
        }
    }
}

fn soak(cycles: u64) {
    common::init_logs();
    let fault = Arc::new(AtomicU8::new(Fault::Drop as u8));
    let code = Arc::new(AtomicI64::new(1000));
    let server = FaultServer::start(fault.clone(), code.clone());
    let url = format!("ws://127.0.0.1:{}/", server.port);
    let refused = format!("ws://127.0.0.1:{}/", refused_port());
    let mut cfg = Config::new(url.clone())
        .ping_interval(Duration::from_secs(5))
        .backoff(Duration::from_millis(1), Duration::from_millis(2))
        .min_uptime(Duration::from_secs(3600))
        .connect_timeout(CONNECT_TIMEOUT)
        .close_timeout(Duration::from_millis(500))
        .max_message_size(64 << 10)
        .seed(29);
    cfg.write_timeout = Duration::from_secs(1);
    let mut client = Client::new(cfg).unwrap();
    client.set_request_hook(move |req| {
        let f = fault_of(req.attempt);
        fault.store(f as u8, SeqCst);
        code.store(i64::from(close_code(req.attempt)), SeqCst);
        req.url = if f == Fault::Refused {
            refused.clone()
        } else {
            url.clone()
        };
    });
    COUNTING.with(|c| c.set(true));
    let mut soak = Soak {
        client,
        tally: Tally::default(),
        attempt: 0,
        echoed: false,
        ended_at: Instant::now(),
        scheduled: None,
        cycles: 0,
    };
    // Warm-up: every fault several times, so buffers, caches and allocator arenas have
    // their working size.
    soak.run(100);
    // The server has ended the last connection (it drains until the client closes).
    thread::sleep(Duration::from_millis(50));
    let (fds0, rss0, live0) = (fd_count(), rss_kib(), LIVE.load(SeqCst));
    let started = Instant::now();
    soak.run(cycles);
    let took = started.elapsed();
    thread::sleep(Duration::from_millis(50));
    let (fds1, rss1, live1) = (fd_count(), rss_kib(), LIVE.load(SeqCst));
    COUNTING.with(|c| c.set(false));
    let stats = soak.client.stats();
    eprintln!(
        "soak: {cycles} cycles in {:.1} s ({:.0} cycles/s) after 100 warm-up cycles; {:?}",
        took.as_secs_f64(),
        cycles as f64 / took.as_secs_f64(),
        soak.tally
    );
    eprintln!("soak: open fds {fds0} -> {fds1}");
    eprintln!("soak: VmRSS {rss0} -> {rss1} KiB ({:+} KiB)", rss1 - rss0);
    eprintln!(
        "soak: client-thread live heap {live0} -> {live1} bytes ({:+})",
        live1 - live0
    );
    eprintln!(
        "soak: client stats: {} attempts, {} connects, {} io, {} closed by server, {} protocol",
        stats.attempts,
        stats.connects,
        stats.io_errors,
        stats.closed_by_server,
        stats.protocol_errors
    );
    assert_eq!(fds1, fds0, "descriptors leaked");
    // Under qemu-user VmRSS is the emulator's: there the live heap is the memory figure.
    let under_qemu = std::env::var_os("CROSS_TEST_RUNNER").is_some();
    assert!(
        under_qemu || rss1 - rss0 <= 2048,
        "VmRSS grew {} KiB",
        rss1 - rss0
    );
    // Same state at both points (a link just ended); only a queue's capacity may differ.
    assert!(
        (live1 - live0).abs() <= 4096,
        "the client thread's live heap moved {} bytes",
        live1 - live0
    );
    // Every fault was met.
    assert!(soak.tally.echoes > 0 && soak.tally.connect_failures > 0);
    drop(soak);
    drop(server);
}

#[test]
fn short_soak_300_mixed_fault_cycles() {
    let _w = watchdog(Duration::from_secs(120), "short_soak");
    // Under qemu (cross tests) a third of the cycles: the same checks in emulated time.
    let cycles = if std::env::var_os("CROSS_TEST_RUNNER").is_some() {
        100
    } else {
        300
    };
    soak(cycles);
}

#[test]
#[ignore = "long soak: cargo test --release --test soak -- --ignored --nocapture"]
fn long_soak_5000_mixed_fault_cycles() {
    let _w = watchdog(Duration::from_secs(900), "long_soak");
    soak(5000);
}
