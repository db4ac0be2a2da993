//! Building the raw mail from a checked [`Draft`] with lettre.
//!
//! Structure (RFC 2046, RFC 2387):
//!
//! ```text
//! multipart/mixed                      only with attachments
//! ├── multipart/alternative            text and HTML
//! │   ├── text/plain
//! │   └── multipart/related            only with signature pictures
//! │       ├── text/html                refers to them as cid:…
//! │       └── image/png (inline, Content-ID)
//! └── application/pdf (attachment; filename per RFC 2231)
//! ```
//!
//! - A mail with HTML only gets a plain-text alternative made from the HTML,
//!   so that text-only readers and spam filters see the content; a mail
//!   with text only stays text/plain, and its signature then is the text
//!   part of the signature (pictures need HTML).
//! - The signature follows the body: in the text part after the usual
//!   `-- ` line (RFC 3676 §4.3, so that replies can leave it out; unless
//!   the template starts with that line itself); in the
//!   HTML part as a `<div class="signature">` before `</body>`, or at the
//!   end. An HTML signature left empty while the text one is not gets the
//!   text, escaped, with line breaks.
//! - Headers: `From` is the account's name and address; `To` and `Cc` as
//!   given, non-ASCII display names and the subject as RFC 2047 encoded
//!   words, file names as RFC 2231 parameters — all by lettre. `Bcc` is
//!   never written: those recipients exist only in the envelope. Bodies are
//!   7-bit (quoted-printable or base64 where needed), so no server needs
//!   8BITMIME.
//! - `Message-ID` is `<random.time@domain>`, the domain part being the
//!   account address's own (RFC 5322 §3.6.4: unique, and ours to vouch for).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{SystemTime, UNIX_EPOCH};

use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::{Address, Message};
use rand::RngCore;

use super::message::{address, Draft};
use super::thread::Parent;
use crate::account::Account;
use crate::error::{Error, Result};
use crate::signature::{escape_html, ForMail};

/// The whole mail, encoded, at most this many bytes: the bounds of
/// [`super::message::limits`] plus base64's third.
pub const MAX_MAIL: usize = 40 * 1024 * 1024;

/// What [`compose`] needs.
#[derive(Debug, Clone, Copy)]
pub struct Compose<'a> {
    pub account: &'a Account,
    pub draft: &'a Draft,
    /// The rendered signature, when one is to be appended.
    pub signature: Option<&'a ForMail>,
    pub parent: Option<&'a Parent>,
    pub date: SystemTime,
}

/// A composed mail and its envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Composed {
    pub raw: Vec<u8>,
    /// With angle brackets.
    pub message_id: String,
    /// MAIL FROM: the account's address.
    pub from: Address,
    /// RCPT TO: to, cc and bcc, each once.
    pub rcpt: Vec<Address>,
}

/// The account's address as a sender; a stored account has a checked one.
pub fn sender(account: &Account) -> Result<Mailbox> {
    let addr = address(&account.address).map_err(|why| Error::invalid("address", why))?;
    let name = Some(account.name.trim().to_string()).filter(|n| !n.is_empty());
    Ok(Mailbox::new(name, addr))
}

/// A new Message-ID for a mail from `from` (module docs).
pub fn new_message_id(from: &Address, date: SystemTime) -> Result<String> {
    let mut raw = [0u8; 12];
    rand::rngs::OsRng
        .try_fill_bytes(&mut raw)
        .map_err(|e| Error::storage("no randomness for a Message-ID", e))?;
    let token: String = crate::hex::lower(&raw);
    let secs = date.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    Ok(format!("<{token}.{secs}@{}>", from.domain()))
}

/// Build the mail (module docs). Fails only on what the checks before
/// cannot see: a mail over [`MAX_MAIL`] once encoded.
pub fn compose(c: &Compose<'_>) -> Result<Composed> {
    let from = sender(c.account)?;
    let message_id = new_message_id(&from.email, c.date)?;
    let d = c.draft;
    let mut rcpt = d.envelope_recipients();
    let envelope_to = if rcpt.is_empty() {
        // A draft without recipients: lettre wants an envelope all the
        // same; it is never used.
        vec![from.email.clone()]
    } else {
        rcpt.clone()
    };
    let envelope = lettre::address::Envelope::new(Some(from.email.clone()), envelope_to)
        .map_err(|e| Error::invalid("to", e))?;
    let mut b = Message::builder()
        .from(from.clone())
        .subject(d.subject.clone())
        .date(c.date)
        .message_id(Some(message_id.clone()))
        .user_agent(format!("postfach/{}", env!("CARGO_PKG_VERSION")))
        .envelope(envelope);
    for m in &d.to {
        b = b.to(m.clone());
    }
    for m in &d.cc {
        b = b.cc(m.clone());
    }
    if let Some(p) = c.parent {
        let (irt, refs) = p.headers();
        b = b.in_reply_to(irt).references(refs);
    }
    let body = body(d, c.signature);
    let message = if d.attachments.is_empty() {
        match body {
            Part::Single(s) => b.singlepart(s),
            Part::Multi(m) => b.multipart(m),
        }
    } else {
        let mut mixed = match body {
            Part::Single(s) => MultiPart::mixed().singlepart(s),
            Part::Multi(m) => MultiPart::mixed().multipart(m),
        };
        for a in &d.attachments {
            let ct = ContentType::parse(&a.mime)
                .map_err(|e| Error::invalid("attachments", format!("{}: {e}", a.mime)))?;
            mixed = mixed.singlepart(Attachment::new(a.name.clone()).body(a.bytes.clone(), ct));
        }
        b.multipart(mixed)
    };
    let message =
        message.map_err(|e| Error::invalid("to", format!("cannot build the mail: {e}")))?;
    let raw = message.formatted();
    if raw.len() > MAX_MAIL {
        return Err(Error::invalid(
            "attachments",
            format!(
                "the mail would be {} bytes encoded; at most {MAX_MAIL}",
                raw.len()
            ),
        ));
    }
    rcpt.shrink_to_fit();
    Ok(Composed {
        raw,
        message_id,
        from: from.email,
        rcpt,
    })
}

enum Part {
    Single(SinglePart),
    Multi(MultiPart),
}

/// The body without attachments: text, HTML, or both as alternatives.
fn body(d: &Draft, sig: Option<&ForMail>) -> Part {
    let has_html = !d.html.trim().is_empty();
    let text = if has_html && d.text.trim().is_empty() {
        html_to_text(&d.html)
    } else {
        d.text.clone()
    };
    let text = match sig.filter(|s| !s.text.trim().is_empty()) {
        Some(s) if text.is_empty() => s.text.clone(),
        // A template that brings its own separator line keeps it alone.
        Some(s) if s.text.starts_with("-- \n") || s.text.starts_with("-- \r\n") => {
            format!("{}\n\n{}", text.trim_end(), s.text)
        }
        Some(s) => format!("{}\n\n-- \n{}", text.trim_end(), s.text),
        None => text,
    };
    let text_part = SinglePart::builder()
        .header(ContentType::TEXT_PLAIN)
        .body(text);
    if !has_html {
        return Part::Single(text_part);
    }
    let html = with_html_signature(&d.html, sig);
    let html_part = SinglePart::builder()
        .header(ContentType::TEXT_HTML)
        .body(html);
    let inline = sig.map(|s| s.inline.as_slice()).unwrap_or_default();
    let alternative = MultiPart::alternative().singlepart(text_part);
    if inline.is_empty() {
        return Part::Multi(alternative.singlepart(html_part));
    }
    let mut related = MultiPart::related().singlepart(html_part);
    for p in inline {
        // A picture type the signature module produced: always valid.
        let ct = ContentType::parse(&p.mime).unwrap_or(ContentType::TEXT_PLAIN);
        related =
            related.singlepart(Attachment::new_inline(p.cid.clone()).body(p.bytes.clone(), ct));
    }
    Part::Multi(alternative.multipart(related))
}

/// The HTML body with the signature (module docs).
fn with_html_signature(html: &str, sig: Option<&ForMail>) -> String {
    let Some(sig) = sig else {
        return html.to_string();
    };
    let block = if !sig.html.trim().is_empty() {
        sig.html.clone()
    } else if !sig.text.trim().is_empty() {
        escape_html(&sig.text)
            .replace("\r\n", "\n")
            .replace('\n', "<br>\n")
    } else {
        return html.to_string();
    };
    let block = format!("<div class=\"signature\">{block}</div>\n");
    match html.to_ascii_lowercase().rfind("</body>") {
        Some(at) => format!("{}{block}{}", &html[..at], &html[at..]),
        None => format!("{html}\n{block}"),
    }
}

/// A plain-text version of an HTML body (mail-parser's conversion, which
/// cannot panic the daemon here).
fn html_to_text(html: &str) -> String {
    catch_unwind(AssertUnwindSafe(|| {
        mail_parser::decoders::html::html_to_text(html)
    }))
    .unwrap_or_default()
}

#[cfg(test)]
mod tests;
