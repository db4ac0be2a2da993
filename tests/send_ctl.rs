//! `postfachctl send`, `outbox` and `folders sync|show` against a real
//! daemon, Postfix and Dovecot.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod sendkit;

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use mail_parser::{MessageParser, MimeHeaders};
use zbus::Variant;

use common::fetch as fetchkit;
use common::{create_user, doveadm, Env};
use sendkit::{delivered, plain_port};

fn ok(out: &std::process::Output) -> String {
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctl_sends_from_stdin_with_an_attachment_and_shows_outbox_and_folders() {
    let env = Env::get();
    let from = create_user(env, "ctls");
    doveadm(env, &["mailbox", "create", "-u", &from.address, "Sent"]);
    let to = create_user(env, "ctlsto");
    let state = tempfile::tempdir().unwrap();
    let daemon = fetchkit::start(state.path());
    let conn = fetchkit::bus(&daemon).await;
    let mut s = fetchkit::settings(fetchkit::Proto::Imap, &from, &from.password, false, 0);
    s.insert("smtp_host", Variant::from("127.0.0.1"));
    s.insert("smtp_port", Variant::from(plain_port()));
    s.insert("smtp_encryption", Variant::from("none"));
    s.insert("smtp_login", Variant::from(false));
    let path = fetchkit::create(&conn, s).await;
    let id = path.as_str().rsplit('/').next().unwrap().to_string();

    let folders = ok(&daemon.ctl(&["folders", "sync", &id]));
    assert!(folders.contains("Sent\t(sent)"), "{folders}");
    assert!(folders.contains("INBOX"), "{folders}");
    let shown = ok(&daemon.ctl(&["folders", "show", &id]));
    assert_eq!(shown, folders);

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("preise.csv");
    std::fs::write(&file, "a;b\r\n1;2\r\n").unwrap();
    let mut child = daemon
        .ctl_command(&[
            "send",
            &id,
            "--to",
            &to.address,
            "--subject",
            "per postfachctl",
            "--attach",
            file.to_str().unwrap(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all("Grüße aus der Kommandozeile".as_bytes())
        .unwrap();
    let out = ok(&child.wait_with_output().unwrap());
    assert!(out.starts_with("queued as "), "{out}");

    let got = delivered(env, &to, 1).await.remove(0);
    let m = MessageParser::default().parse(got.as_slice()).unwrap();
    assert_eq!(m.subject(), Some("per postfachctl"));
    assert!(m
        .body_text(0)
        .unwrap()
        .contains("Grüße aus der Kommandozeile"));
    let csv = m.attachments().next().expect("the attachment");
    assert_eq!(csv.attachment_name(), Some("preise.csv"));
    assert_eq!(csv.contents(), b"a;b\r\n1;2\r\n");

    common::eventually("outbox shows sent", Duration::from_secs(60), || async {
        ok(&daemon.ctl(&["outbox"])).contains("sent")
    })
    .await;
    let table = ok(&daemon.ctl(&["outbox"]));
    assert!(table.contains("per postfachctl"), "{table}");

    // A refusal queues nothing and says which key.
    let out = daemon.ctl(&[
        "send",
        &id,
        "--subject",
        "an niemand",
        "--body",
        "/dev/null",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("InvalidArgument") && err.contains("to"),
        "{err}"
    );
}
