//! `TlsFront`: a TLS terminator on 127.0.0.1 in front of a plain backend (a `TestServer`), made
//! with the `openssl` crate (native-tls's acceptor cannot require client certificates).
//!
//! It pipes bytes, so every `TestServer` mode and command (freeze, close_all, drop_all, ...)
//! works over TLS too. Its own fault modes act on the TLS layer.

use std::io::{ErrorKind, Write};
use std::net::{Ipv4Addr, Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use log::debug;
use openssl::nid::Nid;
use openssl::pkey::PKey;
use openssl::ssl::{HandshakeError, SslAcceptor, SslMethod, SslStream, SslVerifyMode, SslVersion};
use openssl::stack::Stack;
use openssl::x509::X509;

use super::certs::{certs, CertPair};
use super::proxy::{accept_loop, discard_until_closed, lock, pump, stop_and_join, PumpEnd, TICK};

/// Bytes written onto the raw TCP socket by [`FrontMode::GarbageAfterHandshake`]: not a TLS
/// record (0x48 is no record type).
pub const GARBAGE: &[u8] = b"HTTP/1.1 500 this is not TLS\r\n\r\n\x00\x01\x02\x03";

/// How the front treats connections accepted while this mode is set.
#[derive(Clone, Debug)]
pub enum FrontMode {
    /// Terminate TLS and pipe to the backend.
    Normal,
    /// Accept TCP, read the ClientHello, never answer (the socket stays open until the client
    /// leaves).
    StallMidHandshake,
    /// Like `Normal`, but `after` the TLS handshake write [`GARBAGE`] onto the TCP socket
    /// (bypassing TLS), stop piping and wait for the client to leave.
    GarbageAfterHandshake { after: Duration },
}

/// The certificate the front presents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerCert {
    /// `localhost` / `127.0.0.1`, signed by the test CA.
    Localhost,
    /// `wrong.example` only, signed by the test CA.
    WrongHost,
    /// `localhost`, signed by the test CA, expired yesterday.
    Expired,
}

/// How to start a [`TlsFront`].
#[derive(Clone, Debug)]
pub struct FrontOptions {
    pub cert: ServerCert,
    pub mode: FrontMode,
    /// Require a client certificate signed by the test CA (`PEER | FAIL_IF_NO_PEER_CERT`).
    pub require_client_cert: bool,
    /// Offer TLS 1.2 at most (default: 1.2 and 1.3).
    pub max_tls12: bool,
    /// After a failed handshake, close at once, with whatever the client sent still unread
    /// (the kernel then sends a reset, which may overtake the alert). Default: a graceful
    /// close (alert, FIN, then read until the client leaves, at most 1 s).
    pub abrupt_close_on_failure: bool,
}

impl Default for FrontOptions {
    fn default() -> Self {
        FrontOptions {
            cert: ServerCert::Localhost,
            mode: FrontMode::Normal,
            require_client_cert: false,
            max_tls12: false,
            abrupt_close_on_failure: false,
        }
    }
}

struct FrontShared {
    stop: AtomicBool,
    mode: Mutex<FrontMode>,
    acceptor: SslAcceptor,
    abrupt_close_on_failure: bool,
    backend_port: u16,
    accepted: AtomicUsize,
    handshakes: AtomicUsize,
    /// What the server side said about each failed TLS handshake.
    failures: Mutex<Vec<String>>,
    /// Common names of verified client certificates, one per handshake that had one.
    client_cns: Mutex<Vec<String>>,
    /// Bytes of ClientHello read in `StallMidHandshake`.
    hello_bytes: Mutex<Vec<usize>>,
    /// TLS versions negotiated.
    versions: Mutex<Vec<String>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

/// A TLS terminator on 127.0.0.1:0 in front of `127.0.0.1:<backend_port>`. Dropping it stops
/// every thread (they look at the stop flag at least every 50 ms).
pub struct TlsFront {
    shared: Arc<FrontShared>,
    port: u16,
    accept_thread: Option<JoinHandle<()>>,
}

fn cert_pair(which: ServerCert) -> &'static CertPair {
    let c = certs();
    match which {
        ServerCert::Localhost => &c.server,
        ServerCert::WrongHost => &c.wrong_host,
        ServerCert::Expired => &c.expired,
    }
}

fn acceptor(opts: &FrontOptions) -> SslAcceptor {
    let pair = cert_pair(opts.cert);
    let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls()).expect("acceptor");
    let key = PKey::private_key_from_pem(&pair.key_pem).expect("server key");
    b.set_private_key(&key).expect("server key");
    b.set_certificate(&X509::from_pem(&pair.cert_pem).expect("server cert"))
        .expect("server cert");
    b.check_private_key().expect("key matches cert");
    if opts.require_client_cert {
        let ca = X509::from_pem(&certs().ca_pem).expect("CA cert");
        let mut names = Stack::new().expect("stack");
        names
            .push(ca.subject_name().to_owned().expect("CA name"))
            .expect("push");
        b.set_client_ca_list(names);
        b.cert_store_mut().add_cert(ca).expect("client CA");
        b.set_verify(SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT);
    }
    if opts.max_tls12 {
        b.set_max_proto_version(Some(SslVersion::TLS1_2))
            .expect("max version");
    }
    b.build()
}

impl TlsFront {
    /// A front with the `localhost` certificate, no client certificates, mode `Normal`.
    pub fn normal(backend_port: u16) -> TlsFront {
        TlsFront::start(backend_port, FrontOptions::default())
    }

    pub fn start(backend_port: u16, opts: FrontOptions) -> TlsFront {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("tls front: bind");
        listener
            .set_nonblocking(true)
            .expect("tls front: nonblocking");
        let port = listener.local_addr().expect("tls front: local_addr").port();
        let shared = Arc::new(FrontShared {
            stop: AtomicBool::new(false),
            mode: Mutex::new(opts.mode.clone()),
            acceptor: acceptor(&opts),
            abrupt_close_on_failure: opts.abrupt_close_on_failure,
            backend_port,
            accepted: AtomicUsize::new(0),
            handshakes: AtomicUsize::new(0),
            failures: Mutex::new(Vec::new()),
            client_cns: Mutex::new(Vec::new()),
            hello_bytes: Mutex::new(Vec::new()),
            versions: Mutex::new(Vec::new()),
            threads: Mutex::new(Vec::new()),
        });
        let for_thread = shared.clone();
        let accept_thread = thread::Builder::new()
            .name(format!("tls-front-accept-{port}"))
            .spawn(move || front_accept_loop(for_thread, listener))
            .expect("tls front: spawn");
        TlsFront {
            shared,
            port,
            accept_thread: Some(accept_thread),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `wss://localhost:PORT/` (`localhost` is 127.0.0.1 only on the test machines).
    pub fn url(&self) -> String {
        format!("wss://localhost:{}/", self.port)
    }

    /// Applies to connections accepted from now on.
    pub fn set_mode(&self, mode: FrontMode) {
        *lock(&self.shared.mode) = mode;
    }

    /// TCP connections accepted.
    pub fn accepted(&self) -> usize {
        self.shared.accepted.load(SeqCst)
    }

    /// TLS handshakes completed.
    pub fn handshakes(&self) -> usize {
        self.shared.handshakes.load(SeqCst)
    }

    /// The server side's account of every failed TLS handshake.
    pub fn failures(&self) -> Vec<String> {
        lock(&self.shared.failures).clone()
    }

    /// Common names of the verified client certificates seen.
    pub fn client_cns(&self) -> Vec<String> {
        lock(&self.shared.client_cns).clone()
    }

    /// Sizes of the ClientHellos read in `StallMidHandshake`.
    pub fn hello_bytes(&self) -> Vec<usize> {
        lock(&self.shared.hello_bytes).clone()
    }

    /// TLS versions negotiated, e.g. `TLSv1.3`.
    pub fn versions(&self) -> Vec<String> {
        lock(&self.shared.versions).clone()
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        stop_and_join(
            &self.shared.stop,
            self.accept_thread.take(),
            &self.shared.threads,
        );
    }
}

fn front_accept_loop(shared: Arc<FrontShared>, listener: TcpListener) {
    accept_loop(
        &listener,
        &shared.stop,
        &shared.accepted,
        &shared.threads,
        "tls-front-conn",
        |stream| {
            let mode = lock(&shared.mode).clone();
            let for_conn = shared.clone();
            move || serve_front_conn(for_conn, stream, mode)
        },
    );
}

fn serve_front_conn(shared: Arc<FrontShared>, tcp: TcpStream, mode: FrontMode) {
    let setup = tcp
        .set_nonblocking(false)
        .and_then(|_| tcp.set_nodelay(true))
        .and_then(|_| tcp.set_read_timeout(Some(TICK)))
        .and_then(|_| tcp.set_write_timeout(Some(TICK)));
    if setup.is_err() {
        return;
    }
    if let FrontMode::StallMidHandshake = mode {
        return stall(&shared, tcp);
    }
    let Some(ssl) = tls_accept(&shared, tcp) else {
        return;
    };
    let handshake_done = Instant::now();
    let garbage_at = match mode {
        FrontMode::GarbageAfterHandshake { after } => Some(handshake_done + after),
        _ => None,
    };
    pipe(&shared, ssl, garbage_at);
}

/// Reads the ClientHello and never answers.
fn stall(shared: &FrontShared, mut tcp: TcpStream) {
    let mut buf = [0u8; 4096];
    let mut got = 0;
    let deadline = Instant::now() + Duration::from_secs(5);
    while got == 0 && !shared.stop.load(SeqCst) && Instant::now() < deadline {
        match std::io::Read::read(&mut tcp, &mut buf) {
            Ok(0) => return,
            Ok(n) => got = n,
            Err(_) => {}
        }
    }
    lock(&shared.hello_bytes).push(got);
    debug!("tls front: stalling after a {got}-byte ClientHello");
    discard_until_closed(&mut tcp, &shared.stop);
}

/// The server side of the TLS handshake, resumed after each 50 ms read timeout.
fn tls_accept(shared: &FrontShared, tcp: TcpStream) -> Option<SslStream<TcpStream>> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut round = shared.acceptor.accept(tcp);
    loop {
        match round {
            Ok(ssl) => {
                shared.handshakes.fetch_add(1, SeqCst);
                lock(&shared.versions).push(ssl.ssl().version_str().to_string());
                if let Some(cert) = ssl.ssl().peer_certificate() {
                    let cn = cert
                        .subject_name()
                        .entries_by_nid(Nid::COMMONNAME)
                        .next()
                        .and_then(|e| e.data().to_string().ok())
                        .unwrap_or_default();
                    lock(&shared.client_cns).push(cn);
                }
                return Some(ssl);
            }
            Err(HandshakeError::WouldBlock(mid)) => {
                if shared.stop.load(SeqCst) || Instant::now() >= deadline {
                    return None;
                }
                round = mid.handshake();
            }
            Err(HandshakeError::Failure(mid)) => {
                let text = format!(
                    "{} (verify: {})",
                    mid.error(),
                    mid.ssl().verify_result().error_string()
                );
                debug!("tls front: handshake failed: {text}");
                lock(&shared.failures).push(text);
                if !shared.abrupt_close_on_failure {
                    linger(shared, mid.get_ref());
                }
                return None;
            }
            Err(HandshakeError::SetupFailure(e)) => {
                lock(&shared.failures).push(format!("setup: {e}"));
                return None;
            }
        }
    }
}

/// A graceful close: FIN, then read (and drop) until the client leaves, at most 1 s, so that
/// what it sent last cannot turn the close into a reset that overtakes our last bytes.
fn linger(shared: &FrontShared, tcp: &TcpStream) {
    let _ = tcp.shutdown(Shutdown::Write);
    let Ok(mut tcp) = tcp.try_clone() else {
        return;
    };
    let _ = tcp.set_nonblocking(false);
    let _ = tcp.set_read_timeout(Some(TICK));
    let end = Instant::now() + Duration::from_secs(1);
    let mut sink = [0u8; 4096];
    while Instant::now() < end && !shared.stop.load(SeqCst) {
        match std::io::Read::read(&mut tcp, &mut sink) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
}

/// Pipes between the TLS client and a new backend connection.
fn pipe(shared: &FrontShared, mut ssl: SslStream<TcpStream>, garbage_at: Option<Instant>) {
    let Ok(mut backend) = TcpStream::connect((Ipv4Addr::LOCALHOST, shared.backend_port)) else {
        let _ = ssl.shutdown();
        return;
    };
    let _ = backend.set_nodelay(true);
    if backend.set_nonblocking(true).is_err() || ssl.get_ref().set_nonblocking(true).is_err() {
        return;
    }
    let (Ok(client_sock), Ok(backend_sock)) = (ssl.get_ref().try_clone(), backend.try_clone())
    else {
        return;
    };
    let end = pump(
        &mut ssl,
        &client_sock,
        &mut backend,
        &backend_sock,
        &shared.stop,
        garbage_at,
    );
    debug!("tls front: pipe ended: {end:?}");
    match end {
        PumpEnd::Deadline => {
            // Raw bytes on the TCP socket, bypassing TLS: the client's TLS layer must fail.
            let _ = backend.shutdown(Shutdown::Both);
            let tcp = ssl.get_mut();
            let _ = tcp.set_nonblocking(false);
            let _ = tcp.write_all(GARBAGE);
            let _ = tcp.flush();
            let mut tcp = match tcp.try_clone() {
                Ok(t) => t,
                Err(_) => return,
            };
            let _ = tcp.set_read_timeout(Some(TICK));
            discard_until_closed(&mut tcp, &shared.stop);
        }
        PumpEnd::BClosed => {
            // The backend ended: close_notify, then a graceful close.
            let _ = ssl.get_ref().set_nonblocking(false);
            let _ = ssl.shutdown();
            linger(shared, ssl.get_ref());
        }
        PumpEnd::AClosed | PumpEnd::Stopped => {
            let _ = backend.shutdown(Shutdown::Both);
        }
    }
}
