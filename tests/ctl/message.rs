//! postfachctl's one-mail commands against a real postfachd and mail
//! fetched from the run's Dovecot: `show`, `assign`, `unassign`, `read`,
//! `delete` (with the Trash move on the server), and the empty `outbox`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use base64::Engine;
use serde_json::Value;

use super::common::{self, Daemon, Env, MailUser};
use super::mail::{add_imap, daemon_with_ca};
use super::{ok, stderr, stdout};

/// The attachment's bytes: binary, so a wrong decoding changes its size.
fn pdf() -> Vec<u8> {
    let mut b = b"%PDF-1.4\n".to_vec();
    b.extend((0..=255u8).cycle().take(3000));
    b
}

/// A mail with a text part and a PDF, one with only HTML, one plain.
fn mails(user: &MailUser) -> Vec<Vec<u8>> {
    let head = |n: u32, subject: &str, ctype: &str| {
        format!(
            "From: Kunde {n} <kunde{n}@example.test>\r\nTo: {}\r\nCc: chef@example.test\r\n\
             Subject: {subject}\r\nDate: Fri, 27 Nov 2026 1{n}:00:00 +0100\r\n\
             Message-ID: <{n}.{}@example.test>\r\nMIME-Version: 1.0\r\nContent-Type: {ctype}\r\n\r\n",
            user.address, user.name
        )
    };
    let b64 = base64::engine::general_purpose::STANDARD.encode(pdf());
    let wrapped: Vec<&str> = b64
        .as_bytes()
        .chunks(76)
        .map(|c| std::str::from_utf8(c).unwrap_or_default())
        .collect();
    let with_pdf = format!(
        "{}--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         Anbei das Angebot.\r\nGr\u{fc}\u{df}e\r\n--b1\r\n\
         Content-Type: application/pdf; name=\"angebot.pdf\"\r\n\
         Content-Disposition: attachment; filename=\"angebot.pdf\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{}\r\n--b1--\r\n",
        head(1, "Angebot mit Anlage", "multipart/mixed; boundary=\"b1\""),
        wrapped.join("\r\n")
    );
    let html = format!(
        "{}<html><head><style>div{{color:red}}</style></head><body>\
         <div>Hallo&nbsp;Welt</div><div>Zweite <b>Zeile</b></div></body></html>\r\n",
        head(2, "Newsletter", "text/html; charset=utf-8")
    );
    let plain = format!(
        "{}Bitte zahlen.\r\n",
        head(3, "Rechnung 4711", "text/plain; charset=utf-8")
    );
    vec![with_pdf.into_bytes(), html.into_bytes(), plain.into_bytes()]
}

/// A daemon with the three mails fetched; (state, daemon, account, user).
fn fetched(prefix: &str) -> (tempfile::TempDir, Daemon, String, MailUser) {
    let env = Env::get();
    let user = common::create_user(env, prefix);
    for m in mails(&user) {
        common::drop_raw(env, &user, &m);
    }
    let (state, d) = daemon_with_ca();
    let account = add_imap(&d, &user, &user.password);
    assert_eq!(ok(d.ctl(&["fetch", &account])), "3 new messages\n");
    (state, d, account, user)
}

/// The id of the listed mail with `subject`.
fn id_of(d: &Daemon, subject: &str) -> String {
    let v: Value = serde_json::from_str(&ok(d.ctl(&["--json", "inbox"]))).expect("JSON");
    v["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .find(|m| m["subject"] == subject)
        .and_then(|m| m["id"].as_u64())
        .unwrap_or_else(|| panic!("{subject} not listed: {v}"))
        .to_string()
}

/// The FLAGS column of `id`'s row in `inbox ARGS`, None when not listed.
fn flags(d: &Daemon, args: &[&str], id: &str) -> Option<String> {
    let mut a = vec!["inbox"];
    a.extend_from_slice(args);
    let table = ok(d.ctl(&a));
    table
        .lines()
        .find(|l| l.split_whitespace().next() == Some(id))
        .and_then(|l| l.split_whitespace().last())
        .map(str::to_string)
}

/// The value of `label` in `show` output.
fn header<'a>(show: &'a str, label: &str) -> &'a str {
    show.lines()
        .find_map(|l| l.strip_prefix(label))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {label} in:\n{show}"))
}

fn assert_not_found(o: &std::process::Output) {
    assert_eq!(o.status.code(), Some(1), "{}", stderr(o));
    let err = stderr(o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("postfachctl: NotFound: "), "{err}");
    assert!(stdout(o).is_empty(), "{}", stdout(o));
}

#[test]
fn show_prints_headers_body_and_attachments() {
    let (_state, d, account, user) = fetched("ctlshow");
    let id = id_of(&d, "Angebot mit Anlage");

    let show = ok(d.ctl(&["show", &id]));
    assert_eq!(header(&show, "ID:"), id);
    assert_eq!(header(&show, "Subject:"), "Angebot mit Anlage");
    assert_eq!(header(&show, "From:"), "Kunde 1 <kunde1@example.test>");
    assert_eq!(header(&show, "To:"), user.address);
    assert_eq!(header(&show, "Cc:"), "chef@example.test");
    assert!(header(&show, "Account:").ends_with(&format!("({account})")));
    assert_eq!(header(&show, "Contact:"), "(none)");
    assert_eq!(header(&show, "Flags:"), "--- (unread)");
    assert!(header(&show, "Date:").starts_with("2026-11-27"), "{show}");
    assert!(show.contains("\n\nAnbei das Angebot.\nGrüße\n\n"), "{show}");
    assert!(show.contains("Attachments (1):"), "{show}");
    let row = show
        .lines()
        .find(|l| l.contains("angebot.pdf"))
        .unwrap_or_else(|| panic!("no attachment row:\n{show}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells, ["angebot.pdf", "application/pdf", "2.9K"], "{show}");
    assert!(!show.contains("JVBER"), "base64 printed:\n{show}");

    // --json: the daemon's dict, the attachment with its decoded size.
    let j: Value = serde_json::from_str(&ok(d.ctl(&["--json", "show", &id]))).expect("JSON");
    assert_eq!(j["subject"], "Angebot mit Anlage");
    assert_eq!(j["id"].as_u64().map(|n| n.to_string()), Some(id.clone()));
    assert_eq!(
        j["attachments"],
        serde_json::json!([["angebot.pdf", "application/pdf", pdf().len()]])
    );
    assert!(j["text"]
        .as_str()
        .is_some_and(|t| t.contains("Anbei das Angebot.")));

    // HTML only: the tags removed, and it says so.
    let html = ok(d.ctl(&["show", &id_of(&d, "Newsletter")]));
    assert!(
        html.contains(
            "[no text part; the HTML part with its tags removed]\nHallo Welt\nZweite Zeile\n"
        ),
        "{html}"
    );
    assert!(
        !html.contains("<div>") && !html.contains("color:red"),
        "{html}"
    );
    assert!(html.ends_with("Attachments: none\n"), "{html}");
    // A plain mail does not claim to be HTML.
    let plain = ok(d.ctl(&["show", &id_of(&d, "Rechnung 4711")]));
    assert!(
        plain.contains("\nBitte zahlen.\n") && !plain.contains("[no text part"),
        "{plain}"
    );

    // A missing id, and a private mail shown to another user: NotFound.
    assert_not_found(&d.ctl(&["show", "999999"]));
    ok(d.ctl(&["account", "set", &account, "--private-owner", "anna"]));
    assert_not_found(&d.ctl(&["show", &id, "--user", "bob"]));
    let as_anna = ok(d.ctl(&["show", &id, "--user", "anna"]));
    assert!(header(&as_anna, "Flags:").starts_with("--P"), "{as_anna}");
}

#[test]
fn assign_read_and_delete_change_the_inbox() {
    let env = Env::get();
    let (_state, d, account, user) = fetched("ctlchg");
    let id = id_of(&d, "Rechnung 4711");
    let other = id_of(&d, "Newsletter");
    assert_eq!(flags(&d, &[], &id).as_deref(), Some("---"));

    // assign: gone from --unassigned, flagged A, shown as the contact.
    assert_eq!(
        ok(d.ctl(&["assign", &id, "K-10042"])),
        format!("assigned {id} to contact K-10042\n")
    );
    assert_eq!(flags(&d, &[], &id).as_deref(), Some("-A-"));
    assert_eq!(flags(&d, &["--unassigned"], &id), None);
    assert_eq!(flags(&d, &["--unassigned"], &other).as_deref(), Some("---"));
    assert_eq!(header(&ok(d.ctl(&["show", &id])), "Contact:"), "K-10042");
    // The daemon's check of the contact reaches the admin as one line.
    let o = d.ctl(&["assign", &id, ""]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with("postfachctl: InvalidArgument: ") && stderr(&o).contains("contact"),
        "{}",
        stderr(&o)
    );

    // unassign reverses it.
    assert_eq!(ok(d.ctl(&["unassign", &id])), format!("unassigned {id}\n"));
    assert_eq!(flags(&d, &["--unassigned"], &id).as_deref(), Some("---"));

    // read / --unread flip R, and the --read filter follows.
    assert_eq!(ok(d.ctl(&["read", &id])), format!("marked {id} read\n"));
    assert_eq!(flags(&d, &[], &id).as_deref(), Some("R--"));
    assert_eq!(flags(&d, &["--read"], &id).as_deref(), Some("R--"));
    assert_eq!(flags(&d, &["--read"], &other), None);
    let j: Value =
        serde_json::from_str(&ok(d.ctl(&["--json", "read", &id, "--unread"]))).expect("JSON");
    assert_eq!(j["result"], "unread");
    assert_eq!(flags(&d, &[], &id).as_deref(), Some("---"));

    // A Trash folder no folder sync listed is refused.
    let o = d.ctl(&["account", "set", &account, "--trash-folder", "Trash"]);
    assert!(
        stderr(&o).starts_with("postfachctl: FolderUnknown: "),
        "{}",
        stderr(&o)
    );
    // delete with a Trash folder the server no longer has: the daemon's
    // error, and the mail stays.
    let trash = ["mailbox", "create", "-u", &user.address, "Trash"];
    common::doveadm(env, &trash);
    ok(d.ctl(&["folders", "sync", &account]));
    ok(d.ctl(&["account", "set", &account, "--trash-folder", "Trash"]));
    common::doveadm(env, &["mailbox", "delete", "-u", &user.address, "Trash"]);
    let o = d.ctl(&["delete", &id]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(
        stderr(&o).starts_with("postfachctl: FolderUnknown: "),
        "{}",
        stderr(&o)
    );
    assert!(flags(&d, &[], &id).is_some());

    // With the folder: moved there on the server, gone from the inbox.
    common::doveadm(env, &trash);
    assert_eq!(ok(d.ctl(&["delete", &id])), format!("deleted {id}\n"));
    let inbox = ok(d.ctl(&["inbox"]));
    assert_eq!(flags(&d, &[], &id), None, "{inbox}");
    assert!(inbox.ends_with("shown 2 of 2\n"), "{inbox}");
    let trash = common::doveadm(
        env,
        &[
            "mailbox",
            "status",
            "-u",
            &user.address,
            "messages",
            "Trash",
        ],
    );
    let in_trash = trash
        .split_whitespace()
        .find_map(|w| w.strip_prefix("messages="));
    assert_eq!(in_trash, Some("1"), "{trash}");
    assert_not_found(&d.ctl(&["show", &id]));
    assert_not_found(&d.ctl(&["delete", &id]));
    assert_not_found(&d.ctl(&["read", &id]));
}

#[test]
fn outbox_is_an_empty_table_until_sending_lands() {
    let (_state, d, _account, _user) = fetched("ctlout");
    let out = ok(d.ctl(&["outbox"]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    let columns: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(
        columns,
        ["ID", "DATE", "TO", "SUBJECT", "SIZE", "STATE", "ERROR"]
    );
    assert_eq!(lines[1], "shown 0 of 0");
    // The received mail is not in the outbox, whatever the filters.
    assert!(ok(d.ctl(&["outbox", "--unread", "--text", "Rechnung"])).ends_with("shown 0 of 0\n"));
    let j: Value = serde_json::from_str(&ok(d.ctl(&["--json", "outbox"]))).expect("JSON");
    assert_eq!(j["total"], 0);
    assert_eq!(j["messages"], serde_json::json!([]));
}
