//! `draft ID`: save a draft in an IMAP account's Drafts folder
//! (Mailbox.SaveDraft) and print its id; `--replace DRAFT` replaces an
//! earlier one. The message flags are those of `send` (no recipient
//! needed); the daemon checks them as for sending.

use clap::Args;
use zbus::Variant;

use super::commands::{not_found, Ctl};
use super::send::{message, SendArgs};
use super::CtlError;
use crate::dbus::proxy::MailboxProxy;

/// The flags of `draft`.
#[derive(Args, Debug, Default, Clone, PartialEq)]
pub struct DraftArgs {
    #[command(flatten)]
    pub message: SendArgs,
    /// Replace this draft (an id `draft` printed before).
    #[arg(long, value_name = "DRAFT")]
    pub replace: Option<u64>,
}

impl Ctl {
    /// `draft`: SaveDraft, then the draft's id.
    pub async fn draft(&self, args: &DraftArgs) -> Result<(), CtlError> {
        let mut m = message(&args.message, &mut std::io::stdin())?;
        if let Some(old) = args.replace {
            m.insert("draft_id", Variant::from(old));
        }
        let id_arg = &args.message.id;
        let path = self.account(id_arg).await?.inner().path().to_owned();
        let mailbox = MailboxProxy::new(&self.conn).await?;
        let id = mailbox
            .save_draft(&args.message.user, &path, m)
            .await
            .map_err(|e| not_found(id_arg, e.into()))?;
        if self.json {
            println!("{}", serde_json::json!({ "id": id }));
        } else {
            println!("saved as draft {id} (ListMessages folder drafts)");
        }
        Ok(())
    }
}
