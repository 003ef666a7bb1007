//! Opening one link: resolve, TCP connect to each address, TLS, HTTP upgrade, all within one
//! deadline. The only place besides the driver that touches sockets and the clock.
#![forbid(unsafe_code)]

use std::io;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use tungstenite::handshake::client::Request;
use tungstenite::protocol::WebSocketConfig;
use tungstenite::WebSocket;

use crate::endpoint::{Endpoint, Scheme};
use crate::stream::{MeteredStream, Tcp, Transport};
use crate::{Config, Error};

/// A freshly opened link.
pub(crate) struct Opened {
    pub ws: WebSocket<MeteredStream>,
    pub protocol: Option<String>,
    pub peer: SocketAddr,
}

/// The tungstenite settings for a device: small buffers, bounded messages and write buffer.
pub(crate) fn websocket_config(config: &Config) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(config.read_buffer_size)
        // Write each message at once: the driver needs to know what the kernel took.
        .write_buffer_size(0)
        // One message plus frame headers and a queued pong or close.
        .max_write_buffer_size(config.max_message_size.saturating_add(1024))
        .max_message_size(Some(config.max_message_size))
        .max_frame_size(Some(config.max_frame_size))
}

/// Opens a link to `endpoint` before `deadline`, through `proxy` if there is one.
pub(crate) fn open(
    endpoint: &Endpoint,
    config: &Config,
    request: Request,
    proxy: Option<&crate::proxy::Proxy>,
    #[cfg(feature = "tls")] tls: Option<&native_tls::TlsConnector>,
    deadline: Instant,
) -> Result<Opened, Error> {
    // Resolve on every attempt: a device whose network came back must not keep a failed answer.
    let (host, port) = match proxy {
        Some(p) => (p.host.as_str(), p.port),
        None => (endpoint.host.as_str(), endpoint.port),
    };
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| Error::Resolve {
            host: host.to_string(),
            source: Some(e),
        })?
        .collect();
    if addrs.is_empty() {
        return Err(Error::Resolve {
            host: host.to_string(),
            source: None,
        });
    }
    let (tcp, peer) = connect_any(&addrs, deadline, config.connect_timeout)?;
    tcp.set_nodelay(true)?;
    let mut tcp = Tcp::new(tcp, Some(deadline));
    if let Some(p) = proxy {
        let target = if endpoint.host.contains(':') {
            format!("[{}]:{}", endpoint.host, endpoint.port)
        } else {
            format!("{}:{}", endpoint.host, endpoint.port)
        };
        crate::proxy::tunnel(&mut tcp, p, &target, config.connect_timeout)?;
    }
    let transport = match endpoint.scheme {
        Scheme::Ws => Transport::Plain(tcp),
        #[cfg(feature = "tls")]
        Scheme::Wss => {
            let connector =
                tls.ok_or_else(|| Error::config("url", "wss:// without a TLS connector"))?;
            Transport::Tls(Box::new(crate::tls::handshake(
                connector,
                &endpoint.host,
                tcp,
                deadline,
                config.connect_timeout,
            )?))
        }
        #[cfg(not(feature = "tls"))]
        Scheme::Wss => return Err(Error::config("url", "wss:// needs the `tls` cargo feature")),
    };
    let crate::upgrade::Upgraded {
        mut ws,
        protocol,
        tail,
    } = crate::upgrade::upgrade(
        MeteredStream::new(transport),
        &request,
        websocket_config(config),
        config.connect_timeout,
    )?;
    ws.get_mut().end_connect_phase(&tail)?;
    Ok(Opened { ws, protocol, peer })
}

/// Time left before `deadline`, or the timeout error.
pub(crate) fn remaining(deadline: Instant, timeout: Duration) -> Result<Duration, Error> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err(Error::ConnectTimeout(timeout))
    } else {
        Ok(left)
    }
}

/// Tries every address in turn until one accepts, within the deadline.
fn connect_any(
    addrs: &[SocketAddr],
    deadline: Instant,
    timeout: Duration,
) -> Result<(TcpStream, SocketAddr), Error> {
    let mut last = None;
    for addr in addrs {
        let left = remaining(deadline, timeout)?;
        match TcpStream::connect_timeout(addr, left) {
            Ok(s) => return Ok((s, *addr)),
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                last = Some(Error::ConnectTimeout(timeout))
            }
            Err(e) => last = Some(Error::Io(e)),
        }
    }
    Err(last.unwrap_or(Error::ConnectTimeout(timeout)))
}

/// Read and write errors while connecting (proxy tunnel, HTTP upgrade): the deadline passing is a connect timeout; a TLS
/// failure at this point (the server refusing our client certificate, which TLS 1.3 reports
/// only after the handshake) is a TLS error.
pub(crate) fn connect_io_error(e: io::Error, timeout: Duration) -> Error {
    match e.kind() {
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => Error::ConnectTimeout(timeout),
        io::ErrorKind::Other | io::ErrorKind::InvalidData
            if e.to_string().to_ascii_lowercase().contains("alert") =>
        {
            Error::Tls {
                detail: format!("handshake refused by server ({e})"),
                source: Some(Box::new(e)),
            }
        }
        _ => Error::Io(e),
    }
}
