//! What the run's Dovecot logged.

use super::Env;

/// How often Dovecot logged a successful IMAP login of `address` (its
/// imap-login process logs every one at info level into the run's log).
pub fn logins(env: &Env, address: &str) -> usize {
    let log = std::fs::read_to_string(env.dir.join("dovecot/log")).expect("Dovecot's log");
    let needle = format!("Login: user=<{address}>");
    log.lines()
        .filter(|l| l.contains("imap-login") && l.contains(&needle))
        .count()
}
