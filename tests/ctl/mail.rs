//! postfachctl's mail commands against a real postfachd and the run's
//! Dovecot: `account test` (saved and unsaved settings), `fetch`, `inbox`
//! and `raw`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use serde_json::Value;

use super::common::{self, Daemon, Env, MailUser};
use super::{ctl_stdin, ok, stderr, stdout};

/// A daemon that trusts the run's CA (the servers' certificates chain to it).
pub(super) fn daemon_with_ca() -> (tempfile::TempDir, Daemon) {
    let env = Env::get();
    let state = tempfile::tempdir().expect("state dir");
    let config = format!("[tls]\nextra_ca_file = {:?}\n", env.ca);
    let d = Daemon::start(state.path(), &config);
    (state, d)
}

/// The flags of an IMAP STARTTLS account for `user` on the run's Dovecot.
fn imap_flags(user: &MailUser) -> Vec<String> {
    let env = Env::get();
    [
        "--kind",
        "imap",
        "--host",
        "127.0.0.1",
        "--port",
        &env.imap_port.to_string(),
        "--encryption",
        "starttls",
        "--address",
        &user.address,
        "--username",
        &user.name,
        "--poll-interval",
        "0",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// `account add` with `password`; returns the id.
pub(super) fn add_imap(d: &Daemon, user: &MailUser, password: &str) -> String {
    let mut args: Vec<String> = vec!["account".into(), "add".into()];
    args.extend(imap_flags(user));
    args.push("--password-stdin".into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ok(ctl_stdin(d, &args, &format!("{password}\n")))
        .trim()
        .to_string()
}

/// Each line of a step report: (outcome, step name).
fn steps(report: &str) -> Vec<(String, String)> {
    report
        .lines()
        .map(|l| {
            let mut w = l.split_whitespace();
            let outcome = w.next().unwrap_or_default().to_string();
            let name = w.next().unwrap_or_default().to_string();
            (outcome, name)
        })
        .collect()
}

#[test]
fn account_test_reports_each_step() {
    let env = Env::get();
    let user = common::create_user(env, "ctltest");
    let (_state, d) = daemon_with_ca();

    // A good account: every step ok, exit 0, login among them.
    let good = add_imap(&d, &user, &user.password);
    let report = ok(d.ctl(&["account", "test", &good]));
    let lines = steps(&report);
    assert!(lines.len() >= 4, "{report}");
    assert!(lines.iter().all(|(o, _)| o == "ok"), "{report}");
    assert!(lines.iter().any(|(_, n)| n == "login"), "{report}");
    // Aligned: the step names start in the same column on every line.
    let col = |l: &str| {
        l.find(char::is_whitespace)
            .map(|i| i + l[i..].len() - l[i..].trim_start().len())
    };
    let cols: Vec<_> = report.lines().map(col).collect();
    assert!(cols.windows(2).all(|w| w[0] == w[1]), "{report}");

    // --json: the list of step dicts.
    let json: Value =
        serde_json::from_str(&ok(d.ctl(&["--json", "account", "test", &good]))).expect("JSON");
    let arr = json.as_array().expect("an array of steps");
    assert_eq!(arr.len(), lines.len());
    assert!(arr
        .iter()
        .all(|s| s["ok"] == true && s["name"].is_string() && s["millis"].is_u64()));

    // A wrong password: the login step fails, exit 1, one line on stderr.
    let bad = add_imap(&d, &user, "not the password");
    let o = d.ctl(&["account", "test", &bad]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let report = stdout(&o);
    let lines = steps(&report);
    assert!(
        lines.contains(&("FAILED".to_string(), "login".to_string())),
        "{report}"
    );
    assert!(!report.contains("not the password"), "{report}");
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("postfachctl: TestFailed: ") && err.contains("login"),
        "{err}"
    );

    // fetch with the wrong password: the daemon's error as one line, exit 1.
    let o = d.ctl(&["fetch", &bad]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).is_empty(), "{}", stdout(&o));
    assert!(
        stderr(&o).starts_with("postfachctl: Authentication: "),
        "{}",
        stderr(&o)
    );
}

#[test]
fn test_unsaved_settings_saves_nothing() {
    let env = Env::get();
    let user = common::create_user(env, "ctlunsaved");
    let (_state, d) = daemon_with_ca();
    let mut args: Vec<String> = vec!["account".into(), "test".into()];
    args.extend(imap_flags(&user));
    args.push("--password-stdin".into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();

    let report = ok(ctl_stdin(&d, &args, &format!("{}\n", user.password)));
    assert!(steps(&report).iter().all(|(o, _)| o == "ok"), "{report}");
    let o = ctl_stdin(&d, &args, "wrong\n");
    assert_eq!(o.status.code(), Some(1));
    assert!(steps(&stdout(&o)).contains(&("FAILED".into(), "login".into())));
    // Nothing was saved.
    let list: Value =
        serde_json::from_str(&ok(d.ctl(&["--json", "account", "list"]))).expect("JSON");
    assert_eq!(list, serde_json::json!([]));
    // An id and settings flags together: a usage error.
    let o = d.ctl(&["account", "test", "abc1", "--host", "127.0.0.1"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

/// Three mails with CRLF line ends (the protocols send CRLF, so these bytes
/// are what the server sends, see tests/common); the first has a line
/// starting with a dot and 8-bit (Latin-1) bytes.
fn mails(user: &MailUser) -> Vec<Vec<u8>> {
    let head = |n: u32, subject: &str| {
        format!(
            "From: Kunde {n} <kunde{n}@example.test>\r\nTo: {}\r\nSubject: {subject}\r\n\
             Date: Fri, 27 Nov 2026 1{n}:00:00 +0100\r\nMessage-ID: <{n}.{}@example.test>\r\n\
             Content-Type: text/plain; charset=iso-8859-1\r\n\r\n",
            user.address, user.name
        )
        .into_bytes()
    };
    let mut first = head(1, "Angebot Fenster");
    first.extend_from_slice(b"Gr\xfc\xdfe aus K\xf6ln\r\n.\r\n..zwei Punkte\r\n.eins\r\n");
    let mut second = head(2, "Rechnung 4711");
    second.extend_from_slice(b"Bitte zahlen.\r\n");
    let mut third = head(3, "Termin Montag");
    third.extend_from_slice(b"Passt 10 Uhr?\r\n");
    vec![first, second, third]
}

#[test]
fn fetch_inbox_raw() {
    let env = Env::get();
    let user = common::create_user(env, "ctlfetch");
    let dropped = mails(&user);
    for m in &dropped {
        common::drop_raw(env, &user, m);
    }
    let (_state, d) = daemon_with_ca();
    let id = add_imap(&d, &user, &user.password);

    // stdout is a pipe here: no progress bar, just the result.
    assert_eq!(ok(d.ctl(&["fetch", &id])), "3 new messages\n");
    assert_eq!(ok(d.ctl(&["fetch", &id])), "0 new messages\n");

    // The table: header, three rows newest first, the count.
    let inbox = ok(d.ctl(&["inbox"]));
    let lines: Vec<&str> = inbox.lines().collect();
    assert_eq!(lines.len(), 5, "{inbox}");
    assert!(
        lines[0].starts_with("ID") && lines[0].contains("SUBJECT"),
        "{inbox}"
    );
    assert!(lines[1].contains("Termin Montag"), "{inbox}");
    assert!(lines[2].contains("Rechnung 4711"), "{inbox}");
    assert!(
        lines[3].contains("Angebot Fenster") && lines[3].contains("2026-11-27"),
        "{inbox}"
    );
    assert_eq!(lines[4], "shown 3 of 3");

    // --json: the dicts and the total.
    let json: Value = serde_json::from_str(&ok(d.ctl(&["--json", "inbox"]))).expect("JSON");
    assert_eq!(json["total"], 3);
    let msgs = json["messages"].as_array().expect("messages");
    assert_eq!(msgs.len(), 3);
    let subjects: Vec<&str> = msgs.iter().filter_map(|m| m["subject"].as_str()).collect();
    assert_eq!(
        subjects,
        ["Termin Montag", "Rechnung 4711", "Angebot Fenster"]
    );
    assert!(msgs
        .iter()
        .all(|m| m["read"] == false && m["account"].as_str().is_some_and(|a| a.ends_with(&id))));

    // Filters reach the daemon.
    let only = |args: &[&str]| -> Vec<String> {
        let mut a = vec!["--json", "inbox"];
        a.extend_from_slice(args);
        let v: Value = serde_json::from_str(&ok(d.ctl(&a))).expect("JSON");
        v["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .map(|m| m["subject"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    assert_eq!(only(&["--text", "rechnung"]), ["Rechnung 4711"]);
    assert!(only(&["--text", "nirgends"]).is_empty());
    assert_eq!(only(&["--account", &id, "--unread"]).len(), 3);
    assert!(only(&["--read"]).is_empty());
    assert_eq!(
        only(&["--since", "2026-11-27T12:00:00+01:00"]),
        ["Termin Montag", "Rechnung 4711"]
    );
    assert_eq!(
        only(&["--until", "2026-11-27T11:00:00+01:00"]),
        ["Angebot Fenster"]
    );
    let page = ok(d.ctl(&["inbox", "--limit", "1", "--offset", "1"]));
    assert!(
        page.contains("Rechnung 4711") && page.ends_with("shown 1 of 3\n"),
        "{page}"
    );

    // raw: exactly the bytes, leading dots and 8-bit bytes included.
    let first = msgs
        .iter()
        .find(|m| m["subject"] == "Angebot Fenster")
        .and_then(|m| m["id"].as_u64())
        .expect("id of the first mail")
        .to_string();
    let o = d.ctl(&["raw", &first]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(o.stdout, dropped[0], "raw bytes differ");

    // A message that does not exist: the daemon's error, exit 1.
    let o = d.ctl(&["raw", "999999"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with("postfachctl: NotFound: "),
        "{}",
        stderr(&o)
    );
    let o = d.ctl(&["fetch", "nosuchaccount1"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with("postfachctl: NotFound: "),
        "{}",
        stderr(&o)
    );
}
