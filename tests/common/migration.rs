//! A real postfachd over a prepared state directory, for the tests that
//! kill a conversion the store runs at open (schema 9's packing, the word
//! index, the dictionary, the binary summaries) and start again. Not
//! `common::Daemon`: its 10 s start timeout is too short for converting
//! thousands of mails in a debug build on a busy machine.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::TestBus;

/// How long a start may convert before it owns its bus name.
const START_LIMIT: Duration = Duration::from_secs(300);

/// postfachd on `bus` over `dir`, its output (info and up) into `dir/log`.
pub fn start(dir: &Path, bus: &TestBus, log: &str) -> Child {
    let log = std::fs::File::create(dir.join(log)).unwrap();
    Command::new(env!("CARGO_BIN_EXE_postfachd"))
        .arg("--session")
        .arg("--state-dir")
        .arg(dir)
        .env("DBUS_SESSION_BUS_ADDRESS", bus.address())
        .env("RUST_LOG", "info")
        .env_remove("JOURNAL_STREAM")
        .env_remove("NOTIFY_SOCKET")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap()
}

/// Starts postfachd and kills it (-9) as soon as `dir/log` shows `line`.
pub fn kill_at(dir: &Path, bus: &TestBus, log: &str, line: &str) {
    let mut child = start(dir, bus, log);
    let deadline = Instant::now() + START_LIMIT;
    loop {
        let text = std::fs::read_to_string(dir.join(log)).unwrap_or_default();
        if text.contains(line) {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "postfachd exited: {text}"
        );
        assert!(Instant::now() < deadline, "no {line:?} in the log: {text}");
        std::thread::sleep(Duration::from_millis(1));
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Starts postfachd, waits until it serves on the bus (its conversions
/// done), stops it with SIGTERM and returns its log.
pub fn serve_once(dir: &Path, bus: &TestBus, log: &str) -> String {
    let mut child = start(dir, bus, log);
    let deadline = Instant::now() + START_LIMIT;
    while !bus.has_owner("org.postfach.Postfach1") {
        let text = std::fs::read_to_string(dir.join(log)).unwrap_or_default();
        assert!(
            child.try_wait().unwrap().is_none(),
            "postfachd exited: {text}"
        );
        assert!(Instant::now() < deadline, "postfachd did not start: {text}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    assert!(child.wait().unwrap().success());
    std::fs::read_to_string(dir.join(log)).unwrap_or_default()
}

/// A POP3 account of tenant `t1` that never polls, so that nothing but a
/// start touches the store; `extra` settings (e.g. its name) on top.
pub fn quiet_account(
    store: &postfach::store::Store,
    address: &str,
    extra: &[(&str, &str)],
) -> postfach::account::Account {
    use postfach::account::{Account, SettingValue};
    let base = [
        ("kind", "pop3"),
        ("host", "127.0.0.1"),
        ("address", address),
        ("tenant", "t1"),
    ];
    let settings: Vec<(String, SettingValue)> = base
        .iter()
        .chain(extra)
        .map(|(k, v)| (k.to_string(), SettingValue::Str(v.to_string())))
        .chain([("poll_interval".to_string(), SettingValue::U32(0))])
        .collect();
    store
        .create_account(|id| Account::create(id, &settings))
        .unwrap()
}

/// The places of the word index by number (`search_place_names`, schema
/// 15) in the store of `tx`.
pub fn place_names(tx: &redb::WriteTransaction) -> std::collections::HashMap<u32, String> {
    use redb::ReadableTable;
    let t = tx
        .open_table(postfach::store::schema::SEARCH_PLACE_NAMES)
        .unwrap();
    t.iter()
        .unwrap()
        .map(|r| {
            let (k, v) = r.unwrap();
            (k.value(), v.value().to_string())
        })
        .collect()
}

/// A word index chunk of schema 15 (places by number, after a 0 byte) as
/// schemas 10 to 14 wrote it (places by length and string); the rest of
/// the value is the same in both forms (postfach::store::search_chunk).
pub fn named_chunk(value: &[u8], names: &std::collections::HashMap<u32, String>) -> Vec<u8> {
    fn get(b: &[u8], at: &mut usize) -> u64 {
        let mut n = 0u64;
        let mut shift = 0;
        loop {
            let byte = b[*at];
            *at += 1;
            n |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return n;
            }
            shift += 7;
        }
    }
    fn put(out: &mut Vec<u8>, mut n: u64) {
        while n >= 0x80 {
            out.push((n as u8) | 0x80);
            n >>= 7;
        }
        out.push(n as u8);
    }
    assert_eq!(value[0], 0, "not a numbered chunk");
    let mut at = 1;
    let n = get(value, &mut at);
    let mut out = Vec::new();
    put(&mut out, n);
    for _ in 0..n {
        let name = &names[&(get(value, &mut at) as u32)];
        put(&mut out, name.len() as u64);
        out.extend_from_slice(name.as_bytes());
    }
    out.extend_from_slice(&value[at..]);
    out
}

/// The level 0 rows of `view_arrays` that schemas 3 to 17 kept for the
/// view entries `(scope, date)`: per scope and 9-hour bucket, the counts
/// of its 32 17-minute buckets, each non-zero one as its slot byte and its
/// count in LEB128 (src/store/counters.rs). Schema 19 deletes them.
pub fn level_0_rows(
    entries: impl IntoIterator<Item = (u32, i64)>,
) -> std::collections::BTreeMap<(u8, u32, i64), Vec<u8>> {
    let mut counts = std::collections::BTreeMap::new();
    for (s, d) in entries {
        let slot = ((d >> 10) - ((d >> 15) << 5)) as usize;
        counts.entry((0u8, s, d >> 15)).or_insert([0u64; 32])[slot] += 1;
    }
    let encode = |c: [u64; 32]| {
        let mut out = Vec::new();
        for (slot, mut n) in c.into_iter().enumerate().filter(|(_, n)| *n > 0) {
            out.push(slot as u8);
            while n >= 0x80 {
                out.push((n as u8 & 0x7f) | 0x80);
                n >>= 7;
            }
            out.push(n as u8);
        }
        out
    };
    counts.into_iter().map(|(k, c)| (k, encode(c))).collect()
}
