//! The unstuffer in every split, streamed reading in bounded pieces, caps.

use super::*;

fn wait() -> Wait {
    Wait::new(Duration::from_secs(5), Budget::default())
}

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
    let w = wait();
    let mut r = tokio::io::BufReader::with_capacity(1000, wire.as_slice());
    let mut pieces: Vec<usize> = Vec::new();
    let mut got = Vec::new();
    let len = read_multiline_to(&mut r, &w, Cap::strict(usize::MAX), "m", &mut |p| {
        pieces.push(p.len());
        got.extend_from_slice(p);
        Ok(())
    })
    .await
    .unwrap();
    assert_eq!(len, Body::Whole(want.len() as u64));
    assert!(got == want);
    assert!(pieces.len() > 3, "{pieces:?}");
    assert!(pieces.iter().all(|p| *p < SINK_PIECE + 1000), "{pieces:?}");
    assert_eq!(read_line(&mut r, &w).await.unwrap(), b"+OK next");
    let mut r = tokio::io::BufReader::with_capacity(1000, wire.as_slice());
    assert!(read_multiline(&mut r, &w, usize::MAX, "m").await.unwrap() == want);
    // The cap counts the whole mail, not one piece.
    let mut r = tokio::io::BufReader::with_capacity(1000, wire.as_slice());
    let err = read_multiline_to(
        &mut r,
        &w,
        Cap::strict(SINK_PIECE * 2),
        "m",
        &mut |_| Ok(()),
    )
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

/// A mail past `Cap::keep` is read to its end and dropped: the sink saw
/// at most the kept bytes, the length is the whole mail's, and the next
/// reply is read in step. Past `Cap::drain`, it is an error.
#[tokio::test]
async fn a_mail_too_large_is_drained_and_the_session_goes_on() {
    let mut wire = Vec::new();
    for _ in 0..10_000 {
        wire.extend_from_slice(b"..0123456789012345678901234567890123456789\r\n");
    }
    let len = (wire.len() - 10_000) as u64;
    wire.extend_from_slice(b".\r\n+OK next\r\n");
    let w = wait();
    let mut r = tokio::io::BufReader::with_capacity(1000, wire.as_slice());
    let mut seen = 0;
    let got = read_multiline_to(&mut r, &w, Cap::mail(300_000), "m", &mut |p| {
        seen += p.len();
        Ok(())
    })
    .await
    .unwrap();
    assert_eq!(got, Body::TooLarge(len));
    assert!(seen <= 300_000, "{seen}");
    assert_eq!(read_line(&mut r, &w).await.unwrap(), b"+OK next");
    // Every byte read counts as the deadline's work.
    assert!(w.deadline.allowed() > Budget::default().floor);

    let mut r = tokio::io::BufReader::with_capacity(1000, wire.as_slice());
    let err = read_multiline_to(
        &mut r,
        &w,
        Cap::mail(len as usize / 3),
        "m",
        &mut |_| Ok(()),
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string().contains("giving up on the connection"),
        "{err}"
    );
}
