//! `org.postfach.Postfach1.Manager` at the root object: creating accounts,
//! testing unsaved settings, and the daemon's identity.

use std::collections::HashMap;
use std::sync::Arc;

use zbus::message::Header;
use zbus::object_server::{ObjectServer, SignalEmitter};
use zbus::{interface, Connection, OwnedObjectPath, OwnedVariant};

use super::account_iface::AccountIface;
use super::ctx::Ctx;
use super::errors::ApiError;
use super::registry::Snapshot;
use super::{account_path, wire};
use crate::account::Account;
use crate::error::{Error, Result};
use crate::store::SecretKind;

pub struct Manager {
    ctx: Arc<Ctx>,
    /// One restore at a time.
    restoring: tokio::sync::Mutex<()>,
}

impl Manager {
    pub fn new(ctx: Arc<Ctx>) -> Manager {
        Manager {
            ctx,
            restoring: tokio::sync::Mutex::new(()),
        }
    }
}

#[interface(name = "org.postfach.Postfach1.Manager")]
impl Manager {
    /// Validate the settings, store the account and its secrets in one
    /// transaction, publish its object and start its task. Admins only.
    async fn create_account(
        &self,
        settings: HashMap<String, OwnedVariant>,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        #[zbus(object_server)] server: &ObjectServer,
    ) -> Result<OwnedObjectPath, ApiError> {
        let caller = self.ctx.admin(conn, &hdr).await?;
        let settings = wire::settings(settings)?;
        // Validated inside the store's transaction: a bad call aborts it, so
        // it allocates no id and writes nothing.
        let account = self
            .ctx
            .blocking(move |s| s.create_account(|id| Account::create(id, &settings)))
            .await?;
        let id = account.id.clone();
        let has_password = self
            .ctx
            .blocking({
                let id = id.clone();
                move |s| s.has_secret(&id, SecretKind::Password)
            })
            .await?;
        let path = account_path(&id);
        // Published before it is served: zbus reads the new object's
        // properties for InterfacesAdded while adding it.
        self.ctx.accounts.put(Snapshot {
            account: account.clone(),
            has_password,
        });
        server
            .at(
                path.as_str(),
                AccountIface::new(self.ctx.clone(), id.clone()),
            )
            .await
            .map_err(ApiError::ZBus)?;
        self.ctx.scheduler.reload(&id);
        tracing::info!(account_id = %id, kind = account.kind.as_str(), host = %account.host, uid = caller.uid, "account created");
        OwnedObjectPath::try_from(path).map_err(|e| {
            Error::storage_msg(format!("account id is not a path element: {e}")).into()
        })
    }

    /// Test unsaved settings step by step; nothing is saved. The password
    /// comes with the settings (`password`, `smtp_password`).
    async fn test_settings(
        &self,
        settings: HashMap<String, OwnedVariant>,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<Vec<wire::Dict>, ApiError> {
        self.ctx.admin(conn, &hdr).await?;
        let settings = wire::settings(settings)?;
        let (account, secrets) = Account::create("test".into(), &settings)?;
        let unsaved = Error::NeedsAuthorization(crate::probe::NOT_CONNECTED.into());
        let probe_secrets = crate::probe::Secrets {
            password: secrets.password.as_deref(),
            smtp_password: secrets.smtp_password.as_deref(),
            token: Err(&unsaved),
        };
        let steps = crate::probe::test(
            &account,
            &probe_secrets,
            &self.ctx.tls()?,
            &self.ctx.timeouts,
        )
        .await;
        Ok(steps.iter().map(wire::step_dict).collect())
    }

    /// Write a backup of the store and its big-mail files into `fd`
    /// (`crate::backup`): a snapshot of one moment while fetching goes on,
    /// holding no secret unless the option `passphrase` is given (then
    /// every password and token travels sealed under a key derived from
    /// it, `crate::store::BackupKey`). Admins only.
    async fn backup(
        &self,
        fd: zbus::OwnedFd,
        options: HashMap<String, OwnedVariant>,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<(), ApiError> {
        let caller = self.ctx.admin(conn, &hdr).await?;
        let passphrase = super::restoring::check_options(&options)?;
        let fd = std::os::fd::OwnedFd::from(fd);
        let written = self
            .ctx
            .blocking(move |s| {
                crate::backup::snapshot::write(
                    s,
                    &mut std::fs::File::from(fd),
                    passphrase.as_deref(),
                )
            })
            .await?;
        tracing::info!(
            uid = caller.uid,
            messages = written.messages,
            blobs = written.blobs,
            "backup written"
        );
        Ok(())
    }

    /// Replace the store and its big-mail files by a backup read from `fd`
    /// (`super::restoring`): verified whole before anything changes,
    /// installed crash-safely, with the restore safety reset applied.
    /// Admins only; one restore at a time.
    async fn restore(
        &self,
        fd: zbus::OwnedFd,
        options: HashMap<String, OwnedVariant>,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        #[zbus(object_server)] server: &ObjectServer,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> Result<wire::Dict, ApiError> {
        let caller = self.ctx.admin(conn, &hdr).await?;
        let passphrase = super::restoring::check_options(&options)?;
        let Ok(_one) = self.restoring.try_lock() else {
            return Err(Error::Busy("a restore is already running".into()).into());
        };
        let fd = std::os::fd::OwnedFd::from(fd);
        let done = super::restoring::restore(&self.ctx, server, fd, passphrase).await?;
        // The restored store carries its origin's installation id.
        let _ = self.installation_id_changed(&emitter).await;
        tracing::info!(
            uid = caller.uid,
            accounts = done.accounts.len(),
            reset = done.reset.accounts.len(),
            held = done.reset.held,
            message_count = done.messages,
            secrets = done.secrets,
            "backup restored"
        );
        Ok(super::restoring::report(&done))
    }

    /// The installation at a glance (`postfachctl status`): `version`,
    /// `installation_id`, `accounts` and `outbox` counted by state,
    /// `store_bytes` on disk (keys in `super::status`). Admins only: the
    /// figures span every tenant.
    async fn status(
        &self,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<wire::Dict, ApiError> {
        self.ctx.admin(conn, &hdr).await?;
        super::status::status(&self.ctx).await
    }

    /// The daemon's version.
    #[zbus(property)]
    fn version(&self) -> String {
        env!("CARGO_PKG_VERSION").to_string()
    }

    /// A random id made at the store's first start; a store copied to
    /// another installation keeps it, which is how a copy is recognized.
    #[zbus(property)]
    fn installation_id(&self) -> String {
        self.ctx.store.installation_id().to_string()
    }
}
