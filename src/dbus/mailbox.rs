//! `org.postfach.Postfach1.Mailbox` at the root object: what the CRM shows
//! its users.
//!
//! Every method first decides whose view it answers with ([`Viewer`]) from
//! the caller's credentials, then filters by [`Viewer::can_see`] with each
//! account's CURRENT private owner. A mail the viewer may not see is
//! `NotFound`, never `AccessDenied`, which would reveal that it exists.

use std::collections::HashMap;
use std::os::fd::OwnedFd as StdOwnedFd;
use std::sync::Arc;

use zbus::message::Header;
use zbus::object_server::SignalEmitter;
use zbus::{interface, Connection, ObjectPath, OwnedFd, OwnedVariant};

use super::errors::{ApiError, ApiResult};
use super::filter::Filter;
use super::service::Ctx;
use super::wire::Dict;
use crate::access::Viewer;
use crate::error::{Error, Result};
use crate::store::MessageMeta;

/// Largest page a caller may ask for.
pub const MAX_PAGE: u32 = 1000;

pub struct Mailbox {
    ctx: Arc<Ctx>,
}

impl Mailbox {
    pub fn new(ctx: Arc<Ctx>) -> Mailbox {
        Mailbox { ctx }
    }

    async fn viewer(&self, conn: &Connection, hdr: &Header<'_>, user: &str) -> ApiResult<Viewer> {
        let c = super::caller::caller(conn, hdr).await?;
        Ok(self.ctx.policy()?.viewer(&c, user)?)
    }

    /// The message if `viewer` may see it, else NotFound.
    async fn visible(&self, viewer: &Viewer, id: u64) -> ApiResult<MessageMeta> {
        let viewer = viewer.clone();
        self.ctx
            .blocking(move |s| {
                let not_found = || Error::NotFound(format!("no message {id}"));
                let m = s.message(id)?.ok_or_else(not_found)?;
                let owner = s
                    .account(&m.account)?
                    .map(|a| a.private_owner)
                    .unwrap_or_default();
                if viewer.can_see(&owner, &m.contact) {
                    Ok(m)
                } else {
                    Err(not_found())
                }
            })
            .await
    }
}

#[interface(name = "org.postfach.Postfach1.Mailbox")]
impl Mailbox {
    /// A page of the messages `user` may see, newest first, and the total.
    async fn list_messages(
        &self,
        user: &str,
        filter: HashMap<String, OwnedVariant>,
        offset: u32,
        limit: u32,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<(Vec<Dict>, u32), ApiError> {
        let viewer = self.viewer(conn, &hdr, user).await?;
        let filter = Filter::parse(filter)?;
        if limit > MAX_PAGE {
            return Err(Error::invalid("limit", format!("at most {MAX_PAGE} per page")).into());
        }
        let (page, total) = self
            .ctx
            .blocking(move |s| {
                let owners: HashMap<String, String> = s
                    .accounts()?
                    .into_iter()
                    .map(|a| (a.id, a.private_owner))
                    .collect();
                let owners2 = owners.clone();
                let q = filter.query(offset, limit, move |m: &MessageMeta| {
                    let owner = owners.get(&m.account).map(String::as_str).unwrap_or("");
                    viewer.can_see(owner, &m.contact)
                });
                let (page, total) = s.list_messages(&q)?;
                Ok((
                    page.into_iter()
                        .map(|m| {
                            let private = owners2.get(&m.account).is_some_and(|o| !o.is_empty());
                            message_dict(&m, private)
                        })
                        .collect(),
                    total,
                ))
            })
            .await?;
        Ok((page, total))
    }

    /// The bytes exactly as received, in a sealed memfd.
    async fn get_raw(
        &self,
        user: &str,
        id: u64,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<OwnedFd, ApiError> {
        let viewer = self.viewer(conn, &hdr, user).await?;
        self.visible(&viewer, id).await?;
        let fd = self
            .ctx
            .blocking(move |s| {
                let raw = s
                    .raw(id)?
                    .ok_or_else(|| Error::NotFound(format!("no message {id}")))?;
                sealed_memfd(&raw)
            })
            .await?;
        Ok(OwnedFd::from(fd))
    }

    /// New mail was stored for an account; opaque ids only (invariant 6).
    #[zbus(signal)]
    pub async fn messages_added(
        emitter: &SignalEmitter<'_>,
        account: ObjectPath<'_>,
        ids: &[u64],
    ) -> zbus::Result<()>;

    /// Messages changed (read, assigned, deleted); opaque ids only.
    #[zbus(signal)]
    pub async fn messages_changed(emitter: &SignalEmitter<'_>, ids: &[u64]) -> zbus::Result<()>;
}

/// A memfd holding `bytes`, sealed against any change, positioned at 0:
/// the receiver reads exactly what is stored and cannot alter our copy.
fn sealed_memfd(bytes: &[u8]) -> Result<StdOwnedFd> {
    use nix::fcntl::{fcntl, FcntlArg, SealFlag};
    use nix::sys::memfd::{memfd_create, MemFdCreateFlag};
    use std::io::{Seek, SeekFrom, Write};
    let err =
        |e: &dyn std::fmt::Display| Error::Storage(format!("cannot hand out the raw mail: {e}"));
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

/// A message as `ListMessages` returns it (DESIGN.md §3 message dicts).
/// `private` is whether its account is private now.
fn message_dict(m: &MessageMeta, private: bool) -> Dict {
    let mut d = Dict::new();
    let path = super::account_path(&m.account);
    if let Ok(p) = zbus::ObjectPath::try_from(path) {
        d.insert("account".into(), zbus::Variant::from(p));
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
    d
}
