//! Would zstd shrink the text part of a message summary? Reads every
//! summary of a closed store (the fields a row keeps as text:
//! `message_id`, `subject`, `from`, `to`, `cc`, `contact`) and packs each
//! one alone, as a row would have to be packed, with zstd level 3 and no
//! dictionary, with the store's own mail dictionary (`raw_dicts`, trained
//! on mail heads, which hold this header text), and with a dictionary
//! trained on the first summaries' text (docs/PERFORMANCE.md "Account
//! labels").
//!
//!     cargo run --release --example bench_summary_text -- <state dir>
//!
//! The state dir is a store no daemon has open, e.g. one that
//! `scripts/bench-mailbox` filled under target/bench-mailbox/.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: a failed unwrap is a failed run

use std::time::Instant;

use postfach::store::schema::{MESSAGES, RAW_DICTS};
use postfach::store::summary::{decode, LabelCache, Labels};
use redb::{ReadableDatabase, ReadableTable};
use zstd::dict::{DecoderDictionary, EncoderDictionary};
use zstd::stream::raw::CParameter;

const LEVEL: i32 = 3;
/// Summaries the trained dictionaries learn from (the rest are measured).
const TRAIN: usize = 2000;

fn put_str(out: &mut Vec<u8>, s: &str) {
    let mut n = s.len() as u64;
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
    out.extend_from_slice(s.as_bytes());
}

/// Packs every text alone: (stored bytes per row with a codec byte,
/// decompression µs per row).
fn measure(texts: &[Vec<u8>], dict: Option<&[u8]>) -> (f64, f64) {
    let enc = dict.map(|d| EncoderDictionary::copy(d, LEVEL));
    let dec = dict.map(DecoderDictionary::copy);
    let mut c = match &enc {
        Some(e) => zstd::bulk::Compressor::with_prepared_dictionary(e).unwrap(),
        None => zstd::bulk::Compressor::new(LEVEL).unwrap(),
    };
    // What a row needs: the frame alone (its length is the row's).
    c.set_parameter(CParameter::ContentSizeFlag(true)).unwrap();
    c.set_parameter(CParameter::ChecksumFlag(false)).unwrap();
    c.set_parameter(CParameter::DictIdFlag(false)).unwrap();
    let frames: Vec<Vec<u8>> = texts.iter().map(|t| c.compress(t).unwrap()).collect();
    let stored: usize = frames
        .iter()
        .zip(texts)
        .map(|(f, t)| 1 + f.len().min(t.len()))
        .sum();
    let mut d = match &dec {
        Some(dd) => zstd::bulk::Decompressor::with_prepared_dictionary(dd).unwrap(),
        None => zstd::bulk::Decompressor::new().unwrap(),
    };
    let start = Instant::now();
    for (f, t) in frames.iter().zip(texts) {
        let back = d.decompress(f, t.len()).unwrap();
        assert_eq!(&back, t);
    }
    let us = start.elapsed().as_secs_f64() * 1e6 / texts.len() as f64;
    (stored as f64 / texts.len() as f64, us)
}

fn main() {
    let dir = std::env::args()
        .nth(1)
        .expect("usage: bench_summary_text <state dir>");
    let db = redb::Database::open(std::path::Path::new(&dir).join(postfach::store::DB_FILE))
        .expect("open the store (is a daemon running on it?)");
    let tx = db.begin_read().unwrap();
    let cache = LabelCache::default();
    let labels = Labels::read(&tx, Some(&cache)).unwrap();
    let (mut texts, mut rows) = (Vec::new(), 0usize);
    let start = Instant::now();
    for row in tx.open_table(MESSAGES).unwrap().iter().unwrap() {
        let (k, v) = row.unwrap();
        rows += v.value().len();
        let m = decode(&labels, k.value(), v.value()).unwrap();
        let mut t = Vec::new();
        for s in [&m.message_id, &m.subject, &m.from, &m.contact] {
            put_str(&mut t, s);
        }
        for list in [&m.to, &m.cc] {
            t.push(list.len() as u8);
            for s in list {
                put_str(&mut t, s);
            }
        }
        texts.push(t);
    }
    let n = texts.len();
    assert!(n > TRAIN * 2, "{n} summaries: too few to measure");
    let decode_us = start.elapsed().as_secs_f64() * 1e6 / n as f64;
    let (train, rest) = texts.split_at(TRAIN);
    let text_avg = rest.iter().map(Vec::len).sum::<usize>() as f64 / rest.len() as f64;
    println!(
        "{n} summaries: rows {:.1} B on average, their text {text_avg:.1} B; \
         reading and decoding a row {decode_us:.2} µs ({} labels)",
        rows as f64 / n as f64,
        cache.len()
    );
    println!("| text packed | B per row | saved B per row | decompress µs/row | per page of 50 |");
    println!("|---|---|---|---|---|");
    let raw_dict = tx
        .open_table(RAW_DICTS)
        .unwrap()
        .iter()
        .unwrap()
        .next()
        .map(|r| r.unwrap().1.value().to_vec());
    let samples: Vec<&[u8]> = train.iter().map(Vec::as_slice).collect();
    let mut variants: Vec<(String, Option<Vec<u8>>)> = vec![("zstd 3, no dictionary".into(), None)];
    if let Some(d) = raw_dict {
        variants.push((
            format!("zstd 3, the store's mail dictionary ({} B)", d.len()),
            Some(d),
        ));
    }
    for size in [4096, 16384] {
        let d = zstd::dict::from_samples(&samples, size).unwrap();
        variants.push((
            format!("zstd 3, trained on {TRAIN} summaries ({size} B)"),
            Some(d),
        ));
    }
    println!("| as it is | {text_avg:.1} | 0 | 0 | 0 |");
    for (name, dict) in variants {
        let (bytes, us) = measure(rest, dict.as_deref());
        println!(
            "| {name} | {bytes:.1} | {:.1} | {us:.2} | {:.3} ms |",
            text_avg - bytes,
            us * 50.0 / 1000.0
        );
    }
}
