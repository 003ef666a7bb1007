//! Lowercase hex for binary messages on stdout.
#![forbid(unsafe_code)]

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Appends `bytes` to `out` as lowercase hex, two digits per byte.
pub fn push_hex(out: &mut Vec<u8>, bytes: &[u8]) {
    out.reserve(bytes.len() * 2);
    for &b in bytes {
        out.push(DIGITS[usize::from(b >> 4)]);
        out.push(DIGITS[usize::from(b & 0x0f)]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_every_byte_as_two_lowercase_digits() {
        let mut out = Vec::new();
        push_hex(&mut out, &[0x00, 0x0f, 0xa5, 0xff, b'\n']);
        assert_eq!(out, b"000fa5ff0a");
        let mut all = Vec::new();
        push_hex(&mut all, &(0..=255u8).collect::<Vec<_>>());
        assert_eq!(all.len(), 512);
        assert!(all
            .iter()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c)));
    }
}
