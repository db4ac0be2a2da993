//! What the Mailbox methods hand out: message dicts (ARCHITECTURE.md "The D-Bus API"), the
//! `GetMessage` body view, and raw mail in a sealed memfd.

use std::os::fd::OwnedFd as StdOwnedFd;

use zbus::Variant;

use super::wire::Dict;
use crate::error::{Error, Result};
use crate::mime::View;
use crate::store::MessageMeta;

/// A message as `ListMessages` returns it (ARCHITECTURE.md "The D-Bus API" message dicts).
/// `private` is whether its account is private NOW (an account deleted
/// since counts as public: only its assigned mail is left, and that is
/// visible to everyone). `account_name` and `account_address` are the ones
/// stored with the mail, so the mail of a deleted account still shows
/// where it came from.
pub fn message_dict(m: &MessageMeta, private: bool) -> Dict {
    let mut d = Dict::new();
    let path = super::account_path(&m.account);
    if let Ok(p) = zbus::ObjectPath::try_from(path) {
        d.insert("account".into(), Variant::from(p));
    }
    d.insert("id".into(), m.id.into());
    d.insert("tenant".into(), m.tenant.clone().into());
    d.insert("folder".into(), m.folder.clone().into());
    d.insert("from".into(), m.from.clone().into());
    d.insert("to".into(), m.to.clone().into());
    d.insert("cc".into(), m.cc.clone().into());
    d.insert("subject".into(), m.subject.clone().into());
    d.insert("date".into(), m.date.into());
    d.insert("received".into(), m.received.into());
    d.insert("size".into(), m.size.into());
    d.insert("read".into(), m.read.into());
    d.insert("has_attachments".into(), m.has_attachments.into());
    d.insert("contact".into(), m.contact.clone().into());
    d.insert("private".into(), private.into());
    // Outbox states come with sending; fetched mail has none.
    d.insert("state".into(), String::new().into());
    d.insert("error".into(), String::new().into());
    d.insert("account_name".into(), m.account_name.clone().into());
    d.insert("account_address".into(), m.account_address.clone().into());
    d
}

/// `GetMessage`: the list dict plus `message_id`, `text`, `html`,
/// `attachments a(sst)` (name, MIME type, decoded size) and `truncated`
/// (a body or the list was cut to keep the reply within the bus's message
/// limit; see [`crate::mime::MAX_BODY`]).
pub fn full_dict(m: &MessageMeta, private: bool, view: View) -> Dict {
    let mut d = message_dict(m, private);
    let message_id = if view.message_id.is_empty() {
        m.message_id.clone()
    } else {
        view.message_id
    };
    d.insert("message_id".into(), message_id.into());
    d.insert("text".into(), view.text.into());
    d.insert("html".into(), view.html.into());
    d.insert("attachments".into(), Variant::from(view.attachments));
    d.insert("truncated".into(), view.truncated.into());
    d
}

/// A memfd holding `bytes`, sealed against any change, positioned at 0:
/// the receiver reads exactly what is stored and cannot alter our copy.
pub fn sealed_memfd(bytes: &[u8]) -> Result<StdOwnedFd> {
    use nix::fcntl::{fcntl, FcntlArg, SealFlag};
    use nix::sys::memfd::{memfd_create, MemFdCreateFlag};
    use std::io::{Seek, SeekFrom, Write};
    let err = |e: &dyn std::fmt::Display| {
        Error::storage_msg(format!("cannot hand out the raw mail: {e}"))
    };
    let fd = memfd_create(
        c"postfach-raw",
        MemFdCreateFlag::MFD_CLOEXEC | MemFdCreateFlag::MFD_ALLOW_SEALING,
    )
    .map_err(|e| err(&e))?;
    let mut file = std::fs::File::from(fd);
    file.write_all(bytes).map_err(|e| err(&e))?;
    file.seek(SeekFrom::Start(0)).map_err(|e| err(&e))?;
    let seals = SealFlag::F_SEAL_SEAL
        | SealFlag::F_SEAL_SHRINK
        | SealFlag::F_SEAL_GROW
        | SealFlag::F_SEAL_WRITE;
    fcntl(
        std::os::fd::AsRawFd::as_raw_fd(&file),
        FcntlArg::F_ADD_SEALS(seals),
    )
    .map_err(|e| err(&e))?;
    Ok(StdOwnedFd::from(file))
}

/// A contact reference for `AssignToContact`: non-empty, at most 256
/// characters, no control or invisible formatting characters (it is shown
/// in the CRM and written to logs; a line break would forge log lines, a
/// bidi override would show another contact).
pub fn check_contact(contact: &str) -> Result<()> {
    // Bytes first: a long value is refused by its size, before it is read.
    crate::account::check_text("contact", contact, 4 * MAX_CONTACT_CHARS)?;
    if contact.is_empty() {
        return Err(Error::invalid(
            "contact",
            "empty; use Unassign to remove an assignment",
        ));
    }
    if contact.chars().count() > MAX_CONTACT_CHARS {
        return Err(Error::invalid(
            "contact",
            format!("longer than {MAX_CONTACT_CHARS} characters"),
        ));
    }
    Ok(())
}

/// Longest contact reference, in characters.
const MAX_CONTACT_CHARS: usize = 256;

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn contact_rules() {
        assert!(check_contact("K-10042").is_ok());
        assert!(check_contact(&"ä".repeat(256)).is_ok());
        for bad in [
            "",
            "a\nb",
            "tab\there",
            "\u{7f}",
            "K-1\u{202E}24",
            "K\u{200B}1",
        ] {
            match check_contact(bad) {
                Err(Error::InvalidArgument { key, .. }) => assert_eq!(key, "contact"),
                other => panic!("{bad:?}: {other:?}"),
            }
        }
        assert!(check_contact(&"x".repeat(257)).is_err());
        let huge = check_contact(&"\u{1}".repeat(7 << 20)).unwrap_err();
        assert!(huge.to_string().len() < 100, "{huge}");
    }

    #[test]
    fn dict_has_every_contract_key() {
        let m = MessageMeta {
            id: 7,
            account: "a1".into(),
            account_name: "Info".into(),
            ..MessageMeta::default()
        };
        let d = message_dict(&m, true);
        for key in [
            "id",
            "account",
            "tenant",
            "folder",
            "from",
            "to",
            "cc",
            "subject",
            "date",
            "received",
            "size",
            "read",
            "has_attachments",
            "contact",
            "private",
            "state",
            "error",
        ] {
            assert!(d.contains_key(key), "{key} missing");
        }
        assert_eq!(d["private"], Variant::from(true));
        let view = View {
            attachments: vec![("a.pdf".into(), "application/pdf".into(), 3)],
            ..View::default()
        };
        let full = full_dict(&m, false, view);
        assert_eq!(full["attachments"].value_signature().to_string(), "a(sst)");
    }

    #[test]
    fn memfd_is_sealed_and_exact() {
        let fd = sealed_memfd(b"raw\r\nbytes").unwrap();
        let mut f = std::fs::File::from(fd);
        let mut got = Vec::new();
        f.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"raw\r\nbytes");
        use std::io::Write;
        assert!(
            f.write_all(b"x").is_err(),
            "a sealed memfd must refuse writes"
        );
    }
}
