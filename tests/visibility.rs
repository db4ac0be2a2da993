//! Invariant 6 through every Mailbox method, with real callers: mail
//! fetched from the run's Dovecot into a public and a private account
//! (owner alice), assigned and unassigned, asked for by alice and bob (Unix
//! users mapped by `[access.users]`), a CRM frontend acting as alice and as
//! bob, an admin, and an unmapped user — each a real Unix user calling over
//! the bus, so the daemon decides from true credentials. A listener running
//! as bob records every signal and must see opaque ids only. Changing the
//! account's PrivateOwner takes effect at once.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

mod common;

use common::fetch as fetchkit;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Read;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use zbus::Variant;

use common::{Daemon, Env, MailUser};
use fetchkit::Proto;

const ROOT: &str = "/org/postfach/Postfach1";
const MAILBOX: &str = "org.postfach.Postfach1.Mailbox";
/// Subjects of the private account's mails carry this word; it must never
/// reach bob's listener.
const SECRET: &str = "Geheimsache";

/// A caller: a Unix user and the CRM user it names in each call.
#[derive(Debug, Clone)]
struct Caller {
    label: &'static str,
    unix: String,
    crm: &'static str,
    /// Admin, or acting as alice: sees alice's unassigned private mail.
    sees_private: bool,
}

fn callers(env: &Env) -> Vec<Caller> {
    let c = |label, unix: &str, crm, sees_private| Caller {
        label,
        unix: unix.to_string(),
        crm,
        sees_private,
    };
    vec![
        c("alice", &env.unix_alice, "alice", true),
        c("bob", &env.unix_bob, "bob", false),
        c("fa", &env.unix_frontend, "alice", true),
        c("fb", &env.unix_frontend, "bob", false),
        c("admin", &env.unix_admin, "", true),
    ]
}

/// What a call came back with.
#[derive(Debug, PartialEq)]
enum Outcome {
    Ok(Value),
    NotFound,
    Denied,
}

fn busctl(d: &Daemon, unix: &str, method: &str, args: &[&str]) -> Output {
    let mut cmd = Command::new("busctl");
    cmd.arg(format!("--address={}", d.bus().address()))
        .args([
            "--json=short",
            "call",
            "org.postfach.Postfach1",
            ROOT,
            MAILBOX,
            method,
        ])
        .args(args);
    common::as_user(unix, &cmd).output().expect("run busctl")
}

fn outcome(out: &Output, id: Option<u64>) -> Outcome {
    if out.status.success() {
        let text = String::from_utf8_lossy(&out.stdout);
        if text.trim().is_empty() {
            return Outcome::Ok(Value::Null);
        }
        let v: Value = serde_json::from_str(&text).expect("busctl JSON");
        // A method without results: nothing, or an empty data list.
        if v["data"].as_array().is_some_and(|d| d.is_empty()) {
            return Outcome::Ok(Value::Null);
        }
        return Outcome::Ok(v);
    }
    let err = String::from_utf8_lossy(&out.stderr);
    if let Some(id) = id {
        if err.contains(&format!("no message {id}")) {
            return Outcome::NotFound;
        }
    }
    if err.contains("not allowed") || err.contains("acts as CRM user") {
        return Outcome::Denied;
    }
    panic!("unexpected failure: {err}");
}

/// Calls `method` as `c` on message `id` with extra arguments.
fn on_mail(d: &Daemon, c: &Caller, method: &str, sig: &str, id: u64, extra: &[&str]) -> Outcome {
    let id_s = id.to_string();
    let mut args = vec![sig, c.crm, id_s.as_str()];
    args.extend_from_slice(extra);
    outcome(&busctl(d, &c.unix, method, &args), Some(id))
}

/// Ids listed for `c` (one page of up to 1,000), checking total = page.
fn list_ids(d: &Daemon, c: &Caller) -> BTreeMap<u64, bool> {
    let out = busctl(
        d,
        &c.unix,
        "ListMessages",
        &["sa{sv}uu", c.crm, "0", "0", "1000"],
    );
    let Outcome::Ok(v) = outcome(&out, None) else {
        panic!("{}: ListMessages failed", c.label);
    };
    let data = &v["data"];
    let page = data[0].as_array().expect("a page");
    assert_eq!(
        data[1].as_u64(),
        Some(page.len() as u64),
        "{}: total",
        c.label
    );
    page.iter()
        .map(|m| {
            let id = m["id"]["data"].as_u64().expect("id");
            (id, m["private"]["data"].as_bool().expect("private"))
        })
        .collect()
}

/// A mail of the test and the class it belongs to.
#[derive(Debug, Clone)]
struct Mail {
    id: u64,
    private: bool,
    assigned: bool,
}

impl Mail {
    fn visible_to(&self, c: &Caller) -> bool {
        !self.private || self.assigned || c.sees_private
    }
}

fn mails_for(tag: &str, private: bool, labels: &[&str]) -> Vec<Vec<u8>> {
    let word = if private { SECRET } else { "Offen" };
    let mut names = vec!["M-U".to_string(), "M-A".to_string()];
    for l in labels {
        names.push(format!("D-{l}-U"));
        names.push(format!("D-{l}-A"));
    }
    names
        .iter()
        .map(|n| {
            format!(
                "From: kunde@example.test\r\nTo: info@example.test\r\nSubject: {word} {tag} {n}\r\n\
                 Date: Thu, 26 Nov 2026 09:00:00 +0100\r\nMessage-ID: <{n}.{tag}.{word}@example.test>\r\n\
                 \r\n{word}\r\n"
            )
            .into_bytes()
        })
        .collect()
}

/// bob's signal listener: `gdbus monitor` as the Unix user bob, an ordinary
/// subscriber (no eavesdropping) of everything the daemon's name emits.
struct Listener {
    child: Child,
    out: Arc<Mutex<String>>,
}

impl Listener {
    fn start(d: &Daemon, unix: &str) -> Listener {
        let mut cmd = Command::new("gdbus");
        cmd.args(["monitor", "--address", d.bus().address()])
            .args(["--dest", "org.postfach.Postfach1"]);
        let mut child = common::as_user(unix, &cmd)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start gdbus monitor");
        let mut stdout = child.stdout.take().expect("listener stdout");
        let out = Arc::new(Mutex::new(String::new()));
        let sink = out.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let l = Listener { child, out };
        l.wait_for("is owned by", Duration::from_secs(5));
        l
    }

    fn text(&self) -> String {
        self.out.lock().unwrap().clone()
    }

    fn wait_for(&self, what: &str, limit: Duration) {
        let deadline = Instant::now() + limit;
        while !self.text().contains(what) {
            assert!(
                Instant::now() < deadline,
                "listener never saw {what:?}:\n{}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The arguments of a Mailbox signal line must be ids and nothing else:
/// `([uint64 1, 2],)` or `(objectpath '/…/accounts/a1', [uint64 1])`.
fn ids_only(args: &str) -> bool {
    let ids = |s: &str| {
        s.strip_prefix("[uint64 ")
            .and_then(|r| r.strip_suffix(']'))
            .is_some_and(|r| {
                r.chars()
                    .all(|c| c.is_ascii_digit() || c == ',' || c == ' ')
            })
    };
    if let Some(rest) = args.strip_prefix('(').and_then(|r| r.strip_suffix(",)")) {
        return ids(rest);
    }
    let Some(rest) = args
        .strip_prefix("(objectpath '/org/postfach/Postfach1/accounts/")
        .and_then(|r| r.strip_suffix(')'))
    else {
        return false;
    };
    match rest.split_once("', ") {
        Some((acct, list)) => acct.chars().all(|c| c.is_ascii_alphanumeric()) && ids(list),
        None => false,
    }
}

async fn create(conn: &zbus::Connection, user: &MailUser, owner: &str) -> zbus::OwnedObjectPath {
    let mut s = fetchkit::settings(Proto::Imap, user, &user.password, false, 0);
    s.insert("private_owner", Variant::from(owner.to_string()));
    let path = fetchkit::create(conn, s).await;
    fetchkit::account(conn, &path)
        .await
        .fetch_now()
        .await
        .expect("FetchNow");
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_mail_reaches_no_other_user_by_any_method_or_signal() {
    let env = Env::get();
    let config = format!(
        "{}[access]\nadmin_groups = [\"{}\"]\nfrontend_groups = [\"{}\"]\n[access.users]\n{} = \"alice\"\n{} = \"bob\"\n",
        fetchkit::config(env),
        env.admin_group,
        env.frontend_group,
        env.unix_alice,
        env.unix_bob
    );
    let state = tempfile::tempdir().unwrap();
    let d = Daemon::start(state.path(), &config);
    let listener = Listener::start(&d, &env.unix_bob);
    let conn = fetchkit::bus(&d).await;
    let mb = fetchkit::mailbox(&conn).await;
    let all = callers(env);
    let labels: Vec<&str> = all.iter().map(|c| c.label).collect();

    // One public and one private account (owner alice), fetched for real.
    let tag = common::unique("vis");
    let mut mails: BTreeMap<String, Mail> = BTreeMap::new();
    let mut private_path = None;
    for private in [false, true] {
        let user = common::create_user(env, if private { "vispriv" } else { "vispub" });
        for m in mails_for(&tag, private, &labels) {
            common::drop_raw(env, &user, &m);
        }
        let path = create(&conn, &user, if private { "alice" } else { "" }).await;
        for m in fetchkit::list_all(&mb, &path).await {
            let subject: String = fetchkit::get(&m, "subject");
            let name = subject.rsplit(' ').next().unwrap().to_string();
            let key = format!("{}:{name}", if private { "priv" } else { "pub" });
            let assigned = name.ends_with("-A");
            let id: u64 = fetchkit::get(&m, "id");
            if assigned {
                mb.assign_to_contact("", id, "K-1").await.unwrap();
            }
            mails.insert(
                key,
                Mail {
                    id,
                    private,
                    assigned,
                },
            );
        }
        if private {
            private_path = Some(path);
        }
    }
    assert_eq!(mails.len(), 2 * (2 + 2 * all.len()));
    let private_path = private_path.unwrap();
    let admin_state = |id: u64| {
        let mb = mb.clone();
        async move {
            match mb.get_message("", id).await {
                Ok(m) => Some((
                    fetchkit::get::<String>(&m, "contact"),
                    fetchkit::get::<bool>(&m, "read"),
                )),
                Err(_) => None,
            }
        }
    };

    // ListMessages: exactly the visible mails, flagged private correctly.
    for c in &all {
        let listed = list_ids(&d, c);
        let want: BTreeMap<u64, bool> = mails
            .values()
            .filter(|m| m.visible_to(c))
            .map(|m| (m.id, m.private))
            .collect();
        assert_eq!(listed, want, "{}: ListMessages", c.label);
    }

    // Every per-mail method on the two matrix mails of each account.
    for c in &all {
        for key in ["pub:M-U", "pub:M-A", "priv:M-U", "priv:M-A"] {
            let m = mails[key].clone();
            let ok = m.visible_to(c);
            let what = format!("{} on {key}", c.label);
            for (method, sig) in [("GetMessage", "st"), ("GetRaw", "st")] {
                let got = on_mail(&d, c, method, sig, m.id, &[]);
                assert_eq!(
                    matches!(got, Outcome::Ok(_)),
                    ok,
                    "{what}: {method} {got:?}"
                );
                if !ok {
                    assert_eq!(got, Outcome::NotFound, "{what}: {method}");
                }
            }
            if let Outcome::Ok(v) = on_mail(&d, c, "GetMessage", "st", m.id, &[]) {
                let text = v["data"][0]["text"]["data"].as_str().unwrap_or("");
                assert!(
                    text.contains(if m.private { SECRET } else { "Offen" }),
                    "{what}"
                );
            }
            let got = on_mail(&d, c, "SetRead", "stb", m.id, &["true"]);
            assert_eq!(
                got == Outcome::Ok(Value::Null),
                ok,
                "{what}: SetRead {got:?}"
            );
            let contact = if m.assigned { "K-1" } else { "" };
            assert_eq!(
                admin_state(m.id).await,
                Some((contact.into(), ok)),
                "{what}"
            );
            mb.set_read("", m.id, false).await.unwrap();
            if m.assigned {
                let got = on_mail(&d, c, "Unassign", "st", m.id, &[]);
                assert_eq!(got, Outcome::Ok(Value::Null), "{what}: Unassign");
                // Unassigned, alice's private mail is hers alone again.
                let again = on_mail(&d, c, "AssignToContact", "sts", m.id, &["K-1"]);
                let still = !m.private || c.sees_private;
                let want = if still {
                    Outcome::Ok(Value::Null)
                } else {
                    Outcome::NotFound
                };
                assert_eq!(again, want, "{what}: AssignToContact after Unassign");
                if !still {
                    mb.assign_to_contact("", m.id, "K-1").await.unwrap();
                }
            } else {
                let got = on_mail(&d, c, "AssignToContact", "sts", m.id, &["K-2"]);
                let want = if ok {
                    Outcome::Ok(Value::Null)
                } else {
                    Outcome::NotFound
                };
                assert_eq!(got, want, "{what}: AssignToContact");
                let got = on_mail(&d, c, "Unassign", "st", m.id, &[]);
                assert_eq!(got, want, "{what}: Unassign");
            }
            assert_eq!(
                admin_state(m.id).await,
                Some((contact.into(), false)),
                "{what}: restored"
            );
            if !ok {
                let got = on_mail(&d, c, "DeleteMessage", "st", m.id, &[]);
                assert_eq!(got, Outcome::NotFound, "{what}: DeleteMessage");
                assert!(admin_state(m.id).await.is_some(), "{what}: survived");
            }
        }
    }

    // DeleteMessage: each caller on its own mails of every class.
    for c in &all {
        for acct in ["pub", "priv"] {
            for class in ["U", "A"] {
                let key = format!("{acct}:D-{}-{class}", c.label);
                let m = mails.remove(&key).unwrap();
                let got = on_mail(&d, c, "DeleteMessage", "st", m.id, &[]);
                let ok = m.visible_to(c);
                let want = if ok {
                    Outcome::Ok(Value::Null)
                } else {
                    Outcome::NotFound
                };
                assert_eq!(got, want, "{}: DeleteMessage {key}", c.label);
                assert_eq!(admin_state(m.id).await.is_none(), ok, "{key}");
                if !ok {
                    mails.insert(key, m);
                }
            }
        }
    }

    // Callers without a role, and a mapped user naming someone else.
    let nobody = Caller {
        label: "nobody",
        unix: env.unix_nobody.clone(),
        crm: "alice",
        sees_private: false,
    };
    let alice_as_bob = Caller {
        label: "alice-as-bob",
        unix: env.unix_alice.clone(),
        crm: "bob",
        sees_private: false,
    };
    let some = mails["pub:M-U"].id;
    for c in [&nobody, &alice_as_bob] {
        let list = busctl(
            &d,
            &c.unix,
            "ListMessages",
            &["sa{sv}uu", c.crm, "0", "0", "10"],
        );
        assert_eq!(outcome(&list, None), Outcome::Denied, "{}", c.label);
        for (method, sig, extra) in [
            ("GetMessage", "st", &[][..]),
            ("GetRaw", "st", &[][..]),
            ("AssignToContact", "sts", &["K-9"][..]),
            ("Unassign", "st", &[][..]),
            ("SetRead", "stb", &["true"][..]),
            ("DeleteMessage", "st", &[][..]),
        ] {
            let got = on_mail(&d, c, method, sig, some, extra);
            assert_eq!(got, Outcome::Denied, "{}: {method}", c.label);
        }
    }
    assert_eq!(admin_state(some).await, Some((String::new(), false)));

    // PrivateOwner follows Update at once: bob's now, then nobody's.
    let acc = fetchkit::account(&conn, &private_path).await;
    let secret_unassigned: BTreeSet<u64> = mails
        .values()
        .filter(|m| m.private && !m.assigned)
        .map(|m| m.id)
        .collect();
    assert!(!secret_unassigned.is_empty());
    let (alice, bob) = (&all[0], &all[1]);
    for (owner, alice_sees, bob_sees) in [("bob", false, true), ("", true, true)] {
        let mut change = HashMap::new();
        change.insert("private_owner", Variant::from(owner));
        acc.update(change).await.expect("Update private_owner");
        for (c, sees) in [(alice, alice_sees), (bob, bob_sees)] {
            let listed: BTreeSet<u64> = list_ids(&d, c).into_keys().collect();
            for id in &secret_unassigned {
                assert_eq!(
                    listed.contains(id),
                    sees,
                    "{} after owner {owner:?}",
                    c.label
                );
                let got = on_mail(&d, c, "GetMessage", "st", *id, &[]);
                assert_eq!(
                    matches!(got, Outcome::Ok(_)),
                    sees,
                    "{} GetMessage",
                    c.label
                );
            }
        }
    }

    // bob's listener: it heard about alice's private mail, but ids only.
    let priv_id = mails["priv:M-U"].id.to_string();
    listener.wait_for("MessagesChanged", Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(300));
    let heard = listener.text();
    drop(listener);
    assert!(
        !heard.contains(SECRET),
        "private subject leaked to bob:\n{heard}"
    );
    // The mails' own addresses; account settings (ObjectManager) are not mail.
    for address in ["kunde@example.test", "info@example.test"] {
        assert!(
            !heard.contains(address),
            "{address} leaked to bob:\n{heard}"
        );
    }
    let mut changed_ids = BTreeSet::new();
    let mut added = 0;
    for line in heard.lines() {
        let Some((_, rest)) = line.split_once("org.postfach.Postfach1.Mailbox.") else {
            continue;
        };
        let (name, args) = rest.split_once(' ').unwrap_or((rest, ""));
        assert!(
            matches!(name, "MessagesChanged" | "MessagesAdded"),
            "unexpected Mailbox signal: {line}"
        );
        assert!(ids_only(args), "more than ids in a signal: {line}");
        if name == "MessagesAdded" {
            added += 1;
        } else {
            let list = args.trim_start_matches("([uint64 ").trim_end_matches("],)");
            changed_ids.extend(list.split(", ").map(str::to_string));
        }
    }
    assert_eq!(added, 2, "one MessagesAdded per fetch:\n{heard}");
    assert!(
        changed_ids.contains(&priv_id),
        "the listener heard the changes:\n{heard}"
    );
}

#[test]
fn signal_lines_with_more_than_ids_are_caught() {
    assert!(ids_only("([uint64 5, 7],)"));
    assert!(ids_only(
        "(objectpath '/org/postfach/Postfach1/accounts/a2', [uint64 3])"
    ));
    assert!(!ids_only("(['Geheim'],)"));
    assert!(!ids_only("([uint64 5], 'subject')"));
    assert!(!ids_only(
        "(objectpath '/org/postfach/Postfach1/accounts/a2', [uint64 3], 'x')"
    ));
}
