//! A start after a clean stop does not walk every page of the store
//! (issue 16: start-up at a million mails); every other start still does:
//! after a kill -9, and after anything wrote the file while the daemon was
//! down, where a damaged file is refused untouched as before.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::Daemon;
use postfach::store::closed::CLOSED_FILE;
use postfach::store::DB_FILE;

const WALKED: &str = "checking every page of";
const SKIPPED: &str = "its pages are not walked";

/// How often each start line is in the log so far.
fn counts(d: &Daemon) -> (usize, usize) {
    let log = d.log();
    (log.matches(WALKED).count(), log.matches(SKIPPED).count())
}

#[test]
fn only_a_start_after_a_clean_stop_skips_the_page_walk() {
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join(CLOSED_FILE);
    let mut d = Daemon::start(dir.path(), "");
    assert!(!record.exists());
    assert_eq!(counts(&d), (0, 0), "a new store has no pages to walk");

    // A clean stop leaves the record; the next start trusts it once.
    assert!(d.stop().success());
    assert!(record.exists(), "no record after a clean stop");
    d.restart();
    d.assert_running();
    assert_eq!(counts(&d), (0, 1), "{}", d.log());
    assert!(!record.exists(), "the record outlived the start");

    // A kill -9 leaves none: the next start walks every page.
    d.kill9();
    assert!(!record.exists());
    d.restart();
    d.assert_running();
    assert_eq!(counts(&d), (1, 1), "{}", d.log());

    // A clean stop, then a byte changed while the daemon is down (its
    // length and mtime kept): walked, and refused untouched.
    assert!(d.stop().success());
    assert!(record.exists());
    let db = dir.path().join(DB_FILE);
    damage(&db);
    let before = std::fs::read(&db).unwrap();
    let out = postfachd(dir.path());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a damaged store was served: {err}");
    assert!(err.contains(WALKED), "{err}");
    assert!(err.contains("left untouched"), "{err}");
    assert!(
        std::fs::read(&db).unwrap() == before,
        "a refused file changed"
    );
}

/// Zeroes every page with data after the first eight (the header and
/// region pages), keeping the file's length and mtime: only its ctime
/// tells.
fn damage(db: &Path) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::File::options()
        .read(true)
        .write(true)
        .open(db)
        .unwrap();
    let mtime = f.metadata().unwrap().modified().unwrap();
    let len = f.metadata().unwrap().len();
    let mut page = vec![0u8; 4096];
    let mut zeroed = 0;
    let mut at = 8 * 4096;
    while at + 4096 <= len {
        f.read_exact_at(&mut page, at).unwrap();
        if page.iter().any(|b| *b != 0) {
            f.write_all_at(&[0u8; 4096], at).unwrap();
            zeroed += 1;
        }
        at += 4096;
    }
    assert!(zeroed > 0, "no page with data to damage");
    f.set_modified(mtime).unwrap();
    f.sync_all().unwrap();
}

/// One start of postfachd outside the test bus: it refuses the store
/// before it looks for a bus.
fn postfachd(dir: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_postfachd"))
        .arg("--session")
        .arg("--state-dir")
        .arg(dir)
        .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus")
        .env_remove("JOURNAL_STREAM")
        .env_remove("NOTIFY_SOCKET")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}
