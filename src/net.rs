//! TCP, TLS, STARTTLS upgrade, verification, pins, timeouts.
//!
//! Shared by the IMAP and POP3 sessions and the connection test, so that
//! every protocol resolves, connects, verifies certificates and words its
//! failures the same way. Certificate checks live in [`verify`]; the
//! connected [`Stream`] and the guards in its read path (a fetch's
//! deadline, IMAP literals above the size limit: [`literal`]) in `stream`;
//! servers that break TLS resumption in `resume`; a clear-text greeting
//! awaited on an implicit-TLS port in `greeting`.

mod greeting;
pub mod literal;
mod resume;
mod stream;
mod verify;

use std::cell::Cell;
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::client::{Resumption, WebPkiServerVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::RootCertStore;
use tokio::net::TcpStream;
use tokio::time::{timeout, Instant};

use crate::account::{Account, Encryption};
use crate::error::{Error, Result};
use crate::fetch::deadline::Budget;
use crate::fetch::DEFAULT_MAX_MESSAGE_SIZE;

pub use greeting::expect_greeting;
pub use stream::{Stream, WRITE_BUFFER};
pub use verify::spki_pin;

/// How long to wait for a server before calling it unreachable, and how
/// much one fetch may take from it: the `[fetch]` limits every session
/// obeys, handed down together so that no session is opened without them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Resolve + TCP connect + TLS handshake.
    pub connect: Duration,
    /// One read of a server reply.
    pub read: Duration,
    /// The deadline of a whole fetch (crate::fetch::deadline).
    pub deadline: Budget,
    /// Largest mail a fetch takes; also the largest IMAP literal a
    /// session reads ([`literal`]).
    pub max_message_size: u64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(15),
            read: Duration::from_secs(60),
            deadline: Budget::default(),
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
        }
    }
}

/// TLS trust: system roots (rustls-native-certs) plus an optional extra CA
/// file (PEM) from the config's `[tls] extra_ca_file`. Built once at start,
/// cloned cheaply (Arc inside), so loading the system store is not repeated
/// per connection.
#[derive(Clone, Debug)]
pub struct TlsContext {
    provider: Arc<CryptoProvider>,
    /// `None` when no trust anchor at all could be loaded; connections then
    /// only succeed with a pin, and say so.
    webpki: Option<Arc<WebPkiServerVerifier>>,
    /// One client config per trust, shared by its connections; see [`Configs`].
    configs: Configs,
    /// Hosts whose server fails resumed handshakes (net::resume).
    refusing: resume::Refusing,
}

/// Debian's self-signed "snakeoil" certificate (package ssl-cert): it is
/// linked into /etc/ssl/certs, so the system store lists it, but it is no
/// CA; see `verify::without_snakeoil`.
const SNAKEOIL: &str = "/etc/ssl/certs/ssl-cert-snakeoil.pem";

/// How many TLS sessions a config remembers: rustls keeps up to 8 TLS 1.3
/// tickets per server name, so this holds 1,024 servers, enough for the
/// mail hosts of every account of a large installation.
const SESSIONS: usize = 8 * 1024;

/// The client configs, one per trust: webpki (key `None`) and one per SPKI
/// pin. Sharing a config shares its session store, so a later connection
/// resumes (RFC 8446 §2.2) and skips the server's signature and our chain
/// check, which makes a round of logins cheaper on both ends; rustls only
/// resumes a session under the verifier that checked it. A session made
/// under one pin therefore never stands in for another account's own
/// verification of the same host name. Each trust has a second config
/// without resumption, for the servers that break it (net::resume); the
/// key's `bool` says whether the config resumes.
#[derive(Clone, Debug, Default)]
struct Configs(Arc<Mutex<HashMap<ConfigKey, Arc<rustls::ClientConfig>>>>);

/// The pin of a trust (`None`: webpki) and whether its config resumes.
type ConfigKey = (Option<String>, bool);

impl TlsContext {
    /// Load the system roots and `extra_ca_file`. A missing or unreadable
    /// extra CA file is an error (the admin configured it for a reason); a
    /// broken system store only loses those roots.
    pub fn new(extra_ca_file: Option<&Path>) -> Result<TlsContext> {
        let mut roots = RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        for e in &native.errors {
            tracing::warn!("system CA certificates: {e}");
        }
        let snakeoil = std::fs::read(SNAKEOIL).ok();
        let certs = verify::without_snakeoil(native.certs, snakeoil.as_deref());
        let (added, ignored) = roots.add_parsable_certificates(certs);
        if ignored > 0 {
            tracing::debug!("system CA store: {added} loaded, {ignored} unusable");
        }
        if let Some(path) = extra_ca_file {
            Self::add_pem_file(&mut roots, path)?;
        }
        Self::with_roots(roots)
    }

    /// A context that trusts only the CA certificates in `pem` (tests, and
    /// the connection test of unsaved settings with a custom CA).
    pub fn from_pem(pem: &[u8]) -> Result<TlsContext> {
        let mut roots = RootCertStore::empty();
        Self::add_pem(&mut roots, pem, "the CA certificates")?;
        Self::with_roots(roots)
    }

    fn add_pem_file(roots: &mut RootCertStore, path: &Path) -> Result<()> {
        let pem = std::fs::read(path).map_err(|e| {
            Error::invalid(
                "tls.extra_ca_file",
                format!("cannot read {}: {e}", path.display()),
            )
        })?;
        Self::add_pem(roots, &pem, &path.display().to_string())
    }

    fn add_pem(roots: &mut RootCertStore, pem: &[u8], what: &str) -> Result<()> {
        let mut count = 0;
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| {
                Error::invalid("tls.extra_ca_file", format!("{what}: bad PEM: {e}"))
            })?;
            roots.add(cert).map_err(|e| {
                Error::invalid(
                    "tls.extra_ca_file",
                    format!("{what}: not a CA certificate: {e}"),
                )
            })?;
            count += 1;
        }
        if count == 0 {
            return Err(Error::invalid(
                "tls.extra_ca_file",
                format!("{what}: no PEM CERTIFICATE block found"),
            ));
        }
        Ok(())
    }

    fn with_roots(roots: RootCertStore) -> Result<TlsContext> {
        // Explicit provider: rustls is built with `ring` only, and a
        // process-global default would be one more thing to get right at start.
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let webpki = if roots.is_empty() {
            tracing::warn!("no trusted CA certificates loaded; only pinned TLS servers will work");
            None
        } else {
            Some(
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .build()
                    .map_err(|e| Error::Tls(format!("cannot set up TLS verification: {e}")))?,
            )
        };
        Ok(TlsContext {
            provider,
            webpki,
            configs: Configs::default(),
            refusing: resume::Refusing::default(),
        })
    }

    /// A client config for HTTPS (the OAuth token endpoints) under the same
    /// trust as the mail servers (system roots plus `extra_ca_file`),
    /// offering HTTP/1.1 only.
    pub fn https_config(&self) -> Result<rustls::ClientConfig> {
        let mut config = (*self.config(None, true)?).clone();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    }

    /// The shared config for this trust (`pin`: that pin alone), with or
    /// without resumption, made on first use.
    fn config(&self, pin: Option<&str>, resumes: bool) -> Result<Arc<rustls::ClientConfig>> {
        let key = (pin.map(str::to_string), resumes);
        if let Ok(map) = self.configs.0.lock() {
            if let Some(c) = map.get(&key) {
                return Ok(c.clone());
            }
        }
        let trust = match pin {
            Some(p) => verify::Trust::Pin(p.to_string()),
            None => verify::Trust::WebPki(self.webpki.clone()),
        };
        let verifier = verify::Verifier {
            trust,
            provider: self.provider.clone(),
        };
        let mut config = rustls::ClientConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Tls(format!("cannot set up TLS: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        config.resumption = if resumes {
            let sessions = if pin.is_some() { 64 } else { SESSIONS };
            Resumption::store(Arc::new(resume::Store::new(sessions)))
        } else {
            Resumption::disabled()
        };
        let config = Arc::new(config);
        // A poisoned map only costs resumption: the config still works.
        if let Ok(mut map) = self.configs.0.lock() {
            return Ok(map.entry(key).or_insert(config).clone());
        }
        Ok(config)
    }
}

/// Resolve `host` and connect to the first address that answers, all
/// within `t.connect`.
pub async fn connect_tcp(host: &str, port: u16, t: &Timeouts) -> Result<TcpStream> {
    let deadline = Instant::now() + t.connect;
    let secs = t.connect.as_secs();
    let addrs: Vec<_> = match timeout(t.connect, tokio::net::lookup_host((host, port))).await {
        Ok(Ok(addrs)) => addrs.collect(),
        Ok(Err(e)) => {
            return Err(Error::connection_by(
                format!("cannot resolve {host}: {e}"),
                e,
            ))
        }
        Err(_) => {
            return Err(Error::connection(format!(
                "cannot resolve {host}: timed out after {secs} s"
            )))
        }
    };
    if addrs.is_empty() {
        return Err(Error::connection(format!(
            "cannot resolve {host}: no addresses"
        )));
    }
    let mut last = None;
    for addr in addrs {
        match tokio::time::timeout_at(deadline, TcpStream::connect(addr)).await {
            Ok(Ok(tcp)) => {
                // Command/reply protocols: do not let Nagle hold back a command.
                let _ = tcp.set_nodelay(true);
                return Ok(tcp);
            }
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                last = Some(Error::connection_by(
                    format!("connection refused by {host}:{port}"),
                    e,
                ));
            }
            Ok(Err(e)) => {
                last = Some(Error::connection_by(
                    format!("cannot connect to {host}:{port} ({addr}): {e}"),
                    e,
                ));
            }
            Err(_) => {
                return Err(Error::connection(format!(
                    "timed out connecting to {host}:{port} after {secs} s"
                )))
            }
        }
    }
    Err(last.unwrap_or_else(|| Error::connection(format!("cannot connect to {host}:{port}"))))
}

/// TLS handshake on a connected socket (implicit TLS, or after
/// STARTTLS/STLS). `pin`: base64 SHA-256 of the server certificate's
/// SubjectPublicKeyInfo; when set, the pin alone decides trust (self-signed
/// servers), else normal webpki verification against `ctx`'s roots.
pub async fn start_tls(
    tcp: TcpStream,
    host: &str,
    ctx: &TlsContext,
    pin: Option<&str>,
    t: &Timeouts,
) -> Result<Stream> {
    let explanation: verify::Explanation = Arc::new(Mutex::new(None));
    let pin = pin
        .filter(|p| !p.is_empty())
        .map(|p| p.strip_prefix("sha256/").unwrap_or(p));
    let port = tcp.peer_addr().map_or(0, |a| a.port());
    let config = ctx.config(pin, ctx.refusing.resumes(host, port))?;
    let name = ServerName::try_from(host.to_string())
        .map_err(|_| Error::invalid("host", format!("{host:?} is not a valid TLS server name")))?;
    let connector = tokio_rustls::TlsConnector::from(config);
    // rustls takes the session to offer when the connection is made, so
    // that happens inside the scopes too.
    let offered = Cell::new(false);
    let handshake = async move { timeout(t.connect, connector.connect(name, tcp)).await };
    let (result, offered) = resume::OFFERED
        .scope(offered, async {
            let r = verify::EXPLANATION
                .scope(explanation.clone(), handshake)
                .await;
            (r, resume::OFFERED.with(Cell::get))
        })
        .await;
    if offered && !matches!(result, Ok(Ok(_))) {
        ctx.refusing.add(host, port);
    }
    match result {
        Ok(Ok(tls)) => Ok(Stream::tls_stream(tls)),
        Ok(Err(e)) => {
            let explained = explanation.lock().ok().and_then(|mut s| s.take());
            Err(Error::Tls(match explained {
                Some(text) => text,
                None if verify::plain_reply(&e) => format!(
                    "TLS handshake with {host} failed: the server does not speak TLS on \
                     port {port} — try STARTTLS or the TLS port [{e}]"
                ),
                None => format!("TLS handshake with {host} failed: {e}"),
            }))
        }
        Err(_) => Err(Error::Tls(format!(
            "TLS handshake with {host} timed out after {} s",
            t.connect.as_secs()
        ))),
    }
}

/// 127.0.0.0/8, ::1 and "localhost": hosts where clear text never leaves
/// the machine.
pub fn is_loopback_host(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    if h.eq_ignore_ascii_case("localhost") || h.eq_ignore_ascii_case("localhost.") {
        return true;
    }
    h.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The clear-text password rule of ARCHITECTURE.md "What it does": encryption `none` sends a
/// password (or OAuth token) only to a loopback host, unless the account
/// says `allow_plaintext_auth`.
pub fn check_plaintext_auth(account: &Account) -> Result<()> {
    if account.encryption == Encryption::None
        && !account.allow_plaintext_auth
        && !is_loopback_host(&account.host)
    {
        return Err(Error::Tls(format!(
            "refusing to send the password in clear text to {}: encryption is none; \
             choose tls or starttls, or set allow_plaintext_auth",
            account.host
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
