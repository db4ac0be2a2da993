//! The hostile mail corpus: the real-world fixtures of tests/fixtures and
//! some two hundred crafted mails, each breaking one thing a mail parser
//! trusts — MIME boundaries, nesting, encoded words (RFC 2047), 8-bit
//! and NUL bytes in headers, bare CR and LF, endless lines, bombs of
//! base64, headers by the thousand, impossible dates, parameter
//! continuations (RFC 2231). Generated, so that the big ones cost nothing
//! in the repository; every mail is distinct (its name is in it), so each
//! can be found again in the store by its bytes.

use std::path::Path;

/// One mail of the corpus.
pub struct Hostile {
    pub name: String,
    pub bytes: Vec<u8>,
}

/// The whole corpus; `big` adds the mails of 10 MB and more (a 50 MB
/// line, 20 MB of base64).
pub fn corpus(big: bool) -> Vec<Hostile> {
    let mut out = Vec::new();
    fixtures(&mut out);
    boundaries(&mut out);
    nesting(&mut out);
    encoded_words(&mut out);
    eight_bit(&mut out);
    line_ends(&mut out);
    nuls(&mut out);
    long_lines(&mut out, big);
    encodings(&mut out, big);
    headers(&mut out);
    addresses(&mut out);
    dates(&mut out);
    content_types(&mut out);
    out
}

fn push(out: &mut Vec<Hostile>, name: String, bytes: Vec<u8>) {
    out.push(Hostile { name, bytes });
}

/// A mail with `X-Corpus: name` first, then `head` (header lines with
/// their CRLF) and `body`.
fn mail(name: &str, head: &str, body: &[u8]) -> Vec<u8> {
    let mut m = format!("X-Corpus: {name}\r\n{head}\r\n").into_bytes();
    m.extend_from_slice(body);
    m
}

fn plain(out: &mut Vec<Hostile>, name: String, head: &str, body: &str) {
    let m = mail(&name, head, body.as_bytes());
    push(out, name, m);
}

fn fixtures(out: &mut Vec<Hostile>) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/fixtures")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".eml"))
        .collect();
    names.sort();
    for n in names {
        let bytes = std::fs::read(dir.join(&n)).expect("fixture");
        // `empty.eml` has no bytes to tell it apart: give it one line.
        let bytes = if bytes.is_empty() {
            b"X-Corpus: empty fixture\r\n".to_vec()
        } else {
            bytes
        };
        push(out, format!("fixture {n}"), bytes);
    }
}

fn multipart(boundary_param: &str, parts: &str) -> String {
    format!(
        "Subject: broken boundary\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; {boundary_param}\r\n\r\n{parts}"
    )
}

fn boundaries(out: &mut Vec<Hostile>) {
    let cases: Vec<(&str, String)> = vec![
        ("no closing", "--b1\r\nContent-Type: text/plain\r\n\r\nopen\r\n".into()),
        ("never opened", "text without any boundary\r\n".into()),
        ("only closing", "--b1--\r\n".into()),
        ("close before open", "--b1--\r\n--b1\r\n\r\nlate\r\n".into()),
        ("empty parts", "--b1\r\n--b1\r\n--b1\r\n--b1--\r\n".into()),
        ("part without blank", "--b1\r\nContent-Type: text/plain\r\nno blank line\r\n--b1--\r\n".into()),
        ("boundary in body", "--b1\r\n\r\n--b1 inside --b1-- text\r\n--b1--\r\n".into()),
        ("nested same boundary", "--b1\r\nContent-Type: multipart/mixed; boundary=b1\r\n\r\n--b1\r\n\r\nx\r\n--b1--\r\n--b1--\r\n".into()),
        ("prefix boundary", "--b1x\r\n\r\nnot a part\r\n--b1\r\n\r\npart\r\n--b1--\r\n".into()),
        ("lf only", "--b1\n\nbare lf part\n--b1--\n".into()),
        ("trailing garbage", "--b1\r\n\r\nx\r\n--b1--   garbage after close\r\nmore\r\n".into()),
        ("thousand empty", "--b1\r\n".repeat(1000)),
    ];
    for (i, (what, parts)) in cases.iter().enumerate() {
        let param = match i % 4 {
            0 => "boundary=b1".to_string(),
            1 => "boundary=\"b1\"".to_string(),
            2 => "boundary=\"b1\"; boundary=\"b2\"".to_string(),
            _ => "boundary = b1 ; charset=utf-8".to_string(),
        };
        plain(
            out,
            format!("boundary {what}"),
            &multipart(&param, parts),
            "",
        );
    }
    let odd_params = [
        "boundary=",
        "boundary=\"\"",
        "boundary",
        "boundary=\"unterminated",
        "boundary=\"(.*)[+?]{2}\\\\\"",
    ];
    for p in odd_params {
        plain(
            out,
            format!("boundary param {p}"),
            &multipart(p, "--\r\n\r\nx\r\n----\r\n"),
            "",
        );
    }
    let long = "b".repeat(5000);
    plain(
        out,
        "boundary of 5000 bytes".into(),
        &multipart(
            &format!("boundary={long}"),
            &format!("--{long}\r\n\r\nx\r\n--{long}--\r\n"),
        ),
        "",
    );
}

/// `depth` multiparts, one inside the other.
fn deep_multipart(depth: usize) -> String {
    let mut m = String::from("Subject: deep\r\nMIME-Version: 1.0\r\n");
    for i in 0..depth {
        m.push_str(&format!(
            "Content-Type: multipart/mixed; boundary=\"d{i}\"\r\n\r\n--d{i}\r\n"
        ));
    }
    m.push_str("Content-Type: text/plain\r\n\r\ndeep inside\r\n");
    for i in (0..depth).rev() {
        m.push_str(&format!("--d{i}--\r\n"));
    }
    m
}

/// `depth` attached messages, one inside the other.
fn deep_rfc822(depth: usize) -> String {
    let mut m = String::new();
    for _ in 0..depth {
        m.push_str("Subject: wrapped\r\nContent-Type: message/rfc822\r\n\r\n");
    }
    m.push_str("Subject: innermost\r\n\r\nhere\r\n");
    m
}

fn nesting(out: &mut Vec<Hostile>) {
    for depth in [10, 100, 1000, 10_000] {
        let name = format!("multipart nested {depth}");
        let m = mail(&name, "", deep_multipart(depth).as_bytes());
        push(out, name, m);
    }
    for depth in [10, 100, 1000, 10_000] {
        let name = format!("message/rfc822 nested {depth}");
        let m = mail(&name, "", deep_rfc822(depth).as_bytes());
        push(out, name, m);
    }
    for parts in [100, 1000, 10_000] {
        let mut body = String::new();
        for i in 0..parts {
            body.push_str(&format!(
                "--p\r\nContent-Type: text/plain; name=\"p{i}.txt\"\r\n\
                 Content-Disposition: attachment; filename=\"p{i}.txt\"\r\n\r\npart {i}\r\n"
            ));
        }
        body.push_str("--p--\r\n");
        let name = format!("{parts} parts");
        let head = "Subject: many parts\r\nMIME-Version: 1.0\r\n\
                    Content-Type: multipart/mixed; boundary=p\r\n";
        plain(out, name, head, &body);
    }
}

fn encoded_words(out: &mut Vec<Hostile>) {
    let words = [
        "=?utf-8?B?not*base64!?=",
        "=?utf-8?B?SGFsbG8?=",
        "=?utf-8?Q?=FF=FE=FD?=",
        "=?utf-8?Q?unterminated",
        "=?x-unknown-charset?Q?abc?=",
        "=??Q?nocharset?=",
        "=?utf-8??noencoding?=",
        "=?utf-8?X?badencoding?=",
        "=?utf-8*de?Q?lang?=",
        "=?utf-8?Q?a?= =?utf-8?Q?b?= =?utf-8?B?Yw==?=",
        "=?utf-8?B?=?utf-8?B?nested?=?=",
        "=?iso-2022-jp?B?GyRCJEgbKEI=?=",
        "=?utf-16?B?//5IAGkA?=",
        "=?utf-8?Q?_=?=",
        "=?utf-8?B??=",
        "=?UTF-8?b?w6TDtsO8?=",
        "=?utf-8?q?=E2=82?=",
        "=?utf-7?Q?+AKQ-?=",
    ];
    for (i, w) in words.iter().enumerate() {
        for header in ["Subject", "From", "To"] {
            let head = match header {
                "Subject" => format!("Subject: {w}\r\n"),
                h => format!("{h}: {w} <x{i}@example.test>\r\n"),
            };
            plain(
                out,
                format!("encoded word {i} in {header}"),
                &head,
                "body\r\n",
            );
        }
    }
    let many = "=?utf-8?Q?x?= ".repeat(10_000);
    plain(
        out,
        "10000 encoded words".into(),
        &format!("Subject: {many}\r\n"),
        "",
    );
    let long = format!("=?utf-8?B?{}?=", "QUFB".repeat(50_000));
    plain(
        out,
        "one 200 kB encoded word".into(),
        &format!("Subject: {long}\r\n"),
        "",
    );
}

fn eight_bit(out: &mut Vec<Hostile>) {
    let values: [&[u8]; 6] = [
        b"Gr\xfc\xdfe aus K\xf6ln",
        b"\xff\xfe\xfd\xfc",
        b"caf\xc3\xa9 \xc3",
        b"\xe2\x80\xae right-to-left",
        b"\xf0\x9f\x93\xa7 emoji",
        b"\xc0\xaf overlong",
    ];
    for (i, v) in values.iter().enumerate() {
        for header in ["Subject", "From", "To"] {
            let name = format!("8-bit {i} in {header}");
            let mut head = format!("{header}: ").into_bytes();
            head.extend_from_slice(v);
            if header != "Subject" {
                head.extend_from_slice(format!(" <e{i}@example.test>").as_bytes());
            }
            head.extend_from_slice(b"\r\n");
            let mut m = format!("X-Corpus: {name}\r\n").into_bytes();
            m.extend_from_slice(&head);
            m.extend_from_slice(b"\r\nbody ");
            m.extend_from_slice(v);
            m.extend_from_slice(b"\r\n");
            push(out, name, m);
        }
    }
    let mut name_8bit = b"X-Corpus: 8-bit header name\r\nSubj\xe9ct: x\r\n\r\n".to_vec();
    name_8bit.extend_from_slice(b"body\r\n");
    push(out, "8-bit header name".into(), name_8bit);
}

fn line_ends(out: &mut Vec<Hostile>) {
    let cases: [(&str, &[u8]); 12] = [
        (
            "bare lf",
            b"Subject: lf\nFrom: a@example.test\n\nbody\nline\n",
        ),
        (
            "bare cr",
            b"Subject: cr\rFrom: a@example.test\r\rbody\rline\r",
        ),
        (
            "cr cr lf",
            b"Subject: crcrlf\r\r\nFrom: a@example.test\r\r\n\r\r\nbody\r\r\n",
        ),
        (
            "lf cr",
            b"Subject: lfcr\n\rFrom: a@example.test\n\r\n\rbody\n\r",
        ),
        (
            "mixed",
            b"Subject: mixed\r\nFrom: a@example.test\n\r\nbody\rline\nend\r\n",
        ),
        (
            "no final newline",
            b"Subject: no newline\r\n\r\nbody without end",
        ),
        (
            "headers only",
            b"Subject: headers only\r\nFrom: a@example.test\r\n",
        ),
        (
            "no blank line",
            b"Subject: no blank\r\nnot a header line\r\nbody?\r\n",
        ),
        ("blank first", b"\r\nSubject: after blank\r\n"),
        ("only newlines", b"\r\n\r\n\r\n\r\n"),
        (
            "folded forever",
            b"Subject: a\r\n b\r\n c\r\n d\r\n\t e\r\n \r\n\r\nbody\r\n",
        ),
        ("fold at start", b" Subject: folded first\r\n\r\nbody\r\n"),
    ];
    for (what, bytes) in cases {
        let mut m = format!("X-Corpus: line ends {what}\r\n").into_bytes();
        m.extend_from_slice(bytes);
        push(out, format!("line ends {what}"), m);
    }
    let mut lf_everywhere = String::from("X-Corpus: ten thousand bare lf\n");
    lf_everywhere.push_str("Subject: many lines\n\n");
    lf_everywhere.push_str(&"line\n".repeat(10_000));
    push(
        out,
        "ten thousand bare lf".into(),
        lf_everywhere.into_bytes(),
    );
}

fn nuls(out: &mut Vec<Hostile>) {
    let cases: [(&str, &[u8]); 6] = [
        ("in subject", b"Subject: a\0b\r\n\r\nbody\r\n"),
        ("in header name", b"Sub\0ject: x\r\n\r\nbody\r\n"),
        ("in address", b"From: a\0@example.test\r\n\r\nbody\r\n"),
        ("in body", b"Subject: nul body\r\n\r\n\0\0\0\r\n"),
        ("in boundary", b"Content-Type: multipart/mixed; boundary=\"a\0b\"\r\n\r\n--a\0b\r\n\r\nx\r\n--a\0b--\r\n"),
        ("only nuls", b"\0\0\0\0\0\0\0\0"),
    ];
    for (what, bytes) in cases {
        let mut m = format!("X-Corpus: nul {what}\r\n").into_bytes();
        m.extend_from_slice(bytes);
        push(out, format!("nul {what}"), m);
    }
    let mut many = b"X-Corpus: 100 kB of nul\r\nSubject: nul\r\n\r\n".to_vec();
    many.extend(std::iter::repeat_n(0u8, 100_000));
    push(out, "100 kB of nul".into(), many);
}

fn long_lines(out: &mut Vec<Hostile>, big: bool) {
    let subject = "s".repeat(1 << 20);
    plain(
        out,
        "1 MB subject".into(),
        &format!("Subject: {subject}\r\n"),
        "x\r\n",
    );
    let folded = format!("Subject: x{}\r\n", "\r\n y".repeat(100_000));
    plain(out, "subject folded 100000 times".into(), &folded, "x\r\n");
    let name = "2 MB body line".to_string();
    let m = mail(
        &name,
        "Subject: long line\r\n",
        "L".repeat(2 << 20).as_bytes(),
    );
    push(out, name, m);
    if big {
        let name = "50 MB body line".to_string();
        let m = mail(&name, "Subject: one huge line\r\n", &vec![b'z'; 50 << 20]);
        push(out, name, m);
    }
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Base64 in lines of 76 characters, as mailers send it (RFC 2045 §6.8).
fn b64_lines(bytes: &[u8]) -> String {
    let text = b64(bytes);
    let lines: Vec<&str> = text
        .as_bytes()
        .chunks(76)
        .map(|c| std::str::from_utf8(c).unwrap_or(""))
        .collect();
    lines.join("\r\n")
}

fn encodings(out: &mut Vec<Hostile>, big: bool) {
    let att = |name: &str, cte: &str, body: &str| {
        format!(
            "Subject: {name}\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=e\r\n\r\n\
             --e\r\nContent-Type: text/plain\r\n\r\nsee attachment\r\n\
             --e\r\nContent-Type: application/octet-stream; name=a.bin\r\n\
             Content-Transfer-Encoding: {cte}\r\nContent-Disposition: attachment; filename=a.bin\r\n\r\n\
             {body}\r\n--e--\r\n"
        )
    };
    let cases: Vec<(&str, &str, String)> = vec![
        ("base64 garbage", "base64", "!!!!****____%%%%".repeat(100)),
        ("base64 no padding", "base64", "QUJD".repeat(100) + "QQ"),
        (
            "base64 one line of 1 MB",
            "base64",
            b64(&vec![7u8; 768 * 1024]),
        ),
        ("base64 spaces", "base64", "Q U J D ".repeat(1000)),
        (
            "qp invalid escapes",
            "quoted-printable",
            "=ZZ=G1=\r\n=".repeat(1000),
        ),
        (
            "qp soft breaks only",
            "quoted-printable",
            "=\r\n".repeat(10_000),
        ),
        (
            "unknown encoding",
            "x-uuencode-ish",
            "begin 644 a\r\n`\r\nend".into(),
        ),
        (
            "binary with 7bit label",
            "7bit",
            "\u{1}\u{2}\u{3}".repeat(1000),
        ),
        ("empty base64", "base64", String::new()),
    ];
    for (name, cte, body) in cases {
        let head = att(name, cte, &body);
        plain(out, format!("encoding {name}"), &head, "");
    }
    // A bomb: 4 MB of base64 that each decodes to zeros, in 76-column lines.
    let zeros = b64_lines(&vec![0u8; 3 << 20]);
    let head = att("zeros", "base64", &zeros);
    plain(out, "encoding 3 MB of zeros".into(), &head, "");
    if big {
        let zeros = b64_lines(&vec![0u8; 15 << 20]);
        let head = att("bomb", "base64", &zeros);
        plain(out, "encoding 20 MB of base64".into(), &head, "");
    }
}

fn headers(out: &mut Vec<Hostile>) {
    let many: String = (0..10_000).map(|i| format!("X-H{i}: v{i}\r\n")).collect();
    plain(out, "10000 headers".into(), &many, "x\r\n");
    let subjects: String = (0..1000).map(|i| format!("Subject: s{i}\r\n")).collect();
    plain(out, "1000 subjects".into(), &subjects, "x\r\n");
    let cases = [
        ("no colon", "This is not a header\r\nSubject: after\r\n"),
        ("empty name", ": no name\r\nSubject: x\r\n"),
        ("space in name", "Sub ject: spaced\r\n"),
        ("space before colon", "Subject : spaced colon\r\n"),
        ("empty subject", "Subject:\r\n"),
        ("colon only", ":\r\n"),
        ("unicode name", "Betreff\u{e4}: x\r\n"),
        (
            "huge message-id",
            "Message-ID: <aaaa@bbbb>\r\nIn-Reply-To: <x>\r\nReferences: <a> <b> <c\r\n",
        ),
        (
            "references garbage",
            "References: >>>><<<<@@@@ <a@b> <<<\r\nIn-Reply-To: ><\r\n",
        ),
        ("message-id unbalanced", "Message-ID: <<<a@b\r\n"),
    ];
    for (what, head) in cases {
        plain(out, format!("header {what}"), head, "x\r\n");
    }
    let refs: String = (0..10_000)
        .map(|i| format!(" <r{i}@example.test>"))
        .collect();
    plain(
        out,
        "10000 references".into(),
        &format!("Subject: refs\r\nReferences:{refs}\r\n"),
        "x\r\n",
    );
}

fn addresses(out: &mut Vec<Hostile>) {
    let cases = [
        "\"unterminated <a@example.test>",
        "<<a@example.test>>",
        "a@@example.test",
        "@example.test",
        "a@",
        "group: a@example.test, b@example.test;",
        "group: ;",
        "\"quoted\\\"escape\" <q@example.test>",
        "(comment (nested (deep))) c@example.test",
        "a@example.test (unterminated comment",
        "<>",
        "undisclosed-recipients:;",
        "=?utf-8?Q?M=C3=BCller?= <m@example.test>, , ,",
        "a@[127.0.0.1]",
        "\"\" <empty@example.test>",
    ];
    for (i, a) in cases.iter().enumerate() {
        for header in ["From", "To", "Cc"] {
            let head = format!("Subject: address {i}\r\n{header}: {a}\r\n");
            plain(out, format!("address {i} in {header}"), &head, "x\r\n");
        }
    }
    let deep = format!(
        "{}x{} d@example.test",
        "(".repeat(10_000),
        ")".repeat(10_000)
    );
    plain(
        out,
        "comment nested 10000".into(),
        &format!("From: {deep}\r\n"),
        "x\r\n",
    );
    let many: Vec<String> = (0..10_000).map(|i| format!("r{i}@example.test")).collect();
    plain(
        out,
        "10000 recipients".into(),
        &format!("To: {}\r\n", many.join(", ")),
        "x\r\n",
    );
}

fn dates(out: &mut Vec<Hostile>) {
    let cases = [
        "",
        "yesterday",
        "Mon, 32 Foo 99999 25:61:61 +9999",
        "Thu, 01 Jan 1970 00:00:00 +0000",
        "Wed, 31 Dec 1969 23:59:59 +0000",
        "Fri, 31 Dec 9999 23:59:59 -2359",
        "Sat, 01 Jan 0000 00:00:00 +0000",
        "1700000000",
        "Tue, 29 Feb 2023 12:00:00 +0100",
        "Tue, 03 Dec 2026 10:00:00 +0100 (CET) (more) (comments)",
        "-1",
        "Thu, 26 Nov 2026 10:00:00 GMT+25",
    ];
    for (i, d) in cases.iter().enumerate() {
        plain(
            out,
            format!("date {i}"),
            &format!("Subject: date {i}\r\nDate: {d}\r\n"),
            "x\r\n",
        );
    }
    let many: String = (0..1000)
        .map(|i| format!("Date: Thu, 26 Nov 2026 10:00:{:02} +0000\r\n", i % 60))
        .collect();
    plain(out, "1000 dates".into(), &many, "x\r\n");
}

fn content_types(out: &mut Vec<Hostile>) {
    let cases = [
        "",
        "multipart/",
        "/plain",
        "text/plain; charset=x-unknown",
        "text/plain; charset=\"\"",
        "text/plain; charset=utf-16",
        "text/html",
        "multipart/alternative",
        "message/rfc822",
        "message/partial; id=\"x\"; number=1; total=2",
        "text/plain; name*0=a; name*1=b; name*99999=c",
        "text/plain; name*=utf-8''%FF%FE%",
        "application/x-what; a=b; a=c; a=d",
        "text/plain;;;;;;",
        "multipart/mixed; boundary=\"x\"; boundary*0=y",
    ];
    for (i, ct) in cases.iter().enumerate() {
        let head = format!("Subject: ctype {i}\r\nMIME-Version: 1.0\r\nContent-Type: {ct}\r\n");
        plain(
            out,
            format!("content type {i}"),
            &head,
            "<b>body</b> --x\r\n",
        );
    }
    let continued: String = (0..1000)
        .map(|i| format!(";\r\n name*{i}=\"p{i}\""))
        .collect();
    let head = format!("Subject: rfc2231\r\nContent-Type: text/plain{continued}\r\n");
    plain(out, "1000 parameter continuations".into(), &head, "x\r\n");
    let html = "<div><p><b><i>".repeat(100_000);
    let head = "Subject: deep html\r\nMIME-Version: 1.0\r\nContent-Type: text/html\r\n";
    plain(out, "html nested 400000 tags".into(), head, &html);
}
