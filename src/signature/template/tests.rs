use super::*;

fn err(src: &str) -> String {
    parse(src).unwrap_err().to_string()
}

#[test]
fn fields_and_pictures_between_text() {
    let p = parse("Gruß\n@Vorname@ @Nachname@ @Bild(1, 120 ,80)@@Bild@.").unwrap();
    assert_eq!(
        p,
        vec![
            Piece::Text("Gruß\n"),
            Piece::Field(Field::Vorname),
            Piece::Text(" "),
            Piece::Field(Field::Nachname),
            Piece::Text(" "),
            Piece::Image(ImageRef {
                index: 1,
                size: Some((120, 80))
            }),
            Piece::Image(ImageRef {
                index: 0,
                size: None
            }),
            Piece::Text("."),
        ]
    );
}

#[test]
fn an_at_that_starts_no_placeholder_is_text() {
    for src in [
        "info@example.com",
        "Mail: max.muster@firma-gmbh.de, Tel. @ home",
        "@",
        "@@",
        "a @ b @@ c",
        "<style>@media screen{} @media(max-width:600px){} @font-face{}</style>",
        "@123@",
        "trailing @",
        "x@y",
        "@ Vorname@",
    ] {
        assert_eq!(parse(src).unwrap(), vec![Piece::Text(src)], "{src}");
    }
    assert_eq!(parse("").unwrap(), vec![]);
    // An address right before a placeholder.
    assert_eq!(
        parse("kontakt@firma.de @EMail@").unwrap(),
        vec![Piece::Text("kontakt@firma.de "), Piece::Field(Field::EMail)]
    );
}

#[test]
fn unknown_placeholders_are_errors_with_a_hint() {
    assert_eq!(
        err("Hallo @Vornmae@"),
        "line 1, column 7: unknown placeholder @Vornmae@ (Placeholders() lists the known ones)"
    );
    assert!(err("@email@").contains("did you mean @EMail@?"));
    assert!(err("x\n  @Kürzel@")
        .starts_with("line 2, column 3: unknown placeholder @Kürzel@ (did you mean @Kuerzel@?)"));
    assert!(err("@bild(0,1,1)@").contains("did you mean @Bild@?"));
    assert!(err("a@b@c").contains("unknown placeholder @b@"));
}

#[test]
fn unterminated_placeholders_are_errors() {
    assert_eq!(
        err("@Vorname @Nachname@"),
        "line 1, column 1: @Vorname is not closed by @"
    );
    assert!(err("Tel. @Telefon").contains("@Telefon is not closed by @"));
    assert!(err("@Bild").contains("@Bild is not closed by @"));
    assert!(err("@Bild(0,10,10)").contains("@Bild( is not closed by )@"));
    assert!(err("@Bild(0,10,10").contains("@Bild( is not closed by )@"));
    assert!(err("@Bild(").contains("@Bild( is not closed by )@"));
    // The closing )@ is looked for within a few characters only.
    let far = format!("@Bild(0,1,1{})@", " ".repeat(100));
    assert!(err(&far).contains("not closed"));
}

#[test]
fn bad_picture_arguments_are_errors() {
    for (src, want) in [
        (
            "@Bild(0,100000,100000)@",
            "width 100000 is out of range (1 to 1024 pixels)",
        ),
        ("@Bild(0,10,0)@", "height 0 is out of range"),
        (
            "@Bild(0,99999999999999999999,1)@",
            "width 4294967295 is out of range",
        ),
        ("@Bild(10,1,1)@", "image 10 does not exist"),
        ("@Bild(0,1)@", "expected @Bild(i,w,h)@, three numbers"),
        ("@Bild(0,1,1,1)@", "three numbers"),
        ("@Bild(a,b,c)@", "three numbers"),
        ("@Bild(-1,5,5)@", "three numbers"),
        ("@Bild()@", "three numbers"),
        ("@Vorname(1)@", "@Vorname@ takes no arguments"),
        ("@Foo(1,2,3)@", "unknown placeholder @Foo@"),
    ] {
        let e = err(src);
        assert!(e.contains(want), "{src}: {e}");
    }
}

#[test]
fn the_number_of_pictures_is_bounded() {
    let ok = "@Bild(0,1,1)@".repeat(MAX_IMAGE_PLACEHOLDERS);
    assert_eq!(parse(&ok).unwrap().len(), MAX_IMAGE_PLACEHOLDERS);
    let e = err(&format!("{ok}@Bild@"));
    assert!(e.contains("more than 16 @Bild@ placeholders"), "{e}");
}

#[test]
fn hostile_input_parses_in_linear_time_without_panics() {
    // Many @ signs, long names, multibyte characters next to every @.
    let src = "@ä@ö(@ü)@ @".repeat(20_000) + &"@x".repeat(50_000) + "@€(";
    let _ = parse(&src);
    let long_name = format!("@{}@", "a".repeat(100_000));
    assert!(err(&long_name).contains("unknown placeholder"));
    let unicode = "@日本語(1,2,3)@ @Ω @Bild(0,1,€)@";
    assert!(parse(unicode).is_err());
}

#[test]
fn column_counts_characters_not_bytes() {
    assert_eq!(
        parse("äöü @X@").unwrap_err(),
        TemplateError {
            line: 1,
            column: 5,
            message: "unknown placeholder @X@ (Placeholders() lists the known ones)".into()
        }
    );
}
