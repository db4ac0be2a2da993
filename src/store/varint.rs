//! LEB128 varints and zigzag for signed numbers: the number encoding of
//! every packed row (summaries, summary labels, word index chunks).
//!
//! One encoder for all of them, so that every format reads a number the
//! same way and a damaged one is refused the same way: a number cut off by
//! the row's end, or longer than 64 bits, is an error (the caller names
//! the row), never a panic or a silently wrapped value.

/// Why a varint could not be read; the caller turns it into its row's
/// storage error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bad {
    /// The row ended inside the number.
    CutOff,
    /// More than 64 bits: 10 bytes whose last one carries more than bit 63.
    TooLong,
}

/// Append `n` as an LEB128 varint (7 bits a byte, low bits first).
pub fn put(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Read the varint at `*at` in `b` and move `*at` past it.
pub fn get(b: &[u8], at: &mut usize) -> Result<u64, Bad> {
    let mut n = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*at).ok_or(Bad::CutOff)?;
        *at += 1;
        if shift == 63 && byte > 1 {
            break;
        }
        n |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return Ok(n);
        }
    }
    Err(Bad::TooLong)
}

/// Signed to unsigned so that small magnitudes of either sign stay short.
pub fn zigzag(n: i64) -> u64 {
    ((n << 1) ^ (n >> 63)) as u64
}

/// The inverse of [`zigzag`].
pub fn unzigzag(n: u64) -> i64 {
    ((n >> 1) as i64) ^ -((n & 1) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_damage() {
        for n in [0, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            let mut out = Vec::new();
            put(&mut out, n);
            let mut at = 0;
            assert_eq!(get(&out, &mut at), Ok(n));
            assert_eq!(at, out.len());
            assert_eq!(get(&out[..out.len() - 1], &mut 0), Err(Bad::CutOff));
        }
        for n in [0, 1, -1, 63, -64, i64::MIN, i64::MAX] {
            assert_eq!(unzigzag(zigzag(n)), n);
        }
        assert!(zigzag(-1) < 2 && zigzag(1) < 3);
        let endless = [0xffu8; 11];
        assert_eq!(get(&endless, &mut 0), Err(Bad::TooLong));
        let mut big = vec![0xffu8; 9];
        big.push(0x02);
        assert_eq!(get(&big, &mut 0), Err(Bad::TooLong));
    }
}
