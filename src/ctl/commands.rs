//! The postfachctl commands, one async function each.
//!
//! Accounts are addressed by id, the last element of their object path
//! (`/org/postfach/Postfach1/accounts/<id>`). Output goes to stdout, a
//! table or `--json`; errors come back as [`CtlError`] for `main` to print.

use std::collections::HashMap;

use zbus::names::InterfaceName;
use zbus::proxy::CacheProperties;
use zbus::{Connection, OwnedVariant, Variant};

use super::output::{self, ordered};
use super::password::{self, Secret};
use super::settings::SettingsArgs;
use super::CtlError;
use crate::dbus::proxy::{AccountProxy, ManagerProxy};
use crate::dbus::{account_id, account_path, ACCOUNT_IFACE, BUS_NAME, ROOT_PATH};

/// Properties of one account.
type Props = HashMap<String, OwnedVariant>;

/// What every command needs.
pub struct Ctl {
    pub conn: Connection,
    pub json: bool,
}

impl Ctl {
    /// Connect to the system bus, or the session bus with `--session`.
    pub async fn connect(session: bool, json: bool) -> Result<Ctl, CtlError> {
        let bus = if session { "session" } else { "system" };
        let conn = crate::dbus::proxy::connect(session).await.map_err(|e| {
            CtlError::local(
                "Connection",
                format!("cannot connect to the {bus} bus: {e}"),
            )
        })?;
        Ok(Ctl { conn, json })
    }

    pub(super) async fn account(&self, id: &str) -> Result<AccountProxy<'static>, CtlError> {
        let path = checked_path(id)?;
        Ok(AccountProxy::builder(&self.conn)
            .path(path)
            .cache_properties(CacheProperties::No)
            .build()
            .await?)
    }

    /// `account add`: CreateAccount with the given settings and passwords.
    pub async fn add(
        &self,
        settings: &SettingsArgs,
        password_stdin: bool,
        smtp_password: bool,
    ) -> Result<(), CtlError> {
        let dict = with_passwords(settings, password_stdin, smtp_password, true)?;
        let manager = ManagerProxy::new(&self.conn).await?;
        let path = manager.create_account(dict).await?;
        let id = account_id(path.as_str())
            .unwrap_or(path.as_str())
            .to_string();
        if self.json {
            println!("{}", serde_json::json!({ "id": id, "path": path.as_str() }));
        } else {
            println!("{id}");
        }
        Ok(())
    }

    /// `account list`: every account the caller may see, sorted by id.
    pub async fn list(&self) -> Result<(), CtlError> {
        let om = zbus::fdo::ObjectManagerProxy::builder(&self.conn)
            .destination(BUS_NAME)
            .path(ROOT_PATH)
            .cache_properties(CacheProperties::No)
            .build()
            .await?;
        let objects = om.get_managed_objects().await?;
        let mut accounts: Vec<Props> = objects
            .into_values()
            .filter_map(|mut ifaces| {
                let key = ifaces.keys().find(|k| k.as_str() == ACCOUNT_IFACE)?.clone();
                ifaces.remove(&key)
            })
            .collect();
        accounts.sort_by_key(|p| text(p, "Id"));
        if self.json {
            let list: Vec<_> = accounts.iter().map(output::json_object).collect();
            println!("{}", serde_json::Value::Array(list));
            return Ok(());
        }
        let rows: Vec<Vec<String>> = accounts
            .iter()
            .map(|p| {
                vec![
                    text(p, "Id"),
                    text(p, "Tenant"),
                    text(p, "Name"),
                    text(p, "Address"),
                    text(p, "Kind"),
                    format!("{}:{}", text(p, "Host"), text(p, "Port")),
                    text(p, "State"),
                ]
            })
            .collect();
        let headers = ["ID", "TENANT", "NAME", "ADDRESS", "KIND", "SERVER", "STATE"];
        print!("{}", output::table(&headers, &rows));
        Ok(())
    }

    /// `account show ID`: every property.
    pub async fn show(&self, id: &str) -> Result<(), CtlError> {
        let props = zbus::fdo::PropertiesProxy::builder(&self.conn)
            .destination(BUS_NAME)
            .path(checked_path(id)?)
            .cache_properties(CacheProperties::No)
            .build()
            .await?;
        let iface = InterfaceName::from_static_str(ACCOUNT_IFACE)?;
        let all = props
            .get_all(iface)
            .await
            .map_err(|e| not_found(id, e.into()))?;
        if self.json {
            println!("{}", output::json_object(&all));
            return Ok(());
        }
        let rows: Vec<Vec<String>> = ordered(&all)
            .into_iter()
            .map(|(k, v)| vec![format!("{k}:"), output::text(k, v)])
            .collect();
        print!("{}", output::table(&["PROPERTY", "VALUE"], &rows));
        Ok(())
    }

    /// `account set ID --key value…`: Update with only the given keys.
    pub async fn set(&self, id: &str, settings: &SettingsArgs) -> Result<(), CtlError> {
        let dict = settings.to_dict();
        if dict.is_empty() {
            return Err(CtlError::usage(
                "nothing to change: give at least one setting, e.g. --poll-interval 300",
            ));
        }
        let account = self.account(id).await?;
        account
            .update(dict)
            .await
            .map_err(|e| not_found(id, e.into()))
    }

    /// `account delete ID`.
    pub async fn delete(&self, id: &str) -> Result<(), CtlError> {
        let account = self.account(id).await?;
        account.delete().await.map_err(|e| not_found(id, e.into()))
    }

    /// `account passwd ID [--smtp]`: SetPassword or SetSmtpPassword.
    pub async fn passwd(&self, id: &str, smtp: bool, password_stdin: bool) -> Result<(), CtlError> {
        let label = if smtp {
            "New SMTP password"
        } else {
            "New password"
        };
        let secret: Secret = password::get(password_stdin, &[label], true)?
            .pop()
            .ok_or_else(|| CtlError::local("InvalidArgument", "no password given"))?;
        let account = self.account(id).await?;
        let result = if smtp {
            account.set_smtp_password(secret.expose()).await
        } else {
            account.set_password(secret.expose()).await
        };
        result.map_err(|e| not_found(id, e.into()))
    }
}

/// The settings dict plus the passwords: the incoming one unless the kind
/// signs in with OAuth2, and the SMTP one when asked for. `confirm` asks
/// twice on a terminal (for passwords that will be saved).
pub(super) fn with_passwords(
    settings: &SettingsArgs,
    password_stdin: bool,
    smtp_password: bool,
    confirm: bool,
) -> Result<HashMap<&'static str, Variant<'static>>, CtlError> {
    let mut dict = settings.to_dict();
    let mut labels = Vec::new();
    if !settings.is_office365() {
        labels.push("Password");
    }
    if smtp_password {
        labels.push("SMTP password");
    }
    let secrets = password::get(password_stdin, &labels, confirm)?;
    for (label, secret) in labels.iter().zip(&secrets) {
        let key = if *label == "Password" {
            "password"
        } else {
            "smtp_password"
        };
        dict.insert(key, Variant::from(secret.expose().to_string()));
    }
    Ok(dict)
}

/// The object path of account `id`; a malformed id is a usage error.
pub(super) fn checked_path(id: &str) -> Result<String, CtlError> {
    let path = account_path(id);
    if account_id(&path).is_none() {
        return Err(CtlError::usage(format!(
            "{id:?} is not an account id (letters and digits, see `postfachctl account list`)"
        )));
    }
    Ok(path)
}

/// A call on a path with no account object: say so in the daemon's terms.
pub(super) fn not_found(id: &str, e: CtlError) -> CtlError {
    match e.name.as_str() {
        "UnknownObject" | "UnknownInterface" => {
            CtlError::local("NotFound", format!("there is no account {id}"))
        }
        _ => e,
    }
}

fn text(p: &Props, key: &str) -> String {
    p.get(key).map(|v| output::text(key, v)).unwrap_or_default()
}
