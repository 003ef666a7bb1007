//! TLS through native-tls (OpenSSL on Linux): the connector, built once per client, and a
//! non-blocking handshake that the driver resumes whenever its socket is ready (the session
//! judges the connect deadline).
#![forbid(unsafe_code)]

use std::fmt;

use native_tls::{
    Certificate, HandshakeError, Identity, MidHandshakeTlsStream, TlsConnector, TlsStream,
};

use crate::stream::Tcp;
use crate::Error;

/// TLS settings. Verification is on by default: system roots, host name checked, SNI sent.
///
/// ```
/// use wsbeat::{Config, TlsConfig};
/// let ca_pem = b"-----BEGIN CERTIFICATE-----\n...".to_vec();
/// let mut config = Config::new("wss://broker.example:8883/ws");
/// config.tls = TlsConfig::default().add_root_pem(ca_pem);
/// ```
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct TlsConfig {
    /// Extra CA certificates (PEM) trusted besides the system roots, e.g. a private device CA.
    /// Defaults to none.
    pub extra_roots_pem: Vec<Vec<u8>>,
    /// A client identity for mutual TLS. Defaults to none.
    pub identity: Option<ClientIdentity>,
    /// Trust only `extra_roots_pem`, not the system roots. Defaults to `false`.
    pub disable_system_roots: bool,
    /// Accept any certificate and host name. For lab use only: it logs a warning on every
    /// connect. Defaults to `false`.
    pub danger_accept_invalid_certs: bool,
}

impl TlsConfig {
    /// Adds a trusted CA certificate in PEM form.
    pub fn add_root_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.extra_roots_pem.push(pem.into());
        self
    }
    /// Sets the client identity for mutual TLS.
    pub fn identity(mut self, identity: ClientIdentity) -> Self {
        self.identity = Some(identity);
        self
    }
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig")
            .field("extra_roots_pem", &self.extra_roots_pem.len())
            .field("identity", &self.identity)
            .field("disable_system_roots", &self.disable_system_roots)
            .field(
                "danger_accept_invalid_certs",
                &self.danger_accept_invalid_certs,
            )
            .finish()
    }
}

/// A client certificate and its private key.
#[derive(Clone)]
#[non_exhaustive]
pub enum ClientIdentity {
    /// A PEM certificate (chain) and a PEM PKCS#8 private key.
    Pem {
        /// Certificate chain, PEM.
        cert: Vec<u8>,
        /// PKCS#8 private key, PEM.
        key: Vec<u8>,
    },
    /// A PKCS#12 archive and its password.
    Pkcs12 {
        /// The DER-encoded archive.
        der: Vec<u8>,
        /// Its password.
        password: String,
    },
}

impl fmt::Debug for ClientIdentity {
    /// Keys and passwords are never printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientIdentity::Pem { .. } => f.write_str("ClientIdentity::Pem { key: [redacted] }"),
            ClientIdentity::Pkcs12 { .. } => {
                f.write_str("ClientIdentity::Pkcs12 { password: [redacted] }")
            }
        }
    }
}

/// Builds the connector once; errors name the `tls.*` field.
pub(crate) fn connector(config: &TlsConfig) -> Result<TlsConnector, Error> {
    let mut b = TlsConnector::builder();
    for pem in &config.extra_roots_pem {
        let cert = Certificate::from_pem(pem)
            .map_err(|e| Error::config("tls.extra_roots_pem", e.to_string()))?;
        b.add_root_certificate(cert);
    }
    if let Some(identity) = &config.identity {
        let id = match identity {
            ClientIdentity::Pem { cert, key } => Identity::from_pkcs8(cert, key),
            ClientIdentity::Pkcs12 { der, password } => Identity::from_pkcs12(der, password),
        }
        .map_err(|e| Error::config("tls.identity", e.to_string()))?;
        b.identity(id);
    }
    b.disable_built_in_roots(config.disable_system_roots);
    if config.danger_accept_invalid_certs {
        b.danger_accept_invalid_certs(true);
        b.danger_accept_invalid_hostnames(true);
    }
    b.build().map_err(|e| Error::config("tls", e.to_string()))
}

/// Where a TLS handshake stands after one step.
pub(crate) enum Handshake {
    Done(TlsStream<Tcp>),
    /// Needs more input, or room to write (see [`Tcp::write_blocked`]).
    Pending(MidHandshakeTlsStream<Tcp>),
    Failed(Error),
}

/// Starts the handshake for `host` over `tcp` (non-blocking: it goes as far as the bytes
/// at hand allow).
pub(crate) fn start(connector: &TlsConnector, host: &str, tcp: Tcp) -> Handshake {
    step(connector.connect(host, tcp))
}

/// Resumes a handshake when its socket is ready.
pub(crate) fn resume(mid: MidHandshakeTlsStream<Tcp>) -> Handshake {
    step(mid.handshake())
}

fn step(round: Result<TlsStream<Tcp>, HandshakeError<Tcp>>) -> Handshake {
    match round {
        Ok(stream) => Handshake::Done(stream),
        Err(HandshakeError::WouldBlock(mid)) => Handshake::Pending(mid),
        Err(HandshakeError::Failure(e)) => Handshake::Failed(classify(e)),
    }
}

/// An I/O error met through the TLS layer: a failure of TLS itself (an alert, a bad record)
/// comes wrapped in an `io::Error` that carries the TLS library's error, while a socket
/// failure is a plain OS error. Telling them apart by that type, never by message text: after
/// our handshake and before the upgrade reply, a TLS failure is the server refusing us (a
/// TLS 1.3 server judges our client certificate only then).
pub(crate) fn io_error(e: std::io::Error, refused_by_server: bool) -> Error {
    if e.get_ref().is_none() {
        return Error::Io(e);
    }
    let detail = if refused_by_server {
        format!("handshake refused by server ({e})")
    } else {
        format!("tls stream failed: {e}")
    };
    Error::Tls {
        detail,
        source: Some(Box::new(e)),
    }
}

/// Names the cause of a TLS handshake failure in words a field engineer recognises.
///
/// The kind (a TLS error) is decided by the type; the words come from the description
/// native-tls gives, because it exposes the certificate verification result only there.
fn classify(e: native_tls::Error) -> Error {
    let text = e.to_string();
    let lower = text.to_ascii_lowercase();
    // An alert is the server refusing us (e.g. our client certificate); checked first, since
    // its text ("unknown ca") would otherwise read as our own verification failing.
    let cause = if lower.contains("alert") {
        "handshake refused by server"
    } else if lower.contains("hostname mismatch") || lower.contains("ip address mismatch") {
        "host name mismatch"
    } else if lower.contains("expired") {
        "certificate expired"
    } else if lower.contains("not yet valid") {
        "certificate not yet valid"
    } else if lower.contains("self-signed")
        || lower.contains("self signed")
        || lower.contains("unable to get local issuer")
        || lower.contains("unknown ca")
    {
        "unknown certificate authority"
    } else if lower.contains("certificate required") || lower.contains("handshake failure") {
        "handshake refused by server"
    } else {
        "handshake failed"
    };
    Error::Tls {
        detail: format!("{cause} ({text})"),
        source: Some(Box::new(e)),
    }
}
