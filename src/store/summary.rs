//! The stored form of a message summary ([`MessageMeta`]) in the
//! `messages` table, and the conversion of older rows (schema 12).
//!
//! A row is a format byte and the fields after it. Up to schema 11 a row
//! was JSON with field names (about 570 bytes a mail); JSON starts with
//! `{`, so a row's first byte tells the two apart, and both are read as
//! long as a store may hold either (see [`pack_legacy`]).
//!
//! Format [`BINARY`] (schema 12), in this order:
//! - `account`, `tenant`, `folder`, `from`, `to` (a count, then each),
//!   `cc` (likewise), `subject`: strings, each its byte length as a
//!   varint and its UTF-8 bytes;
//! - `date`, `received`: zigzag varints; `size`: a varint (LEB128);
//! - one flag byte: bit 0 `read`, bit 1 `has_attachments`, then two bits
//!   each for `sha256`, `digest`, `header_key`: [`HASH_EMPTY`],
//!   [`HASH_BYTES`] (32 bytes, written back as lower-case hex) or
//!   [`HASH_TEXT`] (a string as above, for any value that is not 64
//!   lower-case hex digits, so that every summary comes back as it went
//!   in);
//! - `contact`, `message_id`, `sha256`, `account_name`,
//!   `account_address`, `digest`, `header_key`.
//!
//! The id is the row's key and is not repeated. `account_name`,
//! `account_address` and `tenant` copy the account's settings at the time
//! the mail was stored, and stay: a rename or a tenant change of the
//! account does not rewrite its mails, so ListMessages shows each mail
//! with the name it arrived under (and filters it by that tenant), and the
//! assigned mail of a deleted account keeps its last name and address
//! (`super::purge`). Taking them from the account instead would change
//! what those callers see.
//!
//! A new field is a new format byte, its decoder beside the old ones, and
//! a conversion at open like [`pack_legacy`]; a row must end where its
//! last field does, so no format can be extended in place. A damaged row
//! (truncated, a length past its end, a bad flag, invalid UTF-8, an
//! unknown format byte) is a storage error, never a panic, and nothing is
//! allocated beyond what the row's own length holds.

use redb::{Database, ReadableTable, WriteTransaction};

use super::messages::MessageMeta;
use super::schema::{get_u64, put_u64, MESSAGES, META};
use super::write_txn;
use crate::error::{Context, Error, Result};

/// Format byte of the binary summary (schema 12).
pub const BINARY: u8 = 1;
/// The first byte of every JSON summary (schema 11 and older).
pub const JSON: u8 = b'{';
/// Hash field codes in the flag byte.
pub const HASH_EMPTY: u8 = 0;
pub const HASH_BYTES: u8 = 1;
pub const HASH_TEXT: u8 = 2;
/// Rows converted per transaction of [`pack_legacy`] (about 600 bytes each).
pub const PACK_ROWS: usize = 1000;
/// In `meta`, present while JSON rows may be left: the highest message id
/// converted so far (0: none). The schema step sets it; the last
/// transaction of [`pack_legacy`] removes it.
pub const KEY_PACKED: &str = "summaries_packed_upto";

/// The stored form of `m` (its id is the key, not part of the row).
pub fn encode(m: &MessageMeta) -> Vec<u8> {
    let mut out = Vec::with_capacity(160 + m.subject.len() + m.from.len());
    out.push(BINARY);
    for s in [&m.account, &m.tenant, &m.folder, &m.from] {
        put_str(&mut out, s);
    }
    for list in [&m.to, &m.cc] {
        put_varint(&mut out, list.len() as u64);
        for s in list {
            put_str(&mut out, s);
        }
    }
    put_str(&mut out, &m.subject);
    put_varint(&mut out, zigzag(m.date));
    put_varint(&mut out, zigzag(m.received));
    put_varint(&mut out, m.size);
    let hashes = [&m.sha256, &m.digest, &m.header_key].map(|h| (hash_code(h), h));
    let mut flags = u8::from(m.read) | u8::from(m.has_attachments) << 1;
    for (i, (code, _)) in hashes.iter().enumerate() {
        flags |= code << (2 + 2 * i);
    }
    out.push(flags);
    put_str(&mut out, &m.contact);
    put_str(&mut out, &m.message_id);
    put_hash(&mut out, hashes[0]);
    put_str(&mut out, &m.account_name);
    put_str(&mut out, &m.account_address);
    put_hash(&mut out, hashes[1]);
    put_hash(&mut out, hashes[2]);
    out
}

/// The summary of message `id` from its row, in any format a store holds.
pub fn decode(id: u64, row: &[u8]) -> Result<MessageMeta> {
    let mut m = match row.split_first() {
        Some((&BINARY, fields)) => binary(&mut Reader(fields))?,
        Some((&JSON, _)) => serde_json::from_slice::<MessageMeta>(row)
            .context("stored message summary is unreadable")?,
        Some((b, _)) => return Err(damaged(&format!("unknown format {b}"))),
        None => return Err(damaged("empty row")),
    };
    m.id = id;
    Ok(m)
}

fn binary(r: &mut Reader<'_>) -> Result<MessageMeta> {
    let (account, tenant, folder, from) = (r.str()?, r.str()?, r.str()?, r.str()?);
    let (to, cc) = (r.list()?, r.list()?);
    let subject = r.str()?;
    let (date, received) = (unzigzag(r.varint()?), unzigzag(r.varint()?));
    let size = r.varint()?;
    let flags = r.byte()?;
    let code = |i: u8| (flags >> (2 + 2 * i)) & 3;
    let (contact, message_id) = (r.str()?, r.str()?);
    let sha256 = r.hash(code(0))?;
    let (account_name, account_address) = (r.str()?, r.str()?);
    let (digest, header_key) = (r.hash(code(1))?, r.hash(code(2))?);
    if !r.0.is_empty() {
        return Err(damaged("bytes after the last field"));
    }
    Ok(MessageMeta {
        id: 0,
        account,
        tenant,
        folder,
        from,
        to,
        cc,
        subject,
        date,
        received,
        size,
        read: flags & 1 != 0,
        has_attachments: flags & 2 != 0,
        contact,
        message_id,
        sha256,
        account_name,
        account_address,
        digest,
        header_key,
    })
}

fn damaged(why: &str) -> Error {
    Error::storage_msg(format!("stored message summary is damaged ({why})"))
}

fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

fn zigzag(n: i64) -> u64 {
    ((n << 1) ^ (n >> 63)) as u64
}

fn unzigzag(n: u64) -> i64 {
    ((n >> 1) as i64) ^ -((n & 1) as i64)
}

/// 64 lower-case hex digits travel as their 32 bytes; anything else as text.
fn hash_code(h: &str) -> u8 {
    let hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
    if h.is_empty() {
        HASH_EMPTY
    } else if h.len() == 64 && h.bytes().all(hex) {
        HASH_BYTES
    } else {
        HASH_TEXT
    }
}

fn put_hash(out: &mut Vec<u8>, (code, h): (u8, &String)) {
    match code {
        HASH_BYTES => {
            let nibble = |b: u8| {
                if b.is_ascii_digit() {
                    b - b'0'
                } else {
                    b - b'a' + 10
                }
            };
            let b = h.as_bytes();
            out.extend(b.chunks_exact(2).map(|p| nibble(p[0]) << 4 | nibble(p[1])));
        }
        HASH_TEXT => put_str(out, h),
        _ => {}
    }
}

/// The unread rest of a row; every read checks it against the length left.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: u64) -> Result<&[u8]> {
        let n = usize::try_from(n).ok().filter(|n| *n <= self.0.len());
        let n = n.ok_or_else(|| damaged("a length past its end"))?;
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn byte(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn varint(&mut self) -> Result<u64> {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            if shift == 63 && b > 1 {
                break;
            }
            n |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(n);
            }
        }
        Err(damaged("a number too long"))
    }

    fn str(&mut self) -> Result<String> {
        let n = self.varint()?;
        let bytes = self.take(n)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| damaged("text that is not UTF-8"))
    }

    /// A count, then strings: each takes a byte at least, so a count
    /// beyond the bytes left is damage, found before anything is reserved.
    fn list(&mut self) -> Result<Vec<String>> {
        let n = self.varint()?;
        if n > self.0.len() as u64 {
            return Err(damaged("a count past its end"));
        }
        (0..n).map(|_| self.str()).collect()
    }

    fn hash(&mut self, code: u8) -> Result<String> {
        match code {
            HASH_EMPTY => Ok(String::new()),
            HASH_BYTES => Ok(self
                .take(32)?
                .iter()
                .flat_map(|b| [b >> 4, b & 15])
                .map(|n| char::from(if n < 10 { b'0' + n } else { b'a' + n - 10 }))
                .collect()),
            HASH_TEXT => self.str(),
            _ => Err(damaged("an unknown hash code")),
        }
    }
}

/// Rewrites the JSON rows of a store migrated to schema 12 as binary, at
/// every open until none is left, in transactions of [`PACK_ROWS`] rows.
/// Each transaction converts the rows after the mark [`KEY_PACKED`] and
/// moves the mark in the same commit, so a kill at any point leaves rows
/// of either form, all readable, and the next open goes on from the mark.
/// A row that does not decode is left as it is (its readers report it).
/// Without the mark (a current or new store) nothing is written.
pub(super) fn pack_legacy(db: &Database) -> Result<u64> {
    let mut packed = 0u64;
    loop {
        let tx = write_txn(db)?;
        let Some(from) = get_u64(&tx, KEY_PACKED)? else {
            return Ok(packed);
        };
        let (n, done) = pack_some(&tx, from)?;
        tx.commit().context("commit converted summaries")?;
        packed += n;
        tracing::info!(packed, "converting stored summaries (schema 12)");
        if done {
            return Ok(packed);
        }
    }
}

/// One transaction of [`pack_legacy`]: (rows converted, all done).
fn pack_some(tx: &WriteTransaction, from: u64) -> Result<(u64, bool)> {
    let mut messages = tx.open_table(MESSAGES).context("open messages")?;
    let rows: Vec<(u64, Vec<u8>)> = messages
        .range(from.saturating_add(1)..)
        .context("read messages")?
        .take(PACK_ROWS)
        .map(|row| {
            let (k, v) = row.context("read messages")?;
            Ok((k.value(), v.value().to_vec()))
        })
        .collect::<Result<_>>()?;
    let mut converted = 0;
    for (id, row) in &rows {
        if row.first() != Some(&JSON) {
            continue;
        }
        match decode(*id, row) {
            Ok(m) => {
                messages
                    .insert(*id, encode(&m).as_slice())
                    .context("write message")?;
                converted += 1;
            }
            Err(e) => tracing::warn!(id, "summary left as it is: {e}"),
        }
    }
    match rows.last() {
        Some((last, _)) if rows.len() == PACK_ROWS => {
            put_u64(tx, KEY_PACKED, *last)?;
            Ok((converted, false))
        }
        _ => {
            let mut meta = tx.open_table(META).context("open meta")?;
            meta.remove(KEY_PACKED).context("write meta")?;
            Ok((converted, true))
        }
    }
}

#[cfg(test)]
mod tests;
