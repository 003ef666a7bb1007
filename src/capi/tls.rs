//! TLS settings for `wss://` (feature `tls`): declared in the header only under
//! `WSBEAT_FEATURE_TLS`, which the pkg-config file of a TLS build defines. Certificates and
//! keys are checked by `wsbeat_client_new` (field `tls.*`).

use std::ffi::c_char;

use super::args::{bytes_arg, str_arg};
use super::config::{wsbeat_config, ConfigPtr};
use super::status::wsbeat_status;
use crate::ClientIdentity;

/// Trusts a CA certificate (PEM, copied) besides the system roots, e.g. a private device CA.
///
/// # Safety
/// `config` is NULL or a live handle; `pem` is NULL or points to `len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn wsbeat_config_add_root_pem(
    config: *mut wsbeat_config,
    pem: *const u8,
    len: usize,
) -> wsbeat_status {
    // SAFETY: the caller promises a live handle or NULL, and the buffer.
    unsafe { ConfigPtr::new(config) }.with("wsbeat_config_add_root_pem", |c| {
        // SAFETY: the caller promises `len` readable bytes at `pem`, or NULL.
        let pem = unsafe { bytes_arg(pem, len) }?;
        c.tls.extra_roots_pem.push(pem.to_vec());
        Ok(())
    })
}

/// Sets the client identity for mutual TLS: a PEM certificate (chain) and its PEM PKCS#8
/// private key (both copied; the library keeps the key in memory for the client's life).
///
/// # Safety
/// `config` is NULL or a live handle; `cert` and `key` are NULL or point to their lengths of
/// readable bytes.
#[no_mangle]
pub unsafe extern "C" fn wsbeat_config_set_identity_pem(
    config: *mut wsbeat_config,
    cert: *const u8,
    cert_len: usize,
    key: *const u8,
    key_len: usize,
) -> wsbeat_status {
    // SAFETY: the caller promises a live handle or NULL, and the buffers.
    unsafe { ConfigPtr::new(config) }.with("wsbeat_config_set_identity_pem", |c| {
        // SAFETY: the caller promises the lengths of readable bytes at `cert` and `key`.
        let (cert, key) = unsafe { (bytes_arg(cert, cert_len)?, bytes_arg(key, key_len)?) };
        c.tls.identity = Some(ClientIdentity::Pem {
            cert: cert.to_vec(),
            key: key.to_vec(),
        });
        Ok(())
    })
}

/// Sets the client identity for mutual TLS from a DER PKCS#12 archive and its password
/// (both copied).
///
/// # Safety
/// `config` is NULL or a live handle; `der` is NULL or points to `len` readable bytes;
/// `password` is NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn wsbeat_config_set_identity_pkcs12(
    config: *mut wsbeat_config,
    der: *const u8,
    len: usize,
    password: *const c_char,
) -> wsbeat_status {
    // SAFETY: the caller promises a live handle or NULL, the buffer and the string.
    unsafe { ConfigPtr::new(config) }.with("wsbeat_config_set_identity_pkcs12", |c| {
        // SAFETY: the caller promises `len` readable bytes at `der` and a string.
        let (der, password) = unsafe { (bytes_arg(der, len)?, str_arg(password)?) };
        c.tls.identity = Some(ClientIdentity::Pkcs12 {
            der: der.to_vec(),
            password: password.to_owned(),
        });
        Ok(())
    })
}

/// Trusts only the CAs added with `wsbeat_config_add_root_pem`, not the system roots.
/// Defaults to false.
///
/// # Safety
/// `config` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn wsbeat_config_set_disable_system_roots(
    config: *mut wsbeat_config,
    disable: bool,
) -> wsbeat_status {
    // SAFETY: the caller promises a live handle or NULL.
    unsafe { ConfigPtr::new(config) }.with("wsbeat_config_set_disable_system_roots", |c| {
        c.tls.disable_system_roots = disable;
        Ok(())
    })
}

/// Accepts any certificate and host name. For the lab only: every connect logs a warning.
/// Defaults to false.
///
/// # Safety
/// `config` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn wsbeat_config_set_insecure(
    config: *mut wsbeat_config,
    insecure: bool,
) -> wsbeat_status {
    // SAFETY: the caller promises a live handle or NULL.
    unsafe { ConfigPtr::new(config) }.with("wsbeat_config_set_insecure", |c| {
        c.tls.danger_accept_invalid_certs = insecure;
        Ok(())
    })
}
