//! Recognising a mail whose bytes a server rewrites: a digest that leaves
//! out the server's bookkeeping header fields.
//!
//! An mbox server (GNU mailutils imap4d, UW imapd, old Pine-era setups)
//! keeps its IMAP state inside the mail file: `X-IMAPbase` (`X-IMAP`) on
//! the first message, `X-UID`, `Status`, `X-Status` and `X-Keywords` on
//! each. They are part of the bytes `BODY[]` returns, and change when the
//! server renumbers its UIDs (a new UIDVALIDITY, RFC 3501 §2.3.1.1) or
//! another client sets a flag — so the SHA-256 of the raw bytes names the
//! same mail differently from one session to the next.
//!
//! [`Digester`] hashes a mail with those fields left out (names compared
//! case-insensitively, RFC 5322 §2.2; a folded continuation line belongs
//! to its field, §2.2.3) and everything else byte for byte. It gives two
//! keys (the store keeps the bytes as they came; these only recognise):
//!
//! - the mail key: the digest of the whole mail without the fields — two
//!   mails with the same key are the same mail; for a mail without such
//!   fields it is its raw hash, so that only mbox servers' mail costs
//!   rows of its own;
//! - the header key: the digest of the header without the fields (its
//!   blank line included, as `BODY[HEADER]` has it, RFC 3501 §6.4.5) and
//!   the length of the body. A server that renumbers in every session
//!   sends `BODY.PEEK[HEADER]` and `RFC822.SIZE`, which give the same key
//!   without downloading the body (imap::unstable). It is filed for mail
//!   with bookkeeping fields, and for any mail seen again after a
//!   UIDVALIDITY change (the only time header recognition may be needed).
//!
//! `super::content` files them in the content index beside the raw hash
//! (`Content::add`).
//!
//! It streams with bounded state: a line's bytes are buffered only until
//! its field name is known (at most [`NAME_MAX`] bytes), so a blob of any
//! size or a hostile header of one endless line costs no memory.

use sha2::{Digest, Sha256};

/// Header fields an mbox server writes for its own bookkeeping.
const BOOKKEEPING: &[&[u8]] = &[
    b"x-imapbase",
    b"x-imap",
    b"x-uid",
    b"status",
    b"x-status",
    b"x-keywords",
];

/// A name longer than this is none of [`BOOKKEEPING`]: the line is kept.
const NAME_MAX: usize = 32;

/// The two keys of a mail (see the module docs), as stored in the
/// content index (super::content) beside the SHA-256 of the raw bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailKeys {
    /// Lower-case hex, like the raw hash: for a mail without bookkeeping
    /// fields it *is* the raw hash, so such a mail (all mail from servers
    /// that keep their state elsewhere) needs no row of its own.
    pub mail: String,
    /// `header:<hex>:<body length>`.
    pub header: String,
    /// Whether a bookkeeping field was left out: only such a mail has a
    /// mail key of its own and a header key from the start.
    pub bookkeeping: bool,
}

impl MailKeys {
    /// The keys of a whole mail in memory.
    pub fn of(raw: &[u8]) -> MailKeys {
        let mut d = Digester::default();
        d.update(raw);
        d.finish()
    }
}

/// The header key of a mail known by its header (`BODY[HEADER]`) and its
/// whole size (`RFC822.SIZE`); None if the size is below the header's.
pub fn header_key(header: &[u8], size: u64) -> Option<String> {
    let body = size.checked_sub(header.len() as u64)?;
    let mut d = Digester::default();
    d.update(header);
    let mut keys = d.finish();
    // The header alone has no body: its key's length is the listed rest.
    let cut = keys.header.rfind(':')?;
    keys.header.truncate(cut + 1);
    keys.header.push_str(&body.to_string());
    Some(keys.header)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum State {
    /// At the start of a header line.
    #[default]
    LineStart,
    /// Reading a field name into `pending`.
    Name,
    /// In a kept line, up to its LF.
    Keep,
    /// In a bookkeeping line, up to its LF.
    Drop,
    /// Past the header's blank line.
    Body,
}

/// Streams a mail into its [`MailKeys`]; see the module docs.
#[derive(Default)]
pub struct Digester {
    mail: Sha256,
    header: Sha256,
    state: State,
    /// The start of the current line while its field name is unknown.
    pending: Vec<u8>,
    /// Whether the last field was bookkeeping (for continuation lines).
    dropping: bool,
    /// Whether any field was.
    dropped: bool,
    body_len: u64,
}

impl Digester {
    pub fn update(&mut self, mut buf: &[u8]) {
        while !buf.is_empty() {
            if self.state == State::Body {
                self.mail.update(buf);
                self.body_len += buf.len() as u64;
                return;
            }
            let used = self.step(buf);
            buf = buf.get(used..).unwrap_or_default();
        }
    }

    /// Consumes a prefix of `buf` (at least one byte) in the header.
    fn step(&mut self, buf: &[u8]) -> usize {
        match self.state {
            State::Body => 0,
            State::LineStart => {
                match buf.first() {
                    Some(b'\n') => {
                        self.keep(b"\n");
                        self.state = State::Body;
                        return 1;
                    }
                    Some(b' ' | b'\t') => {
                        self.state = if self.dropping {
                            State::Drop
                        } else {
                            State::Keep
                        };
                    }
                    _ => self.state = State::Name,
                }
                0
            }
            State::Keep | State::Drop => {
                let (line, ends) = match buf.iter().position(|&b| b == b'\n') {
                    Some(at) => (buf.get(..=at).unwrap_or(buf), true),
                    None => (buf, false),
                };
                if self.state == State::Keep {
                    self.keep(line);
                }
                if ends {
                    self.state = State::LineStart;
                }
                line.len()
            }
            State::Name => {
                let Some(&b) = buf.first() else { return 0 };
                self.pending.push(b);
                if b == b'\n' {
                    // "\r\n" alone is the blank line; any other line without
                    // a colon is kept as it is.
                    let blank = self.pending.as_slice() == b"\r\n";
                    self.flush_pending(false);
                    self.dropping = false;
                    self.state = if blank { State::Body } else { State::LineStart };
                } else if b == b':' || self.pending.len() > NAME_MAX {
                    let drop = b == b':' && is_bookkeeping(&self.pending);
                    self.dropping = drop;
                    self.dropped |= drop;
                    self.flush_pending(drop);
                    self.state = if drop { State::Drop } else { State::Keep };
                }
                1
            }
        }
    }

    fn keep(&mut self, bytes: &[u8]) {
        self.mail.update(bytes);
        self.header.update(bytes);
    }

    fn flush_pending(&mut self, drop: bool) {
        let pending = std::mem::take(&mut self.pending);
        if !drop {
            self.keep(&pending);
        }
    }

    /// The keys; a mail without a blank line is all header.
    pub fn finish(mut self) -> MailKeys {
        if self.state == State::Name {
            self.flush_pending(false);
        }
        let header = format!(
            "header:{}:{}",
            hex(&self.header.clone().finalize()),
            self.body_len
        );
        MailKeys {
            mail: hex(&self.mail.finalize()),
            header,
            bookkeeping: self.dropped,
        }
    }
}

/// Whether `name_colon` (a field name and its colon, maybe with blanks
/// before the colon, RFC 5322 §4.5.3) names a bookkeeping field.
fn is_bookkeeping(name_colon: &[u8]) -> bool {
    let name = name_colon.strip_suffix(b":").unwrap_or(name_colon);
    let name = name.trim_ascii_end();
    BOOKKEEPING.iter().any(|b| name.eq_ignore_ascii_case(b))
}

/// What a header key (super::digest) of two different stored mails points
/// to: it recognises neither, so such a mail is downloaded and recognised
/// by its mail key.
pub const AMBIGUOUS: u64 = u64::MAX;

fn hex(bytes: &[u8]) -> String {
    crate::hex::lower(bytes)
}

#[cfg(test)]
mod tests;
