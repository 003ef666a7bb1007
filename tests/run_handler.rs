//! The `run(handler)` loop: browser-style callbacks and a stop flag.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{refused_port, watchdog, Mode, Received, TestServer};
use wsbeat::{Client, Config, DisconnectReason, Error, Handler, Message, RunEnd};

#[derive(Default)]
struct Recorder {
    calls: Vec<String>,
    stop: Option<Arc<AtomicBool>>,
}

impl Handler for Recorder {
    fn on_open(&mut self, _client: &mut Client, _protocol: Option<&str>) -> Vec<Message> {
        self.calls.push("open".into());
        vec![Message::text("hello")]
    }
    fn on_message(&mut self, _client: &mut Client, msg: Message) {
        self.calls
            .push(format!("message {}", msg.as_text().unwrap_or("?")));
        if let Some(stop) = &self.stop {
            stop.store(true, Ordering::Relaxed);
        }
    }
    fn on_close(&mut self, _client: &mut Client, reason: &DisconnectReason) {
        self.calls.push(format!("close {}", reason.kind()));
    }
    fn on_error(&mut self, _client: &mut Client, error: &Error) {
        self.calls
            .push(format!("error {}", error.http_status().is_some()));
    }
    fn tick_interval(&self) -> Duration {
        Duration::from_millis(50)
    }
}

#[test]
fn stop_flag_closes_cleanly_and_run_returns() {
    let _w = watchdog(Duration::from_secs(20), "run_stop");
    let server = TestServer::start(Mode::Echo);
    let stop = Arc::new(AtomicBool::new(false));
    let mut handler = Recorder {
        stop: Some(stop.clone()),
        ..Recorder::default()
    };
    let mut client = Client::new(Config::new(server.url())).unwrap();
    assert_eq!(client.run(&mut handler, &stop), RunEnd::Closed);
    assert_eq!(
        handler.calls,
        ["open", "message hello", "close local_close"]
    );
    server.wait_for(Duration::from_secs(2), "close frame", |s| {
        !s.close_frames_received().is_empty()
    });
    assert_eq!(server.received(), [Received::Text("hello".into())]);
}

#[test]
fn stop_flag_set_from_another_thread_is_seen_within_a_tick() {
    let _w = watchdog(Duration::from_secs(20), "run_stop_thread");
    let server = TestServer::start(Mode::Echo);
    let stop = Arc::new(AtomicBool::new(false));
    let setter = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            stop.store(true, Ordering::Relaxed);
            Instant::now()
        })
    };
    let mut client = Client::new(Config::new(server.url())).unwrap();
    let end = client.run(&mut Recorder::default(), &stop);
    let set_at = setter.join().unwrap();
    assert_eq!(end, RunEnd::Closed);
    assert!(
        set_at.elapsed() < Duration::from_millis(200),
        "run returned {:?} after the flag",
        set_at.elapsed()
    );
}

#[test]
fn give_up_ends_run() {
    let _w = watchdog(Duration::from_secs(20), "run_give_up");
    let url = format!("ws://127.0.0.1:{}/", refused_port());
    let config = Config::new(url)
        .backoff(Duration::from_millis(10), Duration::from_millis(20))
        .max_retries(Some(1));
    let mut handler = Recorder::default();
    let end = Client::new(config)
        .unwrap()
        .run(&mut handler, &AtomicBool::new(false));
    assert_eq!(end, RunEnd::GaveUp);
    assert_eq!(handler.calls, ["error false", "error false"]);
}
