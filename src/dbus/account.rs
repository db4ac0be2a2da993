//! `org.postfach.Postfach1.Account`, one object per account at
//! `/org/postfach/Postfach1/accounts/<id>`: its methods and signals.
//!
//! Its properties are the table of [`super::props`], served with the
//! caller's access checked by [`super::account_iface`], from the snapshot
//! in [`super::registry`] that every successful write replaces; the
//! runtime properties (`State`, `Progress`, …) come from the scheduler's
//! board. Secrets are write-only: only `HasPassword` says one exists.

use std::collections::HashMap;
use std::sync::Arc;

use zbus::fdo::Properties;
use zbus::message::Header;
use zbus::names::InterfaceName;
use zbus::object_server::SignalEmitter;
use zbus::{interface, Connection, OwnedVariant};

use super::ctx::Ctx;
use super::errors::{self, ApiError, ApiResult};
use super::props::{self, View};
use super::registry::Snapshot;
use super::{wire, ACCOUNT_IFACE};
use crate::account::{Account, SettingValue, MAX_STRING};
use crate::error::{Error, Result};
use crate::redact::Scrubber;
use crate::store::SecretKind;

pub struct AccountObject {
    ctx: Arc<Ctx>,
    id: String,
}

impl AccountObject {
    pub fn new(ctx: Arc<Ctx>, id: String) -> AccountObject {
        AccountObject { ctx, id }
    }

    /// Replace the published snapshot and announce what changed: the
    /// table's rule, values of public properties, names of the others.
    async fn publish(&self, emitter: &SignalEmitter<'_>, account: Account, has_password: bool) {
        let new = Snapshot {
            account,
            has_password,
        };
        let Some(old) = self.ctx.accounts.put(new.clone()) else {
            return;
        };
        let status = self.ctx.scheduler.status(&self.id);
        let changes = props::changes(
            &View {
                account: &old.account,
                has_password: old.has_password,
                status: &status,
            },
            &View {
                account: &new.account,
                has_password: new.has_password,
                status: &status,
            },
        );
        if changes.is_empty() {
            return;
        }
        let iface = InterfaceName::from_static_str_unchecked(ACCOUNT_IFACE);
        if let Err(e) = Properties::properties_changed(
            emitter,
            iface,
            changes.values,
            std::borrow::Cow::Borrowed(&changes.invalidated),
        )
        .await
        {
            tracing::debug!(error = %e, "PropertiesChanged not sent");
        }
    }

    /// NotFound once the account is gone (a call racing its deletion).
    async fn current(&self) -> ApiResult<Account> {
        let id = self.id.clone();
        self.ctx
            .blocking(move |s| s.account(&id))
            .await?
            .ok_or_else(|| {
                ApiError::from(Error::NotFound(format!("account {} was deleted", self.id)))
            })
    }

    async fn set_secret(&self, kind: SecretKind, key: &str, password: &str) -> ApiResult<()> {
        // The same checks as the settings key, so both ways agree.
        let probe = [(key.to_string(), SettingValue::Str(password.to_string()))];
        self.current().await?.updated(&probe)?;
        let id = self.id.clone();
        let value = password.to_string();
        self.ctx
            .blocking(move |s| {
                if s.account(&id)?.is_none() {
                    return Err(Error::NotFound(format!("account {id} was deleted")));
                }
                s.set_secret(&id, kind, Some(&value))
            })
            .await
    }

    /// The account's secrets, to scrub them from a server's reply.
    async fn scrubber(&self) -> ApiResult<Scrubber> {
        let account = self.current().await?;
        let store = self.ctx.store.clone();
        let scrubber = tokio::task::spawn_blocking(move || Scrubber::for_account(&store, &account))
            .await
            .map_err(|e| Error::storage_msg(format!("store task failed: {e}")))?;
        scrubber
            .ok_or_else(|| Error::storage_msg("cannot read the account's secrets".into()).into())
    }
}

#[interface(name = "org.postfach.Postfach1.Account")]
impl AccountObject {
    /// Apply settings changes: validated on a copy, written in one
    /// transaction with any secrets, then the account's task restarts.
    async fn update(
        &self,
        changes: HashMap<String, OwnedVariant>,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> Result<(), ApiError> {
        let caller = self.ctx.admin(conn, &hdr).await?;
        let changes = wire::settings(changes)?;
        wire::require_nonempty(&changes, "Update")?;
        let id = self.id.clone();
        let (account, has_password) = self
            .ctx
            .blocking(move |s| {
                let a = s.update_account(&id, |cur| {
                    let next = cur.updated(&changes)?;
                    super::folders::check_known(cur, &changes)?;
                    Ok(next)
                })?;
                let pw = s.has_secret(&id, SecretKind::Password)?;
                Ok((a, pw))
            })
            .await?;
        self.publish(&emitter, account, has_password).await;
        self.ctx.scheduler.reload(&self.id);
        tracing::info!(account_id = %self.id, uid = caller.uid, "account updated");
        Ok(())
    }

    /// Set the incoming server's password (write-only).
    async fn set_password(
        &self,
        password: &str,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> Result<(), ApiError> {
        let caller = self.ctx.admin(conn, &hdr).await?;
        wire::check_len("password", password, MAX_STRING)?;
        self.set_secret(SecretKind::Password, "password", password)
            .await?;
        let account = self.current().await?;
        self.publish(&emitter, account, true).await;
        self.ctx.scheduler.reload(&self.id);
        tracing::info!(account_id = %self.id, uid = caller.uid, "password changed");
        Ok(())
    }

    /// Set the SMTP server's password (write-only).
    async fn set_smtp_password(
        &self,
        password: &str,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<(), ApiError> {
        let caller = self.ctx.admin(conn, &hdr).await?;
        wire::check_len("smtp_password", password, MAX_STRING)?;
        self.set_secret(SecretKind::SmtpPassword, "smtp_password", password)
            .await?;
        tracing::info!(account_id = %self.id, uid = caller.uid, "SMTP password changed");
        Ok(())
    }

    /// Delete the account, its secrets, its task and its unassigned mail;
    /// mail assigned to a contact stays.
    async fn delete(
        &self,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<(), ApiError> {
        let caller = self.ctx.admin(conn, &hdr).await?;
        let id = self.id.clone();
        self.ctx.blocking(move |s| s.delete_account(&id)).await?;
        self.ctx.scheduler.remove(&self.id);
        self.ctx.accounts.remove(&self.id);
        self.ctx.forget_status(&self.id);
        // The scheduler's removal notice has the service unpublish this
        // object (service::pump): it must not remove itself while this
        // very call still runs on it.
        tracing::info!(account_id = %self.id, uid = caller.uid, "account deleted");
        Ok(())
    }

    /// Test the saved settings step by step; nothing is written.
    async fn test_connection(
        &self,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<Vec<wire::Dict>, ApiError> {
        self.ctx.operator(conn, &hdr).await?;
        let account = self.current().await?;
        let id = self.id.clone();
        let (pw, smtp_pw) = self
            .ctx
            .blocking(move |s| {
                Ok((
                    s.secret(&id, SecretKind::Password)?,
                    s.secret(&id, SecretKind::SmtpPassword)?,
                ))
            })
            .await?;
        // Office 365: the token of the sign-in, as the account's task
        // gets it (refreshed ahead of expiry).
        let token = if account.kind.is_office365() {
            self.ctx.office365.access_token(&account).await
        } else {
            Err(Error::NeedsAuthorization(
                crate::probe::NOT_CONNECTED.into(),
            ))
        };
        let secrets = crate::probe::Secrets {
            password: pw.as_ref().map(|p| p.expose()),
            smtp_password: smtp_pw.as_ref().map(|p| p.expose()),
            token: token.as_ref().map(|t| t.secret()),
        };
        let steps =
            crate::probe::test(&account, &secrets, &self.ctx.tls()?, &self.ctx.timeouts).await;
        Ok(steps.iter().map(wire::step_dict).collect())
    }

    /// Fetch now; returns the number of new mails when that fetch is done.
    async fn fetch_now(
        &self,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<u32, ApiError> {
        self.ctx.operator(conn, &hdr).await?;
        // No store read first: every stored account has a task, and the
        // scheduler answers NotFound for one that has none (deleted). A
        // FetchNow round over 1,000 idle accounts otherwise sent 1,000
        // reads to the blocking pool at once, which starts a thread for
        // each that finds none idle.
        match self.ctx.scheduler.fetch_now(&self.id).await {
            Ok(report) => Ok(u32::try_from(report.new_ids.len()).unwrap_or(u32::MAX)),
            // The server's words may repeat the password: scrubbed here
            // too, whichever path the error took to get here.
            Err(e) => Err(errors::for_account(&self.scrubber().await?, e)),
        }
    }

    /// Office 365: start the sign-in `flow` (`device` or `browser`); the
    /// reply says where to sign in (dbus::connect).
    async fn connect(
        &self,
        flow: &str,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<wire::Dict, ApiError> {
        let caller = self.ctx.admin(conn, &hdr).await?;
        let account = self.current().await?;
        let reply = super::connect::connect(&self.ctx, &account, flow).await?;
        tracing::info!(account_id = %self.id, uid = caller.uid, "Connect");
        Ok(reply)
    }

    /// Office 365: complete the browser sign-in with the address Microsoft
    /// redirected to.
    async fn complete_connect(
        &self,
        redirect_url: &str,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<(), ApiError> {
        self.ctx.admin(conn, &hdr).await?;
        let account = self.current().await?;
        Ok(super::connect::complete(&self.ctx, &account, redirect_url).await?)
    }

    /// List the server's folders into `Folders` and `FoldersSyncedAt`,
    /// proposing unset Drafts/Trash/Sent folders (scheduler `folders`).
    async fn sync_folders(
        &self,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> Result<Vec<String>, ApiError> {
        let caller = self.ctx.admin(conn, &hdr).await?;
        let before = self.current().await?;
        super::folders::check_imap(&before)?;
        let folders = match self.ctx.scheduler.sync_folders(&self.id).await {
            Ok(f) => f,
            Err(e) => return Err(errors::for_account(&self.scrubber().await?, e)),
        };
        let after = self.current().await?;
        let reload = super::folders::task_settings_changed(&before, &after);
        let has_password = self
            .ctx
            .accounts
            .get(&self.id)
            .is_some_and(|s| s.has_password);
        self.publish(&emitter, after, has_password).await;
        if reload {
            self.ctx.scheduler.reload(&self.id);
        }
        tracing::info!(account_id = %self.id, uid = caller.uid, "folders synchronized");
        Ok(folders)
    }

    /// Emitted when a fetch ends; `error` is "" on success, else the
    /// error's kind (`Authentication`, `Connection`, …): the signal goes
    /// to every listener, so the server's words are in `LastError` only.
    #[zbus(signal)]
    pub async fn fetch_finished(
        emitter: &SignalEmitter<'_>,
        new_messages: u32,
        error: &str,
    ) -> zbus::Result<()>;
}
