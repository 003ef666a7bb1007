//! What the outbox keeps, how long, and what happens when it is full.
#![forbid(unsafe_code)]

/// The delivery promise for sent messages.
///
/// ```
/// use wsbeat::{Config, Delivery};
/// let config = Config::new("ws://127.0.0.1:9000/").delivery(Delivery::AtLeastOnce);
/// assert_eq!(config.delivery, Delivery::AtLeastOnce);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Delivery {
    /// A message leaves the outbox once the kernel has taken it. If the link then dies, it may
    /// be lost; `Event::Disconnected::unconfirmed` counts the window of possible loss.
    #[default]
    AtMostOnce,
    /// A message stays in the outbox (counted against its limits) until a Pong proves the
    /// server read it: the Pong answers a Ping sent after the message, and TCP keeps order.
    /// When a link dies, every unproven message goes back to the front of the queue, in order,
    /// and is sent again on the next link. Duplicates are possible, but only for messages in
    /// that unproven window; number your messages to drop them at the server.
    AtLeastOnce,
}

/// What [`Client::send`](crate::Client::send) does when the outbox is at a limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum WhenFull {
    /// Hand the new message back (`SendError::OutboxFull`): back-pressure on the producer.
    #[default]
    Refuse,
    /// Drop the oldest message still waiting to be sent (never one already on the wire) to
    /// make room, and say so with `Event::Dropped`. When nothing is waiting to be sent (the
    /// room is all taken by messages awaiting proof), the new message is refused.
    DropOldest,
}

/// When the durable outbox file is flushed to flash (`fdatasync`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum OutboxSync {
    /// Before [`Client::send`](crate::Client::send) returns: a message accepted is on flash,
    /// whatever happens next. One flash write cycle per message.
    Always,
    /// At most once per period: a power cut loses at most the last period's messages (a crash
    /// of the process alone loses nothing: the kernel has them). At most `60 / T` fsyncs a
    /// minute.
    Every(std::time::Duration),
    /// Never explicitly: the kernel writes back when it likes (seconds to tens of seconds).
    Never,
}

impl Default for OutboxSync {
    /// `Every(1 s)`.
    fn default() -> Self {
        OutboxSync::Every(std::time::Duration::from_secs(1))
    }
}

/// Bounds of the queue that keeps messages while the link is down.
///
/// Messages written to a link that then died, but not yet handed to the kernel, count here too
/// and go back to the front of the queue; with [`Delivery::AtLeastOnce`], so do messages the
/// kernel took that no Pong has proven read yet.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct OutboxConfig {
    /// Most messages kept. Defaults to 1000.
    pub max_messages: usize,
    /// Most payload bytes kept. Defaults to 1 MiB.
    pub max_bytes: usize,
    /// What a full outbox does with a new message. Defaults to [`WhenFull::Refuse`].
    pub when_full: WhenFull,
    /// A file on flash that keeps the outbox across restarts and power loss: every accepted
    /// message is appended before `send` returns and removed only once proven delivered
    /// (at-least-once delivery is implied); at start the messages in it are restored and sent
    /// first after the hello, in their original order. A file that cannot be opened or
    /// created, or that another process holds (an advisory lock on `PATH.lock`), is a
    /// configuration error naming `outbox.file`. Defaults to none (the outbox is in memory).
    pub file: Option<std::path::PathBuf>,
    /// When the file is flushed to flash. Defaults to [`OutboxSync::Every`] 1 s.
    pub sync: OutboxSync,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        OutboxConfig {
            max_messages: 1000,
            max_bytes: 1 << 20,
            when_full: WhenFull::Refuse,
            file: None,
            sync: OutboxSync::default(),
        }
    }
}
