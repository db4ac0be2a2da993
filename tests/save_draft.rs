//! Mailbox.SaveDraft through a real daemon and the run's Dovecot, whose
//! Drafts folder carries RFC 6154 `\Drafts` (tests/env/dovecot.conf): a
//! draft lands in Drafts exactly once with `\Draft` and `\Seen` and the
//! bytes the store keeps; replacing it leaves only the new version, also
//! when the old one is already gone or its UIDVALIDITY changed (found by
//! Message-ID); DeleteMessage of a draft; the refusals; and who may
//! save, with real Unix callers on a private system bus.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::process::Command;
use std::time::Duration;

use mail_parser::MessageParser;
use postfach::dbus::proxy::{MailboxProxy, SignaturesProxy};
use zbus::{OwnedObjectPath, Variant};

use common::fetch as fetchkit;
use common::sysbus::{SysDaemon, SystemBus};
use common::{create_user, doveadm, doveadm_bytes, Env, MailUser};
use fetchkit::{error_name, get, Proto};

const NOT_FOUND: &str = "org.postfach.Postfach1.Error.NotFound";
const INVALID: &str = "org.postfach.Postfach1.Error.InvalidArgument";
const FOLDER_UNKNOWN: &str = "org.postfach.Postfach1.Error.FolderUnknown";

type Message = HashMap<&'static str, Variant<'static>>;

fn draft(subject: &str, replaces: Option<u64>) -> Message {
    let mut m = HashMap::new();
    m.insert(
        "to",
        Variant::from(vec!["Jörg Kunde <kunde@example.test>".to_string()]),
    );
    m.insert("subject", Variant::from(subject.to_string()));
    m.insert(
        "text",
        Variant::from("Sehr geehrter Herr Kunde,".to_string()),
    );
    if let Some(id) = replaces {
        m.insert("draft_id", Variant::from(id));
    }
    m
}

/// An IMAP account of a new mail user with a Drafts folder on the server,
/// synchronized so that DraftsFolder is proposed from `\Drafts`.
async fn imap_with_drafts(conn: &zbus::Connection, prefix: &str) -> (MailUser, OwnedObjectPath) {
    let env = Env::get();
    let user = create_user(env, prefix);
    doveadm(env, &["mailbox", "create", "-u", &user.address, "Drafts"]);
    let path = fetchkit::account_for(conn, Proto::Imap, &user, false, 0).await;
    let acc = fetchkit::account(conn, &path).await;
    acc.sync_folders().await.unwrap();
    assert_eq!(acc.drafts_folder().await.unwrap(), "Drafts");
    (user, path)
}

/// `doveadm fetch FIELD` of every mail in Drafts, one string per mail.
fn drafts_field(user: &MailUser, field: &str) -> Vec<String> {
    let out = doveadm_bytes(
        Env::get(),
        &[
            "fetch",
            "-u",
            &user.address,
            field,
            "mailbox",
            "Drafts",
            "all",
        ],
    );
    let text = String::from_utf8_lossy(&out).into_owned();
    text.split('\u{c}')
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_string)
        .collect()
}

fn subjects_on_server(user: &MailUser) -> Vec<String> {
    drafts_field(user, "hdr.subject")
        .into_iter()
        .map(|r| {
            let s = r
                .strip_prefix("hdr.subject:")
                .unwrap_or(&r)
                .trim()
                .to_string();
            let header = format!("Subject: {s}\r\n\r\n");
            let parsed = MessageParser::default().parse(header.as_bytes());
            parsed
                .and_then(|m| m.subject().map(str::to_string))
                .unwrap_or(s)
        })
        .collect()
}

/// `doveadm save` of `bytes` into `folder` of `user`.
fn doveadm_save(user: &MailUser, folder: &str, bytes: &[u8]) {
    use std::io::Write;
    let mut child = Command::new("doveadm")
        .arg("-c")
        .arg(&Env::get().dovecot_conf)
        .args(["save", "-u", &user.address, "-m", folder])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("run doveadm save");
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    assert!(child.wait().unwrap().success(), "doveadm save");
}

/// Ids in folder `drafts` as the admin sees them.
async fn listed_drafts(mb: &MailboxProxy<'_>) -> Vec<u64> {
    let mut f = HashMap::new();
    f.insert("folder", Variant::from("drafts"));
    let (page, total) = mb.list_messages("", f, 0, 100).await.unwrap();
    assert_eq!(page.len() as u32, total);
    page.iter().map(|d| get::<u64>(d, "id")).collect()
}

/// The header block, line endings as LF (Dovecot's maildir stores LF).
fn header_block(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw).replace("\r\n", "\n");
    text.split_once("\n\n")
        .map_or(text.clone(), |(h, _)| h.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draft_is_saved_once_and_a_replacement_leaves_only_the_new_version() {
    let state = tempfile::tempdir().unwrap();
    let daemon = fetchkit::start(state.path());
    let conn = fetchkit::bus(&daemon).await;
    let (user, path) = imap_with_drafts(&conn, "drs").await;
    SignaturesProxy::new(&conn)
        .await
        .unwrap()
        .set_signature("mandant1", "", "Gruß aus dem Vertrieb", "")
        .await
        .unwrap();
    let mb = fetchkit::mailbox(&conn).await;

    let id = mb
        .save_draft("mm", &path, draft("Angebot für Müller", None))
        .await
        .unwrap();
    let flags = drafts_field(&user, "flags");
    assert_eq!(flags.len(), 1, "exactly one draft: {flags:?}");
    assert!(
        flags[0].contains("\\Draft") && flags[0].contains("\\Seen"),
        "{flags:?}"
    );
    assert_eq!(subjects_on_server(&user), ["Angebot für Müller"]);

    // The server holds the bytes the store keeps, header for header.
    let raw = fetchkit::raw(&mb, id).await;
    let on_server = drafts_field(&user, "hdr").remove(0);
    let on_server = on_server.strip_prefix("hdr:").unwrap().trim_start();
    assert_eq!(
        header_block(on_server.as_bytes()).trim_end(),
        header_block(&raw).trim_end()
    );
    let parsed = MessageParser::default().parse(raw.as_slice()).unwrap();
    assert_eq!(parsed.subject(), Some("Angebot für Müller"));
    let text = parsed.body_text(0).unwrap().replace("\r\n", "\n");
    assert!(
        text.trim_end().ends_with("-- \nGruß aus dem Vertrieb"),
        "{text:?}"
    );
    let shown = mb.get_message("mm", id).await.unwrap();
    assert_eq!(get::<String>(&shown, "folder"), "drafts");
    assert_eq!(
        Some(get::<String>(&shown, "message_id").as_str()),
        parsed.message_id()
    );
    assert_eq!(listed_drafts(&mb).await, [id]);

    // Replace it: the new version has a new id; the old one is gone on
    // the server and here.
    let id2 = mb
        .save_draft(
            "mm",
            &path,
            draft("Angebot für Müller, Fassung 2", Some(id)),
        )
        .await
        .unwrap();
    assert_ne!(id2, id);
    assert_eq!(subjects_on_server(&user), ["Angebot für Müller, Fassung 2"]);
    assert_eq!(listed_drafts(&mb).await, [id2]);
    let gone = mb.get_message("mm", id).await.unwrap_err();
    assert_eq!(error_name(&gone), NOT_FOUND, "{gone}");

    // The replaced id names nothing any more: refused, nothing appended.
    let err = mb
        .save_draft("mm", &path, draft("Fassung 3", Some(id)))
        .await
        .unwrap_err();
    assert_eq!(error_name(&err), NOT_FOUND, "{err}");
    assert!(err.to_string().contains("draft_id"), "{err}");
    assert_eq!(subjects_on_server(&user), ["Angebot für Müller, Fassung 2"]);
    drop(daemon);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replacement_saves_when_the_old_draft_is_gone_or_renumbered() {
    let env = Env::get();
    let state = tempfile::tempdir().unwrap();
    let daemon = fetchkit::start(state.path());
    let conn = fetchkit::bus(&daemon).await;
    let (user, path) = imap_with_drafts(&conn, "drg").await;
    let mb = fetchkit::mailbox(&conn).await;
    let a = mb.save_draft("", &path, draft("eins", None)).await.unwrap();

    // Another client deleted it meanwhile.
    doveadm(
        env,
        &["expunge", "-u", &user.address, "mailbox", "Drafts", "all"],
    );
    let b = mb
        .save_draft("", &path, draft("zwei", Some(a)))
        .await
        .unwrap();
    assert_eq!(subjects_on_server(&user), ["zwei"]);
    assert_eq!(listed_drafts(&mb).await, [b]);

    // A second copy of the same version (an APPEND sent again after a
    // broken connection): the replacement removes both.
    let copy = fetchkit::raw(&mb, b).await;
    doveadm_save(&user, "Drafts", &copy);
    assert_eq!(subjects_on_server(&user), ["zwei", "zwei"]);
    let b2 = mb
        .save_draft("", &path, draft("zwei b", Some(b)))
        .await
        .unwrap();
    assert_eq!(subjects_on_server(&user), ["zwei b"]);
    let b = b2;

    // A new UIDVALIDITY: the recorded UID means nothing, the Message-ID
    // still finds the old version.
    doveadm(
        env,
        &[
            "mailbox",
            "update",
            "-u",
            &user.address,
            "--uid-validity",
            "4711",
            "Drafts",
        ],
    );
    let c = mb
        .save_draft("", &path, draft("drei", Some(b)))
        .await
        .unwrap();
    assert_eq!(subjects_on_server(&user), ["drei"]);
    assert_eq!(listed_drafts(&mb).await, [c]);

    // DeleteMessage of a draft removes it from the Drafts folder too.
    mb.delete_message("", c).await.unwrap();
    assert!(subjects_on_server(&user).is_empty());
    assert!(listed_drafts(&mb).await.is_empty());
    let err = mb
        .save_draft("", &path, draft("vier", Some(c)))
        .await
        .unwrap_err();
    assert_eq!(error_name(&err), NOT_FOUND, "{err}");
    drop(daemon);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_clear_and_leave_nothing_behind() {
    let env = Env::get();
    let state = tempfile::tempdir().unwrap();
    let daemon = fetchkit::start(state.path());
    let conn = fetchkit::bus(&daemon).await;
    let mb = fetchkit::mailbox(&conn).await;
    let (user, path) = imap_with_drafts(&conn, "dre").await;

    // POP3 has no folders on the server.
    let pop = create_user(env, "drep");
    let pop_path = fetchkit::account_for(&conn, Proto::Pop3, &pop, false, 0).await;
    let err = mb
        .save_draft("", &pop_path, draft("x", None))
        .await
        .unwrap_err();
    assert_eq!(error_name(&err), INVALID, "{err}");
    assert!(err.to_string().contains("POP3"), "{err}");

    // No Drafts folder set (never synchronized).
    let bare = create_user(env, "dren");
    let bare_path = fetchkit::account_for(&conn, Proto::Imap, &bare, false, 0).await;
    let err = mb
        .save_draft("", &bare_path, draft("x", None))
        .await
        .unwrap_err();
    assert_eq!(error_name(&err), FOLDER_UNKNOWN, "{err}");
    assert!(err.to_string().contains("SyncFolders"), "{err}");

    // An id that is no draft, and a draft of another account.
    let err = mb
        .save_draft("", &path, draft("x", Some(999_999)))
        .await
        .unwrap_err();
    assert_eq!(error_name(&err), NOT_FOUND, "{err}");
    let (other, other_path) = imap_with_drafts(&conn, "dreo").await;
    let foreign = mb
        .save_draft("", &other_path, draft("fremd", None))
        .await
        .unwrap();
    let err = mb
        .save_draft("", &path, draft("x", Some(foreign)))
        .await
        .unwrap_err();
    assert_eq!(error_name(&err), NOT_FOUND, "{err}");
    assert_eq!(subjects_on_server(&other), ["fremd"], "untouched");

    // A bad key names itself.
    let mut bad = draft("x", None);
    bad.insert("farbe", Variant::from("blau"));
    let err = mb.save_draft("", &path, bad).await.unwrap_err();
    assert_eq!(error_name(&err), INVALID, "{err}");
    assert!(err.to_string().contains("farbe"), "{err}");
    assert!(subjects_on_server(&user).is_empty(), "nothing appended");

    // A private account's drafts are its owner's: for bob it does not exist.
    let owner = create_user(env, "drpv");
    doveadm(env, &["mailbox", "create", "-u", &owner.address, "Drafts"]);
    let mut s = fetchkit::settings(Proto::Imap, &owner, &owner.password, false, 0);
    s.insert("private_owner", Variant::from("alice"));
    let private = fetchkit::create(&conn, s).await;
    fetchkit::account(&conn, &private)
        .await
        .sync_folders()
        .await
        .unwrap();
    let err = mb
        .save_draft("bob", &private, draft("x", None))
        .await
        .unwrap_err();
    assert_eq!(error_name(&err), NOT_FOUND, "{err}");
    assert!(subjects_on_server(&owner).is_empty());
    let mine = mb
        .save_draft("alice", &private, draft("von Alice", None))
        .await
        .unwrap();
    let err = mb
        .save_draft("bob", &private, draft("x", Some(mine)))
        .await
        .unwrap_err();
    assert_eq!(error_name(&err), NOT_FOUND, "{err}");
    assert_eq!(subjects_on_server(&owner), ["von Alice"]);
    drop(daemon);
}

fn sys_config(env: &Env) -> String {
    format!(
        "[tls]\nextra_ca_file = \"{}\"\n[access]\nadmin_groups = [\"{}\"]\nfrontend_groups = [\"{}\"]\n[access.users]\n{} = \"alice\"\n",
        env.ca.display(),
        env.admin_group,
        env.frontend_group,
        env.unix_alice,
    )
}

/// `gdbus call … SaveDraft` as the Unix user `unix`: Ok(stdout) or
/// Err(stderr), which names the D-Bus error.
fn gdbus_save(bus: &SystemBus, unix: &str, crm: &str, account: &str) -> Result<String, String> {
    let mut cmd = Command::new("gdbus");
    cmd.args(["call", "--address", bus.address()])
        .args(["--dest", "org.postfach.Postfach1"])
        .args(["--object-path", "/org/postfach/Postfach1"])
        .args(["--method", "org.postfach.Postfach1.Mailbox.SaveDraft"])
        .arg(format!("'{crm}'"))
        .arg(format!("objectpath '{account}'"))
        .arg("{'subject': <'vom Bus'>}");
    let out = common::as_user(unix, &cmd).output().expect("run gdbus");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_callers_who_may_use_the_account_save_drafts() {
    let env = Env::get();
    let bus = SystemBus::start();
    let d = SysDaemon::start(bus.clone(), &sys_config(env), None, Duration::from_secs(15));
    let conn = bus.connect().await;
    let (user, path) = imap_with_drafts(&conn, "drsys").await;

    for (unix, crm) in [
        (&env.unix_nobody, "alice"),
        (&env.unix_bob, "bob"),
        (&env.unix_alice, "bob"),
    ] {
        let err = gdbus_save(&bus, unix, crm, path.as_str()).unwrap_err();
        assert!(
            err.contains("org.postfach.Postfach1.Error.AccessDenied"),
            "{unix} as {crm}: {err}"
        );
    }
    assert!(subjects_on_server(&user).is_empty(), "nothing appended");

    // The CRM user alice (mapped) and a frontend acting for bob may.
    let out = gdbus_save(&bus, &env.unix_alice, "alice", path.as_str()).unwrap();
    assert!(out.contains("uint64"), "{out}");
    gdbus_save(&bus, &env.unix_frontend, "bob", path.as_str()).unwrap();
    let mut subjects = subjects_on_server(&user);
    subjects.sort();
    assert_eq!(subjects, ["vom Bus", "vom Bus"]);
    drop(d);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctl_saves_and_replaces_a_draft() {
    let state = tempfile::tempdir().unwrap();
    let daemon = fetchkit::start(state.path());
    let conn = fetchkit::bus(&daemon).await;
    let (user, path) = imap_with_drafts(&conn, "drctl").await;
    let account = path.as_str().rsplit('/').next().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let body = dir.path().join("body.txt");
    std::fs::write(&body, "Entwurf").unwrap();
    let body = body.to_str().unwrap();
    let id_of = |out: std::process::Output| -> u64 {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["id"].as_u64().unwrap()
    };
    let first = id_of(daemon.ctl(&[
        "--json",
        "draft",
        &account,
        "--subject",
        "per ctl",
        "--body",
        body,
    ]));
    let replace = first.to_string();
    let second = id_of(daemon.ctl(&[
        "--json",
        "draft",
        &account,
        "--subject",
        "per ctl 2",
        "--body",
        body,
        "--replace",
        &replace,
    ]));
    assert_ne!(first, second);
    assert_eq!(subjects_on_server(&user), ["per ctl 2"]);
    let again = daemon.ctl(&["draft", &account, "--body", body, "--replace", &replace]);
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("draft_id"),
        "{again:?}"
    );
}
