//! Attacks on a real system bus with the shipped policy file, postfachd
//! running as an unprivileged system user, and callers that are real other
//! Unix users (tests/common/sysbus.rs): who may read account settings,
//! what signals tell every listener, arguments too big to echo, and a
//! daemon that loses its bus.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

mod common;

use std::collections::{BTreeSet, HashMap};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use zbus::{Connection, OwnedObjectPath, Variant};

use common::api::error_parts;
use common::sysbus::{SysDaemon, SystemBus, NAME};
use common::Env;
use postfach::dbus::proxy::{AccountProxy, MailboxProxy, ManagerProxy, SignaturesProxy};

const ROOT: &str = "/org/postfach/Postfach1";
const ACCOUNT: &str = "org.postfach.Postfach1.Account";

fn config(env: &Env) -> String {
    format!(
        "[tls]\nextra_ca_file = \"{}\"\n[access]\nadmin_groups = [\"{}\"]\nfrontend_groups = [\"{}\"]\n[access.users]\n{} = \"alice\"\n{} = \"bob\"\n",
        env.ca.display(),
        env.admin_group,
        env.frontend_group,
        env.unix_alice,
        env.unix_bob
    )
}

fn start() -> (Arc<SystemBus>, SysDaemon) {
    let bus = SystemBus::start();
    let d = SysDaemon::start(
        bus.clone(),
        &config(Env::get()),
        None,
        Duration::from_secs(15),
    );
    (bus, d)
}

async fn create(conn: &Connection, settings: &[(&str, Variant<'_>)]) -> OwnedObjectPath {
    let mgr = ManagerProxy::new(conn).await.unwrap();
    let mut s: HashMap<&str, Variant<'_>> = settings.iter().cloned().collect();
    s.entry("kind").or_insert(Variant::from("imap"));
    s.entry("host").or_insert(Variant::from("127.0.0.1"));
    s.entry("poll_interval").or_insert(Variant::from(0u32));
    mgr.create_account(s).await.unwrap()
}

async fn account<'a>(conn: &'a Connection, path: &OwnedObjectPath) -> AccountProxy<'a> {
    AccountProxy::builder(conn)
        .path(path.clone())
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .await
        .unwrap()
}

/// `dbus-send --print-reply` to the daemon as `user`: on failure stderr
/// says `Error <name>: <message>`.
fn send(bus: &SystemBus, user: &str, path: &str, method: &str, args: &[&str]) -> Output {
    let mut cmd = Command::new("dbus-send");
    cmd.arg(format!("--bus={}", bus.address()))
        .args(["--print-reply", &format!("--dest={NAME}"), path, method])
        .args(args);
    common::as_user(user, &cmd).output().unwrap()
}

fn get(bus: &SystemBus, user: &str, path: &str, prop: &str) -> Output {
    let args = [format!("string:{ACCOUNT}"), format!("string:{prop}")];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    send(
        bus,
        user,
        path,
        "org.freedesktop.DBus.Properties.Get",
        &args,
    )
}

fn get_all(bus: &SystemBus, user: &str, path: &str) -> Output {
    let iface = format!("string:{ACCOUNT}");
    send(
        bus,
        user,
        path,
        "org.freedesktop.DBus.Properties.GetAll",
        &[&iface],
    )
}

fn managed(bus: &SystemBus, user: &str) -> Output {
    send(
        bus,
        user,
        ROOT,
        "org.freedesktop.DBus.ObjectManager.GetManagedObjects",
        &[],
    )
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "call failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The error line of a failed call.
fn failed(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "call succeeded: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).trim().to_string()
}

/// The account paths in a GetManagedObjects reply.
fn paths(reply: &str) -> BTreeSet<String> {
    reply
        .split("object path \"")
        .skip(1)
        .filter_map(|p| p.split('"').next())
        .map(String::from)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_settings_are_read_only_by_who_may() {
    let env = Env::get();
    let (bus, _d) = start();
    let conn = bus.connect().await;
    let public = create(&conn, &[("address", "oeffentlich@example.test".into())]).await;
    let alices = create(
        &conn,
        &[
            ("address", "alice-privat@example.test".into()),
            ("private_owner", "alice".into()),
        ],
    )
    .await;
    let bobs = create(
        &conn,
        &[
            ("address", "bob-privat@example.test".into()),
            ("private_owner", "bob".into()),
        ],
    )
    .await;
    let all: BTreeSet<String> = [&public, &alices, &bobs]
        .iter()
        .map(|p| p.to_string())
        .collect();

    // Admins and frontends: every account, every property.
    for user in [&env.unix_admin, &env.unix_frontend] {
        assert_eq!(paths(&ok(&managed(&bus, user))), all, "{user}");
        assert!(ok(&get(&bus, user, bobs.as_str(), "Address")).contains("bob-privat@"));
        assert!(ok(&get_all(&bus, user, alices.as_str())).contains("alice-privat@"));
    }

    // A mapped CRM user: public accounts and its own private ones.
    let alice = &env.unix_alice;
    let seen = paths(&ok(&managed(&bus, alice)));
    let want: BTreeSet<String> = [public.to_string(), alices.to_string()].into();
    assert_eq!(seen, want, "alice sees the public and her own account");
    assert!(!ok(&managed(&bus, alice)).contains("bob-privat"));
    assert!(ok(&get(&bus, alice, public.as_str(), "Address")).contains("oeffentlich@"));
    assert!(ok(&get_all(&bus, alice, alices.as_str())).contains("alice-privat@"));
    // Bob's private account does not exist for her: the very answer for a
    // path that nobody serves.
    let ghost = format!("{ROOT}/accounts/zz9");
    for (hidden, none) in [
        (
            get(&bus, alice, bobs.as_str(), "Address"),
            get(&bus, alice, &ghost, "Address"),
        ),
        (
            get_all(&bus, alice, bobs.as_str()),
            get_all(&bus, alice, &ghost),
        ),
    ] {
        let hidden = failed(&hidden);
        assert!(
            hidden.contains("org.freedesktop.DBus.Error.UnknownObject"),
            "{hidden}"
        );
        assert_eq!(hidden.replace(bobs.as_str(), &ghost), failed(&none));
    }

    // Everyone else: AccessDenied, for every way of reading.
    for user in [&env.unix_nobody] {
        for out in [
            managed(&bus, user),
            get(&bus, user, public.as_str(), "Address"),
            get(&bus, user, public.as_str(), "State"),
            get_all(&bus, user, public.as_str()),
            get_all(&bus, user, bobs.as_str()),
        ] {
            let err = failed(&out);
            assert!(
                err.contains("org.freedesktop.DBus.Error.AccessDenied"),
                "{err}"
            );
            assert!(err.contains("not allowed to read accounts"), "{err}");
            assert!(!err.contains("@example.test"), "{err}");
        }
        // Introspection stays open: it shows the API, not the settings.
        let xml = ok(&send(
            &bus,
            user,
            public.as_str(),
            "org.freedesktop.DBus.Introspectable.Introspect",
            &[],
        ));
        assert!(xml.contains("<property name=\"Address\" type=\"s\" access=\"read\">"));
        assert!(!xml.contains("oeffentlich@"));
    }

    // Properties are read-only, also for an admin.
    let set = send(
        &bus,
        "root",
        public.as_str(),
        "org.freedesktop.DBus.Properties.Set",
        &[
            &format!("string:{ACCOUNT}"),
            "string:Address",
            "variant:string:x@example.test",
        ],
    );
    assert!(failed(&set).contains("PropertyReadOnly"));
    assert!(ok(&get(&bus, "root", public.as_str(), "Address")).contains("oeffentlich@"));
}

/// Runs `dbus-monitor` as `user` on `bus` into a file; it listens with
/// match rules and asks to eavesdrop (it cannot become a monitor).
struct Monitor {
    child: std::process::Child,
    out: std::path::PathBuf,
}

impl Monitor {
    fn start(bus: &SystemBus, user: &str) -> Monitor {
        let dir = common::sysbus::open_dir("mon");
        let out = dir.join("monitor.txt");
        let file = std::fs::File::create(&out).unwrap();
        let mut cmd = Command::new("dbus-monitor");
        cmd.args(["--address", bus.address()]);
        let child = common::as_user(user, &cmd)
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let m = Monitor { child, out };
        m.wait_for("NameAcquired", Duration::from_secs(10));
        m
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.out).unwrap()).into_owned()
    }

    fn wait_for(&self, what: &str, limit: Duration) {
        let deadline = Instant::now() + limit;
        while !self.text().contains(what) {
            assert!(
                Instant::now() < deadline,
                "the listener never saw {what}:\n{}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signals_tell_a_listener_nothing_private() {
    let env = Env::get();
    let (bus, d) = start();
    let conn = bus.connect().await;
    let mon = Monitor::start(&bus, &env.unix_nobody);

    // Mail for a real account, fetched first with a wrong password (the
    // server's refusal names the user), then with the right one.
    let mut user = common::create_user(env, "sig");
    common::drop_raw(
        env,
        &user,
        b"From: a@example.test\r\nSubject: Betreff-Geheim\r\n\r\nGeheimer Text\r\n",
    );
    let real = create(
        &conn,
        &[
            ("address", user.address.as_str().into()),
            ("username", user.name.as_str().into()),
            ("port", env.imaps_port.into()),
            ("password", "Falsches-Geheim-1".into()),
            ("tenant", "Mandant-Geheim-1".into()),
            ("name", "Konto-Geheim-1".into()),
            ("private_owner", "alice".into()),
        ],
    )
    .await;
    let real_acc = account(&conn, &real).await;
    real_acc.fetch_now().await.expect_err("a wrong password");
    assert!(real_acc.last_error().await.unwrap().contains(&user.name));
    common::set_password(env, &mut user, "Richtiges-Geheim-2");
    real_acc.set_password("Richtiges-Geheim-2").await.unwrap();
    // Dovecot may answer from the old passwd-file for up to a second.
    let deadline = Instant::now() + Duration::from_secs(10);
    while real_acc.fetch_now().await.ok() != Some(1) {
        assert!(Instant::now() < deadline, "the right password never worked");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // An account whose host cannot be resolved: its error names the host.
    let unknown = create(
        &conn,
        &[
            ("address", "adresse-geheim@example.test".into()),
            ("host", "host-geheim.invalid".into()),
            ("username", "login-geheim".into()),
            ("smtp_host", "smtp-geheim.invalid".into()),
            ("smtp_username", "smtp-login-geheim".into()),
            ("tenant", "Mandant-Geheim-3".into()),
            ("name", "Konto-Geheim-3".into()),
            ("private_owner", "bob".into()),
        ],
    )
    .await;
    let acc = account(&conn, &unknown).await;
    acc.set_password("Passwort-Geheim-3").await.unwrap();
    let mut change = HashMap::new();
    change.insert("name", Variant::from("Konto-Geheim-4"));
    change.insert("tenant", Variant::from("Mandant-Geheim-4"));
    change.insert("address", Variant::from("neu-geheim@example.test"));
    acc.update(change).await.unwrap();
    acc.fetch_now()
        .await
        .expect_err("the host does not resolve");
    assert!(acc
        .last_error()
        .await
        .unwrap()
        .contains("host-geheim.invalid"));
    // Replies to the admin hold every private string; a listener that
    // could eavesdrop would see them.
    let props = zbus::fdo::PropertiesProxy::builder(&conn)
        .destination(NAME)
        .path(unknown.clone())
        .build()
        .await
        .unwrap();
    let all = props
        .get_all(zbus::names::InterfaceName::from_static_str_unchecked(
            ACCOUNT,
        ))
        .await
        .unwrap();
    assert!(format!("{all:?}").contains("smtp-login-geheim"));
    acc.delete().await.unwrap();

    mon.wait_for("member=InterfacesRemoved", Duration::from_secs(10));
    mon.wait_for("member=MessagesAdded", Duration::from_secs(10));
    let seen = mon.text();
    for member in [
        "InterfacesAdded",
        "PropertiesChanged",
        "FetchFinished",
        "MessagesAdded",
        "InterfacesRemoved",
    ] {
        assert!(
            seen.contains(&format!("member={member}")),
            "no {member}:\n{seen}"
        );
    }
    let private = [
        user.name.as_str(),
        user.address.as_str(),
        "Geheim",
        "geheim",
        "Betreff",
        "127.0.0.1",
        "example.test",
        "alice",
        "bob",
        "Authentication failed",
    ];
    for p in private {
        assert!(!seen.contains(p), "a listener saw {p:?}:\n{seen}");
    }
    assert!(
        !d.log().contains("Geheim-2"),
        "the password reached the log"
    );
}

/// Settings of a good account with `key` set to `value`.
fn settings_with<'a>(key: &'a str, value: &'a str) -> HashMap<&'a str, Variant<'a>> {
    let mut s: HashMap<&str, Variant<'_>> = HashMap::new();
    s.insert("kind", "imap".into());
    s.insert("host", "127.0.0.1".into());
    s.insert("address", "b@example.test".into());
    s.insert(key, Variant::from(value));
    s
}

/// Something over 7 MB: as control characters, `{:?}` made each six bytes.
fn huge() -> String {
    "\u{1}".repeat(7 << 20)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_arguments_leave_the_daemon_on_the_bus() {
    let (bus, mut d) = start();
    let conn = bus.connect().await;
    let path = create(&conn, &[("address", "a@example.test".into())]).await;
    let acc = account(&conn, &path).await;
    let mgr = ManagerProxy::new(&conn).await.unwrap();
    let mb = MailboxProxy::new(&conn).await.unwrap();
    let sig = SignaturesProxy::new(&conn).await.unwrap();
    let huge = huge();
    let no_filter = || HashMap::<&str, Variant<'_>>::new();
    let filter = |k: &'static str, v: &str| {
        let mut f = HashMap::new();
        f.insert(k, Variant::from(v.to_string()));
        f
    };
    let big_key = || {
        let mut f = HashMap::new();
        f.insert(huge.as_str(), Variant::from(true));
        f
    };
    let cases: Vec<(&str, zbus::Result<()>)> = vec![
        (
            "ListMessages user",
            mb.list_messages(&huge, no_filter(), 0, 10).await.map(drop),
        ),
        ("GetMessage user", mb.get_message(&huge, 1).await.map(drop)),
        ("GetRaw user", mb.get_raw(&huge, 1).await.map(drop)),
        ("SetRead user", mb.set_read(&huge, 1, true).await),
        ("Unassign user", mb.unassign(&huge, 1).await),
        ("DeleteMessage user", mb.delete_message(&huge, 1).await),
        (
            "AssignToContact contact",
            mb.assign_to_contact("alice", 1, &huge).await,
        ),
        (
            "folder filter",
            mb.list_messages("alice", filter("folder", &huge), 0, 10)
                .await
                .map(drop),
        ),
        (
            "tenant filter",
            mb.list_messages("alice", filter("tenant", &huge), 0, 10)
                .await
                .map(drop),
        ),
        (
            "text filter",
            mb.list_messages("alice", filter("text", &huge), 0, 10)
                .await
                .map(drop),
        ),
        (
            "filter key",
            mb.list_messages("alice", big_key(), 0, 10).await.map(drop),
        ),
        (
            "settings key",
            mgr.create_account(settings_with(&huge, "x"))
                .await
                .map(drop),
        ),
        (
            "settings name",
            mgr.create_account(settings_with("name", &huge))
                .await
                .map(drop),
        ),
        (
            "TestSettings host",
            mgr.test_settings(settings_with("host", &huge))
                .await
                .map(drop),
        ),
        ("Update key", acc.update(big_key()).await),
        ("SetPassword", acc.set_password(&huge).await),
        ("SetSmtpPassword", acc.set_smtp_password(&huge).await),
        (
            "SetSignature user",
            sig.set_signature("t", &huge, "", "").await,
        ),
        (
            "GetSignature tenant",
            sig.get_signature(&huge, "").await.map(drop),
        ),
        (
            "SetEmployee field key",
            sig.set_employee("t", "alice", big_key(), &[]).await,
        ),
    ];
    for (case, result) in cases {
        let (name, msg) = error_parts(result.expect_err(case));
        assert_eq!(
            name, "org.postfach.Postfach1.Error.InvalidArgument",
            "{case}: {msg}"
        );
        assert!(msg.len() < 1024, "{case}: a reply of {} bytes", msg.len());
        assert!(
            bus.has_owner(NAME),
            "{case}: the daemon left the bus:\n{}",
            d.log()
        );
    }
    assert!(d.try_wait().is_none(), "the daemon exited:\n{}", d.log());
    // And it still answers.
    assert_eq!(acc.address().await.unwrap(), "a@example.test");
    let log = d.log();
    assert!(log.len() < 1 << 20, "the log grew to {} bytes", log.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_the_bus_ends_the_daemon_with_an_error() {
    let (bus, mut d) = start();
    bus.kill();
    let status = d
        .wait_exit(Duration::from_secs(30))
        .unwrap_or_else(|| panic!("postfachd lives on without its bus:\n{}", d.log()));
    assert!(!status.success(), "exit status {status}, log:\n{}", d.log());
    assert!(d.log().contains("lost the bus"), "{}", d.log());
}

/// Item 3 of the attack report: 10,000 accounts, 16 parallel
/// GetManagedObjects from a user without a role, then from an admin.
/// Prints the daemon's RSS before and after; run with
/// `scripts/test --test bus_attack -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "creates 10,000 accounts; a measurement, run on demand"]
async fn managed_objects_with_10000_accounts_keep_memory_bounded() {
    let env = Env::get();
    let state = tempfile::Builder::new()
        .prefix("pf-10k")
        .tempdir_in("/dev/shm")
        .unwrap();
    {
        let store = postfach::store::Store::open(state.path()).unwrap();
        let s = |k: &str, v: &str| {
            (
                k.to_string(),
                postfach::account::SettingValue::Str(v.into()),
            )
        };
        for i in 0..10_000 {
            let settings = vec![
                s("kind", "imap"),
                s("host", "imap.example.test"),
                s("address", &format!("konto{i}@example.test")),
                s("name", &format!("Konto Nummer {i} der Firma")),
                s("username", &format!("konto{i}@example.test")),
                (
                    "poll_interval".to_string(),
                    postfach::account::SettingValue::U32(0),
                ),
            ];
            store
                .create_account(|id| postfach::account::Account::create(id, &settings))
                .unwrap();
        }
    }
    common::sysbus::give_to(state.path(), &common::sysbus::daemon_user());
    let bus = SystemBus::start();
    let d = SysDaemon::start(
        bus.clone(),
        &config(env),
        Some(state.path()),
        Duration::from_secs(300),
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    let start_kb = d.rss_kb();

    let parallel = |user: &str| {
        let children: Vec<_> = (0..16)
            .map(|_| {
                let mut cmd = Command::new("dbus-send");
                cmd.arg(format!("--bus={}", bus.address()))
                    .args([
                        "--print-reply",
                        "--reply-timeout=300000",
                        &format!("--dest={NAME}"),
                        ROOT,
                        "org.freedesktop.DBus.ObjectManager.GetManagedObjects",
                    ])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null());
                common::as_user(user, &cmd).spawn().unwrap()
            })
            .collect();
        children
            .into_iter()
            .map(|mut c| c.wait().unwrap().success())
            .collect::<Vec<bool>>()
    };
    let denied = parallel(&env.unix_nobody);
    let after_nobody_kb = d.rss_kb();

    let conn = bus.connect().await;
    let reply = conn
        .call_method(
            Some(NAME),
            ROOT,
            Some("org.freedesktop.DBus.ObjectManager"),
            "GetManagedObjects",
            &(),
        )
        .await
        .unwrap();
    let reply_bytes = reply.data().len() as u64;
    let objects: HashMap<OwnedObjectPath, HashMap<String, HashMap<String, zbus::OwnedVariant>>> =
        reply.body().deserialize().unwrap();
    let accounts = objects
        .keys()
        .filter(|p| p.as_str().starts_with("/org/postfach/Postfach1/accounts/"))
        .count();
    drop((reply, objects));
    let answered = parallel(&env.unix_admin);
    let after_admin_kb = d.rss_kb();
    eprintln!(
        "{accounts} accounts, one reply {} KiB: RSS {start_kb} KiB at rest, \
         {after_nobody_kb} KiB after 16 parallel calls by a user without a role \
         ({} answered), {after_admin_kb} KiB after 16 by an admin ({} answered)",
        reply_bytes / 1024,
        denied.iter().filter(|ok| **ok).count(),
        answered.iter().filter(|ok| **ok).count(),
    );
    assert_eq!(accounts, 10_000);
    assert!(
        denied.iter().all(|ok| !ok),
        "a user without a role was answered"
    );
    assert!(answered.iter().all(|ok| *ok), "an admin was refused");
    assert!(
        after_nobody_kb < start_kb + 4 * 1024,
        "denied calls cost memory: {start_kb} -> {after_nobody_kb} KiB"
    );
    // At most AT_ONCE replies are built at a time: growth stays within a
    // few replies, not 16 of them and their maps.
    assert!(
        after_admin_kb.saturating_sub(start_kb) * 1024 < 8 * reply_bytes,
        "16 admin calls: {start_kb} -> {after_admin_kb} KiB, one reply {reply_bytes} bytes"
    );
}
