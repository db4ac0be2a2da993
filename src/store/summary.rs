//! The stored form of a message summary ([`MessageMeta`]) in the
//! `messages` table, and the conversion of older rows at open.
//!
//! A row is a format byte and the fields after it. Up to schema 11 a row
//! was JSON with field names (about 570 bytes a mail); JSON starts with
//! `{`, so a row's first byte tells the forms apart, and every form is
//! read as long as a store may hold it (see [`convert`]).
//!
//! Format [`LABELLED`] (schema 13), in this order:
//! - the account label: a varint naming a row of `summary_labels`
//!   ([`labels`]: account id, tenant, account name and address);
//! - `folder`, `from`, `to` (a count, then each), `cc` (likewise),
//!   `subject`: strings, each its byte length as a varint and its UTF-8
//!   bytes;
//! - `date`, `received`: zigzag varints; `size`: a varint (LEB128);
//! - one flag byte: bit 0 `read`, bit 1 `has_attachments`, then two bits
//!   each for `sha256`, `digest`, `header_key`: [`HASH_EMPTY`],
//!   [`HASH_BYTES`] (32 bytes, written back as lower-case hex) or
//!   [`HASH_TEXT`] (a string as above, for any value that is not 64
//!   lower-case hex digits, so that every summary comes back as it went
//!   in);
//! - `contact`, `message_id`, `sha256`, `digest`, `header_key`.
//!
//! Format [`BINARY`] (schema 12) is the same with the label's four
//! strings in the row: `account`, `tenant` before `folder`,
//! `account_name`, `account_address` after `sha256`.
//!
//! The id is the row's key and is not repeated. `account_name`,
//! `account_address` and `tenant` copy the account's settings at the time
//! the mail was stored, and stay: a rename or a tenant change of the
//! account does not rewrite its mails, so ListMessages shows each mail
//! with the name it arrived under (and filters it by that tenant), and the
//! assigned mail of a deleted account keeps its last name and address
//! (`super::purge`). Taking them from the account instead would change
//! what those callers see; the label keeps them as they were, once.
//!
//! A new field is a new format byte, its decoder beside the old ones, and
//! a conversion at open like [`convert`]; a row must end where its last
//! field does, so no format can be extended in place. A damaged row
//! (truncated, a length past its end, a bad flag, invalid UTF-8, an
//! unknown format byte or label) is a storage error, never a panic, and
//! nothing is allocated beyond what the row's own length holds.

use super::meta::MessageMeta;
use crate::error::{Context, Error, Result};

pub mod convert;
pub mod labels;
mod wire;

pub(super) use convert::pack_legacy;
pub use convert::{KEY_PACKED, PACK_ROWS};
pub use labels::{Label, LabelCache, Labels};
use wire::{hash_code, put_hash, put_str, put_varint, unzigzag, zigzag, Reader};
pub use wire::{HASH_BYTES, HASH_EMPTY, HASH_TEXT};

/// Format byte of the binary summary with the account fields in the row
/// (schema 12).
pub const BINARY: u8 = 1;
/// Format byte of the binary summary with an account label (schema 13).
pub const LABELLED: u8 = 2;
/// The first byte of every JSON summary (schema 11 and older).
pub const JSON: u8 = b'{';

/// The stored form of `m` (its id is the key, not part of the row); its
/// label is added to `labels`' write transaction if it is new.
pub fn encode(labels: &Labels<'_>, m: &MessageMeta) -> Result<Vec<u8>> {
    let label = labels.intern(&Label::of(m))?;
    let mut out = Vec::with_capacity(112 + m.subject.len() + m.from.len());
    out.push(LABELLED);
    put_varint(&mut out, u64::from(label));
    put_fields(&mut out, m, |_| {});
    Ok(out)
}

/// The schema 12 form of `m` ([`BINARY`]), which this version converts at
/// open: for tests and tools that build an older store.
pub fn encode_binary1(m: &MessageMeta) -> Vec<u8> {
    let mut out = Vec::with_capacity(160 + m.subject.len() + m.from.len());
    out.push(BINARY);
    put_str(&mut out, &m.account);
    put_str(&mut out, &m.tenant);
    put_fields(&mut out, m, |out| {
        put_str(out, &m.account_name);
        put_str(out, &m.account_address);
    });
    out
}

/// The fields after the account ones; `after_sha` writes what format 1
/// keeps between `sha256` and `digest`.
fn put_fields(out: &mut Vec<u8>, m: &MessageMeta, after_sha: impl FnOnce(&mut Vec<u8>)) {
    for s in [&m.folder, &m.from] {
        put_str(out, s);
    }
    for list in [&m.to, &m.cc] {
        put_varint(out, list.len() as u64);
        for s in list {
            put_str(out, s);
        }
    }
    put_str(out, &m.subject);
    put_varint(out, zigzag(m.date));
    put_varint(out, zigzag(m.received));
    put_varint(out, m.size);
    let hashes = [&m.sha256, &m.digest, &m.header_key].map(|h| (hash_code(h), h));
    let mut flags = u8::from(m.read) | u8::from(m.has_attachments) << 1;
    for (i, (code, _)) in hashes.iter().enumerate() {
        flags |= code << (2 + 2 * i);
    }
    out.push(flags);
    put_str(out, &m.contact);
    put_str(out, &m.message_id);
    put_hash(out, hashes[0]);
    after_sha(out);
    put_hash(out, hashes[1]);
    put_hash(out, hashes[2]);
}

/// The summary of message `id` from its row, in any format a store holds;
/// a labelled row's label comes from `labels`.
pub fn decode(labels: &Labels<'_>, id: u64, row: &[u8]) -> Result<MessageMeta> {
    let mut m = match row.split_first() {
        Some((&LABELLED, fields)) => {
            let mut r = Reader(fields);
            let label = u32::try_from(r.varint()?).map_err(|_| damaged("a label too large"))?;
            let mut m = fields_of(&mut r, |_, _| Ok(()))?;
            labels.get(label)?.apply(&mut m);
            m
        }
        Some((&BINARY, fields)) => decode_binary1(fields)?,
        Some((&JSON, _)) => serde_json::from_slice::<MessageMeta>(row)
            .context("stored message summary is unreadable")?,
        Some((b, _)) => return Err(damaged(&format!("unknown format {b}"))),
        None => return Err(damaged("empty row")),
    };
    m.id = id;
    Ok(m)
}

fn decode_binary1(fields: &[u8]) -> Result<MessageMeta> {
    let mut r = Reader(fields);
    let (account, tenant) = (r.str()?, r.str()?);
    let mut m = fields_of(&mut r, |r, m| {
        (m.account_name, m.account_address) = (r.str()?, r.str()?);
        Ok(())
    })?;
    (m.account, m.tenant) = (account, tenant);
    Ok(m)
}

/// The fields [`put_fields`] wrote, up to the row's end.
fn fields_of(
    r: &mut Reader<'_>,
    after_sha: impl FnOnce(&mut Reader<'_>, &mut MessageMeta) -> Result<()>,
) -> Result<MessageMeta> {
    let (folder, from) = (r.str()?, r.str()?);
    let (to, cc) = (r.list()?, r.list()?);
    let subject = r.str()?;
    let (date, received) = (unzigzag(r.varint()?), unzigzag(r.varint()?));
    let size = r.varint()?;
    let flags = r.byte()?;
    let code = |i: u8| (flags >> (2 + 2 * i)) & 3;
    let (contact, message_id) = (r.str()?, r.str()?);
    let mut m = MessageMeta {
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
        sha256: r.hash(code(0))?,
        ..MessageMeta::default()
    };
    after_sha(r, &mut m)?;
    (m.digest, m.header_key) = (r.hash(code(1))?, r.hash(code(2))?);
    r.end()?;
    Ok(m)
}

fn damaged(why: &str) -> Error {
    Error::storage_msg(format!("stored message summary is damaged ({why})"))
}

#[cfg(test)]
mod tests;
