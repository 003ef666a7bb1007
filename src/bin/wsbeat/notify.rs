//! The `sd_notify` protocol, in the few lines it takes: one datagram per message to the
//! socket named by `NOTIFY_SOCKET` (a path, or `@name` for an abstract socket). Written here
//! rather than with the `sd-notify` crate: std's `UnixDatagram` does all of it, so it costs
//! no dependency and almost no size, and we control that a send never blocks the loop.
#![forbid(unsafe_code)]

use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

/// A connection to the service manager. `None` from [`Notifier::from_env`] when wsbeat was not
/// started by one (or the socket cannot be used: then a warning says so once).
pub struct Notifier {
    socket: UnixDatagram,
    addr: SocketAddr,
    /// Whether a failed send was already reported: a gone manager must not flood the log.
    warned: bool,
}

impl Notifier {
    /// From `NOTIFY_SOCKET`, as systemd sets it for `Type=notify` and `NotifyAccess=`.
    pub fn from_env() -> Option<Notifier> {
        let name = std::env::var_os("NOTIFY_SOCKET")?;
        match Notifier::open(name.as_encoded_bytes()) {
            Ok(n) => Some(n),
            Err(e) => {
                log::warn!("NOTIFY_SOCKET {name:?}: {e}: not notifying the service manager");
                None
            }
        }
    }

    fn open(name: &[u8]) -> io::Result<Notifier> {
        let addr = match name.strip_prefix(b"@") {
            Some(abstract_name) => {
                use std::os::linux::net::SocketAddrExt;
                SocketAddr::from_abstract_name(abstract_name)?
            }
            None => SocketAddr::from_pathname(std::ffi::OsStr::from_bytes(name))?,
        };
        let socket = UnixDatagram::unbound()?;
        // The manager reads its socket at once; should it not, dropping a status line beats
        // stalling the loop that the watchdog is judging.
        socket.set_nonblocking(true)?;
        Ok(Notifier {
            socket,
            addr,
            warned: false,
        })
    }

    /// Sends one message (`READY=1`, `STATUS=...`, `WATCHDOG=1`, `STOPPING=1`). A failure is a
    /// warning the first time and a debug line after: it never stops the client.
    pub fn send(&mut self, message: &str) {
        match self.socket.send_to_addr(message.as_bytes(), &self.addr) {
            Ok(_) => log::trace!("sd_notify: {message}"),
            Err(e) if !self.warned => {
                self.warned = true;
                log::warn!("sd_notify {message:?} failed: {e}");
            }
            Err(e) => log::debug!("sd_notify {message:?} failed: {e}"),
        }
    }
}

/// The watchdog interval systemd asks for (`WatchdogSec=`, passed as `WATCHDOG_USEC`), if it
/// is meant for this process: `WATCHDOG_PID`, when set, must be ours (a shell script in
/// between would otherwise ping for a child it does not watch).
pub fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.trim().parse().ok()?;
    if let Ok(pid) = std::env::var("WATCHDOG_PID") {
        if pid.trim().parse::<u32>().ok() != Some(std::process::id()) {
            return None;
        }
    }
    (usec > 0).then(|| Duration::from_micros(usec))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both spellings of `NOTIFY_SOCKET`: a path, and `@name` for an abstract socket.
    #[test]
    fn sends_to_a_path_and_to_an_abstract_name() {
        let dir = std::env::temp_dir().join(format!("wsbeat-notify-{}", std::process::id()));
        let _ = std::fs::remove_file(&dir);
        let by_path = UnixDatagram::bind(&dir).expect("bind a path");
        let name = format!("wsbeat-notify-unit-{}", std::process::id());
        let addr = {
            use std::os::linux::net::SocketAddrExt;
            SocketAddr::from_abstract_name(name.as_bytes()).expect("abstract name")
        };
        let by_name = UnixDatagram::bind_addr(&addr).expect("bind an abstract name");
        // A datagram that never comes fails the test rather than hanging it.
        for s in [&by_path, &by_name] {
            s.set_read_timeout(Some(Duration::from_secs(5)))
                .expect("read timeout");
        }
        let mut buf = [0u8; 64];
        for (spec, socket) in [
            (dir.to_str().expect("utf-8 temp dir").to_string(), &by_path),
            (format!("@{name}"), &by_name),
        ] {
            let mut n = Notifier::open(spec.as_bytes()).expect("open");
            n.send("READY=1");
            let len = socket.recv(&mut buf).expect("a datagram");
            assert_eq!(&buf[..len], b"READY=1", "{spec}");
        }
        let _ = std::fs::remove_file(&dir);
    }
}
