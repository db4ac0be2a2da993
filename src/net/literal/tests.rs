//! The literal guard against split reads, literals spanning reads,
//! quoted strings, status text and the tricks a hostile server could use
//! to make the scanner skip an announcement.

use super::*;

const LIMIT: u64 = 1000;

/// Feeds `input` byte by byte; the index of the byte that was refused.
fn refused_at(input: &[u8]) -> Option<(usize, Refused)> {
    let mut g = LiteralGuard::new(LIMIT);
    for (i, b) in input.iter().enumerate() {
        if let Err(r) = g.scan(std::slice::from_ref(b)) {
            return Some((i, r));
        }
    }
    None
}

/// The same verdict whatever the reads look like: one read, every split
/// into two, and byte by byte.
fn verdict(input: &[u8]) -> Result<(), Refused> {
    let whole = LiteralGuard::new(LIMIT).scan(input);
    for split in 0..=input.len() {
        let mut g = LiteralGuard::new(LIMIT);
        let r = g
            .scan(&input[..split])
            .and_then(|()| g.scan(&input[split..]));
        assert_eq!(r, whole, "split at {split}");
    }
    let bytes = refused_at(input).map(|(_, r)| r);
    assert_eq!(bytes, whole.clone().err(), "byte by byte");
    whole
}

fn big(n: u64) -> Refused {
    Refused::Literal {
        announced: n,
        limit: LIMIT,
    }
}

const HUGE: &[u8] = b"* 2 FETCH (UID 9 BODY[] {500000000}\r\n";

fn then_huge(first: &[u8]) -> Vec<u8> {
    let mut v = first.to_vec();
    v.extend_from_slice(HUGE);
    v
}

#[test]
fn an_ordinary_fetch_passes_whatever_its_literal_holds() {
    // The mail holds what would be refused outside a literal.
    let mail = b"Subject: {999999999}\r\n\r\n\"quoted {5}\r\n\\ * 3 FETCH {9999}\r\n";
    let mut wire = format!(
        "* 1 FETCH (UID 7 RFC822.SIZE {} BODY[] {{{}}}\r\n",
        mail.len(),
        mail.len()
    )
    .into_bytes();
    wire.extend_from_slice(mail);
    wire.extend_from_slice(b")\r\nA3 OK UID FETCH completed\r\n");
    assert_eq!(verdict(&wire), Ok(()));
    // And the scanner is back in step: the next response is judged.
    wire.extend_from_slice(HUGE);
    assert_eq!(verdict(&wire), Err(big(500_000_000)));
}

#[test]
fn a_huge_literal_is_refused_at_the_line_end_of_its_announcement() {
    let (at, r) = refused_at(HUGE).unwrap();
    assert_eq!(at, HUGE.len() - 1, "refused before the CRLF was complete");
    assert_eq!(r, big(500_000_000));
    assert_eq!(verdict(HUGE), Err(big(500_000_000)));
    // Digits beyond u64 saturate; they are refused all the same.
    let overflow = b"* 2 FETCH (BODY[] {99999999999999999999999999}\r\n";
    assert_eq!(verdict(overflow), Err(big(u64::MAX)));
    // literal8 (RFC 3516) has the same framing.
    assert_eq!(verdict(b"* 2 FETCH (BINARY[] ~{5000}\r\n"), Err(big(5000)));
}

#[test]
fn a_literal_at_the_limit_passes() {
    let mut wire = b"* 1 FETCH (BODY[] {1000}\r\n".to_vec();
    wire.extend_from_slice(&[b'x'; 1000]);
    wire.extend_from_slice(b")\r\n");
    assert_eq!(verdict(&wire), Ok(()));
}

#[test]
fn braces_inside_quoted_strings_are_not_literals() {
    // Escaped quotes do not end the string; the brace inside is text.
    let wire = then_huge(b"* 1 FETCH (ENVELOPE (\"a \\\"{2000}\" NIL) BODY[] {3}\r\n\"{}\r\n");
    assert_eq!(verdict(&wire), Err(big(500_000_000)));
    // An unterminated quote ends with its line, and the next line is
    // scanned afresh.
    let wire = then_huge(b"* 1 FETCH (X \"{2000}\r\n");
    assert_eq!(verdict(&wire), Err(big(500_000_000)));
    assert_eq!(verdict(b"* 1 FETCH (X \"{2000}\r\n"), Ok(()));
}

#[test]
fn status_text_has_no_literals_so_it_cannot_hide_an_announcement() {
    // imap-proto reads "{37}" as text here; a scanner that skipped 37
    // bytes after it would miss the announcement on the next line.
    for first in [
        &b"* OK still here {37}\r\n"[..],
        b"* BYE {37}\r\n",
        b"A7 NO [ALERT] {37}\r\n",
        b"A7 ok {37}\r\n",
        b"+ idling {37}\r\n",
        b"+{37}\r\n",
        b"* OK [XUNKNOWN {37}\r\n",
        b"* PREAUTH [CAPABILITY IMAP4rev1] {37}\r\n",
    ] {
        assert_eq!(
            verdict(&then_huge(first)),
            Err(big(500_000_000)),
            "{:?}",
            String::from_utf8_lossy(first)
        );
    }
    // A huge number in status text is only text.
    assert_eq!(verdict(b"* OK [ALERT] {2000000000}\r\n"), Ok(()));
}

#[test]
fn a_badcharset_code_may_hold_literals() {
    // imap-proto reads astrings here, so this "{5}" is a literal, and the
    // "]" inside the parentheses does not end the code.
    let wire = then_huge(b"* NO [BADCHARSET (a]b {5}\r\nx)]\"{ \"x\")] text {9}\r\n");
    assert_eq!(verdict(&wire), Err(big(500_000_000)));
    assert_eq!(
        verdict(b"A1 NO [BADCHARSET ({2000000000}\r\n"),
        Err(big(2_000_000_000))
    );
    assert_eq!(
        verdict(b"A1 NO [BADCHARSET] no such charset {20000}\r\n"),
        Ok(())
    );
}

#[test]
fn an_endless_line_is_refused() {
    let mut g = LiteralGuard::new(LIMIT);
    let line = vec![b'a'; 4096];
    let mut r = Ok(());
    for _ in 0..(RESPONSE_SLACK / 4096 + 2) {
        r = g.scan(&line);
        if r.is_err() {
            break;
        }
    }
    assert_eq!(r, Err(Refused::Response { limit: LIMIT }));
    // Literals count towards their response.
    let mut g = LiteralGuard::new(LIMIT);
    let mut wire = Vec::new();
    for _ in 0..(RESPONSE_SLACK / 1000 + 2) {
        wire.extend_from_slice(b" {1000}\r\n");
        wire.extend_from_slice(&[b'x'; 1000]);
    }
    assert_eq!(
        g.scan(&then_huge(&wire)[..]),
        Err(Refused::Response { limit: LIMIT })
    );
}

#[test]
fn a_refusal_is_final_and_says_what_and_which_key() {
    let mut g = LiteralGuard::new(LIMIT);
    assert!(g.scan(HUGE).is_err());
    assert_eq!(g.scan(b"* OK fine\r\n"), Err(big(500_000_000)));
    assert_eq!(g.refused(), Some(&big(500_000_000)));
    let text = big(500_000_000).to_string();
    assert!(text.contains("500000000 bytes"), "{text}");
    assert!(text.contains("[fetch] max_message_size"), "{text}");
}

#[test]
fn not_quite_announcements_are_ignored() {
    for line in [
        &b"* 1 FETCH (X {12a}\r\n"[..],
        b"* 1 FETCH (X {}\r\n",
        b"* 1 FETCH (X {2000} \r\n",
        b"* 1 FETCH (X {2000}\rx\n",
        b"* 1 FETCH (X {2000+}\r\n",
        b"{2000}\r\n",
    ] {
        assert_eq!(verdict(line), Ok(()), "{:?}", String::from_utf8_lossy(line));
    }
}
