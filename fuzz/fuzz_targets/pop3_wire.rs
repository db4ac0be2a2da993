//! The POP3 reply reader (`pop3::wire`) takes every byte a server sends.
//! Two properties beyond "no panic":
//! - round trip: any body, byte-stuffed as RFC 1939 §3 says and ended by
//!   ".\r\n", reads back as exactly that body, however the server's bytes
//!   are split across reads, through both `read_multiline` and the
//!   streaming `read_multiline_to`;
//! - raw server bytes never panic the status, line, body or listing
//!   parsers, and a body that is read never grows past its cap.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use postfach::fetch::deadline::Budget;
use postfach::pop3::wire::{self, Body, Cap, Wait};
use tokio::io::BufReader;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a runtime")
    })
}

fn wait() -> Wait {
    Wait::new(Duration::from_secs(60), Budget::default())
}

/// RFC 1939 §3 byte-stuffing: a dot at the start of a line (after CRLF
/// only: a bare CR or LF does not end a line) is doubled; the body is
/// closed with CRLF if it does not end with one, then the terminator.
fn stuff(body: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut expected = body.to_vec();
    if !expected.is_empty() && !expected.ends_with(b"\r\n") {
        expected.extend_from_slice(b"\r\n");
    }
    let mut wire = Vec::with_capacity(expected.len() + 8);
    let mut line_start = true;
    for (i, &b) in expected.iter().enumerate() {
        if line_start && b == b'.' {
            wire.push(b'.');
        }
        wire.push(b);
        line_start = b == b'\n' && i > 0 && expected[i - 1] == b'\r';
    }
    wire.extend_from_slice(b".\r\n");
    (wire, expected)
}

/// A reader that hands out `bytes` in reads of at most `chunk` bytes, so
/// that stuffed dots and the terminator land on every read boundary.
fn reader(bytes: &[u8], chunk: usize) -> BufReader<&[u8]> {
    BufReader::with_capacity(chunk.max(1), bytes)
}

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, body)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(chunk % 17) + 1;
    runtime().block_on(async {
        // Round trip.
        let (stuffed, expected) = stuff(body);
        let got = wire::read_multiline(&mut reader(&stuffed, chunk), &wait(), 1 << 20, "fuzz")
            .await
            .expect("a stuffed body reads back");
        assert_eq!(got, expected, "unstuffing is the inverse of stuffing");
        let mut streamed = Vec::new();
        let mut sink = |piece: &[u8]| {
            streamed.extend_from_slice(piece);
            Ok(())
        };
        let whole = wire::read_multiline_to(
            &mut reader(&stuffed, chunk),
            &wait(),
            Cap::mail(1 << 20),
            "fuzz",
            &mut sink,
        )
        .await
        .expect("a stuffed body streams back");
        assert_eq!(whole, Body::Whole(expected.len() as u64));
        assert_eq!(streamed, expected, "streaming reads the same bytes");

        // Raw server bytes.
        let cap = usize::from(chunk) * 64;
        if let Ok(b) = wire::read_multiline(&mut reader(body, chunk), &wait(), cap, "fuzz").await {
            assert!(b.len() <= cap, "a body read never passes its cap");
        }
        let mut r = reader(body, chunk);
        while let Ok(line) = wire::read_line(&mut r, &wait()).await {
            assert!(line.len() <= wire::MAX_LINE + 2);
            let _ = wire::status(&line);
        }
        let _ = wire::parse_listing(body, "UIDL listing", |v| Some(v.to_string()));
        let _ = wire::parse_listing(body, "LIST listing", |v| v.parse::<u64>().ok());
        assert!(wire::server_text(body).chars().count() <= 200);
    });
});
