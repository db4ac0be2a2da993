//! `org.postfach.Postfach1.Mailbox` at the root object: what the CRM shows
//! its users.
//!
//! Every method first decides whose view it answers with ([`Viewer`]) from
//! the caller's credentials — a mapped user may act only as itself, which is
//! about the caller and reveals nothing about any mail — then asks the store
//! for the mail as that viewer may see it NOW (the account's current private
//! owner; an assigned mail is public). A mail the viewer may not see is
//! `NotFound`, never `AccessDenied`, which would reveal that it exists
//! (invariant 6). Signals carry opaque ids only: on the system bus anyone
//! allowed to listen sees them.

use std::collections::HashMap;
use std::sync::Arc;

use zbus::message::Header;
use zbus::object_server::SignalEmitter;
use zbus::{interface, Connection, ObjectPath, OwnedFd, OwnedVariant};

use super::ctx::Ctx;
use super::errors::{ApiError, ApiResult};
use super::filter::Filter;
use super::mailbox_dict::{check_contact, full_dict, message_dict, sealed_memfd};
use super::wire::Dict;
use crate::access::Viewer;
use crate::error::{Error, Result};
use crate::redact::Scrubber;
use crate::store::{MessageMeta, Store, Visibility};

/// Largest page a caller may ask for.
pub const MAX_PAGE: u32 = 1000;

pub struct Mailbox {
    pub(super) ctx: Arc<Ctx>,
}

/// The store's view of a viewer.
pub fn visibility(v: &Viewer) -> Visibility {
    match v {
        Viewer::All => Visibility::All,
        Viewer::User(u) => Visibility::User(u.clone()),
    }
}

/// The NotFound every method answers for a mail it may not show.
pub fn not_found(id: u64) -> Error {
    Error::NotFound(format!("no message {id}"))
}

/// Whether the account is private now; an account that no longer exists
/// is not (only its assigned mail is left, visible to all).
pub fn is_private(s: &Store, cache: &mut HashMap<String, bool>, account: &str) -> Result<bool> {
    if let Some(p) = cache.get(account) {
        return Ok(*p);
    }
    let p = s
        .account(account)?
        .is_some_and(|a| !a.private_owner.is_empty());
    cache.insert(account.to_string(), p);
    Ok(p)
}

impl Mailbox {
    pub fn new(ctx: Arc<Ctx>) -> Mailbox {
        Mailbox { ctx }
    }

    pub(super) async fn viewer(
        &self,
        conn: &Connection,
        hdr: &Header<'_>,
        user: &str,
    ) -> ApiResult<Visibility> {
        let c = self.ctx.callers.of(conn, hdr).await?;
        Ok(visibility(&self.ctx.with_policy(|p| p.viewer(&c, user))?))
    }

    /// The message if `viewer` may see it now, else NotFound.
    pub(super) async fn visible(&self, viewer: &Visibility, id: u64) -> ApiResult<MessageMeta> {
        let viewer = viewer.clone();
        self.ctx
            .blocking(move |s| s.visible_message(id, &viewer)?.ok_or_else(|| not_found(id)))
            .await
    }

    /// Check visibility, change the message, announce it.
    async fn change(
        &self,
        conn: &Connection,
        hdr: &Header<'_>,
        user: &str,
        id: u64,
        f: impl FnOnce(&Store) -> Result<()> + Send + 'static,
    ) -> ApiResult<()> {
        let viewer = self.viewer(conn, hdr, user).await?;
        self.visible(&viewer, id).await?;
        self.ctx.blocking(f).await?;
        super::announce::changed(conn, id).await;
        Ok(())
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
        let q = filter.query(viewer, offset, limit);
        let page = self
            .ctx
            .blocking(move |s| {
                let (page, total) = s.list_messages(&q)?;
                let mut private = HashMap::new();
                let mut dicts = Vec::with_capacity(page.len());
                for m in &page {
                    let mut d = message_dict(m, is_private(s, &mut private, &m.account)?);
                    super::sending::outbox_keys(s, m, &mut d)?;
                    dicts.push(d);
                }
                Ok((dicts, total))
            })
            .await?;
        Ok(page)
    }

    /// One message with its decoded bodies and its attachment list.
    async fn get_message(
        &self,
        user: &str,
        id: u64,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<Dict, ApiError> {
        let viewer = self.viewer(conn, &hdr, user).await?;
        let m = self.visible(&viewer, id).await?;
        self.ctx
            .blocking(move |s| {
                let raw = s.raw(id)?.ok_or_else(|| not_found(id))?;
                let private = is_private(s, &mut HashMap::new(), &m.account)?;
                let mut d = full_dict(&m, private, crate::mime::view(&raw));
                super::sending::outbox_keys(s, &m, &mut d)?;
                Ok(d)
            })
            .await
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
            .blocking(move |s| sealed_memfd(&s.raw(id)?.ok_or_else(|| not_found(id))?))
            .await?;
        Ok(OwnedFd::from(fd))
    }

    /// Assign to a CRM contact [Journalzuordnung]: the mail becomes visible
    /// to every user and outlives its account.
    async fn assign_to_contact(
        &self,
        user: &str,
        id: u64,
        contact: String,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<(), ApiError> {
        check_contact(&contact)?;
        self.change(conn, &hdr, user, id, move |s| s.set_contact(id, &contact))
            .await
    }

    /// Remove the contact assignment; a private account's mail is then
    /// visible to its owner only again.
    async fn unassign(
        &self,
        user: &str,
        id: u64,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<(), ApiError> {
        self.change(conn, &hdr, user, id, move |s| s.set_contact(id, ""))
            .await
    }

    /// Mark read or unread.
    async fn set_read(
        &self,
        user: &str,
        id: u64,
        read: bool,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<(), ApiError> {
        self.change(conn, &hdr, user, id, move |s| s.set_read(id, read))
            .await
    }

    /// Delete the mail: the server side first, then the store. On an IMAP
    /// account with a Trash folder the account's task moves it there
    /// (scheduler `Request::Trash`); only when that succeeded is the mail
    /// deleted here, so a broken connection, a wrong password or a missing
    /// folder leave everything as it was and the caller can retry.
    async fn delete_message(
        &self,
        user: &str,
        id: u64,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<(), ApiError> {
        let viewer = self.viewer(conn, &hdr, user).await?;
        let m = self.visible(&viewer, id).await?;
        if let Err(e) = self.ctx.scheduler.trash(&m.account, id).await {
            // The Trash move logs in: the server's words may repeat the
            // account's password.
            let account = m.account.clone();
            let scrubber = self
                .ctx
                .blocking(move |s| {
                    let a = s.account(&account)?.ok_or_else(|| not_found(id))?;
                    Scrubber::for_account(s, &a).ok_or_else(|| {
                        Error::storage_msg("cannot read the account's secrets".into())
                    })
                })
                .await?;
            return Err(super::errors::scrub_reply(&scrubber, e.into()));
        }
        if self
            .ctx
            .blocking(move |s| s.delete_message(id))
            .await?
            .is_none()
        {
            // Deleted by another call meanwhile: to this caller it is gone.
            return Err(not_found(id).into());
        }
        tracing::info!(message = id, account_id = %m.account, "message deleted");
        super::announce::changed(conn, id).await;
        Ok(())
    }

    /// Queue a mail from `account` for `user` (dbus::sending); returns its
    /// id in folder `outbox` once it is committed there.
    async fn send_message(
        &self,
        user: &str,
        account: ObjectPath<'_>,
        message: HashMap<String, OwnedVariant>,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<u64, ApiError> {
        let viewer = self.viewer(conn, &hdr, user).await?;
        super::sending::send_message(&self.ctx, conn, viewer, &account, message).await
    }

    /// Save a draft of `user` in `account`'s Drafts folder, replacing the
    /// one `draft_id` names (dbus::drafts); returns its id in folder
    /// `drafts` once it is on the server and stored.
    async fn save_draft(
        &self,
        user: &str,
        account: ObjectPath<'_>,
        message: HashMap<String, OwnedVariant>,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<u64, ApiError> {
        let viewer = self.viewer(conn, &hdr, user).await?;
        super::drafts::save_draft(&self.ctx, conn, viewer, &account, message).await
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
