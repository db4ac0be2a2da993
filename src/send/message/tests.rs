use super::*;

fn s(v: &str) -> MessageValue {
    MessageValue::Str(v.into())
}

fn list(v: &[&str]) -> MessageValue {
    MessageValue::StrList(v.iter().map(|s| s.to_string()).collect())
}

fn keys(pairs: Vec<(&str, MessageValue)>) -> Result<Draft> {
    Draft::from_keys(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

fn err(pairs: Vec<(&str, MessageValue)>) -> String {
    keys(pairs).unwrap_err().to_string()
}

fn file(name: &str, mime: &str, len: usize) -> (String, String, Vec<u8>) {
    (name.into(), mime.into(), vec![7; len])
}

#[test]
fn every_key_is_taken() {
    let d = keys(vec![
        ("to", list(&["Kunde <kunde@example.com>", "b@example.com"])),
        ("cc", list(&["\"Müller, Jörg\" <j@example.com>"])),
        ("bcc", list(&["chef@example.org"])),
        ("subject", s("Angebot")),
        ("text", s("Hallo\n\tWelt")),
        ("html", s("<p>Hallo</p>")),
        (
            "attachments",
            MessageValue::Attachments(vec![file("a.pdf", "Application/PDF", 3)]),
        ),
        ("in_reply_to", s("42")),
        ("signature", MessageValue::Bool(false)),
        ("draft_id", MessageValue::U64(9)),
    ])
    .unwrap();
    assert_eq!(d.to.len(), 2);
    assert_eq!(d.to[0].name.as_deref(), Some("Kunde"));
    assert_eq!(d.to[0].email.to_string(), "kunde@example.com");
    assert_eq!(d.cc[0].name.as_deref(), Some("Müller, Jörg"));
    assert_eq!(d.bcc[0].email.to_string(), "chef@example.org");
    assert_eq!(d.attachments[0].mime, "application/pdf");
    assert_eq!(d.in_reply_to, Some(InReplyTo::Stored(42)));
    assert!(!d.signature);
    assert_eq!(d.draft_id, Some(9));
    assert!(d.check_sendable().is_ok());
}

#[test]
fn defaults_and_recipients() {
    let d = keys(vec![]).unwrap();
    assert!(d.signature, "the signature is on by default");
    assert_eq!(
        d.check_sendable().unwrap_err().to_string(),
        "to: no recipient: give at least one address in to, cc or bcc"
    );
    let d = keys(vec![
        ("to", list(&["a@example.com"])),
        ("cc", list(&["A <a@example.com>", "b@example.com"])),
        ("bcc", list(&["c@example.com"])),
    ])
    .unwrap();
    let env: Vec<String> = d
        .envelope_recipients()
        .iter()
        .map(|a| a.to_string())
        .collect();
    assert_eq!(env, ["a@example.com", "b@example.com", "c@example.com"]);
    let d = keys(vec![("in_reply_to", s(" <x.y@host> "))]).unwrap();
    assert_eq!(
        d.in_reply_to,
        Some(InReplyTo::MessageId("<x.y@host>".into()))
    );
    assert_eq!(
        keys(vec![("in_reply_to", s(""))]).unwrap().in_reply_to,
        None
    );
}

#[test]
fn unknown_keys_wrong_types_and_repeats_name_the_key() {
    assert!(err(vec![("body", s("x"))]).starts_with("body: unknown message key (known: to, cc,"));
    assert_eq!(
        err(vec![("to", s("a@b.c"))]),
        "to: must be of type as, not s"
    );
    assert_eq!(
        err(vec![("signature", s("yes"))]),
        "signature: must be of type b, not s"
    );
    assert_eq!(
        err(vec![("draft_id", MessageValue::Other("i".into()))]),
        "draft_id: must be of type t, not i"
    );
    assert_eq!(
        err(vec![("attachments", list(&[]))]),
        "attachments: must be of type a(ssay), not as"
    );
    assert_eq!(
        err(vec![("subject", s("a")), ("subject", s("b"))]),
        "subject: given twice"
    );
}

#[test]
fn addresses_are_checked_and_domains_made_ascii() {
    assert_eq!(
        err(vec![("to", list(&["ok@example.com", "kaputt"]))]),
        "to: entry 2 \"kaputt\": not an e-mail address (no @)"
    );
    let e = err(vec![("cc", list(&["jörg@example.com"]))]);
    assert!(
        e.starts_with("cc: entry 1 \"jörg@example.com\": the part before the @ must be ASCII"),
        "{e}"
    );
    let e = err(vec![("bcc", list(&["a@exa mple.com"]))]);
    assert!(e.starts_with("bcc: entry 1"), "{e}");
    let e = err(vec![("to", list(&["Evil <a@b.c>\r\nBcc: x@y.z"]))]);
    assert!(e.contains("control characters"), "{e}");
    let d = keys(vec![("to", list(&["Jörg <j@bücher.example>"]))]).unwrap();
    assert_eq!(d.to[0].email.to_string(), "j@xn--bcher-kva.example");
    let many: Vec<String> = (0..=MAX_RECIPIENTS)
        .map(|i| format!("r{i}@example.com"))
        .collect();
    let refs: Vec<&str> = many.iter().map(String::as_str).collect();
    assert_eq!(
        err(vec![("to", list(&refs))]),
        format!(
            "to: {} recipients; at most {MAX_RECIPIENTS}",
            MAX_RECIPIENTS + 1
        )
    );
    let (a, b) = refs.split_at(60);
    assert_eq!(
        err(vec![("to", list(a)), ("bcc", list(b))]),
        format!(
            "to: {} recipients in to, cc and bcc; at most {MAX_RECIPIENTS}",
            MAX_RECIPIENTS + 1
        )
    );
}

#[test]
fn texts_are_bounded_and_headers_cannot_be_injected() {
    assert_eq!(
        err(vec![("subject", s("Hi\r\nBcc: evil@example.com"))]),
        "subject: contains line breaks or control characters"
    );
    assert_eq!(
        err(vec![("subject", s(&"x".repeat(MAX_SUBJECT + 1)))]),
        format!(
            "subject: too long: {} bytes, at most {MAX_SUBJECT}",
            MAX_SUBJECT + 1
        )
    );
    assert_eq!(
        err(vec![("text", s("a\0b"))]),
        "text: contains control characters other than line breaks and tabs"
    );
    assert!(err(vec![("html", s(&"x".repeat(MAX_HTML + 1)))]).starts_with("html: too long"));
    assert!(err(vec![("text", s(&"x".repeat(MAX_TEXT + 1)))]).starts_with("text: too long"));
    assert_eq!(
        err(vec![("in_reply_to", s("hello"))]),
        "in_reply_to: neither a stored message's id (digits) nor a Message-ID in angle brackets"
    );
}

#[test]
fn attachments_are_checked() {
    let att = |v: Vec<(String, String, Vec<u8>)>| {
        err(vec![("attachments", MessageValue::Attachments(v))])
    };
    assert_eq!(
        att(vec![file("a.pdf", "pdf", 1)]),
        "attachments: file 1 \"a.pdf\": \"pdf\" is not a MIME type (type/subtype)"
    );
    assert!(att(vec![file("a.txt", "text/plain; x=\"\r\n\"", 1)]).contains("is not a MIME type"));
    assert!(att(vec![file("../etc/passwd", "text/plain", 1)]).contains("path separator"));
    assert!(att(vec![file(" ", "text/plain", 1)]).contains("file name is empty"));
    assert!(
        att(vec![file(&"n".repeat(MAX_FILE_NAME + 1), "text/plain", 1)]).contains("longer than")
    );
    let many: Vec<_> = (0..=MAX_ATTACHMENTS)
        .map(|i| file(&format!("{i}.txt"), "text/plain", 1))
        .collect();
    assert_eq!(
        att(many),
        format!(
            "attachments: {} files; at most {MAX_ATTACHMENTS}",
            MAX_ATTACHMENTS + 1
        )
    );
    let half = MAX_ATTACHMENT_BYTES / 2 + 1;
    assert_eq!(
        att(vec![
            file("a.bin", "application/octet-stream", half),
            file("b.bin", "application/octet-stream", half)
        ]),
        format!(
            "attachments: {} bytes together; at most {MAX_ATTACHMENT_BYTES} (25 MiB)",
            2 * half
        )
    );
    let d = keys(vec![(
        "attachments",
        MessageValue::Attachments(vec![file("Übersicht März.pdf", "application/pdf", 0)]),
    )])
    .unwrap();
    assert_eq!(d.attachments[0].name, "Übersicht März.pdf");
}
