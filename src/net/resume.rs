//! Servers that break TLS session resumption.
//!
//! Every connection of a trust shares one session store (see
//! `net::Configs`), so a later connection offers a ticket of an earlier
//! one (RFC 8446 §2.2). Some servers answer that offer with an alert
//! instead of a full handshake: Cyrus imapd with `tls_session_timeout: 0`
//! sends `internal_error` to every resumed TLS 1.3 ClientHello, so every
//! second connection failed while a connection test (a fresh context, no
//! ticket) looked fine.
//!
//! So the store records, for the handshake being polled, whether it handed
//! out a session ([`OFFERED`], scoped by `net::start_tls`). A handshake
//! that fails after such an offer marks its `host:port` in [`Refusing`]:
//! from then on connections there use a config without resumption, and
//! [`crate::net::TlsContext::retry_unresumed`] repeats the failed attempt
//! once on a new connection. The mark is kept for the daemon's life (a
//! server's TLS settings rarely change; a restart forgets it) and the set
//! is bounded: a forgotten host costs one more failed attempt and retry.

use std::cell::Cell;
use std::collections::HashSet;
use std::future::Future;
use std::sync::{Arc, Mutex};

use rustls::client::{
    ClientSessionMemoryCache, ClientSessionStore, Tls12ClientSessionValue, Tls13ClientSessionValue,
};
use rustls::pki_types::ServerName;
use rustls::NamedGroup;

tokio::task_local! {
    /// Whether the store handed a session to the handshake being polled.
    pub(super) static OFFERED: Cell<bool>;
}

/// How many hosts that refuse resumption are remembered.
const REMEMBERED: usize = 1024;

/// rustls' in-memory session store, noting in [`OFFERED`] when a session
/// is taken for a ClientHello.
#[derive(Debug)]
pub(super) struct Store(ClientSessionMemoryCache);

impl Store {
    pub(super) fn new(sessions: usize) -> Store {
        Store(ClientSessionMemoryCache::new(sessions))
    }
}

fn offered<T>(value: Option<T>) -> Option<T> {
    if value.is_some() {
        let _ = OFFERED.try_with(|o| o.set(true));
    }
    value
}

impl ClientSessionStore for Store {
    fn set_kx_hint(&self, server_name: ServerName<'static>, group: NamedGroup) {
        self.0.set_kx_hint(server_name, group);
    }

    fn kx_hint(&self, server_name: &ServerName<'_>) -> Option<NamedGroup> {
        self.0.kx_hint(server_name)
    }

    fn set_tls12_session(&self, server_name: ServerName<'static>, value: Tls12ClientSessionValue) {
        self.0.set_tls12_session(server_name, value);
    }

    fn tls12_session(&self, server_name: &ServerName<'_>) -> Option<Tls12ClientSessionValue> {
        offered(self.0.tls12_session(server_name))
    }

    fn remove_tls12_session(&self, server_name: &ServerName<'static>) {
        self.0.remove_tls12_session(server_name);
    }

    fn insert_tls13_ticket(
        &self,
        server_name: ServerName<'static>,
        value: Tls13ClientSessionValue,
    ) {
        self.0.insert_tls13_ticket(server_name, value);
    }

    fn take_tls13_ticket(
        &self,
        server_name: &ServerName<'static>,
    ) -> Option<Tls13ClientSessionValue> {
        offered(self.0.take_tls13_ticket(server_name))
    }
}

/// The `host:port`s where a resumed handshake failed (module docs).
#[derive(Debug, Clone, Default)]
pub(super) struct Refusing(Arc<Mutex<HashSet<String>>>);

impl Refusing {
    fn key(host: &str, port: u16) -> String {
        format!("{}:{port}", host.to_ascii_lowercase())
    }

    /// Whether connections to `host:port` may offer a session.
    pub(super) fn resumes(&self, host: &str, port: u16) -> bool {
        self.0
            .lock()
            .map_or(true, |set| !set.contains(&Self::key(host, port)))
    }

    pub(super) fn add(&self, host: &str, port: u16) {
        if let Ok(mut set) = self.0.lock() {
            if set.len() >= REMEMBERED {
                if let Some(any) = set.iter().next().cloned() {
                    set.remove(&any);
                }
            }
            set.insert(Self::key(host, port));
        }
    }
}

impl super::TlsContext {
    /// Runs `attempt` (connect, any clear-text dialogue, TLS handshake)
    /// and, when it failed because `host:port` refused a resumed session
    /// (net::resume), once more: the second attempt offers no session.
    /// `E` is the caller's error: `crate::error::Error`, or SMTP's
    /// `Failure`.
    pub async fn retry_unresumed<T, E, F, Fut>(
        &self,
        host: &str,
        port: u16,
        mut attempt: F,
    ) -> std::result::Result<T, E>
    where
        E: std::fmt::Display,
        F: FnMut() -> Fut,
        Fut: Future<Output = std::result::Result<T, E>>,
    {
        let resumed = self.refusing.resumes(host, port);
        match attempt().await {
            Err(e) if resumed && !self.refusing.resumes(host, port) => {
                tracing::info!(
                    host,
                    port,
                    "the server refused a resumed TLS session ({e}); connecting again without, \
                     and no longer resuming there"
                );
                attempt().await
            }
            r => r,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusing_hosts_are_remembered_per_port_and_bounded() {
        let r = Refusing::default();
        assert!(r.resumes("Mail.Example", 993));
        r.add("Mail.Example", 993);
        assert!(!r.resumes("mail.example", 993));
        assert!(r.resumes("mail.example", 143));
        for i in 0..2 * REMEMBERED {
            r.add(&format!("h{i}"), 993);
        }
        assert!(r.0.lock().unwrap().len() <= REMEMBERED);
        assert!(!r.resumes(&format!("h{}", 2 * REMEMBERED - 1), 993));
    }
}
