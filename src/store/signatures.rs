//! Signatures and employees per tenant (schema 5).
//!
//! A signature is one JSON row per (tenant, user), user "" being the
//! tenant's general one. An employee is a JSON row of its fields and
//! picture types plus one row per picture file, so that reading the fields
//! never parses megabytes of JSON; `set_employee` replaces the pictures in
//! the same transaction, so a reader never sees a mix of old and new ones.
//! Values arrive checked ([`Signature::new`], [`Employee::new`]); the keys
//! are checked here again, since this is the last door before the disk.

use std::collections::BTreeMap;

use redb::{ReadTransaction, WriteTransaction};
use serde::{Deserialize, Serialize};

use super::schema::{EMPLOYEES, EMPLOYEE_IMAGES, SIGNATURES};
use super::Store;
use crate::error::{Context, Error, Result};
use crate::signature::{check_owner, Chosen, Employee, Image, Signature, Source};

/// An employee row without its pictures' bytes.
#[derive(Serialize, Deserialize)]
struct EmployeeRow {
    fields: BTreeMap<String, String>,
    /// Mime type of picture 0, 1, … (bytes in [`EMPLOYEE_IMAGES`]).
    images: Vec<String>,
}

fn no_signature(tenant: &str, user: &str) -> Error {
    Error::NotFound(if user.is_empty() {
        format!("tenant {tenant:?} has no general signature")
    } else {
        format!("CRM user {user:?} has no signature of its own in tenant {tenant:?}")
    })
}

fn no_employee(tenant: &str, user: &str) -> Error {
    Error::NotFound(format!(
        "no employee is linked to CRM user {user:?} in tenant {tenant:?}"
    ))
}

impl Store {
    /// Store the signature of `user` ("" = general), replacing any.
    pub fn set_signature(&self, tenant: &str, user: &str, sig: &Signature) -> Result<()> {
        self.call("store a signature", || {
            check_owner(tenant, user, true)?;
            let json = serde_json::to_vec(sig).context("encode signature")?;
            let tx = self.write()?;
            tx.open_table(SIGNATURES)
                .context("open signatures")?
                .insert((tenant, user), json.as_slice())
                .context("write signature")?;
            tx.commit().context("commit signature")
        })
    }

    /// Exactly the signature of `user` ("" = general), if there is one.
    pub fn signature(&self, tenant: &str, user: &str) -> Result<Option<Signature>> {
        self.call("read a signature", || {
            check_owner(tenant, user, true)?;
            signature_in(&*self.read()?, tenant, user)
        })
    }

    /// Like [`Store::signature`], NotFound when there is none.
    pub fn existing_signature(&self, tenant: &str, user: &str) -> Result<Signature> {
        self.signature(tenant, user)?
            .ok_or_else(|| no_signature(tenant, user))
    }

    /// Remove the signature of `user`; NotFound when there is none.
    pub fn remove_signature(&self, tenant: &str, user: &str) -> Result<()> {
        self.call("remove a signature", || {
            check_owner(tenant, user, true)?;
            let tx = self.write()?;
            let removed = tx
                .open_table(SIGNATURES)
                .context("open signatures")?
                .remove((tenant, user))
                .context("remove signature")?
                .is_some();
            if !removed {
                return Err(no_signature(tenant, user));
            }
            tx.commit().context("commit signature removal")
        })
    }

    /// Link `employee` to `user`, replacing fields and pictures.
    pub fn set_employee(&self, tenant: &str, user: &str, employee: &Employee) -> Result<()> {
        self.call("store an employee", || {
            check_owner(tenant, user, false)?;
            let row = EmployeeRow {
                fields: employee.fields().clone(),
                images: employee.images().iter().map(|i| i.mime.clone()).collect(),
            };
            let json = serde_json::to_vec(&row).context("encode employee")?;
            let tx = self.write()?;
            remove_employee_in(&tx, tenant, user)?;
            tx.open_table(EMPLOYEES)
                .context("open employees")?
                .insert((tenant, user), json.as_slice())
                .context("write employee")?;
            {
                let mut images = tx.open_table(EMPLOYEE_IMAGES).context("open pictures")?;
                for (i, img) in (0u32..).zip(employee.images()) {
                    images
                        .insert((tenant, user, i), img.bytes.as_slice())
                        .context("write picture")?;
                }
            }
            tx.commit().context("commit employee")
        })
    }

    /// The employee linked to `user`, with its pictures.
    pub fn employee(&self, tenant: &str, user: &str) -> Result<Option<Employee>> {
        self.call("read an employee", || {
            check_owner(tenant, user, false)?;
            employee_in(&*self.read()?, tenant, user)
        })
    }

    /// Unlink the employee of `user`; NotFound when there is none.
    pub fn remove_employee(&self, tenant: &str, user: &str) -> Result<()> {
        self.call("remove an employee", || {
            check_owner(tenant, user, false)?;
            let tx = self.write()?;
            if !remove_employee_in(&tx, tenant, user)? {
                return Err(no_employee(tenant, user));
            }
            tx.commit().context("commit employee removal")
        })
    }

    /// What a mail of `user` is signed with: the user's own signature, else
    /// the general one (None: neither exists), and the linked employee.
    pub fn signature_for(
        &self,
        tenant: &str,
        user: &str,
    ) -> Result<(Option<Chosen>, Option<Employee>)> {
        self.call("choose a signature", || {
            check_owner(tenant, user, false)?;
            // One snapshot: a concurrent SetSignature is seen whole or not at all.
            let tx = self.read()?;
            let chosen = match signature_in(&tx, tenant, user)? {
                Some(signature) => Some(Chosen {
                    signature,
                    source: Source::User,
                }),
                None => signature_in(&tx, tenant, "")?.map(|signature| Chosen {
                    signature,
                    source: Source::General,
                }),
            };
            Ok((chosen, employee_in(&tx, tenant, user)?))
        })
    }
}

fn signature_in(tx: &ReadTransaction, tenant: &str, user: &str) -> Result<Option<Signature>> {
    let t = tx.open_table(SIGNATURES).context("open signatures")?;
    let row = t.get((tenant, user)).context("read signature")?;
    row.map(|g| serde_json::from_slice(g.value()).context("stored signature is unreadable"))
        .transpose()
}

fn employee_in(tx: &ReadTransaction, tenant: &str, user: &str) -> Result<Option<Employee>> {
    let t = tx.open_table(EMPLOYEES).context("open employees")?;
    let Some(row) = t.get((tenant, user)).context("read employee")? else {
        return Ok(None);
    };
    let row: EmployeeRow =
        serde_json::from_slice(row.value()).context("stored employee is unreadable")?;
    let pictures = tx.open_table(EMPLOYEE_IMAGES).context("open pictures")?;
    let mut images = Vec::with_capacity(row.images.len());
    for (i, mime) in (0u32..).zip(row.images) {
        let bytes = pictures
            .get((tenant, user, i))
            .context("read picture")?
            .ok_or_else(|| {
                Error::storage_msg(format!(
                    "picture {i} of the employee of {user:?} in tenant {tenant:?} is missing"
                ))
            })?
            .value()
            .to_vec();
        images.push(Image { mime, bytes });
    }
    Ok(Some(Employee::from_stored(row.fields, images)))
}

/// Delete the employee row and its pictures; whether there was a row.
fn remove_employee_in(tx: &WriteTransaction, tenant: &str, user: &str) -> Result<bool> {
    let existed = tx
        .open_table(EMPLOYEES)
        .context("open employees")?
        .remove((tenant, user))
        .context("remove employee")?
        .is_some();
    let mut images = tx.open_table(EMPLOYEE_IMAGES).context("open pictures")?;
    images
        .retain_in((tenant, user, 0)..=(tenant, user, u32::MAX), |_, _| false)
        .context("remove pictures")?;
    Ok(existed)
}

#[cfg(test)]
mod tests;
