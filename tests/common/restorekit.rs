//! Helpers of the restore tests: Backup and Restore through files.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use postfach::dbus::proxy::{Dict, ManagerProxy};
use zbus::zvariant::Variant;
use zbus::Fd;

use super::fetch as fetchkit;

/// A mail of about `size` bytes with a unique Message-ID.
pub fn mail(n: usize, size: usize) -> Vec<u8> {
    let mut m = format!(
        "From: a@example.test\r\nSubject: restore {n}\r\nMessage-ID: <r{n}.{}@example.test>\r\n\r\n",
        super::unique("m")
    )
    .into_bytes();
    while m.len() < size {
        m.extend_from_slice(format!("line {n} {}\r\n", m.len()).as_bytes());
    }
    m
}

pub async fn backup(conn: &zbus::Connection, file: &Path) -> zbus::Result<()> {
    let out = std::fs::File::create(file).unwrap();
    let mgr = ManagerProxy::new(conn).await.unwrap();
    mgr.backup(Fd::from(&out), HashMap::new()).await
}

pub async fn restore(conn: &zbus::Connection, file: &Path) -> zbus::Result<Dict> {
    let input = std::fs::File::open(file).unwrap();
    let mgr = ManagerProxy::new(conn).await.unwrap();
    mgr.restore(Fd::from(&input), HashMap::<&str, Variant<'_>>::new())
        .await
}

/// Every stored mail's bytes, over all accounts, as the admin sees them.
pub async fn all_mails(conn: &zbus::Connection) -> BTreeSet<Vec<u8>> {
    let mb = fetchkit::mailbox(conn).await;
    let (page, total) = mb
        .list_messages("", HashMap::new(), 0, 1000)
        .await
        .expect("ListMessages");
    assert_eq!(page.len() as u32, total);
    let mut out = BTreeSet::new();
    for m in &page {
        let id: u64 = fetchkit::get(m, "id");
        out.insert(fetchkit::raw(&mb, id).await);
    }
    out
}

/// The entries of the state directory that a restore uses and must not
/// leave behind.
pub fn leftovers(state: &Path) -> Vec<String> {
    state
        .read_dir()
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("restore"))
        .collect()
}

fn options(passphrase: Option<&str>) -> HashMap<&str, Variant<'_>> {
    let mut o = HashMap::new();
    if let Some(p) = passphrase {
        o.insert("passphrase", Variant::from(p));
    }
    o
}

pub async fn backup_with(
    conn: &zbus::Connection,
    file: &Path,
    passphrase: Option<&str>,
) -> zbus::Result<()> {
    let out = std::fs::File::create(file).unwrap();
    let mgr = ManagerProxy::new(conn).await.unwrap();
    mgr.backup(Fd::from(&out), options(passphrase)).await
}

pub async fn restore_with(
    conn: &zbus::Connection,
    file: &Path,
    passphrase: Option<&str>,
) -> zbus::Result<Dict> {
    let input = std::fs::File::open(file).unwrap();
    let mgr = ManagerProxy::new(conn).await.unwrap();
    mgr.restore(Fd::from(&input), options(passphrase)).await
}
