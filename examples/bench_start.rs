//! Start-up and idle memory of postfachd on a big store: the time from
//! spawning the daemon to its `READY=1` (sd_notify, sent after the store
//! is open and checked, every account task runs and the bus name is
//! taken: src/daemon.rs), and its resident memory while idle, next to the
//! targets (≤ 1 s and ≤ 64 MB with 1,000,000 mails and 1,000 accounts).
//!
//!     bench_start --dir DIR [--accounts N] [--starts K] [--idle SECS] [--cold]
//!
//! DIR is a state directory filled by `bench_mailbox` (its marker file
//! gives the mail count). `--accounts N` first adds accounts without mail
//! until the store holds N (IMAP on 127.0.0.1, poll interval 0 and no
//! password, so that nothing is fetched while memory is measured).
//! `--starts K` (default 5) starts the daemon K times and prints the
//! median and the slowest; `--cold` also times one start after dropping
//! the page cache (needs root). After the last start the daemon idles for
//! `--idle` seconds (default 10) and its RSS is sampled every second.
//! Needs target/release/postfachd and dbus-daemon.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a bench: a failed unwrap is a failed run

#[path = "support/sessionbus.rs"]
mod sessionbus;

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use postfach::account::{Account, SettingValue};
use postfach::store::Store;

type Res<T> = std::result::Result<T, Box<dyn std::error::Error>>;

struct Args {
    dir: PathBuf,
    accounts: usize,
    starts: usize,
    idle: u64,
    cold: bool,
}

fn args() -> Res<Args> {
    let mut a = Args {
        dir: PathBuf::new(),
        accounts: 0,
        starts: 5,
        idle: 10,
        cold: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || it.next().ok_or(format!("{k} needs a value"));
        match k.as_str() {
            "--dir" => a.dir = PathBuf::from(v()?),
            "--accounts" => a.accounts = v()?.parse()?,
            "--starts" => a.starts = v()?.parse::<usize>()?.max(1),
            "--idle" => a.idle = v()?.parse()?,
            "--cold" => a.cold = true,
            _ => return Err(format!("unknown option {k}").into()),
        }
    }
    if a.dir.as_os_str().is_empty() {
        return Err("--dir DIR (a store filled by bench_mailbox) is needed".into());
    }
    Ok(a)
}

/// Adds mail-less accounts until the store holds `want`; returns the count.
fn top_up(dir: &Path, want: usize) -> Res<usize> {
    let store = Store::open(dir)?;
    let have = store.accounts()?.len();
    for i in have..want {
        let s: Vec<(String, SettingValue)> = [
            ("kind", "imap"),
            ("host", "127.0.0.1"),
            ("name", &format!("Leer {i}")),
            ("address", &format!("leer{i}@example.org")),
            ("tenant", "t1"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), SettingValue::Str(v.to_string())))
        .chain([("poll_interval".to_string(), SettingValue::U32(0))])
        .collect();
        store.create_account(|id| Account::create(id, &s))?;
    }
    Ok(have.max(want))
}

/// The mail count `bench_mailbox` wrote into its marker, if any.
fn mails_in(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("bench-filled-2"))
        .ok()
        .and_then(|m| m.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "an unknown number of".into())
}

/// Spawns the daemon and waits for READY=1 on our own notify socket.
fn start(dir: &Path, bus: &str, sock_dir: &Path) -> Res<(Child, Duration)> {
    let sock_path = sock_dir.join("notify");
    let _ = std::fs::remove_file(&sock_path);
    let sock = UnixDatagram::bind(&sock_path)?;
    sock.set_read_timeout(Some(Duration::from_secs(300)))?;
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    let t = Instant::now();
    let mut child = Command::new(format!("{target}/release/postfachd"))
        .args(["--session", "--state-dir"])
        .arg(dir)
        .env("DBUS_SESSION_BUS_ADDRESS", bus)
        .env("NOTIFY_SOCKET", &sock_path)
        .env("RUST_LOG", "error")
        .spawn()?;
    let mut buf = [0u8; 4096];
    loop {
        let n = match sock.recv(&mut buf) {
            Ok(n) => n,
            Err(e) => {
                sessionbus::stop(&mut child);
                return Err(format!("no READY=1 from postfachd: {e}").into());
            }
        };
        if String::from_utf8_lossy(&buf[..n])
            .lines()
            .any(|l| l == "READY=1")
        {
            return Ok((child, t.elapsed()));
        }
    }
}

/// VmRSS of a process in MB (/proc/PID/status, kB).
fn rss_mb(pid: u32) -> Res<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .ok_or("no VmRSS")?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()?;
    Ok(kb / 1024.0)
}

fn drop_page_cache() -> Res<()> {
    nix::unistd::sync();
    std::fs::write("/proc/sys/vm/drop_caches", "3")?;
    Ok(())
}

fn main() -> Res<()> {
    let a = args()?;
    let accounts = top_up(&a.dir, a.accounts)?;
    let bus = sessionbus::SessionBus::start()?;
    let tmp = tempfile::tempdir()?;
    let mails = mails_in(&a.dir);
    println!(
        "\n{mails} mails, {accounts} accounts ({})\n",
        a.dir.display()
    );
    println!("| figure | value | target |\n|---|---|---|");
    if a.cold {
        drop_page_cache()?;
        let (mut child, took) = start(&a.dir, &bus.address, tmp.path())?;
        sessionbus::stop(&mut child);
        println!(
            "| start to READY=1, cold page cache | {:.3} s | ≤ 1 s |",
            took.as_secs_f64()
        );
    }
    let mut times = Vec::new();
    let mut last = None;
    for i in 0..a.starts {
        let (mut child, took) = start(&a.dir, &bus.address, tmp.path())?;
        times.push(took);
        if i + 1 == a.starts {
            last = Some(child);
        } else {
            sessionbus::stop(&mut child);
        }
    }
    times.sort();
    println!(
        "| start to READY=1, warm, median of {} | {:.3} s | ≤ 1 s |",
        times.len(),
        times[times.len() / 2].as_secs_f64()
    );
    println!(
        "| start to READY=1, warm, slowest | {:.3} s | ≤ 1 s |",
        times[times.len() - 1].as_secs_f64()
    );
    let mut child = last.ok_or("no daemon")?;
    let mut peak: f64 = 0.0;
    let mut now = 0.0;
    for _ in 0..a.idle {
        std::thread::sleep(Duration::from_secs(1));
        now = rss_mb(child.id())?;
        peak = peak.max(now);
    }
    sessionbus::stop(&mut child);
    println!(
        "| RSS after {} s idle (highest sample) | {now:.1} MB ({peak:.1} MB) | ≤ 64 MB |",
        a.idle
    );
    Ok(())
}
