//! The raw limit for `scripts/bench`: how fast the bytes of a mailbox can
//! come over one TLS connection at all, and what writing them durably costs,
//! with no store, no parsing and no bookkeeping. postfach's first fetch is
//! judged against this line (target: at least half of it).
//!
//!     bench_raw --port-imap P --port-pop3 P --user U --ca FILE --dir DIR
//!               (password on stdin)
//!
//! Prints three lines, each `<what> wall_s=<s> mails=<n> bytes=<n>`:
//! - `imap`: LOGIN, SELECT INBOX, one `UID FETCH 1:* BODY.PEEK[]`, every
//!   literal read and kept in memory (RFC 3501 §7.4.2: the server streams
//!   all FETCH responses for the one command; this is the best any client
//!   can do over one connection);
//! - `pop3`: USER/PASS, STAT, then every `RETR n` sent at once while the
//!   replies are read (RFC 2449 PIPELINING, which Dovecot offers);
//! - `write`: the IMAP bytes appended to one file in DIR with one fsync per
//!   100 mails, the batch size a durable store commit would use.
//!
//! Only ever pointed at 127.0.0.1 by the bench.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use postfach::net::{connect_tcp, start_tls, Stream, Timeouts, TlsContext};

const HOST: &str = "127.0.0.1";
const FSYNC_BATCH: usize = 100;

struct Args {
    imap_port: u16,
    pop3_port: u16,
    user: String,
    pass: String,
    ca: PathBuf,
    dir: PathBuf,
}

fn parse_args() -> Result<Args, String> {
    let get = |name: &str| -> Result<String, String> {
        let all: Vec<String> = std::env::args().collect();
        let at = all
            .iter()
            .position(|a| a == name)
            .ok_or(format!("missing {name}"))?;
        all.get(at + 1)
            .cloned()
            .ok_or(format!("{name} needs a value"))
    };
    let port = |s: String| s.parse::<u16>().map_err(|_| format!("bad port {s}"));
    let mut pass = String::new();
    std::io::stdin()
        .read_line(&mut pass)
        .map_err(|e| format!("cannot read the password from stdin: {e}"))?;
    Ok(Args {
        imap_port: port(get("--port-imap")?)?,
        pop3_port: port(get("--port-pop3")?)?,
        user: get("--user")?,
        pass: pass.trim_end().to_string(),
        ca: PathBuf::from(get("--ca")?),
        dir: PathBuf::from(get("--dir")?),
    })
}

type Reader = BufReader<Stream>;

async fn open(ctx: &TlsContext, port: u16) -> Result<Reader, String> {
    let t = Timeouts::default();
    let tcp = connect_tcp(HOST, port, &t)
        .await
        .map_err(|e| e.to_string())?;
    let tls = start_tls(tcp, HOST, ctx, None, &t)
        .await
        .map_err(|e| e.to_string())?;
    Ok(BufReader::with_capacity(256 * 1024, tls))
}

async fn line(r: &mut Reader) -> Result<Vec<u8>, String> {
    let mut l = Vec::new();
    let n = r
        .read_until(b'\n', &mut l)
        .await
        .map_err(|e| e.to_string())?;
    if n == 0 {
        return Err("server closed the connection".into());
    }
    Ok(l)
}

async fn send(r: &mut Reader, cmd: &str) -> Result<(), String> {
    r.get_mut()
        .write_all(cmd.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    r.get_mut().flush().await.map_err(|e| e.to_string())
}

/// Reads lines until the tagged reply to `tag`; collects every literal.
async fn imap_until(r: &mut Reader, tag: &str, mails: &mut Vec<Vec<u8>>) -> Result<(), String> {
    loop {
        let l = line(r).await?;
        if l.starts_with(tag.as_bytes()) {
            return if l[tag.len()..].starts_with(b" OK") {
                Ok(())
            } else {
                Err(format!("IMAP: {}", String::from_utf8_lossy(&l).trim_end()))
            };
        }
        // A literal `{N}\r\n` at the end of a line: N bytes follow.
        let text = String::from_utf8_lossy(&l);
        if let Some(n) = text
            .trim_end()
            .strip_suffix('}')
            .and_then(|s| s.rsplit_once('{'))
            .and_then(|(_, n)| n.parse::<usize>().ok())
        {
            let mut buf = vec![0; n];
            r.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
            mails.push(buf);
        }
    }
}

async fn imap(ctx: &TlsContext, a: &Args) -> Result<Vec<Vec<u8>>, String> {
    let mut r = open(ctx, a.imap_port).await?;
    line(&mut r).await?;
    let mut none = Vec::new();
    send(
        &mut r,
        &format!("a LOGIN \"{}\" \"{}\"\r\n", a.user, a.pass),
    )
    .await?;
    imap_until(&mut r, "a", &mut none).await?;
    send(&mut r, "b SELECT INBOX\r\n").await?;
    imap_until(&mut r, "b", &mut none).await?;
    let start = Instant::now();
    let mut mails = Vec::new();
    send(&mut r, "c UID FETCH 1:* BODY.PEEK[]\r\n").await?;
    imap_until(&mut r, "c", &mut mails).await?;
    report("imap", start, &mails);
    send(&mut r, "d LOGOUT\r\n").await?;
    Ok(mails)
}

async fn pop3_ok(r: &mut Reader) -> Result<Vec<u8>, String> {
    let l = line(r).await?;
    if l.starts_with(b"+OK") {
        Ok(l)
    } else {
        Err(format!("POP3: {}", String::from_utf8_lossy(&l).trim_end()))
    }
}

async fn pop3(ctx: &TlsContext, a: &Args) -> Result<(), String> {
    let mut r = open(ctx, a.pop3_port).await?;
    pop3_ok(&mut r).await?;
    send(&mut r, &format!("USER {}\r\n", a.user)).await?;
    pop3_ok(&mut r).await?;
    send(&mut r, &format!("PASS {}\r\n", a.pass)).await?;
    pop3_ok(&mut r).await?;
    send(&mut r, "STAT\r\n").await?;
    let stat = String::from_utf8_lossy(&pop3_ok(&mut r).await?).into_owned();
    let count: usize = stat
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .ok_or(format!("POP3: bad STAT reply {stat:?}"))?;
    let start = Instant::now();
    let cmds: String = (1..=count).map(|i| format!("RETR {i}\r\n")).collect();
    let (rd, mut wr) = tokio::io::split(r);
    let writer = async move {
        wr.write_all(cmds.as_bytes()).await?;
        wr.flush().await?;
        Ok::<_, std::io::Error>(wr)
    };
    let reader = async move {
        let mut rd = BufReader::with_capacity(256 * 1024, rd);
        let mut mails = Vec::with_capacity(count);
        for _ in 0..count {
            let mut l = Vec::new();
            rd.read_until(b'\n', &mut l)
                .await
                .map_err(|e| e.to_string())?;
            if !l.starts_with(b"+OK") {
                return Err(format!("POP3 RETR: {}", String::from_utf8_lossy(&l)));
            }
            let mut mail = Vec::new();
            loop {
                l.clear();
                let n = rd
                    .read_until(b'\n', &mut l)
                    .await
                    .map_err(|e| e.to_string())?;
                if n == 0 || l == b".\r\n" {
                    break;
                }
                mail.extend_from_slice(l.strip_prefix(b".").unwrap_or(&l));
            }
            mails.push(mail);
        }
        Ok::<_, String>(mails)
    };
    let (w, mails) = tokio::join!(writer, reader);
    let mails = mails?;
    w.map_err(|e| e.to_string())?;
    report("pop3", start, &mails);
    Ok(())
}

fn write_durably(dir: &Path, mails: &[Vec<u8>]) -> Result<(), String> {
    let path = dir.join("bench_raw.out");
    let start = Instant::now();
    let mut f = std::fs::File::create(&path).map_err(|e| e.to_string())?;
    for batch in mails.chunks(FSYNC_BATCH) {
        for m in batch {
            f.write_all(m).map_err(|e| e.to_string())?;
        }
        f.sync_data().map_err(|e| e.to_string())?;
    }
    report("write", start, mails);
    std::fs::remove_file(&path).map_err(|e| e.to_string())
}

fn report(what: &str, start: Instant, mails: &[Vec<u8>]) {
    let bytes: usize = mails.iter().map(Vec::len).sum();
    println!(
        "{what} wall_s={:.3} mails={} bytes={bytes}",
        start.elapsed().as_secs_f64(),
        mails.len()
    );
}

async fn run(a: Args) -> Result<(), String> {
    let ctx = TlsContext::new(Some(&a.ca)).map_err(|e| e.to_string())?;
    let mails = imap(&ctx, &a).await?;
    pop3(&ctx, &a).await?;
    write_durably(&a.dir, &mails)
}

fn main() -> ExitCode {
    let result = parse_args().and_then(|a| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?
            .block_on(run(a))
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench_raw: {e}");
            ExitCode::FAILURE
        }
    }
}
