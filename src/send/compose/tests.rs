use std::time::Duration;

use mail_parser::{MessageParser, MimeHeaders, PartType};

use super::*;
use crate::account::SettingValue;
use crate::send::message::limits::MAX_ATTACHMENT_BYTES;
use crate::send::message::MessageValue;
use crate::signature::{for_mail, Chosen, Employee, For, Signature, Source};

const WHO: For<'static> = For {
    tenant: "t1",
    user: "mm",
};

fn account() -> Account {
    let s = |k: &str, v: &str| (k.to_string(), SettingValue::Str(v.to_string()));
    Account::create(
        "a1".into(),
        &[
            s("kind", "imap"),
            s("host", "127.0.0.1"),
            s("address", "vertrieb@firma.example"),
            s("name", "Vertrieb Müller GmbH"),
            s("tenant", "t1"),
        ],
    )
    .unwrap()
    .0
}

fn draft(pairs: Vec<(&str, MessageValue)>) -> Draft {
    Draft::from_keys(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()).unwrap()
}

fn s(v: &str) -> MessageValue {
    MessageValue::Str(v.into())
}

fn list(v: &[&str]) -> MessageValue {
    MessageValue::StrList(v.iter().map(|s| s.to_string()).collect())
}

fn signature() -> ForMail {
    let f = |k: &str, v: &str| (k.to_string(), SettingValue::Str(v.to_string()));
    let e = Employee::new(
        &[f("Vorname", "Max"), f("Nachname", "Müller")],
        vec![("image/png".into(), png(40, 20))],
    )
    .unwrap();
    let c = Chosen {
        signature: Signature {
            text: "Max Müller\nVertrieb".into(),
            html: "<p>@Vorname@ @Nachname@</p>@Bild(0,20,10)@".into(),
        },
        source: Source::User,
    };
    for_mail(&c, Some(&e), WHO, "tok").unwrap()
}

/// A PNG of `w`×`h` pixels.
fn png(w: u32, h: u32) -> Vec<u8> {
    let img = image::DynamicImage::ImageRgb8(image::RgbImage::from_pixel(
        w,
        h,
        image::Rgb([200, 30, 30]),
    ));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

const DATE: Duration = Duration::from_secs(1_767_225_600); // 2026-01-01

fn build(d: &Draft, sig: Option<&ForMail>, parent: Option<&Parent>) -> Composed {
    compose(&Compose {
        account: &account(),
        draft: d,
        signature: sig,
        parent,
        date: UNIX_EPOCH + DATE,
    })
    .unwrap()
}

fn header<'a>(raw: &'a str, name: &str) -> Option<&'a str> {
    let head = raw.split("\r\n\r\n").next().unwrap();
    head.split("\r\n").find(|l| {
        l.to_ascii_lowercase()
            .starts_with(&format!("{}:", name.to_ascii_lowercase()))
    })
}

#[test]
fn full_mail_has_the_nested_structure_and_every_header() {
    let d = draft(vec![
        ("to", list(&["Jörg Kunde <kunde@example.com>"])),
        ("cc", list(&["cc@example.com"])),
        ("bcc", list(&["geheim@example.com"])),
        ("subject", s("Angebot für Größe XL – Ihr Wunsch")),
        ("text", s("Guten Tag,\nanbei das Angebot.\n.\nEnde")),
        ("html", s("<html><body><p>Guten Tag</p></BODY></html>")),
        (
            "attachments",
            MessageValue::Attachments(vec![(
                "Angebot März 2026.pdf".into(),
                "application/pdf".into(),
                b"%PDF-1.4 \x00\xff binary".to_vec(),
            )]),
        ),
    ]);
    let sig = signature();
    let parent = Parent {
        message_id: "<2@kunde>".into(),
        references: vec!["<1@kunde>".into()],
    };
    let c = build(&d, Some(&sig), Some(&parent));
    assert!(c.raw.is_ascii(), "7-bit only");
    let raw = String::from_utf8(c.raw.clone()).unwrap();
    assert!(header(&raw, "bcc").is_none(), "no Bcc header");
    assert!(!raw.contains("geheim"), "bcc appears nowhere in the mail");
    let rcpt: Vec<String> = c.rcpt.iter().map(ToString::to_string).collect();
    assert_eq!(
        rcpt,
        ["kunde@example.com", "cc@example.com", "geheim@example.com"]
    );
    assert_eq!(c.from.to_string(), "vertrieb@firma.example");
    assert!(
        c.message_id.ends_with("@firma.example>"),
        "{}",
        c.message_id
    );
    assert!(
        header(&raw, "subject").unwrap().contains("=?utf-8?"),
        "RFC 2047 subject"
    );
    assert!(raw.contains("filename*"), "RFC 2231 file name");

    let m = MessageParser::default().parse(&c.raw).unwrap();
    assert_eq!(m.subject(), Some("Angebot für Größe XL – Ihr Wunsch"));
    let from = m.from().unwrap().first().unwrap();
    assert_eq!(from.name(), Some("Vertrieb Müller GmbH"));
    assert_eq!(from.address(), Some("vertrieb@firma.example"));
    assert_eq!(m.to().unwrap().first().unwrap().name(), Some("Jörg Kunde"));
    assert_eq!(
        m.cc().unwrap().first().unwrap().address(),
        Some("cc@example.com")
    );
    assert_eq!(
        m.message_id(),
        c.message_id.strip_prefix('<').unwrap().strip_suffix('>')
    );
    assert_eq!(m.date().unwrap().to_timestamp(), DATE.as_secs() as i64);
    assert_eq!(m.in_reply_to().as_text(), Some("2@kunde"));
    let refs: Vec<&str> = m
        .references()
        .as_text_list()
        .unwrap()
        .iter()
        .map(|r| r.as_ref())
        .collect();
    assert_eq!(refs, ["1@kunde", "2@kunde"]);

    // mixed → alternative → (text, related → (html, picture)), attachment
    let kinds: Vec<String> = m
        .parts
        .iter()
        .map(|p| {
            let ct = p.content_type().unwrap();
            format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or(""))
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "multipart/mixed",
            "multipart/alternative",
            "text/plain",
            "multipart/related",
            "text/html",
            "image/png",
            "application/pdf"
        ]
    );
    let text = m.body_text(0).unwrap();
    assert_eq!(
        text.replace("\r\n", "\n").trim_end(),
        "Guten Tag,\nanbei das Angebot.\n.\nEnde\n\n-- \nMax Müller\nVertrieb"
    );
    let html = m.body_html(0).unwrap();
    let at_sig = html
        .find("<div class=\"signature\"><p>Max Müller</p><img src=\"cid:")
        .unwrap();
    assert!(
        at_sig < html.find("</BODY>").unwrap(),
        "signature before </body>"
    );
    let picture = &m.parts[5];
    let cid = picture.content_id().unwrap();
    assert!(
        html.contains(&format!("cid:{cid}")),
        "the HTML refers to the picture"
    );
    assert!(picture.content_disposition().unwrap().is_inline());
    let img = image::load_from_memory(picture.contents()).unwrap();
    assert_eq!((img.width(), img.height()), (20, 10), "scaled picture");
    let pdf = &m.parts[6];
    assert_eq!(pdf.attachment_name(), Some("Angebot März 2026.pdf"));
    assert_eq!(pdf.contents(), b"%PDF-1.4 \x00\xff binary");
}

#[test]
fn html_only_gets_a_text_alternative_and_text_only_stays_plain() {
    let d = draft(vec![
        ("to", list(&["a@example.com"])),
        ("html", s("<p>Nur <b>HTML</b></p>")),
    ]);
    let c = build(&d, Some(&signature()), None);
    let m = MessageParser::default().parse(&c.raw).unwrap();
    assert!(matches!(m.parts[0].body, PartType::Multipart(_)));
    let text = m.body_text(0).unwrap().replace("\r\n", "\n");
    assert!(text.starts_with("Nur HTML"), "{text:?}");
    assert!(
        text.trim_end().ends_with("\n\n-- \nMax Müller\nVertrieb"),
        "{text:?}"
    );
    assert!(header(&String::from_utf8_lossy(&c.raw), "in-reply-to").is_none());

    let d = draft(vec![
        ("to", list(&["a@example.com"])),
        ("text", s("Nur Text")),
    ]);
    let c = build(&d, Some(&signature()), None);
    let m = MessageParser::default().parse(&c.raw).unwrap();
    assert_eq!(m.parts.len(), 1, "a single text/plain part, no pictures");
    assert!(m.parts[0].is_text() && !m.parts[0].is_text_html());
    assert_eq!(
        m.body_text(0).unwrap().replace("\r\n", "\n").trim_end(),
        "Nur Text\n\n-- \nMax Müller\nVertrieb"
    );
}

#[test]
fn signature_edge_cases() {
    let sig = |text: &str, html: &str| ForMail {
        text: text.into(),
        html: html.into(),
        source: Source::General,
        inline: Vec::new(),
    };
    // A template with its own separator keeps one.
    let d = draft(vec![("to", list(&["a@example.com"])), ("text", s("Hallo"))]);
    let c = build(&d, Some(&sig("-- \nGruß", "")), None);
    let m = MessageParser::default().parse(&c.raw).unwrap();
    assert_eq!(
        m.body_text(0).unwrap().replace("\r\n", "\n").trim_end(),
        "Hallo\n\n-- \nGruß"
    );
    // An empty HTML signature gets the text one, escaped.
    let d = draft(vec![
        ("to", list(&["a@example.com"])),
        ("html", s("<p>x</p>")),
    ]);
    let c = build(&d, Some(&sig("A & B\n<C>", "")), None);
    let m = MessageParser::default().parse(&c.raw).unwrap();
    let html = m.body_html(0).unwrap().replace("\r\n", "\n");
    assert!(
        html.trim_end()
            .ends_with("<div class=\"signature\">A &amp; B<br>\n&lt;C&gt;</div>"),
        "{html:?}"
    );
    // No body at all: the signature alone.
    let d = draft(vec![("to", list(&["a@example.com"]))]);
    let c = build(&d, Some(&sig("Gruß", "")), None);
    let m = MessageParser::default().parse(&c.raw).unwrap();
    assert_eq!(m.body_text(0).unwrap().trim_end(), "Gruß");
}

#[test]
fn a_draft_without_recipients_composes_and_an_oversized_mail_is_refused() {
    let c = build(&draft(vec![("subject", s("Entwurf"))]), None, None);
    assert!(c.rcpt.is_empty());
    let raw = String::from_utf8(c.raw).unwrap();
    assert!(header(&raw, "to").is_none());
    // Past the key checks (which keep attachments under 25 MiB), the
    // encoded size is checked again.
    let mut d = draft(vec![("to", list(&["a@example.com"]))]);
    d.attachments = vec![crate::send::message::Attachment {
        name: "big.bin".into(),
        mime: "application/octet-stream".into(),
        bytes: vec![0xAB; MAX_ATTACHMENT_BYTES + 6 * 1024 * 1024],
    }];
    let e = compose(&Compose {
        account: &account(),
        draft: &d,
        signature: None,
        parent: None,
        date: UNIX_EPOCH + DATE,
    })
    .unwrap_err();
    assert!(
        e.to_string().starts_with("attachments: the mail would be"),
        "{e}"
    );
}

#[test]
fn message_ids_are_unique_and_carry_the_account_domain() {
    let from: Address = "x@firma.example".parse().unwrap();
    let a = new_message_id(&from, UNIX_EPOCH + DATE).unwrap();
    let b = new_message_id(&from, UNIX_EPOCH + DATE).unwrap();
    assert_ne!(a, b);
    assert!(crate::send::thread::is_message_id(&a), "{a}");
    assert!(
        a.ends_with(&format!(".{}@firma.example>", DATE.as_secs())),
        "{a}"
    );
}
