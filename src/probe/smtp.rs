//! The SMTP steps of the connection test: connect (with implicit TLS when
//! configured) and greeting, STARTTLS, AUTH. A minimal RFC 5321 dialogue of
//! our own: the sending path will use lettre, but a probe must report each
//! step on its own, which a mail transport does not expose.

use base64::Engine;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use super::Report;
use crate::account::{Account, Encryption};
use crate::error::{Error, Result};
use crate::net::{self, Stream, Timeouts, TlsContext};

/// Longest reply line we accept (RFC 5321 §4.5.3.1.5 says 512).
const MAX_LINE: u64 = 8192;

type Conn = BufReader<Stream>;

/// Read one (possibly multi-line) reply: its code and text lines.
async fn reply(c: &mut Conn, t: &Timeouts) -> Result<(u16, Vec<String>)> {
    let mut lines = Vec::new();
    loop {
        let mut buf = Vec::new();
        let read =
            tokio::time::timeout(t.read, (&mut *c).take(MAX_LINE).read_until(b'\n', &mut buf))
                .await;
        match read {
            Err(_) => {
                return Err(Error::connection(
                    "SMTP server did not answer in time".into(),
                ))
            }
            Ok(Err(e)) => return Err(Error::connection(format!("SMTP connection broke: {e}"))),
            Ok(Ok(0)) => {
                return Err(Error::connection(
                    "SMTP server closed the connection".into(),
                ))
            }
            Ok(Ok(_)) => {}
        }
        let line = String::from_utf8_lossy(&buf).trim_end().to_string();
        let code = line.get(..3).and_then(|c| c.parse::<u16>().ok());
        let Some(code) = code else {
            return Err(Error::connection(format!(
                "SMTP server sent garbage: {:?}",
                line.chars().take(80).collect::<String>()
            )));
        };
        let last = line.as_bytes().get(3) != Some(&b'-');
        lines.push(line.get(4..).unwrap_or("").to_string());
        if last {
            return Ok((code, lines));
        }
    }
}

async fn command(c: &mut Conn, line: &str, t: &Timeouts) -> Result<(u16, Vec<String>)> {
    let w = c.get_mut();
    w.write_all(line.as_bytes())
        .await
        .map_err(|e| Error::connection(format!("SMTP write failed: {e}")))?;
    w.write_all(b"\r\n")
        .await
        .map_err(|e| Error::connection(format!("SMTP write failed: {e}")))?;
    w.flush()
        .await
        .map_err(|e| Error::connection(format!("SMTP write failed: {e}")))?;
    reply(c, t).await
}

fn expect(code: u16, want: u16, what: &str, text: &[String]) -> Result<()> {
    if code == want {
        Ok(())
    } else {
        Err(Error::connection(format!(
            "SMTP server answered {what} with {code} {}",
            text.join(" ")
        )))
    }
}

async fn ehlo(c: &mut Conn, t: &Timeouts) -> Result<Vec<String>> {
    let (code, lines) = command(c, "EHLO postfach.localdomain", t).await?;
    expect(code, 250, "EHLO", &lines)?;
    Ok(lines)
}

pub async fn test(
    report: &mut Report,
    a: &Account,
    password: Result<&str>,
    tls: &TlsContext,
    t: &Timeouts,
) {
    let host = a.smtp_host.as_str();
    let pin = Some(a.tls_pin.as_str()).filter(|p| !p.is_empty());
    let connect = async {
        let tcp = net::connect_tcp(host, a.smtp_port, t).await?;
        let stream = match a.smtp_encryption {
            Encryption::Tls => net::start_tls(tcp, host, tls, pin, t).await?,
            _ => Stream::plain(tcp),
        };
        let mut c = BufReader::new(stream);
        let (code, text) = reply(&mut c, t).await?;
        expect(code, 220, "the connection", &text)?;
        let caps = ehlo(&mut c, t).await?;
        Ok((c, caps))
    };
    let Some((mut c, mut caps)) = report
        .step("smtp connect", connect, |_| {
            format!("{host}:{} greeted", a.smtp_port)
        })
        .await
    else {
        return;
    };
    if a.smtp_encryption == Encryption::Starttls {
        let upgrade = async {
            if !caps.iter().any(|l| l.eq_ignore_ascii_case("STARTTLS")) {
                return Err(Error::Tls(format!(
                    "{host}: SMTP server does not offer STARTTLS"
                )));
            }
            let (code, text) = command(&mut c, "STARTTLS", t).await?;
            expect(code, 220, "STARTTLS", &text)?;
            let Some(tcp) = c.into_inner().into_plain() else {
                return Err(Error::Tls("STARTTLS on a TLS connection".into()));
            };
            let mut c2 = BufReader::new(net::start_tls(tcp, host, tls, pin, t).await?);
            let caps2 = ehlo(&mut c2, t).await?;
            Ok((c2, caps2))
        };
        match report
            .step("smtp starttls", upgrade, |_| {
                format!("STARTTLS with {host} done, certificate trusted")
            })
            .await
        {
            Some((c2, caps2)) => {
                c = c2;
                caps = caps2;
            }
            None => return,
        }
    }
    if a.smtp_login {
        let auth = async {
            if a.smtp_encryption == Encryption::None
                && !a.allow_plaintext_auth
                && !net::is_loopback_host(host)
            {
                return Err(Error::Tls(format!(
                    "refusing to send the password in clear text to {host}: smtp_encryption is none"
                )));
            }
            let pw = password?;
            if a.kind.is_office365() {
                return xoauth2(&mut c, &caps, a, pw, t).await;
            }
            if !caps.iter().any(|l| {
                l.to_ascii_uppercase().starts_with("AUTH")
                    && l.to_ascii_uppercase().contains("PLAIN")
            }) {
                return Err(Error::Authentication(format!(
                    "{host}: SMTP server does not offer AUTH PLAIN"
                )));
            }
            let blob = base64::engine::general_purpose::STANDARD
                .encode(format!("\0{}\0{pw}", a.smtp_username));
            let (code, text) = command(&mut c, &format!("AUTH PLAIN {blob}"), t).await?;
            if code != 235 {
                return Err(Error::Authentication(format!(
                    "SMTP login rejected by server: {code} {}",
                    text.join(" ")
                )));
            }
            Ok(())
        };
        let how = if a.kind.is_office365() {
            " with XOAUTH2"
        } else {
            ""
        };
        if report
            .step("smtp auth", auth, |_| {
                format!("logged in as {}{how}", a.smtp_username)
            })
            .await
            .is_none()
        {
            return;
        }
    }
    let _ = command(&mut c, "QUIT", t).await;
}

pub fn no_password() -> Error {
    Error::Authentication("no SMTP password set for this account".into())
}

/// AUTH XOAUTH2 in the two-step form (docs/OAUTH.md): the message after
/// the 334, and an empty line to a failure challenge so that the server
/// ends the exchange with its reason.
async fn xoauth2(
    c: &mut Conn,
    caps: &[String],
    a: &Account,
    token: &str,
    t: &Timeouts,
) -> Result<()> {
    let offered = caps.iter().any(|l| {
        let l = l.to_ascii_uppercase();
        l.starts_with("AUTH") && l.split_whitespace().any(|m| m == "XOAUTH2")
    });
    if !offered {
        return Err(Error::Authentication(format!(
            "{}: SMTP server does not offer AUTH XOAUTH2",
            a.smtp_host
        )));
    }
    let (code, text) = command(c, "AUTH XOAUTH2", t).await?;
    expect(code, 334, "AUTH XOAUTH2", &text)?;
    let blob = crate::oauth::xoauth2::initial_response(&a.smtp_username, token)?;
    let (mut code, mut text) = command(c, blob.expose(), t).await?;
    let mut detail = String::new();
    if code == 334 {
        detail = crate::oauth::xoauth2::challenge_text(text.join("").as_bytes());
        (code, text) = command(c, "", t).await?;
    }
    if code != 235 {
        return Err(Error::Authentication(
            format!(
                "SMTP login rejected by server: {code} {} {detail}",
                text.join(" ")
            )
            .trim_end()
            .to_string(),
        ));
    }
    Ok(())
}
