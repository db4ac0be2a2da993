//! SendMessage over D-Bus through a real daemon, Postfix → LMTP → Dovecot:
//! the account's task delivers, retries on its own, resumes after a
//! restart, saves the Sent copy on the IMAP server, and who may send from
//! a private account.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod sendkit;

use std::collections::HashMap;
use std::time::Duration;

use futures::StreamExt;
use mail_parser::{MessageParser, MimeHeaders};
use postfach::dbus::proxy::{Dict, MailboxProxy, SignaturesProxy};
use zbus::{OwnedObjectPath, Variant};

use common::fetch as fetchkit;
use common::{create_user, doveadm, Env, MailUser};
use fetchkit::{error_name, get};
use sendkit::{delivered, plain_port, Proxy, Relay};

const NOT_FOUND: &str = "org.postfach.Postfach1.Error.NotFound";

/// A daemon and an IMAP account of `from` sending through 127.0.0.1:`port`
/// (no TLS, no login) with `extra` settings.
struct Setup {
    _state: tempfile::TempDir,
    daemon: common::Daemon,
    conn: zbus::Connection,
    path: OwnedObjectPath,
    from: MailUser,
}

async fn setup(prefix: &str, port: u16, extra: &[(&'static str, Variant<'static>)]) -> Setup {
    let env = Env::get();
    let from = create_user(env, prefix);
    let state = tempfile::tempdir().unwrap();
    let daemon = fetchkit::start(state.path());
    let conn = fetchkit::bus(&daemon).await;
    let mut s = fetchkit::settings(fetchkit::Proto::Imap, &from, &from.password, false, 0);
    s.insert("smtp_host", Variant::from("127.0.0.1"));
    s.insert("smtp_port", Variant::from(port));
    s.insert("smtp_encryption", Variant::from("none"));
    s.insert("smtp_login", Variant::from(false));
    for (k, v) in extra {
        s.insert(k, v.clone());
    }
    let path = fetchkit::create(&conn, s).await;
    Setup {
        _state: state,
        daemon,
        conn,
        path,
        from,
    }
}

fn mail(to: &str, subject: &str, signature: bool) -> HashMap<&'static str, Variant<'static>> {
    let mut m = HashMap::new();
    m.insert("to", Variant::from(vec![to.to_string()]));
    m.insert("subject", Variant::from(subject.to_string()));
    m.insert("text", Variant::from("Guten Tag".to_string()));
    m.insert("signature", Variant::from(signature));
    m
}

/// The outbox mail `id` as `user` lists it.
async fn outbox_entry(mb: &MailboxProxy<'_>, user: &str, id: u64) -> Option<Dict> {
    let mut f = HashMap::new();
    f.insert("folder", Variant::from("outbox"));
    let (page, _) = mb.list_messages(user, f, 0, 1000).await.unwrap();
    page.into_iter().find(|d| get::<u64>(d, "id") == id)
}

/// Waits (up to `limit`) until outbox mail `id` is in `state`; its dict.
async fn until_state(mb: &MailboxProxy<'_>, id: u64, state: &str, limit: Duration) -> Dict {
    let start = std::time::Instant::now();
    loop {
        let d = outbox_entry(mb, "", id)
            .await
            .expect("listed in the outbox");
        if get::<String>(&d, "state") == state {
            return d;
        }
        assert!(
            start.elapsed() < limit,
            "mail {id} still {:?} ({:?}), not {state}",
            get::<String>(&d, "state"),
            get::<String>(&d, "error")
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Messages in `folder` of `user` whose subject is `subject`, with their
/// flags (doveadm fetch).
fn folder_flags(env: &Env, user: &MailUser, folder: &str, subject: &str) -> Vec<String> {
    let out = doveadm(
        env,
        &[
            "fetch",
            "-u",
            &user.address,
            "flags",
            "mailbox",
            folder,
            "subject",
            subject,
        ],
    );
    out.lines()
        .filter_map(|l| l.strip_prefix("flags:"))
        .map(|f| f.trim().to_string())
        .collect()
}

fn png(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, _| image::Rgb([(x * 4) as u8, 20, 90]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_message_is_delivered_with_signature_and_one_seen_sent_copy() {
    let env = Env::get();
    let sent = ("sent_folder", Variant::from("Sent"));
    let copy = ("save_sent_copy", Variant::from(true));
    let s = setup("sd", plain_port(), &[sent, copy]).await;
    doveadm(env, &["mailbox", "create", "-u", &s.from.address, "Sent"]);
    let to = create_user(env, "sdto");
    let sig = SignaturesProxy::new(&s.conn).await.unwrap();
    let mut fields = HashMap::new();
    fields.insert("Vorname", Variant::from("Jürgen"));
    sig.set_employee("mandant1", "mm", fields, &[("image/png", &png(60, 30))])
        .await
        .unwrap();
    sig.set_signature(
        "mandant1",
        "",
        "Gruß @Vorname@",
        "<p>Gruß @Vorname@</p>@Bild(0,30,15)@",
    )
    .await
    .unwrap();
    let mb = fetchkit::mailbox(&s.conn).await;
    let mut added = mb.receive_messages_added().await.unwrap();
    let mut m = mail(&to.address, "Angebot über D-Bus", true);
    m.insert("html", Variant::from("<p>Guten Tag</p>".to_string()));
    let id = mb.send_message("mm", &s.path, m).await.unwrap();
    let sig = tokio::time::timeout(Duration::from_secs(20), added.next())
        .await
        .expect("MessagesAdded")
        .unwrap();
    assert_eq!(sig.args().unwrap().ids, vec![id], "ids only");

    let got = delivered(env, &to, 1).await.remove(0);
    let parsed = MessageParser::default().parse(got.as_slice()).unwrap();
    assert_eq!(parsed.subject(), Some("Angebot über D-Bus"));
    let text = parsed.body_text(0).unwrap().replace("\r\n", "\n");
    assert!(text.trim_end().ends_with("-- \nGruß Jürgen"), "{text:?}");
    let html = parsed.body_html(0).unwrap();
    let picture = parsed
        .parts
        .iter()
        .find(|p| p.content_type().is_some_and(|c| c.ctype() == "image"))
        .expect("the signature picture is a part");
    let cid = picture.content_id().expect("inline, with a Content-ID");
    assert!(html.contains(&format!("cid:{cid}")), "{html}");
    let img = image::load_from_memory(picture.contents()).unwrap();
    assert_eq!((img.width(), img.height()), (30, 15), "scaled");

    let d = until_state(&mb, id, "sent", Duration::from_secs(60)).await;
    assert_eq!(get::<String>(&d, "error"), "");
    // The copy is APPENDed right after the 250: wait for it, then check
    // it stays one.
    common::eventually("the Sent copy", Duration::from_secs(30), || async {
        !folder_flags(env, &s.from, "Sent", "Angebot über D-Bus").is_empty()
    })
    .await;
    let flags = folder_flags(env, &s.from, "Sent", "Angebot über D-Bus");
    assert_eq!(flags.len(), 1, "exactly one Sent copy: {flags:?}");
    assert!(flags[0].contains("\\Seen"), "{flags:?}");
    drop(s.daemon);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_sent_copy_leaves_the_mail_sent_with_an_error() {
    let env = Env::get();
    let sent = ("sent_folder", Variant::from("Gesendet"));
    let copy = ("save_sent_copy", Variant::from(true));
    let s = setup("sdnf", plain_port(), &[sent, copy]).await;
    let to = create_user(env, "sdnfto");
    let mb = fetchkit::mailbox(&s.conn).await;
    let id = mb
        .send_message("", &s.path, mail(&to.address, "ohne Sent", false))
        .await
        .unwrap();
    delivered(env, &to, 1).await;
    let start = std::time::Instant::now();
    let error = loop {
        let d = until_state(&mb, id, "sent", Duration::from_secs(60)).await;
        let e = get::<String>(&d, "error");
        if !e.is_empty() {
            break e;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no error recorded"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(error.contains("Gesendet"), "{error}");
    assert!(!error.contains(&s.from.password), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_down_stays_queued_and_the_task_delivers_once_it_is_up() {
    let env = Env::get();
    let mut relay = Proxy::reserve(plain_port()).await;
    let s = setup("sddown", relay.port, &[]).await;
    let to = create_user(env, "sddownto");
    let mb = fetchkit::mailbox(&s.conn).await;
    let mut changed = mb.receive_messages_changed().await.unwrap();
    let id = mb
        .send_message("", &s.path, mail(&to.address, "später", false))
        .await
        .unwrap();
    // The first attempt fails and puts it back in the queue.
    let first = tokio::time::timeout(Duration::from_secs(30), changed.next())
        .await
        .expect("MessagesChanged")
        .unwrap();
    assert_eq!(first.args().unwrap().ids, vec![id]);
    let d = until_state(&mb, id, "queued", Duration::from_secs(30)).await;
    assert!(!get::<String>(&d, "error").is_empty(), "says why");
    relay.up(Relay::Pass).await;
    // No new SendMessage: the task's retry timer delivers it.
    until_state(&mb, id, "sent", Duration::from_secs(120)).await;
    let got = delivered(env, &to, 1).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(delivered(env, &to, 1).await.len(), 1, "delivered once");
    assert_eq!(got.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_5xx_fails_the_mail_with_the_servers_text() {
    let env = Env::get();
    let s = setup("sd5", plain_port(), &[]).await;
    let mb = fetchkit::mailbox(&s.conn).await;
    let rejected = format!("rejected@{}", env.domain);
    let id = mb
        .send_message("", &s.path, mail(&rejected, "abgelehnt", false))
        .await
        .unwrap();
    let d = until_state(&mb, id, "failed", Duration::from_secs(60)).await;
    let error = get::<String>(&d, "error");
    assert!(error.contains("550"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_while_queued_resumes_the_queue() {
    let env = Env::get();
    let mut relay = Proxy::reserve(plain_port()).await;
    let mut s = setup("sdrs", relay.port, &[]).await;
    let to = create_user(env, "sdrsto");
    let mb = fetchkit::mailbox(&s.conn).await;
    let id = mb
        .send_message("", &s.path, mail(&to.address, "nach Neustart", false))
        .await
        .unwrap();
    let d = until_state(&mb, id, "queued", Duration::from_secs(30)).await;
    common::eventually("a failed first attempt", Duration::from_secs(30), || {
        let mb = &mb;
        async move {
            let d = outbox_entry(mb, "", id).await.unwrap();
            !get::<String>(&d, "error").is_empty()
        }
    })
    .await;
    drop(d);
    s.daemon.stop();
    relay.up(Relay::Pass).await;
    s.daemon.restart();
    let conn = fetchkit::bus(&s.daemon).await;
    let mb = fetchkit::mailbox(&conn).await;
    until_state(&mb, id, "sent", Duration::from_secs(120)).await;
    assert_eq!(delivered(env, &to, 1).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_account_sends_only_for_its_owner() {
    let env = Env::get();
    let owner = ("private_owner", Variant::from("alice"));
    let s = setup("sdpv", plain_port(), &[owner]).await;
    let to = create_user(env, "sdpvto");
    let mb = fetchkit::mailbox(&s.conn).await;
    let err = mb
        .send_message("bob", &s.path, mail(&to.address, "nicht von Bob", false))
        .await
        .unwrap_err();
    assert_eq!(error_name(&err), NOT_FOUND, "{err}");
    let (outbox, total) = {
        let mut f = HashMap::new();
        f.insert("folder", Variant::from("outbox"));
        mb.list_messages("", f, 0, 100).await.unwrap()
    };
    assert_eq!((outbox.len(), total), (0, 0), "nothing queued");
    // A bad key is refused before anything is queued, naming the key.
    let mut bad = mail(&to.address, "x", false);
    bad.insert("colour", Variant::from("blau"));
    let err = mb.send_message("alice", &s.path, bad).await.unwrap_err();
    assert!(err.to_string().contains("colour"), "{err}");
    let id = mb
        .send_message("alice", &s.path, mail(&to.address, "von Alice", false))
        .await
        .unwrap();
    assert!(
        outbox_entry(&mb, "bob", id).await.is_none(),
        "hidden from bob"
    );
    until_state(&mb, id, "sent", Duration::from_secs(60)).await;
    assert_eq!(delivered(env, &to, 1).await.len(), 1);
}
