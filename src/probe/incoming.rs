//! The incoming server's steps, for IMAP and POP3, built from the same
//! pieces the fetchers use, so the test sees what a fetch would see.

use super::Report;
use crate::account::{Account, Encryption};
use crate::error::{Error, Result};
use crate::net::{self, Timeouts, TlsContext};

/// `resolve` and `connect`: the TCP part, shared by every protocol.
pub async fn tcp(
    report: &mut Report,
    host: &str,
    port: u16,
    t: &Timeouts,
) -> Option<tokio::net::TcpStream> {
    report
        .step("resolve", resolve(host, port, t), |a: &Vec<String>| {
            format!("{host} is {}", a.join(", "))
        })
        .await?;
    report
        .step("connect", net::connect_tcp(host, port, t), |_| {
            format!("connected to {host}:{port}")
        })
        .await
}

async fn resolve(host: &str, port: u16, t: &Timeouts) -> Result<Vec<String>> {
    match tokio::time::timeout(t.connect, tokio::net::lookup_host((host, port))).await {
        Ok(Ok(addrs)) => {
            let v: Vec<String> = addrs.map(|a| a.ip().to_string()).collect();
            if v.is_empty() {
                Err(Error::connection(format!(
                    "cannot resolve {host}: no addresses"
                )))
            } else {
                Ok(v)
            }
        }
        Ok(Err(e)) => Err(Error::connection(format!("cannot resolve {host}: {e}"))),
        Err(_) => Err(Error::connection(format!(
            "cannot resolve {host}: timed out"
        ))),
    }
}

fn tls_step(enc: Encryption) -> &'static str {
    match enc {
        Encryption::Tls => "tls",
        Encryption::Starttls => "starttls",
        Encryption::None => "greeting",
    }
}

fn tls_message(enc: Encryption, host: &str) -> String {
    match enc {
        Encryption::Tls => {
            format!("TLS with {host} established, certificate trusted; server greeted")
        }
        Encryption::Starttls => format!("STARTTLS with {host} done, certificate trusted"),
        Encryption::None => format!("{host} greeted (no encryption)"),
    }
}

/// What a good login step says.
fn logged_in(a: &Account) -> String {
    if a.kind.is_office365() {
        format!("logged in as {} with XOAUTH2", a.username)
    } else {
        format!("logged in as {}", a.username)
    }
}

pub fn no_password() -> Error {
    Error::Authentication("no password set for this account".into())
}

pub async fn imap(
    report: &mut Report,
    a: &Account,
    password: Result<&str>,
    tls: &TlsContext,
    t: &Timeouts,
) {
    if tcp(report, &a.host, a.port, t).await.is_none() {
        return;
    }
    let enc = a.encryption;
    let Some(client) = report
        .step(
            tls_step(enc),
            crate::imap::session::connect(a, tls, t),
            |_| tls_message(enc, &a.host),
        )
        .await
    else {
        return;
    };
    let login = async {
        net::check_plaintext_auth(a)?;
        let pw = password?;
        if a.kind.is_office365() {
            return crate::imap::session::login_xoauth2(client, a, pw, t).await;
        }
        crate::imap::session::login(client, &a.username, pw, t, &a.host).await
    };
    let Some(mut session) = report.step("login", login, |_| logged_in(a)).await else {
        return;
    };
    let examine = async {
        match tokio::time::timeout(t.read, session.examine("INBOX")).await {
            Ok(Ok(mailbox)) => Ok(mailbox.exists),
            Ok(Err(e)) => Err(crate::imap::wire::imap_error(&a.host, "EXAMINE INBOX", e)),
            Err(_) => Err(Error::connection(format!(
                "{}: no answer to EXAMINE INBOX",
                a.host
            ))),
        }
    };
    report
        .step("open inbox", examine, |n| format!("INBOX has {n} messages"))
        .await;
    crate::imap::session::logout(session, crate::imap::LOGOUT_WAIT).await;
}

pub async fn pop3(
    report: &mut Report,
    a: &Account,
    password: Result<&str>,
    tls: &TlsContext,
    t: &Timeouts,
) {
    let Some(tcp) = tcp(report, &a.host, a.port, t).await else {
        return;
    };
    let enc = a.encryption;
    let Some((mut client, caps)) = report
        .step(
            tls_step(enc),
            crate::pop3::fetch::open(tcp, a, tls, t),
            |_| tls_message(enc, &a.host),
        )
        .await
    else {
        return;
    };
    let login = async {
        net::check_plaintext_auth(a)?;
        let pw = password?;
        if a.kind.is_office365() {
            client.login_xoauth2(&a.username, pw).await
        } else if caps.has_sasl("PLAIN") {
            client.login_plain(&a.username, pw).await
        } else {
            client.login_user_pass(&a.username, pw).await
        }
    };
    if report
        .step("login", login, |_| logged_in(a))
        .await
        .is_none()
    {
        return;
    }
    let Some(_) = report
        .step("open inbox", client.list(), |l: &Vec<(u32, u64)>| {
            format!("the mailbox has {} messages", l.len())
        })
        .await
    else {
        return;
    };
    let _ = client.quit().await;
}
