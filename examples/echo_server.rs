//! A small loopback WebSocket echo server for rehearsing failures with `wsbeat` or the
//! telemetry example: freeze it, drop its connections, close with a code, or make it vanish
//! for a while, and watch the client notice and reconnect.
//!
//! ```text
//! cargo run --example echo_server -- [--port 9001]
//! ```
//!
//! Commands on its stdin, one per line:
//! - `freeze`: stop reading and writing (TCP stays up, the kernel still ACKs): a dead link
//! - `thaw`: undo `freeze`
//! - `drop`: cut every connection without a Close frame
//! - `close CODE [reason]`: send a Close frame to every connection
//! - `send TEXT`: send a text message to every connection (e.g. `{"cmd":"interval","secs":5}`)
//! - `restart`: drop everything and refuse connections for 3 s
//! - `quit`
//!
//! Std threads only (one per connection) and tungstenite's server side; no test helpers.
#![forbid(unsafe_code)]

use std::io::{self, BufRead, ErrorKind};
use std::net::{Ipv4Addr, Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::CloseFrame;
use tungstenite::{Message, WebSocket};

/// How often connection threads look at commands and the freeze flag.
const TICK: Duration = Duration::from_millis(20);
/// How long `restart` keeps the port closed.
const RESTART_PAUSE: Duration = Duration::from_secs(3);
/// How long a closing connection waits for the client's Close reply.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// An instruction for one connection thread.
#[derive(Clone)]
enum Cmd {
    Close(u16, String),
    Send(String),
}

/// A live connection, as seen by the command reader.
struct Conn {
    id: u64,
    /// A clone of the socket, so `drop` can cut it from outside the connection thread.
    ctrl: TcpStream,
    cmds: Sender<Cmd>,
}

#[derive(Default)]
struct Shared {
    frozen: AtomicBool,
    /// Set by `restart`: the accept thread closes the listener for a while.
    restart: AtomicBool,
    next_id: AtomicU64,
    conns: Mutex<Vec<Conn>>,
}

impl Shared {
    /// A poisoned lock only means a connection thread panicked; the list is still usable.
    fn conns(&self) -> MutexGuard<'_, Vec<Conn>> {
        self.conns.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn drop_all(&self) {
        for c in self.conns().drain(..) {
            let _ = c.ctrl.shutdown(Shutdown::Both);
        }
    }
}

fn main() {
    let mut port = 9001u16;
    let mut argv = std::env::args().skip(1);
    while let Some(arg) = argv.next() {
        match (arg.as_str(), argv.next()) {
            ("--port", Some(p)) => match p.parse() {
                Ok(p) => port = p,
                Err(_) => fail(&format!("--port: invalid port {p:?}")),
            },
            _ => fail("usage: echo_server [--port N]"),
        }
    }
    let listener =
        bind(port).unwrap_or_else(|e| fail(&format!("cannot listen on port {port}: {e}")));
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(port);
    println!("ws://127.0.0.1:{port}/");
    eprintln!("commands: freeze | thaw | drop | close CODE [reason] | send TEXT | restart | quit");

    let shared = Arc::new(Shared::default());
    let for_accept = shared.clone();
    thread::spawn(move || accept_loop(listener, port, for_accept));
    read_commands(&shared);
}

fn fail(message: &str) -> ! {
    eprintln!("echo_server: {message}");
    std::process::exit(2);
}

fn bind(port: u16) -> io::Result<TcpListener> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port))?;
    // Non-blocking so the accept loop can notice `restart`.
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// Reads commands until `quit`. At end of stdin the server keeps serving (so it can run in
/// the background with no terminal) until it is killed.
fn read_commands(shared: &Shared) {
    for line in io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let line = line.trim();
        let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
        match word {
            "" => {}
            "freeze" => {
                shared.frozen.store(true, SeqCst);
                eprintln!("frozen: connections neither read nor write");
            }
            "thaw" => {
                shared.frozen.store(false, SeqCst);
                eprintln!("thawed");
            }
            "drop" => {
                shared.drop_all();
                eprintln!("dropped every connection");
            }
            "close" => {
                let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
                match code.parse::<u16>() {
                    Ok(code) => broadcast(shared, Cmd::Close(code, reason.to_string())),
                    Err(_) => eprintln!("usage: close CODE [reason]"),
                }
            }
            "send" => broadcast(shared, Cmd::Send(rest.to_string())),
            "restart" => {
                shared.restart.store(true, SeqCst);
                shared.drop_all();
            }
            "quit" => std::process::exit(0),
            other => eprintln!("unknown command {other:?}"),
        }
    }
    loop {
        thread::park();
    }
}

fn broadcast(shared: &Shared, cmd: Cmd) {
    let conns = shared.conns();
    for c in conns.iter() {
        let _ = c.cmds.send(cmd.clone());
    }
    eprintln!("sent to {} connection(s)", conns.len());
}

fn accept_loop(mut listener: TcpListener, port: u16, shared: Arc<Shared>) {
    loop {
        if shared.restart.swap(false, SeqCst) {
            drop(listener);
            eprintln!("restart: refusing connections for {RESTART_PAUSE:?}");
            thread::sleep(RESTART_PAUSE);
            shared.drop_all(); // connections accepted just before the listener closed
            listener = loop {
                match bind(port) {
                    Ok(l) => break l,
                    Err(e) => {
                        eprintln!("restart: cannot listen again yet ({e}), retrying");
                        thread::sleep(Duration::from_millis(200));
                    }
                }
            };
            eprintln!("restart: listening again");
        }
        match listener.accept() {
            Ok((stream, peer)) => {
                let shared = shared.clone();
                thread::spawn(move || serve(stream, peer.to_string(), &shared));
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => thread::sleep(TICK),
            Err(e) => {
                eprintln!("accept failed: {e}");
                thread::sleep(TICK);
            }
        }
    }
}

/// One connection: handshake, then echo until it ends.
fn serve(stream: TcpStream, peer: String, shared: &Shared) {
    let id = shared.next_id.fetch_add(1, SeqCst) + 1;
    let setup = stream
        .set_nonblocking(false)
        .and_then(|_| stream.set_nodelay(true))
        .and_then(|_| stream.set_read_timeout(Some(Duration::from_secs(5))))
        .and_then(|_| stream.try_clone());
    let ctrl = match setup {
        Ok(ctrl) => ctrl,
        Err(e) => return eprintln!("[{id}] socket setup failed: {e}"),
    };
    // Registered before the handshake, so `drop` also cuts connections a freeze holds there.
    let (tx, rx) = mpsc::channel();
    shared.conns().push(Conn { id, ctrl, cmds: tx });
    let why = handshake_and_echo(stream, &peer, &rx, shared, id);
    shared.conns().retain(|c| c.id != id);
    eprintln!("[{id}] ended: {why}");
}

fn handshake_and_echo(
    stream: TcpStream,
    peer: &str,
    rx: &Receiver<Cmd>,
    shared: &Shared,
    id: u64,
) -> String {
    // A frozen server does not answer handshakes either (the kernel still accepts TCP).
    while shared.frozen.load(SeqCst) {
        thread::sleep(TICK);
    }
    let mut ws = match tungstenite::accept(stream) {
        Ok(ws) => ws,
        Err(e) => return format!("handshake failed: {e}"),
    };
    // Short timeouts from now on, so the thread looks at commands and the freeze flag.
    let _ = ws.get_ref().set_read_timeout(Some(TICK));
    let _ = ws.get_ref().set_write_timeout(Some(TICK));
    eprintln!("[{id}] open from {peer}");
    echo(&mut ws, rx, shared, id)
}

fn is_timeout(e: &tungstenite::Error) -> bool {
    matches!(e, tungstenite::Error::Io(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut))
}

fn echo(ws: &mut WebSocket<TcpStream>, rx: &Receiver<Cmd>, shared: &Shared, id: u64) -> String {
    let mut closing_since: Option<Instant> = None;
    loop {
        if shared.frozen.load(SeqCst) {
            // Neither read nor write: the client's bytes pile up in the kernel, unanswered.
            thread::sleep(TICK);
            continue;
        }
        if closing_since.is_some_and(|t| t.elapsed() > CLOSE_WAIT) {
            return "no close reply from the client".into();
        }
        while let Ok(cmd) = rx.try_recv() {
            let result = match cmd {
                Cmd::Close(code, reason) => {
                    closing_since = Some(Instant::now());
                    ws.close(Some(CloseFrame {
                        code: CloseCode::from(code),
                        reason: reason.into(),
                    }))
                }
                Cmd::Send(text) => ws.send(Message::text(text)),
            };
            match result {
                Ok(()) => {}
                Err(e) if is_timeout(&e) => {} // queued; flushed by a later read or write
                Err(e) => return format!("write failed: {e}"),
            }
        }
        match ws.read() {
            Ok(Message::Text(t)) => {
                eprintln!("[{id}] < {}", preview(t.as_str()));
                if let Err(e) = ws.send(Message::Text(t)) {
                    if !is_timeout(&e) {
                        return format!("write failed: {e}");
                    }
                }
            }
            Ok(msg @ Message::Binary(_)) => {
                if let Err(e) = ws.send(msg) {
                    if !is_timeout(&e) {
                        return format!("write failed: {e}");
                    }
                }
            }
            Ok(Message::Close(frame)) => {
                let code = frame.map(|f| u16::from(f.code));
                // tungstenite queued the reply; push it out before the socket goes.
                let _ = ws.flush();
                return format!("client closed (code {code:?})");
            }
            // tungstenite answers pings itself; the pong leaves with the next flush.
            Ok(_) => {
                let _ = ws.flush();
            }
            Err(e) if is_timeout(&e) => {
                let _ = ws.flush();
            }
            Err(tungstenite::Error::ConnectionClosed) => return "closed".into(),
            Err(e) => return format!("{e}"),
        }
    }
}

/// The start of a message, on one line, for the console.
fn preview(text: &str) -> String {
    let short: String = text.chars().take(80).collect();
    let more = if short.len() < text.len() { "..." } else { "" };
    format!("{}{more}", short.escape_debug())
}
