//! The `run(handler)` convenience loop, with callbacks named after the browser API.
#![forbid(unsafe_code)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::{Client, DisconnectReason, Error, Event, Message};

/// Callbacks for [`Client::run`], named after the browser's `WebSocket` (`onopen`,
/// `onmessage`, `onclose`, `onerror`). Every method has an empty default; each gets the
/// client, so it can [`send`](Client::send) or [`close`](Client::close).
///
/// ```no_run
/// use std::sync::atomic::AtomicBool;
/// use wsbeat::{Client, Config, Handler, Message};
///
/// struct Printer;
/// impl Handler for Printer {
///     fn on_open(&mut self, _client: &mut Client, _protocol: Option<&str>) -> Vec<Message> {
///         vec![Message::text("hello")] // goes before anything queued offline
///     }
///     fn on_message(&mut self, _client: &mut Client, msg: Message) {
///         println!("{msg:?}");
///     }
/// }
///
/// static STOP: AtomicBool = AtomicBool::new(false); // set it from a signal handler
/// let mut client = Client::new(Config::new("ws://127.0.0.1:9000/")).unwrap();
/// let end = client.run(&mut Printer, &STOP);
/// println!("{end:?}");
/// ```
pub trait Handler {
    /// A link opened (`onopen`), with the negotiated subprotocol. Returns the hello: messages
    /// that go first on this link (authentication, a subscription), before anything queued
    /// while offline; the backlog waits until this returns. Messages sent here with
    /// [`Client::send`] go after the backlog.
    fn on_open(&mut self, _client: &mut Client, _protocol: Option<&str>) -> Vec<Message> {
        Vec::new()
    }
    /// A data message arrived (`onmessage`).
    fn on_message(&mut self, _client: &mut Client, _msg: Message) {}
    /// A link ended (`onclose`); a reconnect follows unless the application closed it.
    fn on_close(&mut self, _client: &mut Client, _reason: &DisconnectReason) {}
    /// A connect attempt failed (`onerror`).
    fn on_error(&mut self, _client: &mut Client, _error: &Error) {}
    /// Every other event (pings, pongs, reconnect scheduling, ...), for logging or metrics.
    fn on_event(&mut self, _client: &mut Client, _event: &Event) {}
    /// Called at every wake, at least every [`tick_interval`](Handler::tick_interval).
    fn on_tick(&mut self, _client: &mut Client) {}
    /// The longest [`Client::run`] sleeps before checking the stop flag and calling
    /// [`on_tick`](Handler::on_tick). Defaults to 1 s; longer means fewer wakeups.
    fn tick_interval(&self) -> Duration {
        Duration::from_secs(1)
    }
}

/// How [`Client::run`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RunEnd {
    /// Closed cleanly, after the stop flag or a `close()` from a callback.
    Closed,
    /// Gave up reconnecting.
    GaveUp,
}

impl Client {
    /// Runs the client until it closes or gives up, calling `handler` for every event.
    ///
    /// `stop` is checked at every wake (at least every [`Handler::tick_interval`]; at once when
    /// the code that sets it also calls [`Waker::wake`](crate::Waker::wake) from
    /// [`Client::waker`]); once set, the client closes cleanly: queued messages are sent, then
    /// Close 1000, then the reply is awaited for at most `close_timeout`.
    pub fn run<H: Handler + ?Sized>(&mut self, handler: &mut H, stop: &AtomicBool) -> RunEnd {
        let mut closing = false;
        // The hello comes from `on_open`: the outbox waits for it on every new link.
        self.set_hello_from_application(true);
        let end = loop {
            if !closing && stop.load(Ordering::Relaxed) {
                closing = true;
                self.close();
            }
            let event = self.poll(handler.tick_interval());
            handler.on_tick(self);
            let Some(event) = event else { continue };
            match event {
                Event::Connected { ref protocol, .. } => {
                    let protocol = protocol.clone();
                    handler.on_event(self, &event);
                    let hello = handler.on_open(self, protocol.as_deref());
                    self.provide_hello(hello);
                }
                Event::Message(msg) => handler.on_message(self, msg),
                Event::Disconnected { ref reason, .. } => handler.on_close(self, reason),
                Event::ConnectFailed { ref error, .. } => handler.on_error(self, error),
                Event::Closed { .. } => {
                    handler.on_event(self, &event);
                    break RunEnd::Closed;
                }
                Event::GaveUp { .. } => {
                    handler.on_event(self, &event);
                    break RunEnd::GaveUp;
                }
                other => handler.on_event(self, &other),
            }
        };
        self.set_hello_from_application(false);
        end
    }
}
