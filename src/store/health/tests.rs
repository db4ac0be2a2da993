//! The boundary against real failures: a panic inside a call, pages
//! damaged under an open store, a swap under running readers.

use std::os::unix::fs::FileExt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::store::messages::tests::{fixed_summary, mail};
use crate::store::tests::pop3;
use crate::store::{ListQuery, Store, Visibility, DB_FILE};

/// A store with one account and `n` small mails; returns the account.
fn filled(dir: &Path, n: u32) -> crate::account::Account {
    let store = Store::open(dir).unwrap();
    let a = store.create_account(|id| pop3(id, Some("pw"))).unwrap();
    let batch = (0..n).map(|i| mail(&format!("pop3:{i}"), &format!("mail {i}")));
    store
        .commit_batch(&a, batch.collect(), &crate::mime::summarize)
        .unwrap();
    a
}

fn is_storage(e: &Error, needle: &str) -> bool {
    matches!(e, Error::Storage { message, .. } if message.contains(needle))
}

#[test]
fn a_panic_inside_a_call_fails_that_call_only() {
    let dir = tempfile::tempdir().unwrap();
    let a = filled(dir.path(), 3);
    let store = Store::open(dir.path()).unwrap();
    let err = store
        .call("test the boundary", || -> Result<()> { panic!("injected") })
        .unwrap_err();
    assert!(
        is_storage(&err, "failed while trying to test the boundary"),
        "{err:?}"
    );
    // The next call runs on a reopened, checked database.
    assert_eq!(store.accounts().unwrap(), vec![a.clone()]);
    assert_eq!(store.count_messages(&a.id).unwrap(), 3);
    let ids = store
        .commit_batch(&a, vec![mail("pop3:new", "new")], &crate::mime::summarize)
        .unwrap();
    assert_eq!(store.count_messages(&a.id).unwrap(), 4);
    assert!(store.raw(ids[0]).unwrap().is_some());
}

#[test]
fn pages_damaged_under_an_open_store_fail_calls_but_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    // More mail than the page cache holds, so that reads reach the file:
    // random letters, which the store's compression cannot shrink much.
    let n = 300u64;
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let body: String = (0..200_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(b'A' + (x % 52) as u8 % 26 + if x % 2 == 0 { 0 } else { 32 })
        })
        .collect();
    {
        let store = Store::open(dir.path()).unwrap();
        let a = store.create_account(|id| pop3(id, Some("pw"))).unwrap();
        for chunk in (0..n).collect::<Vec<_>>().chunks(40) {
            let batch = chunk
                .iter()
                .map(|i| mail(&format!("pop3:{i}"), &format!("{i} {body}")));
            store
                .commit_batch(&a, batch.collect(), &fixed_summary(None))
                .unwrap();
        }
    }
    let store = Store::open(dir.path()).unwrap();
    let a = store.accounts().unwrap().remove(0);
    // Behind redb's back: every page but the header becomes zeros.
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(dir.path().join(DB_FILE))
        .unwrap();
    let len = file.metadata().unwrap().len();
    let zeros = vec![0u8; 4096];
    for page in 1..len / 4096 {
        file.write_all_at(&zeros, page * 4096).unwrap();
    }
    file.sync_all().unwrap();

    let (mut failed, mut wrong) = (0, 0);
    for id in 1..=n {
        let got = catch_unwind(AssertUnwindSafe(|| store.raw(id)))
            .unwrap_or_else(|_| panic!("a panic escaped store.raw({id})"));
        match got {
            Err(_) => failed += 1,
            Ok(Some(raw)) if raw.starts_with(format!("Subject: {} ", id - 1).as_bytes()) => {}
            Ok(_) => wrong += 1,
        }
    }
    let list = catch_unwind(AssertUnwindSafe(|| {
        store.list_messages(&ListQuery::new(Visibility::All, "inbox"))
    }))
    .expect("a panic escaped list_messages");
    let batch = catch_unwind(AssertUnwindSafe(|| {
        store.commit_batch(&a, vec![mail("pop3:x", "x")], &crate::mime::summarize)
    }))
    .expect("a panic escaped commit_batch");
    eprintln!(
        "{failed} reads failed, {wrong} returned other bytes, list ok: {}, batch ok: {}",
        list.is_ok(),
        batch.is_ok()
    );
    assert!(failed > 0, "no read saw the damage");
    // Once the damage is seen, the store is checked again and refuses the
    // file instead of serving or writing it.
    let err = store.accounts().unwrap_err();
    assert!(is_storage(&err, "not a usable postfach store"), "{err:?}");
}

#[test]
fn a_swap_under_running_readers_replaces_the_store() {
    let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = filled(one.path(), 2);
    let b = filled(two.path(), 5);
    let other_id = Store::open(two.path()).unwrap().installation_id();
    let store = Arc::new(Store::open(one.path()).unwrap());
    let before = store.installation_id();

    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let (store, stop) = (store.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut seen = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    let n = store.list_messages(&ListQuery::new(Visibility::All, "inbox"));
                    seen.push(n.map(|(_, total)| total));
                }
                seen
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(50));
    store
        .swap(Duration::from_secs(30), |state| {
            for name in [DB_FILE, crate::store::secret::KEY_FILE] {
                std::fs::copy(two.path().join(name), state.join(name)).unwrap();
            }
            Ok(())
        })
        .unwrap();
    std::thread::sleep(Duration::from_millis(50));
    stop.store(true, Ordering::SeqCst);
    for r in readers {
        let seen = r.join().unwrap();
        assert!(seen.iter().all(|t| matches!(t, Ok(2 | 5))), "{seen:?}");
        assert_eq!(seen.last(), Some(&Ok(5)));
    }
    assert_ne!(before, other_id);
    assert_eq!(store.installation_id(), other_id);
    assert_eq!(store.count_messages(&b.id).unwrap(), 5);
    assert_eq!(a.id, b.id, "the same account id, with other mail");
}

#[test]
fn a_swap_gives_up_while_a_snapshot_lives_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    filled(dir.path(), 1);
    let store = Arc::new(Store::open(dir.path()).unwrap());
    let id = store.installation_id();
    let snapshot = store.snapshot().unwrap();
    let other = store.clone();
    let swap = std::thread::spawn(move || {
        other.swap(Duration::from_millis(100), |_| {
            panic!("install must not run while the snapshot lives")
        })
    });
    let err = swap.join().unwrap().unwrap_err();
    assert!(matches!(err, Error::Busy(_)), "{err:?}");
    drop(snapshot);
    assert_eq!(store.installation_id(), id);
    assert_eq!(store.accounts().unwrap().len(), 1);
}
