//! Server certificate verification with messages an admin can act on, and
//! SPKI pins for self-signed servers.
//!
//! rustls reports "invalid peer certificate: UnknownIssuer"; the person who
//! reads `LastError` in the CRM needs "TLS certificate not trusted:
//! self-signed, issuer CN=mail.example". [`Verifier`] wraps rustls'
//! `WebPkiServerVerifier` (so trust decisions stay rustls' own), translates
//! its failure into such a sentence and leaves it in a slot (task-local to
//! the handshake) that `net::start_tls` reads when the handshake fails. The rustls error itself
//! still aborts the handshake, so the right TLS alert goes to the server.

use std::sync::{Arc, Mutex};

use base64::Engine;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Where the verifier leaves its admin-readable explanation of a rejection.
pub(super) type Explanation = Arc<Mutex<Option<String>>>;

tokio::task_local! {
    /// The explanation slot of the handshake being polled: one verifier is
    /// shared by every connection of a trust (rustls resumes a session only
    /// under the very verifier that checked it), so the slot cannot live in
    /// it; `net::start_tls` scopes each handshake future with its own.
    pub(super) static EXPLANATION: Explanation;
}

/// How a server certificate is trusted for one connection.
#[derive(Debug)]
pub(super) enum Trust {
    /// Normal webpki path validation; `None` when no trust anchor was loaded.
    WebPki(Option<Arc<WebPkiServerVerifier>>),
    /// Only this SPKI pin (base64 SHA-256) decides; chain and name are not
    /// checked, which is what an admin who pins a self-signed server wants.
    Pin(String),
}

#[derive(Debug)]
pub(super) struct Verifier {
    pub trust: Trust,
    pub provider: Arc<CryptoProvider>,
}

impl Verifier {
    /// Leaves `text` in the slot of the handshake being polled (none
    /// outside `start_tls`: then rustls' own error text is all there is).
    fn explain(&self, text: String) {
        let _ = EXPLANATION.try_with(|slot| {
            if let Ok(mut slot) = slot.lock() {
                *slot = Some(text);
            }
        });
    }
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        match &self.trust {
            Trust::Pin(expected) => {
                let actual = spki_pin(end_entity.as_ref()).map_err(|e| {
                    self.explain(e.to_string());
                    rustls::Error::InvalidCertificate(CertificateError::BadEncoding)
                })?;
                if &actual == expected {
                    Ok(ServerCertVerified::assertion())
                } else {
                    self.explain(format!(
                        "server key does not match tls_pin (the server presented key {actual})"
                    ));
                    Err(rustls::Error::InvalidCertificate(
                        CertificateError::ApplicationVerificationFailure,
                    ))
                }
            }
            Trust::WebPki(None) => {
                self.explain(
                    "TLS certificate not trusted: no trusted CA certificates were loaded \
                     (system store empty and no [tls] extra_ca_file); set tls_pin or install CA certificates"
                        .into(),
                );
                Err(rustls::Error::InvalidCertificate(
                    CertificateError::UnknownIssuer,
                ))
            }
            Trust::WebPki(Some(inner)) => inner
                .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
                .inspect_err(|e| self.explain(describe(e, end_entity, server_name))),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Turn a rustls verification error into a sentence naming the certificate;
/// rustls' own text stays as the detail in brackets.
fn describe(
    err: &rustls::Error,
    cert: &CertificateDer<'_>,
    server_name: &ServerName<'_>,
) -> String {
    let parsed = webpki::EndEntityCert::try_from(cert).ok();
    let issuer = parsed.as_ref().and_then(|c| common_name(c.issuer()));
    let self_signed = parsed.as_ref().is_some_and(|c| c.issuer() == c.subject());
    let issuer_text = issuer.map_or_else(|| "(no CN)".to_string(), |cn| format!("CN={cn}"));
    let host = server_name.to_str();
    let head = match err {
        rustls::Error::InvalidCertificate(ce) => match ce {
            CertificateError::UnknownIssuer if self_signed => format!(
                "TLS certificate not trusted: self-signed, issuer {issuer_text} \
                 (add its CA as [tls] extra_ca_file or set tls_pin)"
            ),
            CertificateError::UnknownIssuer => format!(
                "TLS certificate not trusted: issuer {issuer_text} is not a trusted CA \
                 (add it as [tls] extra_ca_file or set tls_pin)"
            ),
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                "TLS certificate expired".to_string()
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                "TLS certificate not valid yet (check the server's and this machine's clock)"
                    .to_string()
            }
            CertificateError::NotValidForNameContext { presented, .. } => format!(
                "certificate is for {}, not {host}",
                if presented.is_empty() {
                    "no host name".to_string()
                } else {
                    presented
                        .iter()
                        .map(|n| unwrap_debug_name(n))
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            ),
            CertificateError::NotValidForName => {
                format!("certificate is for another host, not {host}")
            }
            CertificateError::Revoked => "TLS certificate revoked".to_string(),
            _ => "TLS certificate rejected".to_string(),
        },
        _ => "TLS certificate rejected".to_string(),
    };
    format!("{head} [{err}]")
}

/// The system store without the machine's snakeoil certificate (`snakeoil`:
/// the PEM of /etc/ssl/certs/ssl-cert-snakeoil.pem, if any) and without any
/// other certificate of the same subject. Debian links that self-signed
/// leaf (CN = the host name, often `localhost`) into /etc/ssl/certs; as a
/// "root" it makes every other self-signed `CN=localhost` server look
/// signed by it, and webpki then reports `BadSignature` instead of an
/// untrusted self-signed certificate.
pub(super) fn without_snakeoil(
    certs: Vec<CertificateDer<'static>>,
    snakeoil: Option<&[u8]>,
) -> Vec<CertificateDer<'static>> {
    let Some(pem) = snakeoil else {
        return certs;
    };
    let bad: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
        .filter_map(std::result::Result::ok)
        .collect();
    let subjects: Vec<Vec<u8>> = bad.iter().filter_map(|c| subject(c)).collect();
    certs
        .into_iter()
        .filter(|c| !bad.contains(c))
        .filter(|c| subject(c).is_none_or(|s| !subjects.contains(&s)))
        .collect()
}

fn subject(cert: &CertificateDer<'_>) -> Option<Vec<u8>> {
    webpki::EndEntityCert::try_from(cert)
        .ok()
        .map(|c| c.subject().to_vec())
}

/// Whether a failed handshake read clear text where a TLS record belongs
/// (the first byte of `* OK`, `+OK` or `220` is no TLS content type, RFC
/// 8446 §5.1): the port speaks the protocol without TLS.
pub(super) fn plain_reply(e: &std::io::Error) -> bool {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .is_some_and(|r| {
            matches!(
                r,
                rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType)
            )
        })
}

/// rustls presents names in Debug form (`DnsName("a.example")`); an admin
/// wants `a.example`.
fn unwrap_debug_name(n: &str) -> &str {
    match (n.find("(\""), n.strip_suffix("\")")) {
        (Some(i), Some(inner)) if i + 2 <= inner.len() => &inner[i + 2..],
        _ => n,
    }
}

/// base64 SHA-256 of the certificate's SubjectPublicKeyInfo, the `tls_pin`
/// form (as HPKP, RFC 7469 §2.4, without the `sha256/` prefix).
pub fn spki_pin(cert_der: &[u8]) -> Result<String> {
    let der = CertificateDer::from(cert_der);
    let cert = webpki::EndEntityCert::try_from(&der)
        .map_err(|e| Error::Tls(format!("cannot read the server certificate: {e}")))?;
    let spki = cert.subject_public_key_info();
    let digest = Sha256::digest(spki.as_ref());
    Ok(base64::engine::general_purpose::STANDARD.encode(digest))
}

/// The first commonName (OID 2.5.4.3) of a DER Name's contents (RFC 5280
/// §4.1.2.4), printable and at most 128 characters: a hostile certificate
/// must not put control characters into a log line.
fn common_name(name: &[u8]) -> Option<String> {
    const CN_OID: &[u8] = &[0x55, 0x04, 0x03];
    let mut rdns = name;
    while let Some((0x31, set, rest)) = tlv(rdns) {
        rdns = rest;
        let mut atvs = set;
        while let Some((0x30, atv, rest)) = tlv(atvs) {
            atvs = rest;
            let Some((0x06, oid, value)) = tlv(atv) else {
                continue;
            };
            if oid != CN_OID {
                continue;
            }
            let (tag, bytes, _) = tlv(value)?;
            let text = if tag == 0x1e {
                // BMPString: UTF-16BE.
                let units: Vec<u16> = bytes
                    .chunks_exact(2)
                    .map(|c| u16::from_be_bytes([c[0], c[1]]))
                    .collect();
                String::from_utf16_lossy(&units)
            } else {
                String::from_utf8_lossy(bytes).into_owned()
            };
            return Some(
                text.chars()
                    .map(|c| if c.is_control() { '?' } else { c })
                    .take(128)
                    .collect(),
            );
        }
    }
    None
}

/// One DER tag-length-value: (tag, value, rest). Short and long lengths up
/// to four bytes; anything else is treated as the end.
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_name_found_among_other_attributes() {
        // SET{SEQ{OID 2.5.4.6, PrintableString "DE"}}, SET{SEQ{OID 2.5.4.3, UTF8 "mx\x01"}}
        let name = [
            0x31, 0x0b, 0x30, 0x09, 0x06, 0x03, 0x55, 0x04, 0x06, 0x13, 0x02, b'D', b'E', 0x31,
            0x0c, 0x30, 0x0a, 0x06, 0x03, 0x55, 0x04, 0x03, 0x0c, 0x03, b'm', b'x', 0x01,
        ];
        assert_eq!(common_name(&name).as_deref(), Some("mx?"));
    }

    #[test]
    fn truncated_der_is_no_name() {
        assert_eq!(common_name(&[0x31, 0x0b, 0x30]), None);
        assert_eq!(tlv(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), None);
    }

    #[test]
    fn presented_names_lose_their_debug_wrapper() {
        assert_eq!(unwrap_debug_name("DnsName(\"other.test\")"), "other.test");
        assert_eq!(unwrap_debug_name("10.0.0.1"), "10.0.0.1");
    }

    #[test]
    fn garbage_is_not_a_certificate() {
        assert!(matches!(spki_pin(b"not a certificate"), Err(Error::Tls(_))));
    }
}
