//! Sending through the real Postfix → LMTP → Dovecot of the test
//! environment: every SMTP encryption with login on and off, a full mail
//! (signature picture, attachments, non-ASCII headers, threading) read
//! back from the recipients' maildirs, and the TLS rules (pins, required
//! STARTTLS).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod sendkit;

use mail_parser::{MessageParser, MimeHeaders};
use postfach::account::{Encryption, SettingValue};
use postfach::net::TlsContext;
use postfach::send::message::MessageValue;
use postfach::send::{deliver, queue_mail, Outcome, Transport};
use postfach::signature::{Employee, Signature};
use postfach::store::{NewMail, OutboxState};

use common::{create_user, scripted, Env};
use sendkit::{
    assert_same_mail, client_line, delivered, draft, list, plain_port, queue_id, s, sender, simple,
    Kit,
};

fn sent_reply(o: Outcome) -> String {
    match o {
        Outcome::Sent(reply) => reply,
        other => panic!("not sent: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_encryption_with_login_on_and_off_delivers() {
    let env = Env::get();
    let kit = Kit::new(env);
    let from = create_user(env, "sender");
    let to = create_user(env, "rcpt");
    let cases = [
        (Encryption::Tls, env.smtps_port, true),
        (Encryption::Starttls, env.smtp_port, true),
        (Encryption::None, plain_port(), true),
        (Encryption::None, plain_port(), false),
        (Encryption::Starttls, plain_port(), false),
    ];
    for (i, (enc, port, login)) in cases.into_iter().enumerate() {
        let a = kit.account(&from, enc, port, login, &[]);
        let subject = format!("case {i}: {} login {login}", enc.as_str());
        let id = queue_mail(&kit.store, &a, &sender(), simple(&to.address, &subject))
            .await
            .unwrap();
        let reply = sent_reply(deliver(&kit.store, &kit.transport, id).await.unwrap());
        assert!(reply.starts_with("250 "), "{reply}");
        let rec = kit.store.outbox_record(id).unwrap().unwrap();
        assert_eq!(
            (rec.state, rec.attempts, rec.error.as_str()),
            (OutboxState::Sent, 1, "")
        );
        // Postfix logs how the client logged in, per queued mail.
        let line = client_line(&queue_id(&reply));
        let sasl = format!("sasl_username={}", from.address);
        assert_eq!(line.contains(&sasl), login, "{subject}: {line}");
    }
    let mails = delivered(env, &to, cases.len()).await;
    for i in 0..cases.len() {
        let n = mails
            .iter()
            .filter(|m| {
                let m = MessageParser::default().parse(m.as_slice()).unwrap();
                m.subject().unwrap().starts_with(&format!("case {i}:"))
            })
            .count();
        assert_eq!(n, 1, "case {i} arrived once");
    }
}

/// A PNG of `w`×`h`.
fn png(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x * 4) as u8, (y * 8) as u8, 90]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_mail_arrives_as_composed() {
    let env = Env::get();
    let kit = Kit::new(env);
    let from = create_user(env, "sender");
    let (to, cc, bcc) = (
        create_user(env, "to"),
        create_user(env, "cc"),
        create_user(env, "bcc"),
    );
    let a = kit.account(&from, Encryption::Starttls, env.smtp_port, true, &[]);
    let sig = Signature::new(
        "@Vorname@ @Nachname@\n@Position@",
        "<p>@Vorname@ @Nachname@<br>@Position@</p>@Bild(0,30,15)@",
    )
    .unwrap();
    kit.store.set_signature("t1", "mm", &sig).unwrap();
    let f = |k: &str, v: &str| (k.to_string(), SettingValue::Str(v.to_string()));
    let employee = Employee::new(
        &[
            f("Vorname", "Jürgen"),
            f("Nachname", "Groß"),
            f("Position", "Vertrieb & Service"),
        ],
        vec![("image/png".into(), png(60, 30))],
    )
    .unwrap();
    kit.store.set_employee("t1", "mm", &employee).unwrap();
    // The mail answered: stored as fetched, with a thread of its own.
    let parent = b"From: kunde@example.com\r\nSubject: Anfrage\r\n\
        Message-ID: <p2@kunde.example>\r\nReferences: <p1@kunde.example>\r\n\r\nHallo\r\n";
    let parent_id = kit
        .store
        .commit_batch(
            &a,
            vec![NewMail {
                server_id: "imap:INBOX:1:1".into(),
                raw: parent.to_vec().into(),
                received: 1_767_225_600,
            }],
            &postfach::mime::summarize,
        )
        .unwrap()[0];
    let pdf: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let to_line = format!("Jörg Kunde <{}>", to.address);
    let d = draft(vec![
        ("to", list(&[&to_line])),
        ("cc", list(&[&cc.address])),
        ("bcc", list(&[&bcc.address])),
        ("subject", s("Angebot für Größe XL – Ihre Anfrage")),
        ("text", s("Guten Tag Herr Kunde,\n\nanbei das Angebot.")),
        (
            "html",
            s("<html><body><p>Guten Tag Herr Kunde,</p><p>anbei das Angebot.</p></body></html>"),
        ),
        (
            "attachments",
            MessageValue::Attachments(vec![
                (
                    "Preisübersicht März.pdf".into(),
                    "application/pdf".into(),
                    pdf.clone(),
                ),
                (
                    "daten.csv".into(),
                    "text/csv".into(),
                    b"a;b\r\n1;2\r\n".to_vec(),
                ),
            ]),
        ),
        ("in_reply_to", s(&parent_id.to_string())),
    ]);
    let id = queue_mail(&kit.store, &a, &sender(), d).await.unwrap();
    let raw = kit.store.raw(id).unwrap().unwrap();
    assert!(
        !String::from_utf8_lossy(&raw).contains(&bcc.address),
        "bcc is in no header"
    );
    sent_reply(deliver(&kit.store, &kit.transport, id).await.unwrap());

    for user in [&to, &cc, &bcc] {
        let got = delivered(env, user, 1).await;
        assert_eq!(got.len(), 1, "{} got one mail", user.address);
        assert_same_mail(&got[0], &raw);
    }
    let got = delivered(env, &to, 1).await.remove(0);
    let m = MessageParser::default().parse(got.as_slice()).unwrap();
    assert_eq!(m.subject(), Some("Angebot für Größe XL – Ihre Anfrage"));
    let sender_box = m.from().unwrap().first().unwrap();
    assert_eq!(sender_box.name(), Some("Vertrieb Müller & Söhne"));
    assert_eq!(sender_box.address(), Some(from.address.as_str()));
    assert_eq!(m.to().unwrap().first().unwrap().name(), Some("Jörg Kunde"));
    assert_eq!(m.in_reply_to().as_text(), Some("p2@kunde.example"));
    let refs: Vec<&str> = m
        .references()
        .as_text_list()
        .unwrap()
        .iter()
        .map(|r| r.as_ref())
        .collect();
    assert_eq!(refs, ["p1@kunde.example", "p2@kunde.example"]);
    let text = m.body_text(0).unwrap().replace("\r\n", "\n");
    assert!(
        text.trim_end()
            .ends_with("anbei das Angebot.\n\n-- \nJürgen Groß\nVertrieb & Service"),
        "{text:?}"
    );
    let html = m.body_html(0).unwrap();
    assert!(
        html.contains("<p>Jürgen Groß<br>Vertrieb &amp; Service</p>"),
        "{html}"
    );
    let picture = m
        .parts
        .iter()
        .find(|p| p.content_type().is_some_and(|c| c.ctype() == "image"))
        .expect("the signature picture");
    assert!(html.contains(&format!("cid:{}", picture.content_id().unwrap())));
    let img = image::load_from_memory(picture.contents()).unwrap();
    assert_eq!(
        (img.width(), img.height()),
        (30, 15),
        "scaled as the template says"
    );
    let files: Vec<(String, Vec<u8>)> = m
        .parts
        .iter()
        .filter(|p| p.content_disposition().is_some_and(|d| d.is_attachment()))
        .map(|p| {
            (
                p.attachment_name().unwrap().to_string(),
                p.contents().to_vec(),
            )
        })
        .collect();
    let expected = [
        ("Preisübersicht März.pdf".to_string(), pdf),
        ("daten.csv".to_string(), b"a;b\r\n1;2\r\n".to_vec()),
    ];
    assert_eq!(files.len(), expected.len());
    for ((name, got), (want_name, want)) in files.iter().zip(&expected) {
        assert_eq!(name, want_name);
        let differs = got.iter().zip(want).position(|(a, b)| a != b);
        assert!(
            got.len() == want.len() && differs.is_none(),
            "{name}: {} bytes arrived of {}, first difference at {differs:?}",
            got.len(),
            want.len()
        );
    }
    // The outbox lists it decoded, as sent.
    let meta = kit.store.message(id).unwrap().unwrap();
    assert_eq!(
        (meta.folder.as_str(), meta.subject.as_str()),
        ("outbox", "Angebot für Größe XL – Ihre Anfrage")
    );
    assert!(meta.has_attachments);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_accounts_pin_decides_trust_for_smtp_too() {
    let env = Env::get();
    let mut kit = Kit::new(env);
    // Trust an unrelated CA only: without the pin the run's server fails.
    kit.transport = Transport {
        tls: TlsContext::from_pem(include_bytes!("../src/net/testdata/ca.pem")).unwrap(),
        timeouts: kit.transport.timeouts,
        office365: None,
    };
    let from = create_user(env, "sender");
    let to = create_user(env, "rcpt");
    let pinned = [("tls_pin", SettingValue::Str(env.pin.clone()))];
    let a = kit.account(&from, Encryption::Tls, env.smtps_port, true, &pinned);
    let id = queue_mail(&kit.store, &a, &sender(), simple(&to.address, "pinned"))
        .await
        .unwrap();
    sent_reply(deliver(&kit.store, &kit.transport, id).await.unwrap());
    delivered(env, &to, 1).await;

    let unpinned = kit.account(&from, Encryption::Starttls, env.smtp_port, true, &[]);
    let id = queue_mail(&kit.store, &unpinned, &sender(), simple(&to.address, "x"))
        .await
        .unwrap();
    match deliver(&kit.store, &kit.transport, id).await.unwrap() {
        Outcome::Retry(_, e) => assert!(e.contains("certificate"), "{e}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_is_required_and_no_password_goes_out_in_clear() {
    let env = Env::get();
    let kit = Kit::new(env);
    // A server that does not offer STARTTLS, but offers AUTH in clear.
    let (ended, end) = std::sync::mpsc::channel();
    let ended = std::sync::Mutex::new(ended);
    let (port, heard) = scripted::listen(move |mut c| {
        c.send(b"220 fake ESMTP\r\n");
        while let Some(line) = c.line() {
            let answer: &[u8] = if line.starts_with("EHLO") {
                b"250-fake\r\n250 AUTH PLAIN LOGIN\r\n"
            } else {
                b"502 no\r\n"
            };
            if !c.send(answer) {
                break;
            }
        }
        let _ = ended.lock().unwrap().send(());
    });
    let from = create_user(env, "sender");
    let a = kit.account(&from, Encryption::Starttls, port, true, &[]);
    let id = queue_mail(&kit.store, &a, &sender(), simple("x@example.com", "x"))
        .await
        .unwrap();
    match deliver(&kit.store, &kit.transport, id).await.unwrap() {
        Outcome::Retry(_, e) => assert!(e.contains("does not offer STARTTLS"), "{e}"),
        other => panic!("{other:?}"),
    }
    // Everything the client said, once it has closed the connection.
    end.recv_timeout(std::time::Duration::from_secs(30))
        .expect("the client closes");
    let heard = heard.lock().unwrap().clone();
    assert_eq!(heard.len(), 1, "only EHLO: {heard:?}");
    assert!(
        heard[0].starts_with("EHLO ["),
        "an address literal: {heard:?}"
    );
}

/// A server on loopback that greets with `line` again and again, a
/// `pause` apart, for as long as the client listens.
fn endless_greeting(line: &'static [u8], pause: std::time::Duration) -> u16 {
    let (port, _) = scripted::listen(move |mut c| {
        while c.send(line) {
            std::thread::sleep(pause);
        }
    });
    port
}

/// One delivery to a hostile server: it must end (the guard only turns a
/// hang into a failure) and keep the mail queued.
async fn deliver_to_hostile(port: u16, read: std::time::Duration) -> String {
    let env = Env::get();
    let mut kit = Kit::new(env);
    kit.transport.timeouts.read = read;
    let from = create_user(env, "sender");
    let a = kit.account(&from, Encryption::None, port, false, &[]);
    let id = queue_mail(&kit.store, &a, &sender(), simple("x@example.com", "x"))
        .await
        .unwrap();
    let guard = std::time::Duration::from_secs(60);
    let outcome = tokio::time::timeout(guard, deliver(&kit.store, &kit.transport, id))
        .await
        .expect("the delivery must end")
        .unwrap();
    let Outcome::Retry(_, e) = outcome else {
        panic!("not retried: {outcome:?}")
    };
    e
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_reply_ends_the_session() {
    // Lines of 100 bytes: under lettre's line limit, never a complete reply.
    let port = endless_greeting(
        b"220-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n",
        std::time::Duration::ZERO,
    );
    let e = deliver_to_hostile(port, std::time::Duration::from_secs(60)).await;
    assert!(e.contains("SMTP response too large"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dripping_reply_times_out_as_a_whole() {
    // Every line comes well within the read timeout; the reply never ends.
    let port = endless_greeting(b"220-a\r\n", std::time::Duration::from_millis(100));
    let e = deliver_to_hostile(port, std::time::Duration::from_secs(2)).await;
    assert!(e.contains("no complete answer from the SMTP server"), "{e}");
}
