//! Summaries and views from raw mail.
//!
//! Parsing always runs *after* the raw bytes are stored and never decides
//! whether a mail is kept (ARCHITECTURE.md "Invariants", 4). Mail in the wild is
//! often broken — missing headers, 8-bit bytes in headers despite RFC 5322
//! §2.2, undecodable RFC 2047 encoded-words, absurd nesting — so every
//! function here returns a best-effort result with fallbacks and cannot
//! panic the caller: mail-parser runs inside `catch_unwind`.
//!
//! Texts that end up in the message index are cleaned of control characters
//! (a `\0` or a newline in a subject breaks table views and log lines) and
//! capped in length, so one hostile mail cannot bloat every ListMessages page.

use std::panic::{catch_unwind, AssertUnwindSafe};

use mail_parser::{Addr, Address, Message, MessageParser, MimeHeaders};

use crate::store::Summary;

/// Longest subject kept in the index, in characters.
const MAX_SUBJECT: usize = 998;
/// Longest single address or Message-ID kept, in characters (RFC 5321
/// §4.5.3.1 allows 256 for a path; names come on top).
const MAX_ADDRESS: usize = 512;
/// Most recipients kept per header in the index; the raw mail has them all.
const MAX_RECIPIENTS: usize = 200;

/// The header summary of a raw mail for the message index.
///
/// Never panics on any input; broken mail gets fallbacks: an empty subject,
/// the sender from `Sender` or `Return-Path` (the envelope sender the final
/// server recorded, RFC 5321 §4.4) when `From` is missing, and the date
/// `received` when `Date` is missing or unparsable.
///
/// Only the header block is parsed when the top-level headers show a single
/// part (see [`single_part_attachments`]); the whole MIME tree is parsed
/// only when it is multipart or a nested message. A fetch summarises every
/// mail, and decoding every body (a 10 MB base64 attachment: 7.5 MB decoded
/// and thrown away) just to learn whether there are attachments was most of
/// the parse cost and memory.
pub fn summarize(raw: &[u8], received: i64) -> Summary {
    summarize_with(raw, received, |raw| MessageParser::default().parse(raw))
}

/// [`summarize`] with the full MIME parse passed in, so a test can make it
/// panic. The header block and the MIME tree are parsed apart, each under
/// its own `catch_unwind`: a parser panic deep in a broken body (a nested
/// message without headers, a boundary cut mid-line) still leaves the
/// sender, subject, date and Message-ID the headers gave; only whether it
/// has attachments is then guessed from the top-level type
/// ([`guess_attachments`]).
fn summarize_with<'x>(
    raw: &'x [u8],
    received: i64,
    full: impl FnOnce(&'x [u8]) -> Option<Message<'x>>,
) -> Summary {
    let head = catch_unwind(AssertUnwindSafe(|| {
        MessageParser::default().parse_headers(raw)
    }));
    let head = match head {
        Ok(Some(head)) => head,
        Ok(None) => return fallback(received),
        Err(_) => {
            tracing::warn!(
                size = raw.len(),
                "mail parser panicked on the headers; summary left empty"
            );
            return fallback(received);
        }
    };
    if let Some(has_attachments) = single_part_attachments(&head, raw) {
        return Summary {
            has_attachments,
            ..summary_of(&head, received)
        };
    }
    match catch_unwind(AssertUnwindSafe(|| {
        full(raw).map(|m| summary_of(&m, received))
    })) {
        Ok(Some(s)) => s,
        Ok(None) => fallback(received),
        Err(_) => {
            tracing::warn!(
                size = raw.len(),
                "mail parser panicked on the body; summary from the headers"
            );
            Summary {
                has_attachments: guess_attachments(&head),
                ..summary_of(&head, received)
            }
        }
    }
}

/// Whether a mail whose MIME tree could not be parsed has attachments,
/// from its top-level type alone: `multipart/mixed` (RFC 2046 §5.1.3, the
/// type for "independent body parts", attachments among them) and a
/// forwarded `message/*` say yes; `multipart/alternative` or `related`
/// (one body in several forms, inline pictures) say no.
fn guess_attachments(head: &Message<'_>) -> bool {
    head.parts
        .first()
        .and_then(|root| root.content_type())
        .is_some_and(|ct| match ct.ctype() {
            "message" => true,
            "multipart" => ct.subtype().is_none_or(|s| s.eq_ignore_ascii_case("mixed")),
            _ => false,
        })
}

/// For a mail that is one part, whether it counts as an attachment, decided
/// from its headers the way mail-parser's full parse decides it (its
/// `mime_type`, with the same exact comparisons): `text/plain` or
/// `text/html` (or untyped, RFC 2045 §5.2) is the body, unless declared an
/// attachment (RFC 2183), which is left to the full parse (mail-parser
/// treats a badly encoded one specially); any other single type is an
/// attachment, by [`is_real_attachment`] — if it has a body at all: a
/// header block that no empty line ends is, to mail-parser, a mail without
/// a body and without attachments, so that case gets the full parse too
/// (it is cheap: there is no body). None: multipart or a nested message,
/// which need the full parse.
fn single_part_attachments(head: &Message<'_>, raw: &[u8]) -> Option<bool> {
    let root = head.parts.first()?;
    let declared = root
        .content_disposition()
        .is_some_and(|d| d.is_attachment());
    match root.content_type() {
        None => (!declared).then_some(false),
        Some(ct) => match ct.ctype() {
            "multipart" | "message" => None,
            "text" if matches!(ct.subtype(), Some("plain" | "html")) => {
                (!declared).then_some(false)
            }
            _ => has_empty_line(raw).then(|| is_real_attachment(root)),
        },
    }
}

/// Whether an empty line (LF LF or LF CR LF) ends a header block.
fn has_empty_line(raw: &[u8]) -> bool {
    raw.iter().enumerate().any(|(i, &b)| {
        b == b'\n' && matches!(raw.get(i + 1..), Some([b'\n', ..] | [b'\r', b'\n', ..]))
    })
}

/// What [`summarize`] gives when nothing can be read.
fn fallback(received: i64) -> Summary {
    Summary {
        date: Some(received),
        ..Summary::default()
    }
}

fn summary_of(m: &Message<'_>, received: i64) -> Summary {
    let from = m
        .from()
        .and_then(first_address)
        .or_else(|| m.sender().and_then(first_address))
        .or_else(|| m.return_address().map(envelope_address))
        .unwrap_or_default();
    let date = m
        .date()
        .filter(|d| d.is_valid())
        .map(|d| d.to_timestamp())
        .unwrap_or(received);
    Summary {
        from,
        to: m.to().map(address_list).unwrap_or_default(),
        cc: m.cc().map(address_list).unwrap_or_default(),
        subject: clean(m.subject().unwrap_or(""), MAX_SUBJECT),
        date: Some(date),
        message_id: clean(m.message_id().unwrap_or(""), MAX_ADDRESS),
        has_attachments: m.attachments().any(is_real_attachment),
    }
}

/// An inline part with a Content-ID is an image the HTML body shows (a
/// logo in a signature, RFC 2392 `cid:`); users do not count it as an
/// attachment.
fn is_real_attachment(part: &mail_parser::MessagePart<'_>) -> bool {
    let inline = part
        .content_disposition()
        .is_some_and(|d| d.ctype().eq_ignore_ascii_case("inline"));
    !(inline && part.content_id().is_some())
}

fn first_address(a: &Address<'_>) -> Option<String> {
    a.iter().find_map(format_addr)
}

fn address_list(a: &Address<'_>) -> Vec<String> {
    a.iter()
        .filter_map(format_addr)
        .take(MAX_RECIPIENTS)
        .collect()
}

/// "Name <addr>", or "addr" when there is no name (or the name only repeats
/// the address), or the bare name when a broken header has no address.
fn format_addr(a: &Addr<'_>) -> Option<String> {
    let name = a.name().map(|n| clean(n, MAX_ADDRESS)).unwrap_or_default();
    let addr = a
        .address()
        .map(|s| clean(s, MAX_ADDRESS))
        .unwrap_or_default();
    let name = name.trim_matches('"').trim();
    if !addr.is_empty() {
        if name.is_empty() || name.eq_ignore_ascii_case(&addr) {
            Some(addr)
        } else {
            Some(format!("{name} <{addr}>"))
        }
    } else if !name.is_empty() {
        Some(name.to_string())
    } else {
        None
    }
}

/// `Return-Path: <addr>`; the null path `<>` of a bounce gives "".
fn envelope_address(s: &str) -> String {
    clean(
        s.trim().trim_start_matches('<').trim_end_matches('>'),
        MAX_ADDRESS,
    )
}

/// Control characters become spaces (`\0` is dropped), runs of whitespace
/// fold to one space (unfolded header lines), and the result is capped.
fn clean(s: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max_chars));
    let mut space = false;
    let mut count = 0;
    for c in s.chars().filter(|&c| c != '\0') {
        if c.is_control() || c.is_whitespace() {
            space = true;
            continue;
        }
        if space && !out.is_empty() {
            out.push(' ');
        }
        space = false;
        out.push(c);
        count += 1;
        if count >= max_chars {
            break;
        }
    }
    out
}

/// A message as `GetMessage` shows it (ARCHITECTURE.md "The D-Bus API").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct View {
    pub message_id: String,
    /// The plain-text body; derived from the HTML when only HTML was sent.
    pub text: String,
    /// The HTML body, "" when the mail has none.
    pub html: String,
    /// (file name, MIME type, decoded size in bytes).
    pub attachments: Vec<(String, String, u64)>,
    /// `text` or `html` was cut at [`MAX_BODY`], or the attachment list at
    /// [`MAX_ATTACHMENTS`]: the whole mail is in GetRaw.
    pub truncated: bool,
}

/// The most of `text` and of `html` that GetMessage hands out. A D-Bus
/// message may be at most 128 MiB (D-Bus specification, "Message
/// Format"), and the system bus's own limit is 32 MiB: a dbus-daemon
/// disconnects a peer that sends a bigger one, so one mail with a 50 MB
/// text part would take the daemon off the bus. 1 MiB each is more text
/// than anyone reads in a CRM; the rest stays in GetRaw.
pub const MAX_BODY: usize = 1 << 20;

/// The most attachments GetMessage lists (a mail of 10,000 tiny parts
/// would otherwise make a reply of megabytes of names).
pub const MAX_ATTACHMENTS: usize = 1000;

/// The readable parts of a raw mail. Never panics; unreadable mail gives an
/// empty view, and the caller can still offer the raw bytes (GetRaw).
pub fn view(raw: &[u8]) -> View {
    let parsed = catch_unwind(AssertUnwindSafe(|| {
        MessageParser::default().parse(raw).map(|m| view_of(&m))
    }));
    match parsed {
        Ok(Some(v)) => v,
        Ok(None) => View::default(),
        Err(_) => {
            tracing::warn!(size = raw.len(), "mail parser panicked; view left empty");
            View::default()
        }
    }
}

fn view_of(m: &Message<'_>) -> View {
    let mut truncated = false;
    let mut cut = |s: String| {
        if s.len() <= MAX_BODY {
            return s;
        }
        truncated = true;
        let mut end = MAX_BODY;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s[..end].to_string()
    };
    let text = cut(m.body_text(0).map(|t| t.into_owned()).unwrap_or_default());
    let html = if m.html_body_count() > 0 && m.html_part(0).is_some_and(|p| p.is_text_html()) {
        cut(m.body_html(0).map(|t| t.into_owned()).unwrap_or_default())
    } else {
        String::new()
    };
    truncated |= m.attachments().nth(MAX_ATTACHMENTS).is_some();
    let attachments = m
        .attachments()
        .take(MAX_ATTACHMENTS)
        .enumerate()
        .map(|(i, part)| {
            let mime = part
                .content_type()
                .map(|ct| match ct.subtype() {
                    Some(sub) => format!("{}/{}", ct.ctype(), sub),
                    None => ct.ctype().to_string(),
                })
                .unwrap_or_else(|| "application/octet-stream".to_string())
                .to_ascii_lowercase();
            let name = part
                .attachment_name()
                .map(|n| clean(n, MAX_ADDRESS))
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| format!("attachment-{}", i + 1));
            (name, mime, part.len() as u64)
        })
        .collect();
    View {
        message_id: clean(m.message_id().unwrap_or(""), MAX_ADDRESS),
        text,
        html,
        attachments,
        truncated,
    }
}

#[cfg(test)]
mod tests;
