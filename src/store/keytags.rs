//! What a message summary keeps of the mail's content keys (schema 18):
//! a short tag of each key's stored form, enough to find the key's row in
//! the content index again when the mail is deleted (`super::purge`) or
//! keyed later (`super::rekey`).
//!
//! A content key is a text (`super::content`): the SHA-256 of the raw
//! bytes and the mail key of `super::digest` (64 lower-case hex digits
//! each), and the header key (`header:<hex>:<body length>`). The index
//! files it under 32 bytes, [`stored_key`]. Up to schema 17 the summary
//! held the whole texts, about 110 bytes a mail, read only to find those
//! rows again. A tag is the first [`TAG_BYTES`] bytes of the stored key:
//! a reader scans the account's rows whose key starts with the tag and
//! takes only those whose value is the message's own id. That is exact
//! whatever the tag length: a row whose value is the mail's id was filed
//! for this mail, and a row of another mail, a tombstone or the ambiguity
//! mark never has that value. The tag only bounds the scan.
//!
//! Why 4 bytes: the stored keys are hash outputs (SHA-256 or
//! SHA-512/256), uniform over the tag space, so an account with a million
//! mails (at most three keys each) has about 3·10⁶ / 2³² ≈ 0.0007 other
//! rows under a tag: the scan reads one row. Longer tags would cost a
//! byte per key per mail for nothing; 2 or 3 bytes would let a big
//! account's scans read dozens of rows.

use sha2::{Digest, Sha512_256};

/// Bytes of a stored key that a summary keeps (module docs).
pub const TAG_BYTES: usize = 4;

/// The first [`TAG_BYTES`] bytes of a content key's stored form.
pub type KeyTag = [u8; TAG_BYTES];

/// The stored form of content key `text` (`super::content`'s docs): 64
/// lower-case hex digits as the 32 bytes they spell, any other text as
/// its SHA-512/256.
pub fn stored_key(text: &str) -> [u8; 32] {
    crate::hex::hash32(text).unwrap_or_else(|| Sha512_256::digest(text.as_bytes()).into())
}

/// The tag of content key `text`; None for the empty text (no key).
pub fn tag_of(text: &str) -> Option<KeyTag> {
    if text.is_empty() {
        return None;
    }
    let key = stored_key(text);
    let mut tag = [0u8; TAG_BYTES];
    tag.copy_from_slice(key.get(..TAG_BYTES).unwrap_or(&[0; TAG_BYTES]));
    Some(tag)
}

/// The tags of a mail's content keys, in a summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyTags {
    /// The SHA-256 of the raw bytes: every stored mail has one (fetched,
    /// sent or drafted); only fetched mail has a content row under it.
    pub raw: Option<KeyTag>,
    /// The mail key, only where it differs from the raw hash (a mail with
    /// bookkeeping fields, `super::digest`).
    pub mail: Option<KeyTag>,
    /// The header key; None in summaries of fetched mail stored before
    /// mail keys existed, until `super::rekey` computes it.
    pub header: Option<KeyTag>,
}

impl KeyTags {
    /// The three tags, in the order summaries store them.
    pub fn all(&self) -> [Option<KeyTag>; 3] {
        [self.raw, self.mail, self.header]
    }
}

/// A mail's content keys as texts: what summaries up to schema 17 held,
/// and what the fetch path computes before it keeps the tags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyTexts {
    pub raw: String,
    /// Empty unless the mail has bookkeeping fields.
    pub mail: String,
    /// Empty if not known.
    pub header: String,
}

impl KeyTexts {
    pub fn tags(&self) -> KeyTags {
        KeyTags {
            raw: tag_of(&self.raw),
            mail: tag_of(&self.mail),
            header: tag_of(&self.header),
        }
    }

    /// The three texts, in the order summaries store them.
    pub fn all(&self) -> [&String; 3] {
        [&self.raw, &self.mail, &self.header]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tag_is_the_head_of_the_stored_key() {
        let hex = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        assert_eq!(tag_of(hex), Some([0x9f, 0x86, 0xd0, 0x81]));
        let text = "header:9f86:12";
        let key = stored_key(text);
        assert_eq!(tag_of(text).unwrap(), key[..TAG_BYTES]);
        // Upper-case hex is not a hash text: it is stored hashed.
        assert_ne!(tag_of(&hex.to_uppercase()), tag_of(hex));
        assert_eq!(tag_of(""), None);
    }
}
