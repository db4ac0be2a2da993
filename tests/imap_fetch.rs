//! IMAP fetch against the real Dovecot of the test environment
//! (`scripts/test`): encryption modes, TLS trust, login errors, delete on
//! server, volume, UIDVALIDITY change, byte-exact storage and IDLE.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

mod common;

use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{Env, MailUser, Settings};
use postfach::account::{Account, SettingValue};
use postfach::error::Error;
use postfach::fetch::FetchReport;
use postfach::imap::{self, IdleOutcome};
use postfach::net::{Timeouts, TlsContext};
use postfach::store::Store;

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} unset: run the tests with scripts/test"))
}

fn port(name: &str) -> u16 {
    var(name).parse().expect("port")
}

fn timeouts() -> Timeouts {
    Timeouts {
        connect: Duration::from_secs(10),
        read: Duration::from_secs(30),
        ..Timeouts::default()
    }
}

/// TLS trust with the run's CA, as `[tls] extra_ca_file` would give it.
fn tls_with_ca() -> TlsContext {
    TlsContext::new(Some(Path::new(&var("POSTFACH_TEST_CA")))).expect("tls context")
}

/// A store in a temp dir with one IMAP account for `user`.
struct Fixture {
    _dir: tempfile::TempDir,
    store: std::sync::Arc<Store>,
    account: Account,
    password: String,
}

/// The user's INBOX over implicit TLS on the test Dovecot.
fn imaps(user: &MailUser, delete: bool) -> Fixture {
    fixture(
        user,
        "127.0.0.1",
        port("POSTFACH_TEST_IMAPS_PORT"),
        "tls",
        delete,
    )
}

fn fixture(user: &MailUser, host: &str, port: u16, encryption: &str, delete: bool) -> Fixture {
    fixture_with(user, host, port, encryption, delete, &[])
}

fn fixture_with(
    user: &MailUser,
    host: &str,
    port: u16,
    encryption: &str,
    delete: bool,
    extra: &[(&'static str, SettingValue)],
) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = std::sync::Arc::new(Store::open(dir.path()).expect("store"));
    let account = Settings::on_dovecot("imap", user)
        .with("host", host)
        .with("port", port)
        .with("encryption", encryption)
        .with("username", &user.name)
        .with("delete_on_server", delete)
        .with_all(extra)
        .create_in(&store);
    Fixture {
        _dir: dir,
        store,
        account,
        password: user.password.clone(),
    }
}

impl Fixture {
    async fn fetch_with(&self, tls: &TlsContext) -> Result<FetchReport, Error> {
        imap::fetch::fetch(
            &self.account,
            &self.password,
            &self.store,
            tls,
            &timeouts(),
            &|_, _| {},
        )
        .await
    }

    async fn fetch(&self) -> FetchReport {
        self.fetch_with(&tls_with_ca()).await.expect("fetch")
    }

    fn raws(&self, ids: &[u64]) -> Vec<Vec<u8>> {
        ids.iter()
            .map(|id| self.store.raw(*id).expect("raw").expect("stored"))
            .collect()
    }
}

fn mail(n: usize) -> Vec<u8> {
    format!(
        "From: a@example.test\r\nTo: b@example.test\r\nSubject: mail {n}\r\n\
         Message-ID: <m{n}.{}@example.test>\r\n\r\nbody {n}\r\n",
        std::process::id()
    )
    .into_bytes()
}

async fn fetch_in_mode(encryption: &str, port_var: &str) {
    let env = Env::get();
    let user = common::create_user(env, "imapmode");
    let sent: Vec<Vec<u8>> = (0..3).map(mail).collect();
    for m in &sent {
        common::drop_raw(env, &user, m);
    }
    let f = fixture(&user, "127.0.0.1", port(port_var), encryption, false);
    let report = f.fetch().await;
    assert_eq!(report.new_ids.len(), 3, "{encryption}: {report:?}");
    let mut got = f.raws(&report.new_ids);
    got.sort();
    let mut want = sent.clone();
    want.sort();
    assert_eq!(got, want, "{encryption}: stored bytes differ");
    // Nothing new the second time; nothing deleted; \Seen untouched (PEEK).
    let again = f.fetch().await;
    assert!(
        again.new_ids.is_empty(),
        "{encryption}: refetched {again:?}"
    );
    assert_eq!(common::message_count(env, &user), 3);
    let flags = common::doveadm(
        env,
        &["fetch", "-u", &user.address, "flags", "mailbox", "INBOX"],
    );
    assert!(
        !flags.contains("\\Seen"),
        "{encryption}: fetch set \\Seen: {flags}"
    );
}

#[tokio::test]
async fn fetches_over_implicit_tls() {
    fetch_in_mode("tls", "POSTFACH_TEST_IMAPS_PORT").await;
}

#[tokio::test]
async fn fetches_over_starttls() {
    fetch_in_mode("starttls", "POSTFACH_TEST_IMAP_PORT").await;
}

#[tokio::test]
async fn fetches_in_clear_text_on_loopback() {
    fetch_in_mode("none", "POSTFACH_TEST_IMAP_PORT").await;
}

#[tokio::test]
async fn wrong_password_is_an_authentication_error_without_the_password() {
    let env = Env::get();
    let user = common::create_user(env, "imapbadpw");
    let mut f = imaps(&user, false);
    f.password = "not-the-Pa55word".into();
    match f.fetch_with(&tls_with_ca()).await {
        Err(Error::Authentication(msg)) => {
            assert!(msg.contains("login rejected by server"), "{msg}");
            assert!(
                !msg.contains("not-the-Pa55word"),
                "password in error: {msg}"
            );
        }
        other => panic!("expected Authentication, got {other:?}"),
    }
}

#[tokio::test]
async fn untrusted_certificate_is_a_tls_error() {
    let env = Env::get();
    let user = common::create_user(env, "imapuntrusted");
    for (enc, port_var) in [
        ("tls", "POSTFACH_TEST_IMAPS_PORT"),
        ("starttls", "POSTFACH_TEST_IMAP_PORT"),
    ] {
        let f = fixture(&user, "127.0.0.1", port(port_var), enc, false);
        let no_extra_ca = TlsContext::new(None).expect("tls context");
        match f.fetch_with(&no_extra_ca).await {
            Err(Error::Tls(_)) => {}
            other => panic!("{enc}: expected Tls, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn pinned_certificate_is_trusted_without_the_ca_and_a_wrong_pin_is_not() {
    let env = Env::get();
    let user = common::create_user(env, "imappin");
    common::drop_raw(env, &user, &mail(1));
    let pin = var("POSTFACH_TEST_PIN");
    let no_extra_ca = TlsContext::new(None).expect("tls context");
    let f = fixture_with(
        &user,
        "127.0.0.1",
        port("POSTFACH_TEST_IMAPS_PORT"),
        "tls",
        false,
        &[("tls_pin", SettingValue::Str(pin))],
    );
    let report = f.fetch_with(&no_extra_ca).await.expect("pinned fetch");
    assert_eq!(report.new_ids.len(), 1);

    let wrong = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".to_string();
    let f = fixture_with(
        &user,
        "127.0.0.1",
        port("POSTFACH_TEST_IMAPS_PORT"),
        "tls",
        false,
        &[("tls_pin", SettingValue::Str(wrong))],
    );
    // A wrong pin fails even though the CA would vouch for the certificate.
    match f.fetch_with(&tls_with_ca()).await {
        Err(Error::Tls(_)) => {}
        other => panic!("expected Tls for a wrong pin, got {other:?}"),
    }
}

#[tokio::test]
async fn starttls_not_offered_is_refused() {
    let env = Env::get();
    let user = common::create_user(env, "imapnostarttls");
    let f = fixture(
        &user,
        &var("POSTFACH_TEST_NOTLS_HOST"),
        port("POSTFACH_TEST_NOTLS_IMAP_PORT"),
        "starttls",
        false,
    );
    match f.fetch_with(&tls_with_ca()).await {
        Err(Error::Tls(msg)) => assert!(msg.contains("does not offer STARTTLS"), "{msg}"),
        other => panic!("expected Tls, got {other:?}"),
    }
}

#[tokio::test]
async fn delete_on_server_removes_exactly_the_stored_mail() {
    let env = Env::get();
    let user = common::create_user(env, "imapdelete");
    for n in 0..5 {
        common::drop_raw(env, &user, &mail(n));
    }
    let keep = imaps(&user, false);
    assert_eq!(keep.fetch().await.new_ids.len(), 5);
    assert_eq!(
        common::message_count(env, &user),
        5,
        "delete off must keep mail"
    );

    let del = imaps(&user, true);
    let report = del.fetch().await;
    assert_eq!(report.new_ids.len(), 5);
    assert_eq!(report.deleted_on_server, 5);
    assert_eq!(report.warning, None);
    assert_eq!(common::message_count(env, &user), 0);
    assert_eq!(del.store.count_messages(&del.account.id).expect("count"), 5);
}

#[tokio::test]
async fn a_thousand_mails_arrive_once_with_progress() {
    let env = Env::get();
    let user = common::create_user(env, "imapbulk");
    common::drop_messages(env, &user, 1000);
    let f = imaps(&user, false);
    let seen = Mutex::new(Vec::new());
    let progress = |done: u32, total: u32| seen.lock().expect("lock").push((done, total));
    let started = Instant::now();
    let report = imap::fetch::fetch(
        &f.account,
        &f.password,
        &f.store,
        &tls_with_ca(),
        &timeouts(),
        &progress,
    )
    .await
    .expect("fetch");
    assert_eq!(report.new_ids.len(), 1000, "took {:?}", started.elapsed());
    let seen = seen.into_inner().expect("lock");
    assert_eq!(seen.first(), Some(&(0, 1000)));
    assert_eq!(seen.last(), Some(&(1000, 1000)));
    // One step per committed batch: the first batch, then doubling ones.
    let first = postfach::pipeline::FIRST_BATCH_MAILS as u32;
    assert_eq!(seen.get(1), Some(&(first, 1000)), "{seen:?}");
    assert!(seen.len() >= 4, "one progress step per batch: {seen:?}");
    assert!(seen.windows(2).all(|w| w[0].0 < w[1].0), "{seen:?}");
    assert!(f.fetch().await.new_ids.is_empty());
    assert_eq!(f.store.count_messages(&f.account.id).expect("count"), 1000);
}

#[tokio::test]
async fn uidvalidity_change_neither_duplicates_nor_loses_mail() {
    let env = Env::get();
    let user = common::create_user(env, "imapuidv");
    for n in 0..3 {
        common::drop_raw(env, &user, &mail(n));
    }
    let mut f = imaps(&user, false);
    assert_eq!(f.fetch().await.new_ids.len(), 3);

    common::set_uidvalidity(env, &user, 4242);
    common::drop_raw(env, &user, &mail(3));
    let report = f.fetch().await;
    assert_eq!(
        report.new_ids.len(),
        1,
        "only the new mail is new: {report:?}"
    );
    assert_eq!(f.raws(&report.new_ids), vec![mail(3)]);
    assert_eq!(f.store.count_messages(&f.account.id).expect("count"), 4);
    let state = f
        .store
        .sync_state(&f.account.id, "imap:INBOX")
        .expect("state");
    assert!(
        state.as_deref().is_some_and(|s| s.starts_with("4242:")),
        "{state:?}"
    );
    let old = f
        .store
        .known_server_ids(&f.account.id, "imap:INBOX:")
        .expect("ids");
    assert!(
        old.iter().all(|id| id.starts_with("imap:INBOX:4242:")),
        "{old:?}"
    );
    assert_eq!(old.len(), 4);

    // Another change, now with delete on server: every mail is recognised
    // by content under the new UIDs, so all of them may go, none is stored
    // twice, and the old UIDs are never used.
    common::set_uidvalidity(env, &user, 4343);
    f.account.delete_on_server = true;
    let report = f.fetch().await;
    assert!(report.new_ids.is_empty(), "{report:?}");
    assert_eq!(report.deleted_on_server, 4);
    assert_eq!(common::message_count(env, &user), 0);
    assert_eq!(f.store.count_messages(&f.account.id).expect("count"), 4);
}

/// A fetch with no new mail since the last complete one stops after
/// EXAMINE (same UIDVALIDITY and UIDNEXT as stored); a state whose UIDNEXT
/// is 0 (an incomplete fetch) makes the next fetch list the mailbox again.
#[tokio::test]
async fn unchanged_uidnext_skips_the_listing_and_an_incomplete_state_does_not() {
    let env = Env::get();
    let user = common::create_user(env, "imapnext");
    for n in 0..3 {
        common::drop_raw(env, &user, &mail(n));
    }
    let f = imaps(&user, false);
    assert_eq!(f.fetch().await.new_ids.len(), 3);
    let state = f
        .store
        .sync_state(&f.account.id, imap::fetch::STATE_KEY)
        .expect("state")
        .expect("written");
    let parsed = imap::fetch::SyncState::parse(&state).expect("parses");
    assert!(
        parsed.uidnext > 3,
        "a complete fetch keeps UIDNEXT: {state}"
    );

    // Lose one server id behind the fetcher's back: with the state unchanged
    // the shortcut does not even list the mailbox, so nothing comes back ...
    let known = f
        .store
        .known_server_ids(&f.account.id, "imap:INBOX:")
        .unwrap();
    let lost: Vec<String> = known.iter().take(1).cloned().collect();
    f.store.forget_server_ids(&f.account.id, &lost).unwrap();
    assert!(f.fetch().await.new_ids.is_empty());
    assert_eq!(
        f.store
            .known_server_ids(&f.account.id, "imap:INBOX:")
            .unwrap()
            .len(),
        2
    );

    // ... while an incomplete state (UIDNEXT 0) lists again and finds it;
    // the content hash maps it to the mail already stored.
    let incomplete = imap::fetch::SyncState {
        uidnext: 0,
        ..parsed
    }
    .render();
    f.store
        .set_sync_state(&f.account.id, imap::fetch::STATE_KEY, &incomplete)
        .unwrap();
    f.fetch().await;
    assert_eq!(
        f.store
            .known_server_ids(&f.account.id, "imap:INBOX:")
            .unwrap(),
        known
    );
    assert_eq!(
        f.store.count_messages(&f.account.id).unwrap(),
        3,
        "stored twice"
    );
    assert_eq!(
        f.store
            .sync_state(&f.account.id, imap::fetch::STATE_KEY)
            .unwrap(),
        Some(state),
        "complete again"
    );

    // New mail raises UIDNEXT: fetched as usual.
    common::drop_raw(env, &user, &mail(3));
    assert_eq!(f.fetch().await.new_ids.len(), 1);
}

#[tokio::test]
async fn raw_bytes_are_stored_exactly_including_odd_mails() {
    let env = Env::get();
    let user = common::create_user(env, "imapbytes");
    let odd: Vec<Vec<u8>> = vec![
        b"Subject: dots\r\n\r\n.leading dot\r\n..two dots\r\n.\r\nend\r\n".to_vec(),
        b"Subject: bare\r\n\r\nbare CR\rin line\r\nbare LF in\nline\r\n".to_vec(),
        b"Subject: =?utf-8?B?broken\r\nFrom: \xff\xfe <@@>\r\nX-8bit: \xe4\xf6\xfc\r\n\r\n\xc3\x28\r\n"
            .to_vec(),
        b"no header at all, no line end".to_vec(),
    ];
    for m in &odd {
        common::drop_raw(env, &user, m);
    }
    let f = imaps(&user, false);
    let report = f.fetch().await;
    assert_eq!(report.new_ids.len(), odd.len());
    // Dovecot numbers maildir files in its own order: compare as sets.
    let mut got = f.raws(&report.new_ids);
    got.sort();
    let mut want: Vec<Vec<u8>> = odd.iter().map(|m| as_dovecot_sends(m)).collect();
    want.sort();
    for (want, got) in want.iter().zip(&got) {
        assert_eq!(
            String::from_utf8_lossy(got),
            String::from_utf8_lossy(want),
            "bytes changed"
        );
        assert_eq!(got, want);
    }
}

/// What Dovecot 2.3 sends for a maildir file: every bare LF as CRLF, all
/// else untouched (measured; see tests/common). Invariant 3 is about the
/// server's bytes, so this is what must be stored — no more rewriting.
fn as_dovecot_sends(file: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(file.len() + 8);
    for (i, b) in file.iter().enumerate() {
        if *b == b'\n' && (i == 0 || file[i - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(*b);
    }
    out
}

#[tokio::test]
async fn an_empty_mail_is_stored() {
    let env = Env::get();
    let user = common::create_user(env, "imapempty");
    common::drop_raw(env, &user, b"");
    let f = imaps(&user, false);
    let report = f.fetch().await;
    assert_eq!(report.new_ids.len(), 1);
    assert_eq!(f.raws(&report.new_ids), vec![Vec::<u8>::new()]);
}

#[tokio::test]
async fn idle_wakes_on_new_mail_and_times_out_without() {
    let env = Env::get();
    let user = common::create_user(env, "imapidle");
    common::drop_raw(env, &user, &mail(0));
    let f = imaps(&user, false);
    let tls = tls_with_ca();
    let t = timeouts();
    let wait = |max| imap::wait_for_change(&f.account, &f.password, &f.store, &tls, &t, max);

    // Never fetched: the mail already there counts as new.
    assert_eq!(
        wait(Duration::from_secs(5)).await.expect("idle"),
        IdleOutcome::NewMail
    );
    f.fetch().await;
    // Nothing new: times out after `max`, not before.
    let started = Instant::now();
    assert_eq!(
        wait(Duration::from_secs(2)).await.expect("idle"),
        IdleOutcome::Timeout
    );
    assert!(started.elapsed() >= Duration::from_secs(2));

    // A mail delivered while idling wakes it long before `max`.
    let dropper = {
        let user = user.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(1500));
            common::drop_raw(Env::get(), &user, &mail(1));
        })
    };
    let started = Instant::now();
    assert_eq!(
        wait(Duration::from_secs(60)).await.expect("idle"),
        IdleOutcome::NewMail
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    dropper.join().expect("dropper");

    // A mail that came after the last fetch but before IDLE is not missed.
    f.fetch().await;
    common::drop_raw(env, &user, &mail(2));
    let started = Instant::now();
    assert_eq!(
        wait(Duration::from_secs(60)).await.expect("idle"),
        IdleOutcome::NewMail
    );
    assert!(started.elapsed() < Duration::from_secs(10));
}
