//! Work on the account's other folders over its one connection: moving
//! INBOX mail into a folder (the Trash move of `Mailbox.DeleteMessage`),
//! appending a message (the Sent copy, drafts) and listing the folders
//! (SyncFolders, RFC 6154 SPECIAL-USE).
//!
//! How [`Connection::move_to`] moves, in order of preference:
//! - `UID MOVE` (RFC 6851) when the server offers MOVE: atomic, nothing is
//!   left behind even if the connection breaks.
//! - `UID COPY`, then imap::wire::expunge (`UID STORE \Deleted` and
//!   `UID EXPUNGE` of exactly those UIDs, RFC 4315 §2.1, needs UIDPLUS).
//! - Without UIDPLUS only the copy is made; the original stays in INBOX and
//!   the journal says so: a bare EXPUNGE would also remove every mail other
//!   clients flagged `\Deleted`.
//!
//! A folder that does not exist is `FolderUnknown`: the server answers
//! COPY/MOVE/APPEND with `NO [TRYCREATE]` (RFC 3501 §6.4.7, §6.3.11) or
//! `[NONEXISTENT]` (RFC 5530), and we never create a folder on our own — a
//! typo in the settings must not grow a new folder. UIDs are only
//! meaningful under the UIDVALIDITY they were seen with (RFC 3501
//! §2.3.1.1); if INBOX's UIDVALIDITY changed since, the UIDs name nothing we
//! know and nothing is touched on the server.

use async_imap::imap_proto::{NameAttribute, Response, ResponseCode, Status};

use super::connection::Connection;
use super::session::Caps;
use super::uidset::{compress, COMMAND_UIDS};
use super::utf7;
use super::wire::{self, imap_error, tag, timed, End};
use crate::error::{Error, Result};

mod refusal;
pub use refusal::by_folder_list;
pub(super) use refusal::folder_error;
use refusal::refusal;

/// How a server lets us move mail, decided from its capabilities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// `UID MOVE` (RFC 6851).
    Move,
    /// `UID COPY` + `UID STORE \Deleted` + `UID EXPUNGE` (RFC 4315).
    CopyAndExpunge,
    /// `UID COPY` only: without UIDPLUS the original must stay.
    CopyOnly,
}

impl Plan {
    pub fn for_caps(caps: &Caps) -> Plan {
        Plan::choose(caps.has("MOVE"), caps.has("UIDPLUS"))
    }

    fn choose(has_move: bool, has_uidplus: bool) -> Plan {
        if has_move {
            Plan::Move
        } else if has_uidplus {
            Plan::CopyAndExpunge
        } else {
            Plan::CopyOnly
        }
    }
}

/// Journal text when the server lacks both MOVE and UIDPLUS.
pub const COPY_ONLY: &str = "the server offers neither MOVE nor UIDPLUS: the mail was copied \
     to the folder and the original left in INBOX, because a plain EXPUNGE could remove \
     other clients' deleted mail";

/// What [`Connection::move_to`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moved {
    /// The mails are in the folder and gone from INBOX ([`Plan`] says how).
    Moved(Plan),
    /// Copied only ([`Plan::CopyOnly`]): the originals stay in INBOX.
    Copied,
    /// INBOX has another UIDVALIDITY now: nothing was touched.
    Stale,
}

impl Moved {
    /// The journal's words for how a Trash move ended: "moved" only when
    /// the mail left INBOX.
    pub fn journal(&self) -> &'static str {
        match self {
            Moved::Moved(_) => "mail moved to the Trash folder on the server",
            Moved::Copied => "mail copied to the Trash folder; the original stays in INBOX",
            Moved::Stale => "mail left on the server: INBOX UIDVALIDITY changed",
        }
    }
}

/// A folder as LIST shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Folder {
    /// The name as people read it (UTF-8); commands send it in modified
    /// UTF-7 ([`super::utf7`]). A listed name that is not valid modified
    /// UTF-7 is kept as the server sent it.
    pub name: String,
    /// Its RFC 6154 special use: `\Sent`, `\Drafts`, `\Trash`, `\Junk`,
    /// `\Archive`, `\All`, `\Flagged`; "" for none.
    pub special_use: &'static str,
    /// False for `\Noselect` (a hierarchy level only).
    pub selectable: bool,
}

impl Connection {
    /// Moves INBOX mails `uids`, seen under `uid_validity`, into `folder`;
    /// see the module docs. INBOX is selected read-write afterwards.
    pub async fn move_to(
        &mut self,
        folder: &str,
        uid_validity: u32,
        uids: &[u32],
    ) -> Result<Moved> {
        let r = self.move_inner(folder, uid_validity, uids).await;
        self.checked(r)
    }

    async fn move_inner(&mut self, folder: &str, uid_validity: u32, uids: &[u32]) -> Result<Moved> {
        if folder.is_empty() {
            return Err(Error::FolderUnknown("no folder to move the mail to".into()));
        }
        let plan = Plan::for_caps(&self.caps().await?);
        let mailbox = self.open_inbox(true).await?;
        if mailbox.uid_validity != Some(uid_validity) {
            tracing::warn!(
                host = %self.host,
                known = uid_validity,
                now = ?mailbox.uid_validity,
                "INBOX UIDVALIDITY changed: the mail cannot be identified on the server and stays there"
            );
            return Ok(Moved::Stale);
        }
        let (t, host, session) = (&self.t, self.host.as_str(), &mut self.session);
        for chunk in uids.chunks(COMMAND_UIDS) {
            let set = compress(chunk);
            if plan == Plan::Move {
                let what = format!("moving mail to {folder:?} (UID MOVE)");
                timed(t, host, &what, async {
                    let r = session.uid_mv(&set, utf7::encode(folder)).await;
                    r.map_err(|e| folder_error(host, folder, &what, e))
                })
                .await?;
                continue;
            }
            let what = format!("copying mail to {folder:?} (UID COPY)");
            timed(t, host, &what, async {
                let r = session.uid_copy(&set, utf7::encode(folder)).await;
                r.map_err(|e| folder_error(host, folder, &what, e))
            })
            .await?;
            if plan == Plan::CopyAndExpunge {
                wire::expunge(session, t, host, &set).await?;
            }
        }
        if plan == Plan::CopyOnly {
            tracing::warn!(host, folder, "{COPY_ONLY}");
            return Ok(Moved::Copied);
        }
        Ok(Moved::Moved(plan))
    }

    /// APPENDs `message` to `folder` with `flags` (e.g. `\Seen`, RFC 3501
    /// §6.3.11). Our own tag loop rather than async-imap's APPEND, which
    /// loses the server's `[TRYCREATE]` when the folder is missing.
    pub async fn append(&mut self, folder: &str, flags: &[&str], message: &[u8]) -> Result<()> {
        self.append_uid(folder, flags, message).await.map(|_| ())
    }

    /// [`Connection::append`], answering with the new message's
    /// (UIDVALIDITY, UID) from the tagged OK's `APPENDUID` code (RFC 4315
    /// §3); None when the server does not send it (no UIDPLUS).
    pub async fn append_uid(
        &mut self,
        folder: &str,
        flags: &[&str],
        message: &[u8],
    ) -> Result<Option<(u32, u32)>> {
        let r = self.append_inner(folder, flags, message).await;
        self.checked(r)
    }

    async fn append_inner(
        &mut self,
        folder: &str,
        flags: &[&str],
        message: &[u8],
    ) -> Result<Option<(u32, u32)>> {
        let quoted = quote(folder)?;
        let (t, host, session) = (&self.t, self.host.as_str(), &mut self.session);
        let id = tag();
        let flags = flags.join(" ");
        let len = message.len();
        let line = format!("{id} APPEND {quoted} ({flags}) {{{len}}}\r\n");
        wire::send(session, t, host, &line).await?;
        let what = format!("appending to {folder:?} (APPEND)");
        let refused =
            |text: &str| Error::connection(format!("{host}: server refused {what}: {text}"));
        // The continuation, or the tagged NO that refuses the literal.
        wire::until(
            session,
            t,
            host,
            &what,
            &End::Continue,
            refused,
            |r| match r {
                Response::Done {
                    tag: done,
                    status,
                    outcome,
                } if done.0 == id && *status != Status::Ok => {
                    let missing = matches!(outcome.code, Some(ResponseCode::TryCreate));
                    let text = outcome.information.as_deref().unwrap_or("");
                    Err(refusal(host, folder, &what, text, missing))
                }
                _ => Ok(()),
            },
        )
        .await?;
        let io = session.get_mut();
        let write = async {
            use tokio::io::AsyncWriteExt;
            io.write_all(message).await?;
            io.write_all(b"\r\n").await?;
            io.flush().await
        };
        timed(t, host, &what, async {
            write.await.map_err(|e| {
                Error::connection_by(format!("{host}: sending the message failed: {e}"), e)
            })
        })
        .await?;
        timed(t, host, &what, async {
            loop {
                let done = wire::read(session, host, &what, |r| match r {
                    Response::Done {
                        tag: done,
                        status,
                        outcome,
                    } if done.0 == id => Some(match status {
                        Status::Ok => Ok(append_uid(outcome.code.as_ref())),
                        _ => {
                            let text = outcome.information.as_deref().unwrap_or("");
                            Err(refusal(host, folder, &what, text, false))
                        }
                    }),
                    _ => None,
                })
                .await?;
                if let Some(r) = done {
                    return r;
                }
            }
        })
        .await
    }

    /// Every folder of the account (`LIST "" "*"`, RFC 3501 §6.3.8) with its
    /// special use (RFC 6154 §2), in the server's order.
    pub async fn list_folders(&mut self) -> Result<Vec<Folder>> {
        let r = self.list_inner().await;
        self.checked(r)
    }

    async fn list_inner(&mut self) -> Result<Vec<Folder>> {
        let (t, host, session) = (&self.t, self.host.as_str(), &mut self.session);
        let what = "listing folders (LIST)";
        let stream = timed(t, host, what, async {
            session
                .list(Some(""), Some("*"))
                .await
                .map_err(|e| imap_error(host, what, e))
        })
        .await?;
        let mut stream = std::pin::pin!(stream);
        let mut out = Vec::new();
        while let Some(name) = wire::next(&mut stream, t, host, what).await? {
            let attrs = name.attributes();
            let wire_name = name.name();
            out.push(Folder {
                name: utf7::decode(wire_name).unwrap_or_else(|| wire_name.to_string()),
                special_use: attrs.iter().find_map(special_use).unwrap_or(""),
                selectable: !attrs.contains(&NameAttribute::NoSelect),
            });
        }
        Ok(out)
    }
}

/// (UIDVALIDITY, UID) of `[APPENDUID v uid]`; a set of several UIDs (a
/// MULTIAPPEND, which we never send) is no answer for one message.
fn append_uid(code: Option<&ResponseCode<'_>>) -> Option<(u32, u32)> {
    use async_imap::imap_proto::rfc4315::UidSetMember;
    match code {
        Some(ResponseCode::AppendUid(validity, set)) => match set.as_slice() {
            [UidSetMember::Uid(uid)] => Some((*validity, *uid)),
            _ => None,
        },
        _ => None,
    }
}

fn special_use(a: &NameAttribute<'_>) -> Option<&'static str> {
    Some(match a {
        NameAttribute::All => "\\All",
        NameAttribute::Archive => "\\Archive",
        NameAttribute::Drafts => "\\Drafts",
        NameAttribute::Flagged => "\\Flagged",
        NameAttribute::Junk => "\\Junk",
        NameAttribute::Sent => "\\Sent",
        NameAttribute::Trash => "\\Trash",
        _ => return None,
    })
}

/// A folder name as an IMAP quoted string (RFC 3501 §9 `quoted`): in
/// modified UTF-7, `"` and `\` escaped; a name with control characters
/// (CR, LF, NUL: no server has such a folder) is refused before encoding.
pub(super) fn quote(name: &str) -> Result<String> {
    if name.is_empty() || name.chars().any(char::is_control) {
        return Err(Error::FolderUnknown(format!(
            "{name:?} is not a folder name the server can have"
        )));
    }
    let name = utf7::encode(name);
    Ok(format!(
        "\"{}\"",
        name.replace('\\', "\\\\").replace('"', "\\\"")
    ))
}

#[cfg(test)]
mod tests;
