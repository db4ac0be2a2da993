//! Lower-case hex of bytes: content keys, blob file names, digests, ids
//! and salts are all written this way.
//!
//! Why not `format!("{b:02x}")` per byte: that builds and drops a String
//! for every byte, and the fetch path hexes several 32-byte hashes per
//! mail (content key, blob name, digest), where it showed in profiles.

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// `bytes` as lower-case hex, two digits a byte.
pub fn lower(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        for nibble in [b >> 4, b & 0x0f] {
            out.push(
                DIGITS
                    .get(usize::from(nibble))
                    .map_or('0', |&d| char::from(d)),
            );
        }
    }
    out
}

/// The 32 bytes that 64 lower-case hex digits spell (a SHA-256 as
/// [`lower`] writes it); None for anything else, upper case included, so
/// that bytes written back as hex give the same text.
pub fn hash32(text: &str) -> Option<[u8; 32]> {
    fn nibble(b: u8) -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            _ => None,
        }
    }
    let digits = text.as_bytes();
    if digits.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (o, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        let [hi, lo] = pair else { return None };
        *o = nibble(*hi)? << 4 | nibble(*lo)?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::{hash32, lower};

    #[test]
    fn hash32_takes_only_64_lower_case_digits() {
        let bytes: Vec<u8> = (0..32).map(|b| b * 7).collect();
        assert_eq!(
            hash32(&lower(&bytes)).map(|b| b.to_vec()),
            Some(bytes.clone())
        );
        assert_eq!(hash32(&lower(&bytes).to_uppercase()), None);
        assert_eq!(hash32(&lower(&bytes[..31])), None);
        assert_eq!(hash32(&format!("{}g", &lower(&bytes)[..63])), None);
    }

    #[test]
    fn every_byte_is_two_lower_case_digits() {
        let all: Vec<u8> = (0..=255).collect();
        let want: String = all.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(lower(&all), want);
        assert_eq!(lower(&[]), "");
        assert_eq!(lower(&[0x0a, 0xf0]), "0af0");
    }
}
