//! Which Trash folder a folder sync proposes (SyncFolders, scheduler
//! `folders`), where the server marks none with RFC 6154 `\Trash`.
//!
//! Cyrus and Courier keep personal folders under `INBOX.` and Courier
//! sends no SPECIAL-USE, so their only Trash is `INBOX.Trash`, and an
//! account set up with the usual `Trash` gets `NO Mailbox does not exist`
//! on every delete. The proposal, in order:
//!
//! 1. the first selectable folder marked `\Trash` (RFC 6154);
//! 2. else the first selectable folder whose last name level (after `.`
//!    or `/`) is `Trash`, any case: `Trash`, `INBOX.Trash`, `INBOX/Trash`.
//!
//! An unset Trash setting takes the proposal. A set one stays as the
//! admin chose it while the server lists it. A set one the server does
//! not list is replaced by the listed folder of the same last level
//! (`Trash` by `INBOX.Trash`, `Papierkorb` by `INBOX.Papierkorb`: the same
//! folder in the server's namespace, which is what the admin meant — as it
//! stood, every delete failed); without such a namesake it stays, and the
//! delete says FolderUnknown.

use super::folders::Folder;

/// The Trash folder of `listed` (module docs), if any.
pub fn listed_trash(listed: &[Folder]) -> Option<&str> {
    let selectable = || listed.iter().filter(|f| f.selectable);
    selectable()
        .find(|f| f.special_use == "\\Trash")
        .or_else(|| selectable().find(|f| leaf(&f.name).eq_ignore_ascii_case("trash")))
        .map(|f| f.name.as_str())
}

/// The Trash setting after a sync that listed `listed`, for the setting
/// `current` ("" = unset); see the module docs.
pub fn trash_setting(current: &str, listed: &[Folder]) -> String {
    if current.is_empty() {
        return listed_trash(listed).unwrap_or_default().to_string();
    }
    let mut selectable = listed.iter().filter(|f| f.selectable);
    if selectable.clone().any(|f| f.name == current) {
        return current.to_string();
    }
    selectable
        .find(|f| leaf(&f.name).eq_ignore_ascii_case(leaf(current)))
        .map_or(current, |f| f.name.as_str())
        .to_string()
}

/// The last level of a folder name (`.` and `/` are the usual delimiters).
fn leaf(name: &str) -> &str {
    name.rsplit(['.', '/']).next().unwrap_or(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(name: &str, special_use: &'static str) -> Folder {
        Folder {
            name: name.into(),
            special_use,
            selectable: true,
        }
    }

    #[test]
    fn courier_trash_is_proposed_and_a_missing_choice_becomes_its_namesake() {
        let courier = [
            folder("INBOX", ""),
            folder("INBOX.Sent", ""),
            folder("INBOX.Trash", ""),
            folder("INBOX.Papierkorb", ""),
        ];
        assert_eq!(listed_trash(&courier), Some("INBOX.Trash"));
        assert_eq!(trash_setting("", &courier), "INBOX.Trash");
        assert_eq!(trash_setting("Trash", &courier), "INBOX.Trash");
        assert_eq!(trash_setting("trash", &courier), "INBOX.Trash");
        assert_eq!(trash_setting("Papierkorb", &courier), "INBOX.Papierkorb");
        // A listed choice stays, and one without a namesake is the admin's.
        assert_eq!(trash_setting("INBOX.Sent", &courier), "INBOX.Sent");
        assert_eq!(trash_setting("Gelöscht", &courier), "Gelöscht");
    }

    #[test]
    fn special_use_wins_and_nothing_is_proposed_without_a_trash() {
        let listed = [folder("Trash", ""), folder("Gelöscht", "\\Trash")];
        assert_eq!(listed_trash(&listed), Some("Gelöscht"));
        assert_eq!(trash_setting("", &listed), "Gelöscht");
        assert_eq!(trash_setting("Trash", &listed), "Trash");
        let mut noselect = folder("INBOX.Trash", "");
        noselect.selectable = false;
        assert_eq!(listed_trash(&[folder("INBOX", ""), noselect.clone()]), None);
        assert_eq!(
            trash_setting("Trash", &[folder("INBOX", ""), noselect]),
            "Trash"
        );
        assert_eq!(trash_setting("", &[folder("INBOX.Trashcan", "")]), "");
    }
}
