//! The request hook for C: a callback run before every connect attempt, which may replace the
//! URL and headers of that attempt (a renewed token, a failover host).

use std::ffi::{c_char, c_void, CString};

use super::args::str_arg;
use super::client::{wsbeat_client, ClientPtr};
use super::guard::{catch, catch_or, status};
use super::status::wsbeat_status;
use crate::AttemptRequest;

/// The next attempt's URL and headers (opaque), handed to a `wsbeat_request_hook`. Valid only
/// during that callback; change it with the `wsbeat_request_*` functions.
pub struct wsbeat_request {
    req: *mut AttemptRequest,
    /// The URL as a C string, for `wsbeat_request_url`; remade when the URL changes.
    url: CString,
}

/// Called before every connect attempt with `userdata` and the attempt's request. An invalid
/// URL or header set here fails that attempt (the backoff applies).
pub type wsbeat_request_hook =
    Option<unsafe extern "C" fn(userdata: *mut c_void, request: *mut wsbeat_request)>;

/// The C callback and its userdata, as the client's hook.
struct CHook {
    callback: unsafe extern "C" fn(*mut c_void, *mut wsbeat_request),
    userdata: *mut c_void,
}

// SAFETY: the hook runs on the thread that calls wsbeat_client_poll, and a client is used
// from one thread at a time; the C caller promises, by installing it, that the callback and
// userdata may be used from whichever thread polls (the documented contract).
unsafe impl Send for CHook {}

impl CHook {
    fn call(&mut self, req: &mut AttemptRequest) {
        let mut view = wsbeat_request {
            url: c_string(&req.url),
            req,
        };
        // SAFETY: the caller of wsbeat_client_set_request_hook promised the callback is safe
        // to call with its userdata; `view` and the request it points to outlive the call.
        unsafe { (self.callback)(self.userdata, &mut view) };
    }
}

/// Installs `hook`, called with `userdata` before every connect attempt (replacing any
/// earlier hook). The callback runs inside `wsbeat_client_poll`, on its thread; it must not
/// call functions of this client (`WSBEAT_BUSY`), only the `wsbeat_request_*` functions.
///
/// # Safety
/// `client` is NULL or a live handle; `hook` is safe to call with `userdata` for as long as
/// the client lives.
#[no_mangle]
pub unsafe extern "C" fn wsbeat_client_set_request_hook(
    client: *mut wsbeat_client,
    hook: wsbeat_request_hook,
    userdata: *mut c_void,
) -> wsbeat_status {
    // SAFETY: the caller promises a live handle or NULL.
    status(
        unsafe { ClientPtr::new(client) }.enter("wsbeat_client_set_request_hook", |inner, _| {
            let callback = hook.ok_or(wsbeat_status::WSBEAT_NULL_ARGUMENT)?;
            let mut hook = CHook { callback, userdata };
            inner.client.set_request_hook(move |req| hook.call(req));
            Ok(())
        }),
    )
}

/// A request pointer from C, vouched for by the caller of [`RequestPtr::new`].
struct RequestPtr(*mut wsbeat_request);

impl RequestPtr {
    /// # Safety
    /// `ptr` is NULL or the pointer a hook was given, during that hook.
    unsafe fn new(ptr: *mut wsbeat_request) -> RequestPtr {
        RequestPtr(ptr)
    }

    /// Runs `f` on the request; NULL gives `WSBEAT_NULL_ARGUMENT`, a panic `WSBEAT_PANIC`.
    fn with(
        self,
        f: impl FnOnce(&mut wsbeat_request, &mut AttemptRequest) -> Result<(), wsbeat_status>,
    ) -> wsbeat_status {
        catch(|| {
            // SAFETY: `new`'s caller vouched for the hook's own pointer (or NULL), live
            // during the hook.
            let Some(view) = (unsafe { self.0.as_mut() }) else {
                return wsbeat_status::WSBEAT_NULL_ARGUMENT;
            };
            // SAFETY: `req` was made from the `&mut AttemptRequest` the hook holds for the
            // call, and nothing else uses it meanwhile.
            let req = unsafe { &mut *view.req };
            status(f(view, req))
        })
    }
}

/// The attempt's number (from 1); 0 if `request` is NULL.
///
/// # Safety
/// `request` is NULL or the pointer a hook was given, during that hook.
#[no_mangle]
pub unsafe extern "C" fn wsbeat_request_attempt(request: *const wsbeat_request) -> u64 {
    catch_or(0, || {
        // SAFETY: the caller promises the hook's own pointer (or NULL), live during the hook.
        unsafe { request.as_ref() }.map_or(0, |view| {
            // SAFETY: as above; `req` is live for the hook's call.
            unsafe { &*view.req }.attempt
        })
    })
}

/// The URL the attempt will use, NUL-terminated; valid until the hook returns or the URL is
/// set. "" if `request` is NULL.
///
/// # Safety
/// `request` is NULL or the pointer a hook was given, during that hook.
#[no_mangle]
pub unsafe extern "C" fn wsbeat_request_url(request: *const wsbeat_request) -> *const c_char {
    // SAFETY: the caller promises the hook's own pointer (or NULL), live during the hook.
    match unsafe { request.as_ref() } {
        Some(view) => view.url.as_ptr(),
        None => c"".as_ptr(),
    }
}

/// Replaces the URL of this attempt (copied).
///
/// # Safety
/// `request` is NULL or the pointer a hook was given, during that hook; `url` is NULL or a
/// NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn wsbeat_request_set_url(
    request: *mut wsbeat_request,
    url: *const c_char,
) -> wsbeat_status {
    // SAFETY: the caller's promises, passed on.
    unsafe { RequestPtr::new(request) }.with(|view, req| {
        // SAFETY: the caller promises a NUL-terminated string or NULL.
        req.url = unsafe { str_arg(url) }?.to_owned();
        view.url = c_string(&req.url);
        Ok(())
    })
}

/// Sets header `name` to `value` for this attempt (both copied): every header of that name
/// (compared ignoring ASCII case) is replaced by this one, e.g. a renewed `Authorization`.
///
/// # Safety
/// `request` is NULL or the pointer a hook was given, during that hook; `name` and `value`
/// are NULL or NUL-terminated strings.
#[no_mangle]
pub unsafe extern "C" fn wsbeat_request_set_header(
    request: *mut wsbeat_request,
    name: *const c_char,
    value: *const c_char,
) -> wsbeat_status {
    // SAFETY: the caller's promises, passed on.
    unsafe { RequestPtr::new(request) }.with(|_, req| {
        // SAFETY: the caller promises a NUL-terminated string or NULL.
        let (name, value) = unsafe { (str_arg(name)?, str_arg(value)?) };
        req.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        req.headers.push((name.to_owned(), value.to_owned()));
        Ok(())
    })
}

/// Removes every header named `name` (ignoring ASCII case) from this attempt.
///
/// # Safety
/// `request` is NULL or the pointer a hook was given, during that hook; `name` is NULL or a
/// NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn wsbeat_request_remove_header(
    request: *mut wsbeat_request,
    name: *const c_char,
) -> wsbeat_status {
    // SAFETY: the caller's promises, passed on.
    unsafe { RequestPtr::new(request) }.with(|_, req| {
        // SAFETY: the caller promises a NUL-terminated string or NULL.
        let name = unsafe { str_arg(name) }?;
        req.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        Ok(())
    })
}

/// `text` as a C string (interior NULs, which no valid URL has, become spaces).
fn c_string(text: &str) -> CString {
    CString::new(text.replace('\0', " ")).unwrap_or_default()
}
