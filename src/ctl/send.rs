//! `send ID`: queue a mail from an account (Mailbox.SendMessage) and print
//! its outbox id; `outbox` then shows its state.
//!
//! The body is read from `--body FILE` or, without it, from stdin (so a
//! script can pipe it); `--html` takes it as HTML instead of plain text.
//! Attachments are files, named by their file name, typed by extension
//! (`application/octet-stream` when unknown). The daemon checks every key
//! and the signature before it queues: a refusal prints its one-line error
//! and queues nothing.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use clap::Args;
use zbus::Variant;

use super::commands::{not_found, Ctl};
use super::CtlError;
use crate::dbus::proxy::MailboxProxy;

/// The flags of `send`.
#[derive(Args, Debug, Default, Clone, PartialEq)]
pub struct SendArgs {
    /// Account id to send from (see `account list`).
    pub id: String,
    /// Recipient; repeat for more.
    #[arg(long, value_name = "ADDRESS")]
    pub to: Vec<String>,
    #[arg(long, value_name = "ADDRESS")]
    pub cc: Vec<String>,
    /// Only in the envelope, never in a header.
    #[arg(long, value_name = "ADDRESS")]
    pub bcc: Vec<String>,
    #[arg(long, default_value = "")]
    pub subject: String,
    /// File with the body; without it the body is read from stdin.
    #[arg(long, value_name = "FILE")]
    pub body: Option<PathBuf>,
    /// The body is HTML, not plain text.
    #[arg(long)]
    pub html: bool,
    /// Attach a file; repeat for more.
    #[arg(long, value_name = "FILE")]
    pub attach: Vec<PathBuf>,
    /// Leave the user's signature out.
    #[arg(long)]
    pub no_signature: bool,
    /// Send for this CRM user (whose signature it gets; "" = admin, the
    /// tenant's general signature).
    #[arg(long, default_value = "")]
    pub user: String,
}

impl Ctl {
    /// `send`: SendMessage, then the outbox id.
    pub async fn send(&self, args: &SendArgs) -> Result<(), CtlError> {
        let message = message(args, &mut std::io::stdin())?;
        let path = self.account(&args.id).await?.inner().path().to_owned();
        let mailbox = MailboxProxy::new(&self.conn).await?;
        let id = mailbox
            .send_message(&args.user, &path, message)
            .await
            .map_err(|e| not_found(&args.id, e.into()))?;
        if self.json {
            println!("{}", serde_json::json!({ "id": id, "state": "queued" }));
        } else {
            println!("queued as {id} (see `postfachctl outbox`)");
        }
        Ok(())
    }
}

/// The SendMessage dict of `args`; the body from `stdin` when no file.
pub fn message(
    args: &SendArgs,
    stdin: &mut dyn Read,
) -> Result<HashMap<&'static str, Variant<'static>>, CtlError> {
    let body = match &args.body {
        Some(file) => read(file)?,
        None => {
            let mut b = Vec::new();
            stdin
                .read_to_end(&mut b)
                .map_err(|e| CtlError::local("InvalidArgument", format!("reading stdin: {e}")))?;
            b
        }
    };
    let body = String::from_utf8(body)
        .map_err(|_| CtlError::local("InvalidArgument", "the body is not UTF-8 text"))?;
    let mut m: HashMap<&'static str, Variant<'static>> = HashMap::new();
    for (key, list) in [("to", &args.to), ("cc", &args.cc), ("bcc", &args.bcc)] {
        if !list.is_empty() {
            m.insert(key, Variant::from(list.clone()));
        }
    }
    m.insert("subject", Variant::from(args.subject.clone()));
    m.insert(if args.html { "html" } else { "text" }, Variant::from(body));
    m.insert("signature", Variant::from(!args.no_signature));
    if !args.attach.is_empty() {
        let mut files: Vec<(String, String, Vec<u8>)> = Vec::new();
        for f in &args.attach {
            files.push((file_name(f)?, mime_of(f).to_string(), read(f)?));
        }
        m.insert("attachments", Variant::from(files));
    }
    Ok(m)
}

fn read(file: &Path) -> Result<Vec<u8>, CtlError> {
    std::fs::read(file)
        .map_err(|e| CtlError::local("InvalidArgument", format!("{}: {e}", file.display())))
}

fn file_name(file: &Path) -> Result<String, CtlError> {
    file.file_name()
        .and_then(|n| n.to_str())
        .map(str::to_string)
        .ok_or_else(|| {
            CtlError::local(
                "InvalidArgument",
                format!("{}: no usable file name", file.display()),
            )
        })
}

/// A MIME type from the file's extension; the common office types only.
pub fn mime_of(file: &Path) -> &'static str {
    let ext = file
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    match ext.as_str() {
        "pdf" => "application/pdf",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "txt" => "text/plain",
        "csv" => "text/csv",
        "html" | "htm" => "text/html",
        "zip" => "application/zip",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stdin_body_and_typed_attachments() {
        let dir = tempfile::tempdir().unwrap();
        let pdf = dir.path().join("Angebot März.PDF");
        std::fs::write(&pdf, b"%PDF").unwrap();
        let args = SendArgs {
            id: "a1".into(),
            to: vec!["k@example.test".into()],
            subject: "Hallo".into(),
            attach: vec![pdf],
            ..SendArgs::default()
        };
        let m = message(&args, &mut &b"Text"[..]).unwrap();
        assert_eq!(m["text"], Variant::from("Text"));
        assert!(!m.contains_key("cc") && !m.contains_key("html"));
        let files = <Vec<(String, String, Vec<u8>)>>::try_from(m["attachments"].clone()).unwrap();
        assert_eq!(
            files,
            [(
                "Angebot März.PDF".into(),
                "application/pdf".into(),
                b"%PDF".to_vec()
            )]
        );
        let bad = message(&args, &mut &[0xffu8][..]).unwrap_err();
        assert!(bad.message.contains("UTF-8"), "{bad}");
    }
}
