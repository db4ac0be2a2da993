//! A guard in front of async-imap's reader: refuses an IMAP literal
//! announced above a limit before a byte of it is buffered.
//!
//! Why: async-imap (0.12, `imap_stream.rs`) parses each response with
//! imap-proto; on `{n}` CRLF (RFC 3501 §4.3) the parser asks for n more
//! bytes, and the reader grows its buffer to hold them at once
//! (`Buffer::ensure_capacity`, zero-filled, up to 512 MiB). A server that
//! announces `{500000000}` thus costs 500 MB before it sends anything.
//! The guard sits in the read path of [`super::Stream`] and fails the read
//! that would deliver the CRLF of such an announcement, so the reader never
//! sees it. It also caps a whole response (one line, or lines joined by
//! literals: what async-imap holds at once), so an endless line cannot
//! grow the buffer either.
//!
//! Skipping a literal's content matters as much as finding the
//! announcement: a mail may contain `{999999999}` CRLF, and refusing that
//! would let anyone who mails the user stop the account's fetch. So the
//! scanner follows imap-proto's framing where it decides what is a
//! literal: quoted strings (`"`, `\` escapes, never across a line) hide
//! braces; the text of a status response (`OK`, `NO`, `BAD`, `BYE`,
//! `PREAUTH`, and `+` continuations) has no literals, except inside a
//! `[BADCHARSET (…)]` code, the only code whose arguments are strings.
//! Everywhere else `{n}` CRLF is a literal. Where the two could disagree,
//! imap-proto fails to parse and the session ends anyway.

use std::fmt;

/// Bytes a response may hold besides its literals' limit: the rest of a
/// FETCH response around its body (UID, sizes, dates, an ENVELOPE).
pub const RESPONSE_SLACK: u64 = 1024 * 1024;

/// Why the guard refused a read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// A literal announced above the limit.
    Literal { announced: u64, limit: u64 },
    /// A response (lines joined by literals) longer than the limit plus
    /// [`RESPONSE_SLACK`].
    Response { limit: u64 },
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refused::Literal { announced, limit } => write!(
                f,
                "the IMAP server announced {announced} bytes of data (an IMAP literal), more \
                 than the limit of {limit} bytes ([fetch] max_message_size); refused unread"
            ),
            Refused::Response { limit } => write!(
                f,
                "the IMAP server sent a response of more than {} bytes; refused",
                limit.saturating_add(RESPONSE_SLACK)
            ),
        }
    }
}

/// What `{n}` CRLF means where it stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ctx {
    /// Data: a literal.
    Data,
    /// Inside `[BADCHARSET …]`: a literal; `]` at parenthesis depth 0
    /// ends the code, and text follows.
    Code { depth: u32 },
    /// Status text: no literals; only the line end matters.
    Text,
}

/// Where the scanner is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// The first token of a response: a tag, `*` or `+`.
    First,
    /// The second token, collected to see whether it is a status word.
    Word {
        buf: [u8; 8],
        len: u8,
    },
    /// Right after a status word or `+`: a space, then maybe a code.
    AfterStatus {
        spaced: bool,
    },
    /// After `[` of a code: its name.
    CodeName {
        buf: [u8; 10],
        len: u8,
    },
    /// Inside a line, in `ctx`.
    Line,
    Quoted,
    QuotedEscape,
    /// `{` and the digits so far.
    Brace {
        n: u64,
        digits: bool,
    },
    /// `{n}`: CRLF must follow. (A server never sends the `{n+}` of
    /// RFC 7888; imap-proto refuses it.)
    BraceEnd {
        n: u64,
    },
    BraceCr {
        n: u64,
    },
    /// Inside a literal: bytes still to skip.
    Literal {
        left: u64,
    },
    Failed,
}

/// The scanner; feed it every byte read, in order ([`LiteralGuard::scan`]).
#[derive(Debug, Clone)]
pub struct LiteralGuard {
    limit: u64,
    state: State,
    ctx: Ctx,
    /// Bytes of the current response so far.
    response: u64,
    refused: Option<Refused>,
}

const STATUS_WORDS: [&[u8]; 5] = [b"OK", b"NO", b"BAD", b"BYE", b"PREAUTH"];

impl LiteralGuard {
    /// Refuse literals above `limit` bytes.
    pub fn new(limit: u64) -> LiteralGuard {
        LiteralGuard {
            limit,
            state: State::First,
            ctx: Ctx::Data,
            response: 0,
            refused: None,
        }
    }

    /// Why the guard refused, once it has (it stays refused).
    pub fn refused(&self) -> Option<&Refused> {
        self.refused.as_ref()
    }

    /// Follow `bytes`, the next bytes the server sent; Err when they
    /// announce a literal above the limit or make a response too long.
    pub fn scan(&mut self, bytes: &[u8]) -> Result<(), Refused> {
        if let Some(r) = &self.refused {
            return Err(r.clone());
        }
        let mut i = 0;
        while i < bytes.len() {
            if let State::Literal { left } = self.state {
                let take = left.min((bytes.len() - i) as u64);
                i += take as usize;
                self.grow(take)?;
                self.state = match left - take {
                    0 => State::Line,
                    left => State::Literal { left },
                };
                continue;
            }
            if self.state == State::Line && self.ctx == Ctx::Text {
                // Status text: straight to the line end.
                let run = bytes[i..].iter().position(|&b| b == b'\n');
                let take = run.map_or(bytes.len() - i, |p| p + 1);
                self.grow(take as u64)?;
                i += take;
                if run.is_some() {
                    self.end_response();
                }
                continue;
            }
            self.grow(1)?;
            self.byte(bytes[i])?;
            i += 1;
        }
        Ok(())
    }

    fn grow(&mut self, n: u64) -> Result<(), Refused> {
        self.response = self.response.saturating_add(n);
        if self.response > self.limit.saturating_add(RESPONSE_SLACK) {
            return self.refuse(Refused::Response { limit: self.limit });
        }
        Ok(())
    }

    fn refuse(&mut self, r: Refused) -> Result<(), Refused> {
        self.state = State::Failed;
        self.refused = Some(r.clone());
        Err(r)
    }

    fn end_response(&mut self) {
        self.state = State::First;
        self.ctx = Ctx::Data;
        self.response = 0;
    }

    /// One byte outside a literal and outside status text.
    fn byte(&mut self, b: u8) -> Result<(), Refused> {
        if b == b'\n' && !matches!(self.state, State::BraceCr { .. }) {
            // No response element spans a bare line end: resynchronise
            // (imap-proto refuses what would be inside one anyway).
            self.end_response();
            return Ok(());
        }
        match self.state {
            State::First if b == b'+' => self.state = State::AfterStatus { spaced: false },
            State::First if b == b' ' => {
                self.state = State::Word {
                    buf: [0; 8],
                    len: 0,
                }
            }
            State::First => {}
            State::Word { mut buf, len } if b.is_ascii_alphabetic() => {
                if let Some(slot) = buf.get_mut(usize::from(len)) {
                    *slot = b.to_ascii_uppercase();
                    self.state = State::Word { buf, len: len + 1 };
                } else {
                    self.state = State::Line;
                }
            }
            State::Word { buf, len } => {
                let word = &buf[..usize::from(len)];
                if STATUS_WORDS.contains(&word) {
                    self.state = State::AfterStatus { spaced: false };
                } else {
                    self.state = State::Line;
                }
                return self.byte(b);
            }
            State::AfterStatus { spaced: false } if b == b' ' => {
                self.state = State::AfterStatus { spaced: true }
            }
            State::AfterStatus { .. } if b == b'[' => {
                self.state = State::CodeName {
                    buf: [0; 10],
                    len: 0,
                }
            }
            State::AfterStatus { .. } => {
                self.ctx = Ctx::Text;
                self.state = State::Line;
            }
            State::CodeName { mut buf, len } if b.is_ascii_alphabetic() => {
                match buf.get_mut(usize::from(len)) {
                    Some(slot) => {
                        *slot = b.to_ascii_uppercase();
                        self.state = State::CodeName { buf, len: len + 1 };
                    }
                    None => self.enter_text(),
                }
            }
            State::CodeName { buf, len } => {
                if &buf[..usize::from(len)] == b"BADCHARSET" {
                    self.ctx = Ctx::Code { depth: 0 };
                    self.state = State::Line;
                    return self.byte(b);
                }
                self.enter_text();
            }
            State::Line => self.line_byte(b),
            State::Quoted => match b {
                b'"' => self.state = State::Line,
                b'\\' => self.state = State::QuotedEscape,
                b'\r' => self.state = State::Line,
                _ => {}
            },
            State::QuotedEscape => self.state = State::Quoted,
            State::Brace { n, digits } => match b {
                b'0'..=b'9' => {
                    let n = n.saturating_mul(10).saturating_add(u64::from(b - b'0'));
                    self.state = State::Brace { n, digits: true };
                }
                b'}' if digits => self.state = State::BraceEnd { n },
                _ => {
                    self.state = State::Line;
                    return self.byte(b);
                }
            },
            State::BraceEnd { n } => {
                self.state = State::Line;
                if b == b'\r' {
                    self.state = State::BraceCr { n };
                } else {
                    return self.byte(b);
                }
            }
            State::BraceCr { n } => {
                self.state = State::Line;
                if b != b'\n' {
                    return self.byte(b);
                }
                return self.literal(n);
            }
            State::Literal { .. } | State::Failed => {}
        }
        Ok(())
    }

    /// A code other than BADCHARSET: the rest of the line is text.
    fn enter_text(&mut self) {
        self.ctx = Ctx::Text;
        self.state = State::Line;
    }

    fn line_byte(&mut self, b: u8) {
        if self.ctx == Ctx::Text {
            return;
        }
        match (b, self.ctx) {
            (b'"', _) => self.state = State::Quoted,
            (b'{', _) => {
                self.state = State::Brace {
                    n: 0,
                    digits: false,
                }
            }
            (b'(', Ctx::Code { depth }) => {
                self.ctx = Ctx::Code {
                    depth: depth.saturating_add(1),
                }
            }
            (b')', Ctx::Code { depth }) => {
                self.ctx = Ctx::Code {
                    depth: depth.saturating_sub(1),
                }
            }
            (b']', Ctx::Code { depth: 0 }) => self.ctx = Ctx::Text,
            _ => {}
        }
    }

    /// `{n}` CRLF seen where a literal may stand.
    fn literal(&mut self, n: u64) -> Result<(), Refused> {
        if n > self.limit {
            return self.refuse(Refused::Literal {
                announced: n,
                limit: self.limit,
            });
        }
        if self.response.saturating_add(n) > self.limit.saturating_add(RESPONSE_SLACK) {
            return self.refuse(Refused::Response { limit: self.limit });
        }
        if n > 0 {
            self.state = State::Literal { left: n };
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
