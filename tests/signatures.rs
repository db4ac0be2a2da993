//! Signatures and employees through a real postfachd on a private bus
//! (ARCHITECTURE.md "What it does" "Signatures", §3 `org.postfach.Postfach1.Signatures`):
//! the user's own signature wins, employee data is escaped, pictures are
//! scaled to the size the template asks for, and errors say what is
//! missing (the access rules: tests/signatures_access.rs).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

mod common;
mod sigkit;

use std::collections::HashMap;

use common::api::{bus, error_parts};
use common::Daemon;
use postfach::dbus::proxy::SignaturesProxy;
use sigkit::{jpeg, pictures, png};
use zbus::Variant;

const GENERAL_TEXT: &str = "Mit freundlichen Grüßen\n@Name@\nFirma GmbH, info@firma.de";
const GENERAL_HTML: &str = "<p>@Name@</p>@Bild(1,40,30)@<p>info@firma.de</p>";
const OWN_TEXT: &str = "@Vorname@ @Nachname@ (@Kuerzel@)\nTel. @Telefon@ @Bild@";
const OWN_HTML: &str =
    "<b>@Vorname@ @Nachname@</b><br><i>@Position@</i> @Bild(0,64,48)@ @Bild(1,20,20)@ @Bild@";

fn fields<'a>(pairs: &[(&'a str, &'a str)]) -> HashMap<&'a str, Variant<'a>> {
    pairs.iter().map(|(k, v)| (*k, Variant::from(*v))).collect()
}

async fn set_employee(
    p: &SignaturesProxy<'_>,
    user: &str,
    pairs: &[(&str, &str)],
    pics: &[(&str, Vec<u8>)],
) {
    let images: Vec<(&str, &[u8])> = pics.iter().map(|(m, b)| (*m, b.as_slice())).collect();
    p.set_employee("t1", user, fields(pairs), &images)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn preview_fills_the_users_own_signature_and_falls_back_to_the_general_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = Daemon::start(dir.path(), "");
    let conn = bus(&d).await;
    let p = SignaturesProxy::new(&conn).await.unwrap();

    p.set_signature("t1", "", GENERAL_TEXT, GENERAL_HTML)
        .await
        .unwrap();
    p.set_signature("t1", "mm", OWN_TEXT, OWN_HTML)
        .await
        .unwrap();
    let photo = png(100, 80);
    set_employee(
        &p,
        "mm",
        &[
            ("Vorname", "Max <script>alert(1)</script>"),
            ("Nachname", "Müller & Söhne"),
            ("Position", "\"Chef\" d'Équipe"),
            ("Telefon", "+49 30 1234-0"),
        ],
        &[("image/png", photo.clone()), ("image/jpeg", jpeg(50, 50))],
    )
    .await;
    set_employee(
        &p,
        "ab",
        &[("Vorname", "Anna"), ("Nachname", "Berg")],
        &[("image/png", png(4, 4)), ("image/jpeg", jpeg(90, 60))],
    )
    .await;

    let check_mm = |(html, text, source): (String, String, String)| {
        assert_eq!(source, "user");
        assert_eq!(
            text,
            "Max <script>alert(1)</script> Müller & Söhne (mm)\nTel. +49 30 1234-0 "
        );
        assert!(
            html.starts_with(
                "<b>Max &lt;script&gt;alert(1)&lt;/script&gt; Müller &amp; Söhne</b><br>\
                 <i>&quot;Chef&quot; d&#39;Équipe</i> <img src=\"data:image/png;base64,"
            ),
            "{html}"
        );
        assert!(!html.contains("<script>"));
        let shown = pictures(&html);
        let summary: Vec<String> = shown
            .iter()
            .map(|s| format!("{} {:?} attrs {:?}", s.mime, s.size, s.attrs))
            .collect();
        assert_eq!(
            summary,
            [
                "image/png (64, 48) attrs (64, 48)",
                "image/jpeg (20, 20) attrs (20, 20)",
                "image/png (100, 80) attrs (100, 80)",
            ]
        );
        assert_eq!(shown[2].bytes, photo, "@Bild@ is the file unchanged");
    };
    check_mm(p.preview_signature("t1", "mm").await.unwrap());

    // ab has no signature of its own: the general one, with ab's data.
    let (html, text, source) = p.preview_signature("t1", "ab").await.unwrap();
    assert_eq!(source, "general");
    assert_eq!(
        text,
        "Mit freundlichen Grüßen\nAnna Berg\nFirma GmbH, info@firma.de"
    );
    assert!(html.starts_with("<p>Anna Berg</p><img "), "{html}");
    assert!(html.ends_with("<p>info@firma.de</p>"), "{html}");
    let shown = pictures(&html);
    assert_eq!(shown.len(), 1);
    assert_eq!(
        (shown[0].mime.as_str(), shown[0].size),
        ("image/jpeg", (40, 30))
    );

    // Get returns exactly what was set, never the fallback.
    assert_eq!(
        p.get_signature("t1", "").await.unwrap(),
        (GENERAL_TEXT.to_string(), GENERAL_HTML.to_string())
    );
    let (name, msg) = error_parts(p.get_signature("t1", "ab").await.unwrap_err());
    assert_eq!(name, "org.postfach.Postfach1.Error.NotFound");
    assert!(msg.contains("\"ab\" has no signature of its own"), "{msg}");

    // Everything survives a restart.
    d.restart();
    let conn = bus(&d).await;
    let p = SignaturesProxy::new(&conn).await.unwrap();
    check_mm(p.preview_signature("t1", "mm").await.unwrap());

    // Removing mm's own signature falls back to the general one.
    p.remove_signature("t1", "mm").await.unwrap();
    let (_, text, source) = p.preview_signature("t1", "mm").await.unwrap();
    assert_eq!(source, "general");
    assert!(
        text.contains("Max <script>alert(1)</script> Müller & Söhne"),
        "{text}"
    );
    assert!(d.stop().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn errors_say_what_is_wrong_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = Daemon::start(dir.path(), "");
    let conn = bus(&d).await;
    let p = SignaturesProxy::new(&conn).await.unwrap();
    let err = |e: zbus::Error| {
        let (name, msg) = error_parts(e);
        format!(
            "{}: {msg}",
            name.trim_start_matches("org.postfach.Postfach1.Error.")
        )
    };

    assert_eq!(p.placeholders().await.unwrap().len(), 13);
    // Templates are checked when they are set.
    for (text, html, want) in [
        ("ok", "<p>@Vornmae@</p>", "InvalidArgument: html: line 1, column 4: unknown placeholder @Vornmae@"),
        ("Gruß\n@email@", "", "InvalidArgument: text: line 2, column 1: unknown placeholder @email@ (did you mean @EMail@?)"),
        ("", "@Bild(0,100000,100000)@", "InvalidArgument: html: line 1, column 1: @Bild(0,100000,100000)@: width 100000 is out of range"),
        ("@Vorname @Nachname@", "", "InvalidArgument: text: line 1, column 1: @Vorname is not closed by @"),
    ] {
        let e = err(p.set_signature("t1", "", text, html).await.unwrap_err());
        assert!(e.starts_with(want), "{e}");
    }
    let (name, _) = error_parts(p.get_signature("t1", "").await.unwrap_err());
    assert!(name.ends_with("NotFound"), "nothing was stored");

    // No signature at all, no employee, no such picture.
    let e = err(p.preview_signature("t1", "mm").await.unwrap_err());
    assert!(
        e.starts_with("NotFound: CRM user \"mm\" has no signature in tenant \"t1\""),
        "{e}"
    );
    p.set_signature("t1", "", "@Vorname@", "@Bild(1,10,10)@")
        .await
        .unwrap();
    let e = err(p.preview_signature("t1", "mm").await.unwrap_err());
    assert!(
        e.starts_with("NotFound: no employee is linked to CRM user \"mm\" in tenant \"t1\""),
        "{e}"
    );
    set_employee(&p, "mm", &[("Vorname", "Max")], &[("image/png", png(5, 5))]).await;
    let e = err(p.preview_signature("t1", "mm").await.unwrap_err());
    assert!(e.starts_with("NotFound: @Bild(1,10,10)@: the employee of CRM user \"mm\" in tenant \"t1\" has no image 1"), "{e}");

    // Bad employee records are refused whole; the old one stays.
    let img = png(6, 6);
    for (pairs, pics, want) in [
        (
            fields(&[("Foo", "x")]),
            vec![],
            "InvalidArgument: fields.Foo: unknown field",
        ),
        (
            HashMap::from([("Telefon", Variant::from(5u32))]),
            vec![],
            "InvalidArgument: fields.Telefon: wrong type",
        ),
        (
            fields(&[("Vorname", "Neu")]),
            vec![("image/png", b"not a picture".as_slice())],
            "InvalidArgument: images[0]: the data is not a PNG image",
        ),
        (
            fields(&[("Vorname", "Neu")]),
            vec![
                ("image/png", img.as_slice()),
                ("image/jpeg", img.as_slice()),
            ],
            "InvalidArgument: images[1]: declared image/jpeg but the data is a PNG image",
        ),
    ] {
        let e = err(p.set_employee("t1", "mm", pairs, &pics).await.unwrap_err());
        assert!(e.starts_with(want), "{e}");
    }
    p.set_signature("t1", "", "@Vorname@", "@Bild(0,3,3)@")
        .await
        .unwrap();
    let (html, text, _) = p.preview_signature("t1", "mm").await.unwrap();
    assert_eq!(text, "Max", "the old employee is unchanged");
    assert_eq!(pictures(&html)[0].size, (3, 3));

    // Arguments are checked too.
    let e = err(p.set_signature("", "mm", "", "").await.unwrap_err());
    assert!(e.starts_with("InvalidArgument: tenant: empty"), "{e}");
    let e = err(p.preview_signature("t1", "").await.unwrap_err());
    assert!(e.starts_with("InvalidArgument: user: empty"), "{e}");
    let e = err(p.remove_employee("t1", "zz").await.unwrap_err());
    assert!(
        e.starts_with("NotFound: no employee is linked to CRM user \"zz\""),
        "{e}"
    );
    assert!(d.stop().success());
}
