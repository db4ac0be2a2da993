//! Cheap pseudo-random bytes for test mail. The store compresses mail
//! (zstd), so a test that must fill a disk or reach past the page cache
//! needs content that does not repeat. xorshift64 (Marsaglia 2003) rather
//! than `rand`: a test build's unoptimised `rand` costs seconds per
//! megabyte, and these bytes need no quality.

/// The base64 alphabet (RFC 4648), so noise reads as a mail body.
pub const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// A xorshift64 stream; the state is never zero (the seed is made odd).
pub struct Xorshift(u64);

impl Xorshift {
    pub fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// One character of the base64 alphabet.
    pub fn base64(&mut self) -> u8 {
        BASE64[(self.next_u64() % 64) as usize]
    }
}
