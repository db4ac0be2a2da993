//! Raw mail compression: bytes and CPU per mail for the codecs weighed for
//! the `raw_packed` table (docs/PERFORMANCE.md "Raw mail compression").
//!
//!     cargo run --release --example bench_codec -- [--mails N] [--size BYTES]
//!         [--train-first N,N,...]
//!
//! Mails come from examples/support/mailgen.rs (~4.4 KiB by default). The
//! dictionary is trained on mails of another seed than the measured ones;
//! both come from the same generator, so the dictionary's figure is an
//! upper bound of what it gains on a real store's mail.
//!
//! `--train-first` measures what a store does instead: the dictionary
//! trained (by the store's own code, on the heads of the mails) on the
//! first N mails of the measured ones, and applied to the rest.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: a failed unwrap is a failed run

#[path = "support/mailgen.rs"]
mod mailgen;

use std::time::Instant;

type Res<T> = std::result::Result<T, Box<dyn std::error::Error>>;

type Pack = Box<dyn FnMut(&[u8]) -> Vec<u8>>;
/// Row and the raw length.
type Unpack = Box<dyn FnMut(&[u8], usize) -> Vec<u8>>;

struct Codec {
    name: String,
    pack: Pack,
    unpack: Unpack,
}

fn mails(seed: u64, n: usize, size: usize) -> Vec<Vec<u8>> {
    let mut g = mailgen::MailGen::new(seed);
    (0..n)
        .map(|i| g.mail(i, "Tue, 14 Nov 2023 22:13:20 +0000", size))
        .collect()
}

fn codecs(train: &[Vec<u8>]) -> Res<Vec<Codec>> {
    let mut out = vec![Codec {
        name: "none".into(),
        pack: Box::new(|m| m.to_vec()),
        unpack: Box::new(|p, _| p.to_vec()),
    }];
    out.push(Codec {
        name: "lz4 (lz4_flex)".into(),
        pack: Box::new(lz4_flex::compress),
        unpack: Box::new(|p, n| lz4_flex::decompress(p, n).unwrap()),
    });
    for level in [1, 3, 6, 9] {
        out.push(Codec {
            name: format!("zstd {level}"),
            pack: Box::new(move |m| zstd::bulk::compress(m, level).unwrap()),
            unpack: Box::new(|p, n| zstd::bulk::decompress(p, n).unwrap()),
        });
    }
    out.push(Codec {
        name: "zstd 3, store's own code (postfach::store::compress)".into(),
        pack: Box::new(|m| postfach::store::compress::pack(m).unwrap()),
        unpack: Box::new(|p, _| postfach::store::compress::unpack(p).unwrap()),
    });
    for dict_size in [16 * 1024, 64 * 1024] {
        let dict = zstd::dict::from_samples(train, dict_size)?;
        let d2 = dict.clone();
        let mut c = zstd::bulk::Compressor::with_dictionary(3, &dict)?;
        let mut d = zstd::bulk::Decompressor::with_dictionary(&d2)?;
        out.push(Codec {
            name: format!("zstd 3 + {} KiB dictionary", dict_size / 1024),
            pack: Box::new(move |m| c.compress(m).unwrap()),
            unpack: Box::new(move |p, n| d.decompress(p, n).unwrap()),
        });
    }
    Ok(out)
}

fn run() -> Res<()> {
    let mut n = 5000;
    let mut size = 4500;
    let mut train_first: Option<Vec<usize>> = None;
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().ok_or(format!("{k} needs a value"))?;
        match k.as_str() {
            "--mails" => n = v.parse()?,
            "--size" => size = v.parse()?,
            "--train-first" => {
                train_first = Some(
                    v.split(',')
                        .map(str::parse)
                        .collect::<std::result::Result<Vec<usize>, _>>()?,
                )
            }
            _ => return Err(format!("unknown option {k}").into()),
        }
    }
    if let Some(firsts) = train_first {
        return own_dictionary(&mails(7, n, size), &firsts);
    }
    let test = mails(7, n, size);
    let train = mails(1_000_003, 2000, size);
    let raw: usize = test.iter().map(Vec::len).sum();
    println!(
        "\n{n} mails of ~{} B (examples/support/mailgen.rs)\n",
        raw / n
    );
    println!("| codec | bytes per mail | of raw | compress µs/mail | decompress µs/mail |");
    println!("|---|---|---|---|---|");
    for mut c in codecs(&train)? {
        let t = Instant::now();
        let packed: Vec<Vec<u8>> = test.iter().map(|m| (c.pack)(m)).collect();
        let tc = t.elapsed();
        let t = Instant::now();
        for (p, m) in packed.iter().zip(&test) {
            let back = (c.unpack)(p, m.len());
            assert!(back == *m, "{} is not byte-exact", c.name);
        }
        let td = t.elapsed();
        let bytes: usize = packed.iter().map(Vec::len).sum();
        println!(
            "| {} | {:.0} | {:.2} | {:.1} | {:.1} |",
            c.name,
            bytes as f64 / n as f64,
            bytes as f64 / raw as f64,
            tc.as_secs_f64() * 1e6 / n as f64,
            td.as_secs_f64() * 1e6 / n as f64,
        );
    }
    Ok(())
}

/// The store's dictionary trained on the first `first` mails of `all`,
/// and the rest packed and unpacked with it.
fn own_dictionary(all: &[Vec<u8>], firsts: &[usize]) -> Res<()> {
    use postfach::store::compress::{self, dict};
    println!(
        "\n{} mails of ~{} B; dictionary trained on the first N, applied to the rest\n",
        all.len(),
        all.iter().map(Vec::len).sum::<usize>() / all.len().max(1)
    );
    println!("| first N | training ms | bytes per mail | without dictionary | of raw | compress µs/mail | decompress µs/mail |");
    println!("|---|---|---|---|---|---|---|");
    for &first in firsts {
        let (train, rest) = all.split_at(first.min(all.len()));
        let heads: Vec<&[u8]> = train
            .iter()
            .map(|m| &m[..m.len().min(dict::SAMPLE_HEAD)])
            .collect();
        let t = Instant::now();
        let bytes = dict::train(&heads)?;
        let tt = t.elapsed();
        let d = dict::Dict::trained(bytes.clone())?;
        let dicts = dict::Dicts::default();
        let t = Instant::now();
        let packed: Vec<Vec<u8>> = rest.iter().map(|m| d.pack(m).unwrap()).collect();
        let tc = t.elapsed();
        let t = Instant::now();
        for (p, m) in packed.iter().zip(rest) {
            let back = match p.split_first() {
                Some((&dict::ZSTD_DICT, payload)) => {
                    let (id, frame) = dict::split(payload)?;
                    dict::unpack_with(&dicts, id, Some(&bytes), frame)?
                }
                _ => compress::unpack(p)?,
            };
            assert!(back == *m, "not byte-exact");
        }
        let td = t.elapsed();
        let plain: usize = rest.iter().map(|m| compress::pack(m).unwrap().len()).sum();
        let raw: usize = rest.iter().map(Vec::len).sum();
        let sum: usize = packed.iter().map(Vec::len).sum();
        let k = rest.len().max(1) as f64;
        println!(
            "| {first} | {:.0} | {:.0} | {:.0} | {:.2} | {:.1} | {:.1} |",
            tt.as_secs_f64() * 1e3,
            sum as f64 / k,
            plain as f64 / k,
            sum as f64 / raw as f64,
            tc.as_secs_f64() * 1e6 / k,
            td.as_secs_f64() * 1e6 / k,
        );
    }
    Ok(())
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench_codec: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
