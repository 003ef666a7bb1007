//! The loopback test server: an accept thread plus one thread per connection,
//! controlled through shared state.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use log::{debug, warn};
use tungstenite::protocol::frame::coding::{Data, OpCode};
use tungstenite::protocol::frame::Frame;
use tungstenite::Message;

use super::conn::{Cmd, ConnCtx};
use super::{Mode, Received};

/// Poll interval of the accept loop and of `wait_for`.
pub(crate) const POLL: Duration = Duration::from_millis(5);
/// Read/write timeout of connection sockets: how often a connection thread
/// looks at commands and flags.
pub(crate) const IO_TICK: Duration = Duration::from_millis(10);

/// Lock a mutex, ignoring poisoning (a panicking test must not cascade into
/// the server threads).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Default)]
struct Log {
    received: Vec<Received>,
    pongs: Vec<Vec<u8>>,
    closes: Vec<Option<u16>>,
    headers: Vec<Vec<(String, String)>>,
}

struct ConnEntry {
    id: u64,
    /// A clone of the connection's socket, used to shut it down from outside.
    ctrl: TcpStream,
    killed: Arc<AtomicBool>,
    cmds: Sender<Cmd>,
}

impl ConnEntry {
    fn kill(&self) {
        self.killed.store(true, SeqCst);
        let _ = self.ctrl.shutdown(Shutdown::Both);
    }
}

/// State shared by the server handle, the accept thread and the connection
/// threads.
pub(crate) struct Shared {
    pub(crate) stop: AtomicBool,
    pub(crate) frozen: AtomicBool,
    /// Connection threads currently in an I/O step (see `ConnCtx::gate`).
    pub(crate) busy: AtomicUsize,
    mode: Mutex<Mode>,
    accepted: AtomicUsize,
    pub(crate) handshakes: AtomicUsize,
    pub(crate) pings: AtomicUsize,
    log: Mutex<Log>,
    conns: Mutex<Vec<ConnEntry>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    next_id: AtomicU64,
    /// When each TCP connection was accepted, in order (see `accept_times`).
    accept_times: Mutex<Vec<Instant>>,
    /// Set by `outage`: the listener stays closed (connects are refused) until then.
    refuse_until: Mutex<Option<Instant>>,
    /// Whether the accept thread has closed its listener for an outage.
    listener_closed: AtomicBool,
}

impl Shared {
    pub(crate) fn record_received(&self, r: Received) {
        lock(&self.log).received.push(r);
    }

    pub(crate) fn record_pong(&self, payload: Vec<u8>) {
        lock(&self.log).pongs.push(payload);
    }

    pub(crate) fn record_close(&self, code: Option<u16>) {
        lock(&self.log).closes.push(code);
    }

    pub(crate) fn record_headers(&self, headers: Vec<(String, String)>) {
        lock(&self.log).headers.push(headers);
    }

    /// Remove a connection from the registry and shut its socket down.
    pub(crate) fn unregister(&self, id: u64) {
        let mut conns = lock(&self.conns);
        if let Some(pos) = conns.iter().position(|c| c.id == id) {
            let entry = conns.swap_remove(pos);
            let _ = entry.ctrl.shutdown(Shutdown::Both);
        }
    }

    fn kill_all(&self) {
        for c in lock(&self.conns).iter() {
            c.kill();
        }
    }

    fn command_all(&self, cmd: Cmd) {
        for c in lock(&self.conns).iter() {
            let _ = c.cmds.send(cmd.clone());
        }
    }

    fn spawn_conn(self: &Arc<Self>, stream: TcpStream) {
        let setup = stream
            .set_nonblocking(false)
            .and_then(|_| stream.set_nodelay(true))
            .and_then(|_| stream.set_read_timeout(Some(IO_TICK)))
            .and_then(|_| stream.set_write_timeout(Some(IO_TICK)))
            .and_then(|_| stream.try_clone());
        let ctrl = match setup {
            Ok(ctrl) => ctrl,
            Err(e) => {
                debug!("test server: dropping connection, socket setup failed: {e}");
                return;
            }
        };
        let id = self.next_id.fetch_add(1, SeqCst);
        let (tx, rx) = mpsc::channel();
        let killed = Arc::new(AtomicBool::new(false));
        let mode = lock(&self.mode).clone();
        debug!("test server: connection {id} accepted, mode {mode:?}");
        lock(&self.conns).push(ConnEntry {
            id,
            ctrl,
            killed: killed.clone(),
            cmds: tx,
        });
        let ctx = ConnCtx::new(self.clone(), id, mode, killed, rx);
        let spawned = thread::Builder::new()
            .name(format!("test-server-conn-{id}"))
            .spawn(move || ctx.run(stream));
        match spawned {
            Ok(handle) => {
                let mut threads = lock(&self.threads);
                threads.retain(|h| !h.is_finished());
                threads.push(handle);
            }
            Err(e) => {
                warn!("test server: cannot spawn connection thread: {e}");
                self.unregister(id);
            }
        }
    }
}

/// Binds 127.0.0.1:`port` (0: ephemeral), retrying for up to 2 s while the port is still in
/// use, non-blocking.
fn bind(ip: IpAddr, port: u16) -> io::Result<TcpListener> {
    let deadline = Instant::now() + Duration::from_secs(2);
    let listener = loop {
        match TcpListener::bind((ip, port)) {
            Ok(l) => break l,
            Err(e) if e.kind() == io::ErrorKind::AddrInUse && Instant::now() < deadline => {
                thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(e),
        }
    };
    listener.set_nonblocking(true)?;
    Ok(listener)
}

fn accept_loop(shared: Arc<Shared>, listener: TcpListener, port: u16) {
    let ip = listener
        .local_addr()
        .map_or(IpAddr::V4(Ipv4Addr::LOCALHOST), |a| a.ip());
    let mut listener = Some(listener);
    while !shared.stop.load(SeqCst) {
        // An outage (`TestServer::outage`): no listener, so the kernel refuses every connect
        // at once, as for a server process that is down; listening again when it ends.
        let refuse_until = *lock(&shared.refuse_until);
        if let Some(until) = refuse_until {
            if listener.take().is_some() {
                shared.listener_closed.store(true, SeqCst);
            }
            if Instant::now() < until {
                thread::sleep(Duration::from_millis(1));
                continue;
            }
            match bind(ip, port) {
                Ok(l) => {
                    listener = Some(l);
                    *lock(&shared.refuse_until) = None;
                    shared.listener_closed.store(false, SeqCst);
                    debug!("test server: listening again on 127.0.0.1:{port}");
                }
                Err(e) => {
                    warn!("test server: cannot listen again on port {port}: {e}");
                    thread::sleep(POLL);
                }
            }
            continue;
        }
        let Some(l) = &listener else {
            thread::sleep(POLL);
            continue;
        };
        match l.accept() {
            Ok((stream, peer)) => {
                lock(&shared.accept_times).push(Instant::now());
                shared.accepted.fetch_add(1, SeqCst);
                debug!("test server: TCP connection from {peer}");
                shared.spawn_conn(stream);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => thread::sleep(POLL),
            Err(e) => {
                debug!("test server: accept failed: {e}");
                thread::sleep(POLL);
            }
        }
    }
    // The listener is dropped here: the port refuses connections from now on.
}

/// Convert a message into the (unmasked, server-side) frame that carries it.
fn message_to_frame(msg: Message) -> Frame {
    match msg {
        Message::Text(t) => Frame::message(t, OpCode::Data(Data::Text), true),
        Message::Binary(b) => Frame::message(b, OpCode::Data(Data::Binary), true),
        Message::Ping(p) => Frame::ping(p),
        Message::Pong(p) => Frame::pong(p),
        Message::Close(c) => Frame::close(c),
        Message::Frame(f) => f,
    }
}

/// A WebSocket server on 127.0.0.1 for tests. Dropping it (or `stop()`)
/// closes the listener and ends every connection.
pub struct TestServer {
    shared: Arc<Shared>,
    port: u16,
    accept_thread: Option<JoinHandle<()>>,
}

impl TestServer {
    /// Start on an ephemeral port of 127.0.0.1.
    pub fn start(mode: Mode) -> TestServer {
        TestServer::start_on(0, mode).expect("test server: bind 127.0.0.1:0")
    }

    /// Start on the given port (0: ephemeral), e.g. to restart a server on
    /// the port of a stopped one. Retries the bind for up to 2 s while the
    /// port is still in use.
    pub fn start_on(port: u16, mode: Mode) -> io::Result<TestServer> {
        TestServer::start_at(IpAddr::V4(Ipv4Addr::LOCALHOST), port, mode)
    }

    /// Start on `ip:port` (0: ephemeral): an address other than loopback, for a server in a
    /// network namespace of its own (tests/network_changes.rs). `url` still names 127.0.0.1.
    pub fn start_at(ip: IpAddr, port: u16, mode: Mode) -> io::Result<TestServer> {
        let listener = bind(ip, port)?;
        let port = listener.local_addr()?.port();
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            frozen: AtomicBool::new(false),
            busy: AtomicUsize::new(0),
            mode: Mutex::new(mode),
            accepted: AtomicUsize::new(0),
            handshakes: AtomicUsize::new(0),
            pings: AtomicUsize::new(0),
            log: Mutex::new(Log::default()),
            conns: Mutex::new(Vec::new()),
            threads: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(1),
            accept_times: Mutex::new(Vec::new()),
            refuse_until: Mutex::new(None),
            listener_closed: AtomicBool::new(false),
        });
        let for_thread = shared.clone();
        let accept_thread = thread::Builder::new()
            .name(format!("test-server-accept-{port}"))
            .spawn(move || accept_loop(for_thread, listener, port))?;
        debug!("test server: listening on 127.0.0.1:{port}");
        Ok(TestServer {
            shared,
            port,
            accept_thread: Some(accept_thread),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `ws://127.0.0.1:PORT/`
    pub fn url(&self) -> String {
        format!("ws://127.0.0.1:{}/", self.port)
    }

    /// Applies to connections accepted from now on.
    pub fn set_mode(&self, mode: Mode) {
        *lock(&self.shared.mode) = mode;
    }

    /// Every current and future connection stops reading and writing (the
    /// TCP connection stays open and the kernel still ACKs): a frozen server
    /// or a dead link. New TCP connections are still accepted (and counted)
    /// but their handshake is not answered. Commands (`send_all`, `ping_all`,
    /// `close_all`) are queued until `unfreeze`; `drop_all` and `stop` still
    /// work.
    ///
    /// Returns once no connection thread is in the middle of an I/O step
    /// (waits at most 200 ms), so nothing a client sends after `freeze()`
    /// returns gets answered.
    pub fn freeze(&self) {
        self.shared.frozen.store(true, SeqCst);
        let deadline = Instant::now() + Duration::from_millis(200);
        while self.shared.busy.load(SeqCst) > 0 && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(1));
        }
    }

    pub fn unfreeze(&self) {
        self.shared.frozen.store(false, SeqCst);
    }

    /// Abruptly end all current connections (shutdown both directions and
    /// drop), including connections still in the handshake.
    pub fn drop_all(&self) {
        self.shared.kill_all();
    }

    /// A server outage, as when its process restarts: stops listening (every connect is
    /// refused at once), then drops every connection at once, and listens again on the same
    /// port `refuse_for` after the drop. Returns the instant of the drop, once every
    /// connection has been shut down. Accepts go on being counted in `accept_times`.
    pub fn outage(&self, refuse_for: Duration) -> Instant {
        // Far ahead until the listener is closed, so no client reconnects in between.
        *lock(&self.shared.refuse_until) = Some(Instant::now() + Duration::from_secs(3600));
        let deadline = Instant::now() + Duration::from_secs(2);
        while !self.shared.listener_closed.load(SeqCst) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(1));
        }
        self.shared.kill_all();
        let dropped = Instant::now();
        *lock(&self.shared.refuse_until) = Some(dropped + refuse_for);
        dropped
    }

    /// When each TCP connection was accepted so far, in order.
    pub fn accept_times(&self) -> Vec<Instant> {
        lock(&self.shared.accept_times).clone()
    }

    /// Send a Close frame with `code` and `reason` to every current
    /// connection, wait up to 1 s for the reply, then drop it. Asynchronous:
    /// returns at once. Ignored by `SilentHandshake`, `HttpStatus` and
    /// `RawAfterHandshake` connections.
    pub fn close_all(&self, code: u16, reason: &str) {
        self.shared
            .command_all(Cmd::Close(code, reason.to_string()));
    }

    /// Send a message to every open connection (asynchronous).
    pub fn send_all(&self, msg: Message) {
        self.shared.command_all(Cmd::Frame(message_to_frame(msg)));
    }

    /// Send a server-initiated Ping to every open connection (asynchronous).
    pub fn ping_all(&self, payload: &[u8]) {
        self.shared
            .command_all(Cmd::Frame(Frame::ping(payload.to_vec())));
    }

    /// TCP connections accepted so far (including failed handshakes).
    pub fn accepted(&self) -> usize {
        self.shared.accepted.load(SeqCst)
    }

    /// Successful WebSocket handshakes so far (counted when the server
    /// decides to send `101`, i.e. before the client sees it).
    pub fn handshakes(&self) -> usize {
        self.shared.handshakes.load(SeqCst)
    }

    /// Connections currently open (accepted and not yet ended).
    pub fn open_connections(&self) -> usize {
        lock(&self.shared.conns).len()
    }

    /// Every data message received, in arrival order, across connections.
    pub fn received(&self) -> Vec<Received> {
        lock(&self.shared.log).received.clone()
    }

    /// Forget everything recorded in `received()`.
    pub fn clear_received(&self) {
        lock(&self.shared.log).received.clear();
    }

    /// Ping frames received from clients.
    pub fn pings_received(&self) -> usize {
        self.shared.pings.load(SeqCst)
    }

    /// Payloads of Pong frames received from clients.
    pub fn pongs_received(&self) -> Vec<Vec<u8>> {
        lock(&self.shared.log).pongs.clone()
    }

    /// Close codes of Close frames clients sent (`None`: empty payload).
    pub fn close_frames_received(&self) -> Vec<Option<u16>> {
        lock(&self.shared.log).closes.clone()
    }

    /// Headers of each upgrade request (lowercase names), in arrival order.
    pub fn request_headers(&self) -> Vec<Vec<(String, String)>> {
        lock(&self.shared.log).headers.clone()
    }

    /// Poll `f` every 5 ms until it returns true; panic mentioning `what`
    /// if it does not within `timeout`.
    pub fn wait_for<F: Fn(&TestServer) -> bool>(&self, timeout: Duration, what: &str, f: F) {
        let deadline = Instant::now() + timeout;
        loop {
            if f(self) {
                return;
            }
            if Instant::now() >= deadline {
                panic!("test server: timed out after {timeout:?} waiting for {what}");
            }
            thread::sleep(POLL);
        }
    }

    /// Same as dropping the server; afterwards the port refuses connections.
    pub fn stop(self) {
        drop(self);
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, SeqCst);
        if let Some(h) = self.accept_thread.take() {
            let _ = h.join();
        }
        // The accept thread is gone, so no connection can register any more.
        self.shared.kill_all();
        let handles = std::mem::take(&mut *lock(&self.shared.threads));
        let deadline = Instant::now() + Duration::from_secs(2);
        for h in handles {
            while !h.is_finished() && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(1));
            }
            if h.is_finished() {
                let _ = h.join();
            } else {
                warn!("test server: connection thread did not end in time");
            }
        }
        debug!("test server on port {} stopped", self.port);
    }
}
