//! Peak RSS of the `wsbeat` CLI (and of the bare-tungstenite floor, cross/floor's wsfloor,
//! which has the same stdin/stdout shape): idle for a few seconds, then after echoing 64 KiB
//! lines through it (stdin line -> text message -> echo -> stdout line).

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::procfs::{self, Mem};
use crate::server::{Mode, Server};

#[derive(Clone, Debug, Default)]
pub struct CliMem {
    pub idle: Mem,
    pub after_echo: Mem,
    pub echoed: u64,
    pub top_mappings: Vec<(u64, String)>,
    pub error: Option<String>,
}

/// Runs `cli URL ARGS...` against an echo server: connected and idle for `idle`, then `count`
/// 64 KiB lines echoed one at a time. Stdin is closed at the end (the CLI closes and exits).
pub fn cli_rss(cli: &Path, args: &[&str], idle: Duration, count: u64) -> CliMem {
    let mut r = CliMem::default();
    let server = match Server::start(Mode::Echo) {
        Ok(s) => s,
        Err(e) => {
            r.error = Some(e.to_string());
            return r;
        }
    };
    let mut child = match Command::new(cli)
        .arg(server.url())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            r.error = Some(format!("spawn {}: {e}", cli.display()));
            return r;
        }
    };
    let pid = child.id();
    let mut stdin = child.stdin.take().expect("piped");
    let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
    let result = (|| -> Result<(), String> {
        if !server.wait_open(Duration::from_secs(10)) {
            return Err("the CLI did not connect within 10 s".into());
        }
        std::thread::sleep(idle);
        r.idle = procfs::mem(pid).ok_or("no /proc status")?;
        let mut line = vec![b'x'; 64 << 10];
        line.push(b'\n');
        let mut back = String::with_capacity(line.len() + 1);
        let end = Instant::now() + Duration::from_secs(30);
        for _ in 0..count {
            stdin.write_all(&line).map_err(|e| e.to_string())?;
            stdin.flush().map_err(|e| e.to_string())?;
            back.clear();
            let n = stdout.read_line(&mut back).map_err(|e| e.to_string())?;
            if n != line.len() {
                return Err(format!("echo of {n} bytes, expected {}", line.len()));
            }
            r.echoed += 1;
            if Instant::now() > end {
                return Err("echo took longer than 30 s".into());
            }
        }
        r.after_echo = procfs::mem(pid).ok_or("no /proc status")?;
        r.top_mappings = procfs::top_mappings(pid, 6);
        Ok(())
    })();
    if let Err(e) = result {
        r.error = Some(e);
    }
    drop(stdin);
    let end = Instant::now() + Duration::from_secs(3);
    while Instant::now() < end {
        if let Ok(Some(_)) = child.try_wait() {
            return r;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    r
}
