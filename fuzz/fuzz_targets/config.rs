//! Configuration and URL parsing: `Client::new` with arbitrary URLs, headers, subprotocols,
//! origin, proxy, durations, sizes, backoff numbers and close codes must return `Ok` or an
//! error, never panic. When it returns a client, everything that needs no network runs too:
//! `Debug` (the redaction code), `send` into the outbox, the state getters, a request hook
//! that rewrites the URL and headers of the first attempt (its parsing and request building
//! run when the attempt is announced, before any I/O), and `close`.
//!
//! No input reaches the network: the client is polled only until it announces its first
//! attempt (`Connecting`), which happens before any lookup or connect; a second poll would
//! connect, so there is none.
#![no_main]

use std::time::Duration;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use wsbeat::{AppHeartbeat, Client, Config, Event, Message};

#[derive(Arbitrary, Debug)]
struct Input {
    url: String,
    durations: [(u64, u32); 7],
    max_missed: u32,
    factor: f64,
    jitter: f64,
    max_retries: Option<u32>,
    sizes: [usize; 5],
    headers: Vec<(String, String)>,
    protocols: Vec<String>,
    origin: Option<String>,
    proxy: Option<String>,
    final_close_codes: Vec<u16>,
    final_http_statuses: Vec<u16>,
    app_heartbeat: Option<(String, Vec<u8>)>,
    tls_insecure: bool,
    message: Option<Vec<u8>>,
    hook: Option<(String, Vec<(String, String)>)>,
    close: Option<(u16, String)>,
}

fn duration((secs, nanos): (u64, u32)) -> Duration {
    // Keep nanos in range: Duration::new would carry them into seconds (and may overflow).
    Duration::new(secs, nanos % 1_000_000_000)
}

fuzz_target!(|input: Input| {
    let d = input.durations.map(duration);
    let mut c = Config::new(input.url.clone())
        .ping_interval(d[0])
        .pong_timeout(d[1])
        .max_missed_pongs(input.max_missed)
        .backoff(d[2], d[3])
        .connect_timeout(d[4])
        .close_timeout(d[5])
        .max_retries(input.max_retries);
    c.write_timeout = d[6];
    c.backoff.factor = input.factor;
    c.backoff.jitter = input.jitter;
    c.max_message_size = input.sizes[0];
    c.max_frame_size = input.sizes[1];
    c.read_buffer_size = input.sizes[2];
    c.outbox.max_messages = input.sizes[3];
    c.outbox.max_bytes = input.sizes[4];
    c.headers = input.headers.clone();
    c.protocols = input.protocols.clone();
    c.origin = input.origin.clone();
    c.proxy = input.proxy.clone();
    c.final_close_codes = input.final_close_codes.clone();
    c.final_http_statuses = input.final_http_statuses.clone();
    c.tls.danger_accept_invalid_certs = input.tls_insecure;
    if let Some((text, bytes)) = &input.app_heartbeat {
        c = c.app_heartbeat(AppHeartbeat::new(
            Message::text(text.clone()),
            Message::binary(bytes.clone()),
        ));
    }
    let _ = format!("{c:?}");
    let _ = c.heartbeat.detection_bound();
    let mut client = match Client::new(c) {
        Ok(client) => client,
        Err(e) => {
            let _ = e.to_string();
            let _ = format!("{e:?}");
            return;
        }
    };
    let _ = format!("{client:?}");
    let _ = (
        client.ready_state(),
        client.next_wakeup(),
        client.is_stopped(),
    );
    if let Some(bytes) = input.message {
        match client.send(Message::binary(bytes)) {
            Ok(()) => assert!(client.buffered_messages() == 1),
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }
    let _ = (client.buffered_amount(), client.stats());
    if let Some((url, headers)) = input.hook {
        client.set_request_hook(move |req| {
            let _ = format!("{req:?}");
            req.url = url.clone();
            req.headers = headers.clone();
        });
    }
    // Announces attempt 1 (the hook runs, the request is built): no I/O yet.
    match client.poll(Duration::ZERO) {
        Some(Event::Connecting { attempt: 1, .. }) => {}
        other => panic!("first poll: {other:?}"),
    }
    match input.close {
        Some((code, reason)) => client.close_with(code, &reason),
        None => client.close(),
    }
    // Not connected: closing is immediate, and the next polls do no I/O.
    match client.poll(Duration::ZERO) {
        Some(Event::Closed { code: None }) => {}
        other => panic!("after close: {other:?}"),
    }
    assert!(client.poll(Duration::ZERO).is_none() && client.is_stopped());
    let _ = client.take_unsent();
});
