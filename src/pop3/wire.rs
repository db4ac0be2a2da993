//! Reading POP3 replies from a possibly hostile server: capped status
//! lines, multi-line responses dot-unstuffed in one linear pass, and strict
//! parsing of status lines and UIDL/LIST listings.
//!
//! RFC 1939 §3: a multi-line response is a sequence of lines terminated by
//! CRLF; a line beginning with "." has that dot removed ("byte-stuffing"),
//! and the line ".\r\n" ends the response. Only CRLF ends a line here: a bare
//! CR or bare LF is part of a line and is kept exactly, so the stored bytes
//! are the mail as the author's server sent it (DESIGN.md §4, invariant 3).

use std::time::Duration;

use tokio::io::{AsyncBufRead, AsyncBufReadExt};
use tokio::time::timeout;

use crate::error::{Error, Result};

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

/// Fill the buffer once within the read timeout; Ok(empty) means EOF.
async fn fill<R: AsyncBufRead + Unpin>(r: &mut R, read: Duration) -> Result<&[u8]> {
    match timeout(read, r.fill_buf()).await {
        Ok(Ok(buf)) => Ok(buf),
        Ok(Err(e)) => Err(Error::connection_by(
            format!("POP3 connection broke while reading: {e}"),
            e,
        )),
        Err(_) => Err(Error::connection(format!(
            "POP3 server did not answer within {} s",
            read.as_secs()
        ))),
    }
}

/// Read one status line (without its line ending; CRLF or, leniently, LF).
pub async fn read_line<R: AsyncBufRead + Unpin>(r: &mut R, read: Duration) -> Result<Vec<u8>> {
    let mut line = Vec::new();
    loop {
        let buf = fill(r, read).await?;
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
        r.consume(take);
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
/// Vec, dot-unstuffed, at most `cap` bytes. `what` names the response in
/// errors ("message 3", "the UIDL listing").
pub async fn read_multiline<R: AsyncBufRead + Unpin>(
    r: &mut R,
    read: Duration,
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
    read_multiline_to(r, read, cap, what, &mut keep).await?;
    Ok(all)
}

/// Bytes [`read_multiline_to`] collects before it hands them on.
pub const SINK_PIECE: usize = 256 * 1024;

/// [`read_multiline`] for a big mail: the unstuffed bytes go to `sink` in
/// pieces of about [`SINK_PIECE`] (e.g. into a blob file, see
/// crate::store::blobs), so the mail is never whole in memory. The
/// unstuffing state carries over from piece to piece, so a stuffed dot or
/// the terminator split across reads is handled as in one pass. Returns
/// the total length.
pub async fn read_multiline_to<R: AsyncBufRead + Unpin>(
    r: &mut R,
    read: Duration,
    cap: usize,
    what: &str,
    sink: &mut (dyn FnMut(&[u8]) -> Result<()> + Send),
) -> Result<u64> {
    let mut out = Vec::new();
    let mut total = 0usize;
    let mut state = State::LineStart;
    loop {
        let buf = fill(r, read).await?;
        if buf.is_empty() {
            return Err(closed_in(what));
        }
        let (used, done) = unstuff(buf, &mut state, &mut out);
        r.consume(used);
        if total.saturating_add(out.len()) > cap {
            return Err(too_large(what, cap));
        }
        if done || out.len() >= SINK_PIECE {
            total = total.saturating_add(out.len());
            sink(&out)?;
            out.clear();
        }
        if done {
            return Ok(total as u64);
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
mod tests {
    use super::*;

    fn run_chunks(chunks: &[&[u8]]) -> (Vec<u8>, bool, usize) {
        let mut state = State::LineStart;
        let mut out = Vec::new();
        for (n, c) in chunks.iter().enumerate() {
            let (used, done) = unstuff(c, &mut state, &mut out);
            if done {
                return (out, true, n * 1000 + used);
            }
            assert_eq!(used, c.len());
        }
        (out, false, 0)
    }

    #[test]
    fn unstuffing_in_any_split_gives_the_same_bytes() {
        let wire: &[u8] = b"A\r\n..B\r\n.\rC\n.\r\r\nmid.dot\r\n\r\n\r.x\n..\r\n.\r\n";
        // After a bare LF no line starts, so "\n.." keeps both dots.
        let want: &[u8] = b"A\r\n.B\r\n\rC\n.\r\r\nmid.dot\r\n\r\n\r.x\n..\r\n";
        for split in 0..wire.len() {
            let (out, done, _) = run_chunks(&[&wire[..split], &wire[split..]]);
            assert!(done, "split {split}");
            assert_eq!(out, want, "split {split}");
        }
        // Byte by byte.
        let bytes: Vec<&[u8]> = wire.chunks(1).collect();
        assert_eq!(run_chunks(&bytes).0, want);
    }

    #[test]
    fn terminator_consumes_exactly_its_bytes() {
        let (out, done, used) = run_chunks(&[b"x\r\n.\r\n+OK next"]);
        assert!(done);
        assert_eq!(out, b"x\r\n");
        assert_eq!(used, 6);
    }

    /// A stuffed mail of several sink pieces, read through a tiny buffer:
    /// the pieces join to what the one-pass reader gives, none is much
    /// larger than SINK_PIECE, and the bytes after the terminator stay.
    #[tokio::test]
    async fn streamed_reading_gives_the_same_bytes_in_bounded_pieces() {
        let mut wire = Vec::new();
        let mut want = Vec::new();
        for i in 0..60_000 {
            let line = format!(".{i} line, stuffed when it starts with a dot\r\n");
            wire.extend_from_slice(b".");
            wire.extend_from_slice(line.as_bytes());
            want.extend_from_slice(line.as_bytes());
        }
        wire.extend_from_slice(b".\r\n+OK next\r\n");
        assert!(want.len() > 3 * SINK_PIECE);
        let read = Duration::from_secs(5);
        let mut r = tokio::io::BufReader::with_capacity(1000, wire.as_slice());
        let mut pieces: Vec<usize> = Vec::new();
        let mut got = Vec::new();
        let len = read_multiline_to(&mut r, read, usize::MAX, "m", &mut |p| {
            pieces.push(p.len());
            got.extend_from_slice(p);
            Ok(())
        })
        .await
        .unwrap();
        assert_eq!(len, want.len() as u64);
        assert!(got == want);
        assert!(pieces.len() > 3, "{pieces:?}");
        assert!(pieces.iter().all(|p| *p < SINK_PIECE + 1000), "{pieces:?}");
        assert_eq!(read_line(&mut r, read).await.unwrap(), b"+OK next");
        let mut r = tokio::io::BufReader::with_capacity(1000, wire.as_slice());
        assert!(read_multiline(&mut r, read, usize::MAX, "m").await.unwrap() == want);
        // The cap counts the whole mail, not one piece.
        let mut r = tokio::io::BufReader::with_capacity(1000, wire.as_slice());
        let err = read_multiline_to(&mut r, read, SINK_PIECE * 2, "m", &mut |_| Ok(()))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("larger than the limit"), "{err}");
    }

    #[test]
    fn dot_lf_is_not_a_terminator() {
        // Only ".\r\n" ends; ".\n" is a stuffed line holding a bare LF.
        let (out, done, _) = run_chunks(&[b".\nstill\r\n"]);
        assert!(!done);
        assert_eq!(out, b"\nstill\r\n");
    }
}
