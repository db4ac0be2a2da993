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

#[cfg(test)]
mod tests {
    use super::lower;

    #[test]
    fn every_byte_is_two_lower_case_digits() {
        let all: Vec<u8> = (0..=255).collect();
        let want: String = all.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(lower(&all), want);
        assert_eq!(lower(&[]), "");
        assert_eq!(lower(&[0x0a, 0xf0]), "0af0");
    }
}
