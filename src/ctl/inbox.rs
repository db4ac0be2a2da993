//! `inbox` and `raw`: reading stored mail over `Mailbox.ListMessages` and
//! `Mailbox.GetRaw` (DESIGN.md §3).
//!
//! Both act for a CRM user (`--user`); the default "" is the admin's view of
//! everything, which only an admin caller gets (the daemon checks). `raw`
//! copies the fd's bytes unchanged: the point of the command is to see the
//! mail exactly as the server sent it (invariant 3), 8-bit bytes, bare CRs
//! and leading dots included.

use std::collections::HashMap;
use std::io::{IsTerminal, Read, Seek, SeekFrom, Write};

use clap::Args;
use zbus::{ObjectPath, OwnedVariant, Variant};

use super::commands::{checked_path, Ctl};
use super::{dates, output, CtlError};
use crate::dbus::proxy::MailboxProxy;

/// Subject width when stdout is not a terminal (and the least on one).
const SUBJECT_WIDTH: usize = 60;
const MIN_SUBJECT_WIDTH: usize = 20;
/// Sender width in the table; the full address is in `--json`.
const FROM_WIDTH: usize = 30;

/// The `inbox` filter flags; each maps to one ListMessages filter key.
#[derive(Args, Debug, Default, Clone, PartialEq)]
pub struct InboxArgs {
    /// Act for this CRM user ("" = everything, admins only).
    #[arg(long, default_value = "")]
    pub user: String,
    /// Only mail of this account.
    #[arg(long, value_name = "ID")]
    pub account: Option<String>,
    /// Only mail of this tenant [Mandant].
    #[arg(long)]
    pub tenant: Option<String>,
    /// Only mail not assigned to a contact.
    #[arg(long)]
    pub unassigned: bool,
    /// Only unread mail.
    #[arg(long, conflicts_with = "read")]
    pub unread: bool,
    /// Only read mail.
    #[arg(long)]
    pub read: bool,
    /// Search subject, sender and recipients (case-insensitive).
    #[arg(long, value_name = "S")]
    pub text: Option<String>,
    /// Mail dated at or after: RFC 3339 (2026-11-27T10:00:00+01:00), a
    /// date (2026-11-27, local midnight) or Unix seconds.
    #[arg(long, value_name = "TIME", value_parser = dates::parse_time)]
    pub since: Option<i64>,
    /// Mail dated at or before (same formats as --since).
    #[arg(long, value_name = "TIME", value_parser = dates::parse_time)]
    pub until: Option<i64>,
    /// At most this many mails (the daemon allows up to 1000 per page).
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
    /// Skip this many mails (paging; newest first).
    #[arg(long, default_value_t = 0)]
    pub offset: u32,
}

impl InboxArgs {
    /// The ListMessages filter with only the keys asked for.
    pub fn filter(&self) -> Result<HashMap<&'static str, Variant<'static>>, CtlError> {
        let mut f: HashMap<&'static str, Variant<'static>> = HashMap::new();
        if let Some(id) = &self.account {
            let path = ObjectPath::try_from(checked_path(id)?)
                .map_err(|e| CtlError::usage(format!("--account {id:?}: {e}")))?;
            f.insert("account", Variant::from(path));
        }
        if let Some(t) = &self.tenant {
            f.insert("tenant", Variant::from(t.clone()));
        }
        if self.unassigned {
            f.insert("unassigned", Variant::from(true));
        }
        if self.read || self.unread {
            f.insert("read", Variant::from(self.read));
        }
        if let Some(t) = &self.text {
            f.insert("text", Variant::from(t.clone()));
        }
        if let Some(t) = self.since {
            f.insert("since", Variant::from(t));
        }
        if let Some(t) = self.until {
            f.insert("until", Variant::from(t));
        }
        Ok(f)
    }
}

/// One message dict of ListMessages.
type Message = HashMap<String, OwnedVariant>;

impl Ctl {
    /// `inbox`: one page of messages as a table, then "shown X of TOTAL".
    pub async fn inbox(&self, args: &InboxArgs) -> Result<(), CtlError> {
        let filter = args.filter()?;
        let mailbox = MailboxProxy::new(&self.conn).await?;
        let (messages, total) = mailbox
            .list_messages(&args.user, filter, args.offset, args.limit)
            .await?;
        if self.json {
            let list: Vec<_> = messages.iter().map(output::json_object).collect();
            let out =
                serde_json::json!({ "total": total, "offset": args.offset, "messages": list });
            println!("{out}");
            return Ok(());
        }
        let width = std::io::stdout()
            .is_terminal()
            .then(|| console::Term::stdout().size_checked())
            .flatten()
            .map(|(_, cols)| usize::from(cols));
        print!("{}", inbox_table(&messages, width));
        println!("shown {} of {total}", messages.len());
        Ok(())
    }

    /// `raw ID`: the stored bytes, exactly, to stdout.
    pub async fn raw(&self, id: u64, user: &str) -> Result<(), CtlError> {
        let mailbox = MailboxProxy::new(&self.conn).await?;
        let fd = mailbox.get_raw(user, id).await?;
        let mut file = std::fs::File::from(std::os::fd::OwnedFd::from(fd));
        let io =
            |e: std::io::Error| CtlError::local("Failed", format!("cannot copy the mail: {e}"));
        // The fd shares its offset with the daemon's; start at byte 0.
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io)?;
        let mut out = std::io::stdout().lock();
        out.write_all(&bytes).map_err(io)?;
        out.flush().map_err(io)
    }
}

/// The table: ID, DATE (local), FROM, SUBJECT, SIZE, FLAGS. With a terminal
/// width the subject gets what the other columns leave (at least 20).
pub fn inbox_table(messages: &[Message], width: Option<usize>) -> String {
    let mut rows: Vec<Vec<String>> = messages
        .iter()
        .map(|m| {
            vec![
                text(m, "id"),
                dates::local_minutes(int(m, "date")),
                output::truncate(&text(m, "from"), FROM_WIDTH),
                text(m, "subject"),
                size(int(m, "size")),
                flags(m),
            ]
        })
        .collect();
    let others: usize = [0, 1, 2, 4, 5]
        .iter()
        .map(|&i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .max()
                .unwrap_or(0)
                .max(HEADERS[i].len())
        })
        .sum();
    let subject_width = match width {
        Some(cols) => cols
            .saturating_sub(others + 2 * (HEADERS.len() - 1))
            .max(MIN_SUBJECT_WIDTH),
        None => SUBJECT_WIDTH,
    };
    for row in &mut rows {
        row[3] = output::truncate(&row[3], subject_width);
    }
    let header: Vec<String> = HEADERS.iter().map(|h| h.to_string()).collect();
    rows.insert(0, header);
    output::align(&rows, &[4])
}

const HEADERS: [&str; 6] = ["ID", "DATE", "FROM", "SUBJECT", "SIZE", "FLAGS"];

/// `R` read, `A` assigned to a contact, `P` private; `-` where not.
fn flags(m: &Message) -> String {
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

fn text(m: &Message, key: &str) -> String {
    m.get(key).map(|v| output::text(key, v)).unwrap_or_default()
}

/// An integer field (`date x`, `size t`) whatever its width; 0 if absent.
fn int(m: &Message, key: &str) -> i64 {
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
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        a: InboxArgs,
    }

    fn parse(args: &[&str]) -> Result<InboxArgs, clap::Error> {
        T::try_parse_from(std::iter::once("t").chain(args.iter().copied())).map(|t| t.a)
    }

    #[test]
    fn filter_has_only_the_keys_given() {
        assert!(parse(&[]).unwrap().filter().unwrap().is_empty());
        let a = parse(&[
            "--account",
            "abc1",
            "--unread",
            "--text",
            "Angebot",
            "--since",
            "1700000000",
        ])
        .unwrap();
        let f = a.filter().unwrap();
        assert_eq!(f.len(), 4);
        assert_eq!(f["read"], Variant::Bool(false));
        assert_eq!(f["since"], Variant::I64(1_700_000_000));
        assert_eq!(f["text"], Variant::from("Angebot"));
        assert_eq!(
            f["account"],
            Variant::from(ObjectPath::try_from("/org/postfach/Postfach1/accounts/abc1").unwrap())
        );
        assert_eq!(
            parse(&["--read"]).unwrap().filter().unwrap()["read"],
            Variant::Bool(true)
        );
        assert!(parse(&["--read", "--unread"]).is_err());
        assert!(parse(&["--since", "yesterday"]).is_err());
        assert!(parse(&["--account", "../x"]).unwrap().filter().is_err());
    }

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
        let t = inbox_table(
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
        let narrow = inbox_table(&[msg(7, &long, true, "")], Some(40));
        assert!(narrow.contains(&format!("{}…", "x".repeat(19))), "{narrow}");
        // A wide one shows the whole subject.
        let wide = inbox_table(&[msg(7, &long, true, "")], Some(250));
        assert!(wide.contains(&long), "{wide}");
    }

    #[test]
    fn sizes() {
        assert_eq!(size(812), "812");
        assert_eq!(size(4200), "4.1K");
        assert_eq!(size(3 * 1024 * 1024), "3.0M");
    }
}
