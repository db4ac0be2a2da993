//! Benchmark client for `scripts/bench`: calls `FetchNow` on the given
//! accounts all at once over the session bus and prints how long it took
//! until the last call returned.
//!
//! Why not `postfachctl` or `busctl` per account: the poll scenario fires
//! 200 calls at once, and 200 process starts on a 2-core machine would be
//! timed along with the daemon. One process with every call in flight
//! measures the daemon alone (FetchNow returns when that fetch is done,
//! DESIGN.md §3).
//!
//!     cargo run --release --example bench_fetch -- [--expect N] ID...
//!
//! Prints one line `wall_s=<seconds> new=<sum of new_messages> calls=<n>`.
//! With `--expect N` every call must report exactly N new mails: a bench
//! that silently timed a failed or partial fetch would be worthless.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use std::process::ExitCode;
use std::time::Instant;

use futures::future::join_all;
use zbus::proxy::CacheProperties;

use postfach::dbus::account_path;
use postfach::dbus::proxy::AccountProxy;

struct Args {
    expect: Option<u32>,
    ids: Vec<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut expect = None;
    let mut ids = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--expect" {
            let n = args.next().ok_or("--expect needs a number")?;
            expect = Some(
                n.parse()
                    .map_err(|_| format!("--expect: not a number: {n}"))?,
            );
        } else {
            ids.push(arg);
        }
    }
    if ids.is_empty() {
        return Err("usage: bench_fetch [--expect N] ACCOUNT_ID...".into());
    }
    Ok(Args { expect, ids })
}

/// Calls in flight on one bus connection. A dbus-daemon without explicit
/// limits (like the test env's bus) allows 128 pending replies per
/// connection, so more accounts than this get more connections.
const CALLS_PER_CONNECTION: usize = 100;

async fn run(args: Args) -> Result<(), String> {
    // Connections and proxies are made before the clock starts: only the
    // calls are timed.
    let mut proxies = Vec::with_capacity(args.ids.len());
    for chunk in args.ids.chunks(CALLS_PER_CONNECTION) {
        let conn = zbus::Connection::session()
            .await
            .map_err(|e| format!("cannot connect to the session bus: {e}"))?;
        for id in chunk {
            let proxy = AccountProxy::builder(&conn)
                .path(account_path(id))
                .cache_properties(CacheProperties::No)
                .build()
                .await
                .map_err(|e| format!("account {id}: {e}"))?;
            proxies.push(proxy);
        }
    }
    let start = Instant::now();
    let results = join_all(proxies.iter().map(|p| p.fetch_now())).await;
    let wall = start.elapsed().as_secs_f64();
    let mut total: u64 = 0;
    let mut failures = Vec::new();
    for (id, result) in args.ids.iter().zip(results) {
        match result {
            Ok(n) => {
                total += u64::from(n);
                if let Some(want) = args.expect.filter(|want| *want != n) {
                    failures.push(format!("account {id}: {n} new mails, expected {want}"));
                }
            }
            Err(e) => failures.push(format!("account {id}: FetchNow failed: {e}")),
        }
    }
    println!("wall_s={wall:.3} new={total} calls={}", args.ids.len());
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("\n"))
    }
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("bench_fetch: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("bench_fetch: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench_fetch: {e}");
            ExitCode::FAILURE
        }
    }
}
