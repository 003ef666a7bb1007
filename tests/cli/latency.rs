//! Measures the time from writing a line to wsbeat's stdin to the server receiving it.
//! Ignored by default; run with
//! `cargo test --release --test cli measure_stdin_send_latency -- --ignored --nocapture`.
#![forbid(unsafe_code)]

use std::thread;
use std::time::{Duration, Instant};

use super::common::{watchdog, Mode, TestServer};
use super::harness::{Wsbeat, SLOW};

#[test]
#[ignore = "measurement, not a check"]
fn measure_stdin_send_latency() {
    let _w = watchdog(Duration::from_secs(60), "measure_stdin_send_latency");
    let server = TestServer::start(Mode::Echo);
    let mut ws = Wsbeat::spawn(&["-q", &server.url()]);
    ws.event("connected", SLOW);
    let mut to_server = Vec::new();
    let mut round_trip = Vec::new();
    for i in 0..100 {
        let t0 = Instant::now();
        ws.write(&format!("m{i}\n"));
        // Spin: the server's own wait_for polls every 5 ms, far too coarse here.
        while server.received().len() <= i {
            assert!(t0.elapsed() < SLOW, "line {i} never arrived");
            thread::yield_now();
        }
        to_server.push(t0.elapsed());
        assert_eq!(ws.stdout_line(SLOW), format!("m{i}"));
        round_trip.push(t0.elapsed());
        thread::sleep(Duration::from_millis(10));
    }
    report("stdin -> server", &mut to_server);
    report("stdin -> server -> stdout", &mut round_trip);
}

fn report(what: &str, v: &mut [Duration]) {
    v.sort();
    let us = |d: Duration| d.as_micros();
    println!(
        "{what}: n={} min={}us median={}us p90={}us max={}us",
        v.len(),
        us(v[0]),
        us(v[v.len() / 2]),
        us(v[v.len() * 9 / 10]),
        us(v[v.len() - 1])
    );
}
