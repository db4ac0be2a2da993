//! Random calls against a live daemon on a system bus with the shipped
//! policy (tests/common/abuse.rs makes them): every method of every
//! object, with random argument types and values, from real other Unix
//! users — one with no rights, a mapped CRM user, a frontend, an admin.
//!
//! Afterwards the daemon still owns its name and answers, its log shows no
//! panic, its memory stayed flat, and nothing changed that the caller may
//! not change: nobody changes nothing; alice changes no account, none of
//! bob's mail and no signature but her own; a frontend changes no account.
//!
//! `POSTFACH_ABUSE_CALLS` sets the number of calls (default 2,000; the
//! full run is 10,000), `POSTFACH_ABUSE_SEED` the seed (default: random,
//! printed).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

mod common;

use std::collections::HashMap;
use std::process::Command;
use std::time::Duration;

use zbus::{Connection, OwnedObjectPath, Variant};

use common::abuse::{self, World};
use common::fetch::{self, Proto};
use common::sysbus::{SysDaemon, SystemBus, NAME};
use common::Env;
use postfach::dbus::proxy::{MailboxProxy, ManagerProxy, SignaturesProxy};

const TENANT: &str = "mandant1";

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

/// What an admin sees, in comparable text.
struct Snapshot {
    accounts: String,
    /// Per account path: its messages in every folder.
    mail: HashMap<String, String>,
    /// Per CRM user ("" = general): signature and preview.
    signatures: HashMap<String, String>,
}

async fn snapshot(conn: &Connection, accounts: &[OwnedObjectPath]) -> Snapshot {
    let mb = fetch::mailbox(conn).await;
    let mut mail = HashMap::new();
    for a in accounts {
        let mut lines = Vec::new();
        for folder in ["inbox", "outbox", "drafts"] {
            let mut filter = HashMap::new();
            filter.insert("account", Variant::from(a.as_ref()));
            filter.insert("folder", Variant::from(folder));
            let (page, _) = mb.list_messages("", filter, 0, 1000).await.unwrap();
            for m in page {
                let mut kv: Vec<String> = m.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
                kv.sort();
                lines.push(format!("{folder} {}", kv.join(" ")));
            }
        }
        lines.sort();
        mail.insert(a.to_string(), lines.join("\n"));
    }
    let sig = SignaturesProxy::new(conn).await.unwrap();
    let mut signatures = HashMap::new();
    for user in ["", "alice", "bob"] {
        let own = shown(sig.get_signature(TENANT, user).await);
        let preview = shown(sig.preview_signature(TENANT, user).await);
        signatures.insert(user.to_string(), format!("{own}\n{preview}"));
    }
    Snapshot {
        accounts: common::api::snapshot(conn).await,
        mail,
        signatures,
    }
}

/// A reply as comparable text: the value, or the error's name and message.
fn shown<T: std::fmt::Debug>(r: zbus::Result<T>) -> String {
    match r {
        Ok(v) => format!("{v:?}"),
        Err(e) => format!("{:?}", common::api::error_parts(e)),
    }
}

/// The daemon owns its name, answers a normal call and has not exited.
async fn alive(d: &mut SysDaemon, conn: &Connection, after: &str) {
    assert!(d.try_wait().is_none(), "postfachd exited after {after}");
    assert!(
        d.bus().has_owner(NAME),
        "postfachd left the bus after {after}"
    );
    let version = ManagerProxy::new(conn).await.unwrap().version().await;
    assert!(version.is_ok(), "no answer after {after}: {version:?}");
    let log = d.log();
    assert!(!log.contains("panicked"), "a panic after {after}:\n{log}");
}

/// Runs the client half of this binary as `user`.
fn calls_as(user: &str, bus: &SystemBus, world: &World, seed: u64, calls: u64) -> String {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--ignored", "--exact", "abuse_client", "--nocapture", "-q"])
        .env("POSTFACH_ABUSE_BUS", bus.address())
        .env("POSTFACH_ABUSE_WORLD", world.encode())
        .env("POSTFACH_ABUSE_SEED", seed.to_string())
        .env("POSTFACH_ABUSE_CALLS", calls.to_string());
    let out = common::as_user(user, &cmd).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "the client as {user} failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .filter(|l| l.starts_with("ABUSE"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The client half: makes the calls and prints what they got.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by random_calls_change_nothing_they_may_not as another Unix user"]
async fn abuse_client() {
    let Ok(bus) = std::env::var("POSTFACH_ABUSE_BUS") else {
        return;
    };
    let var = |k: &str| std::env::var(k).unwrap();
    let world = World::decode(&var("POSTFACH_ABUSE_WORLD"));
    let seed: u64 = var("POSTFACH_ABUSE_SEED").parse().unwrap();
    let calls: u64 = var("POSTFACH_ABUSE_CALLS").parse().unwrap();
    let t = abuse::run(&bus, seed, calls, world, 8).await;
    println!(
        "ABUSE sent={} replies={} unbuilt={} timeouts={} reconnects={}",
        t.sent, t.replies, t.unbuilt, t.timeouts, t.reconnects
    );
    for (name, n) in &t.errors {
        println!("ABUSE error {name} {n}");
    }
}

fn total_calls() -> u64 {
    std::env::var("POSTFACH_ABUSE_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_calls_change_nothing_they_may_not() {
    let env = Env::get();
    let bus = SystemBus::start();
    let mut d = SysDaemon::start(bus.clone(), &config(env), None, Duration::from_secs(15));
    let conn = bus.connect().await;

    // Real accounts with real mail: a public one, alice's and bob's.
    let mut accounts = Vec::new();
    for (proto, owner, n) in [
        (Proto::Imap, "", 3),
        (Proto::Pop3, "alice", 2),
        (Proto::Imap, "bob", 2),
    ] {
        let user = common::create_user(env, "abuse");
        common::drop_messages(env, &user, n);
        let mut s = fetch::settings(proto, &user, &user.password, false, 0);
        s.insert("private_owner", Variant::from(owner));
        let path = fetch::create(&conn, s).await;
        let got = fetch::account(&conn, &path)
            .await
            .fetch_now()
            .await
            .unwrap();
        assert_eq!(got, n);
        accounts.push(path);
    }
    let sig = SignaturesProxy::new(&conn).await.unwrap();
    for user in ["", "alice", "bob"] {
        sig.set_signature(TENANT, user, "Gruss, @Vorname@", "<p>@Vorname@</p>")
            .await
            .unwrap();
        if !user.is_empty() {
            let mut fields = HashMap::new();
            fields.insert("Vorname", Variant::from(user));
            sig.set_employee(TENANT, user, fields, &[]).await.unwrap();
        }
    }
    let mb: MailboxProxy<'_> = fetch::mailbox(&conn).await;
    let mut ids = Vec::new();
    for a in &accounts {
        for m in fetch::list_all(&mb, a).await {
            ids.push(fetch::get::<u64>(&m, "id"));
        }
    }
    assert_eq!(ids.len(), 7);
    let world = World {
        accounts: accounts.iter().map(|a| a.to_string()).collect(),
        ids,
    };

    let calls = total_calls();
    let seed: u64 = std::env::var("POSTFACH_ABUSE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::random::<u32>().into());
    println!("dbus_abuse: {calls} calls, seed {seed}");
    let before = snapshot(&conn, &accounts).await;
    let bobs = accounts[2].to_string();
    let mut rss = vec![("start".to_string(), d.rss_kb())];
    let phases = [
        ("nobody", &env.unix_nobody),
        ("alice", &env.unix_alice),
        ("frontend", &env.unix_frontend),
        ("admin", &env.unix_admin),
    ];
    for (i, (role, user)) in phases.iter().enumerate() {
        let tally = calls_as(user, &bus, &world, seed + i as u64, calls / 4);
        println!("{role}:\n{tally}");
        assert!(
            tally.contains(" timeouts=0 "),
            "calls of {role} got no answer within minutes:\n{tally}"
        );
        alive(&mut d, &conn, &format!("the calls of {role}")).await;
        rss.push((role.to_string(), d.rss_kb()));
        let now = snapshot(&conn, &accounts).await;
        if *role == "admin" {
            // The snapshots see what calls change: an admin may change
            // everything, and in this many calls deletes or updates
            // something.
            assert!(
                now.accounts != before.accounts || now.mail != before.mail,
                "the admin's calls changed nothing (seed {seed})"
            );
            break;
        }
        let what = |w: &str| format!("{w} after the calls of {role} (seed {seed})");
        common::api::same(&now.accounts, &before.accounts, &what("accounts"));
        for (path, mail) in &before.mail {
            if *role == "nobody" || (*role == "alice" && *path == bobs) {
                common::api::same(&now.mail[path], mail, &what(&format!("mail of {path}")));
            }
        }
        for (user, s) in &before.signatures {
            if *role == "nobody" || (*role == "alice" && user != "alice") {
                assert_eq!(&now.signatures[user], s, "{}", what("a signature"));
            }
        }
    }
    println!("dbus_abuse: VmRSS (KiB) {rss:?}");
    // Flat after the first phase has warmed the caches: a generous bound,
    // far below what keeping any part of the calls' arguments would cost.
    let warm = rss[1].1;
    let end = rss.last().unwrap().1;
    assert!(
        end < warm + 64 * 1024,
        "VmRSS grew from {warm} KiB to {end} KiB: {rss:?}"
    );
}
