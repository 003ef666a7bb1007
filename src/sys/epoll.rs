//! `epoll(7)` and `eventfd(2)`: one descriptor that is readable whenever the client has
//! something to do (a socket of any phase is ready, or a [`Waker`](crate::Waker) fired), so
//! the driver waits in one place, and an application can add that one descriptor to its own
//! `poll(2)` loop.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// What a registered descriptor is waited for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Interest {
    pub read: bool,
    pub write: bool,
}

impl Interest {
    pub const READ: Interest = Interest {
        read: true,
        write: false,
    };
    pub const WRITE: Interest = Interest {
        read: false,
        write: true,
    };

    fn bits(self) -> u32 {
        let mut bits = 0;
        if self.read {
            bits |= libc::EPOLLIN as u32 | libc::EPOLLRDHUP as u32;
        }
        if self.write {
            bits |= libc::EPOLLOUT as u32;
        }
        bits
    }
}

/// One readiness report: the token given at registration, and what is ready. Errors and
/// hang-ups count as both, so that the next read or write reports them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Readiness {
    pub token: u64,
    pub readable: bool,
    pub writable: bool,
}

/// Most reports taken from one wait; more stay queued in the kernel for the next one.
pub(crate) const MAX_READY: usize = 16;

/// An epoll instance (level-triggered).
#[derive(Debug)]
pub(crate) struct Epoll {
    fd: OwnedFd,
}

impl Epoll {
    pub fn new() -> io::Result<Epoll> {
        // SAFETY: plain flag argument; the result is checked before use.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is fresh and owned by nothing else.
        Ok(Epoll {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// Starts waiting on `fd` for `interest`, reported with `token`.
    pub fn add(&self, fd: RawFd, token: u64, interest: Interest) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_ADD, fd, token, interest)
    }

    /// Changes what `fd` is waited for.
    pub fn modify(&self, fd: RawFd, token: u64, interest: Interest) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_MOD, fd, token, interest)
    }

    fn ctl(&self, op: libc::c_int, fd: RawFd, token: u64, interest: Interest) -> io::Result<()> {
        let mut event = libc::epoll_event {
            events: interest.bits(),
            u64: token,
        };
        // SAFETY: `event` is a valid epoll_event for the duration of the call.
        let rc = unsafe { libc::epoll_ctl(self.fd.as_raw_fd(), op, fd, &mut event) };
        if rc < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    /// Waits at most `timeout` (rounded up to whole milliseconds, so never a wake before the
    /// deadline) and writes what is ready into `out`; returns how many. A signal ends the wait
    /// early with nothing ready.
    pub fn wait(&self, timeout: Duration, out: &mut [Readiness; MAX_READY]) -> io::Result<usize> {
        let ms = timeout.as_micros().div_ceil(1000).min(i32::MAX as u128) as libc::c_int;
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; MAX_READY];
        // SAFETY: `events` has room for MAX_READY entries and outlives the call.
        let n = unsafe {
            libc::epoll_wait(
                self.fd.as_raw_fd(),
                events.as_mut_ptr(),
                MAX_READY as libc::c_int,
                ms,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::Interrupted {
                Ok(0)
            } else {
                Err(e)
            };
        }
        let n = n as usize;
        for (slot, ev) in out.iter_mut().zip(&events[..n]) {
            let bits = ev.events;
            let trouble = bits & (libc::EPOLLERR | libc::EPOLLHUP) as u32 != 0;
            *slot = Readiness {
                token: ev.u64,
                readable: trouble || bits & (libc::EPOLLIN | libc::EPOLLRDHUP) as u32 != 0,
                writable: trouble || bits & libc::EPOLLOUT as u32 != 0,
            };
        }
        Ok(n)
    }
}

impl AsFd for Epoll {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// An eventfd used as a wake-up flag: [`signal`](EventFd::signal) is one `write(2)`, safe from
/// another thread and from a signal handler (it does not allocate or lock).
#[derive(Debug)]
pub(crate) struct EventFd {
    fd: OwnedFd,
}

impl EventFd {
    pub fn new() -> io::Result<EventFd> {
        // SAFETY: plain arguments; the result is checked before use.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is fresh and owned by nothing else.
        Ok(EventFd {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// Makes the descriptor readable. Never blocks: a counter already near its maximum is
    /// readable anyway, so a failed write loses nothing.
    pub fn signal(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a valid u64 to our own descriptor.
        let _ = unsafe {
            libc::write(
                self.fd.as_raw_fd(),
                (&one as *const u64).cast(),
                std::mem::size_of::<u64>(),
            )
        };
    }

    /// Resets the descriptor to not readable; returns whether it was signalled.
    pub fn drain(&self) -> bool {
        let mut count: u64 = 0;
        // SAFETY: reads at most 8 bytes into a valid u64.
        let n = unsafe {
            libc::read(
                self.fd.as_raw_fd(),
                (&mut count as *mut u64).cast(),
                std::mem::size_of::<u64>(),
            )
        };
        n == std::mem::size_of::<u64>() as isize && count > 0
    }
}

impl AsFd for EventFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn an_eventfd_wakes_the_epoll_and_drains() {
        let ep = Epoll::new().unwrap();
        let ev = EventFd::new().unwrap();
        ep.add(ev.as_fd().as_raw_fd(), 7, Interest::READ).unwrap();
        let mut out = [Readiness::default(); MAX_READY];
        let start = Instant::now();
        assert_eq!(ep.wait(Duration::from_millis(30), &mut out).unwrap(), 0);
        assert!(start.elapsed() >= Duration::from_millis(30));
        ev.signal();
        assert_eq!(ep.wait(Duration::from_secs(5), &mut out).unwrap(), 1);
        assert_eq!((out[0].token, out[0].readable), (7, true));
        assert!(ev.drain());
        assert!(!ev.drain());
        assert_eq!(ep.wait(Duration::ZERO, &mut out).unwrap(), 0);
    }

    #[test]
    fn a_nonblocking_connect_to_a_listener_completes_and_to_a_closed_port_fails() {
        use std::net::TcpListener;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let ep = Epoll::new().unwrap();
        let s = crate::sys::connect_nonblocking(&addr).unwrap();
        ep.add(s.as_raw_fd(), 1, Interest::WRITE).unwrap();
        let mut out = [Readiness::default(); MAX_READY];
        assert_eq!(ep.wait(Duration::from_secs(5), &mut out).unwrap(), 1);
        assert!(out[0].writable);
        assert!(s.take_error().unwrap().is_none());
        // The first socket stays writable (level-triggered): closing it takes it out of the
        // set, so the wait below reports the second one, not the first again.
        drop(s);
        drop(listener);
        // A port just closed can be taken again at once by another test's listener (or the
        // connect can meet itself when the port is in the ephemeral range): such a try proves
        // nothing, so a few fresh closed ports are tried and one must refuse.
        let mut failed = false;
        for (try_number, token) in (2u64..7).enumerate() {
            let addr = if try_number == 0 {
                addr
            } else {
                let l = TcpListener::bind("127.0.0.1:0").unwrap();
                l.local_addr().unwrap()
            };
            let s = match crate::sys::connect_nonblocking(&addr) {
                Err(_) => {
                    failed = true;
                    break;
                }
                Ok(s) => s,
            };
            ep.add(s.as_raw_fd(), token, Interest::WRITE).unwrap();
            let ready = ep.wait(Duration::from_secs(5), &mut out).unwrap();
            assert!(
                out[..ready].iter().any(|r| r.token == token),
                "the new socket is ready"
            );
            if s.take_error().unwrap().is_some() {
                failed = true;
                break;
            }
        }
        assert!(failed, "a closed port refuses");
    }
}
