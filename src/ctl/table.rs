//! The message table of `inbox` and `outbox`: which columns each folder
//! shows, and how the cells of a ListMessages dict read for people.
//!
//! Tables are for reading on a terminal; `--json` keeps the whole dicts.
//! Every cell is cleaned of control characters: subjects and addresses
//! come from strangers.

use std::collections::HashMap;

use zbus::{OwnedVariant, Variant};

use super::{dates, output};

/// Subject width when stdout is not a terminal (and the least on one).
const SUBJECT_WIDTH: usize = 60;
const MIN_SUBJECT_WIDTH: usize = 20;
/// Sender width in the table; the full address is in `--json`.
const FROM_WIDTH: usize = 30;
/// Outbox error width in the table; the whole reply is in `--json`.
const ERROR_WIDTH: usize = 40;

/// One message dict of ListMessages.
pub type Message = HashMap<String, OwnedVariant>;

/// Which folder a listing shows (the `folder` filter key); each has its
/// own columns: the inbox is about senders and flags, the outbox about
/// recipients and how sending went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Folder {
    Inbox,
    Outbox,
}

impl Folder {
    /// The `folder` filter value (ARCHITECTURE.md "The D-Bus API").
    pub fn key(self) -> &'static str {
        match self {
            Folder::Inbox => "inbox",
            Folder::Outbox => "outbox",
        }
    }

    fn columns(self) -> &'static [Column] {
        use Column::*;
        match self {
            Folder::Inbox => &[Id, Date, From, Subject, Size, Flags],
            Folder::Outbox => &[Id, Date, To, Subject, Size, State, Error],
        }
    }
}

/// A table column; `Subject` takes the width the others leave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    Id,
    Date,
    From,
    To,
    Subject,
    Size,
    Flags,
    State,
    Error,
}

impl Column {
    fn header(self) -> &'static str {
        match self {
            Column::Id => "ID",
            Column::Date => "DATE",
            Column::From => "FROM",
            Column::To => "TO",
            Column::Subject => "SUBJECT",
            Column::Size => "SIZE",
            Column::Flags => "FLAGS",
            Column::State => "STATE",
            Column::Error => "ERROR",
        }
    }

    fn cell(self, m: &Message) -> String {
        match self {
            Column::Id => text(m, "id"),
            Column::Date => dates::local_minutes(int(m, "date")),
            Column::From => output::truncate(&text(m, "from"), FROM_WIDTH),
            Column::To => output::truncate(&text(m, "to"), FROM_WIDTH),
            Column::Subject => text(m, "subject"),
            Column::Size => size(int(m, "size")),
            Column::Flags => flags(m),
            Column::State => text(m, "state"),
            // The server's whole reply is in `--json`.
            Column::Error => output::truncate(&text(m, "error"), ERROR_WIDTH),
        }
    }
}

/// The table of `folder`'s columns; the header row is printed even for no
/// messages, so an empty outbox still shows what it would list. With a
/// terminal width the subject gets what the other columns leave (at least
/// 20). Every cell is cleaned of control characters: subjects and
/// addresses come from strangers, and an escape sequence in one must not
/// drive the admin's terminal.
pub fn message_table(folder: Folder, messages: &[Message], width: Option<usize>) -> String {
    let columns = folder.columns();
    let mut rows: Vec<Vec<String>> = messages
        .iter()
        .map(|m| {
            columns
                .iter()
                .map(|c| output::printable(&c.cell(m)))
                .collect()
        })
        .collect();
    let subject = columns.iter().position(|c| *c == Column::Subject);
    let others: usize = columns
        .iter()
        .enumerate()
        .filter(|(i, _)| Some(*i) != subject)
        .map(|(i, c)| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .max()
                .unwrap_or(0)
                .max(c.header().len())
        })
        .sum();
    let subject_width = match width {
        Some(cols) => cols
            .saturating_sub(others + 2 * (columns.len() - 1))
            .max(MIN_SUBJECT_WIDTH),
        None => SUBJECT_WIDTH,
    };
    if let Some(i) = subject {
        for row in &mut rows {
            row[i] = output::truncate(&row[i], subject_width);
        }
    }
    let header: Vec<String> = columns.iter().map(|c| c.header().to_string()).collect();
    rows.insert(0, header);
    let right: Vec<usize> = columns
        .iter()
        .position(|c| *c == Column::Size)
        .into_iter()
        .collect();
    output::align(&rows, &right)
}

/// `R` read, `A` assigned to a contact, `P` private; `-` where not.
pub fn flags(m: &Message) -> String {
    let read = matches!(m.get("read").map(|v| &**v), Some(Variant::Bool(true)));
    let assigned = !text(m, "contact").is_empty();
    let private = matches!(m.get("private").map(|v| &**v), Some(Variant::Bool(true)));
    [(read, 'R'), (assigned, 'A'), (private, 'P')]
        .iter()
        .map(|&(on, c)| if on { c } else { '-' })
        .collect()
}

/// Sizes as people read them: 812, 4.1K, 2.3M.
pub fn size(bytes: i64) -> String {
    const K: f64 = 1024.0;
    let b = bytes as f64;
    if b < K {
        bytes.to_string()
    } else if b < K * K {
        format!("{:.1}K", b / K)
    } else {
        format!("{:.1}M", b / (K * K))
    }
}

pub fn text(m: &Message, key: &str) -> String {
    m.get(key).map(|v| output::text(key, v)).unwrap_or_default()
}

/// An integer field (`date x`, `size t`) whatever its width; 0 if absent.
pub fn int(m: &Message, key: &str) -> i64 {
    match m.get(key).map(|v| &**v) {
        Some(Variant::I64(n)) => *n,
        Some(Variant::U64(n)) => i64::try_from(*n).unwrap_or(i64::MAX),
        Some(Variant::U32(n)) => i64::from(*n),
        Some(Variant::I32(n)) => i64::from(*n),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(id: u64, subject: &str, read: bool, contact: &str) -> Message {
        let v = |v: Variant<'_>| OwnedVariant::try_from(v).unwrap();
        let mut m = Message::new();
        m.insert("id".into(), v(Variant::from(id)));
        m.insert("date".into(), v(Variant::from(0i64)));
        m.insert("from".into(), v(Variant::from("Kunde <k@example.test>")));
        m.insert("subject".into(), v(Variant::from(subject)));
        m.insert("size".into(), v(Variant::from(5000u64)));
        m.insert("read".into(), v(Variant::from(read)));
        m.insert("contact".into(), v(Variant::from(contact)));
        m.insert("private".into(), v(Variant::from(false)));
        m
    }

    #[test]
    fn table_rows_flags_and_subject_width() {
        let long = "x".repeat(100);
        let t = message_table(
            Folder::Inbox,
            &[msg(7, &long, true, ""), msg(12, "Hi", false, "K-1")],
            None,
        );
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("ID") && lines[0].ends_with("FLAGS"));
        assert!(
            lines[1].starts_with("7 ") && lines[1].ends_with("R--"),
            "{t}"
        );
        assert!(lines[2].ends_with("-A-"), "{t}");
        assert!(lines[1].contains(&format!("{}…", "x".repeat(59))), "{t}");
        assert!(lines[1].contains("4.9K"), "{t}");
        // A narrow terminal still leaves 20 characters for the subject.
        let narrow = message_table(Folder::Inbox, &[msg(7, &long, true, "")], Some(40));
        assert!(narrow.contains(&format!("{}…", "x".repeat(19))), "{narrow}");
        // A wide one shows the whole subject.
        let wide = message_table(Folder::Inbox, &[msg(7, &long, true, "")], Some(250));
        assert!(wide.contains(&long), "{wide}");
    }

    #[test]
    fn outbox_columns_state_error_and_clean_cells() {
        let v = |v: Variant<'_>| OwnedVariant::try_from(v).unwrap();
        let empty = message_table(Folder::Outbox, &[], None);
        assert_eq!(empty, "ID  DATE  TO  SUBJECT  SIZE  STATE  ERROR\n");
        let mut m = msg(3, "Angebot\x1b[31m", false, "");
        m.insert(
            "to".into(),
            v(Variant::from(vec!["a@example.test", "b@example.test"])),
        );
        m.insert("state".into(), v(Variant::from("failed")));
        m.insert(
            "error".into(),
            v(Variant::from(format!("550 {}", "y".repeat(80)))),
        );
        let t = message_table(Folder::Outbox, &[m], None);
        let row = t.lines().nth(1).unwrap_or_default();
        assert!(row.contains("a@example.test, b@example.test"), "{t}");
        assert!(row.contains("failed  550 y"), "{t}");
        assert!(row.ends_with('…') && !row.contains('\x1b'), "{t}");
        assert!(!t.contains("FLAGS") && !t.contains("Kunde"), "{t}");
    }

    #[test]
    fn sizes() {
        assert_eq!(size(812), "812");
        assert_eq!(size(4200), "4.1K");
        assert_eq!(size(3 * 1024 * 1024), "3.0M");
    }
}
