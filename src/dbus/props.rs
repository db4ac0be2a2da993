//! The one table of the `org.postfach.Postfach1.Account` properties.
//!
//! Everything about a property is here, once: its name, its D-Bus type,
//! where its value comes from, and what a signal may say about it. `Get`,
//! `GetAll`, `GetManagedObjects`, the introspection XML, `InterfacesAdded`
//! and every `PropertiesChanged` are made from this table, so a property
//! cannot be served but forgotten in a signal (as `Authorized` once was).
//!
//! Signals reach every listener on the system bus, while reading is
//! checked per caller (ARCHITECTURE.md "The D-Bus API"). So a signal carries the values of
//! the [`Signal::Value`] properties only — the opaque `Id` and the runtime
//! `State`, `LastFetchAt` and `Progress`, which say that an account is
//! busy but nothing about whose it is or where it fetches from. Every
//! other property (settings, `LastError` with its server text) is named in
//! `invalidated_properties` without a value; a client that may read it
//! asks with `Get` (D-Bus specification, `PropertiesChanged`; the
//! introspection marks these `EmitsChangedSignal=invalidates`).

use std::collections::HashMap;
use std::fmt::Write;

use zbus::Variant;

use crate::account::Account;
use crate::scheduler::Status;

/// What one property is read from.
pub struct View<'a> {
    pub account: &'a Account,
    pub has_password: bool,
    pub status: &'a Status,
}

/// What a signal may carry of a property.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// Its value: public.
    Value,
    /// Its name only.
    Invalidate,
}

/// One property of the Account interface.
pub struct Prop {
    pub name: &'static str,
    /// The D-Bus type signature of its value.
    pub signature: &'static str,
    pub signal: Signal,
    value: fn(&View<'_>) -> Variant<'static>,
}

impl Prop {
    pub fn value(&self, v: &View<'_>) -> Variant<'static> {
        (self.value)(v)
    }
}

const fn prop(
    name: &'static str,
    signature: &'static str,
    signal: Signal,
    value: fn(&View<'_>) -> Variant<'static>,
) -> Prop {
    Prop {
        name,
        signature,
        signal,
        value,
    }
}

use Signal::{Invalidate as I, Value as V};

/// Every property, sorted by name (the order of the introspection XML).
pub static PROPS: &[Prop] = &[
    prop("Address", "s", I, |v| v.account.address.clone().into()),
    prop("Authorized", "b", I, |v| {
        // Office 365: whether the task holds tokens (Connect); plain
        // accounts are authorized by their password.
        if v.account.kind.is_office365() {
            v.status.authorized.into()
        } else {
            v.has_password.into()
        }
    }),
    prop("DeleteOnServer", "b", I, |v| {
        v.account.delete_on_server.into()
    }),
    prop("DraftsFolder", "s", I, |v| {
        v.account.drafts_folder.clone().into()
    }),
    prop("Encryption", "s", I, |v| {
        v.account.encryption.as_str().to_string().into()
    }),
    prop("Folders", "as", I, |v| v.account.folders.clone().into()),
    prop("FoldersSyncedAt", "t", I, |v| {
        v.account.folders_synced_at.into()
    }),
    prop("HasPassword", "b", I, |v| v.has_password.into()),
    prop("Host", "s", I, |v| v.account.host.clone().into()),
    prop("Id", "s", V, |v| v.account.id.clone().into()),
    prop("Kind", "s", I, |v| {
        v.account.kind.as_str().to_string().into()
    }),
    prop("LastError", "s", I, |v| {
        crate::redact::cap(&v.status.last_error).into()
    }),
    prop("LastFetchAt", "t", V, |v| v.status.last_fetch_at.into()),
    prop("Name", "s", I, |v| v.account.name.clone().into()),
    prop("PollInterval", "u", I, |v| v.account.poll_interval.into()),
    prop("Port", "q", I, |v| v.account.port.into()),
    prop("PrivateOwner", "s", I, |v| {
        v.account.private_owner.clone().into()
    }),
    prop("Progress", "(uu)", V, |v| {
        Variant::from((v.status.progress.0, v.status.progress.1))
    }),
    prop("RestoreReset", "b", I, |v| v.account.restore_reset.into()),
    prop("SaveSentCopy", "b", I, |v| v.account.save_sent_copy.into()),
    prop("SentFolder", "s", I, |v| {
        v.account.sent_folder.clone().into()
    }),
    prop("SmtpEncryption", "s", I, |v| {
        v.account.smtp_encryption.as_str().to_string().into()
    }),
    prop("SmtpHost", "s", I, |v| v.account.smtp_host.clone().into()),
    prop("SmtpLogin", "b", I, |v| v.account.smtp_login.into()),
    prop("SmtpPort", "q", I, |v| v.account.smtp_port.into()),
    prop("SmtpUsername", "s", I, |v| {
        v.account.smtp_username.clone().into()
    }),
    prop("State", "s", V, |v| {
        v.status.state.as_str().to_string().into()
    }),
    prop("Tenant", "s", I, |v| v.account.tenant.clone().into()),
    prop("TrashFolder", "s", I, |v| {
        v.account.trash_folder.clone().into()
    }),
    prop("Username", "s", I, |v| v.account.username.clone().into()),
];

/// The property called `name`.
pub fn find(name: &str) -> Option<&'static Prop> {
    PROPS.iter().find(|p| p.name == name)
}

/// Every property's value, or (`public_only`) those a signal may carry.
pub fn all(v: &View<'_>, public_only: bool) -> HashMap<String, Variant<'static>> {
    PROPS
        .iter()
        .filter(|p| !public_only || p.signal == Signal::Value)
        .map(|p| (p.name.to_string(), p.value(v)))
        .collect()
}

/// What a `PropertiesChanged` says about a change from `old` to `new`:
/// the public properties that changed with their values, the others by
/// name.
pub struct Changes {
    pub values: HashMap<&'static str, Variant<'static>>,
    pub invalidated: Vec<&'static str>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.values.is_empty() && self.invalidated.is_empty()
    }
}

/// The properties read from the scheduler's status board; the others
/// come from the account's settings (`Authorized` from both).
pub const STATUS: [&str; 5] = [
    "Authorized",
    "LastError",
    "LastFetchAt",
    "Progress",
    "State",
];

/// Every property whose value differs between `old` and `new`.
pub fn changes(old: &View<'_>, new: &View<'_>) -> Changes {
    changes_among(old, new, |_| true)
}

/// [`changes`] when only the status changed (the pump's hot path: a round
/// over 1,000 accounts announces each one's status).
pub fn status_changes(old: &View<'_>, new: &View<'_>) -> Changes {
    changes_among(old, new, |p| STATUS.contains(&p.name))
}

fn changes_among(old: &View<'_>, new: &View<'_>, among: impl Fn(&Prop) -> bool) -> Changes {
    let mut c = Changes {
        values: HashMap::new(),
        invalidated: Vec::new(),
    };
    for p in PROPS.iter().filter(|p| among(p)) {
        let after = p.value(new);
        if p.value(old) == after {
            continue;
        }
        match p.signal {
            Signal::Value => {
                c.values.insert(p.name, after);
            }
            Signal::Invalidate => c.invalidated.push(p.name),
        }
    }
    c
}

/// The `<property>` elements of the introspection XML, `level` spaces in
/// (the layout zbus uses for the rest of the interface).
pub fn introspect(out: &mut dyn Write, level: usize) -> std::fmt::Result {
    for p in PROPS {
        let head = format!(
            "{:level$}<property name=\"{}\" type=\"{}\" access=\"read\"",
            "", p.name, p.signature
        );
        match p.signal {
            Signal::Value => writeln!(out, "{head}/>")?,
            Signal::Invalidate => {
                writeln!(out, "{head}>")?;
                writeln!(
                    out,
                    "{:indent$}<annotation name=\"org.freedesktop.DBus.Property.EmitsChangedSignal\" value=\"invalidates\"/>",
                    "",
                    indent = level + 2
                )?;
                writeln!(out, "{:level$}</property>", "")?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
