//! Who may call (ARCHITECTURE.md "The D-Bus API"), with callers that really are different Unix
//! users on the private bus: the daemon decides from the uid and groups the
//! bus reports, never from anything the caller claims.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

mod common;

use std::process::{Command, Output};

use common::{Daemon, Env};

/// `busctl call` as the Unix user `user`.
fn call(d: &Daemon, user: &str, path: &str, iface: &str, method: &str, args: &[&str]) -> Output {
    let mut cmd = Command::new("busctl");
    cmd.arg(format!("--address={}", d.bus().address()))
        .args(["call", "org.postfach.Postfach1", path, iface, method])
        .args(args);
    common::as_user(user, &cmd).output().unwrap()
}

const ROOT: &str = "/org/postfach/Postfach1";
const MANAGER: &str = "org.postfach.Postfach1.Manager";
const MAILBOX: &str = "org.postfach.Postfach1.Mailbox";

fn create(d: &Daemon, user: &str, address: &str) -> Output {
    call(
        d,
        user,
        ROOT,
        MANAGER,
        "CreateAccount",
        &[
            "a{sv}",
            "4",
            "kind",
            "s",
            "imap",
            "host",
            "s",
            "127.0.0.1",
            "address",
            "s",
            address,
            "poll_interval",
            "u",
            "0",
        ],
    )
}

fn list(d: &Daemon, user: &str, crm: &str) -> Output {
    call(
        d,
        user,
        ROOT,
        MAILBOX,
        "ListMessages",
        &["sa{sv}uu", crm, "0", "0", "10"],
    )
}

fn denied(out: &Output) -> bool {
    let err = String::from_utf8_lossy(&out.stderr);
    !out.status.success()
        && (err.contains("not allowed")
            || err.contains("may not")
            || err.contains("acts as CRM user"))
}

#[test]
fn roles_follow_the_callers_real_credentials() {
    let env = Env::get();
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[access]\nadmin_groups = [\"{}\"]\nfrontend_groups = [\"{}\"]\n[access.users]\n{} = \"alice\"\n",
        env.admin_group, env.frontend_group, env.unix_alice
    );
    let mut d = Daemon::start(dir.path(), &config);

    // An admin-group member configures; everyone else may not.
    let ok = create(&d, &env.unix_admin, "admin@example.test");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let path = String::from_utf8_lossy(&ok.stdout)
        .split('"')
        .nth(1)
        .unwrap()
        .to_string();
    for user in [
        &env.unix_frontend,
        &env.unix_alice,
        &env.unix_bob,
        &env.unix_nobody,
    ] {
        assert!(
            denied(&create(&d, user, "x@example.test")),
            "{user} must not create accounts"
        );
        let del = call(
            &d,
            user,
            &path,
            "org.postfach.Postfach1.Account",
            "Delete",
            &[],
        );
        assert!(!del.status.success(), "{user} must not delete accounts");
    }

    // A frontend acts for any named CRM user, but needs one.
    assert!(list(&d, &env.unix_frontend, "bob").status.success());
    assert!(list(&d, &env.unix_frontend, "alice").status.success());
    assert!(!list(&d, &env.unix_frontend, "").status.success());
    // A mapped user acts only as itself.
    assert!(list(&d, &env.unix_alice, "alice").status.success());
    assert!(denied(&list(&d, &env.unix_alice, "bob")));
    // Unmapped users get nothing.
    assert!(denied(&list(&d, &env.unix_bob, "bob")));
    assert!(denied(&list(&d, &env.unix_nobody, "alice")));
    // An admin may see everything.
    assert!(list(&d, &env.unix_admin, "").status.success());

    // Only the admin's account exists.
    let out = d.ctl(&["--json", "account", "list"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.matches("\"Address\"").count(), 1, "{text}");
    assert!(d.stop().success());
}
