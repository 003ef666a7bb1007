//! The tungstenite settings of a link.
#![forbid(unsafe_code)]

use tungstenite::protocol::WebSocketConfig;

use crate::Config;

/// The tungstenite settings for a device: small buffers, bounded messages and write buffer.
pub(crate) fn websocket_config(config: &Config) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(config.read_buffer_size)
        // Frames held for company (see `session::coalesce`) are written out by tungstenite
        // itself once this many bytes wait; the meter still counts what the kernel took.
        .write_buffer_size(crate::session::COALESCE_BYTES)
        // Held frames, one more message with its frame header, and a queued pong or close.
        .max_write_buffer_size(
            config
                .max_message_size
                .saturating_add(crate::session::COALESCE_BYTES)
                .saturating_add(1024),
        )
        .max_message_size(Some(config.max_message_size))
        .max_frame_size(Some(config.max_frame_size))
}
