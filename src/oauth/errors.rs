//! What the token endpoint's answers mean for the account, in words an
//! admin can act on.
//!
//! RFC 6749 §5.2 error codes decide the kind of failure:
//! - the grant is dead — `invalid_grant` (expired, revoked or rotated-away
//!   refresh token, password change, new MFA rule), `interaction_required`,
//!   `consent_required`, and the device flow's `access_denied` /
//!   Microsoft's `authorization_declined` and `expired_token`
//!   (RFC 8628 §3.5): [`Error::NeedsAuthorization`], and the caller stops
//!   trying until someone signs in again (no retry storm);
//! - the endpoint is down or busy — no answer, 5xx, 429,
//!   `temporarily_unavailable`, `server_error`: [`Error::Connection`], the
//!   caller retries with back-off;
//! - everything else (`invalid_client`, `unauthorized_client`,
//!   `invalid_scope`, …) is the app registration or the daemon config:
//!   [`Error::Authentication`]; the tokens stay, since fixing the config
//!   makes them work again.
//!
//! Microsoft puts an `AADSTSnnnnn` code at the start of
//! `error_description`, followed by trace and correlation ids; the codes
//! the CRM's admins meet are explained in [`aadsts`], the rest keep the
//! first line of Microsoft's text. No part of a request (token, code,
//! verifier) is ever in these texts: they are built from the reply only.

use oauth2::{ErrorResponseType, RequestTokenError, StandardErrorResponse};

use super::http::HttpError;
use crate::error::Error;

/// Longest piece of server text kept in a message.
const MAX_TEXT: usize = 200;

/// The error for a failed token-endpoint request. `what` says what we were
/// doing ("refreshing the access token").
pub fn from_request<T>(
    what: &str,
    e: RequestTokenError<HttpError, StandardErrorResponse<T>>,
) -> Error
where
    T: ErrorResponseType + AsRef<str> + std::fmt::Display + 'static,
{
    match e {
        RequestTokenError::ServerResponse(r) => from_answer(
            what,
            r.error().as_ref(),
            r.error_description().map(String::as_str),
        ),
        RequestTokenError::Request(e) => {
            Error::connection_by(format!("Office 365 sign-in server: {what} failed: {e}"), e)
        }
        RequestTokenError::Parse(e, _body) => Error::connection_by(
            format!("Office 365 sign-in server: {what}: the answer is not what OAuth 2.0 sends"),
            e,
        ),
        RequestTokenError::Other(text) => Error::connection(format!(
            "Office 365 sign-in server: {what}: {}",
            clean(&text)
        )),
    }
}

/// The error for an OAuth error `code` with its `description` (from the
/// token endpoint, or from the redirect of the browser flow).
pub fn from_answer(what: &str, code: &str, description: Option<&str>) -> Error {
    let aad = description.and_then(aadsts_code);
    let detail = match (aad.and_then(aadsts), aad, description) {
        (Some(text), Some(n), _) => format!("{text} (AADSTS{n})"),
        (None, _, Some(d)) if !clean(d).is_empty() => format!("{code}: {}", clean(d)),
        _ => code.to_string(),
    };
    let message = format!("Office 365 sign-in: {what}: {detail}");
    match code {
        "invalid_grant" | "interaction_required" | "consent_required" | "login_required" => {
            Error::NeedsAuthorization(format!("{message}; sign in again (Connect)"))
        }
        "access_denied" | "authorization_declined" => Error::NeedsAuthorization(format!(
            "{message}; the sign-in was declined, Connect to try again"
        )),
        "expired_token" | "bad_verification_code" => Error::NeedsAuthorization(format!(
            "{message}; the code expired before the sign-in was completed, Connect again"
        )),
        "temporarily_unavailable" | "server_error" => Error::connection(message),
        _ => Error::Authentication(message),
    }
}

/// The number in "AADSTS70008: …".
fn aadsts_code(description: &str) -> Option<u32> {
    let start = description.find("AADSTS")? + "AADSTS".len();
    let digits: String = description[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// Microsoft Entra error codes (learn.microsoft.com, "Microsoft Entra
/// authentication and authorization error codes") that an admin of a
/// mail client meets, said in terms of what to do.
fn aadsts(code: u32) -> Option<&'static str> {
    Some(match code {
        50011 | 500113 => {
            "the redirect URI is not registered for the app (check [oauth.office365] redirect_uri \
             and the app registration)"
        }
        50020 | 50034 => "the user is not known in this tenant (check the user name and tenant)",
        50053 => "the account is locked",
        50057 => "the account is disabled",
        50059 | 90002 => "the tenant was not found (check [oauth.office365] tenant)",
        50076 | 50079 => "the tenant now requires multi-factor authentication",
        50105 => "the user is not assigned to the app registration",
        50126 => "wrong user name or password",
        50173 | 50133 => "the sign-in is no longer valid (password changed or session revoked)",
        53000 | 53001 => "the device does not meet the tenant's Conditional Access policy",
        53003 => {
            "blocked by a Conditional Access policy (this also blocks the device-code flow; use \
             the browser flow or ask the tenant's admin)"
        }
        54005 | 70000 => "the authorization code is invalid or was already used",
        65001 => "the app has no consent in this tenant: an administrator must grant it",
        65004 => "the user declined to consent to the app",
        70008 | 700082 => "the refresh token has expired",
        70011 => "a requested scope is invalid (check the [oauth.office365] scopes)",
        70019 => "the device code has expired",
        90094 | 90095 => "an administrator must approve the app for this tenant",
        500011 => "Exchange Online is not available in this tenant",
        700016 => {
            "the app (client_id) does not exist in this tenant (check [oauth.office365] client_id \
             and tenant)"
        }
        7000218 => {
            "the app registration is not a public client: turn on \"Allow public client flows\""
        }
        _ => return None,
    })
}

/// The first line of server text, without control characters, capped:
/// Microsoft's descriptions go on with trace ids and timestamps.
pub fn clean(text: &str) -> String {
    let first = text.lines().next().unwrap_or("");
    let first = first.split(" Trace ID:").next().unwrap_or(first);
    first
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_TEXT)
        .collect::<String>()
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS_EXPIRED: &str = "AADSTS70008: The provided authorization code or refresh token has \
        expired due to inactivity. Send a new interactive authorization request for this user \
        and resource.\r\nTrace ID: 0f1e2d3c\r\nCorrelation ID: 4b5a6978\r\nTimestamp: 2026-11-02";

    #[test]
    fn invalid_grant_needs_authorization_with_the_aadsts_explanation() {
        let e = from_answer(
            "refreshing the access token",
            "invalid_grant",
            Some(MS_EXPIRED),
        );
        let Error::NeedsAuthorization(m) = e else {
            panic!("{e:?}")
        };
        assert!(
            m.contains("the refresh token has expired (AADSTS70008)"),
            "{m}"
        );
        assert!(!m.contains("Trace ID") && !m.contains("0f1e2d3c"), "{m}");
    }

    #[test]
    fn unknown_codes_keep_microsofts_first_line() {
        let e = from_answer(
            "exchanging the code",
            "invalid_request",
            Some("AADSTS9999999: Something new.\r\nTrace ID: x"),
        );
        let Error::Authentication(m) = e else {
            panic!("{e:?}")
        };
        assert!(
            m.ends_with("invalid_request: AADSTS9999999: Something new."),
            "{m}"
        );
    }

    #[test]
    fn kinds_follow_the_error_code() {
        let blocked = "AADSTS53003: Access has been blocked by Conditional Access policies.";
        let declined = from_answer("device sign-in", "authorization_declined", Some(blocked));
        assert!(
            matches!(declined, Error::NeedsAuthorization(_)),
            "{declined:?}"
        );
        assert!(declined.to_string().contains("Conditional Access"));
        let consent = from_answer(
            "exchanging the code",
            "invalid_client",
            Some("AADSTS7000218: The request body must contain client_assertion."),
        );
        assert!(matches!(consent, Error::Authentication(_)), "{consent:?}");
        assert!(consent.to_string().contains("Allow public client flows"));
        assert!(matches!(
            from_answer("x", "temporarily_unavailable", None),
            Error::Connection { .. }
        ));
        assert!(matches!(
            from_answer("x", "expired_token", None),
            Error::NeedsAuthorization(_)
        ));
    }

    #[test]
    fn clean_strips_control_characters_and_caps() {
        assert_eq!(clean("a\u{1b}[31mb\r\nsecond"), "a[31mb");
        assert_eq!(clean(&"x".repeat(5000)).len(), MAX_TEXT);
        assert_eq!(clean("text Trace ID: 12"), "text");
    }
}
