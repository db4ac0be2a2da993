//! POP3 fetch against the real Dovecot of `scripts/testenv` (ARCHITECTURE.md "Testing"):
//! every encryption mode, login and TLS failures, pins, delete on server,
//! and the exact bytes of tricky mails.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

mod common;

use common::{create_user, drop_raw, message_count, Env, MailUser, Settings};
use postfach::account::{Account, SettingValue};
use postfach::error::Error;
use postfach::fetch::FetchReport;
use postfach::net::{Timeouts, TlsContext};
use postfach::pop3;
use postfach::store::Store;

struct Setup {
    _dir: tempfile::TempDir,
    store: std::sync::Arc<Store>,
    account: Account,
    user: MailUser,
}

fn setup(host: &str, port: u16, encryption: &str, extra: &[(&'static str, SettingValue)]) -> Setup {
    let env = Env::get();
    let user = create_user(env, "pop");
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(Store::open(dir.path()).unwrap());
    let account = Settings::on_dovecot("pop3", &user)
        .with("host", host)
        .with("port", port)
        .with("encryption", encryption)
        .with_all(extra)
        .create_in(&store);
    Setup {
        _dir: dir,
        store,
        account,
        user,
    }
}

fn run_ca() -> TlsContext {
    TlsContext::new(Some(&Env::get().ca)).unwrap()
}

async fn fetch_with(
    s: &Setup,
    password: &str,
    tls: &TlsContext,
) -> postfach::error::Result<FetchReport> {
    pop3::fetch(
        &s.account,
        password,
        &s.store,
        tls,
        &Timeouts::default(),
        &|_, _| {},
    )
    .await
}

async fn fetch(s: &Setup) -> postfach::error::Result<FetchReport> {
    fetch_with(s, &s.user.password, &run_ca()).await
}

const TRICKY: &[u8] = b"From: a@example.test\r\nSubject: dots\r\n\r\n.leading dot\r\n..two dots\r\n.\r\nline with a bare\rCR\r\n. \r\nend\r\n";

async fn fetches_tricky_mail(host: &str, port: u16, encryption: &str) {
    let s = setup(host, port, encryption, &[]);
    let env = Env::get();
    drop_raw(env, &s.user, TRICKY);
    drop_raw(env, &s.user, b"");
    let report = fetch(&s).await.unwrap();
    assert_eq!(report.new_ids.len(), 2, "{report:?}");
    // Dot-unstuffed: exactly the mail as Dovecot holds it (CRLF already).
    assert_eq!(s.store.raw(report.new_ids[0]).unwrap().unwrap(), TRICKY);
    // Dovecot ends every mail it sends with CRLF, so an empty mail arrives
    // as one empty line (tests/common/mod.rs has the measurements).
    assert_eq!(s.store.raw(report.new_ids[1]).unwrap().unwrap(), b"\r\n");
    // Nothing deleted, nothing fetched twice.
    assert_eq!(message_count(env, &s.user), 2);
    assert!(fetch(&s).await.unwrap().new_ids.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encryption_none_tls_and_starttls() {
    let env = Env::get();
    fetches_tricky_mail("127.0.0.1", env.pop3_port, "none").await;
    fetches_tricky_mail("localhost", env.pop3s_port, "tls").await;
    fetches_tricky_mail("127.0.0.1", env.pop3_port, "starttls").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_is_required_when_chosen() {
    let env = Env::get();
    let s = setup(&env.notls_host, env.notls_pop3_port, "starttls", &[]);
    drop_raw(env, &s.user, TRICKY);
    let e = fetch(&s).await.unwrap_err();
    assert!(
        matches!(&e, Error::Tls(m) if m.contains("server does not offer STARTTLS (STLS)")),
        "{e:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_is_an_authentication_error() {
    let env = Env::get();
    let s = setup("localhost", env.pop3s_port, "tls", &[]);
    let e = fetch_with(&s, "wrong-password", &run_ca())
        .await
        .unwrap_err();
    match e {
        Error::Authentication(m) => {
            assert!(m.starts_with("login rejected by server:"), "{m}");
            assert!(!m.contains("wrong-password"), "{m}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_certificate_is_untrusted_without_its_ca() {
    let env = Env::get();
    let s = setup("localhost", env.pop3s_port, "tls", &[]);
    let e = fetch_with(&s, &s.user.password, &TlsContext::new(None).unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::Tls(m)
            if m.starts_with("TLS certificate not trusted: issuer CN=postfach test CA")),
        "{e:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pinned_certificate_is_trusted_without_its_ca() {
    let env = Env::get();
    let pin = SettingValue::Str(env.pin.clone());
    let s = setup("localhost", env.pop3s_port, "tls", &[("tls_pin", pin)]);
    drop_raw(env, &s.user, TRICKY);
    let no_ca = TlsContext::new(None).unwrap();
    let report = fetch_with(&s, &s.user.password, &no_ca).await.unwrap();
    assert_eq!(report.new_ids.len(), 1);

    // A wrong pin is refused even though the CA would trust the server.
    let wrong = SettingValue::Str("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".into());
    let s = setup(
        "localhost",
        env.pop3_port,
        "starttls",
        &[("tls_pin", wrong)],
    );
    let e = fetch(&s).await.unwrap_err();
    assert!(
        matches!(&e, Error::Tls(m) if m.starts_with("server key does not match tls_pin")),
        "{e:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_on_server_removes_only_stored_mail() {
    let env = Env::get();
    let on = SettingValue::Bool(true);
    let s = setup(
        "localhost",
        env.pop3s_port,
        "tls",
        &[("delete_on_server", on)],
    );
    common::drop_messages(env, &s.user, 150);
    let report = fetch(&s).await.unwrap();
    assert_eq!(report.new_ids.len(), 150);
    assert_eq!(report.deleted_on_server, 150);
    assert_eq!(message_count(env, &s.user), 0);
    assert_eq!(s.store.count_messages(&s.account.id).unwrap(), 150);
    // Mail that arrives later is stored before it goes, too.
    drop_raw(env, &s.user, TRICKY);
    let report = fetch(&s).await.unwrap();
    assert_eq!((report.new_ids.len(), report.deleted_on_server), (1, 1));
    assert_eq!(s.store.raw(report.new_ids[0]).unwrap().unwrap(), TRICKY);
    assert_eq!(message_count(env, &s.user), 0);
}
