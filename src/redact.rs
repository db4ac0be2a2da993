//! What text may leave the daemon: every text that crosses the bus or goes
//! to the log passes through here (ARCHITECTURE.md "The D-Bus API": "Every text that crosses
//! the bus or the log is capped … and scrubbed of the account's secrets").
//!
//! Two dangers, both seen in practice:
//! - **Size.** Servers and callers control what ends up in an error: an
//!   async-imap parse error embeds its whole read buffer (64 MB seen), an
//!   argument of 7 MB of control characters came back `{:?}`-escaped as a
//!   35 MB error reply, and dbus-daemon then dropped the daemon from the
//!   bus. [`cap`] keeps the first [`MAX_TEXT`] bytes and says how long the
//!   text was: `… (67108864 bytes)`.
//! - **Secrets.** A server that refuses a login may repeat it, password
//!   included (`NO [AUTHENTICATIONFAILED] "user" "secret"`,
//!   `-ERR … PASS secret`). A [`Scrubber`] holds the account's own secrets
//!   and replaces them with `***` in every form a client sends them and
//!   an error message quotes them: as is, escaped any number of times
//!   (IMAP quoted strings, `{:?}`), in base64 and in a SASL PLAIN message.
//!   Texts are scrubbed before they are capped, so no part of a secret
//!   survives at the cut.
//!
//! Both also neutralize characters that forge or hide text: line breaks
//! become spaces (one log line stays one line), other controls and the
//! invisible formatting characters of [`crate::account::hidden_char`]
//! become U+FFFD.
//!
//! The boundaries that call this: `scheduler::task` (a fetch's error
//! becomes `LastError`, the log line and the FetchNow reply),
//! `dbus::errors` (every error reply) and `probe` (connection test steps).

use base64::Engine;

use crate::account::{hidden_char, Account};
use crate::error::Error;
use crate::store::{SecretKind, Store};

/// Most bytes of a text kept before the cut: enough for any server's
/// refusal and our context around it, small enough that a status board of
/// 10,000 failing accounts stays a few MB.
pub const MAX_TEXT: usize = 400;

/// What a secret is replaced with.
const MASK: &str = "***";

/// `text` capped to [`MAX_TEXT`] bytes, controls neutralized.
pub fn cap(text: &str) -> String {
    Scrubber::default().clean(text)
}

/// `s` quoted for an error message when short, else only its size: for
/// echoing a caller's value without echoing a huge one.
pub fn quote(s: &str) -> String {
    const SHOWN: usize = 64;
    if s.len() <= SHOWN {
        format!("{s:?}")
    } else {
        format!("a value of {} bytes", s.len())
    }
}

/// The secrets of one account, in every form a client sends them, to be
/// removed from server texts. Zeroed when dropped.
#[derive(Default)]
pub struct Scrubber {
    needles: Vec<String>,
}

/// Characters that quoting layers put into a secret: IMAP quoted strings
/// (RFC 3501 §4.3) escape `\` and `"` with a backslash, and an error
/// rendered with `{:?}` (async-imap's NO texts) escapes them once more.
/// They are skipped inside a match, so a secret is found in any number of
/// such layers.
fn quoting(c: char) -> bool {
    c == '\\' || c == '"'
}

/// How a needle meets the start of a text.
enum Meet {
    /// Whole, in this many bytes.
    Whole(usize),
    /// The text ends inside it (after at least its first character).
    Partial,
    No,
}

fn meet(text: &str, needle: &str) -> Meet {
    let mut want = needle.chars();
    let Some(mut next) = want.next() else {
        return Meet::No;
    };
    let mut started = false;
    for (i, c) in text.char_indices() {
        if c == next {
            started = true;
            match want.next() {
                Some(n) => next = n,
                None => return Meet::Whole(i + c.len_utf8()),
            }
        } else if !(started && quoting(c)) {
            return Meet::No;
        }
    }
    if started {
        Meet::Partial
    } else {
        Meet::No
    }
}

impl Scrubber {
    /// A scrubber for `secrets` (empty ones are skipped). Besides each
    /// secret in any quoting ([`quoting`]), it finds the forms the
    /// protocols encode it in, which a server may echo as well: base64,
    /// and the SASL PLAIN message `\0login\0secret` in base64 (RFC 4616).
    pub fn new(secrets: &[&str], login: &str) -> Scrubber {
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut needles = Vec::new();
        for s in secrets.iter().filter(|s| !s.is_empty()) {
            let core: String = s.chars().filter(|c| !quoting(*c)).collect();
            needles.push(if core.is_empty() { s.to_string() } else { core });
            needles.push(b64.encode(s));
            needles.push(b64.encode(format!("\0{login}\0{s}")));
        }
        // Longest first: a secret inside a longer form is masked with it.
        needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
        needles.dedup();
        Scrubber { needles }
    }

    /// The account's password and SMTP password from the store, or `None`
    /// when they cannot be read (then nothing of the text may be shown).
    pub fn for_account(store: &Store, account: &Account) -> Option<Scrubber> {
        let read = |kind| match store.secret(&account.id, kind) {
            Ok(s) => Some(s),
            // Sealed under a key this installation lacks (a store moved
            // without its key): never opened, so in no text to scrub.
            Err(_) if matches!(store.has_secret(&account.id, kind), Ok(false)) => Some(None),
            Err(_) => None,
        };
        let password = read(SecretKind::Password)?;
        let smtp = read(SecretKind::SmtpPassword)?;
        let secrets: Vec<&str> = [&password, &smtp]
            .into_iter()
            .flatten()
            .map(|s| s.expose())
            .collect();
        Some(Scrubber::new(&secrets, &account.username))
    }

    /// The byte length of a secret that starts `text`, if one does.
    fn at(&self, text: &str) -> Option<usize> {
        self.needles.iter().find_map(|n| match meet(text, n) {
            Meet::Whole(len) => Some(len),
            _ => None,
        })
    }

    /// Whether `text` holds one of the secrets.
    pub fn finds(&self, text: &str) -> bool {
        text.char_indices()
            .any(|(i, _)| self.at(&text[i..]).is_some())
    }

    /// `text` without secrets and controls, capped to [`MAX_TEXT`] bytes.
    ///
    /// One pass over the text: a secret that starts before the cut is
    /// masked whole, so no part of one is ever shown; the cut never splits
    /// a character. The cut is made on what is shown: U+FFFD for a control
    /// takes three bytes.
    pub fn clean(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len().min(MAX_TEXT) + 32);
        let mut at = 0;
        while at < text.len() && out.len() < MAX_TEXT {
            let rest = &text[at..];
            if let Some(len) = self.at(rest) {
                out.push_str(MASK);
                at += len;
                continue;
            }
            let Some(c) = rest.chars().next() else { break };
            out.push(match c {
                '\n' | '\r' | '\t' => ' ',
                c if hidden_char(c) => '\u{FFFD}',
                c => c,
            });
            at += c.len_utf8();
        }
        if at < text.len() {
            out.push_str(&format!("… ({} bytes)", text.len()));
        }
        out
    }

    /// A text that was capped before it could be scrubbed (an error reply
    /// already made): the secrets in it are masked, and so is a tail cut
    /// at the cap that begins one of them.
    pub fn clean_capped(&self, text: &str) -> String {
        let (head, marker) = match text.rfind("… (") {
            Some(at) if text.ends_with(" bytes)") => text.split_at(at),
            _ => (text, ""),
        };
        let mut out = self.clean(head);
        if !marker.is_empty() {
            let tail = out.char_indices().map(|(i, _)| i).find(|&i| {
                self.needles
                    .iter()
                    .any(|n| matches!(meet(&out[i..], n), Meet::Partial))
            });
            if let Some(i) = tail {
                out.truncate(i);
                out.push_str(MASK);
            }
            out.push_str(marker);
        }
        out
    }

    /// `e` with the same kind and a cleaned message. Its cause is kept
    /// only when the cause's text holds no secret.
    pub fn error(&self, e: &Error) -> Error {
        match e {
            Error::InvalidArgument { key, message } => Error::InvalidArgument {
                key: self.clean(key),
                message: self.clean(message),
            },
            Error::NotFound(m) => Error::NotFound(self.clean(m)),
            Error::AccessDenied(m) => Error::AccessDenied(self.clean(m)),
            Error::Connection { message, source } => Error::Connection {
                message: self.clean(message),
                source: source.clone().filter(|c| !self.finds(&c.to_string())),
            },
            Error::Tls(m) => Error::Tls(self.clean(m)),
            Error::Authentication(m) => Error::Authentication(self.clean(m)),
            Error::NeedsAuthorization(m) => Error::NeedsAuthorization(self.clean(m)),
            Error::FolderUnknown(m) => Error::FolderUnknown(self.clean(m)),
            Error::Busy(m) => Error::Busy(self.clean(m)),
            Error::Storage { message, source } => Error::Storage {
                message: self.clean(message),
                source: source.clone().filter(|c| !self.finds(&c.to_string())),
            },
        }
    }
}

impl Drop for Scrubber {
    fn drop(&mut self) {
        for n in self.needles.drain(..) {
            let mut bytes = n.into_bytes();
            bytes.iter_mut().for_each(|b| *b = 0);
            std::hint::black_box(&bytes);
        }
    }
}

/// A fetch's error as the account may show it (`LastError`, the log, the
/// FetchNow reply): the account's secrets scrubbed, capped. When the
/// secrets cannot be read to scrub them, only the error's kind is shown.
pub fn account_error(store: &Store, account: &Account, e: &Error) -> Error {
    match Scrubber::for_account(store, account) {
        Some(s) => s.error(e),
        None => withheld(e),
    }
}

/// The error's kind with its text withheld.
fn withheld(e: &Error) -> Error {
    let m = format!(
        "{} error (details withheld: the account's secrets could not be read to scrub them)",
        e.name()
    );
    match e {
        Error::InvalidArgument { key, .. } => Error::invalid(key.clone(), m),
        Error::NotFound(_) => Error::NotFound(m),
        Error::AccessDenied(_) => Error::AccessDenied(m),
        Error::Connection { .. } => Error::connection(m),
        Error::Tls(_) => Error::Tls(m),
        Error::Authentication(_) => Error::Authentication(m),
        Error::NeedsAuthorization(_) => Error::NeedsAuthorization(m),
        Error::FolderUnknown(_) => Error::FolderUnknown(m),
        Error::Busy(_) => Error::Busy(m),
        Error::Storage { .. } => Error::storage_msg(m),
    }
}

#[cfg(test)]
mod tests;
