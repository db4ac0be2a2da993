//! Hostile and broken mail must give a summary, never a panic.

use super::*;

const RECEIVED: i64 = 1_700_000_000;

fn sum(raw: &[u8]) -> Summary {
    summarize(raw, RECEIVED)
}

#[test]
fn well_formed_mail() {
    let s = sum(b"From: \"Erika Muster\" <erika@example.org>\r\n\
To: a@example.org, Bob <b@example.org>\r\n\
Cc: c@example.org\r\n\
Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\r\n\
Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n\
Message-ID: <abc@example.org>\r\n\
\r\n\
Hallo\r\n");
    assert_eq!(s.from, "Erika Muster <erika@example.org>");
    assert_eq!(s.to, ["a@example.org", "Bob <b@example.org>"]);
    assert_eq!(s.cc, ["c@example.org"]);
    assert_eq!(s.subject, "Grüße");
    assert_eq!(s.date, Some(1_700_000_000));
    assert_eq!(s.message_id, "abc@example.org");
    assert!(!s.has_attachments);
}

#[test]
fn date_with_zone_is_utc() {
    let s = sum(b"From: a@x\r\nDate: Wed, 15 Nov 2023 00:13:20 +0200\r\n\r\nx");
    assert_eq!(s.date, Some(1_700_000_000));
}

#[test]
fn empty_bytes() {
    let s = sum(b"");
    assert_eq!(s.subject, "");
    assert_eq!(s.from, "");
    assert_eq!(s.date, Some(RECEIVED));
}

#[test]
fn only_headers_no_body() {
    let s = sum(b"From: a@example.org\r\nSubject: hi\r\n");
    assert_eq!(s.from, "a@example.org");
    assert_eq!(s.subject, "hi");
    assert_eq!(s.date, Some(RECEIVED));
}

#[test]
fn missing_or_bad_date_falls_back_to_received() {
    assert_eq!(sum(b"From: a@x\r\n\r\nbody").date, Some(RECEIVED));
    assert_eq!(
        sum(b"From: a@x\r\nDate: yesterday-ish\r\n\r\nbody").date,
        Some(RECEIVED)
    );
    assert_eq!(
        sum(b"From: a@x\r\nDate: Mon, 45 Foo 99999 99:99:99 +9999\r\n\r\nb").date,
        Some(RECEIVED)
    );
}

#[test]
fn sender_from_return_path_when_from_missing() {
    let s = sum(b"Return-Path: <bounce@example.org>\r\nSubject: x\r\n\r\nb");
    assert_eq!(s.from, "bounce@example.org");
    let s = sum(b"Sender: Real <real@example.org>\r\nReturn-Path: <r@x>\r\n\r\nb");
    assert_eq!(s.from, "Real <real@example.org>");
    let s = sum(b"Return-Path: <>\r\nSubject: bounce\r\n\r\nb");
    assert_eq!(s.from, "");
}

#[test]
fn eight_bit_garbage_headers() {
    let mut raw = b"From: \xff\xfe M\xfcller <m@example.org>\r\nSubject: Gr\xfc\xdfe \x80\x81\r\nTo: \xc3\x28@\xa0\xa1\r\n\r\nbody \xff\r\n".to_vec();
    raw.extend(std::iter::repeat_n(0xffu8, 5000));
    let s = sum(&raw);
    assert!(s.from.contains("m@example.org"), "{}", s.from);
    assert!(s.subject.starts_with("Gr"), "{}", s.subject);
}

#[test]
fn broken_encoded_words() {
    for subject in [
        &b"=?UTF-8?B?####?="[..],
        b"=?UTF-8?Q?unterminated",
        b"=?bogus-charset?Q?abc?=",
        b"=?UTF-8?X?abc?=",
        b"=?=?=?=?",
        b"=?UTF-8?B?/w==?=",
    ] {
        let mut raw = b"From: a@x\r\nSubject: ".to_vec();
        raw.extend_from_slice(subject);
        raw.extend_from_slice(b"\r\n\r\nbody");
        let s = sum(&raw);
        assert!(!s.subject.contains('\0'));
        assert_eq!(s.from, "a@x");
    }
}

#[test]
fn nul_and_control_bytes_are_cleaned() {
    let s = sum(b"From: a\0b@x\r\nSubject: one\0two\x07three\r\n\tfolded\r\nMessage-ID: <i\0d@x>\r\n\r\n\0\0\0");
    assert!(
        !s.subject.contains('\0') && !s.subject.contains('\x07'),
        "{:?}",
        s.subject
    );
    assert!(
        s.subject.contains("folded") && !s.subject.contains('\n'),
        "{:?}",
        s.subject
    );
    assert!(!s.from.contains('\0'));
    assert!(!s.message_id.contains('\0'));
    // Nothing but NULs.
    let s = sum(&[0u8; 4096]);
    assert_eq!(s.subject, "");
}

#[test]
fn huge_header_values_are_capped() {
    let mut raw = b"From: a@x\r\nSubject: ".to_vec();
    raw.extend(std::iter::repeat_n(b'A', 1_000_000));
    raw.extend_from_slice(b"\r\nTo: ");
    for i in 0..5000 {
        raw.extend_from_slice(format!("u{i}@example.org, ").as_bytes());
    }
    raw.extend_from_slice(b"\r\n\r\nb");
    let s = sum(&raw);
    assert_eq!(s.subject.chars().count(), MAX_SUBJECT);
    assert_eq!(s.to.len(), MAX_RECIPIENTS);
}

fn nested_multipart(depth: usize) -> Vec<u8> {
    let mut raw = b"From: deep@example.org\r\nSubject: deep\r\nMIME-Version: 1.0\r\n".to_vec();
    for i in 0..depth {
        raw.extend_from_slice(
            format!("Content-Type: multipart/mixed; boundary=\"b{i}\"\r\n\r\n--b{i}\r\n")
                .as_bytes(),
        );
    }
    raw.extend_from_slice(
        b"Content-Type: application/pdf; name=\"x.pdf\"\r\nContent-Disposition: attachment; filename=\"x.pdf\"\r\n\r\nPDF\r\n",
    );
    for i in (0..depth).rev() {
        raw.extend_from_slice(format!("--b{i}--\r\n").as_bytes());
    }
    raw
}

#[test]
fn deep_multipart_nesting_200() {
    let s = sum(&nested_multipart(200));
    assert_eq!(s.from, "deep@example.org");
    assert_eq!(s.subject, "deep");
}

/// Deeper than any real mail, on a thread with the 2 MiB stack a tokio
/// worker has: a stack overflow would abort the daemon, catch_unwind
/// cannot stop that.
#[test]
fn very_deep_nesting_on_a_worker_sized_stack() {
    let done = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(|| {
            let s = sum(&nested_multipart(5000));
            let mut rfc822 = Vec::new();
            for _ in 0..2000 {
                rfc822.extend_from_slice(b"From: n@x\r\nContent-Type: message/rfc822\r\n\r\n");
            }
            rfc822.extend_from_slice(b"Subject: inner\r\n\r\nbody");
            let r = sum(&rfc822);
            let v = view(&rfc822);
            (s.from, r.from, v.text.len())
        })
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(done.0, "deep@example.org");
    assert_eq!(done.1, "n@x");
}

#[test]
fn attachments_but_not_inline_logos() {
    let base = "From: a@x\r\nContent-Type: multipart/related; boundary=\"B\"\r\n\r\n\
--B\r\nContent-Type: text/html\r\n\r\n<img src=\"cid:logo\">\r\n";
    let logo = format!(
        "{base}--B\r\nContent-Type: image/png\r\nContent-Disposition: inline\r\nContent-ID: <logo>\r\n\
Content-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n--B--\r\n"
    );
    assert!(!sum(logo.as_bytes()).has_attachments);
    let file = format!(
        "{base}--B\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"Rechnung.pdf\"\r\n\
Content-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n--B--\r\n"
    );
    assert!(sum(file.as_bytes()).has_attachments);
    let v = view(file.as_bytes());
    assert_eq!(
        v.attachments,
        [("Rechnung.pdf".to_string(), "application/pdf".to_string(), 5)]
    );
    assert!(v.html.contains("cid:logo"), "{v:?}");
}

#[test]
fn address_forms() {
    let s = sum(
        b"From: \"a@x\" <a@x>\r\nTo: undisclosed-recipients:;\r\nCc: Team: x@y, Z <z@y>;\r\n\r\nb",
    );
    assert_eq!(s.from, "a@x");
    assert!(s.to.is_empty(), "{:?}", s.to);
    assert_eq!(s.cc, ["x@y", "Z <z@y>"]);
}

#[test]
fn view_of_text_and_broken_mail() {
    let v = view(b"From: a@x\r\nMessage-ID: <m@x>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHallo Welt\r\n");
    assert_eq!(v.text.trim(), "Hallo Welt");
    assert_eq!(v.html, "");
    assert_eq!(v.message_id, "m@x");
    assert_eq!(view(b""), View::default());
    let _ = view(&[0xffu8; 1000]);
    let _ = view(&nested_multipart(200));
}

#[test]
fn view_cuts_huge_bodies_and_attachment_lists_and_says_so() {
    // "ä" is two bytes: the cut must land on a character boundary.
    let body = format!("x{}", "ä".repeat(MAX_BODY));
    let v = view(format!("Subject: big\r\n\r\n{body}").as_bytes());
    assert!(v.truncated);
    assert!(v.text.len() <= MAX_BODY && v.text.len() > MAX_BODY - 4);
    assert!(v.text.starts_with("xää"));
    let mut many = String::from("Content-Type: multipart/mixed; boundary=p\r\n\r\n");
    for i in 0..MAX_ATTACHMENTS + 5 {
        many.push_str(&format!(
            "--p\r\nContent-Type: application/pdf; name=a{i}.pdf\r\n\r\nx\r\n"
        ));
    }
    many.push_str("--p--\r\n");
    let v = view(many.as_bytes());
    assert_eq!(v.attachments.len(), MAX_ATTACHMENTS);
    assert!(v.truncated);
    let small = view(b"Subject: s\r\n\r\nshort\r\n");
    assert!(!small.truncated);
}

/// The header-only path of `summarize` must give exactly what a parse of
/// the whole mail gives, for every single-part form near its boundary:
/// text parts it takes, and look-alikes (attachment disposition, other
/// text types, odd case, multipart) it must leave to the full parse.
#[test]
fn header_only_summary_equals_the_full_parse() {
    let full = |raw: &[u8]| {
        MessageParser::default()
            .parse(raw)
            .map(|m| summary_of(&m, RECEIVED))
            .unwrap_or_else(|| fallback(RECEIVED))
    };
    let head = "From: Anna <a@x>\r\nTo: b@y, c@z\r\nSubject: Hallo\r\n\
Date: Tue, 1 Oct 2024 10:00:00 +0200\r\nMessage-ID: <m1@x>\r\n";
    let cases = [
        "",
        "Content-Type: text/plain; charset=utf-8\r\n",
        "Content-Type: text/html\r\n",
        "Content-Type: TEXT/PLAIN\r\n",
        "Content-Type: text/calendar\r\n",
        "Content-Type: application/pdf\r\n",
        "Content-Type: text/plain\r\nContent-Disposition: attachment; filename=a.txt\r\n",
        "Content-Disposition: attachment\r\n",
        "Content-Disposition: inline\r\n",
        "Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n",
        "Content-Type: multipart/mixed; boundary=\"B\"\r\n",
        "Content-Type: multipart/mixed\r\n",
        "Content-Type: message/rfc822\r\n",
        "Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n",
        "Content-Type: image/png\r\nContent-Disposition: inline\r\nContent-ID: <logo>\r\n",
        "Content-Type: image/png\r\nContent-Disposition: inline\r\n",
    ];
    let body = "--B\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment\r\n\r\n\
JVBERi0=\r\n--B--\r\n";
    let mut attachments = 0;
    for extra in cases {
        let raw = format!("{head}{extra}\r\n{body}");
        let s = sum(raw.as_bytes());
        assert_eq!(s, full(raw.as_bytes()), "{extra:?}");
        attachments += usize::from(s.has_attachments);
    }
    // The look-alikes really are attachments, so the comparison has teeth.
    assert!(attachments >= 6, "{attachments}");
    // Headers only, no empty line, so no body: no attachment, either way.
    for raw in [
        format!("{head}Content-Type: application/pdf\r\n"),
        format!("{head}Content-Type: application/pdf\r\n\r\n"),
    ] {
        assert_eq!(sum(raw.as_bytes()), full(raw.as_bytes()), "{raw:?}");
    }
}

/// A parser panic in the MIME tree (mail-parser has had several: a
/// `message/rfc822` attachment that is not a message, a folded line at the
/// very end) must not cost the headers: the index still shows who sent
/// what, when.
#[test]
fn panic_in_body_parse_keeps_the_headers() {
    let raw = b"From: Erika <erika@example.org>\r\n\
To: b@example.org\r\n\
Subject: Angebot\r\n\
Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n\
Message-ID: <m1@example.org>\r\n\
Content-Type: multipart/mixed; boundary=X\r\n\
\r\n\
--X\r\n\
Content-Type: text/plain\r\n\
\r\n\
hi\r\n\
--X--\r\n";
    let s = summarize_with(raw, RECEIVED, |_| panic!("hostile body"));
    assert_eq!(s.from, "Erika <erika@example.org>");
    assert_eq!(s.to, ["b@example.org"]);
    assert_eq!(s.subject, "Angebot");
    assert_eq!(s.date, Some(1_700_000_000));
    assert_eq!(s.message_id, "m1@example.org");
    assert!(
        s.has_attachments,
        "multipart/mixed is taken to carry attachments"
    );
}

#[test]
fn panic_in_body_parse_of_an_alternative_guesses_no_attachment() {
    let raw = b"From: a@example.org\r\nSubject: s\r\n\
Content-Type: multipart/alternative; boundary=X\r\n\r\n--X\r\n\r\nhi\r\n--X--\r\n";
    let s = summarize_with(raw, RECEIVED, |_| panic!("hostile body"));
    assert_eq!(s.subject, "s");
    assert!(!s.has_attachments);
}

/// Found by fuzzing (fuzz/): a multipart whose nested `message/rfc822`
/// parts end inside a boundary line trips mail-parser 0.11.9's "Invalid
/// part ID, could not find multipart" (a debug assertion: it panics in
/// builds with debug assertions, which the tests are). Either way the
/// index shows the sender and subject of the headers.
#[test]
fn the_part_id_panic_mail_keeps_its_headers() {
    let raw = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/parser-part-id-panic.eml"),
    )
    .unwrap();
    let s = sum(&raw);
    assert_eq!(s.from, "nul@example.test");
    assert!(s.subject.starts_with("NU 2La0rM26"), "{:?}", s.subject);
    assert!(s.has_attachments, "multipart/mixed");
    let _ = view(&raw);
}
