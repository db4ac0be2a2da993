//! Which refusals of COPY, MOVE and APPEND mean "this folder does not
//! exist", and the error the caller sees then: FolderUnknown, naming the
//! folder the last SyncFolders listed under the same name, since servers
//! say it in different ways (RFC 3501 `[TRYCREATE]`, RFC 5530
//! `[NONEXISTENT]`, Cyrus and Courier only in plain text).

use crate::error::Error;
use crate::imap::wire::{imap_error, server_text};

/// A refused COPY/MOVE with `[TRYCREATE]` or `[NONEXISTENT]` means the
/// folder is missing: FolderUnknown.
pub(in crate::imap) fn folder_error(
    host: &str,
    folder: &str,
    what: &str,
    e: async_imap::error::Error,
) -> Error {
    if let async_imap::error::Error::No(text) = &e {
        if is_missing_folder(text) {
            return refusal(host, folder, what, &server_text(text), true);
        }
    }
    imap_error(host, what, e)
}

pub(super) fn refusal(host: &str, folder: &str, what: &str, text: &str, missing: bool) -> Error {
    if missing || text.to_ascii_uppercase().contains("NONEXISTENT") {
        Error::FolderUnknown(format!(
            "{host}: the folder {folder:?} does not exist on the server ({text}); \
             run SyncFolders and choose an existing folder"
        ))
    } else {
        Error::connection(format!("{host}: server refused {what}: {text}"))
    }
}

/// Whether async-imap's rendering of a NO reply says the mailbox is
/// missing: the response codes `[TRYCREATE]` (RFC 3501 §7.1) and
/// `[NONEXISTENT]` (RFC 5530), or — Cyrus and Courier send neither for a
/// folder outside their `INBOX.` namespace — the plain text "Mailbox does
/// not exist".
pub(super) fn is_missing_folder(rendered: &str) -> bool {
    let upper = rendered.to_ascii_uppercase();
    rendered.contains("TryCreate")
        || upper.contains("NONEXISTENT")
        || upper.contains("DOES NOT EXIST")
        || upper.contains("DOESN'T EXIST")
        || upper.contains("NO SUCH MAILBOX")
}

/// A failed command on `folder`, decided by the folder list of the last
/// SyncFolders (`listed`; empty: never synced, nothing to decide by): a
/// folder the server did not list is FolderUnknown whatever the server
/// answered, and the error names the listed folder of the same name in
/// another namespace (`INBOX.Trash` for `Trash` on Cyrus and Courier,
/// whose personal folders live under `INBOX.`). Other errors pass.
pub fn by_folder_list(e: Error, folder: &str, listed: &[String]) -> Error {
    let unlisted = !listed.is_empty() && !listed.iter().any(|f| f == folder);
    let decided = match &e {
        Error::FolderUnknown(_) => true,
        Error::Connection { .. } => unlisted,
        _ => false,
    };
    if !decided || listed.is_empty() {
        return e;
    }
    let leaf = |name: &str| {
        name.rsplit(['.', '/'])
            .next()
            .unwrap_or(name)
            .to_lowercase()
    };
    let namesake = listed
        .iter()
        .find(|f| f.as_str() != folder && leaf(f) == leaf(folder));
    let why = if unlisted {
        format!("the server has no folder {folder:?} (the last SyncFolders did not list it)")
    } else {
        e.to_string()
    };
    match namesake {
        Some(n) => Error::FolderUnknown(format!("{why}; it has {n:?}: choose that one")),
        None => Error::FolderUnknown(format!("{why}; choose one the server lists")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_folder_codes_are_recognised() {
        assert!(is_missing_folder(
            r#"code: Some(TryCreate), info: Some("Mailbox doesn't exist: Trash")"#
        ));
        assert!(is_missing_folder(
            r#"code: None, info: Some("[NONEXISTENT] Unknown Mailbox: Trash")"#
        ));
        assert!(!is_missing_folder(
            r#"code: None, info: Some("Permission denied")"#
        ));
    }

    #[test]
    fn the_folder_list_decides_and_names_the_namespaced_folder() {
        let listed: Vec<String> = ["INBOX", "INBOX.Drafts", "INBOX.Trash", "INBOX.Sent"]
            .map(String::from)
            .to_vec();
        // Any refusal for a folder the sync did not list: FolderUnknown, with
        // the folder of the same name under INBOX.
        let refused = Error::connection("imap.example: server refused moving mail: NO odd".into());
        let e = by_folder_list(refused, "Trash", &listed);
        assert!(
            matches!(&e, Error::FolderUnknown(m) if m.contains("\"Trash\"") && m.contains("\"INBOX.Trash\"")),
            "{e:?}"
        );
        // A listed folder's connection trouble stays what it is.
        let dropped = Error::connection("imap.example: connection reset".into());
        let e = by_folder_list(dropped, "INBOX.Trash", &listed);
        assert!(matches!(&e, Error::Connection { .. }), "{e:?}");
        // Never synced: nothing to decide by.
        let dropped = Error::connection("imap.example: server refused".into());
        let e = by_folder_list(dropped, "Trash", &[]);
        assert!(matches!(&e, Error::Connection { .. }), "{e:?}");
        // Other kinds pass untouched.
        let auth = Error::Authentication("no".into());
        assert!(matches!(
            by_folder_list(auth, "Trash", &listed),
            Error::Authentication(_)
        ));
        // No namesake: the hint says to choose a listed one.
        let e = by_folder_list(Error::FolderUnknown("x".into()), "Papierkorb", &listed);
        assert!(
            matches!(&e, Error::FolderUnknown(m) if m.contains("choose one the server lists")),
            "{e:?}"
        );
    }
}
