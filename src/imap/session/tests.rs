//! Tests of the IMAP session setup.
use super::*;
use crate::imap::testing::greeting_server as fake_server;

fn starttls_account(port: u16) -> Account {
    let settings = [
        ("kind", "imap"),
        ("host", "127.0.0.1"),
        ("address", "x@example.test"),
        ("encryption", "starttls"),
    ];
    let mut v: Vec<(String, crate::account::SettingValue)> = settings
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                crate::account::SettingValue::Str(v.to_string()),
            )
        })
        .collect();
    v.push(("port".into(), crate::account::SettingValue::U16(port)));
    Account::create("a1".into(), &v).unwrap().0
}

#[tokio::test]
async fn preauth_before_starttls_is_refused() {
    let port = fake_server("* PREAUTH [CAPABILITY IMAP4rev1 STARTTLS] already in\r\n").await;
    let tls = TlsContext::new(None).unwrap();
    let err = connect(&starttls_account(port), &tls, &Timeouts::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Tls(m) if m.contains("PREAUTH")),
        "{err:?}"
    );
}

#[tokio::test]
async fn missing_starttls_is_refused_not_skipped() {
    let port = fake_server(
        "* OK [CAPABILITY IMAP4rev1 IDLE] hi\r\n* CAPABILITY IMAP4rev1 IDLE\r\npfcap OK done\r\n",
    )
    .await;
    let tls = TlsContext::new(None).unwrap();
    let err = connect(&starttls_account(port), &tls, &Timeouts::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Tls(m) if m.contains("does not offer STARTTLS")),
        "{err:?}"
    );
}

/// async-imap logs each command, LOGIN and its password included, with
/// `log::trace!`; Cargo.toml compiles that level out of the binary.
#[test]
fn trace_logging_that_could_show_passwords_is_compiled_out() {
    assert!(log::STATIC_MAX_LEVEL <= log::LevelFilter::Debug);
}

#[test]
fn caps_are_case_insensitive() {
    let caps = Caps::from_proto(&[
        ProtoCap::Imap4rev1,
        ProtoCap::Atom("StartTLS".into()),
        ProtoCap::Auth("plain".into()),
    ]);
    assert!(caps.has("STARTTLS"));
    assert!(caps.has("starttls"));
    assert!(caps.has("AUTH=PLAIN"));
    assert!(caps.has("imap4rev1"));
    assert!(!caps.has("IDLE"));
}
