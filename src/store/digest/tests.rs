use super::*;

const PLAIN: &[u8] =
    b"From: a@example.org\r\nSubject: Hello\r\n\tfolded\r\n\r\nBody\r\nStatus: RO\r\n";

/// `PLAIN` as an mbox server hands it out after its bookkeeping.
fn kept_by_mbox(uid: u32, status: &str) -> Vec<u8> {
    format!(
        "X-IMAPbase: 1700000{uid} 33\r\nFrom: a@example.org\r\nstatus: {status}\r\n\
         X-UID: {uid}\r\nSubject: Hello\r\n\tfolded\r\nX-Keywords: $Label1\r\n  \
         $Label2\r\nX-Status: A\r\nX-IMAP: 1 2\r\n\r\nBody\r\nStatus: RO\r\n"
    )
    .into_bytes()
}

#[test]
fn bookkeeping_fields_and_their_continuations_leave_the_keys_unchanged() {
    let plain = MailKeys::of(PLAIN);
    let kept = MailKeys::of(&kept_by_mbox(3, "O"));
    assert!(kept.bookkeeping && !plain.bookkeeping);
    assert_eq!((&kept.mail, &kept.header), (&plain.mail, &plain.header));
    let again = MailKeys::of(&kept_by_mbox(41, "RO"));
    assert_eq!((&again.mail, &again.header), (&plain.mail, &plain.header));
    // Without bookkeeping fields the mail key is the SHA-256 of the bytes.
    assert_eq!(plain.mail, crate::store::sha256_hex(PLAIN));
    // "Status:" in the body is the mail's own text.
    let body_changed = String::from_utf8_lossy(PLAIN).replace("Status: RO", "Status: O");
    assert_ne!(MailKeys::of(body_changed.as_bytes()).mail, plain.mail);
}

#[test]
fn every_other_byte_counts() {
    let plain = MailKeys::of(PLAIN);
    for changed in [
        "From: a@example.org\r\nSubject: Hello\r\n\tfolded\r\n\r\nBody!\r\nStatus: RO\r\n",
        "From: a@example.org\nSubject: Hello\n\tfolded\n\nBody\nStatus: RO\n",
        "From: a@example.org\r\nSubject: Hello\r\n folded\r\n\r\nBody\r\nStatus: RO\r\n",
        "From: a@example.org\r\nX-UIDL: 7\r\nSubject: Hello\r\n\tfolded\r\n\r\nBody\r\nStatus: RO\r\n",
    ] {
        assert_ne!(MailKeys::of(changed.as_bytes()).mail, plain.mail, "{changed}");
    }
    // A changed body of the same length keeps the header key, not the mail key.
    let bodx = String::from_utf8_lossy(PLAIN).replace("Body\r\n", "Bodx\r\n");
    let same_len = MailKeys::of(bodx.as_bytes());
    assert_eq!(same_len.header, plain.header);
    assert_ne!(same_len.mail, plain.mail);
}

#[test]
fn split_anywhere_gives_the_same_keys() {
    let mail = kept_by_mbox(9, "RO");
    let whole = MailKeys::of(&mail);
    for cut in 0..mail.len() {
        let mut d = Digester::default();
        d.update(&mail[..cut]);
        d.update(&mail[cut..]);
        assert_eq!(d.finish(), whole, "cut at {cut}");
    }
    let mut d = Digester::default();
    for b in &mail {
        d.update(std::slice::from_ref(b));
    }
    assert_eq!(d.finish(), whole);
}

#[test]
fn header_key_from_body_header_and_size() {
    let mail = kept_by_mbox(5, "O");
    let end = mail.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let header = &mail[..end];
    let key = header_key(header, mail.len() as u64).unwrap();
    assert_eq!(key, MailKeys::of(PLAIN).header);
    assert_eq!(header_key(header, 3), None);
    // LF-only mail and a mail that is all header.
    let lf = b"Subject: x\nX-UID: 1\n\nbody\n";
    assert_eq!(
        header_key(b"Subject: x\nX-UID: 2\n\n", lf.len() as u64).unwrap(),
        MailKeys::of(b"Subject: x\n\nbody\n").header
    );
    assert_eq!(
        MailKeys::of(b"Subject: only\r\nX-UID: 3\r\n").mail,
        MailKeys::of(b"Subject: only\r\n").mail
    );
}

#[test]
fn long_names_and_lines_without_colon_are_kept() {
    let long = format!("{}: v\r\n\r\nb", "X".repeat(100));
    assert_eq!(
        MailKeys::of(long.as_bytes()).mail,
        crate::store::sha256_hex(long.as_bytes())
    );
    let odd = b"no colon here\r\nX-UID : 4\r\n\r\nb";
    assert_eq!(
        MailKeys::of(odd).mail,
        MailKeys::of(b"no colon here\r\n\r\nb").mail
    );
}
