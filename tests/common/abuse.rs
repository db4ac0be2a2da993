//! Random D-Bus calls for the abuse test (tests/dbus_abuse.rs): every
//! method of the shipped introspection (dbus/org.postfach.Postfach1.xml)
//! and the standard interfaces, on the right object and on wrong ones,
//! with arguments of the right signature and random values (real and bad
//! ids, CRM users, huge strings, control characters), of wrong types,
//! too many or too few, and variants nested in variants.
//!
//! The generator is a seeded SplitMix64, so a failing run is repeated by
//! its seed.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use zbus::wire::StructureBuilder;
use zbus::{Connection, Variant};

/// The daemon's bus name.
pub const NAME: &str = "org.postfach.Postfach1";
/// Where the daemon serves its objects.
pub const ROOT: &str = "/org/postfach/Postfach1";

/// SplitMix64 (Steele, Lea, Flood 2014): small, seedable, good enough to
/// pick test inputs.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// True `percent` times in 100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    pub fn pick<'a, T>(&mut self, from: &'a [T]) -> &'a T {
        &from[self.below(from.len())]
    }
}

/// One method: its interface, name and the signatures of its in-args.
#[derive(Debug, Clone)]
pub struct Method {
    pub iface: String,
    pub name: String,
    pub args: Vec<String>,
}

/// The interfaces every object of the daemon answers (zbus serves them).
const STANDARD: &[(&str, &str, &[&str])] = &[
    ("org.freedesktop.DBus.Properties", "Get", &["s", "s"]),
    ("org.freedesktop.DBus.Properties", "GetAll", &["s"]),
    ("org.freedesktop.DBus.Properties", "Set", &["s", "s", "v"]),
    ("org.freedesktop.DBus.Introspectable", "Introspect", &[]),
    ("org.freedesktop.DBus.Peer", "Ping", &[]),
    ("org.freedesktop.DBus.Peer", "GetMachineId", &[]),
    (
        "org.freedesktop.DBus.ObjectManager",
        "GetManagedObjects",
        &[],
    ),
];

/// Every method of the shipped introspection XML, plus the standard ones.
pub fn methods() -> Vec<Method> {
    let xml = include_str!("../../dbus/org.postfach.Postfach1.xml");
    let attr = |line: &str, name: &str| -> Option<String> {
        let start = line.find(&format!("{name}=\""))? + name.len() + 2;
        let len = line[start..].find('"')?;
        Some(line[start..start + len].to_string())
    };
    let mut out: Vec<Method> = Vec::new();
    let mut iface = String::new();
    for line in xml.lines().map(str::trim) {
        if line.starts_with("<interface ") {
            iface = attr(line, "name").unwrap_or_default();
        } else if line.starts_with("<method ") {
            out.push(Method {
                iface: iface.clone(),
                name: attr(line, "name").unwrap_or_default(),
                args: Vec::new(),
            });
        } else if line.starts_with("<arg ") && line.contains("direction=\"in\"") {
            if let (Some(m), Some(t)) = (out.last_mut(), attr(line, "type")) {
                m.args.push(t);
            }
        }
    }
    assert!(out.len() > 20, "the introspection XML lists the methods");
    out.extend(STANDARD.iter().map(|(i, n, a)| Method {
        iface: i.to_string(),
        name: n.to_string(),
        args: a.iter().map(|s| s.to_string()).collect(),
    }));
    out
}

/// What the generator knows of the live daemon: real ids make calls reach
/// the code behind the "not found" checks.
#[derive(Debug, Clone, Default)]
pub struct World {
    pub accounts: Vec<String>,
    pub ids: Vec<u64>,
}

impl World {
    /// As passed to the client process: `paths;ids`.
    pub fn encode(&self) -> String {
        let ids: Vec<String> = self.ids.iter().map(u64::to_string).collect();
        format!("{};{}", self.accounts.join(","), ids.join(","))
    }

    pub fn decode(s: &str) -> World {
        let (paths, ids) = s.split_once(';').unwrap_or((s, ""));
        World {
            accounts: paths
                .split(',')
                .filter(|p| !p.is_empty())
                .map(String::from)
                .collect(),
            ids: ids.split(',').filter_map(|i| i.parse().ok()).collect(),
        }
    }
}

/// Keys that the dict arguments know, with their types: settings,
/// ListMessages filters, message dicts, backup options, employee fields.
const KEYS: &[(&str, &str)] = &[
    ("tenant", "s"),
    ("name", "s"),
    ("address", "s"),
    ("kind", "s"),
    ("host", "s"),
    ("port", "q"),
    ("encryption", "s"),
    ("username", "s"),
    ("password", "s"),
    ("private_owner", "s"),
    ("delete_on_server", "b"),
    ("poll_interval", "u"),
    ("smtp_host", "s"),
    ("smtp_port", "q"),
    ("smtp_encryption", "s"),
    ("smtp_login", "b"),
    ("smtp_username", "s"),
    ("smtp_password", "s"),
    ("drafts_folder", "s"),
    ("trash_folder", "s"),
    ("sent_folder", "s"),
    ("save_sent_copy", "b"),
    ("tls_pin", "s"),
    ("allow_plaintext_auth", "b"),
    ("account", "o"),
    ("folder", "s"),
    ("unassigned", "b"),
    ("read", "b"),
    ("since", "x"),
    ("until", "x"),
    ("text", "s"),
    ("to", "as"),
    ("cc", "as"),
    ("bcc", "as"),
    ("subject", "s"),
    ("html", "s"),
    ("attachments", "a(ssay)"),
    ("in_reply_to", "s"),
    ("signature", "b"),
    ("draft_id", "t"),
    ("passphrase", "s"),
    ("Vorname", "s"),
    ("Nachname", "s"),
    ("EMail", "s"),
    ("Kuerzel", "s"),
];

/// Types a wrong argument is drawn from.
const TYPES: &[&str] = &[
    "s", "o", "b", "y", "q", "u", "t", "x", "i", "d", "v", "as", "ay", "at", "a{sv}", "(uu)",
    "a(ssay)", "aa{sv}",
];

/// Strings a CRM, a confused frontend or an attacker sends.
const WORDS: &[&str] = &[
    "",
    "alice",
    "bob",
    "root",
    "admin",
    "mandant1",
    "default",
    "imap",
    "pop3",
    "imap-office365",
    "tls",
    "none",
    "starttls",
    "inbox",
    "outbox",
    "drafts",
    "127.0.0.1",
    "x@example.test",
    "device",
    "browser",
    "http://127.0.0.1:1/cb?code=x&state=y",
    "@Vorname@ @Bild(0,1024,1024)@ @Bild@",
    "@Nicht@",
    "%s%s%n%x",
    "../../../etc/shadow",
    "\u{202e}gnp.exe",
    "\r\nBcc: victim@example.test\r\n",
    "\u{1b}[31mred",
    "org.postfach.Postfach1.Account",
    "org.postfach.Postfach1.Manager",
    "Address",
    "Host",
    "PrivateOwner",
    "State",
    "image/png",
    "text/html",
    "INBOX.Trash",
];

impl Rng {
    fn string(&mut self) -> String {
        match self.below(20) {
            0 => "a".repeat(self.below(70_000)),
            1 if self.chance(20) => "ü".repeat(512 * 1024),
            2 => (0..self.below(300))
                .map(|_| char::from_u32(1 + self.below(0x2FFF) as u32).unwrap_or('?'))
                .collect(),
            _ => self.pick(WORDS).to_string(),
        }
    }

    fn path(&mut self, w: &World) -> String {
        match self.below(6) {
            0..=2 if !w.accounts.is_empty() => self.pick(&w.accounts).clone(),
            3 => ROOT.to_string(),
            4 => format!("{ROOT}/accounts/{}", self.below(1000)),
            _ => "/".to_string(),
        }
    }

    fn id(&mut self, w: &World) -> u64 {
        match self.below(5) {
            0 | 1 if !w.ids.is_empty() => *self.pick(&w.ids),
            2 => 0,
            3 => u64::MAX,
            _ => self.next() % 10_000,
        }
    }

    fn bytes(&mut self) -> Vec<u8> {
        let n = if self.chance(3) {
            1 << 20
        } else {
            self.below(64)
        };
        (0..n).map(|_| self.next() as u8).collect()
    }

    fn dict(&mut self, w: &World, depth: u32) -> HashMap<String, Variant<'static>> {
        (0..self.below(8))
            .map(|_| {
                let (key, ty) = *self.pick(KEYS);
                let key = if self.chance(10) {
                    self.string()
                } else {
                    key.to_string()
                };
                let ty = if self.chance(70) {
                    ty
                } else {
                    self.pick(TYPES)
                };
                let v = self.value(ty, w, depth + 1);
                (key, v)
            })
            .collect()
    }

    /// A random value of D-Bus type `ty` (a wrong type for `h`: the test
    /// passes no file descriptors).
    pub fn value(&mut self, ty: &str, w: &World, depth: u32) -> Variant<'static> {
        let ty = if depth > 6 && ty.len() > 1 { "s" } else { ty };
        match ty {
            "s" => Variant::from(self.string()),
            "o" => Variant::from(
                zbus::ObjectPath::try_from(self.path(w)).expect("a valid object path"),
            ),
            "b" => Variant::from(self.chance(50)),
            "y" => Variant::from(self.next() as u8),
            "q" => {
                let r = self.next() as u16;
                Variant::from(*self.pick(&[0u16, 1, 993, u16::MAX, r]))
            }
            "u" => {
                let r = self.next() as u32;
                Variant::from(*self.pick(&[0u32, 1, 1000, u32::MAX, r]))
            }
            "i" => Variant::from(self.next() as i32),
            "x" => {
                let r = self.next() as i64;
                Variant::from(*self.pick(&[0i64, -1, i64::MIN, i64::MAX, r]))
            }
            "t" => Variant::from(self.id(w)),
            "d" => Variant::from(*self.pick(&[0.0f64, f64::NAN, f64::INFINITY, -1e308])),
            "v" => {
                if self.chance(5) {
                    // Deeply nested variants: the bus allows 64 levels.
                    let mut v = Variant::from(self.string());
                    for _ in 0..self.below(60) {
                        v = Variant::Variant(Box::new(v));
                    }
                    v
                } else {
                    let inner = self.pick(TYPES).to_string();
                    Variant::Variant(Box::new(self.value(&inner, w, depth + 1)))
                }
            }
            "as" => {
                if self.chance(3) {
                    let many = (0..5000).map(|_| self.pick(WORDS).to_string());
                    return Variant::from(many.collect::<Vec<_>>());
                }
                Variant::from(
                    (0..self.below(5))
                        .map(|_| self.string())
                        .collect::<Vec<_>>(),
                )
            }
            "ay" => Variant::from(self.bytes()),
            "at" => Variant::from((0..self.below(10)).map(|_| self.id(w)).collect::<Vec<_>>()),
            "a{sv}" => Variant::from(self.dict(w, depth)),
            "aa{sv}" => Variant::from(
                (0..self.below(3))
                    .map(|_| self.dict(w, depth))
                    .collect::<Vec<_>>(),
            ),
            "(uu)" => Variant::from((self.next() as u32, self.next() as u32)),
            "a(ssay)" => Variant::from(
                (0..self.below(3))
                    .map(|_| (self.string(), self.string(), self.bytes()))
                    .collect::<Vec<_>>(),
            ),
            "a(say)" => Variant::from(
                (0..self.below(3))
                    .map(|_| (self.string(), self.bytes()))
                    .collect::<Vec<_>>(),
            ),
            _ => Variant::from(self.next() as u32),
        }
    }
}

/// One call to make.
pub struct Call {
    pub path: String,
    pub iface: String,
    pub method: String,
    pub args: Vec<Variant<'static>>,
}

/// A random call: mostly a real method on its own kind of object with
/// arguments of its signature; else wrong objects, wrong types, wrong
/// counts, or a method that does not exist.
pub fn random_call(rng: &mut Rng, methods: &[Method], w: &World) -> Call {
    let m = rng.pick(methods).clone();
    let on_account =
        m.iface.ends_with(".Account") || (m.iface.starts_with("org.freedesktop") && rng.chance(50));
    let path = if rng.chance(85) {
        if on_account && !w.accounts.is_empty() {
            rng.pick(&w.accounts).clone()
        } else {
            ROOT.to_string()
        }
    } else {
        rng.path(w)
    };
    let mut args: Vec<Variant<'static>> = match rng.below(10) {
        // Wrong types in some places.
        0 | 1 => m
            .args
            .iter()
            .map(|t| {
                let t = if rng.chance(50) {
                    rng.pick(TYPES).to_string()
                } else {
                    t.clone()
                };
                rng.value(&t, w, 0)
            })
            .collect(),
        // Any number of anything.
        2 => (0..rng.below(5))
            .map(|_| {
                let t = rng.pick(TYPES).to_string();
                rng.value(&t, w, 0)
            })
            .collect(),
        _ => m.args.iter().map(|t| rng.value(t, w, 0)).collect(),
    };
    if rng.chance(5) {
        args.pop();
    }
    let method = if rng.chance(3) {
        format!("{}X", m.name)
    } else {
        m.name.clone()
    };
    Call {
        path,
        iface: m.iface,
        method,
        args,
    }
}

/// What the calls got back.
#[derive(Debug, Default)]
pub struct Tally {
    pub sent: u64,
    pub replies: u64,
    /// Calls that zbus could not build (e.g. nesting past its limits).
    pub unbuilt: u64,
    pub timeouts: u64,
    pub reconnects: u64,
    pub errors: BTreeMap<String, u64>,
}

/// The name of a failed call's error, short.
pub fn error_kind(e: &zbus::Error) -> String {
    match e {
        zbus::Error::MethodError(name, _, _) => name.to_string(),
        zbus::Error::FDO(e) => zbus::DBusError::name(e.as_ref()).to_string(),
        other => {
            let s = format!("{other:?}");
            s.split(['(', ' ', '{'])
                .next()
                .unwrap_or_default()
                .to_string()
        }
    }
}

/// Makes `calls` random calls from `workers` concurrent tasks on one
/// connection to `address` (reconnecting if the bus drops it).
pub async fn run(address: &str, seed: u64, calls: u64, w: World, workers: u64) -> Tally {
    let methods = Arc::new(methods());
    let w = Arc::new(w);
    let tally = Arc::new(std::sync::Mutex::new(Tally::default()));
    let mut tasks = Vec::new();
    for worker in 0..workers {
        let (methods, w, tally) = (methods.clone(), w.clone(), tally.clone());
        let address = address.to_string();
        let n = calls / workers + u64::from(worker < calls % workers);
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng::new(seed.wrapping_mul(1000).wrapping_add(worker));
            let mut conn = connect(&address).await;
            for _ in 0..n {
                let call = random_call(&mut rng, &methods, &w);
                let outcome = one(&conn, &call).await;
                let broken = matches!(outcome, Outcome::Broken);
                count(&mut tally.lock().unwrap(), outcome);
                if broken {
                    conn = connect(&address).await;
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("an abuse worker");
    }
    Arc::try_unwrap(tally)
        .expect("the workers are done")
        .into_inner()
        .unwrap()
}

fn count(t: &mut Tally, outcome: Outcome) {
    match outcome {
        Outcome::Unbuilt => t.unbuilt += 1,
        Outcome::Timeout => {
            t.sent += 1;
            t.timeouts += 1
        }
        Outcome::Reply => {
            t.sent += 1;
            t.replies += 1
        }
        Outcome::Error(name) => {
            t.sent += 1;
            *t.errors.entry(name).or_default() += 1
        }
        Outcome::Broken => {
            t.sent += 1;
            t.reconnects += 1;
        }
    }
}

async fn connect(address: &str) -> Connection {
    zbus::connection::Builder::address(address)
        .build()
        .await
        .expect("connect to the bus")
}

enum Outcome {
    Unbuilt,
    Timeout,
    Reply,
    Error(String),
    /// The connection is gone.
    Broken,
}

/// Longest a call may take: a FetchNow or TestConnection against a real
/// server finishes well within it; a call that takes longer is counted.
const CALL_LIMIT: Duration = Duration::from_secs(120);

async fn one(conn: &Connection, call: &Call) -> Outcome {
    let body = if call.args.is_empty() {
        None
    } else {
        let mut b = StructureBuilder::new();
        for a in &call.args {
            b = b.append_field(a.clone());
        }
        match b.build() {
            Ok(s) => Some(s),
            Err(_) => return Outcome::Unbuilt,
        }
    };
    let sent = match &body {
        Some(s) => {
            tokio::time::timeout(
                CALL_LIMIT,
                conn.call_method(
                    Some(NAME),
                    call.path.as_str(),
                    Some(call.iface.as_str()),
                    call.method.as_str(),
                    s,
                ),
            )
            .await
        }
        None => {
            tokio::time::timeout(
                CALL_LIMIT,
                conn.call_method(
                    Some(NAME),
                    call.path.as_str(),
                    Some(call.iface.as_str()),
                    call.method.as_str(),
                    &(),
                ),
            )
            .await
        }
    };
    match sent {
        Err(_) => Outcome::Timeout,
        Ok(Ok(_)) => Outcome::Reply,
        Ok(Err(e @ (zbus::Error::InputOutput(_) | zbus::Error::Unsupported))) => {
            let _ = e;
            Outcome::Broken
        }
        Ok(Err(e)) => {
            let kind = error_kind(&e);
            if kind.starts_with("Variant") || kind.starts_with("Serde") {
                return Outcome::Unbuilt;
            }
            Outcome::Error(kind)
        }
    }
}
