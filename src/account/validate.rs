//! Checks for single settings values: types, ranges, host and address
//! syntax, folder names, pins. Each error names the settings key.

use super::{Encryption, Kind, SettingValue, MAX_HOST, MAX_STRING};
use crate::error::{Error, Result};

pub(super) fn wrong_type(key: &str, expected: &str, got: &SettingValue) -> Error {
    Error::invalid(
        key,
        format!("wrong type: expected {expected}, got {}", got.type_name()),
    )
}

pub(super) fn string(key: &str, v: &SettingValue) -> Result<String> {
    match v {
        SettingValue::Str(s) => {
            check_text(key, s, MAX_STRING)?;
            Ok(s.clone())
        }
        other => Err(wrong_type(key, "s (string)", other)),
    }
}

/// A text that people read (a setting, a contact): at most `max` bytes,
/// and none of the characters that hide or reorder what is shown around
/// them ([`hidden_char`]). The error names the key and the first such
/// character by its code point, never echoing the text.
pub fn check_text(key: &str, s: &str, max: usize) -> Result<()> {
    if s.len() > max {
        return Err(Error::invalid(
            key,
            format!("too long: {} bytes, at most {max}", s.len()),
        ));
    }
    if let Some(c) = s.chars().find(|c| hidden_char(*c)) {
        let what = if c.is_control() {
            "a control character"
        } else {
            "an invisible formatting character"
        };
        return Err(Error::invalid(
            key,
            format!("contains {what} (U+{:04X})", u32::from(c)),
        ));
    }
    Ok(())
}

/// Characters that no settings text may hold: the controls (Unicode Cc),
/// the format characters (Cf: bidi overrides and isolates such as U+202E,
/// zero-width space and joiners, soft hyphen, BOM, tag characters) and the
/// line and paragraph separators (Zl U+2028, Zp U+2029). They make a name
/// or tenant display as something else than it is (a bidi override turns
/// `moc.knab` into `bank.com`, CVE-2021-42574 "Trojan Source"), hide
/// differences between two names that look the same, or break log lines
/// and table rows. The Cf ranges are those of Unicode 15.1
/// (DerivedGeneralCategory.txt).
pub fn hidden_char(c: char) -> bool {
    const FORMAT: &[(u32, u32)] = &[
        (0x00AD, 0x00AD),
        (0x0600, 0x0605),
        (0x061C, 0x061C),
        (0x06DD, 0x06DD),
        (0x070F, 0x070F),
        (0x0890, 0x0891),
        (0x08E2, 0x08E2),
        (0x180E, 0x180E),
        (0x200B, 0x200F),
        // U+2028 (Zl), U+2029 (Zp), U+202A..U+202E (Cf, bidi embeddings and overrides)
        (0x2028, 0x202E),
        (0x2060, 0x2064),
        (0x2066, 0x206F),
        (0xFEFF, 0xFEFF),
        (0xFFF9, 0xFFFB),
        (0x110BD, 0x110BD),
        (0x110CD, 0x110CD),
        (0x13430, 0x1343F),
        (0x1BCA0, 0x1BCA3),
        (0x1D173, 0x1D17A),
        (0xE0001, 0xE0001),
        (0xE0020, 0xE007F),
    ];
    let cp = u32::from(c);
    c.is_control() || FORMAT.iter().any(|&(lo, hi)| (lo..=hi).contains(&cp))
}

/// A free-text field (name, tenant, user name): bounded, no control chars,
/// not only white space when `nonblank`.
pub(super) fn name_field(key: &str, v: &SettingValue, nonblank: bool) -> Result<String> {
    let s = string(key, v)?;
    if nonblank && s.trim().is_empty() {
        return Err(Error::invalid(key, "empty"));
    }
    Ok(s)
}

pub(super) fn secret(key: &str, v: &SettingValue) -> Result<String> {
    match v {
        SettingValue::Str(s) if s.len() > MAX_STRING => Err(Error::invalid(
            key,
            format!("too long: {} bytes, at most {MAX_STRING}", s.len()),
        )),
        SettingValue::Str(s) if s.contains(['\r', '\n', '\0']) => Err(Error::invalid(
            key,
            "contains a line break or NUL, which no mail protocol can carry",
        )),
        SettingValue::Str(s) => Ok(s.clone()),
        other => Err(wrong_type(key, "s (string)", other)),
    }
}

pub(super) fn boolean(key: &str, v: &SettingValue) -> Result<bool> {
    match v {
        SettingValue::Bool(b) => Ok(*b),
        other => Err(wrong_type(key, "b (boolean)", other)),
    }
}

pub(super) fn port(key: &str, v: &SettingValue) -> Result<u16> {
    match v {
        SettingValue::U16(0) => Err(Error::invalid(key, "port 0 is not a port; use 1-65535")),
        SettingValue::U16(p) => Ok(*p),
        other => Err(wrong_type(key, "q (uint16, 1-65535)", other)),
    }
}

pub(super) fn parse_kind(v: &SettingValue) -> Result<Kind> {
    let s = string("kind", v)?;
    Kind::parse(&s).ok_or_else(|| {
        Error::invalid(
            "kind",
            format!("unknown kind {s:?}; one of pop3, imap, pop3-office365, imap-office365"),
        )
    })
}

pub(super) fn encryption(key: &str, v: &SettingValue) -> Result<Encryption> {
    let s = string(key, v)?;
    Encryption::parse(&s).ok_or_else(|| {
        Error::invalid(
            key,
            format!("unknown encryption {s:?}; one of none, tls, starttls"),
        )
    })
}

/// A host name (RFC 1123 labels) or an IPv4/IPv6 literal.
pub fn check_host(key: &str, h: &str) -> Result<()> {
    if h.is_empty() {
        return Err(Error::invalid(key, "empty host name"));
    }
    if h.parse::<std::net::IpAddr>().is_ok() {
        return Ok(());
    }
    if h.len() > MAX_HOST {
        return Err(Error::invalid(
            key,
            format!("host name longer than {MAX_HOST} characters"),
        ));
    }
    let ok = h.trim_end_matches('.').split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            && !label.starts_with('-')
            && !label.ends_with('-')
    });
    if !ok {
        return Err(Error::invalid(
            key,
            format!("{h:?} is not a valid host name or IP address"),
        ));
    }
    Ok(())
}

pub(super) fn host(key: &str, v: &SettingValue) -> Result<String> {
    let h = string(key, v)?;
    if h.is_empty() && key == "smtp_host" {
        return Ok(h);
    }
    check_host(key, &h)?;
    Ok(h.to_ascii_lowercase())
}

/// A pragmatic addr-spec check (RFC 5322 §3.4.1 without comments or quoted
/// local parts, which no CRM user types): `local@domain`.
pub fn check_address(key: &str, a: &str) -> Result<()> {
    let Some((local, domain)) = a.rsplit_once('@') else {
        return Err(Error::invalid(
            key,
            format!("{a:?} is not an e-mail address (no @)"),
        ));
    };
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local.bytes().all(|b| {
            b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~.".contains(&b) || b >= 0x80
        });
    if !local_ok {
        return Err(Error::invalid(
            key,
            format!("{a:?} is not an e-mail address (bad local part)"),
        ));
    }
    if !domain.contains('.') && domain != "localhost" {
        return Err(Error::invalid(
            key,
            format!("{a:?} is not an e-mail address (domain needs a dot)"),
        ));
    }
    check_host(key, domain)
        .map_err(|_| Error::invalid(key, format!("{a:?} is not an e-mail address (bad domain)")))
}

/// Longest CRM user shorthand [Nutzerkürzel], in bytes.
pub const MAX_USER: usize = 64;

/// A CRM user shorthand [Nutzerkürzel]: letters, digits, `._-@`, at most
/// [`MAX_USER`] bytes. Checked for length first, so that a long value is
/// refused by its size and never copied into the error.
pub fn check_user(key: &str, u: &str) -> Result<()> {
    if u.len() > MAX_USER {
        return Err(Error::invalid(
            key,
            format!(
                "too long: {} bytes; a CRM user shorthand has at most {MAX_USER}",
                u.len()
            ),
        ));
    }
    if !u.chars().all(|c| c.is_alphanumeric() || "._-@".contains(c)) {
        return Err(Error::invalid(
            key,
            format!("{u:?} is not a CRM user shorthand (letters, digits, . _ - @; at most 64)"),
        ));
    }
    Ok(())
}

pub(super) fn user_shorthand(key: &str, v: &SettingValue) -> Result<String> {
    let u = string(key, v)?;
    check_user(key, &u)?;
    Ok(u)
}

/// An IMAP mailbox name (RFC 3501 §5.1): "" = not set; no control chars,
/// no `*` or `%` wildcards, at most 255 bytes.
pub(super) fn folder(key: &str, v: &SettingValue) -> Result<String> {
    let f = string(key, v)?;
    if f.len() > 255 || f.contains(['*', '%']) || f.trim() != f {
        return Err(Error::invalid(
            key,
            format!("{f:?} is not a valid IMAP folder name"),
        ));
    }
    Ok(f)
}

/// A pin is base64 of a SHA-256 digest: 32 bytes.
pub(super) fn pin(key: &str, v: &SettingValue) -> Result<String> {
    use base64::Engine;
    let p = string(key, v)?;
    if p.is_empty() {
        return Ok(p);
    }
    let raw = p.strip_prefix("sha256/").unwrap_or(&p);
    match base64::engine::general_purpose::STANDARD.decode(raw) {
        Ok(bytes) if bytes.len() == 32 => Ok(raw.to_string()),
        _ => Err(Error::invalid(
            key,
            "expected base64 of the SHA-256 of the server's public key (44 characters)",
        )),
    }
}
