//! The C telemetry daemon (`examples/c/telemetry.c`), built the way docs/from-c.md says
//! (natively: `cc ... $(pkg-config --cflags --libs wsbeat)` against the installed prefix),
//! started while its server is down, then the server comes up: the readings taken offline
//! arrive first and in order, and SIGTERM ends it with a Close frame and exit status 0.

use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::cbuild::{built, run};
use crate::common::{refused_port, watchdog, Mode, Received, TestServer};

#[test]
fn c_telemetry_example_builds_with_pkg_config_and_queues_offline() {
    let _w = watchdog(
        Duration::from_secs(300),
        "c_telemetry_example_builds_with_pkg_config_and_queues_offline",
    );
    let b = built();
    let exe = b.root.join("target/capi/test-bin/telemetry");
    let src = b.root.join("examples/c/telemetry.c");
    if b.is_cross() {
        // No pkg-config for the target here: the static archive and its Libs.private.
        let pc = std::fs::read_to_string(b.prefix.join("lib/pkgconfig/wsbeat.pc")).unwrap();
        let private = pc
            .lines()
            .find_map(|l| l.strip_prefix("Libs.private:"))
            .unwrap_or("");
        let mut cmd = Command::new(&b.cc);
        cmd.args(["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"])
            .arg(format!("-I{}", b.prefix.join("include").display()))
            .arg(&src)
            .arg("-o")
            .arg(&exe)
            .arg(b.prefix.join("lib/libwsbeat.a"))
            .args(private.split_whitespace());
        run(&mut cmd, "compiling the example").unwrap();
    } else {
        let line = format!(
            "cc -std=c99 -Wall -Wextra -Werror -pedantic {} -o {} $(pkg-config --cflags --libs wsbeat)",
            src.display(),
            exe.display()
        );
        let pc_path = b.prefix.join("lib/pkgconfig");
        run(
            Command::new("sh")
                .args(["-c", &line])
                .env("PKG_CONFIG_PATH", &pc_path),
            "compiling the example with pkg-config",
        )
        .unwrap();
    }

    let port = refused_port();
    let url = format!("ws://127.0.0.1:{port}/");
    let mut cmd = if b.is_cross() {
        let mut c = Command::new(&b.runner[0]);
        c.args(&b.runner[1..]).arg(&exe);
        c
    } else {
        let mut c = Command::new(&exe);
        c.env("LD_LIBRARY_PATH", b.prefix.join("lib"));
        c
    };
    let mut child = cmd
        .args([url.as_str(), "100"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the example");

    // Offline for a while: readings pile up in wsbeat's outbox.
    thread::sleep(Duration::from_millis(800));
    let server = TestServer::start_on(port, Mode::Echo).expect("server on the example's port");
    server.wait_for(Duration::from_secs(30), "ten readings", |s| {
        s.received().len() >= 10
    });
    let pid = Pid::from_raw(i32::try_from(child.id()).expect("pid fits"));
    kill(pid, Signal::SIGTERM).expect("SIGTERM");
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "the example ignored SIGTERM");
        thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut stderr);
    }
    assert!(status.success(), "exit {status}; stderr:\n{stderr}");

    // In order from the first reading, though the first ones were taken offline.
    let seqs: Vec<u64> = server
        .received()
        .iter()
        .map(|r| match r {
            Received::Text(t) => t
                .strip_prefix("{\"seq\":")
                .and_then(|t| t.split(',').next())
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("not a reading: {t}")),
            Received::Binary(b) => panic!("binary reading {b:?}"),
        })
        .collect();
    let expected: Vec<u64> = (1..=seqs.len() as u64).collect();
    assert_eq!(seqs, expected, "readings in order, none lost");
    assert!(stderr.contains("online (attempt"), "stderr:\n{stderr}");
    server.wait_for(Duration::from_secs(5), "the close frame", |s| {
        s.close_frames_received() == [Some(1000)]
    });
}
