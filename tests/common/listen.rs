//! Whether a given process is the one listening on a port.
//!
//! Peer servers (libwebsockets, nginx) are started on a port that was free a moment before;
//! another test may take it in between, and a connect would then reach that test's listener
//! and call the peer ready when it is not (seen in CI: a libwebsockets "start" of 0.27 ms and
//! a first attempt refused by the wrong server).

/// Whether process `pid` holds a listening TCP socket (IPv4 or IPv6) on `port`: its socket
/// inodes (`/proc/PID/fd`) against the LISTEN rows of `/proc/net/tcp` and `/proc/net/tcp6`.
pub fn pid_listens_on(pid: u32, port: u16) -> bool {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    let inodes: Vec<String> = fds
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|target| {
            let t = target.to_str()?;
            Some(t.strip_prefix("socket:[")?.strip_suffix(']')?.to_string())
        })
        .collect();
    ["/proc/net/tcp", "/proc/net/tcp6"].iter().any(|table| {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        text.lines().skip(1).any(|row| {
            // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode ...
            let f: Vec<&str> = row.split_whitespace().collect();
            f.len() > 9
                && f[3] == "0A"
                && f[1]
                    .rsplit(':')
                    .next()
                    .and_then(|p| u16::from_str_radix(p, 16).ok())
                    == Some(port)
                && inodes.iter().any(|i| i == f[9])
        })
    })
}
