//! Why a lookup failed, in words short enough for a log line.
#![forbid(unsafe_code)]

use std::fmt;

/// Why a lookup gave no address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum LookupError {
    /// Every candidate name (see the search list) does not exist (NXDOMAIN).
    NotFound {
        /// The name as given to [`Lookup::new`](super::Lookup::new).
        name: String,
    },
    /// The name exists but has no A or AAAA record.
    NoAddress {
        /// The name as given to [`Lookup::new`](super::Lookup::new).
        name: String,
    },
    /// No server answered within `attempts` rounds (or none is configured).
    Timeout,
    /// The servers answered with an error (SERVFAIL, REFUSED, ...) on every try, or only
    /// with truncated answers without an address (`rcode` 0; there is no TCP fallback).
    ServerFailure {
        /// The response code of the last failure.
        rcode: u16,
    },
}

impl fmt::Display for LookupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LookupError::NotFound { .. } => f.write_str("name not found"),
            LookupError::NoAddress { .. } => f.write_str("name has no address"),
            LookupError::Timeout => f.write_str("no answer from the name servers"),
            LookupError::ServerFailure { rcode } => {
                let what = match rcode {
                    0 => "truncated answer",
                    1 => "FORMERR",
                    2 => "SERVFAIL",
                    4 => "NOTIMP",
                    5 => "REFUSED",
                    _ => return write!(f, "name server failure (rcode {rcode})"),
                };
                write!(f, "name server failure ({what})")
            }
        }
    }
}

impl std::error::Error for LookupError {}
