//! Access tokens revoked before their expiry, as Office 365 does when an
//! admin revokes a user's sessions: the mail servers refuse them although
//! they are signed and unexpired.
//!
//! Kept in files under the run's directory (`POSTFACH_TEST_DIR`), because
//! the introspection endpoint Dovecot asks may be served by another test
//! process (token.rs): one file per user, holding the expiry up to which
//! that user's tokens are refused.

use std::path::PathBuf;

fn file(user: &str) -> PathBuf {
    let dir = PathBuf::from(
        std::env::var("POSTFACH_TEST_DIR")
            .expect("POSTFACH_TEST_DIR is not set: run the tests with scripts/test"),
    )
    .join("oauth-revoked");
    std::fs::create_dir_all(&dir).unwrap();
    let name: String = user.bytes().map(|b| format!("{b:02x}")).collect();
    dir.join(name)
}

/// Every access token of `user` that expires by `until` (unix seconds) is
/// refused from now on; `u64::MAX`: all of them, also those issued later.
pub fn revoke_until(user: &str, until: u64) {
    let tmp = file(user).with_extension("tmp");
    std::fs::write(&tmp, until.to_string()).unwrap();
    std::fs::rename(tmp, file(user)).unwrap();
}

/// Tokens of `user` are accepted again.
pub fn restore(user: &str) {
    let _ = std::fs::remove_file(file(user));
}

/// Whether a token of `user` expiring at `expires` is revoked.
pub fn is_revoked(user: &str, expires: u64) -> bool {
    match std::fs::read_to_string(file(user)) {
        Ok(until) => until.trim().parse::<u64>().is_ok_and(|u| expires <= u),
        Err(_) => false,
    }
}
