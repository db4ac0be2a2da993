//! The backup file: a versioned container of checksummed sections.
//!
//! ```text
//! file    := MAGIC "PFBACKUP" ‖ version u16 ‖ header ‖ section* ‖ end
//! header  := len u32 ‖ JSON (at most HEADER_MAX bytes)
//! section := 0x01 ‖ name_len u8 ‖ name ‖ chunk* ‖ 0u32 ‖ SHA-256(section)
//! chunk   := len u32 (1..=CHUNK_MAX) ‖ bytes
//! end     := 0x00 ‖ SHA-256(every byte before this one, and this one)
//! ```
//! Numbers are big-endian. A section's checksum covers its tag, name and
//! every chunk with its length, up to the terminating zero length; the end
//! checksum covers the whole file. Sections are chunked so that a writer
//! can stream a table or a big mail without knowing its size first.
//!
//! A reader trusts nothing: the header, names and chunks are capped, the
//! section count and the total are capped, section bodies go to files in
//! a staging directory (never memory), and the caller uses nothing before
//! [`unpack`] has checked the end checksum. A truncated file ends without
//! `end`; a flipped byte breaks a section's checksum or the whole one.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{Context, Error, Result};

pub const MAGIC: &[u8; 8] = b"PFBACKUP";
pub const VERSION: u16 = 1;
/// Largest header JSON.
pub const HEADER_MAX: u32 = 64 * 1024;
/// Largest chunk; writers use this size.
pub const CHUNK_MAX: u32 = 1024 * 1024;
/// Most sections in one file (tables, secrets, one per big mail). Big
/// mails are those of at least `crate::store::BLOB_MIN` (1 MiB), so a
/// million sections is a terabyte of them; the reader keeps one entry
/// (name, staged path: about 100 bytes) per section, so a hostile file
/// of tiny sections costs at most ~100 MB before it is refused.
pub const SECTIONS_MAX: usize = 1_000_000;

/// Writes a backup into `W`, hashing as it goes.
pub struct Writer<W: Write> {
    out: W,
    whole: Sha256,
}

impl<W: Write> Writer<W> {
    /// Write magic, version and `header` (JSON).
    pub fn new(out: W, header: &[u8]) -> Result<Writer<W>> {
        let len = u32::try_from(header.len())
            .ok()
            .filter(|l| *l <= HEADER_MAX)
            .ok_or_else(|| Error::storage_msg("backup header too long".into()))?;
        let mut w = Writer {
            out,
            whole: Sha256::new(),
        };
        w.put(MAGIC)?;
        w.put(&VERSION.to_be_bytes())?;
        w.put(&len.to_be_bytes())?;
        w.put(header)?;
        Ok(w)
    }

    fn put(&mut self, bytes: &[u8]) -> Result<()> {
        self.whole.update(bytes);
        self.out.write_all(bytes).context("write the backup")
    }

    /// A section named `name`, its body read from `body` to the end.
    pub fn section(&mut self, name: &str, body: &mut dyn Read) -> Result<()> {
        let name_len = u8::try_from(name.len())
            .map_err(|_| Error::storage_msg(format!("backup section name too long: {name}")))?;
        let mut own = Sha256::new();
        let mut put = |w: &mut Self, b: &[u8]| {
            own.update(b);
            w.put(b)
        };
        put(self, &[1, name_len])?;
        put(self, name.as_bytes())?;
        let mut buf = vec![0u8; CHUNK_MAX as usize];
        loop {
            let n = read_full(body, &mut buf).context("read for the backup")?;
            if n == 0 {
                break;
            }
            let len = u32::try_from(n).map_err(|_| Error::storage_msg("chunk".into()))?;
            put(self, &len.to_be_bytes())?;
            put(self, buf.get(..n).unwrap_or_default())?;
        }
        put(self, &0u32.to_be_bytes())?;
        let digest = own.finalize();
        self.put(&digest)
    }

    /// Write the end mark and the whole checksum; returns the output.
    pub fn finish(mut self) -> Result<W> {
        self.put(&[0])?;
        let digest = self.whole.clone().finalize();
        self.out.write_all(&digest).context("write the backup")?;
        self.out.flush().context("write the backup")?;
        Ok(self.out)
    }
}

/// Read until `buf` is full or the input ends.
fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(buf.get_mut(n..).unwrap_or_default()) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// What [`unpack`] found: the header and each section's name and the file
/// in the staging directory that holds its body, in file order.
#[derive(Debug)]
pub struct Unpacked {
    pub header: Vec<u8>,
    pub sections: Vec<(String, PathBuf)>,
}

/// A refusal of the backup itself (not of our disk).
fn bad(why: impl std::fmt::Display) -> Error {
    Error::invalid("fd", format!("not a usable postfach backup: {why}"))
}

/// Reads a checksum-verifying view of the input.
struct Hashing<'a> {
    input: &'a mut dyn Read,
    whole: Sha256,
    total: u64,
    limit: u64,
}

impl Hashing<'_> {
    fn exact(&mut self, buf: &mut [u8], own: Option<&mut Sha256>) -> Result<()> {
        self.total = self.total.saturating_add(buf.len() as u64);
        if self.total > self.limit {
            return Err(bad(format!("larger than {} bytes", self.limit)));
        }
        self.input.read_exact(buf).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                bad("truncated")
            } else {
                Error::storage("read the backup", e)
            }
        })?;
        self.whole.update(&*buf);
        if let Some(h) = own {
            h.update(&*buf);
        }
        Ok(())
    }
}

/// Read a whole backup from `input`, writing every section body into a
/// file of `staging` (which must exist and be empty), and verify every
/// checksum; at most `limit` bytes are read. On error the caller removes
/// `staging`.
pub fn unpack(input: &mut dyn Read, staging: &Path, limit: u64) -> Result<Unpacked> {
    unpack_capped(input, staging, limit, SECTIONS_MAX)
}

/// [`unpack`] with the section cap passed in (tests use a small one).
fn unpack_capped(
    input: &mut dyn Read,
    staging: &Path,
    limit: u64,
    sections_max: usize,
) -> Result<Unpacked> {
    let mut r = Hashing {
        input,
        whole: Sha256::new(),
        total: 0,
        limit,
    };
    let mut magic = [0u8; 8];
    r.exact(&mut magic, None)?;
    if &magic != MAGIC {
        return Err(bad("wrong magic"));
    }
    let mut v = [0u8; 2];
    r.exact(&mut v, None)?;
    if u16::from_be_bytes(v) != VERSION {
        return Err(bad(format!(
            "format version {} unknown",
            u16::from_be_bytes(v)
        )));
    }
    let mut l = [0u8; 4];
    r.exact(&mut l, None)?;
    let len = u32::from_be_bytes(l);
    if len > HEADER_MAX {
        return Err(bad("header too long"));
    }
    let mut header = vec![0u8; len as usize];
    r.exact(&mut header, None)?;
    let mut sections = Vec::new();
    let mut chunk = vec![0u8; CHUNK_MAX as usize];
    loop {
        let mut own = Sha256::new();
        let mut tag = [0u8; 1];
        r.exact(&mut tag, Some(&mut own))?;
        match tag[0] {
            0 => break,
            1 => {}
            t => return Err(bad(format!("unknown part {t}"))),
        }
        if sections.len() >= sections_max {
            return Err(bad("too many sections"));
        }
        let mut nl = [0u8; 1];
        r.exact(&mut nl, Some(&mut own))?;
        let mut name = vec![0u8; nl[0] as usize];
        r.exact(&mut name, Some(&mut own))?;
        let name = String::from_utf8(name).map_err(|_| bad("section name not UTF-8"))?;
        let path = staging.join(format!("s{}", sections.len()));
        let mut file = BufWriter::new(File::create(&path).context("create a staging file")?);
        loop {
            r.exact(&mut l, Some(&mut own))?;
            let n = u32::from_be_bytes(l);
            if n == 0 {
                break;
            }
            if n > CHUNK_MAX {
                return Err(bad("chunk too long"));
            }
            let buf = chunk.get_mut(..n as usize).unwrap_or_default();
            r.exact(buf, Some(&mut own))?;
            file.write_all(buf).context("write a staging file")?;
        }
        let file = file
            .into_inner()
            .map_err(|e| Error::storage("write a staging file", e.into_error()))?;
        file.sync_all().context("sync a staging file")?;
        let expect = own.finalize();
        let mut got = [0u8; 32];
        r.exact(&mut got, None)?;
        if got.as_slice() != expect.as_slice() {
            return Err(bad(format!("section {name} is damaged (checksum)")));
        }
        sections.push((name, path));
    }
    let expect = r.whole.clone().finalize();
    let mut got = [0u8; 32];
    r.input.read_exact(&mut got).map_err(|_| bad("truncated"))?;
    if got.as_slice() != expect.as_slice() {
        return Err(bad("damaged (whole-file checksum)"));
    }
    let mut extra = [0u8; 1];
    if r.input.read(&mut extra).context("read the backup")? != 0 {
        return Err(bad("data after the end"));
    }
    Ok(Unpacked { header, sections })
}

#[cfg(test)]
mod tests;
