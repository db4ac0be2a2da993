//! `inbox`, `outbox` and `raw`: reading stored mail over
//! `Mailbox.ListMessages` and `Mailbox.GetRaw` (ARCHITECTURE.md "The D-Bus API").
//!
//! `inbox` and `outbox` are one listing with a different `folder` filter
//! and columns ([`super::table`]). All act for a CRM user (`--user`); the
//! default "" is the admin's view of everything, which only an admin
//! caller gets (the daemon checks). `raw`
//! copies the fd's bytes unchanged: the point of the command is to see the
//! mail exactly as the server sent it (invariant 3), 8-bit bytes, bare CRs
//! and leading dots included.

use std::collections::HashMap;
use std::io::{IsTerminal, Read, Seek, SeekFrom, Write};

use clap::Args;
use zbus::{ObjectPath, Variant};

use super::commands::{checked_path, Ctl};
use super::table::{message_table, Folder};
use super::{dates, output, CtlError};
use crate::dbus::proxy::MailboxProxy;

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

impl Ctl {
    /// `inbox`: one page of received mail as a table, then "shown X of TOTAL".
    pub async fn inbox(&self, args: &InboxArgs) -> Result<(), CtlError> {
        self.messages(args, Folder::Inbox).await
    }

    /// `outbox`: the same for mail being sent, with its state and error.
    pub async fn outbox(&self, args: &InboxArgs) -> Result<(), CtlError> {
        self.messages(args, Folder::Outbox).await
    }

    /// One page of `folder`: a table and "shown X of TOTAL", or with
    /// `--json` {"total", "offset", "messages": [dicts]}.
    async fn messages(&self, args: &InboxArgs, folder: Folder) -> Result<(), CtlError> {
        let mut filter = args.filter()?;
        filter.insert("folder", Variant::from(folder.key()));
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
        print!("{}", message_table(folder, &messages, width));
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
}
