//! A damaged store never costs mail (issue 10 items 9 and 10): damaged
//! copies of a real store file are refused without a byte or the mtime
//! changed, or open and serve every mail correctly; none panics the
//! process. A state directory whose store is missing keeps the daemon from
//! starting, with the reason, and nothing in it changes.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use rand::{Rng, SeedableRng};

use postfach::account::{Account, SettingValue};
use postfach::error::Error;
use postfach::store::{NewMail, Raw, SecretKind, Store, DB_FILE};

const PASSWORD: &str = "hunter2-secret";

/// What a healthy copy must serve.
struct Expected {
    accounts: Vec<Account>,
    mails: BTreeMap<u64, Vec<u8>>,
}

fn settings(address: &str) -> Vec<(String, SettingValue)> {
    [
        ("kind", "pop3"),
        ("host", "127.0.0.1"),
        ("address", address),
        ("tenant", "t1"),
        ("password", PASSWORD),
    ]
    .map(|(k, v)| (k.to_string(), SettingValue::Str(v.into())))
    .to_vec()
}

/// Two accounts with a password each, 80 small mails and two blob mails.
fn build(dir: &Path) -> Expected {
    let store = Store::open(dir).unwrap();
    let mut accounts = Vec::new();
    let mut mails = BTreeMap::new();
    for (n, address) in ["one@example.org", "two@example.org"].iter().enumerate() {
        let a = store
            .create_account(|id| Account::create(id, &settings(address)))
            .unwrap();
        let batch: Vec<(String, Vec<u8>)> = (0..40)
            .map(|i| {
                let body = format!("{n}-{i} ").repeat(30 + i * 7);
                let raw = format!(
                    "Subject: {n} {i}\r\nMessage-ID: <{n}.{i}@damage.test>\r\n\r\n{body}\r\n"
                );
                (format!("pop3:{i}"), raw.into_bytes())
            })
            .collect();
        let new: Vec<NewMail> = batch
            .iter()
            .map(|(sid, raw)| NewMail {
                server_id: sid.clone(),
                raw: raw.clone().into(),
                received: 1_700_000_000,
            })
            .collect();
        let ids = store
            .commit_batch(&a, new, &postfach::mime::summarize)
            .unwrap();
        mails.extend(ids.into_iter().zip(batch.into_iter().map(|(_, r)| r)));
        accounts.push(a);
    }
    for i in 0..2u8 {
        let raw: Vec<u8> = (0..1_100_000u32)
            .map(|x| b"abcdefghij\r\n"[(x % 12) as usize] ^ i)
            .collect();
        let mut w = store.blob_writer().unwrap();
        w.write(&raw).unwrap();
        let mail = NewMail {
            server_id: format!("pop3:big{i}"),
            raw: Raw::Blob(w.finish().unwrap()),
            received: 1_700_000_000,
        };
        let ids = store
            .commit_batch(&accounts[0], vec![mail], &postfach::mime::summarize)
            .unwrap();
        mails.insert(ids[0], raw);
    }
    Expected { accounts, mails }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Everything a healthy copy must do, as an error text if it does not.
fn serve(store: &Store, want: &Expected) -> Result<(), String> {
    let e = |what: &str, err: Error| format!("{what}: {err}");
    let accounts = store.accounts().map_err(|x| e("accounts", x))?;
    if accounts != want.accounts {
        return Err(format!("accounts differ: {accounts:?}"));
    }
    for a in &accounts {
        let secret = store
            .secret(&a.id, SecretKind::Password)
            .map_err(|x| e("secret", x))?;
        if secret.as_ref().map(|s| s.expose()) != Some(PASSWORD) {
            return Err(format!("the password of {} differs", a.id));
        }
    }
    for (id, bytes) in &want.mails {
        match store.raw(*id).map_err(|x| e("raw", x))? {
            Some(got) if &got == bytes => {}
            _ => return Err(format!("mail {id} differs")),
        }
    }
    let q = postfach::store::ListQuery::new(postfach::store::Visibility::All, "inbox");
    let (_, total) = store.list_messages(&q).map_err(|x| e("list", x))?;
    if total as usize != want.mails.len() {
        return Err(format!("{total} listed"));
    }
    let new = NewMail {
        server_id: "pop3:after".into(),
        raw: b"Subject: after\r\n\r\nafter\r\n".to_vec().into(),
        received: 1_700_000_001,
    };
    let ids = store
        .commit_batch(&accounts[1], vec![new], &postfach::mime::summarize)
        .map_err(|x| e("commit", x))?;
    match store.raw(ids[0]).map_err(|x| e("raw after", x))? {
        Some(b) if b.starts_with(b"Subject: after") => Ok(()),
        _ => Err("the mail written after the open is not there".into()),
    }
}

fn fingerprint(path: &Path) -> (Vec<u8>, SystemTime) {
    let meta = std::fs::metadata(path).unwrap();
    (std::fs::read(path).unwrap(), meta.modified().unwrap())
}

#[test]
fn damaged_copies_are_refused_untouched_or_serve_correctly() {
    let seed: u64 = std::env::var("POSTFACH_DAMAGE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::thread_rng().gen());
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let original = tempfile::tempdir().unwrap();
    let want = build(original.path());
    let (mut refused, mut served) = (0, 0);
    for round in 0..20 {
        let copy = tempfile::tempdir().unwrap();
        copy_dir(original.path(), copy.path());
        let db = copy.path().join(DB_FILE);
        let mut bytes = std::fs::read(&db).unwrap();
        let damage = if round % 2 == 0 {
            let flips: Vec<(usize, u8)> = (0..rng.gen_range(1..=8))
                .map(|_| (rng.gen_range(0..bytes.len()), rng.gen_range(1..=255u8)))
                .collect();
            for (at, x) in &flips {
                bytes[*at] ^= x;
            }
            format!("flipped {flips:?}")
        } else {
            let page = rng.gen_range(0..bytes.len() / 4096);
            bytes[page * 4096..(page + 1) * 4096].fill(0);
            format!("zeroed page {page}")
        };
        std::fs::write(&db, &bytes).unwrap();
        let before = fingerprint(&db);
        let context = format!("seed {seed} round {round}: {damage}");

        let outcome = catch_unwind(AssertUnwindSafe(|| match Store::open(copy.path()) {
            Err(e) => Err(e),
            Ok(store) => Ok(serve(&store, &want)),
        }))
        .unwrap_or_else(|_| panic!("{context}: a panic escaped the store"));
        match outcome {
            Err(e) => {
                assert!(matches!(e, Error::Storage { .. }), "{context}: {e:?}");
                assert!(e.to_string().contains(DB_FILE), "{context}: {e}");
                assert!(
                    fingerprint(&db) == before,
                    "{context}: a refused file was written"
                );
                refused += 1;
            }
            Ok(Ok(())) => served += 1,
            Ok(Err(why)) => panic!("{context}: opened but served wrong: {why}"),
        }
    }
    eprintln!("seed {seed}: {refused} refused, {served} served correctly");
}

#[test]
fn the_daemon_refuses_a_state_dir_whose_store_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let blobs_before: Vec<_> = std::fs::read_dir(dir.path().join("blobs"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    std::fs::remove_file(dir.path().join(DB_FILE)).unwrap();

    let mut child = Command::new(env!("CARGO_BIN_EXE_postfachd"))
        .arg("--session")
        .arg("--state-dir")
        .arg(dir.path())
        .env_remove("JOURNAL_STREAM")
        .env_remove("NOTIFY_SOCKET")
        .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("postfachd kept running on a state dir without its store");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("holds an installation"), "{text}");
    assert!(!dir.path().join(DB_FILE).exists(), "a store was created");
    let blobs_after: Vec<_> = std::fs::read_dir(dir.path().join("blobs"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(blobs_after, blobs_before);
}
