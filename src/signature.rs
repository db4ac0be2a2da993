//! Signatures [Signatur] per tenant: templates, placeholders and the
//! employee's pictures (ARCHITECTURE.md "What it does" "Signatures").
//!
//! A tenant has a general signature (user "") [Allgemein] and per-user
//! ones; a user's own signature wins over the general one. Each has a
//! plain-text and an HTML part. Placeholders are filled from the employee
//! [Mitarbeiter] linked to the user shorthand ([`Employee`]); in the HTML
//! part the employee's values are HTML-escaped, the template itself is
//! markup and stays as written. The text part leaves pictures out (after
//! an `@`, a picture leaves a space, so that no placeholder forms).
//!
//! # Grammar
//!
//! ```text
//! placeholder = "@" name [ "(" args ")" ] "@"
//! name        = a letter, then letters or digits (Unicode; case-sensitive)
//! args        = number "," number "," number   (spaces allowed around each)
//! ```
//!
//! - `@Name@`, `@Vorname@`, `@Nachname@`, `@Titel@`, `@Position@`,
//!   `@Abteilung@`, `@Telefon@`, `@Mobil@`, `@Fax@`, `@EMail@`,
//!   `@Kuerzel@`: the employee's field. Unset fields are empty, except
//!   `@Name@` ("Titel Vorname Nachname") and `@Kuerzel@` (the user
//!   shorthand).
//! - `@Bild(i,w,h)@`: image i (from 0) scaled to exactly w×h pixels
//!   (1 to [`limits::MAX_SIDE`] each); `@Bild@`: image 0 at its original
//!   size. In HTML either becomes a whole element,
//!   `<img src="…" width="w" height="h" alt="">`, so it belongs where an
//!   element may stand, not inside an attribute.
//! - Any other `@` is text: `info@example.com`, `@media screen`, `@`
//!   alone. An `@` starts a placeholder only when a name follows that is
//!   closed by `@` (or by `(…)@` within a few characters).
//! - Errors, with line and column: a closed name that is not a placeholder
//!   (`@Vornmae@`, `@email@`: "did you mean @EMail@?"), a placeholder name
//!   that is not closed (`@Vorname ` — it would go out raw), arguments that
//!   are not three numbers, a size out of range, more than
//!   [`limits::MAX_IMAGE_PLACEHOLDERS`] pictures. There is no escape for a
//!   literal `@Vorname@`; no signature needs one.
//!
//! `SetSignature` parses both parts and refuses a broken template, so a
//! syntax error reaches the admin who wrote it; what depends on the user —
//! a missing employee, a missing image — is an error of the preview and,
//! later, of sending, which refuses the mail rather than send raw
//! placeholders. A signature without placeholders needs no employee.

mod employee;
pub mod limits;
mod picture;
mod render;
mod template;

pub use employee::{Employee, Image};
pub use picture::Kind as PictureKind;
pub use render::{for_mail, preview, For, ForMail, InlinePart, Preview};
pub use template::{Field, TemplateError};

use rand::RngCore;

use crate::error::{Error, Result};
use limits::{MAX_HTML, MAX_TENANT, MAX_TEXT};

/// How many signature renders or picture checks run at once. Each may
/// decode a picture of up to 64 MiB (limits::MAX_DECODE_ALLOC); a burst of
/// previews waits here instead of multiplying that. Two: the machine's
/// cores are better spent on fetching than on more parallel scaling.
pub static PICTURE_WORK: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// A checked signature: both parts parse and are within their bounds.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Signature {
    pub text: String,
    pub html: String,
}

impl Signature {
    /// Check `SetSignature`'s `text` and `html`. Both may be empty: an
    /// empty own signature means "no signature for me", and still wins
    /// over the general one.
    pub fn new(text: &str, html: &str) -> Result<Signature> {
        for (key, value, max) in [("text", text, MAX_TEXT), ("html", html, MAX_HTML)] {
            if value.len() > max {
                return Err(Error::invalid(
                    key,
                    format!("too long: {} bytes, at most {max}", value.len()),
                ));
            }
            if value.contains(|c: char| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) {
                return Err(Error::invalid(
                    key,
                    "contains control characters other than line breaks and tabs",
                ));
            }
            template::parse(value).map_err(|e| Error::invalid(key, e))?;
        }
        Ok(Signature {
            text: text.to_string(),
            html: html.to_string(),
        })
    }
}

/// Which signature a user gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The user's own.
    User,
    /// The tenant's general one (the user has none).
    General,
}

impl Source {
    /// As `PreviewSignature` reports it.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::User => "user",
            Source::General => "general",
        }
    }
}

/// The signature a user's mail gets, and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chosen {
    pub signature: Signature,
    pub source: Source,
}

/// Every placeholder, as `Placeholders()` lists it (with its @ signs, so a
/// frontend can insert it as it is).
pub fn placeholders() -> Vec<String> {
    let mut out: Vec<String> = Field::ALL
        .iter()
        .map(|f| format!("@{}@", f.as_str()))
        .collect();
    out.push(format!("@{}(i,w,h)@", template::BILD));
    out.push(format!("@{}@", template::BILD));
    out
}

/// Check a tenant name and a user shorthand ("" = general where allowed).
pub fn check_owner(tenant: &str, user: &str, general_allowed: bool) -> Result<()> {
    if tenant.trim().is_empty() {
        return Err(Error::invalid("tenant", "empty"));
    }
    if tenant.len() > MAX_TENANT || tenant.chars().any(char::is_control) {
        return Err(Error::invalid(
            "tenant",
            format!("not a tenant name (at most {MAX_TENANT} bytes, no control characters)"),
        ));
    }
    crate::account::check_user("user", user)?;
    if user.is_empty() && !general_allowed {
        return Err(Error::invalid(
            "user",
            "empty; name the CRM user whose employee data fills the placeholders",
        ));
    }
    Ok(())
}

/// A random token for the Content-IDs of one mail's signature pictures.
pub fn new_cid_token() -> Result<String> {
    let mut raw = [0u8; 12];
    rand::rngs::OsRng
        .try_fill_bytes(&mut raw)
        .map_err(|e| Error::storage("no randomness for a Content-ID", e))?;
    Ok(crate::hex::lower(&raw))
}

/// `&`, `<`, `>`, `"` and `'` as entities: safe in element content and in
/// quoted attribute values alike.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_signature_checks_both_parts_and_names_them() {
        let s = Signature::new("Gruß\n\t@Vorname@", "<b>@Name@</b> info@firma.de").unwrap();
        assert_eq!(s.text, "Gruß\n\t@Vorname@");
        assert!(
            Signature::new("", "").is_ok(),
            "an empty signature is allowed"
        );
        let e = Signature::new("ok", "<p>@Vornmae@</p>").unwrap_err();
        assert_eq!(
            e.to_string(),
            "html: line 1, column 4: unknown placeholder @Vornmae@ (Placeholders() lists the known ones)"
        );
        let e = Signature::new("a\u{7}b", "").unwrap_err();
        assert!(e.to_string().starts_with("text: contains control"), "{e}");
        let e = Signature::new(&"x".repeat(MAX_TEXT + 1), "").unwrap_err();
        assert_eq!(e.to_string(), "text: too long: 16385 bytes, at most 16384");
        let e = Signature::new("", &"x".repeat(MAX_HTML + 1)).unwrap_err();
        assert!(e.to_string().starts_with("html: too long"), "{e}");
        let e = Signature::new("", "@Bild(0,100000,100000)@").unwrap_err();
        assert!(
            e.to_string().contains("width 100000 is out of range"),
            "{e}"
        );
    }

    #[test]
    fn owner_checks() {
        assert!(check_owner("t1", "", true).is_ok());
        assert!(check_owner("t1", "mm", false).is_ok());
        let msg = |e: Error| e.to_string();
        assert!(msg(check_owner("t1", "", false).unwrap_err()).starts_with("user: empty"));
        assert!(msg(check_owner(" ", "mm", true).unwrap_err()).starts_with("tenant: empty"));
        assert!(
            msg(check_owner("a\nb", "mm", true).unwrap_err()).starts_with("tenant: not a tenant")
        );
        assert!(msg(check_owner("t", "a b", true).unwrap_err()).starts_with("user: "));
    }

    #[test]
    fn placeholders_list_every_field_and_both_pictures() {
        let p = placeholders();
        assert_eq!(p.len(), 13);
        assert_eq!(p[0], "@Name@");
        assert!(p.contains(&"@Kuerzel@".to_string()));
        assert_eq!(&p[11..], ["@Bild(i,w,h)@", "@Bild@"]);
        // Every listed placeholder parses.
        let all = p.join(" ").replace("(i,w,h)", "(0,1,1)");
        assert!(Signature::new(&all, &all).is_ok());
    }

    #[test]
    fn escaping_covers_text_and_attributes() {
        assert_eq!(
            escape_html("<a href=\"x\">Tom & Jerry's</a>"),
            "&lt;a href=&quot;x&quot;&gt;Tom &amp; Jerry&#39;s&lt;/a&gt;"
        );
        assert_eq!(new_cid_token().unwrap().len(), 24);
    }
}
