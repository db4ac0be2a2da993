//! `org.postfach.Postfach1.Account`, one object per account at
//! `/org/postfach/Postfach1/accounts/<id>`.
//!
//! Properties are served from a snapshot that every successful write
//! replaces, so a getter never fails and never waits for the store; the
//! runtime properties (`State`, `Progress`, …) come from the scheduler's
//! board. Secrets are write-only: only `HasPassword` says one exists.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use zbus::fdo::Properties;
use zbus::message::Header;
use zbus::names::InterfaceName;
use zbus::object_server::SignalEmitter;
use zbus::{interface, Connection, OwnedVariant};

use super::errors::{ApiError, ApiResult};
use super::service::Ctx;
use super::{account_path, wire, ACCOUNT_IFACE};
use crate::account::{Account, SettingValue};
use crate::error::{Error, Result};
use crate::store::SecretKind;

pub struct AccountObject {
    ctx: Arc<Ctx>,
    id: String,
    snapshot: RwLock<(Account, bool)>,
}

impl AccountObject {
    pub fn new(ctx: Arc<Ctx>, account: Account, has_password: bool) -> AccountObject {
        AccountObject {
            ctx,
            id: account.id.clone(),
            snapshot: RwLock::new((account, has_password)),
        }
    }

    fn snap(&self) -> (Account, bool) {
        match self.snapshot.read() {
            Ok(s) => s.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    fn a<T>(&self, f: impl FnOnce(&Account) -> T) -> T {
        f(&self.snap().0)
    }

    /// Replace the snapshot and announce what changed.
    async fn publish(&self, emitter: &SignalEmitter<'_>, account: Account, has_password: bool) {
        let (old, old_pw) = self.snap();
        let before = wire::account_props(&old, old_pw);
        let after = wire::account_props(&account, has_password);
        if let Ok(mut s) = self.snapshot.write() {
            *s = (account, has_password);
        }
        let changed = wire::changed_props(&before, after);
        if changed.is_empty() {
            return;
        }
        let changed: HashMap<&str, zbus::Variant<'_>> = changed.into_iter().collect();
        let iface = InterfaceName::from_static_str_unchecked(ACCOUNT_IFACE);
        if let Err(e) =
            Properties::properties_changed(emitter, iface, changed, std::borrow::Cow::Borrowed(&[]))
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
        let changes = wire::settings(changes);
        wire::require_nonempty(&changes, "Update")?;
        let id = self.id.clone();
        let (account, has_password) = self
            .ctx
            .blocking(move |s| {
                let a = s.update_account(&id, |cur| cur.updated(&changes))?;
                let pw = s.has_secret(&id, SecretKind::Password)?;
                Ok((a, pw))
            })
            .await?;
        self.publish(&emitter, account, has_password).await;
        self.ctx.scheduler.reload(&self.id);
        tracing::info!(account = %self.id, uid = caller.uid, "account updated");
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
        self.set_secret(SecretKind::Password, "password", password)
            .await?;
        let account = self.current().await?;
        self.publish(&emitter, account, true).await;
        self.ctx.scheduler.reload(&self.id);
        tracing::info!(account = %self.id, uid = caller.uid, "password changed");
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
        self.set_secret(SecretKind::SmtpPassword, "smtp_password", password)
            .await?;
        tracing::info!(account = %self.id, uid = caller.uid, "SMTP password changed");
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
        // Unpublish from a task: the object must not remove itself while
        // this very call still runs on it.
        let conn = conn.clone();
        let path = account_path(&self.id);
        tokio::spawn(async move {
            if let Err(e) = conn
                .object_server()
                .remove::<AccountObject, _>(path.as_str())
                .await
            {
                tracing::warn!(error = %e, path = %path, "could not unpublish a deleted account");
            }
        });
        tracing::info!(account = %self.id, uid = caller.uid, "account deleted");
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
        let secrets = crate::probe::Secrets {
            password: pw.as_ref().map(|p| p.expose()),
            smtp_password: smtp_pw.as_ref().map(|p| p.expose()),
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
        let report = self.ctx.scheduler.fetch_now(&self.id).await?;
        Ok(u32::try_from(report.new_ids.len()).unwrap_or(u32::MAX))
    }

    /// Emitted when a fetch ends; `error` is "" on success.
    #[zbus(signal)]
    pub async fn fetch_finished(
        emitter: &SignalEmitter<'_>,
        new_messages: u32,
        error: &str,
    ) -> zbus::Result<()>;

    #[zbus(property)]
    fn id(&self) -> String {
        self.id.clone()
    }
    #[zbus(property)]
    fn tenant(&self) -> String {
        self.a(|a| a.tenant.clone())
    }
    #[zbus(property)]
    fn name(&self) -> String {
        self.a(|a| a.name.clone())
    }
    #[zbus(property)]
    fn address(&self) -> String {
        self.a(|a| a.address.clone())
    }
    #[zbus(property)]
    fn kind(&self) -> String {
        self.a(|a| a.kind.as_str().to_string())
    }
    #[zbus(property)]
    fn host(&self) -> String {
        self.a(|a| a.host.clone())
    }
    #[zbus(property)]
    fn port(&self) -> u16 {
        self.a(|a| a.port)
    }
    #[zbus(property)]
    fn encryption(&self) -> String {
        self.a(|a| a.encryption.as_str().to_string())
    }
    #[zbus(property)]
    fn username(&self) -> String {
        self.a(|a| a.username.clone())
    }
    #[zbus(property)]
    fn private_owner(&self) -> String {
        self.a(|a| a.private_owner.clone())
    }
    #[zbus(property)]
    fn delete_on_server(&self) -> bool {
        self.a(|a| a.delete_on_server)
    }
    #[zbus(property)]
    fn poll_interval(&self) -> u32 {
        self.a(|a| a.poll_interval)
    }
    #[zbus(property)]
    fn smtp_host(&self) -> String {
        self.a(|a| a.smtp_host.clone())
    }
    #[zbus(property)]
    fn smtp_port(&self) -> u16 {
        self.a(|a| a.smtp_port)
    }
    #[zbus(property)]
    fn smtp_encryption(&self) -> String {
        self.a(|a| a.smtp_encryption.as_str().to_string())
    }
    #[zbus(property)]
    fn smtp_login(&self) -> bool {
        self.a(|a| a.smtp_login)
    }
    #[zbus(property)]
    fn smtp_username(&self) -> String {
        self.a(|a| a.smtp_username.clone())
    }
    #[zbus(property)]
    fn drafts_folder(&self) -> String {
        self.a(|a| a.drafts_folder.clone())
    }
    #[zbus(property)]
    fn trash_folder(&self) -> String {
        self.a(|a| a.trash_folder.clone())
    }
    #[zbus(property)]
    fn sent_folder(&self) -> String {
        self.a(|a| a.sent_folder.clone())
    }
    #[zbus(property)]
    fn save_sent_copy(&self) -> bool {
        self.a(|a| a.save_sent_copy)
    }
    #[zbus(property)]
    fn folders(&self) -> Vec<String> {
        self.a(|a| a.folders.clone())
    }
    #[zbus(property)]
    fn folders_synced_at(&self) -> u64 {
        self.a(|a| a.folders_synced_at)
    }
    #[zbus(property)]
    fn state(&self) -> String {
        self.ctx
            .scheduler
            .status(&self.id)
            .state
            .as_str()
            .to_string()
    }
    #[zbus(property)]
    fn last_error(&self) -> String {
        self.ctx.scheduler.status(&self.id).last_error
    }
    #[zbus(property)]
    fn last_fetch_at(&self) -> u64 {
        self.ctx.scheduler.status(&self.id).last_fetch_at
    }
    #[zbus(property)]
    fn progress(&self) -> (u32, u32) {
        self.ctx.scheduler.status(&self.id).progress
    }
    #[zbus(property)]
    fn has_password(&self) -> bool {
        self.snap().1
    }
    /// Office 365 sign-in state; plain accounts are authorized by password.
    #[zbus(property)]
    fn authorized(&self) -> bool {
        let (a, pw) = self.snap();
        !a.kind.is_office365() && pw
    }
    #[zbus(property)]
    fn restore_reset(&self) -> bool {
        self.a(|a| a.restore_reset)
    }
}
