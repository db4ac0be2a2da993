use super::*;

/// Three sections; the last of `big` bytes.
fn sample_of(big: usize) -> Vec<u8> {
    let mut w = Writer::new(Vec::new(), br#"{"v":1}"#).unwrap();
    w.section("table:accounts", &mut &b"first body"[..])
        .unwrap();
    w.section("empty", &mut &b""[..]).unwrap();
    let big: Vec<u8> = (0..big).map(|i| (i % 251) as u8).collect();
    w.section("blob:7", &mut big.as_slice()).unwrap();
    w.finish().unwrap()
}

/// Small enough to damage at every position.
fn sample() -> Vec<u8> {
    sample_of(300)
}

fn unpack_bytes(bytes: &[u8], limit: u64) -> (tempfile::TempDir, Result<Unpacked>) {
    let dir = tempfile::tempdir().unwrap();
    let r = unpack(&mut &bytes[..], dir.path(), limit);
    (dir, r)
}

#[test]
fn a_written_backup_unpacks_to_the_same_sections() {
    // More than one chunk.
    let bytes = sample_of(CHUNK_MAX as usize * 2 + 7);
    let (_dir, r) = unpack_bytes(&bytes, u64::MAX);
    let u = r.unwrap();
    assert_eq!(u.header, br#"{"v":1}"#);
    let names: Vec<&str> = u.sections.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["table:accounts", "empty", "blob:7"]);
    assert_eq!(std::fs::read(&u.sections[0].1).unwrap(), b"first body");
    assert!(std::fs::read(&u.sections[1].1).unwrap().is_empty());
    let big = std::fs::read(&u.sections[2].1).unwrap();
    assert_eq!(big.len(), CHUNK_MAX as usize * 2 + 7);
    assert!(big.iter().enumerate().all(|(i, b)| *b == (i % 251) as u8));
}

fn refused(r: Result<Unpacked>) -> String {
    match r {
        Err(Error::InvalidArgument { message, .. }) => message,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn every_truncation_is_refused() {
    let bytes = sample();
    // Every cut in the small parts, and a sample of cuts in the big one.
    for cut in 0..bytes.len() {
        let (_dir, r) = unpack_bytes(&bytes[..cut], u64::MAX);
        let m = refused(r);
        assert!(
            m.contains("truncated") || m.contains("magic"),
            "cut {cut}: {m}"
        );
    }
}

#[test]
fn every_flipped_byte_is_refused() {
    let bytes = sample();
    for pos in 0..bytes.len() {
        let mut bad = bytes.clone();
        bad[pos] ^= 0x01;
        let (_dir, r) = unpack_bytes(&bad, u64::MAX);
        refused(r);
    }
}

#[test]
fn hostile_lengths_and_endless_input_are_bounded() {
    // A header announcing 4 GiB.
    let mut hostile = MAGIC.to_vec();
    hostile.extend_from_slice(&VERSION.to_be_bytes());
    hostile.extend_from_slice(&u32::MAX.to_be_bytes());
    let (_d, r) = unpack_bytes(&hostile, u64::MAX);
    assert!(refused(r).contains("header too long"));
    // A chunk announcing more than the maximum.
    let mut w = Writer::new(Vec::new(), b"{}").unwrap();
    w.section("x", &mut &b"abc"[..]).unwrap();
    let mut bytes = w.finish().unwrap();
    let chunk_len_at = 8 + 2 + 4 + 2 + 2 + 1;
    bytes[chunk_len_at..chunk_len_at + 4].copy_from_slice(&(CHUNK_MAX + 1).to_be_bytes());
    let (_d, r) = unpack_bytes(&bytes, u64::MAX);
    assert!(refused(r).contains("chunk too long"));
    // Endless zeros after a valid start stop at the limit.
    let mut endless = Writer::new(Vec::new(), b"{}").unwrap().out;
    endless.extend_from_slice(&[1, 1, b'x']);
    let mut input = endless.as_slice().chain(Endless(0));
    let dir = tempfile::tempdir().unwrap();
    let m = refused(unpack(&mut input, dir.path(), 10 * 1024 * 1024));
    assert!(m.contains("larger than"), "{m}");
}

#[test]
fn data_after_the_end_is_refused() {
    let mut bytes = sample();
    bytes.push(0);
    let (_d, r) = unpack_bytes(&bytes, u64::MAX);
    assert!(refused(r).contains("after the end"));
}

/// Full-size chunks for ever.
struct Endless(usize);

impl Read for Endless {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let period = 4 + CHUNK_MAX as usize;
        for b in buf.iter_mut() {
            let at = self.0 % period;
            *b = if at < 4 {
                CHUNK_MAX.to_be_bytes()[at]
            } else {
                0
            };
            self.0 += 1;
        }
        Ok(buf.len())
    }
}

/// A file of more sections than the cap is refused before the list of
/// staged sections grows further.
#[test]
fn more_sections_than_the_cap_are_refused() {
    let bytes = sample();
    let dir = tempfile::tempdir().unwrap();
    let r = unpack_capped(&mut &bytes[..], dir.path(), u64::MAX, 2);
    let e = r.expect_err("three sections, cap two").to_string();
    assert!(e.contains("too many sections"), "{e}");
    let dir = tempfile::tempdir().unwrap();
    assert!(unpack_capped(&mut &bytes[..], dir.path(), u64::MAX, 3).is_ok());
}
