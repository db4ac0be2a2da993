//! The field encodings that summary rows and labels share: LEB128
//! varints, zigzag for signed numbers, length-prefixed UTF-8 strings and
//! the 32-byte form of hex hashes. [`Reader`] checks every length against
//! the bytes left, so a damaged row is an error and never allocates more
//! than the row itself holds.

use super::damaged;
use crate::error::Result;
use crate::store::varint::{self, Bad};
pub(super) use crate::store::varint::{put as put_varint, unzigzag, zigzag};

/// Hash field codes in the flag byte.
pub const HASH_EMPTY: u8 = 0;
pub const HASH_BYTES: u8 = 1;
pub const HASH_TEXT: u8 = 2;

pub(super) fn put_str(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// 64 lower-case hex digits travel as their 32 bytes; anything else as text.
pub(super) fn hash_code(h: &str) -> u8 {
    if h.is_empty() {
        HASH_EMPTY
    } else if crate::hex::hash32(h).is_some() {
        HASH_BYTES
    } else {
        HASH_TEXT
    }
}

pub(super) fn put_hash(out: &mut Vec<u8>, (code, h): (u8, &String)) {
    match code {
        HASH_BYTES => match crate::hex::hash32(h) {
            Some(bytes) => out.extend_from_slice(&bytes),
            // hash_code gave HASH_BYTES only to a value hash32 takes.
            None => put_str(out, h),
        },
        HASH_TEXT => put_str(out, h),
        _ => {}
    }
}

/// The unread rest of a row; every read checks it against the length left.
pub(super) struct Reader<'a>(pub(super) &'a [u8]);

impl Reader<'_> {
    pub(super) fn take(&mut self, n: u64) -> Result<&[u8]> {
        let n = usize::try_from(n).ok().filter(|n| *n <= self.0.len());
        let n = n.ok_or_else(|| damaged("a length past its end"))?;
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    pub(super) fn byte(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    pub(super) fn varint(&mut self) -> Result<u64> {
        let mut at = 0;
        let n = varint::get(self.0, &mut at).map_err(|e| match e {
            Bad::CutOff => damaged("a length past its end"),
            Bad::TooLong => damaged("a number too long"),
        })?;
        self.0 = self.0.get(at..).unwrap_or_default();
        Ok(n)
    }

    pub(super) fn str(&mut self) -> Result<String> {
        let n = self.varint()?;
        let bytes = self.take(n)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| damaged("text that is not UTF-8"))
    }

    /// A count, then strings: each takes a byte at least, so a count
    /// beyond the bytes left is damage, found before anything is reserved.
    pub(super) fn list(&mut self) -> Result<Vec<String>> {
        let n = self.varint()?;
        if n > self.0.len() as u64 {
            return Err(damaged("a count past its end"));
        }
        (0..n).map(|_| self.str()).collect()
    }

    pub(super) fn hash(&mut self, code: u8) -> Result<String> {
        match code {
            HASH_EMPTY => Ok(String::new()),
            HASH_BYTES => Ok(crate::hex::lower(self.take(32)?)),
            HASH_TEXT => self.str(),
            _ => Err(damaged("an unknown hash code")),
        }
    }

    /// Damage unless every byte was read: a row ends where its last field does.
    pub(super) fn end(&self) -> Result<()> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(damaged("bytes after the last field"))
        }
    }
}
