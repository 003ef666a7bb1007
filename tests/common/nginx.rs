//! Debian's nginx as a real-world peer: a reverse proxy (TLS terminator or plain) in front of a
//! `TestServer`, started with a generated config in a temp dir (no root paths), killed on Drop.
//!
//! If nginx is not installed, [`Nginx::start`] returns `None` and the test prints a skip
//! notice, unless `WSBEAT_REQUIRE_PEERS=1` (CI), where a missing nginx is a failure.

use std::fs;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::certs::{certs, TempDir};

/// How to run nginx.
#[derive(Clone, Copy, Debug)]
pub struct NginxOptions {
    /// Terminate TLS with the `localhost` certificate; `false`: a plain reverse proxy.
    pub tls: bool,
    /// `ssl_verify_client on` against the test CA.
    pub verify_client: bool,
}

/// A running nginx. Dropping it kills the process and removes its directory.
pub struct Nginx {
    child: Child,
    port: u16,
    tls: bool,
    dir: TempDir,
}

/// The nginx binary, if installed: `$WSBEAT_NGINX` if set (a path; one that does not exist
/// counts as "not installed"), else `/usr/sbin/nginx`, else `nginx` on `PATH`.
pub fn nginx_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("WSBEAT_NGINX") {
        let path = PathBuf::from(path);
        return path.is_file().then_some(path);
    }
    let sbin = Path::new("/usr/sbin/nginx");
    if sbin.is_file() {
        return Some(sbin.to_path_buf());
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("nginx"))
            .find(|p| p.is_file())
    })
}

/// Whether a missing peer (nginx) must fail the test rather than skip it.
pub fn peers_required() -> bool {
    std::env::var("WSBEAT_REQUIRE_PEERS").is_ok_and(|v| v == "1")
}

fn free_port() -> u16 {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
    l.local_addr().expect("local_addr").port()
}

/// `*_temp_path` lines for the modules this nginx has (a directive of a module built
/// `--without-...` is a config error; a missing one makes nginx create its default path).
fn temp_paths(binary: &Path, dir: &Path) -> String {
    let build = Command::new(binary)
        .arg("-V")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
        .unwrap_or_default();
    ["fastcgi", "uwsgi", "scgi"]
        .iter()
        .filter(|m| !build.contains(&format!("--without-http_{m}_module")))
        .map(|m| format!("    {m}_temp_path {}/{m};\n", dir.display()))
        .collect()
}

fn config(binary: &Path, dir: &Path, port: u16, backend_port: u16, opts: NginxOptions) -> String {
    let d = dir.display();
    let files = certs().write_all(dir);
    let ((cert, key), ca) = (&files.server, &files.ca);
    let temp_paths = temp_paths(binary, dir);
    let mut server = String::new();
    if opts.tls {
        server.push_str(&format!(
            "        listen 127.0.0.1:{port} ssl;\n        \
             ssl_certificate {};\n        ssl_certificate_key {};\n",
            cert.display(),
            key.display()
        ));
        if opts.verify_client {
            server.push_str(&format!(
                "        ssl_verify_client on;\n        ssl_client_certificate {};\n",
                ca.display()
            ));
        }
    } else {
        server.push_str(&format!("        listen 127.0.0.1:{port};\n"));
    }
    format!(
        "daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{
    worker_connections 64;
}}
http {{
    access_log {d}/access.log;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
{temp_paths}    server {{
{server}        location / {{
            proxy_pass http://127.0.0.1:{backend_port};
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection \"upgrade\";
            proxy_set_header Host $http_host;
            proxy_read_timeout 1h;
            proxy_send_timeout 1h;
            proxy_buffering off;
        }}
    }}
}}
"
    )
}

impl Nginx {
    /// Starts nginx in front of `127.0.0.1:<backend_port>`, waiting until its port accepts.
    /// `None` if nginx is not installed (a panic if `WSBEAT_REQUIRE_PEERS=1`).
    pub fn start(backend_port: u16, opts: NginxOptions) -> Option<Nginx> {
        let Some(binary) = nginx_binary() else {
            assert!(
                !peers_required(),
                "nginx is not installed but WSBEAT_REQUIRE_PEERS=1 (install nginx-light)"
            );
            return None;
        };
        // The free port may be taken between our probe and nginx's bind: try a few.
        let mut last_error = String::new();
        for _ in 0..3 {
            let dir = TempDir::new("wsbeat-nginx");
            let port = free_port();
            let conf = dir.path().join("nginx.conf");
            fs::write(&conf, config(&binary, dir.path(), port, backend_port, opts))
                .expect("write conf");
            let child = Command::new(&binary)
                .arg("-p")
                .arg(dir.path())
                .arg("-c")
                .arg(&conf)
                .arg("-e")
                .arg(dir.path().join("error.log"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("spawn {}: {e}", binary.display()));
            let mut nginx = Nginx {
                child,
                port,
                tls: opts.tls,
                dir,
            };
            match nginx.wait_ready(Duration::from_secs(5)) {
                Ok(()) => return Some(nginx),
                Err(e) => last_error = e,
            }
        }
        panic!("nginx did not start: {last_error}");
    }

    fn wait_ready(&mut self, limit: Duration) -> Result<(), String> {
        let end = Instant::now() + limit;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("exited with {status}: {}", self.error_log()));
            }
            // nginx runs with `master_process off`: the listener is the child's own, and a
            // listener of another test on a port just freed does not count.
            if super::listen::pid_listens_on(self.child.id(), self.port)
                && TcpStream::connect((Ipv4Addr::LOCALHOST, self.port)).is_ok()
            {
                return Ok(());
            }
            if Instant::now() >= end {
                return Err(format!(
                    "port not open after {limit:?}: {}",
                    self.error_log()
                ));
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `wss://localhost:PORT/` with TLS, `ws://127.0.0.1:PORT/` without.
    pub fn url(&self) -> String {
        if self.tls {
            format!("wss://localhost:{}/", self.port)
        } else {
            format!("ws://127.0.0.1:{}/", self.port)
        }
    }

    /// nginx's error log so far.
    pub fn error_log(&self) -> String {
        fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts nginx or, when it is not installed (and not required), prints the skip notice.
/// Use as `let Some(nginx) = common::nginx::start_or_skip(port, opts) else { return };`
pub fn start_or_skip(backend_port: u16, opts: NginxOptions) -> Option<Nginx> {
    let nginx = Nginx::start(backend_port, opts);
    if nginx.is_none() {
        eprintln!("skipped: nginx not installed");
    }
    nginx
}
