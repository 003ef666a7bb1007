//! The hello for C: a callback run each time a link opens, whose messages go first on it
//! (authentication, a subscription), before anything queued while offline.

use std::ffi::c_void;

use super::args::bytes_arg;
use super::client::{wsbeat_client, ClientPtr};
use super::event::wsbeat_message_type;
use super::guard::{catch, status};
use super::status::wsbeat_status;
use crate::Message;

/// The messages of one hello (opaque), handed to a `wsbeat_hello_callback`. Valid only
/// during that callback; add messages with `wsbeat_hello_add`.
pub struct wsbeat_hello {
    messages: Vec<Message>,
}

/// Called with `userdata` and an empty hello each time a link opens, before
/// `WSBEAT_EVENT_CONNECTED` is returned; the messages it adds are sent first on that link.
pub type wsbeat_hello_callback =
    Option<unsafe extern "C" fn(userdata: *mut c_void, hello: *mut wsbeat_hello)>;

/// The C callback and its userdata, as the client's hello.
struct CHello {
    callback: unsafe extern "C" fn(*mut c_void, *mut wsbeat_hello),
    userdata: *mut c_void,
}

// SAFETY: the hello runs on the thread that calls wsbeat_client_poll, and a client is used
// from one thread at a time; the C caller promises, by installing it, that the callback and
// userdata may be used from whichever thread polls (the documented contract).
unsafe impl Send for CHello {}

impl CHello {
    fn call(&mut self) -> Vec<Message> {
        let mut hello = wsbeat_hello {
            messages: Vec::new(),
        };
        // SAFETY: the caller of wsbeat_client_set_hello promised the callback is safe to call
        // with its userdata; `hello` outlives the call.
        unsafe { (self.callback)(self.userdata, &mut hello) };
        hello.messages
    }
}

/// Installs `callback`, called with `userdata` each time a link opens (replacing any earlier
/// one); the messages it adds with `wsbeat_hello_add` go first on the new link, before
/// anything restored from the outbox file or queued while offline and before anything sent
/// after `WSBEAT_EVENT_CONNECTED`. It runs inside `wsbeat_client_poll`, on its thread, so it
/// can build a fresh token; it must not call functions of this client (`WSBEAT_BUSY`).
///
/// # Safety
/// `client` is NULL or a live handle; `callback` is safe to call with `userdata` for as long
/// as the client lives.
#[no_mangle]
pub unsafe extern "C" fn wsbeat_client_set_hello(
    client: *mut wsbeat_client,
    callback: wsbeat_hello_callback,
    userdata: *mut c_void,
) -> wsbeat_status {
    // SAFETY: the caller promises a live handle or NULL.
    status(
        unsafe { ClientPtr::new(client) }.enter("wsbeat_client_set_hello", |inner, _| {
            let callback = callback.ok_or(wsbeat_status::WSBEAT_NULL_ARGUMENT)?;
            let mut hello = CHello { callback, userdata };
            inner.client.set_hello(move || hello.call());
            Ok(())
        }),
    )
}

/// Adds a message of `message_type` (a `wsbeat_message_type`), copying `len` bytes at `data`
/// (the buffer stays yours), to the hello being built. `WSBEAT_INVALID_ARGUMENT` for an
/// unknown type or text that is not UTF-8.
///
/// # Safety
/// `hello` is NULL or the pointer a hello callback was given, during that callback; `data`
/// is NULL or points to `len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn wsbeat_hello_add(
    hello: *mut wsbeat_hello,
    message_type: u32,
    data: *const u8,
    len: usize,
) -> wsbeat_status {
    catch(|| {
        // SAFETY: the caller promises the callback's own pointer (or NULL), live during it.
        let Some(hello) = (unsafe { hello.as_mut() }) else {
            return wsbeat_status::WSBEAT_NULL_ARGUMENT;
        };
        // SAFETY: the caller promises `len` readable bytes at `data`, or NULL.
        let added = unsafe { bytes_arg(data, len) }
            .and_then(|bytes| wsbeat_message_type::message(message_type, bytes))
            .map(|msg| hello.messages.push(msg));
        status(added)
    })
}
