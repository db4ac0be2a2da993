//! Reading POP3 replies from a possibly hostile server: capped status
//! lines, multi-line responses dot-unstuffed in one linear pass, and strict
//! parsing of status lines and UIDL/LIST listings.
//!
//! RFC 1939 §3: a multi-line response is a sequence of lines terminated by
//! CRLF; a line beginning with "." has that dot removed ("byte-stuffing"),
//! and the line ".\r\n" ends the response. Only CRLF ends a line here: a bare
//! CR or bare LF is part of a line and is kept exactly, so the stored bytes
//! are the mail as the author's server sent it (ARCHITECTURE.md "Invariants", 3).

use std::time::Duration;

use tokio::io::{AsyncBufRead, AsyncBufReadExt};

use crate::error::{Error, Result};
use crate::fetch::deadline::{Budget, Deadline, Expired};

/// Longest status line we accept (RFC 2449 §4 caps responses at 512 octets;
/// real servers add long texts, a hostile one can send gigabytes).
pub const MAX_LINE: usize = 8 * 1024;

/// Where the unstuffer is within the current line.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    /// At the first byte of a line.
    LineStart,
    /// A line began with "."; the next byte decides: CR may be the terminator.
    Dot,
    /// ".\r" at the start of a line; LF ends the response.
    DotCr,
    /// Inside a line.
    Mid,
    /// Inside a line, right after a CR.
    MidCr,
}

/// How long the session may wait: the read timeout for each read or
/// write, the session's deadline (crate::fetch::deadline) for all of them.
/// Every byte read and every command sent count as the deadline's work.
#[derive(Debug, Clone)]
pub struct Wait {
    pub read: Duration,
    pub deadline: Deadline,
}

impl Wait {
    /// A session starting now.
    pub fn new(read: Duration, budget: Budget) -> Wait {
        Wait {
            read,
            deadline: Deadline::start(budget),
        }
    }

    /// Runs one read or write of the session under both limits; `doing`
    /// says which for the read timeout's message.
    pub async fn run<T>(
        &self,
        doing: &str,
        fut: impl std::future::Future<Output = std::io::Result<T>>,
    ) -> Result<T> {
        match self.deadline.race(self.read, fut).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(Error::connection_by(
                format!("POP3 connection broke while {doing}: {e}"),
                e,
            )),
            Err(Expired::Idle) => Err(Error::connection(format!(
                "POP3 server did not {} within {} s",
                if doing == "reading" {
                    "answer"
                } else {
                    "accept data"
                },
                self.read.as_secs()
            ))),
            Err(Expired::Deadline) => Err(self.deadline.error("POP3 server")),
        }
    }
}

/// Fill the buffer once within the limits of `w`; Ok(empty) means EOF.
async fn fill<'a, R: AsyncBufRead + Unpin>(r: &'a mut R, w: &Wait) -> Result<&'a [u8]> {
    w.run("reading", r.fill_buf()).await
}

/// Mark `n` buffered bytes as read; they count as the deadline's work.
fn consume<R: AsyncBufRead + Unpin>(r: &mut R, w: &Wait, n: usize) {
    r.consume(n);
    w.deadline.arrived(n as u64);
}

/// Read one status line (without its line ending; CRLF or, leniently, LF).
pub async fn read_line<R: AsyncBufRead + Unpin>(r: &mut R, w: &Wait) -> Result<Vec<u8>> {
    let mut line = Vec::new();
    loop {
        let buf = fill(r, w).await?;
        if buf.is_empty() {
            return Err(Error::connection(
                "POP3 server closed the connection".into(),
            ));
        }
        let (take, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        if line.len() + take > MAX_LINE + 2 {
            return Err(Error::connection(format!(
                "POP3 server sent a reply line longer than {} KiB",
                MAX_LINE / 1024
            )));
        }
        line.extend_from_slice(&buf[..take]);
        consume(r, w, take);
        if done {
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            return Ok(line);
        }
    }
}

/// Read the body of a multi-line response (after its "+OK" line) into a new
/// Vec, dot-unstuffed, at most `cap` bytes (more is an error). `what` names
/// the response in errors ("message 3", "the UIDL listing").
pub async fn read_multiline<R: AsyncBufRead + Unpin>(
    r: &mut R,
    w: &Wait,
    cap: usize,
    what: &str,
) -> Result<Vec<u8>> {
    // One reader for both: a reply under SINK_PIECE (every ordinary mail,
    // every listing) reaches the sink once, so this costs one copy of it.
    let mut all = Vec::new();
    let mut keep = |piece: &[u8]| {
        all.extend_from_slice(piece);
        Ok(())
    };
    match read_multiline_to(r, w, Cap::strict(cap), what, &mut keep).await? {
        Body::Whole(_) => Ok(all),
        Body::TooLarge(_) => Err(too_large(what, cap)),
    }
}

/// Bytes [`read_multiline_to`] collects before it hands them on.
pub const SINK_PIECE: usize = 256 * 1024;

/// How much of a multi-line response [`read_multiline_to`] takes.
#[derive(Debug, Clone, Copy)]
pub struct Cap {
    /// Bytes handed to the sink at most.
    pub keep: usize,
    /// Bytes read at most: between `keep` and this, the rest of a
    /// response that is too large is read and dropped, so that the
    /// session can go on; past it, the response is an error.
    pub drain: usize,
}

impl Cap {
    /// Too large is an error at once (listings).
    pub fn strict(cap: usize) -> Cap {
        Cap {
            keep: cap,
            drain: cap,
        }
    }

    /// A mail: one too large is read to its end and dropped, up to the
    /// limit once more; a server that sends more than that has lost the
    /// session's trust (and the reader never sees an end).
    pub fn mail(cap: usize) -> Cap {
        Cap {
            keep: cap,
            drain: cap.saturating_mul(2),
        }
    }
}

/// What [`read_multiline_to`] read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    /// The whole response went to the sink: its length.
    Whole(u64),
    /// The response was longer than `Cap::keep` and was dropped after
    /// the first pieces: its whole length.
    TooLarge(u64),
}

/// [`read_multiline`] for a big mail: the unstuffed bytes go to `sink` in
/// pieces of about [`SINK_PIECE`] (e.g. into a blob file, see
/// crate::store::blobs), so the mail is never whole in memory. The
/// unstuffing state carries over from piece to piece, so a stuffed dot or
/// the terminator split across reads is handled as in one pass.
pub async fn read_multiline_to<R: AsyncBufRead + Unpin>(
    r: &mut R,
    w: &Wait,
    cap: Cap,
    what: &str,
    sink: &mut (dyn FnMut(&[u8]) -> Result<()> + Send),
) -> Result<Body> {
    let mut out = Vec::new();
    let mut total = 0usize;
    let mut state = State::LineStart;
    let mut dropping = false;
    loop {
        let buf = fill(r, w).await?;
        if buf.is_empty() {
            return Err(closed_in(what));
        }
        let (used, done) = unstuff(buf, &mut state, &mut out);
        consume(r, w, used);
        if !dropping && total.saturating_add(out.len()) > cap.keep {
            if cap.drain <= cap.keep {
                return Err(too_large(what, cap.keep));
            }
            dropping = true;
        }
        if dropping {
            total = total.saturating_add(out.len());
            out.clear();
            if total > cap.drain {
                return Err(Error::connection(format!(
                    "{what} went on past {} bytes; giving up on the connection",
                    cap.drain
                )));
            }
            if done {
                return Ok(Body::TooLarge(total as u64));
            }
            continue;
        }
        if done || out.len() >= SINK_PIECE {
            total = total.saturating_add(out.len());
            sink(&out)?;
            out.clear();
        }
        if done {
            return Ok(Body::Whole(total as u64));
        }
    }
}

fn closed_in(what: &str) -> Error {
    Error::connection(format!(
        "POP3 server closed the connection in the middle of {what}"
    ))
}

fn too_large(what: &str, cap: usize) -> Error {
    Error::connection(format!(
        "{what} is larger than the limit of {} MB",
        cap / 1_000_000
    ))
}

/// Run the state machine over `input`, appending kept bytes to `out`.
/// Returns (bytes consumed, response ended). Bytes inside a line are copied
/// in runs up to the next CR, so the cost is linear and mostly memcpy.
fn unstuff(input: &[u8], state: &mut State, out: &mut Vec<u8>) -> (usize, bool) {
    let mut i = 0;
    while i < input.len() {
        let b = input[i];
        match *state {
            State::Mid => {
                let run = input[i..]
                    .iter()
                    .position(|&c| c == b'\r')
                    .unwrap_or(input.len() - i);
                out.extend_from_slice(&input[i..i + run]);
                i += run;
                if i < input.len() {
                    out.push(b'\r');
                    i += 1;
                    *state = State::MidCr;
                }
                continue;
            }
            State::MidCr => {
                out.push(b);
                *state = match b {
                    b'\n' => State::LineStart,
                    b'\r' => State::MidCr,
                    _ => State::Mid,
                };
            }
            State::LineStart => {
                if b == b'.' {
                    *state = State::Dot;
                } else {
                    out.push(b);
                    *state = if b == b'\r' { State::MidCr } else { State::Mid };
                }
            }
            State::Dot => {
                // The stuffed dot is dropped whatever follows.
                if b == b'\r' {
                    *state = State::DotCr;
                } else {
                    out.push(b);
                    *state = State::Mid;
                }
            }
            State::DotCr => {
                if b == b'\n' {
                    return (i + 1, true);
                }
                // ".\r" + something else: a stuffed line that begins with CR.
                out.push(b'\r');
                out.push(b);
                *state = if b == b'\r' { State::MidCr } else { State::Mid };
            }
        }
        i += 1;
    }
    (i, false)
}

/// Server text made safe for an error message: lossy UTF-8, no control
/// characters, at most 200 characters.
pub fn server_text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .take(200)
        .collect()
}

/// A status line: Ok(text after "+OK") or Err(text after "-ERR"); anything
/// else is a protocol error.
pub fn status(line: &[u8]) -> Result<std::result::Result<String, String>> {
    let rest = |n: usize| server_text(line[n..].strip_prefix(b" ").unwrap_or(&line[n..]));
    if line.starts_with(b"+OK") {
        Ok(Ok(rest(3)))
    } else if line.starts_with(b"-ERR") {
        Ok(Err(rest(4)))
    } else {
        Err(Error::connection(format!(
            "POP3 server sent {:?} where +OK or -ERR belongs",
            server_text(line)
        )))
    }
}

/// Parse "n value" lines; garbage is a protocol error, not a skipped line
/// (a misread listing could make us delete the wrong message).
pub fn parse_listing<T>(
    body: &[u8],
    what: &str,
    value: impl Fn(&str) -> Option<T>,
) -> Result<Vec<(u32, T)>> {
    let mut out = Vec::new();
    for line in body.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        let text = std::str::from_utf8(line).ok();
        let parsed = text.and_then(|t| {
            let (n, v) = t.trim().split_once(' ')?;
            Some((n.parse::<u32>().ok().filter(|n| *n > 0)?, value(v.trim())?))
        });
        match parsed {
            Some(entry) => out.push(entry),
            None => {
                return Err(Error::connection(format!(
                    "POP3 server sent a malformed {what} line: {:?}",
                    server_text(line)
                )))
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
