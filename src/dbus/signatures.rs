//! `org.postfach.Postfach1.Signatures` at the root object: the tenants'
//! signatures and the employees whose data fills them (ARCHITECTURE.md "The D-Bus API").
//!
//! Who may do what (the API leaves it open; this is what a CRM's
//! "Einstellungen / E-Mail" dialog needs):
//! - admins and CRM frontends: everything, for any tenant and user — the
//!   frontend's own login decides which CRM user may open that dialog;
//! - a Unix user mapped to CRM user `me`: reads, sets, removes and
//!   previews only its own signature (`user` = `me`), and may read the
//!   general one (`user` = "") to start its own from it; it may not change
//!   the general signature nor any employee record, which are the
//!   company's master data;
//! - everyone: `Placeholders()` needs only some role;
//! - anyone else: `AccessDenied`.
//!
//! Picture work (checking an employee's pictures, rendering a preview)
//! waits for a slot of [`PICTURE_WORK`] first, so a burst of calls cannot
//! decode many large pictures at once.

use std::collections::HashMap;
use std::sync::Arc;

use zbus::message::Header;
use zbus::{interface, Connection, OwnedVariant};

use super::ctx::Ctx;
use super::errors::{ApiError, ApiResult};
use super::wire;
use crate::access::Role;
use crate::error::{Error, Result};
use crate::signature::{self, check_owner, Employee, For, Signature, PICTURE_WORK};

pub struct Signatures {
    ctx: Arc<Ctx>,
}

impl Signatures {
    pub fn new(ctx: Arc<Ctx>) -> Signatures {
        Signatures { ctx }
    }

    /// The caller's uid if it may do `op` for `user`.
    async fn allow(
        &self,
        conn: &Connection,
        hdr: &Header<'_>,
        user: &str,
        op: Op,
    ) -> ApiResult<u32> {
        let (caller, role) = self.ctx.role(conn, hdr).await?;
        // Refused by its size before it is compared or quoted.
        wire::check_len("user", user, crate::account::MAX_USER)?;
        allowed(&role, caller.uid, user, op)?;
        Ok(caller.uid)
    }
}

/// What a call does with the signature of `user`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Read,
    Change,
    Preview,
    Employee,
}

/// The rules of the module docs.
fn allowed(role: &Role, uid: u32, user: &str, op: Op) -> Result<()> {
    let me = match role {
        Role::Admin | Role::Frontend => return Ok(()),
        Role::User(me) => me,
    };
    let denied = |what: &str| {
        Err(Error::AccessDenied(format!(
            "uid {uid} acts as CRM user {me:?} only and may not {what}"
        )))
    };
    match op {
        Op::Employee => denied("change employee records (admins and CRM frontends do)"),
        _ if user == me => Ok(()),
        Op::Read if user.is_empty() => Ok(()),
        Op::Change if user.is_empty() => {
            denied("change the general signature (admins and CRM frontends do)")
        }
        _ => denied(&format!("use the signature of {user:?}")),
    }
}

#[interface(name = "org.postfach.Postfach1.Signatures")]
impl Signatures {
    /// Set the signature of `user` ("" = the tenant's general one). Both
    /// parts are parsed now: an unknown or unclosed placeholder is
    /// InvalidArgument naming `text` or `html`, with line and column.
    async fn set_signature(
        &self,
        tenant: &str,
        user: &str,
        text: &str,
        html: &str,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<(), ApiError> {
        let uid = self.allow(conn, &hdr, user, Op::Change).await?;
        check_owner(tenant, user, true)?;
        let sig = Signature::new(text, html)?;
        let (t, u) = (tenant.to_string(), user.to_string());
        self.ctx
            .blocking(move |s| s.set_signature(&t, &u, &sig))
            .await?;
        tracing::info!(tenant, user, uid, "signature set");
        Ok(())
    }

    /// The signature of exactly `user` ("" = general): (text, html);
    /// NotFound when there is none (the general one is not substituted).
    #[zbus(out_args("text", "html"))]
    async fn get_signature(
        &self,
        tenant: &str,
        user: &str,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<(String, String), ApiError> {
        self.allow(conn, &hdr, user, Op::Read).await?;
        check_owner(tenant, user, true)?;
        let (t, u) = (tenant.to_string(), user.to_string());
        let sig = self
            .ctx
            .blocking(move |s| s.existing_signature(&t, &u))
            .await?;
        Ok((sig.text, sig.html))
    }

    /// Remove the signature of `user` ("" = general); NotFound when there
    /// is none.
    async fn remove_signature(
        &self,
        tenant: &str,
        user: &str,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<(), ApiError> {
        let uid = self.allow(conn, &hdr, user, Op::Change).await?;
        check_owner(tenant, user, true)?;
        let (t, u) = (tenant.to_string(), user.to_string());
        self.ctx
            .blocking(move |s| s.remove_signature(&t, &u))
            .await?;
        tracing::info!(tenant, user, uid, "signature removed");
        Ok(())
    }

    /// Link an employee to `user`, replacing its fields and pictures.
    /// `fields` are keyed by placeholder name without the @ (`Vorname`);
    /// `images` are (mime type, bytes), PNG, JPEG or GIF, in order.
    async fn set_employee(
        &self,
        tenant: &str,
        user: &str,
        fields: HashMap<String, OwnedVariant>,
        images: Vec<(String, Vec<u8>)>,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<(), ApiError> {
        let uid = self.allow(conn, &hdr, user, Op::Employee).await?;
        check_owner(tenant, user, false)?;
        let fields = wire::values("fields", fields, signature::Field::ALL.len())?;
        let (t, u) = (tenant.to_string(), user.to_string());
        let _slot = picture_slot().await?;
        self.ctx
            .blocking(move |s| s.set_employee(&t, &u, &Employee::new(&fields, images)?))
            .await?;
        tracing::info!(tenant, user, uid, "employee set");
        Ok(())
    }

    /// Unlink the employee of `user`; NotFound when there is none.
    async fn remove_employee(
        &self,
        tenant: &str,
        user: &str,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<(), ApiError> {
        let uid = self.allow(conn, &hdr, user, Op::Employee).await?;
        check_owner(tenant, user, false)?;
        let (t, u) = (tenant.to_string(), user.to_string());
        self.ctx
            .blocking(move |s| s.remove_employee(&t, &u))
            .await?;
        tracing::info!(tenant, user, uid, "employee removed");
        Ok(())
    }

    /// Every placeholder a signature may use, with its @ signs.
    async fn placeholders(
        &self,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<Vec<String>, ApiError> {
        self.ctx.role(conn, &hdr).await?;
        Ok(signature::placeholders())
    }

    /// The signature `user`'s mail gets, filled with its employee's data:
    /// (html with pictures as data: URIs, text, source `user` or
    /// `general`). NotFound when there is no signature, no linked employee
    /// (and the signature has placeholders) or no such picture.
    #[zbus(out_args("html", "text", "source"))]
    async fn preview_signature(
        &self,
        tenant: &str,
        user: &str,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<(String, String, String), ApiError> {
        self.allow(conn, &hdr, user, Op::Preview).await?;
        check_owner(tenant, user, false)?;
        let (t, u) = (tenant.to_string(), user.to_string());
        let _slot = picture_slot().await?;
        let p = self
            .ctx
            .blocking(move |s| {
                let (chosen, employee) = s.signature_for(&t, &u)?;
                let chosen = chosen.ok_or_else(|| {
                    Error::NotFound(format!(
                        "CRM user {u:?} has no signature in tenant {t:?}: neither its own nor \
                         a general one"
                    ))
                })?;
                let who = For {
                    tenant: &t,
                    user: &u,
                };
                signature::preview(&chosen, employee.as_ref(), who)
            })
            .await?;
        Ok((p.html, p.text, p.source.as_str().to_string()))
    }
}

/// A slot of [`PICTURE_WORK`], held until dropped.
async fn picture_slot() -> Result<tokio::sync::SemaphorePermit<'static>> {
    PICTURE_WORK
        .acquire()
        .await
        .map_err(|e| Error::storage("picture work queue closed", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mapped_user_edits_and_previews_only_its_own_signature() {
        let me = Role::User("mm".into());
        let ok = |role: &Role, user: &str, op: Op| allowed(role, 1001, user, op).is_ok();
        for op in [Op::Read, Op::Change, Op::Preview] {
            assert!(ok(&me, "mm", op), "{op:?}");
            assert!(!ok(&me, "ab", op), "{op:?}");
        }
        assert!(ok(&me, "", Op::Read), "the general one may be read");
        assert!(!ok(&me, "", Op::Change));
        assert!(!ok(&me, "mm", Op::Employee));
        assert!(!ok(&me, "ab", Op::Employee));
        for role in [Role::Admin, Role::Frontend] {
            for op in [Op::Read, Op::Change, Op::Preview, Op::Employee] {
                assert!(ok(&role, "", op) && ok(&role, "ab", op), "{role:?} {op:?}");
            }
        }
        let e = allowed(&me, 1001, "", Op::Change).unwrap_err();
        assert_eq!(
            e.to_string(),
            "uid 1001 acts as CRM user \"mm\" only and may not change the general signature \
             (admins and CRM frontends do)"
        );
    }
}
