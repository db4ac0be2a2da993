//! `dbus/org.postfach.Postfach1.xml` is the API's contract for frontends;
//! this test holds it equal to what the live daemon serves.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

mod common;

use common::api::bus;
use common::Daemon;

/// The `<interface name="org.postfach…">` blocks of an introspection
/// document, one trimmed line per element, sorted by interface name.
fn our_interfaces(xml: &str) -> Vec<String> {
    let xml = strip_comments(xml);
    let mut blocks = Vec::new();
    let mut rest = xml.as_str();
    while let Some(start) = rest.find("<interface name=\"org.postfach.") {
        let tail = &rest[start..];
        let end = tail.find("</interface>").expect("interface closes") + "</interface>".len();
        let block: Vec<&str> = tail[..end]
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        blocks.push(block.join("\n"));
        rest = &tail[end..];
    }
    blocks.sort();
    blocks
}

/// Doc comments may differ in wording; the contract is the elements.
fn strip_comments(xml: &str) -> String {
    let mut out = String::new();
    let mut rest = xml;
    while let Some(start) = rest.find("<!--") {
        out.push_str(&rest[..start]);
        match rest[start..].find("-->") {
            Some(end) => rest = &rest[start + end + 3..],
            None => return out,
        }
    }
    out.push_str(rest);
    out
}

async fn introspect(conn: &zbus::Connection, path: &str) -> String {
    let p = zbus::fdo::IntrospectableProxy::builder(conn)
        .destination("org.postfach.Postfach1")
        .path(path)
        .build()
        .await
        .unwrap();
    p.introspect().await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn introspection_xml_matches_the_live_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let mut daemon = Daemon::start(dir.path(), "");
    let conn = bus(&daemon).await;
    let mgr = postfach::dbus::proxy::ManagerProxy::new(&conn)
        .await
        .unwrap();
    let s = common::Settings::new()
        .with("kind", "imap")
        .with("host", "127.0.0.1")
        .with("address", "i@example.test");
    let account = mgr.create_account(s.dbus()).await.unwrap();

    let mut live = our_interfaces(&introspect(&conn, "/org/postfach/Postfach1").await);
    live.extend(our_interfaces(&introspect(&conn, account.as_str()).await));
    // The root's introspection may inline its child nodes.
    live.sort();
    live.dedup();

    let file = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/dbus/org.postfach.Postfach1.xml"
    ))
    .unwrap();
    let committed = our_interfaces(&file);
    if std::env::var_os("POSTFACH_WRITE_INTROSPECTION").is_some() {
        eprintln!("{}", live.join("\n"));
    }
    assert_eq!(
        committed.len(),
        4,
        "Manager, Mailbox, Signatures and Account are in the file"
    );
    assert_eq!(
        live, committed,
        "dbus/org.postfach.Postfach1.xml differs from the live daemon"
    );
    assert!(daemon.stop().success());
}
