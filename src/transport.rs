//! The tungstenite settings of a link.
#![forbid(unsafe_code)]

use tungstenite::protocol::WebSocketConfig;

use crate::Config;

/// The tungstenite settings for a device: small buffers, bounded messages and write buffer.
pub(crate) fn websocket_config(config: &Config) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(config.read_buffer_size)
        // Write each message at once: the driver needs to know what the kernel took.
        .write_buffer_size(0)
        // One message plus frame headers and a queued pong or close.
        .max_write_buffer_size(config.max_message_size.saturating_add(1024))
        .max_message_size(Some(config.max_message_size))
        .max_frame_size(Some(config.max_frame_size))
}
