use super::*;

#[test]
fn short_text_passes_unchanged() {
    assert_eq!(cap("login rejected by server"), "login rejected by server");
    assert_eq!(cap(""), "");
}

#[test]
fn long_text_is_cut_with_its_size() {
    let text = "x".repeat(64 * 1024 * 1024);
    let out = cap(&text);
    assert!(out.len() < MAX_TEXT + 40, "{} bytes", out.len());
    assert!(out.starts_with(&"x".repeat(MAX_TEXT)));
    assert!(out.ends_with("… (67108864 bytes)"), "{out}");
}

#[test]
fn the_cut_never_splits_a_character() {
    let text = "ä".repeat(MAX_TEXT);
    let out = cap(&text);
    assert!(out.starts_with(&"ä".repeat(MAX_TEXT / 2)));
    assert!(out.ends_with(&format!("… ({} bytes)", text.len())));
}

#[test]
fn controls_and_hidden_characters_are_neutralized() {
    assert_eq!(cap("a\r\nb\tc"), "a  b c");
    assert_eq!(cap("x\u{1b}[31my"), "x\u{FFFD}[31my");
    assert_eq!(cap("evil\u{202E}txt.exe"), "evil\u{FFFD}txt.exe");
    assert_eq!(cap("a\u{2028}b\u{200B}c"), "a\u{FFFD}b\u{FFFD}c");
    // 7 MB of control characters: a short line, not 35 MB of escapes.
    let out = cap(&"\u{1}".repeat(7 << 20));
    assert!(out.len() < MAX_TEXT + 40, "{} bytes", out.len());
}

#[test]
fn secrets_are_masked_in_every_form() {
    let s = Scrubber::new(&["pa\"ss\\word", "smtp-geheim"], "alice");
    let b64 = base64::engine::general_purpose::STANDARD;
    let texts = [
        "NO [AUTHENTICATIONFAILED] \"alice\" \"pa\\\"ss\\\\word\"".to_string(),
        "-ERR PASS pa\"ss\\word rejected".to_string(),
        format!(
            "-ERR AUTH PLAIN {} failed",
            b64.encode("\0alice\0pa\"ss\\word")
        ),
        format!("535 {} smtp-geheim", b64.encode("pa\"ss\\word")),
    ];
    for t in &texts {
        assert!(s.finds(t), "{t}");
        let out = s.clean(t);
        assert!(!s.finds(&out), "{out}");
        assert!(!out.contains("pa\"ss") && !out.contains("geheim"), "{out}");
        assert!(out.contains("***"), "{out}");
    }
    assert_eq!(
        s.clean("-ERR PASS pa\"ss\\word rejected"),
        "-ERR PASS *** rejected"
    );
}

#[test]
fn a_secret_across_the_cut_is_masked_whole() {
    let secret = "Sup3r-Geheim-Passwort";
    let s = Scrubber::new(&[secret], "u");
    for start in MAX_TEXT - secret.len()..MAX_TEXT + 2 {
        let text = format!("{}{secret} and more", "y".repeat(start));
        let out = s.clean(&text);
        // No prefix of the secret longer than 3 bytes survives.
        assert!(!out.contains(&secret[..4]), "start {start}: {out}");
    }
}

#[test]
fn errors_keep_their_kind_and_lose_the_secret() {
    let s = Scrubber::new(&["hunter2"], "bob");
    let e = Error::Authentication("login rejected: PASS hunter2".into());
    assert_eq!(
        s.error(&e),
        Error::Authentication("login rejected: PASS ***".into())
    );
    let io = std::io::Error::other("peer said hunter2");
    let e = Error::connection_by("the server hung up: hunter2", io);
    let clean = s.error(&e);
    assert_eq!(clean.name(), "Connection");
    assert_eq!(clean.to_string(), "the server hung up: ***");
    assert!(
        std::error::Error::source(&clean).is_none(),
        "a cause that holds the secret is dropped"
    );
    let io = std::io::Error::other("connection reset");
    let clean = s.error(&Error::connection_by("read failed", io));
    assert!(
        std::error::Error::source(&clean).is_some(),
        "a clean cause is kept"
    );
}

#[test]
fn withheld_errors_say_only_their_kind() {
    let e = withheld(&Error::Authentication("NO \"u\" \"hunter2\"".into()));
    assert_eq!(e.name(), "Authentication");
    assert!(!e.to_string().contains("hunter2"), "{e}");
}

#[test]
fn quote_shows_short_values_only() {
    assert_eq!(quote("spam"), "\"spam\"");
    assert_eq!(quote(&"x".repeat(100)), "a value of 100 bytes");
}

#[test]
fn a_capped_reply_loses_a_secret_cut_at_the_cap() {
    let secret = "Passwort-4711-geheim";
    let s = Scrubber::new(&[secret], "u");
    for before in MAX_TEXT - secret.len()..MAX_TEXT {
        let capped = cap(&format!("{}{secret} tail", "z".repeat(before)));
        let out = s.clean_capped(&capped);
        assert!(!out.contains(&secret[..3]), "{before}: {out}");
        assert!(out.ends_with(" bytes)"), "{out}");
    }
    assert_eq!(s.clean_capped("NO Passwort-4711-geheim"), "NO ***");
}

#[test]
fn a_secret_is_found_under_layers_of_quoting() {
    let secret = r#"Geh3im"Pass\wort"#;
    let s = Scrubber::new(&[secret], "u");
    // As sent in an IMAP LOGIN, echoed, rendered with {:?} and partly
    // unescaped again (imap::session::server_text).
    let imap = r#""Geh3im\"Pass\\wort""#;
    let debug = format!("{imap:?}");
    let mangled = debug.replace("\\\"", "\"");
    for t in [secret.to_string(), imap.to_string(), debug, mangled] {
        let out = s.clean(&format!("NO refused: {t} (user u)"));
        assert!(
            !out.contains("Geh3im") && !out.contains("wort"),
            "{t}: {out}"
        );
        assert!(out.contains("***") && out.ends_with("(user u)"), "{out}");
    }
    // Quoting characters alone are no secret.
    assert_eq!(s.clean(r#"a "quoted" \ text"#), r#"a "quoted" \ text"#);
}
