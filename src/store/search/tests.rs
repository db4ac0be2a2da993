use super::*;

fn meta(subject: &str, from: &str, to: &[&str]) -> MessageMeta {
    MessageMeta {
        subject: subject.into(),
        from: from.into(),
        to: to.iter().map(|s| s.to_string()).collect(),
        ..MessageMeta::default()
    }
}

fn hit(query: &str, m: &MessageMeta) -> bool {
    Query::parse(query).is_some_and(|q| q.matches(m))
}

#[test]
fn words_split_addresses_and_names_and_are_lowercased() {
    let m = meta(
        "AW: Angebot Nr. 7 – Müller-Lüdenscheidt",
        "\"Kunde, Karl\" <k.kunde_1+crm@Example.ORG>",
        &["vertrieb@example.org"],
    );
    let t: Vec<String> = tokens(&m).into_iter().collect();
    for w in [
        "aw",
        "angebot",
        "nr",
        "7",
        "müller",
        "lüdenscheidt",
        "kunde",
        "karl",
        "k",
        "1",
        "crm",
        "example",
        "org",
        "vertrieb",
    ] {
        assert!(t.iter().any(|x| x == w), "{w} missing in {t:?}");
    }
    assert_eq!(t.len(), 14, "{t:?}");
}

#[test]
fn a_query_matches_at_the_start_of_a_word_only() {
    let m = meta(
        "Angebot Nr. 7",
        "Sender 17 <s17@example.org>",
        &["crm@example.org"],
    );
    for q in [
        "ANGEBOT",
        "angeb",
        "s17@example",
        "crm@",
        "@example.org",
        "nr. 7",
        " Angebot ",
        "example.org",
    ] {
        assert!(hit(q, &m), "{q:?} should match");
    }
    for q in ["gebot", "17@example", "angebotx", "nr 7", "s1@"] {
        assert!(!hit(q, &m), "{q:?} should not match");
    }
    assert!(Query::parse("  @ .. ").is_none(), "no word: no filter");
    assert!(Query::parse("").is_none());
}

#[test]
fn the_longest_word_drives_and_long_words_are_cut() {
    let q = Query::parse("Re: Rechnung 2024").unwrap();
    assert_eq!(q.driver(), "rechnung");
    assert!(!q.single_word());
    assert!(Query::parse("Rechnung").unwrap().single_word());
    let long = "a".repeat(40);
    let q = Query::parse(&long).unwrap();
    assert_eq!(q.driver().len(), WORD_MAX);
    assert!(
        !q.single_word(),
        "a cut word must be checked on the summary"
    );
    let m = meta(&format!("x {}", "a".repeat(39)), "", &[]);
    assert!(tokens(&m).contains(&"a".repeat(WORD_MAX)));
    assert!(!q.matches(&m), "40 letters are not in 39");
    // A multi-byte character is never cut in half.
    let m = meta(&"ä".repeat(20), "", &[]);
    assert_eq!(tokens(&m).into_iter().next().unwrap(), "ä".repeat(16));
}

#[test]
fn places_parse_back() {
    let mut m = meta("s", "", &[]);
    m.account = "a12".into();
    m.folder = "inbox".into();
    assert_eq!(parse_place(&place(&m)), Some((false, "a12", "inbox")));
    m.contact = "K-1".into();
    assert_eq!(parse_place(&place(&m)), Some((true, "a12", "inbox")));
    assert_eq!(parse_place("zq"), None);
    assert_eq!(parse_place(""), None);
}
