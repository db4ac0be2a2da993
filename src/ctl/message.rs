//! One mail: `show`, `assign`, `unassign`, `read` and `delete` over
//! `Mailbox.GetMessage`, `AssignToContact`, `Unassign`, `SetRead` and
//! `DeleteMessage` (ARCHITECTURE.md "The D-Bus API").
//!
//! Every command acts for a CRM user (`--user`, "" = the admin's view). A
//! mail that user may not see is `NotFound` from the daemon, the same as a
//! mail that does not exist (invariant 6); it is passed through unchanged.
//! Everything printed from the mail is cleaned of control characters first:
//! the text comes from strangers and must not drive the admin's terminal.

use zbus::Variant;

use super::commands::Ctl;
use super::table::{flags, int, size, text, Message};
use super::{dates, html, output, CtlError};
use crate::dbus::account_id;
use crate::dbus::proxy::MailboxProxy;

impl Ctl {
    /// `show ID`: headers, body, attachments; `--json` prints the dict.
    pub async fn show_message(&self, id: u64, user: &str) -> Result<(), CtlError> {
        let mailbox = MailboxProxy::new(&self.conn).await?;
        let m = mailbox.get_message(user, id).await?;
        if self.json {
            println!("{}", output::json_object(&m));
        } else {
            print!("{}", render(&m));
        }
        Ok(())
    }

    /// `assign ID CONTACT`: AssignToContact [Journalzuordnung].
    pub async fn assign(&self, id: u64, contact: &str, user: &str) -> Result<(), CtlError> {
        let mailbox = MailboxProxy::new(&self.conn).await?;
        mailbox.assign_to_contact(user, id, contact).await?;
        self.done(
            id,
            "assigned",
            &format!("assigned {id} to contact {contact}"),
        )
    }

    /// `unassign ID`: Unassign.
    pub async fn unassign(&self, id: u64, user: &str) -> Result<(), CtlError> {
        let mailbox = MailboxProxy::new(&self.conn).await?;
        mailbox.unassign(user, id).await?;
        self.done(id, "unassigned", &format!("unassigned {id}"))
    }

    /// `read ID [--unread]`: SetRead.
    pub async fn mark_read(&self, id: u64, read: bool, user: &str) -> Result<(), CtlError> {
        let mailbox = MailboxProxy::new(&self.conn).await?;
        mailbox.set_read(user, id, read).await?;
        let state = if read { "read" } else { "unread" };
        self.done(id, state, &format!("marked {id} {state}"))
    }

    /// `delete ID`: DeleteMessage. The daemon moves the mail to the Trash
    /// folder on an IMAP server first where it can, and deletes nothing if
    /// that move fails; a success means it is gone from the store.
    pub async fn delete_message(&self, id: u64, user: &str) -> Result<(), CtlError> {
        let mailbox = MailboxProxy::new(&self.conn).await?;
        mailbox.delete_message(user, id).await?;
        self.done(id, "deleted", &format!("deleted {id}"))
    }

    /// One line for people, or `{"id", "result"}` for scripts.
    fn done(&self, id: u64, result: &str, line: &str) -> Result<(), CtlError> {
        if self.json {
            println!("{}", serde_json::json!({ "id": id, "result": result }));
        } else {
            println!("{}", output::printable(line));
        }
        Ok(())
    }
}

/// The `show` text: aligned headers, a blank line, the body, a blank line,
/// the attachments.
pub fn render(m: &Message) -> String {
    let account = {
        let path = text(m, "account");
        let id = account_id(&path).unwrap_or(&path).to_string();
        let name = text(m, "account_name");
        let address = text(m, "account_address");
        match (name.is_empty(), address.is_empty()) {
            (true, true) => id,
            (false, true) => format!("{name} ({id})"),
            (_, false) => format!("{name} <{address}> ({id})")
                .trim_start()
                .to_string(),
        }
    };
    let contact = match text(m, "contact") {
        c if c.is_empty() => "(none)".to_string(),
        c => c,
    };
    let headers = [
        ("ID:", text(m, "id")),
        ("Date:", dates::local_minutes(int(m, "date"))),
        ("From:", text(m, "from")),
        ("To:", text(m, "to")),
        ("Cc:", text(m, "cc")),
        ("Subject:", text(m, "subject")),
        ("Account:", account),
        ("Contact:", contact),
        ("Flags:", flag_words(m)),
        ("Message-ID:", text(m, "message_id")),
    ];
    let rows: Vec<Vec<String>> = headers
        .into_iter()
        .map(|(k, v)| vec![k.to_string(), output::printable(&v)])
        .collect();
    let mut out = output::align(&rows, &[]);
    out.push('\n');
    out.push_str(&body(m));
    out.push_str("\n\n");
    out.push_str(&attachments(m));
    out
}

/// `R-P (read, private)`: the letters of the inbox table, spelled out.
fn flag_words(m: &Message) -> String {
    let letters = flags(m);
    let mut words = vec![if letters.contains('R') {
        "read"
    } else {
        "unread"
    }];
    if letters.contains('A') {
        words.push("assigned");
    }
    if letters.contains('P') {
        words.push("private");
    }
    format!("{letters} ({})", words.join(", "))
}

/// The text part; else the HTML part without tags, saying so; else a note.
///
/// `GetMessage` fills `text` from the HTML when a mail has no text part
/// (mail-parser's `body_text`), so "no text part" shows as a `text` that is
/// exactly mail-parser's `html_to_text` of `html` — the same crate and
/// version as the daemon's, so the test is exact. We then render the HTML
/// ourselves ([`html::to_text`]): mail-parser breaks lines only at `<br>`
/// and `</p>`, and the table and div layouts of Outlook mail would run
/// together into one line.
fn body(m: &Message) -> String {
    let plain = text(m, "text");
    let markup = text(m, "html");
    let from_html = !markup.trim().is_empty()
        && (plain.trim().is_empty() || plain == mail_parser::decoders::html::html_to_text(&markup));
    if from_html {
        return format!(
            "[no text part; the HTML part with its tags removed]\n{}",
            printable_lines(&html::to_text(&markup))
        );
    }
    if !plain.trim().is_empty() {
        return printable_lines(plain.trim_end());
    }
    "[no text body]".to_string()
}

/// `name  type  size` per attachment, or "Attachments: none".
fn attachments(m: &Message) -> String {
    let list: Vec<Vec<String>> = match m.get("attachments").map(|v| &**v) {
        Some(Variant::Array(a)) => a
            .iter()
            .filter_map(|e| match e {
                Variant::Structure(s) => match s.fields() {
                    [name, mime, bytes] => Some(vec![
                        format!("  {}", output::printable(&output::text("", name))),
                        output::printable(&output::text("", mime)),
                        size(match bytes {
                            Variant::U64(n) => i64::try_from(*n).unwrap_or(i64::MAX),
                            _ => 0,
                        }),
                    ]),
                    _ => None,
                },
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    if list.is_empty() {
        return "Attachments: none\n".to_string();
    }
    let mut rows = vec![vec!["  NAME".into(), "TYPE".into(), "SIZE".into()]];
    rows.extend(list);
    format!(
        "Attachments ({}):\n{}",
        rows.len() - 1,
        output::align(&rows, &[2])
    )
}

/// Body text for a terminal: line breaks and tabs kept, CR dropped (CRLF
/// mail), every other control character shown as `�`.
fn printable_lines(text: &str) -> String {
    text.lines()
        .map(|l| {
            l.split('\t')
                .map(output::printable)
                .collect::<Vec<_>>()
                .join("\t")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use zbus::OwnedVariant;

    fn dict(pairs: Vec<(&str, Variant<'static>)>) -> Message {
        pairs
            .into_iter()
            .map(|(k, v)| (k.to_string(), OwnedVariant::try_from(v).unwrap()))
            .collect()
    }

    fn base() -> Vec<(&'static str, Variant<'static>)> {
        vec![
            ("id", Variant::from(42u64)),
            ("date", Variant::from(0i64)),
            ("from", Variant::from("Kunde <k@example.test>")),
            (
                "to",
                Variant::from(vec!["a@example.test", "b@example.test"]),
            ),
            ("cc", Variant::from(Vec::<String>::new())),
            ("subject", Variant::from("Angebot\x1b]0;pwned\x07")),
            (
                "account",
                Variant::from(
                    zbus::ObjectPath::try_from("/org/postfach/Postfach1/accounts/abc1").unwrap(),
                ),
            ),
            ("account_name", Variant::from("Vertrieb")),
            ("account_address", Variant::from("info@example.test")),
            ("contact", Variant::from("K-7")),
            ("read", Variant::from(true)),
            ("private", Variant::from(false)),
            ("message_id", Variant::from("<1@example.test>")),
        ]
    }

    #[test]
    fn headers_body_attachments() {
        let mut d = base();
        d.push(("text", Variant::from("Hallo,\r\n\tanbei.\x1b[2J\r\n\r\n")));
        d.push(("html", Variant::from("<p>Hallo</p>")));
        d.push((
            "attachments",
            Variant::from(vec![("angebot.pdf", "application/pdf", 3072u64)]),
        ));
        let out = render(&dict(d));
        assert!(out.starts_with("ID:          42\nDate:"), "{out}");
        assert!(
            out.contains("\nTo:          a@example.test, b@example.test\n"),
            "{out}"
        );
        assert!(out.contains("\nCc:\n"), "{out}");
        assert!(
            out.contains("Account:     Vertrieb <info@example.test> (abc1)"),
            "{out}"
        );
        assert!(
            out.contains("Contact:     K-7\nFlags:       RA- (read, assigned)"),
            "{out}"
        );
        assert!(!out.contains('\x1b') && !out.contains('\x07'), "{out}");
        assert!(out.contains("\n\nHallo,\n\tanbei.\u{fffd}[2J\n\n"), "{out}");
        assert!(!out.contains("<p>"), "{out}");
        assert!(out.ends_with(
            "Attachments (1):\n  NAME         TYPE             SIZE\n  angebot.pdf  application/pdf  3.0K\n"
        ), "{out}");
    }

    #[test]
    fn html_only_and_empty_bodies() {
        let html = "<div>Gr&uuml;&szlig;e</div><div>Team</div>";
        // As the daemon sends an HTML-only mail: text derived from the HTML.
        for derived in [
            String::new(),
            mail_parser::decoders::html::html_to_text(html),
        ] {
            let mut d = base();
            d.push(("text", Variant::from(derived)));
            d.push(("html", Variant::from(html)));
            let out = render(&dict(d));
            assert!(
                out.contains("[no text part; the HTML part with its tags removed]\nGrüße\nTeam\n"),
                "{out}"
            );
        }
        let mut d = base();
        d.push(("text", Variant::from("Grüße vom Team")));
        d.push(("html", Variant::from(html)));
        let out = render(&dict(d));
        assert!(
            out.contains("\n\nGrüße vom Team\n\n") && !out.contains("[no text"),
            "{out}"
        );
        assert!(out.ends_with("Attachments: none\n"), "{out}");
        let out = render(&dict(base()));
        assert!(out.contains("\n[no text body]\n"), "{out}");
        assert!(out.contains("Flags:       RA- (read, assigned)"), "{out}");
    }
}
