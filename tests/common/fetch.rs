//! Helpers for the end-to-end fetch tests (`fetch_daemon`, `fetch_crash`,
//! `fetch_hostile`, …; used as `fetchkit`): a daemon that trusts the run's
//! CA, accounts created over D-Bus, and reading back what the store holds
//! through `ListMessages` and `GetRaw` — the way the CRM sees it, not the
//! store directly.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::Path;

use postfach::dbus::proxy::{AccountProxy, Dict, MailboxProxy, ManagerProxy};
use zbus::{Connection, OwnedObjectPath, Variant};

use super::{Daemon, Env, MailUser, Settings};

/// A daemon config that trusts the CA made for this run.
pub fn config(env: &Env) -> String {
    format!("[tls]\nextra_ca_file = \"{}\"\n", env.ca.display())
}

/// Starts a daemon on its own bus with [`config`].
pub fn start(state: &Path) -> Daemon {
    Daemon::start(state, &config(Env::get()))
}

pub async fn bus(d: &Daemon) -> Connection {
    zbus::connection::Builder::address(d.bus().address())
        .build()
        .await
        .expect("connect to the test bus")
}

/// The protocol of an account under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    Imap,
    Pop3,
}

impl Proto {
    pub fn kind(self) -> &'static str {
        match self {
            Proto::Imap => "imap",
            Proto::Pop3 => "pop3",
        }
    }

    /// The implicit-TLS port of the run's Dovecot.
    pub fn tls_port(self) -> u16 {
        let env = Env::get();
        match self {
            Proto::Imap => env.imaps_port,
            Proto::Pop3 => env.pop3s_port,
        }
    }
}

/// Settings for an account of `user` on the run's Dovecot over implicit TLS.
pub fn settings(
    proto: Proto,
    user: &MailUser,
    password: &str,
    delete: bool,
    poll: u32,
) -> HashMap<&'static str, Variant<'static>> {
    Settings::on_dovecot(proto.kind(), user)
        .with("password", password)
        .with("tenant", "mandant1")
        .with("delete_on_server", delete)
        .with("poll_interval", poll)
        .dbus()
}

pub async fn create(
    conn: &Connection,
    s: HashMap<&'static str, Variant<'static>>,
) -> OwnedObjectPath {
    ManagerProxy::new(conn)
        .await
        .expect("manager proxy")
        .create_account(s)
        .await
        .expect("CreateAccount")
}

/// An account of `user` with its right password.
pub async fn account_for(
    conn: &Connection,
    proto: Proto,
    user: &MailUser,
    delete: bool,
    poll: u32,
) -> OwnedObjectPath {
    create(conn, settings(proto, user, &user.password, delete, poll)).await
}

/// An uncached proxy: properties are read fresh on every call.
pub async fn account<'a>(conn: &'a Connection, path: &OwnedObjectPath) -> AccountProxy<'a> {
    AccountProxy::builder(conn)
        .path(path.clone())
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .await
        .expect("account proxy")
}

pub async fn mailbox(conn: &Connection) -> MailboxProxy<'_> {
    MailboxProxy::builder(conn)
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .await
        .expect("mailbox proxy")
}

/// The D-Bus error name of a failed call.
pub fn error_name(e: &zbus::Error) -> String {
    match e {
        zbus::Error::MethodError(name, _, _) => name.to_string(),
        zbus::Error::FDO(e) => zbus::DBusError::name(e.as_ref()).to_string(),
        other => format!("{other:?}"),
    }
}

pub fn get<T>(d: &Dict, key: &str) -> T
where
    T: TryFrom<zbus::OwnedVariant>,
    <T as TryFrom<zbus::OwnedVariant>>::Error: std::fmt::Debug,
{
    let v = d.get(key).unwrap_or_else(|| panic!("no {key} in {d:?}"));
    T::try_from(v.try_clone().expect("clone a variant")).expect("type of a message dict value")
}

/// Every inbox message of the account, as the admin sees it (pages of 1,000).
pub async fn list_all(mb: &MailboxProxy<'_>, account: &OwnedObjectPath) -> Vec<Dict> {
    let mut out = Vec::new();
    loop {
        let mut filter = HashMap::new();
        filter.insert("account", Variant::from(account.as_ref()));
        let (page, total) = mb
            .list_messages("", filter, out.len() as u32, 1000)
            .await
            .expect("ListMessages");
        let n = page.len();
        out.extend(page);
        if n == 0 || out.len() as u32 >= total {
            return out;
        }
    }
}

/// `GetRaw`: the stored bytes, read from the passed fd.
pub async fn raw(mb: &MailboxProxy<'_>, id: u64) -> Vec<u8> {
    let fd = mb.get_raw("", id).await.expect("GetRaw");
    let fd: std::os::fd::OwnedFd = fd.into();
    let mut file = std::fs::File::from(fd);
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).expect("read the GetRaw fd");
    bytes
}

/// The Message-ID header value of a raw mail ("" when it has none).
pub fn message_id(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    text.split("\r\n")
        .take_while(|l| !l.is_empty())
        .find_map(|l| l.strip_prefix("Message-ID: "))
        .unwrap_or("")
        .to_string()
}

/// Message-ID -> how many stored copies, over every stored mail of the
/// account (read through GetRaw, so the bytes themselves are checked).
pub async fn stored_ids(mb: &MailboxProxy<'_>, account: &OwnedObjectPath) -> BTreeMap<String, u32> {
    let mut counts = BTreeMap::new();
    for m in list_all(mb, account).await {
        let bytes = raw(mb, get::<u64>(&m, "id")).await;
        *counts.entry(message_id(&bytes)).or_insert(0) += 1;
    }
    counts
}

/// The Message-IDs `common::drop_messages` gives its mails: every stored
/// raw mail of that drop has the same tag, so the expected set is
/// `<i.TAG@postfach.test>` for i in 0..n, with the tag read from any one.
pub fn expected_drop_ids(any: &str, n: u32) -> Vec<String> {
    let tag = any
        .trim_start_matches('<')
        .split_once('.')
        .map(|(_, rest)| rest.to_string())
        .unwrap_or_else(|| panic!("not a drop_messages Message-ID: {any}"));
    let mut ids: Vec<String> = (0..n).map(|i| format!("<{i}.{tag}")).collect();
    ids.sort();
    ids
}

/// Asserts that the store holds each of the `n` dropped mails exactly once.
pub async fn assert_each_once(mb: &MailboxProxy<'_>, account: &OwnedObjectPath, n: u32) {
    let counts = stored_ids(mb, account).await;
    let dups: Vec<_> = counts.iter().filter(|(_, c)| **c > 1).collect();
    assert!(dups.is_empty(), "stored more than once: {dups:?}");
    let any = counts.keys().next().expect("nothing stored");
    let got: Vec<String> = counts.keys().cloned().collect();
    let want = expected_drop_ids(any, n);
    let missing: Vec<_> = want.iter().filter(|w| !counts.contains_key(*w)).collect();
    assert!(
        missing.is_empty(),
        "{} mails lost, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    assert_eq!(got, want, "unexpected mails in the store");
}

/// What Dovecot 2.3 sends for a maildir file: every bare LF as CRLF, all
/// else untouched (measured; see tests/common). Invariant 3 is about the
/// server's bytes, so this is what must be stored.
pub fn as_dovecot_sends(file: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(file.len() + 8);
    for (i, b) in file.iter().enumerate() {
        if *b == b'\n' && (i == 0 || file[i - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(*b);
    }
    out
}

/// Peak resident memory of a process in kB (`VmHWM`).
pub fn peak_rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc status")
}

/// What the daemon must store for a maildir file fetched over `proto`:
/// POP3 also ends every mail with CRLF (RFC 1939 §3 multi-line answers end
/// in CRLF "." CRLF, and Dovecot adds the CRLF when the mail lacks one).
/// Over IMAP, Dovecot sends each NUL byte as 0x80 (measured): RFC 3501
/// §4.3 allows no NUL in a literal, and `BODY[]` is such a literal.
pub fn as_sent(proto: Proto, file: &[u8]) -> Vec<u8> {
    let mut out = as_dovecot_sends(file);
    if proto == Proto::Imap {
        for b in out.iter_mut().filter(|b| **b == 0) {
            *b = 0x80;
        }
    }
    if proto == Proto::Pop3 && !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}
