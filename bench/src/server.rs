//! The benchmark's WebSocket server: tungstenite's server side, one std thread per connection,
//! TCP_NODELAY, blocking reads (no timer of its own, so an idle connection costs the server
//! nothing and cannot disturb a client's wake-up count).
//!
//! Modes: `Echo` sends every data message back; `Sink` only counts them. Ping frames are
//! answered at once (tungstenite queues the Pong; the connection thread flushes it right away).
//!
//! Fault: [`Server::arm_freeze`] makes the next connection that answers a Ping stop right after
//! that Pong went out: it neither reads nor writes any more but keeps the TCP connection open
//! (the kernel still ACKs), a frozen server as seen from the client. Optionally the listener
//! closes too (connections are refused) until [`Server::come_up`].

use std::io::{self, ErrorKind};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicI64, AtomicU64, AtomicU8, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use tungstenite::protocol::WebSocketConfig;
use tungstenite::{Message, WebSocket};

/// What the server does with data messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Send each data message back.
    Echo = 0,
    /// Count and drop.
    Sink = 1,
}

/// Counters of one connection.
#[derive(Default)]
pub struct ConnStats {
    /// Data messages received.
    pub received: AtomicU64,
    /// Ping frames answered.
    pub pings: AtomicU64,
    /// The connection thread's kernel thread id, for its CPU time.
    pub tid: AtomicI32,
    /// Set once the upgrade finished; cleared when the connection thread ends.
    pub open: AtomicBool,
    /// A clone of the socket, so the server can cut the connection from outside.
    ctrl: Mutex<Option<TcpStream>>,
}

#[derive(Default)]
struct Shared {
    mode: AtomicU8,
    /// Connection threads pin themselves to this CPU when it is not negative.
    pin_cpu: AtomicI64,
    stop: AtomicBool,
    /// The next connection to answer a Ping freezes after it.
    freeze_armed: AtomicBool,
    /// Close the listener as well when the freeze happens.
    down_on_freeze: AtomicBool,
    /// When the frozen connection sent its last byte (the Pong).
    frozen_at: Mutex<Option<Instant>>,
    /// Bumped by `come_up`: frozen connections end.
    release: Mutex<u64>,
    released: Condvar,
    /// The listener, while the server is up.
    listener_down: AtomicBool,
    new_listener: Mutex<Option<TcpListener>>,
    listener_back: Condvar,
    conns: Mutex<Vec<Arc<ConnStats>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A running server on 127.0.0.1 (an ephemeral port). Stops when dropped.
pub struct Server {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<thread::JoinHandle<()>>,
}

impl Server {
    /// Starts the accept thread.
    pub fn start(mode: Mode) -> io::Result<Server> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::default());
        shared.mode.store(mode as u8, SeqCst);
        shared.pin_cpu.store(-1, SeqCst);
        let s = shared.clone();
        let accept = thread::Builder::new()
            .name("bench-accept".into())
            .spawn(move || accept_loop(listener, s))?;
        Ok(Server {
            addr,
            shared,
            accept: Some(accept),
        })
    }

    /// `ws://127.0.0.1:PORT/bench`.
    pub fn url(&self) -> String {
        format!("ws://{}/bench", self.addr)
    }

    pub fn set_mode(&self, mode: Mode) {
        self.shared.mode.store(mode as u8, SeqCst);
    }

    /// Connection threads accepted from now on run on `cpu` only.
    pub fn pin_connections(&self, cpu: usize) {
        self.shared.pin_cpu.store(cpu as i64, SeqCst);
    }

    /// The most recently accepted connection.
    pub fn last_conn(&self) -> Option<Arc<ConnStats>> {
        lock(&self.shared.conns).last().cloned()
    }

    /// Connections whose thread still runs (upgrade done, not ended).
    pub fn open_conns(&self) -> usize {
        lock(&self.shared.conns)
            .iter()
            .filter(|c| c.open.load(SeqCst))
            .count()
    }

    /// Pings answered on all connections.
    pub fn pings(&self) -> u64 {
        lock(&self.shared.conns)
            .iter()
            .map(|c| c.pings.load(SeqCst))
            .sum()
    }

    /// Waits until no connection is open (a finished run drained), at most `max`.
    pub fn wait_idle(&self, max: Duration) -> bool {
        let end = Instant::now() + max;
        while Instant::now() < end {
            if self.open_conns() == 0 {
                return true;
            }
            thread::sleep(Duration::from_millis(2));
        }
        false
    }

    /// Waits until a connection has finished its upgrade, at most `max`.
    pub fn wait_open(&self, max: Duration) -> bool {
        let end = Instant::now() + max;
        while Instant::now() < end {
            if self.open_conns() > 0 {
                return true;
            }
            thread::sleep(Duration::from_millis(5));
        }
        false
    }

    /// The next connection that answers a Ping freezes right after the Pong; with `go_down`
    /// the listener closes at the same moment (connection refused until [`come_up`]).
    ///
    /// [`come_up`]: Server::come_up
    pub fn arm_freeze(&self, go_down: bool) {
        *lock(&self.shared.frozen_at) = None;
        self.shared.down_on_freeze.store(go_down, SeqCst);
        self.shared.freeze_armed.store(true, SeqCst);
    }

    /// When the frozen connection sent its last byte, once it froze.
    pub fn frozen_at(&self) -> Option<Instant> {
        *lock(&self.shared.frozen_at)
    }

    /// Listens again (same port) and releases frozen connections.
    pub fn come_up(&self) -> io::Result<()> {
        self.shared.freeze_armed.store(false, SeqCst);
        *lock(&self.shared.release) += 1;
        self.shared.released.notify_all();
        if self.shared.listener_down.load(SeqCst) {
            let listener = bind_again(self.addr)?;
            *lock(&self.shared.new_listener) = Some(listener);
            self.shared.listener_down.store(false, SeqCst);
            self.shared.listener_back.notify_all();
        }
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shared.stop.store(true, SeqCst);
        // Take each lock once so that no waiter is between its check and its wait.
        drop(lock(&self.shared.release));
        self.shared.released.notify_all();
        drop(lock(&self.shared.new_listener));
        self.shared.listener_back.notify_all();
        // Wake a blocked accept().
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
        for c in lock(&self.shared.conns).iter() {
            if let Some(s) = lock(&c.ctrl).as_ref() {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

/// Binds the same port again; a port in TIME_WAIT is fine (std sets SO_REUSEADDR).
fn bind_again(addr: SocketAddr) -> io::Result<TcpListener> {
    let mut last = None;
    for _ in 0..50 {
        match TcpListener::bind(addr) {
            Ok(l) => return Ok(l),
            Err(e) => last = Some(e),
        }
        thread::sleep(Duration::from_millis(10));
    }
    Err(last.unwrap_or_else(|| io::Error::other("bind failed")))
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut listener = Some(listener);
    loop {
        let Some(l) = listener.as_ref() else { return };
        let stream = match l.accept() {
            Ok((s, _)) => s,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return,
        };
        if shared.stop.load(SeqCst) {
            return;
        }
        if shared.listener_down.load(SeqCst) {
            // Woken to close the listener: close it and wait for `come_up`.
            drop(stream);
            drop(listener.take());
            let mut guard = lock(&shared.new_listener);
            loop {
                if shared.stop.load(SeqCst) {
                    return;
                }
                if let Some(l) = guard.take() {
                    listener = Some(l);
                    break;
                }
                guard = shared
                    .listener_back
                    .wait(guard)
                    .unwrap_or_else(|e| e.into_inner());
            }
            // Drop the guard before accepting again.
            drop(guard);
            continue;
        }
        let stats = Arc::new(ConnStats::default());
        *lock(&stats.ctrl) = stream.try_clone().ok();
        lock(&shared.conns).push(stats.clone());
        let s = shared.clone();
        let _ = thread::Builder::new()
            .name("bench-conn".into())
            .spawn(move || {
                serve(stream, &s, &stats);
                stats.open.store(false, SeqCst);
                *lock(&stats.ctrl) = None;
            });
    }
}

fn serve(stream: TcpStream, shared: &Shared, stats: &ConnStats) {
    stats.tid.store(crate::procfs::gettid(), SeqCst);
    if let Ok(cpu) = usize::try_from(shared.pin_cpu.load(SeqCst)) {
        crate::procfs::pin_thread(&[cpu]);
    }
    let _ = stream.set_nodelay(true);
    let addr = stream.local_addr().ok();
    let config = WebSocketConfig::default().max_message_size(Some(64 << 20));
    let mut ws = match tungstenite::accept_with_config(stream, Some(config)) {
        Ok(ws) => ws,
        Err(_) => return,
    };
    stats.open.store(true, SeqCst);
    loop {
        if shared.stop.load(SeqCst) {
            return;
        }
        match ws.read() {
            Ok(msg @ (Message::Text(_) | Message::Binary(_))) => {
                stats.received.fetch_add(1, SeqCst);
                if shared.mode.load(SeqCst) == Mode::Echo as u8 && ws.send(msg).is_err() {
                    return;
                }
            }
            Ok(Message::Ping(_)) => {
                // tungstenite queued the Pong; send it now.
                if ws.flush().is_err() {
                    return;
                }
                stats.pings.fetch_add(1, SeqCst);
                if shared.freeze_armed.swap(false, SeqCst) {
                    freeze(&mut ws, shared, addr);
                    return;
                }
            }
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return,
        }
    }
}

/// Stops reading and writing, keeping the socket open, until `come_up` or the server stops.
fn freeze(ws: &mut WebSocket<TcpStream>, shared: &Shared, addr: Option<SocketAddr>) {
    *lock(&shared.frozen_at) = Some(Instant::now());
    if shared.down_on_freeze.load(SeqCst) {
        shared.listener_down.store(true, SeqCst);
        if let Some(a) = addr {
            // Wake the accept loop so that it drops the listener now.
            let _ = TcpStream::connect_timeout(&a, Duration::from_millis(200));
        }
    }
    let mut guard = lock(&shared.release);
    let start = *guard;
    while *guard == start && !shared.stop.load(SeqCst) {
        guard = shared
            .released
            .wait(guard)
            .unwrap_or_else(|e| e.into_inner());
    }
    drop(guard);
    let _ = ws.get_ref().shutdown(Shutdown::Both);
}
