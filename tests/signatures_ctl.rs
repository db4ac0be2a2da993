//! `postfachctl signature …` and `employee …` against a real postfachd on
//! a private bus: files in, a preview page out, and errors as one line.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

mod common;
mod sigkit;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Output;

use common::Daemon;
use sigkit::{jpeg, pictures, png};

fn ok(o: Output) -> String {
    assert!(
        o.status.success(),
        "postfachctl failed ({}): {}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn fails(o: Output, code: i32) -> String {
    assert_eq!(o.status.code(), Some(code), "{o:?}");
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn signature_and_employee_commands_round_trip() {
    let state = tempfile::tempdir().unwrap();
    let mut d = Daemon::start(state.path(), "");
    let files = tempfile::tempdir().unwrap();
    let file = |name: &str, bytes: &[u8]| {
        let p = files.path().join(name);
        fs::write(&p, bytes).unwrap();
        p.to_string_lossy().into_owned()
    };
    let text = file("sig.txt", "Viele Grüße\n@Vorname@ @Nachname@\n".as_bytes());
    let html = file(
        "sig.html",
        b"<p>@Vorname@ &lt;@Kuerzel@&gt;</p>\n@Bild(1,30,20)@",
    );
    let photo = file("photo.jpg", &jpeg(60, 40));
    let logo = file("logo.png", &png(10, 10));
    let t = ["--tenant", "t1"];
    let run = |args: &[&str]| d.ctl(&[args, &t].concat());

    ok(run(&[
        "signature",
        "set",
        "--user",
        "mm",
        "--text",
        &text,
        "--html",
        &html,
    ]));
    ok(run(&[
        "employee",
        "set",
        "mm",
        "--field",
        "Vorname=Max & Co",
        "--field",
        "Nachname=Muster",
        "--image",
        &logo,
        "--image",
        &photo,
    ]));
    let shown = ok(run(&["signature", "show", "--user", "mm"]));
    assert_eq!(
        shown,
        "text:\nViele Grüße\n@Vorname@ @Nachname@\nhtml:\n<p>@Vorname@ &lt;@Kuerzel@&gt;</p>\n@Bild(1,30,20)@\n"
    );

    // Only --html: the text part stays.
    let html2 = file("sig2.html", b"<b>@Name@</b> @Bild(1,30,20)@");
    ok(run(&["signature", "set", "--user", "mm", "--html", &html2]));
    let v: serde_json::Value =
        serde_json::from_str(&ok(run(&["--json", "signature", "show", "--user", "mm"]))).unwrap();
    assert_eq!(v["text"], "Viele Grüße\n@Vorname@ @Nachname@\n");
    assert_eq!(v["html"], "<b>@Name@</b> @Bild(1,30,20)@");

    // preview: a new page in the temp dir, only for its owner; its path on stdout.
    let out = d.ctl(&[&["signature", "preview", "mm"][..], &t].concat());
    assert!(String::from_utf8_lossy(&out.stderr).contains("own signature of mm"));
    let path = ok(out).trim().to_string();
    assert!(path.ends_with(".html") && path.starts_with('/'), "{path}");
    let meta = fs::metadata(&path).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let page = fs::read_to_string(&path).unwrap();
    fs::remove_file(&path).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>"), "{page}");
    assert!(page.contains("<b>Max &amp; Co Muster</b> <img src=\"data:image/jpeg;base64,"));
    assert!(
        page.contains("<pre>Viele Grüße\nMax &amp; Co Muster\n</pre>"),
        "{page}"
    );
    let shown = pictures(&page);
    assert_eq!(shown.len(), 1);
    assert_eq!(
        (shown[0].mime.as_str(), shown[0].size),
        ("image/jpeg", (30, 20))
    );

    // --output replaces the named file.
    let target = files.path().join("preview.html");
    fs::write(&target, "old").unwrap();
    let target_s = target.to_string_lossy().into_owned();
    let v: serde_json::Value = serde_json::from_str(&ok(run(&[
        "--json",
        "signature",
        "preview",
        "mm",
        "--output",
        &target_s,
    ])))
    .unwrap();
    assert_eq!(v["path"], target_s);
    assert_eq!(v["source"], "user");
    assert!(fs::read_to_string(&target)
        .unwrap()
        .contains("Max &amp; Co Muster"));

    let list = ok(d.ctl(&["signature", "placeholders"]));
    assert_eq!(list.lines().next(), Some("@Name@"));
    assert_eq!(list.lines().count(), 13);

    // Removing the user's own signature with no general one: nothing left.
    ok(run(&["signature", "remove", "--user", "mm"]));
    let e = fails(run(&["signature", "preview", "mm"]), 1);
    assert!(
        e.starts_with("postfachctl: NotFound: CRM user \"mm\" has no signature"),
        "{e}"
    );
    ok(run(&["employee", "remove", "mm"]));
    let e = fails(run(&["employee", "remove", "mm"]), 1);
    assert!(e.starts_with("postfachctl: NotFound: no employee"), "{e}");
    assert!(d.stop().success());
}

#[test]
fn bad_input_is_one_clear_line() {
    let state = tempfile::tempdir().unwrap();
    let mut d = Daemon::start(state.path(), "");
    let files = tempfile::tempdir().unwrap();
    let file = |name: &str, bytes: &[u8]| {
        let p = files.path().join(name);
        fs::write(&p, bytes).unwrap();
        p.to_string_lossy().into_owned()
    };
    let broken = file("broken.html", b"<p>\n  @Telfon@</p>");
    let latin1 = file("latin1.txt", b"Gr\xfc\xdfe");
    let not_a_picture = file("photo.png", b"this is text");

    let e = fails(d.ctl(&["signature", "set"]), 2);
    assert!(e.contains("give --text FILE, --html FILE or both"), "{e}");
    let e = fails(d.ctl(&["signature", "set", "--html", &broken]), 1);
    assert_eq!(
        e,
        "postfachctl: InvalidArgument: html: line 2, column 3: unknown placeholder @Telfon@ \
         (Placeholders() lists the known ones)\n"
    );
    let e = fails(d.ctl(&["signature", "set", "--text", &latin1]), 1);
    assert!(e.contains("is not UTF-8 text"), "{e}");
    let e = fails(
        d.ctl(&["employee", "set", "mm", "--image", &not_a_picture]),
        1,
    );
    assert!(e.contains("photo.png: not a PNG, JPEG or GIF image"), "{e}");
    let e = fails(d.ctl(&["employee", "set", "mm", "--field", "Vorname"]), 2);
    assert!(e.contains("is not NAME=VALUE"), "{e}");
    let e = fails(d.ctl(&["employee", "set", "mm", "--field", "Handy=1"]), 1);
    assert!(
        e.starts_with("postfachctl: InvalidArgument: fields.Handy: unknown field"),
        "{e}"
    );
    let e = fails(d.ctl(&["signature", "show"]), 1);
    assert!(
        e.starts_with("postfachctl: NotFound: tenant \"default\" has no general signature"),
        "{e}"
    );
    assert!(d.stop().success());
}
