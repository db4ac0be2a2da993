//! Who may use `org.postfach.Postfach1.Signatures`, with callers that
//! really are other Unix users on the private bus (postfachctl run through
//! setpriv): admins and frontends everything, a mapped CRM user only its
//! own signature, everyone else nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

mod common;
mod sigkit;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Output;

use common::{Daemon, Env};
use sigkit::png;

/// postfachctl as the Unix user `unix` against `d`.
fn ctl_as(d: &Daemon, unix: &str, args: &[&str]) -> Output {
    common::as_user(unix, &d.ctl_command(args))
        .output()
        .unwrap()
}

fn ok(o: Output) -> String {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn denied(o: &Output) -> bool {
    !o.status.success()
        && String::from_utf8_lossy(&o.stderr).starts_with("postfachctl: AccessDenied: ")
}

#[test]
fn a_mapped_user_edits_and_previews_only_its_own_signature() {
    let env = Env::get();
    let state = tempfile::tempdir().unwrap();
    let config = format!(
        "[access]\nadmin_groups = [\"{}\"]\nfrontend_groups = [\"{}\"]\n[access.users]\n{} = \"alice\"\n",
        env.admin_group, env.frontend_group, env.unix_alice
    );
    let mut d = Daemon::start(state.path(), &config);
    // Files the other users can read.
    let files = tempfile::tempdir().unwrap();
    fs::set_permissions(files.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let file = |name: &str, bytes: &[u8]| {
        let path = files.path().join(name);
        fs::write(&path, bytes).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        path.to_string_lossy().into_owned()
    };
    let html = file("g.html", b"<p>@Name@</p>@Bild(0,8,8)@");
    let own = file("a.html", b"<p>Alice: @Vorname@</p>");
    let photo = file("p.png", &png(16, 16));
    let t = ["--tenant", "t1"];

    // A frontend sets the general signature and the employees.
    let front = &env.unix_frontend;
    ok(ctl_as(
        &d,
        front,
        &[&["signature", "set", "--html", &html][..], &t].concat(),
    ));
    ok(ctl_as(
        &d,
        front,
        &[
            &[
                "employee",
                "set",
                "alice",
                "--field",
                "Vorname=Alice",
                "--image",
                &photo,
            ][..],
            &t,
        ]
        .concat(),
    ));
    ok(ctl_as(
        &d,
        front,
        &[
            &["employee", "set", "bob", "--field", "Vorname=Bob"][..],
            &t,
        ]
        .concat(),
    ));

    // alice: her own signature, and reading the general one.
    let alice = &env.unix_alice;
    ok(ctl_as(
        &d,
        alice,
        &[
            &["signature", "set", "--user", "alice", "--html", &own][..],
            &t,
        ]
        .concat(),
    ));
    let shown = ok(ctl_as(
        &d,
        alice,
        &[&["signature", "show", "--user", "alice"][..], &t].concat(),
    ));
    assert!(shown.contains("<p>Alice: @Vorname@</p>"), "{shown}");
    ok(ctl_as(
        &d,
        alice,
        &[&["signature", "show"][..], &t].concat(),
    ));
    let out = ok(ctl_as(
        &d,
        alice,
        &[&["--json", "signature", "preview", "alice"][..], &t].concat(),
    ));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["source"], "user");
    let page = std::path::PathBuf::from(v["path"].as_str().unwrap());
    assert!(fs::read_to_string(&page)
        .unwrap()
        .contains("<p>Alice: Alice</p>"));
    fs::remove_file(&page).unwrap();
    ok(ctl_as(&d, alice, &["signature", "placeholders"]));
    // … but nobody else's, not the general one, and no employee records.
    for args in [
        &["signature", "set", "--html", &own][..],
        &["signature", "set", "--user", "bob", "--html", &own],
        &["signature", "remove"],
        &["signature", "show", "--user", "bob"],
        &["signature", "preview", "bob"],
        &["employee", "set", "alice", "--field", "Vorname=Eve"],
        &["employee", "remove", "alice"],
    ] {
        let o = ctl_as(&d, alice, &[args, &t].concat());
        assert!(
            denied(&o),
            "alice {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    // Unmapped users get nothing, not even the placeholder list.
    for unix in [&env.unix_bob, &env.unix_nobody] {
        for args in [
            &["signature", "placeholders"][..],
            &["signature", "show", "--tenant", "t1"],
            &["signature", "preview", "bob", "--tenant", "t1"],
        ] {
            assert!(denied(&ctl_as(&d, unix, args)), "{unix} {args:?}");
        }
    }
    // An admin-group member may do everything: previewing bob gets past
    // the access check and fails on bob's employee, who has no picture 0.
    let o = ctl_as(
        &d,
        &env.unix_admin,
        &[&["signature", "preview", "bob"][..], &t].concat(),
    );
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.starts_with("postfachctl: NotFound: @Bild(0,8,8)@: the employee of CRM user \"bob\""),
        "{e}"
    );
    ok(ctl_as(
        &d,
        &env.unix_admin,
        &[&["employee", "remove", "bob"][..], &t].concat(),
    ));
    assert!(d.stop().success());
}
