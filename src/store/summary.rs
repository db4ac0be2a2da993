//! The stored form of a message summary ([`MessageMeta`]) in the
//! `messages` table, and the conversion of older rows at open.
//!
//! A row is a format byte and the fields after it. Up to schema 11 a row
//! was JSON with field names (about 570 bytes a mail); JSON starts with
//! `{`, so a row's first byte tells the forms apart, and every form is
//! read as long as a store may hold it (see [`convert`]).
//!
//! Format [`TAGGED`] (schema 18), in this order:
//! - the account label: a varint naming a row of `summary_labels`
//!   ([`labels`]: account id, tenant, account name and address);
//! - `folder`, `from`, `to` (a count, then each), `cc` (likewise),
//!   `subject`: strings, each its byte length as a varint and its UTF-8
//!   bytes;
//! - `date`, `received`: zigzag varints; `size`: a varint (LEB128);
//! - one flag byte: bit 0 `read`, bit 1 `has_attachments`, bits 2 to 4:
//!   the tags of the raw hash, the mail key and the header key present;
//!   the higher bits are zero;
//! - `contact`, `message_id`, then the tags present, in that order, each
//!   [`TAG_BYTES`] bytes (`super::keytags`: what the content index needs
//!   to find the key's row again; the key texts are not kept).
//!
//! Format [`LABELLED`] (schema 13) is the same up to `message_id`, with
//! two bits each in the flag byte for `sha256`, `digest`, `header_key`
//! (the key texts): [`HASH_EMPTY`], [`HASH_BYTES`] (32 bytes) or
//! [`HASH_TEXT`] (a string as above, for any value that is not 64
//! lower-case hex digits), and those three after `message_id`. Read, its
//! texts become tags.
//!
//! Format [`BINARY`] (schema 12) is [`LABELLED`] with the label's four
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

use super::keytags::{KeyTag, KeyTags, KeyTexts, TAG_BYTES};
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
/// Format byte of the labelled summary with key tags (schema 18).
pub const TAGGED: u8 = 3;
/// The first byte of every JSON summary (schema 11 and older).
pub const JSON: u8 = b'{';

/// Flag bits of a [`TAGGED`] row above `read` and `has_attachments`: the
/// raw hash, mail key and header key tags present.
const TAG_FLAGS: [u8; 3] = [1 << 2, 1 << 3, 1 << 4];

/// The stored form of `m` (its id is the key, not part of the row); its
/// label is added to `labels`' write transaction if it is new.
pub fn encode(labels: &Labels<'_>, m: &MessageMeta) -> Result<Vec<u8>> {
    let label = labels.intern(&Label::of(m))?;
    let mut out = Vec::with_capacity(64 + m.subject.len() + m.from.len());
    out.push(TAGGED);
    put_varint(&mut out, u64::from(label));
    put_head(&mut out, m);
    let tags = m.keys.all();
    let mut flags = u8::from(m.read) | u8::from(m.has_attachments) << 1;
    for (tag, bit) in tags.iter().zip(TAG_FLAGS) {
        if tag.is_some() {
            flags |= bit;
        }
    }
    out.push(flags);
    put_str(&mut out, &m.contact);
    put_str(&mut out, &m.message_id);
    for tag in tags.iter().flatten() {
        out.extend_from_slice(tag);
    }
    Ok(out)
}

/// The schema 13 form of `m` ([`LABELLED`]) with its key texts `keys`
/// (`m.keys` is not read), which this version converts at open: for tests
/// and tools that build an older store.
pub fn encode_labelled(labels: &Labels<'_>, m: &MessageMeta, keys: &KeyTexts) -> Result<Vec<u8>> {
    let label = labels.intern(&Label::of(m))?;
    let mut out = Vec::with_capacity(160 + m.subject.len() + m.from.len());
    out.push(LABELLED);
    put_varint(&mut out, u64::from(label));
    put_texts(&mut out, m, keys, |_| {});
    Ok(out)
}

/// The schema 12 form of `m` ([`BINARY`]), likewise.
pub fn encode_binary1(m: &MessageMeta, keys: &KeyTexts) -> Vec<u8> {
    let mut out = Vec::with_capacity(200 + m.subject.len() + m.from.len());
    out.push(BINARY);
    put_str(&mut out, &m.account);
    put_str(&mut out, &m.tenant);
    put_texts(&mut out, m, keys, |out| {
        put_str(out, &m.account_name);
        put_str(out, &m.account_address);
    });
    out
}

/// The JSON form of schema 11 and older, likewise: the key texts under
/// their old names, `digest` and `header_key` only when set.
pub fn encode_json(m: &MessageMeta, keys: &KeyTexts) -> Result<Vec<u8>> {
    let mut v = serde_json::to_value(m).context("encode summary")?;
    if let Some(o) = v.as_object_mut() {
        o.insert("sha256".into(), keys.raw.clone().into());
        for (name, text) in [("digest", &keys.mail), ("header_key", &keys.header)] {
            if !text.is_empty() {
                o.insert(name.into(), text.clone().into());
            }
        }
    }
    serde_json::to_vec(&v).context("encode summary")
}

/// The key texts of a JSON row (schema 11 and older): [`MessageMeta`]
/// keeps only their tags.
#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct JsonKeys {
    sha256: String,
    digest: String,
    header_key: String,
}

/// The fields after the account ones, up to `size`: the same in every
/// binary form.
fn put_head(out: &mut Vec<u8>, m: &MessageMeta) {
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
}

/// The fields after the account ones in the forms with key texts
/// (schemas 12 and 13); `after_sha` writes what format 1 keeps between
/// `sha256` and `digest`.
fn put_texts(
    out: &mut Vec<u8>,
    m: &MessageMeta,
    keys: &KeyTexts,
    after_sha: impl FnOnce(&mut Vec<u8>),
) {
    put_head(out, m);
    let hashes = keys.all().map(|h| (hash_code(h), h));
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
/// a labelled row's label comes from `labels`. The key texts of older
/// rows come back as their tags.
pub fn decode(labels: &Labels<'_>, id: u64, row: &[u8]) -> Result<MessageMeta> {
    let mut m = match row.split_first() {
        Some((&TAGGED, fields)) => {
            let mut r = Reader(fields);
            let label = label_of(&mut r)?;
            let mut m = tagged_fields(&mut r)?;
            labels.get(label)?.apply(&mut m);
            m
        }
        Some((&LABELLED, fields)) => {
            let mut r = Reader(fields);
            let label = label_of(&mut r)?;
            let mut m = text_fields(&mut r, |_, _| Ok(()))?;
            labels.get(label)?.apply(&mut m);
            m
        }
        Some((&BINARY, fields)) => decode_binary1(fields)?,
        Some((&JSON, _)) => {
            let mut m = serde_json::from_slice::<MessageMeta>(row)
                .context("stored message summary is unreadable")?;
            let keys = serde_json::from_slice::<JsonKeys>(row)
                .context("stored message summary is unreadable")?;
            m.keys = KeyTexts {
                raw: keys.sha256,
                mail: keys.digest,
                header: keys.header_key,
            }
            .tags();
            m
        }
        Some((b, _)) => return Err(damaged(&format!("unknown format {b}"))),
        None => return Err(damaged("empty row")),
    };
    m.id = id;
    Ok(m)
}

fn label_of(r: &mut Reader<'_>) -> Result<u32> {
    u32::try_from(r.varint()?).map_err(|_| damaged("a label too large"))
}

fn decode_binary1(fields: &[u8]) -> Result<MessageMeta> {
    let mut r = Reader(fields);
    let (account, tenant) = (r.str()?, r.str()?);
    let mut m = text_fields(&mut r, |r, m| {
        (m.account_name, m.account_address) = (r.str()?, r.str()?);
        Ok(())
    })?;
    (m.account, m.tenant) = (account, tenant);
    Ok(m)
}

/// The fields [`put_head`] wrote.
fn head_of(r: &mut Reader<'_>) -> Result<MessageMeta> {
    let (folder, from) = (r.str()?, r.str()?);
    let (to, cc) = (r.list()?, r.list()?);
    let subject = r.str()?;
    let (date, received) = (unzigzag(r.varint()?), unzigzag(r.varint()?));
    let size = r.varint()?;
    Ok(MessageMeta {
        folder,
        from,
        to,
        cc,
        subject,
        date,
        received,
        size,
        ..MessageMeta::default()
    })
}

/// The fields [`encode`] wrote after the label, up to the row's end.
fn tagged_fields(r: &mut Reader<'_>) -> Result<MessageMeta> {
    let mut m = head_of(r)?;
    let flags = r.byte()?;
    if flags >> 5 != 0 {
        return Err(damaged("unknown flags"));
    }
    (m.read, m.has_attachments) = (flags & 1 != 0, flags & 2 != 0);
    (m.contact, m.message_id) = (r.str()?, r.str()?);
    let mut tag = |bit: u8| -> Result<Option<KeyTag>> {
        if flags & bit == 0 {
            return Ok(None);
        }
        let mut t = [0u8; TAG_BYTES];
        t.copy_from_slice(r.take(TAG_BYTES as u64)?);
        Ok(Some(t))
    };
    let [raw, mail, header] = TAG_FLAGS;
    m.keys = KeyTags {
        raw: tag(raw)?,
        mail: tag(mail)?,
        header: tag(header)?,
    };
    r.end()?;
    Ok(m)
}

/// The fields [`put_texts`] wrote, up to the row's end.
fn text_fields(
    r: &mut Reader<'_>,
    after_sha: impl FnOnce(&mut Reader<'_>, &mut MessageMeta) -> Result<()>,
) -> Result<MessageMeta> {
    let mut m = head_of(r)?;
    let flags = r.byte()?;
    let code = |i: u8| (flags >> (2 + 2 * i)) & 3;
    (m.read, m.has_attachments) = (flags & 1 != 0, flags & 2 != 0);
    (m.contact, m.message_id) = (r.str()?, r.str()?);
    let raw = r.hash(code(0))?;
    after_sha(r, &mut m)?;
    let keys = KeyTexts {
        raw,
        mail: r.hash(code(1))?,
        header: r.hash(code(2))?,
    };
    r.end()?;
    m.keys = keys.tags();
    Ok(m)
}

fn damaged(why: &str) -> Error {
    Error::storage_msg(format!("stored message summary is damaged ({why})"))
}

#[cfg(test)]
mod tests;
