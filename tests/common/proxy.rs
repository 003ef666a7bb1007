//! A minimal in-process HTTP CONNECT proxy on 127.0.0.1, with fault modes, plus the byte pump
//! (`pump`) that it and the TLS front (`tls.rs`) use to move bytes both ways.
//!
//! Each connection has its own thread. The pump waits with `poll(2)` on both sockets (50 ms at
//! most, to notice `stop`), so an idle tunnel does not spin and adds no latency.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, TcpListener, TcpStream, ToSocketAddrs};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use log::debug;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

/// Longest a thread waits before looking at its stop flag.
pub(crate) const TICK: Duration = Duration::from_millis(50);
/// Largest request head accepted.
const MAX_HEAD: usize = 64 << 10;

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn is_would_block(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

/// `poll(2)` on `fds` for at most `timeout`. Returns the `revents` of each (empty on EINTR).
pub(crate) fn poll_fds(fds: &[(BorrowedFd<'_>, PollFlags)], timeout: Duration) -> Vec<PollFlags> {
    let mut pfds: Vec<PollFd<'_>> = fds.iter().map(|&(fd, ev)| PollFd::new(fd, ev)).collect();
    let ms = PollTimeout::try_from(timeout).unwrap_or(PollTimeout::MAX);
    match poll(&mut pfds, ms) {
        Ok(_) => pfds
            .iter()
            .map(|p| p.revents().unwrap_or(PollFlags::empty()))
            .collect(),
        Err(_) => vec![PollFlags::empty(); fds.len()],
    }
}

/// Waits up to `timeout` for `fd` to become readable (or hung up).
pub(crate) fn wait_readable(fd: BorrowedFd<'_>, timeout: Duration) -> bool {
    !poll_fds(&[(fd, PollFlags::POLLIN)], timeout)[0].is_empty()
}

/// Why [`pump`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PumpEnd {
    /// Side A reached EOF or failed.
    AClosed,
    /// Side B reached EOF or failed.
    BClosed,
    /// The stop flag was set.
    Stopped,
    /// `until` passed.
    Deadline,
}

/// Writes as much of `pending` as `w` takes without blocking. `Ok(true)` if anything went.
fn write_some<W: Write>(w: &mut W, pending: &mut Vec<u8>) -> io::Result<bool> {
    let mut progress = false;
    while !pending.is_empty() {
        match w.write(pending) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                pending.drain(..n);
                progress = true;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if is_would_block(&e) => break,
            Err(e) => return Err(e),
        }
    }
    if progress {
        w.flush()?;
    }
    Ok(progress)
}

/// Reads once into `into`. `Ok(None)`: EOF; `Ok(Some(0))`: nothing available now.
fn read_some<R: Read>(r: &mut R, into: &mut Vec<u8>) -> io::Result<Option<usize>> {
    let mut buf = [0u8; 16 << 10];
    match r.read(&mut buf) {
        Ok(0) => Ok(None),
        Ok(n) => {
            into.extend_from_slice(&buf[..n]);
            Ok(Some(n))
        }
        Err(e) if is_would_block(&e) => Ok(Some(0)),
        Err(e) => Err(e),
    }
}

/// Moves bytes between `a` and `b` (on the non-blocking sockets `a_sock`, `b_sock`: clones
/// used only to wait for readiness) until one
/// side ends, `stop` is set or `until` passes. Reads a side only when what it sent before has
/// been written to the other, so a peer that does not read slows the sender down instead of
/// filling memory, and the other direction keeps flowing.
pub(crate) fn pump<A: Read + Write, B: Read + Write>(
    a: &mut A,
    a_sock: &TcpStream,
    b: &mut B,
    b_sock: &TcpStream,
    stop: &AtomicBool,
    until: Option<Instant>,
) -> PumpEnd {
    let mut a_to_b = Vec::new();
    let mut b_to_a = Vec::new();
    // A side that reported hang-up is left out of poll(2) (it would wake it at once) and is
    // read, to see its end, as soon as its pending bytes went out.
    let (mut a_hup, mut b_hup) = (false, false);
    loop {
        if stop.load(SeqCst) {
            return PumpEnd::Stopped;
        }
        let now = Instant::now();
        if until.is_some_and(|t| now >= t) {
            return PumpEnd::Deadline;
        }
        let mut progress = false;
        match write_some(b, &mut a_to_b) {
            Ok(p) => progress |= p,
            Err(_) => return PumpEnd::BClosed,
        }
        match write_some(a, &mut b_to_a) {
            Ok(p) => progress |= p,
            Err(_) => return PumpEnd::AClosed,
        }
        if a_to_b.is_empty() {
            match read_some(a, &mut a_to_b) {
                Ok(None) | Err(_) => return PumpEnd::AClosed,
                Ok(Some(n)) => progress |= n > 0,
            }
        }
        if b_to_a.is_empty() {
            match read_some(b, &mut b_to_a) {
                Ok(None) | Err(_) => return PumpEnd::BClosed,
                Ok(Some(n)) => progress |= n > 0,
            }
        }
        if progress {
            continue;
        }
        let events = |reading: bool, writing: bool| {
            let mut ev = PollFlags::empty();
            ev.set(PollFlags::POLLIN, reading);
            ev.set(PollFlags::POLLOUT, writing);
            ev
        };
        let mut fds = Vec::with_capacity(2);
        if !a_hup {
            fds.push((
                a_sock.as_fd(),
                events(a_to_b.is_empty(), !b_to_a.is_empty()),
            ));
        }
        if !b_hup {
            fds.push((
                b_sock.as_fd(),
                events(b_to_a.is_empty(), !a_to_b.is_empty()),
            ));
        }
        let mut wait = TICK;
        if let Some(t) = until {
            wait = wait.min(t.saturating_duration_since(now));
        }
        let revents = poll_fds(&fds, wait);
        let hup = PollFlags::POLLHUP | PollFlags::POLLERR | PollFlags::POLLNVAL;
        let mut i = 0;
        if !a_hup {
            a_hup = revents.get(i).is_some_and(|r| r.intersects(hup));
            i += 1;
        }
        if !b_hup {
            b_hup = revents.get(i).is_some_and(|r| r.intersects(hup));
        }
    }
}

/// How the proxy answers CONNECT requests accepted while this mode is set.
#[derive(Clone, Debug)]
pub enum ProxyMode {
    /// Tunnel every CONNECT.
    Open,
    /// Tunnel only with `Proxy-Authorization: Basic base64(user:pass)`; otherwise answer 407
    /// with `Proxy-Authenticate: Basic`.
    RequireAuth { user: String, pass: String },
    /// Answer this status and close.
    Status(u16),
    /// Accept TCP, read the request, never answer.
    Silent,
}

/// A request the proxy received: its request line and headers (names lowercase).
#[derive(Clone, Debug)]
pub struct ProxyRequest {
    pub line: String,
    pub headers: Vec<(String, String)>,
}

impl ProxyRequest {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

struct ProxyShared {
    stop: AtomicBool,
    mode: Mutex<ProxyMode>,
    accepted: AtomicUsize,
    tunnels: AtomicUsize,
    requests: Mutex<Vec<ProxyRequest>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

/// An HTTP CONNECT proxy on 127.0.0.1:0. Dropping it stops every thread.
pub struct ConnectProxy {
    shared: Arc<ProxyShared>,
    port: u16,
    accept_thread: Option<JoinHandle<()>>,
}

impl ConnectProxy {
    pub fn start(mode: ProxyMode) -> ConnectProxy {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("proxy: bind");
        listener.set_nonblocking(true).expect("proxy: nonblocking");
        let port = listener.local_addr().expect("proxy: local_addr").port();
        let shared = Arc::new(ProxyShared {
            stop: AtomicBool::new(false),
            mode: Mutex::new(mode),
            accepted: AtomicUsize::new(0),
            tunnels: AtomicUsize::new(0),
            requests: Mutex::new(Vec::new()),
            threads: Mutex::new(Vec::new()),
        });
        let for_thread = shared.clone();
        let accept_thread = thread::Builder::new()
            .name(format!("proxy-accept-{port}"))
            .spawn(move || proxy_accept_loop(for_thread, listener))
            .expect("proxy: spawn");
        ConnectProxy {
            shared,
            port,
            accept_thread: Some(accept_thread),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `http://user:pass@127.0.0.1:PORT`
    pub fn url_with_auth(&self, user: &str, pass: &str) -> String {
        format!("http://{user}:{pass}@127.0.0.1:{}", self.port)
    }

    /// Applies to connections accepted from now on.
    pub fn set_mode(&self, mode: ProxyMode) {
        *lock(&self.shared.mode) = mode;
    }

    /// TCP connections accepted.
    pub fn accepted(&self) -> usize {
        self.shared.accepted.load(SeqCst)
    }

    /// Tunnels established (`200` sent).
    pub fn tunnels(&self) -> usize {
        self.shared.tunnels.load(SeqCst)
    }

    /// Every request received, in order.
    pub fn requests(&self) -> Vec<ProxyRequest> {
        lock(&self.shared.requests).clone()
    }
}

impl Drop for ConnectProxy {
    fn drop(&mut self) {
        stop_and_join(
            &self.shared.stop,
            self.accept_thread.take(),
            &self.shared.threads,
        );
    }
}

fn proxy_accept_loop(shared: Arc<ProxyShared>, listener: TcpListener) {
    accept_loop(
        &listener,
        &shared.stop,
        &shared.accepted,
        &shared.threads,
        "proxy-conn",
        |stream| {
            let for_conn = shared.clone();
            move || serve_proxy_conn(for_conn, stream)
        },
    );
}

/// Accepts connections until `stop`, counting them in `accepted` and running what `serve`
/// makes of each on its own thread (named `name`), kept in `threads` for the final join.
pub(crate) fn accept_loop<F: FnOnce() + Send + 'static>(
    listener: &TcpListener,
    stop: &AtomicBool,
    accepted: &AtomicUsize,
    threads: &Mutex<Vec<JoinHandle<()>>>,
    name: &str,
    mut serve: impl FnMut(TcpStream) -> F,
) {
    while !stop.load(SeqCst) {
        if !wait_readable(listener.as_fd(), TICK) {
            continue;
        }
        match listener.accept() {
            Ok((stream, _)) => {
                accepted.fetch_add(1, SeqCst);
                let spawned = thread::Builder::new()
                    .name(name.into())
                    .spawn(serve(stream));
                if let Ok(handle) = spawned {
                    let mut threads = lock(threads);
                    threads.retain(|h| !h.is_finished());
                    threads.push(handle);
                }
            }
            Err(e) if is_would_block(&e) => {}
            Err(e) => debug!("{name}: accept failed: {e}"),
        }
    }
}

/// Stops a test server: sets `stop`, then joins its accept thread and every connection thread.
pub(crate) fn stop_and_join(
    stop: &AtomicBool,
    accept_thread: Option<JoinHandle<()>>,
    threads: &Mutex<Vec<JoinHandle<()>>>,
) {
    stop.store(true, SeqCst);
    if let Some(t) = accept_thread {
        let _ = t.join();
    }
    let threads = std::mem::take(&mut *lock(threads));
    for t in threads {
        let _ = t.join();
    }
}

/// Reads an HTTP request head (up to the blank line). Returns the head and any bytes after it.
/// `None` if the peer left, the proxy stopped or 10 s passed.
pub(crate) fn read_head(stream: &mut TcpStream, stop: &AtomicBool) -> Option<(Vec<u8>, Vec<u8>)> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut head = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = head.split_off(end + 4);
            return Some((head, rest));
        }
        if stop.load(SeqCst) || Instant::now() >= deadline || head.len() > MAX_HEAD {
            return None;
        }
        match stream.read(&mut chunk) {
            Ok(0) => return None,
            Ok(n) => head.extend_from_slice(&chunk[..n]),
            Err(e) if is_would_block(&e) => {}
            Err(_) => return None,
        }
    }
}

/// Reads and discards until the peer leaves or `stop` is set.
pub(crate) fn discard_until_closed(stream: &mut TcpStream, stop: &AtomicBool) {
    let mut sink = [0u8; 4096];
    while !stop.load(SeqCst) {
        match stream.read(&mut sink) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if is_would_block(&e) => {}
            Err(_) => return,
        }
    }
}

/// Writes `response`, then closes gracefully: FIN first, then a short drain so that unread
/// request bytes do not turn the close into a reset.
fn respond_and_close(stream: &mut TcpStream, response: &str) {
    let _ = stream.write_all(response.as_bytes());
    let _ = stream.shutdown(Shutdown::Write);
    let end = Instant::now() + Duration::from_millis(200);
    let mut sink = [0u8; 1024];
    while Instant::now() < end {
        match stream.read(&mut sink) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if is_would_block(&e) => {}
            Err(_) => break,
        }
    }
}

fn status_response(status: u16, extra: &str) -> String {
    let reason = tungstenite::http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Unknown");
    format!("HTTP/1.1 {status} {reason}\r\n{extra}Content-Length: 0\r\nConnection: close\r\n\r\n")
}

/// Standard base64 with padding.
pub fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn parse_request(head: &[u8]) -> ProxyRequest {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n");
    let line = lines.next().unwrap_or("").to_string();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    ProxyRequest { line, headers }
}

fn serve_proxy_conn(shared: Arc<ProxyShared>, mut client: TcpStream) {
    let _ = client.set_nonblocking(false);
    let _ = client.set_read_timeout(Some(TICK));
    let _ = client.set_write_timeout(Some(Duration::from_secs(2)));
    let Some((head, leftover)) = read_head(&mut client, &shared.stop) else {
        return;
    };
    let request = parse_request(&head);
    debug!("proxy: {}", request.line);
    lock(&shared.requests).push(request.clone());
    let mode = lock(&shared.mode).clone();
    match mode {
        ProxyMode::Silent => return discard_until_closed(&mut client, &shared.stop),
        ProxyMode::Status(status) => {
            return respond_and_close(&mut client, &status_response(status, ""))
        }
        ProxyMode::RequireAuth { user, pass } => {
            let expected = format!("Basic {}", base64(format!("{user}:{pass}").as_bytes()));
            if request.header("proxy-authorization") != Some(expected.as_str()) {
                let challenge = "Proxy-Authenticate: Basic realm=\"wsbeat-test\"\r\n";
                return respond_and_close(&mut client, &status_response(407, challenge));
            }
        }
        ProxyMode::Open => {}
    }
    let mut parts = request.line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if method != "CONNECT" {
        return respond_and_close(&mut client, &status_response(400, ""));
    }
    // Every loopback address of the target in turn (`localhost` may be ::1 first, and the
    // test servers listen on 127.0.0.1 only); nothing outside this machine.
    let upstream = target.to_socket_addrs().ok().and_then(|addrs| {
        addrs
            .filter(|a| a.ip().is_loopback())
            .find_map(|a| TcpStream::connect_timeout(&a, Duration::from_secs(2)).ok())
    });
    let Some(mut upstream) = upstream else {
        return respond_and_close(&mut client, &status_response(502, ""));
    };
    if client
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .is_err()
    {
        return;
    }
    shared.tunnels.fetch_add(1, SeqCst);
    let _ = upstream.set_nodelay(true);
    let _ = client.set_nodelay(true);
    if upstream.write_all(&leftover).is_err() {
        return;
    }
    if client.set_nonblocking(true).is_err() || upstream.set_nonblocking(true).is_err() {
        return;
    }
    let (Ok(client_sock), Ok(upstream_sock)) = (client.try_clone(), upstream.try_clone()) else {
        return;
    };
    let end = pump(
        &mut client,
        &client_sock,
        &mut upstream,
        &upstream_sock,
        &shared.stop,
        None,
    );
    debug!("proxy: tunnel to {target} ended: {end:?}");
    let _ = client.shutdown(Shutdown::Both);
    let _ = upstream.shutdown(Shutdown::Both);
}
