//! postfachctl against a real postfachd on a private bus: every account
//! command, `--json`, and how daemon errors reach the admin.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

mod common;
/// fetch, inbox, raw and the connection test (a file of its own for size).
#[path = "ctl/mail.rs"]
mod mail;
/// show, assign, unassign, read, delete and outbox.
#[path = "ctl/message.rs"]
mod message;

use std::io::Write;
use std::process::{Output, Stdio};

use common::{Daemon, Env};

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn ok(o: Output) -> String {
    assert!(
        o.status.success(),
        "postfachctl failed ({}): {}",
        o.status,
        stderr(&o)
    );
    stdout(&o)
}

/// Run postfachctl with `input` on stdin (for --password-stdin).
fn ctl_stdin(d: &Daemon, args: &[&str], input: &str) -> Output {
    let mut cmd = d.ctl_command(args);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("start postfachctl");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("wait for postfachctl")
}

fn daemon() -> (tempfile::TempDir, Daemon) {
    let state = tempfile::tempdir().expect("state dir");
    let d = Daemon::start(state.path(), "");
    (state, d)
}

/// Creates an IMAP account on loopback; returns its id.
fn add(d: &Daemon, name: &str, password: &str) -> String {
    let env = Env::get();
    let port = env.imap_port.to_string();
    let out = ok(ctl_stdin(
        d,
        &[
            "account",
            "add",
            "--kind",
            "imap",
            "--host",
            "127.0.0.1",
            "--port",
            &port,
            "--encryption",
            "starttls",
            "--address",
            &format!("{name}@example.org"),
            "--username",
            name,
            "--name",
            name,
            "--tenant",
            "t1",
            "--poll-interval",
            "0",
            "--password-stdin",
        ],
        &format!("{password}\n"),
    ));
    let id = out.trim().to_string();
    assert!(
        !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric()),
        "add printed {out:?}"
    );
    id
}

fn show_json(d: &Daemon, id: &str) -> serde_json::Value {
    let out = ok(d.ctl(&["--json", "account", "show", id]));
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("show --json is not JSON ({e}): {out}"))
}

#[test]
fn add_list_show_set_passwd_delete() {
    let (_state, d) = daemon();
    let id = add(&d, "vertrieb", "s3cret pw");
    let other = add(&d, "einkauf", "pw2");

    // list: a table with a header and both accounts, host:port joined.
    let list = ok(d.ctl(&["account", "list"]));
    let lines: Vec<&str> = list.lines().collect();
    assert!(
        lines[0].starts_with("ID") && lines[0].contains("STATE"),
        "{list}"
    );
    assert_eq!(lines.len(), 3, "{list}");
    let port = Env::get().imap_port;
    assert!(list.contains(&format!("127.0.0.1:{port}")), "{list}");
    let row = lines
        .iter()
        .find(|l| l.starts_with(&id))
        .expect("row of the account");
    assert!(
        row.contains("vertrieb@example.org") && row.contains("t1"),
        "{row}"
    );
    // Columns are aligned: every header's column starts at the same offset
    // in every row (a non-space after a space).
    for header in ["TENANT", "NAME", "ADDRESS", "KIND", "SERVER", "STATE"] {
        let col = lines[0].find(header).expect("header");
        for l in &lines[1..] {
            let b = l.as_bytes();
            assert!(
                b[col] != b' ' && b[col - 1] == b' ',
                "{header} misaligned:\n{list}"
            );
        }
    }

    // list --json: an array of property objects.
    let json: serde_json::Value =
        serde_json::from_str(&ok(d.ctl(&["--json", "account", "list"]))).expect("list --json");
    let arr = json.as_array().expect("array");
    assert_eq!(arr.len(), 2);
    assert!(arr
        .iter()
        .any(|a| a["Id"] == id.as_str() && a["Port"] == port));

    // show: every property, the password never.
    let show = ok(d.ctl(&["account", "show", &id]));
    for key in [
        "Id:",
        "Kind:",
        "Host:",
        "Port:",
        "PollInterval:",
        "HasPassword:",
        "State:",
    ] {
        assert!(show.contains(key), "show lacks {key}:\n{show}");
    }
    assert!(!show.contains("s3cret"), "password shown:\n{show}");
    let j = show_json(&d, &id);
    assert_eq!(j["Kind"], "imap");
    assert_eq!(j["Encryption"], "starttls");
    assert_eq!(j["PollInterval"], 0);
    assert_eq!(j["HasPassword"], true);

    // set: only the given keys change.
    ok(d.ctl(&[
        "account",
        "set",
        &id,
        "--poll-interval",
        "600",
        "--name",
        "Vertrieb DE",
    ]));
    let j = show_json(&d, &id);
    assert_eq!(j["PollInterval"], 600);
    assert_eq!(j["Name"], "Vertrieb DE");
    assert_eq!(j["Host"], "127.0.0.1");
    assert_eq!(j["Encryption"], "starttls");

    // passwd: incoming and SMTP, from stdin.
    ok(ctl_stdin(
        &d,
        &["account", "passwd", &id, "--password-stdin"],
        "new pw\n",
    ));
    ok(ctl_stdin(
        &d,
        &["account", "passwd", &id, "--smtp", "--password-stdin"],
        "smtp\n",
    ));
    assert_eq!(show_json(&d, &id)["HasPassword"], true);

    // delete: gone from list and show.
    ok(d.ctl(&["account", "delete", &id]));
    let list = ok(d.ctl(&["account", "list"]));
    assert!(!list.contains(&id) && list.contains(&other), "{list}");
    let o = d.ctl(&["account", "show", &id]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).starts_with("postfachctl: NotFound: "),
        "{}",
        stderr(&o)
    );
}

#[test]
fn daemon_errors_are_one_line_exit_1() {
    let (_state, d) = daemon();
    let id = add(&d, "fehler", "pw");
    // The daemon refuses a port of 0 / a bad host: InvalidArgument naming the key.
    let o = d.ctl(&["account", "set", &id, "--host", "bad host!"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "not one line: {err:?}");
    assert!(err.starts_with("postfachctl: InvalidArgument: "), "{err}");
    assert!(err.contains("host"), "{err}");
    assert!(stdout(&o).is_empty());
    // Nothing half-written.
    assert_eq!(show_json(&d, &id)["Host"], "127.0.0.1");

    // Unknown account id.
    let o = d.ctl(&["account", "delete", "doesnotexist9"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with("postfachctl: NotFound: "),
        "{}",
        stderr(&o)
    );

    // A missing required setting, reported by the daemon.
    let o = ctl_stdin(
        &d,
        &["account", "add", "--host", "127.0.0.1", "--password-stdin"],
        "x\n",
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with("postfachctl: InvalidArgument: "),
        "{}",
        stderr(&o)
    );
}

#[test]
fn usage_errors_exit_2_and_no_password_in_argv() {
    let (_state, d) = daemon();
    for args in [
        &["account", "add", "--kind", "imap", "--password", "x"][..],
        &["account", "add", "--kind", "exchange"],
        &["account", "set", "abc"],
        &["account", "show", "../etc"],
        &["account"],
    ] {
        let o = d.ctl(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
    }
    // Without a terminal and without --password-stdin: a clear error.
    let o = d.ctl(&["account", "add", "--kind", "imap", "--host", "127.0.0.1"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--password-stdin"), "{}", stderr(&o));
}

#[test]
fn no_daemon_is_a_clear_error() {
    let env = Env::get();
    // The shared bus of the run has no postfachd unless a test put one there.
    let o = common::ctl(env, &["account", "list"]);
    if o.status.success() {
        return; // another test runs a daemon on the shared bus
    }
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("postfachctl: ServiceUnknown: "), "{err}");
}

/// `FetchNow` on account `id` through busctl; the reply or the error text.
fn fetch_now(d: &Daemon, id: &str) -> Result<String, String> {
    let o = std::process::Command::new("busctl")
        .arg(format!("--address={}", d.bus().address()))
        .args(["call", "org.postfach.Postfach1"])
        .arg(format!("/org/postfach/Postfach1/accounts/{id}"))
        .args(["org.postfach.Postfach1.Account", "FetchNow"])
        .output()
        .expect("run busctl");
    if o.status.success() {
        Ok(stdout(&o))
    } else {
        Err(stderr(&o))
    }
}

/// `passwd` really changes the password the daemon logs in with.
#[test]
fn passwd_takes_effect_on_login() {
    let env = Env::get();
    let user = common::create_user(env, "ctlpw");
    let state = tempfile::tempdir().expect("state dir");
    let config = format!("[tls]\nextra_ca_file = {:?}\n", env.ca);
    let d = Daemon::start(state.path(), &config);
    let port = env.imap_port.to_string();
    let id = ok(ctl_stdin(
        &d,
        &[
            "account",
            "add",
            "--kind",
            "imap",
            "--host",
            "127.0.0.1",
            "--port",
            &port,
            "--encryption",
            "starttls",
            "--address",
            &user.address,
            "--username",
            &user.name,
            "--poll-interval",
            "0",
            "--password-stdin",
        ],
        "wrong password\n",
    ))
    .trim()
    .to_string();
    let err = fetch_now(&d, &id).expect_err("login with the wrong password must fail");
    assert!(err.contains("uthentication"), "{err}");

    ok(ctl_stdin(
        &d,
        &["account", "passwd", &id, "--password-stdin"],
        &format!("{}\n", user.password),
    ));
    let reply = fetch_now(&d, &id).unwrap_or_else(|e| panic!("fetch after passwd: {e}"));
    assert!(reply.starts_with("u "), "{reply}");
}
