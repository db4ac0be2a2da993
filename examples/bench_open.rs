//! What the integrity check at start costs: builds a store of N mails of
//! SIZE bytes in DIR (if it holds none yet), then times `Store::open`,
//! which verifies every page checksum over a dry run before opening for
//! writing, against a plain redb open of the same file.
//!
//!     bench_open --dir DIR --mails N --size BYTES
//!
//! Prints `build_s=… file_bytes=… checked_open_s=… plain_open_s=…`. Run a
//! release build; drop the page cache between runs for cold figures.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a bench: a failed unwrap is a failed run

use std::path::PathBuf;
use std::time::Instant;

use postfach::account::{Account, SettingValue};
use postfach::store::{NewMail, Store, Summary, DB_FILE};

fn arg(name: &str) -> String {
    let all: Vec<String> = std::env::args().collect();
    let at = all.iter().position(|a| a == name).expect(name);
    all[at + 1].clone()
}

fn main() {
    let dir = PathBuf::from(arg("--dir"));
    let mails: u64 = arg("--mails").parse().unwrap();
    let size: usize = arg("--size").parse().unwrap();
    let mut build_s = 0.0;
    if !dir.join(DB_FILE).exists() {
        let t = Instant::now();
        let store = Store::open(&dir).unwrap();
        let settings = [
            ("kind", "pop3"),
            ("host", "127.0.0.1"),
            ("address", "bench@example.org"),
            ("tenant", "t1"),
        ]
        .map(|(k, v)| (k.to_string(), SettingValue::Str(v.into())));
        let a = store
            .create_account(|id| Account::create(id, &settings))
            .unwrap();
        let body = "x".repeat(size.saturating_sub(40));
        let ids: Vec<u64> = (0..mails).collect();
        for chunk in ids.chunks(100) {
            let batch = chunk
                .iter()
                .map(|i| NewMail {
                    server_id: format!("pop3:{i}"),
                    raw: format!("Subject: {i}\r\n\r\n{body}").into_bytes().into(),
                    received: 1_700_000_000 + *i as i64,
                })
                .collect();
            store
                .commit_batch(&a, batch, &|_, _| Summary::default())
                .unwrap();
        }
        build_s = t.elapsed().as_secs_f64();
    }
    let file_bytes = std::fs::metadata(dir.join(DB_FILE)).unwrap().len();
    let t = Instant::now();
    drop(Store::open(&dir).unwrap());
    let checked = t.elapsed().as_secs_f64();
    let t = Instant::now();
    drop(redb::Database::open(dir.join(DB_FILE)).unwrap());
    let plain = t.elapsed().as_secs_f64();
    println!(
        "build_s={build_s:.1} file_bytes={file_bytes} checked_open_s={checked:.2} \
         plain_open_s={plain:.2}"
    );
}
