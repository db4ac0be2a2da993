use super::*;
use crate::account::SettingValue;
use crate::signature::picture::tests::png;
use crate::signature::{Signature, Source};

const WHO: For<'static> = For {
    tenant: "t1",
    user: "mm",
};

fn employee(images: Vec<(String, Vec<u8>)>) -> Employee {
    let f = |k: &str, v: &str| (k.to_string(), SettingValue::Str(v.to_string()));
    Employee::new(
        &[
            f("Vorname", "Max"),
            f("Nachname", "Müller & <Söhne>"),
            f("Position", "\"Chef\" d'Équipe"),
            f("EMail", "mm@example.com"),
        ],
        images,
    )
    .unwrap()
}

/// A stored signature as it is, without SetSignature's checks (a store
/// written by another version, or a test of the render-time errors).
fn chosen(text: &str, html: &str, source: Source) -> Chosen {
    Chosen {
        signature: Signature {
            text: text.into(),
            html: html.into(),
        },
        source,
    }
}

fn decoded_size(data_uri: &str) -> (u32, u32) {
    let b64 = data_uri.split_once(";base64,").unwrap().1;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    let img = image::load_from_memory(&bytes).unwrap();
    (img.width(), img.height())
}

#[test]
fn preview_escapes_html_and_leaves_pictures_out_of_the_text() {
    let e = employee(vec![("image/png".into(), png(40, 20))]);
    let c = chosen(
        "-- \n@Name@\n@Position@ @Bild(0,10,5)@\n@EMail@ (@Kuerzel@)",
        "<p>@Name@<br>@Position@</p>@Bild(0,10,5)@ <a href=\"mailto:@EMail@\">x@y</a>",
        Source::User,
    );
    let p = preview(&c, Some(&e), WHO).unwrap();
    assert_eq!(p.source, Source::User);
    assert_eq!(
        p.text,
        "-- \nMax Müller & <Söhne>\n\"Chef\" d'Équipe \nmm@example.com (mm)"
    );
    assert!(p.html.starts_with(
        "<p>Max Müller &amp; &lt;Söhne&gt;<br>&quot;Chef&quot; d&#39;Équipe</p><img src=\"data:image/png;base64,"
    ), "{}", p.html);
    assert!(p.html.ends_with(
        "width=\"10\" height=\"5\" alt=\"\"> <a href=\"mailto:mm@example.com\">x@y</a>"
    ));
    let uri = p.html.split('"').nth(1).unwrap();
    assert_eq!(decoded_size(uri), (10, 5));
}

#[test]
fn original_size_picture_is_the_file_unchanged() {
    let file = png(33, 17);
    let e = employee(vec![("image/png".into(), file.clone())]);
    let p = preview(&chosen("", "@Bild@", Source::General), Some(&e), WHO).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(&file);
    assert_eq!(
        p.html,
        format!("<img src=\"data:image/png;base64,{b64}\" width=\"33\" height=\"17\" alt=\"\">")
    );
    assert_eq!(p.source, Source::General);
}

#[test]
fn for_mail_refers_to_one_inline_part_per_picture_and_size() {
    let e = employee(vec![
        ("image/png".into(), png(8, 8)),
        ("image/png".into(), png(30, 30)),
    ]);
    let c = chosen(
        "@Vorname@",
        "@Bild(1,12,6)@ @Bild@ @Bild(1,12,6)@ @Bild(1,6,12)@",
        Source::User,
    );
    let m = for_mail(&c, Some(&e), WHO, "tok").unwrap();
    let cids: Vec<&str> = m.inline.iter().map(|p| p.cid.as_str()).collect();
    assert_eq!(
        cids,
        [
            "sig1.tok@postfach",
            "sig2.tok@postfach",
            "sig3.tok@postfach"
        ]
    );
    assert_eq!(
        m.html,
        "<img src=\"cid:sig1.tok@postfach\" width=\"12\" height=\"6\" alt=\"\"> \
         <img src=\"cid:sig2.tok@postfach\" width=\"8\" height=\"8\" alt=\"\"> \
         <img src=\"cid:sig1.tok@postfach\" width=\"12\" height=\"6\" alt=\"\"> \
         <img src=\"cid:sig3.tok@postfach\" width=\"6\" height=\"12\" alt=\"\">"
    );
    assert_eq!(m.text, "Max");
    let sizes: Vec<(u32, u32)> = m
        .inline
        .iter()
        .map(|p| {
            assert_eq!(p.mime, "image/png");
            let i = image::load_from_memory(&p.bytes).unwrap();
            (i.width(), i.height())
        })
        .collect();
    assert_eq!(sizes, [(12, 6), (8, 8), (6, 12)]);
}

#[test]
fn missing_employee_and_missing_image_are_clear_errors() {
    let c = chosen("Gruß, @Vorname@", "", Source::General);
    let e = preview(&c, None, WHO).unwrap_err();
    assert!(
        matches!(&e, Error::NotFound(m) if m.contains("no employee is linked to CRM user \"mm\" in tenant \"t1\"")),
        "{e}"
    );
    // No placeholders: no employee needed.
    let plain = chosen("Firma GmbH", "<b>Firma</b> info@firma.de", Source::General);
    assert_eq!(preview(&plain, None, WHO).unwrap().text, "Firma GmbH");

    let one = employee(vec![("image/png".into(), png(2, 2))]);
    let c = chosen("", "@Bild(1,5,5)@", Source::User);
    let e = preview(&c, Some(&one), WHO).unwrap_err();
    assert!(
        matches!(&e, Error::NotFound(m) if m.starts_with("@Bild(1,5,5)@: the employee of CRM user \"mm\"") && m.contains("has no image 1 (1 images")),
        "{e}"
    );
    let none = employee(vec![]);
    let e = for_mail(&chosen("", "@Bild@", Source::User), Some(&none), WHO, "t").unwrap_err();
    assert!(e.to_string().starts_with("@Bild@: "), "{e}");
}

#[test]
fn a_stored_broken_template_is_an_error_naming_part_and_source() {
    let c = chosen("ok", "<p>@Unbekannt@</p>", Source::General);
    let e = preview(&c, Some(&employee(vec![])), WHO).unwrap_err();
    assert_eq!(
        e.to_string(),
        "html: the general signature of tenant \"t1\", line 1, column 4: unknown placeholder \
         @Unbekannt@ (Placeholders() lists the known ones)"
    );
    let c = chosen("@Vorname", "", Source::User);
    let e = preview(&c, Some(&employee(vec![])), WHO).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("text: the signature of user \"mm\""),
        "{e}"
    );
}

#[test]
fn non_image_bytes_fail_at_render_not_panic() {
    // Only reachable with a store not written through Employee::new.
    let e = Employee::from_stored(
        Default::default(),
        vec![Image {
            mime: "image/png".into(),
            bytes: b"\x89PNG\r\n\x1a\nnot really".to_vec(),
        }],
    );
    let c = chosen("", "@Bild(0,4,4)@", Source::User);
    let err = preview(&c, Some(&e), WHO).unwrap_err();
    assert!(
        err.to_string()
            .contains("image 0: not a readable PNG image"),
        "{err}"
    );
    let c = chosen("", "@Bild@", Source::User);
    assert!(preview(&c, Some(&e), WHO).is_err());
}

#[test]
fn output_is_bounded_while_it_grows() {
    let mut fields = vec![];
    for f in crate::signature::Field::ALL {
        fields.push((f.as_str().to_string(), SettingValue::Str("<&>".repeat(170))));
    }
    let e = Employee::new(&fields, vec![]).unwrap();
    // 256 KiB of placeholders, each 510 bytes of entities when rendered:
    // ~35 MB if it were not stopped.
    let html = "@Name@".repeat(crate::signature::limits::MAX_HTML / 6);
    let c = chosen("", &html, Source::User);
    let err = preview(&c, Some(&e), WHO).unwrap_err();
    assert_eq!(
        err.to_string(),
        "html: the rendered signature would be larger than 16 MiB"
    );
}

/// Found by the `signature` fuzz target: the text part leaves pictures
/// out, so an `@` just before a picture and a name just after it met and
/// made a field placeholder that went out raw (`@@Bild@Vorname@` became
/// `@Vorname@` in the text part).
#[test]
fn a_picture_left_out_of_the_text_never_joins_a_placeholder() {
    let e = employee(vec![("image/png".into(), png(4, 4))]);
    for template in ["@@Bild@Vorname@", "x@@Bild(0,2,2)@EMail@ y"] {
        let c = chosen(template, template, Source::User);
        match preview(&c, Some(&e), WHO) {
            Ok(p) => assert!(
                !p.text.contains("@Vorname@") && !p.text.contains("@EMail@"),
                "{template:?} rendered as {:?}",
                p.text
            ),
            Err(err) => assert!(format!("{err}").contains("text"), "{err}"),
        }
    }
}
