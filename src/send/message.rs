//! The message keys of SendMessage and SaveDraft (ARCHITECTURE.md "The D-Bus API"), checked
//! into a [`Draft`].
//!
//! Every key is checked before anything is composed or queued, and every
//! refusal is an InvalidArgument that starts with the key at fault. The
//! bounds ([`limits`]) keep one call from filling the store or the
//! daemon's memory; they are generous for a CRM's mail and far below what
//! D-Bus itself allows (128 MiB per message).
//!
//! Addresses are `user@domain` or `Display Name <user@domain>`. A domain
//! in Unicode is converted to its ASCII form (IDNA, RFC 5890), so the mail
//! needs neither SMTPUTF8 nor 8-bit headers; a non-ASCII local part would
//! need SMTPUTF8 (RFC 6531) at every hop and is refused.

use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::Address;

use crate::error::{Error, Result};

/// The bounds of one message (see the module docs).
pub mod limits {
    /// Recipients in to, cc and bcc together. Postfix accepts 1,000 per
    /// mail by default, big providers 100 to 500; a CRM mail to more is a
    /// mailing, which belongs elsewhere.
    pub const MAX_RECIPIENTS: usize = 100;
    /// One address with its display name, in bytes (RFC 5321 §4.5.3.1.3
    /// allows 256 for the path alone).
    pub const MAX_ADDRESS: usize = 512;
    /// The subject, in bytes: one RFC 5322 line's worth (§2.1.1).
    pub const MAX_SUBJECT: usize = 998;
    /// The plain-text body, in bytes.
    pub const MAX_TEXT: usize = 2 * 1024 * 1024;
    /// The HTML body, in bytes.
    pub const MAX_HTML: usize = 4 * 1024 * 1024;
    /// Attachments per mail.
    pub const MAX_ATTACHMENTS: usize = 100;
    /// All attachments' bytes together, before encoding: 25 MiB, the limit
    /// most providers put on a whole mail; base64 makes the mail a third
    /// larger.
    pub const MAX_ATTACHMENT_BYTES: usize = 25 * 1024 * 1024;
    /// An attachment's file name, in bytes.
    pub const MAX_FILE_NAME: usize = 255;
    /// A MIME type, in bytes (RFC 6838 §4.2: 127 per name).
    pub const MAX_MIME: usize = 255;
}

use limits::*;

/// Every key SendMessage and SaveDraft accept.
pub const KEYS: &[&str] = &[
    "to",
    "cc",
    "bcc",
    "subject",
    "text",
    "html",
    "attachments",
    "in_reply_to",
    "signature",
    "draft_id",
];

/// A message value as it arrived, typed by its D-Bus signature.
#[derive(Debug, Clone, PartialEq)]
pub enum MessageValue {
    Str(String),
    StrList(Vec<String>),
    Bool(bool),
    U64(u64),
    /// `a(ssay)`: name, MIME type, bytes.
    Attachments(Vec<(String, String, Vec<u8>)>),
    /// Any other type; holds its D-Bus signature for the error message.
    Other(String),
}

impl MessageValue {
    fn signature(&self) -> &str {
        match self {
            MessageValue::Str(_) => "s",
            MessageValue::StrList(_) => "as",
            MessageValue::Bool(_) => "b",
            MessageValue::U64(_) => "t",
            MessageValue::Attachments(_) => "a(ssay)",
            MessageValue::Other(sig) => sig,
        }
    }
}

/// A file attached to a mail.
#[derive(Clone, PartialEq, Eq)]
pub struct Attachment {
    pub name: String,
    /// Checked `type/subtype` (lower case).
    pub mime: String,
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for Attachment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Attachment({:?}, {}, {} bytes)",
            self.name,
            self.mime,
            self.bytes.len()
        )
    }
}

/// What `in_reply_to` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InReplyTo {
    /// A stored message (its id, in decimal): its own Message-ID and
    /// References continue the thread.
    Stored(u64),
    /// A Message-ID, with its angle brackets.
    MessageId(String),
}

/// A checked message (see the module docs).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Draft {
    pub to: Vec<Mailbox>,
    pub cc: Vec<Mailbox>,
    /// Only in the envelope, never in a header.
    pub bcc: Vec<Mailbox>,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub attachments: Vec<Attachment>,
    pub in_reply_to: Option<InReplyTo>,
    /// Append the user's signature (default true).
    pub signature: bool,
    /// SaveDraft: the draft this one replaces.
    pub draft_id: Option<u64>,
}

impl Draft {
    /// Check the message keys of a call (module docs). Nothing is kept of
    /// a refused message.
    pub fn from_keys(keys: Vec<(String, MessageValue)>) -> Result<Draft> {
        let mut d = Draft {
            signature: true,
            ..Draft::default()
        };
        let mut seen: Vec<String> = Vec::new();
        for (key, value) in keys {
            if seen.contains(&key) {
                return Err(Error::invalid(key, "given twice"));
            }
            let wrong = |want: &str, got: &MessageValue| {
                Error::invalid(
                    &key,
                    format!("must be of type {want}, not {}", got.signature()),
                )
            };
            match (key.as_str(), value) {
                ("to", MessageValue::StrList(v)) => d.to = mailboxes("to", &v)?,
                ("cc", MessageValue::StrList(v)) => d.cc = mailboxes("cc", &v)?,
                ("bcc", MessageValue::StrList(v)) => d.bcc = mailboxes("bcc", &v)?,
                ("subject", MessageValue::Str(s)) => d.subject = subject(s)?,
                ("text", MessageValue::Str(s)) => d.text = body("text", s, MAX_TEXT)?,
                ("html", MessageValue::Str(s)) => d.html = body("html", s, MAX_HTML)?,
                ("attachments", MessageValue::Attachments(v)) => d.attachments = attachments(v)?,
                ("in_reply_to", MessageValue::Str(s)) => d.in_reply_to = in_reply_to(&s)?,
                ("signature", MessageValue::Bool(b)) => d.signature = b,
                ("draft_id", MessageValue::U64(id)) => d.draft_id = Some(id),
                ("to" | "cc" | "bcc", v) => return Err(wrong("as", &v)),
                ("subject" | "text" | "html" | "in_reply_to", v) => return Err(wrong("s", &v)),
                ("attachments", v) => return Err(wrong("a(ssay)", &v)),
                ("signature", v) => return Err(wrong("b", &v)),
                ("draft_id", v) => return Err(wrong("t", &v)),
                _ => {
                    return Err(Error::invalid(
                        key,
                        format!("unknown message key (known: {})", KEYS.join(", ")),
                    ))
                }
            }
            seen.push(key);
        }
        let n = d.to.len() + d.cc.len() + d.bcc.len();
        if n > MAX_RECIPIENTS {
            return Err(Error::invalid(
                "to",
                format!("{n} recipients in to, cc and bcc; at most {MAX_RECIPIENTS}"),
            ));
        }
        Ok(d)
    }

    /// SendMessage needs someone to send to; SaveDraft does not.
    pub fn check_sendable(&self) -> Result<()> {
        if self.to.is_empty() && self.cc.is_empty() && self.bcc.is_empty() {
            return Err(Error::invalid(
                "to",
                "no recipient: give at least one address in to, cc or bcc",
            ));
        }
        Ok(())
    }

    /// Envelope recipients: to, cc and bcc, each address once, in order.
    pub fn envelope_recipients(&self) -> Vec<Address> {
        let mut out: Vec<Address> = Vec::new();
        for m in self.to.iter().chain(&self.cc).chain(&self.bcc) {
            if !out.contains(&m.email) {
                out.push(m.email.clone());
            }
        }
        out
    }
}

/// Control characters other than line breaks and tabs.
fn has_controls(s: &str) -> bool {
    s.contains(|c: char| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
}

fn subject(s: String) -> Result<String> {
    if s.len() > MAX_SUBJECT {
        return Err(Error::invalid(
            "subject",
            format!("too long: {} bytes, at most {MAX_SUBJECT}", s.len()),
        ));
    }
    if s.contains(char::is_control) {
        return Err(Error::invalid(
            "subject",
            "contains line breaks or control characters",
        ));
    }
    Ok(s)
}

fn body(key: &str, s: String, max: usize) -> Result<String> {
    if s.len() > max {
        return Err(Error::invalid(
            key,
            format!("too long: {} bytes, at most {max}", s.len()),
        ));
    }
    if has_controls(&s) {
        return Err(Error::invalid(
            key,
            "contains control characters other than line breaks and tabs",
        ));
    }
    Ok(s)
}

fn mailboxes(key: &str, list: &[String]) -> Result<Vec<Mailbox>> {
    if list.len() > MAX_RECIPIENTS {
        return Err(Error::invalid(
            key,
            format!("{} recipients; at most {MAX_RECIPIENTS}", list.len()),
        ));
    }
    list.iter()
        .enumerate()
        .map(|(i, s)| {
            mailbox(s).map_err(|why| {
                let shown: String = s.chars().take(80).collect();
                Error::invalid(key, format!("entry {} {shown:?}: {why}", i + 1))
            })
        })
        .collect()
}

/// `user@domain` or `Name <user@domain>` (module docs).
pub fn mailbox(s: &str) -> std::result::Result<Mailbox, String> {
    if s.len() > MAX_ADDRESS {
        return Err(format!("longer than {MAX_ADDRESS} bytes"));
    }
    if s.contains(char::is_control) {
        return Err("contains control characters".into());
    }
    let s = s.trim();
    let (name, addr) = match (s.rfind('<'), s.ends_with('>')) {
        (Some(open), true) => {
            let name = s[..open].trim();
            let name = name
                .strip_prefix('"')
                .and_then(|n| n.strip_suffix('"'))
                .unwrap_or(name)
                .trim();
            (
                Some(name).filter(|n| !n.is_empty()),
                &s[open + 1..s.len() - 1],
            )
        }
        _ => (None, s),
    };
    let address = address(addr.trim())?;
    Ok(Mailbox::new(name.map(str::to_string), address))
}

/// A bare address with an ASCII local part; the domain in ASCII (IDNA).
pub fn address(s: &str) -> std::result::Result<Address, String> {
    let Some((user, domain)) = s.rsplit_once('@') else {
        return Err("not an e-mail address (no @)".into());
    };
    if !user.is_ascii() {
        return Err("the part before the @ must be ASCII (SMTPUTF8 is not used)".into());
    }
    let domain =
        idna::domain_to_ascii(domain).map_err(|_| format!("{domain:?} is not a valid domain"))?;
    Address::new(user, &domain).map_err(|e| format!("not an e-mail address ({e})"))
}

fn attachments(list: Vec<(String, String, Vec<u8>)>) -> Result<Vec<Attachment>> {
    if list.len() > MAX_ATTACHMENTS {
        return Err(Error::invalid(
            "attachments",
            format!("{} files; at most {MAX_ATTACHMENTS}", list.len()),
        ));
    }
    let total: usize = list.iter().map(|(_, _, b)| b.len()).sum();
    if total > MAX_ATTACHMENT_BYTES {
        return Err(Error::invalid(
            "attachments",
            format!("{total} bytes together; at most {MAX_ATTACHMENT_BYTES} (25 MiB)"),
        ));
    }
    list.into_iter()
        .enumerate()
        .map(|(i, (name, mime, bytes))| {
            let bad = |why: String| {
                Error::invalid("attachments", format!("file {} {name:?}: {why}", i + 1))
            };
            if name.trim().is_empty() {
                return Err(bad("the file name is empty".into()));
            }
            if name.len() > MAX_FILE_NAME {
                return Err(bad(format!("file name longer than {MAX_FILE_NAME} bytes")));
            }
            if name.contains(|c: char| c.is_control() || c == '/' || c == '\\') {
                return Err(bad(
                    "the file name contains a path separator or control characters".into(),
                ));
            }
            let mime = mime.trim().to_ascii_lowercase();
            let well_formed = mime.len() <= MAX_MIME
                && mime.split_once('/').is_some_and(|(t, s)| {
                    !t.is_empty() && !s.is_empty() && [t, s].iter().all(|p| p.chars().all(token))
                });
            if !well_formed || ContentType::parse(&mime).is_err() {
                return Err(bad(format!("{mime:?} is not a MIME type (type/subtype)")));
            }
            Ok(Attachment { name, mime, bytes })
        })
        .collect()
}

/// RFC 6838 §4.2 restricted-name characters.
fn token(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$&-^_.+".contains(c)
}

fn in_reply_to(s: &str) -> Result<Option<InReplyTo>> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return s
            .parse()
            .map(|id| Some(InReplyTo::Stored(id)))
            .map_err(|_| Error::invalid("in_reply_to", "message id out of range"));
    }
    if super::thread::is_message_id(s) {
        return Ok(Some(InReplyTo::MessageId(s.to_string())));
    }
    Err(Error::invalid(
        "in_reply_to",
        "neither a stored message's id (digits) nor a Message-ID in angle brackets",
    ))
}

#[cfg(test)]
mod tests;
