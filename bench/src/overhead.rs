//! Throughput on loopback: wsbeat (heartbeat on) against a bare tungstenite loop, same server.
//!
//! - echo: send one message, wait for its echo, repeat (request/response latency bound);
//! - stream: send 1 KiB messages for a fixed time, count what the server received.
//!
//! Each rep opens a fresh connection per client (handshakes untimed) and warms up; then the
//! clients take turns in short blocks (A B B A A B ...), so that the background load of a
//! shared machine hits both alike. The median over reps is reported.

use std::net::TcpStream;
use std::time::{Duration, Instant};

use tungstenite::protocol::WebSocketConfig;
use tungstenite::{Message as Wire, WebSocket};
use wsbeat::{Client, Config, Event, Message};

use crate::procfs;
use std::sync::atomic::Ordering::SeqCst;

use crate::server::{ConnStats, Mode, Server};

/// Which client runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Who {
    /// wsbeat's `Client`, ping interval 1 s, poll after every send.
    Wsbeat,
    /// tungstenite's `WebSocket` over a `TcpStream` with TCP_NODELAY, default config;
    /// `send()` (write and flush) per message.
    Bare,
    /// The same, streaming with `write()` per message and one `flush()` per millisecond of
    /// the producer's clock (tungstenite writes out by itself past its 128 KiB write buffer):
    /// a hand-coalesced bare loop, the second reference for streaming.
    BareBuffered,
    /// Diagnostic: tungstenite with wsbeat's `WebSocketConfig` (its default read buffer,
    /// write buffer 0).
    BareWsbeatConfig,
    /// Diagnostic: wsbeat polling only every 64th message while streaming.
    WsbeatPollEvery64,
    /// Diagnostic: wsbeat with `read_buffer_size` of this many KiB (tungstenite zero-fills
    /// that much before each read, and reads at most that much per call).
    WsbeatReadBuf(ReadBufKib),
}

/// Counts the calling thread's heap allocations (set by the binary that has the counting
/// allocator): (read the count, switch counting on or off).
pub static ALLOC_PROBE: std::sync::OnceLock<AllocProbe> = std::sync::OnceLock::new();

/// (read the calling thread's (allocations, bytes), switch its counting on or off).
pub type AllocProbe = (fn() -> (u64, u64), fn(bool));

fn thread_allocs() -> u64 {
    ALLOC_PROBE.get().map(|(count, _)| count().0).unwrap_or(0)
}

/// The read buffer sizes the diagnostics compare, in KiB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadBufKib {
    K8,
    K16,
    K24,
    K32,
    K64,
    K128,
}

impl ReadBufKib {
    pub const ALL: [ReadBufKib; 6] = [
        Self::K8,
        Self::K16,
        Self::K24,
        Self::K32,
        Self::K64,
        Self::K128,
    ];

    pub fn bytes(self) -> usize {
        self.kib() << 10
    }

    pub fn kib(self) -> usize {
        match self {
            Self::K8 => 8,
            Self::K16 => 16,
            Self::K24 => 24,
            Self::K32 => 32,
            Self::K64 => 64,
            Self::K128 => 128,
        }
    }
}

impl Who {
    pub fn label(self) -> &'static str {
        match self {
            Who::Wsbeat => "wsbeat",
            Who::Bare => "bare tungstenite",
            Who::BareBuffered => "bare tungstenite, write() + flush() every 1 ms",
            Who::BareWsbeatConfig => "bare tungstenite, wsbeat's WebSocketConfig",
            Who::WsbeatPollEvery64 => "wsbeat, poll(0) every 64th send",
            Who::WsbeatReadBuf(k) => match k {
                ReadBufKib::K8 => "wsbeat, read_buffer_size 8 KiB",
                ReadBufKib::K16 => "wsbeat, read_buffer_size 16 KiB",
                ReadBufKib::K24 => "wsbeat, read_buffer_size 24 KiB",
                ReadBufKib::K32 => "wsbeat, read_buffer_size 32 KiB",
                ReadBufKib::K64 => "wsbeat, read_buffer_size 64 KiB",
                ReadBufKib::K128 => "wsbeat, read_buffer_size 128 KiB",
            },
        }
    }
}

/// One workload.
#[derive(Clone, Copy, Debug)]
pub enum Case {
    Echo { size: usize, count: u64 },
    Stream { size: usize, secs: f64 },
}

impl Case {
    pub fn label(&self) -> String {
        match *self {
            Case::Echo { size, count } => format!("echo {} x{count}", size_label(size)),
            Case::Stream { size, secs } => format!("stream {} for {secs} s", size_label(size)),
        }
    }
}

pub fn size_label(size: usize) -> String {
    if size >= 1024 && size % 1024 == 0 {
        format!("{} KiB", size / 1024)
    } else {
        format!("{size} B")
    }
}

/// What one run measured.
#[derive(Clone, Copy, Debug, Default)]
pub struct Run {
    pub msgs_per_s: f64,
    /// CPU time of the client's thread per message, microseconds (insensitive to other load
    /// on the machine, unlike msg/s).
    pub client_cpu_us: f64,
    /// Heap allocations on the client's thread per message.
    pub allocs_per_msg: f64,
    /// CPU time of the server's connection thread / wall time.
    pub server_busy: f64,
    /// Heartbeat pings the server answered during the timed part.
    pub pings: u64,
    /// The client thread's involuntary context switches per message (on the shared CPU, each
    /// is a turn of the server's thread).
    pub preempted_per_msg: f64,
    /// Socket write calls per message sent (wsbeat: `Stats::write_calls`; bare: counted by a
    /// wrapper around its `TcpStream`).
    pub writes_per_msg: f64,
}

/// A `TcpStream` that counts its `write` calls.
pub struct CountingStream {
    inner: TcpStream,
    pub writes: u64,
}

impl std::io::Read for CountingStream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf)
    }
}

impl std::io::Write for CountingStream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.writes += 1;
        self.inner.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

const WSBEAT_PING: Duration = Duration::from_secs(1);

enum Conn {
    Bare(Box<WebSocket<CountingStream>>),
    /// A bare loop that flushes once per millisecond; the instant of its last flush.
    BareBuffered(Box<WebSocket<CountingStream>>, Instant),
    Wsbeat(Box<Client>),
}

fn connect(server: &Server, who: Who) -> Result<Conn, String> {
    match who {
        Who::Bare | Who::BareBuffered | Who::BareWsbeatConfig => {
            let stream = TcpStream::connect(server.addr).map_err(|e| e.to_string())?;
            stream.set_nodelay(true).map_err(|e| e.to_string())?;
            let config = (who == Who::BareWsbeatConfig).then(|| {
                WebSocketConfig::default()
                    .read_buffer_size(Config::new("ws://h/").read_buffer_size)
                    .write_buffer_size(0)
                    .max_write_buffer_size((1 << 20) + 1024)
                    .max_message_size(Some(1 << 20))
                    .max_frame_size(Some(1 << 20))
            });
            let stream = CountingStream {
                inner: stream,
                writes: 0,
            };
            let (ws, _) = tungstenite::client::client_with_config(server.url(), stream, config)
                .map_err(|e| format!("handshake: {e}"))?;
            Ok(if who == Who::BareBuffered {
                Conn::BareBuffered(Box::new(ws), Instant::now())
            } else {
                Conn::Bare(Box::new(ws))
            })
        }
        Who::Wsbeat | Who::WsbeatPollEvery64 | Who::WsbeatReadBuf(_) => {
            let mut config = Config::new(server.url())
                .ping_interval(WSBEAT_PING)
                .pong_timeout(Duration::from_secs(1))
                .max_missed_pongs(3)
                .max_retries(Some(0));
            if let Who::WsbeatReadBuf(k) = who {
                config.read_buffer_size = k.bytes();
            }
            let mut client = Client::new(config).map_err(|e| e.to_string())?;
            let end = Instant::now() + Duration::from_secs(10);
            while Instant::now() < end {
                match client.poll(Duration::from_millis(200)) {
                    Some(Event::Connected { .. }) => return Ok(Conn::Wsbeat(Box::new(client))),
                    Some(Event::ConnectFailed { error, .. }) => {
                        return Err(format!("connect: {error}"))
                    }
                    Some(Event::GaveUp { .. }) => return Err("gave up".into()),
                    _ => {}
                }
            }
            Err("no Connected within 10 s".into())
        }
    }
}

fn payload(size: usize) -> Vec<u8> {
    (0..size).map(|i| b'a' + (i % 26) as u8).collect()
}

impl Conn {
    /// Socket write calls so far.
    fn writes(&self) -> u64 {
        match self {
            Conn::Bare(ws) | Conn::BareBuffered(ws, _) => ws.get_ref().writes,
            Conn::Wsbeat(client) => client.stats().write_calls,
        }
    }

    /// Sends one message and waits for its echo.
    fn echo_once(&mut self, data: &[u8]) -> Result<(), String> {
        match self {
            Conn::Bare(ws) | Conn::BareBuffered(ws, _) => {
                ws.send(Wire::binary(data.to_vec()))
                    .map_err(|e| e.to_string())?;
                loop {
                    match ws.read().map_err(|e| e.to_string())? {
                        Wire::Binary(b) if b.len() == data.len() => return Ok(()),
                        Wire::Binary(_) | Wire::Text(_) => return Err("wrong echo".into()),
                        _ => {}
                    }
                }
            }
            Conn::Wsbeat(client) => {
                client
                    .send(Message::binary(data.to_vec()))
                    .map_err(|e| format!("send: {e}"))?;
                loop {
                    match client.poll(Duration::from_secs(5)) {
                        Some(Event::Message(m)) if m.len() == data.len() => return Ok(()),
                        Some(Event::Message(_)) => return Err("wrong echo".into()),
                        Some(Event::Disconnected { reason, .. }) => {
                            return Err(format!("disconnected: {reason}"))
                        }
                        Some(_) => {}
                        None => return Err("no echo within 5 s".into()),
                    }
                }
            }
        }
    }

    /// Sends one message without waiting for anything. `now` is the producer loop's own
    /// reading of the clock (the loop checks it against its end anyway).
    fn send_one(
        &mut self,
        data: &[u8],
        n: u64,
        poll_every: u64,
        now: Instant,
    ) -> Result<(), String> {
        match self {
            Conn::Bare(ws) => ws
                .send(Wire::binary(data.to_vec()))
                .map_err(|e| e.to_string()),
            Conn::BareBuffered(ws, last_flush) => {
                ws.write(Wire::binary(data.to_vec()))
                    .map_err(|e| e.to_string())?;
                if now.saturating_duration_since(*last_flush) >= Duration::from_millis(1) {
                    *last_flush = now;
                    ws.flush().map_err(|e| e.to_string())?;
                }
                Ok(())
            }
            Conn::Wsbeat(client) => {
                let mut msg = Message::binary(data.to_vec());
                loop {
                    match client.send(msg) {
                        Ok(()) => break,
                        Err(e) => {
                            // Outbox full while a write is stalled: let the client work.
                            msg = e.into_message();
                            if client.is_stopped() {
                                return Err("client stopped".into());
                            }
                            let _ = client.poll(Duration::from_millis(1));
                        }
                    }
                }
                // The documented pattern for a producer in a tight loop: poll when the client
                // has something due (a heartbeat deadline, buffered input, queued output),
                // rather than after every message. (`WsbeatPollEvery64` polls on a count.)
                let due = if poll_every == 1 {
                    client.next_wakeup().is_some_and(|t| t <= now)
                } else {
                    n % poll_every == 0
                };
                if due {
                    while let Some(ev) = client.poll(Duration::ZERO) {
                        if let Event::Disconnected { reason, .. } = ev {
                            return Err(format!("disconnected: {reason}"));
                        }
                    }
                }
                Ok(())
            }
        }
    }

    fn close(self) {
        match self {
            Conn::Bare(mut ws) | Conn::BareBuffered(mut ws, _) => {
                let _ = ws.close(None);
                let _ = ws
                    .get_ref()
                    .inner
                    .set_read_timeout(Some(Duration::from_secs(2)));
                while ws.read().is_ok() {}
            }
            Conn::Wsbeat(mut client) => {
                client.close();
                let end = Instant::now() + Duration::from_secs(3);
                while !client.is_stopped() && Instant::now() < end {
                    let _ = client.poll(Duration::from_millis(200));
                }
            }
        }
    }
}

/// Tallies of one client over the blocks of a rep.
#[derive(Default)]
struct Tally {
    msgs: u64,
    secs: f64,
    client_cpu_ns: u64,
    allocs: u64,
    server_cpu_ns: u64,
    pings: u64,
    involuntary: u64,
    sent: u64,
    writes: u64,
}

/// One rep: every client in `whos` connects (fresh connections, handshakes untimed), warms
/// up, then they take turns in `blocks` blocks each (order A B / B A alternating, starting
/// reversed on odd reps), so that background load hits them alike. Returns one [`Run`] per
/// client: messages per second over its blocks.
pub fn run_rep(
    server: &Server,
    whos: &[Who],
    case: Case,
    blocks: u32,
    rep: usize,
) -> Result<Vec<Run>, String> {
    server.set_mode(match case {
        Case::Echo { .. } => Mode::Echo,
        Case::Stream { .. } => Mode::Sink,
    });
    let mut conns = Vec::new();
    for &who in whos {
        let conn = connect(server, who)?;
        let stats = server.last_conn().ok_or("server saw no connection")?;
        conns.push((who, conn, stats));
    }
    let mut tallies: Vec<Tally> = whos.iter().map(|_| Tally::default()).collect();
    let me = procfs::gettid();
    if let Some((_, on)) = ALLOC_PROBE.get() {
        on(true);
    }
    let result = (|| -> Result<(), String> {
        let data = payload(match case {
            Case::Echo { size, .. } | Case::Stream { size, .. } => size,
        });
        let mut sent = vec![0u64; conns.len()];
        // Warm-up.
        for (i, (who, conn, _)) in conns.iter_mut().enumerate() {
            for _ in 0..100 {
                match case {
                    Case::Echo { .. } => conn.echo_once(&data)?,
                    Case::Stream { .. } => {
                        sent[i] += 1;
                        conn.send_one(&data, sent[i], poll_every(*who), Instant::now())?
                    }
                }
            }
        }
        for b in 0..blocks as usize {
            let mut order: Vec<usize> = (0..conns.len()).collect();
            if (b + rep) % 2 == 1 {
                order.reverse();
            }
            for i in order {
                let (who, conn, stats) = &mut conns[i];
                let tid = stats.tid.load(SeqCst);
                let r0 = stats.received.load(SeqCst);
                let p0 = stats.pings.load(SeqCst);
                let c0 = procfs::thread_sample(tid).cpu_ns;
                let s0 = procfs::thread_sample(me);
                let m0 = s0.cpu_ns;
                let a0 = thread_allocs();
                let w0 = conn.writes();
                let sent0 = sent[i];
                let t0 = Instant::now();
                let msgs = match case {
                    Case::Echo { count, .. } => {
                        let n = count / u64::from(blocks);
                        for _ in 0..n {
                            conn.echo_once(&data)?;
                        }
                        n
                    }
                    Case::Stream { secs, .. } => {
                        let end = t0 + Duration::from_secs_f64(secs / f64::from(blocks));
                        loop {
                            let now = Instant::now();
                            if now >= end {
                                break;
                            }
                            sent[i] += 1;
                            conn.send_one(&data, sent[i], poll_every(*who), now)?;
                        }
                        stats.received.load(SeqCst) - r0
                    }
                };
                let t = &mut tallies[i];
                t.secs += t0.elapsed().as_secs_f64();
                t.writes += conn.writes() - w0;
                t.sent += match case {
                    Case::Echo { .. } => msgs,
                    Case::Stream { .. } => sent[i] - sent0,
                };
                t.allocs += thread_allocs() - a0;
                let s1 = procfs::thread_sample(me);
                t.client_cpu_ns += s1.cpu_ns.saturating_sub(m0);
                t.involuntary += s1.involuntary.saturating_sub(s0.involuntary);
                t.msgs += msgs;
                t.server_cpu_ns += procfs::thread_sample(tid).cpu_ns.saturating_sub(c0);
                t.pings += stats.pings.load(SeqCst) - p0;
                if let Case::Stream { .. } = case {
                    // Untimed: let the server read what is still in flight, so that the next
                    // block (maybe another client's) does not compete with that.
                    drain(stats, sent[i], conn);
                }
            }
        }
        Ok(())
    })();
    if let Some((_, on)) = ALLOC_PROBE.get() {
        on(false);
    }
    for (_, conn, _) in conns {
        conn.close();
    }
    server.wait_idle(Duration::from_secs(5));
    result?;
    Ok(tallies
        .iter()
        .map(|t| Run {
            msgs_per_s: t.msgs as f64 / t.secs,
            client_cpu_us: t.client_cpu_ns as f64 / 1e3 / t.msgs.max(1) as f64,
            allocs_per_msg: t.allocs as f64 / t.msgs.max(1) as f64,
            server_busy: t.server_cpu_ns as f64 / 1e9 / t.secs,
            pings: t.pings,
            preempted_per_msg: t.involuntary as f64 / t.msgs.max(1) as f64,
            writes_per_msg: t.writes as f64 / t.sent.max(1) as f64,
        })
        .collect())
}

fn poll_every(who: Who) -> u64 {
    if who == Who::WsbeatPollEvery64 {
        64
    } else {
        1
    }
}

/// Waits (at most 2 s) until the server has received all `sent` messages of this connection.
fn drain(stats: &ConnStats, sent: u64, conn: &mut Conn) {
    if let Conn::BareBuffered(ws, _) = conn {
        let _ = ws.flush();
    }
    let end = Instant::now() + Duration::from_secs(2);
    while stats.received.load(SeqCst) < sent && Instant::now() < end {
        if let Conn::Wsbeat(client) = conn {
            let _ = client.poll(Duration::from_millis(1));
        } else {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
}

/// Diagnostic: `count` wsbeat echo round trips of `size` bytes with every allocation on this
/// thread recorded (`tracing` switches the backtrace capture of the counting allocator).
pub fn traced_echo(count: u64, size: usize, tracing: fn(bool)) -> Result<(), String> {
    let (_, counting) = ALLOC_PROBE.get().ok_or("no allocation probe")?;
    let server = Server::start(Mode::Echo).map_err(|e| e.to_string())?;
    let mut conn = connect(&server, Who::Wsbeat)?;
    let data = payload(size);
    for _ in 0..20 {
        conn.echo_once(&data)?;
    }
    counting(true);
    tracing(true);
    let result = (0..count).try_for_each(|_| conn.echo_once(&data));
    tracing(false);
    counting(false);
    conn.close();
    result
}

/// For profilers: `who` runs `case` over and over for `secs` seconds, nothing else.
/// Returns the medians of msg/s, client CPU µs per message and allocations per message.
pub fn profile(who: Who, case: Case, secs: f64) -> Result<(f64, f64, f64), String> {
    let server = Server::start(Mode::Echo).map_err(|e| e.to_string())?;
    // The placement of the table's runs (see `run_overhead`).
    if crate::procfs::pin_thread(&[crate::procfs::CLIENT_CPU]) {
        server.pin_connections(crate::procfs::SERVER_CPU);
    }
    let end = Instant::now() + Duration::from_secs_f64(secs);
    let mut runs = Vec::new();
    while Instant::now() < end {
        runs.push(run_rep(&server, &[who], case, 1, 0)?[0]);
    }
    let m = |f: fn(&Run) -> f64| median(&runs.iter().map(f).collect::<Vec<_>>());
    Ok((
        m(|r| r.msgs_per_s),
        m(|r| r.client_cpu_us),
        m(|r| r.allocs_per_msg),
    ))
}

/// The median of `v` (mean of the middle two for an even count).
pub fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let m = s.len() / 2;
    if s.len() % 2 == 1 {
        s[m]
    } else {
        (s[m - 1] + s[m]) / 2.0
    }
}
