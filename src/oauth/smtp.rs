//! SMTP AUTH XOAUTH2 (RFC 4954 exchange) on a lettre connection.
//!
//! lettre has an XOAUTH2 mechanism, but it sends the token as an initial
//! response on the AUTH line and, when the server rejects the token with
//! the usual `334 <base64 JSON>` challenge, returns "This mechanism does
//! not expect a challenge" and leaves the server waiting in the middle of
//! the exchange. So the exchange is done here with lettre's `command`:
//! `AUTH XOAUTH2`, the message after the `334`, and an empty line to a
//! failure challenge, after which the server's 535 gives the real reason.
//! The two-step form also keeps the AUTH line short: Postfix and Exchange
//! take long SASL responses on a line of their own, while the AUTH line
//! itself is bounded by command-line limits (RFC 5321 §4.5.3.1.4).

use std::fmt;
use std::time::Duration;

use lettre::transport::smtp::authentication::Mechanism;
use lettre::transport::smtp::client::AsyncSmtpConnection;
use lettre::transport::smtp::response::Response;

use super::xoauth2::{challenge_text, initial_response};
use crate::error::{Error, Result};
use crate::redact::Scrubber;

/// One command line; Display adds the CRLF lettre's `command` expects.
struct Line<'a>(&'a str);

impl fmt::Display for Line<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}\r\n", self.0)
    }
}

/// Logs in with XOAUTH2 after EHLO (and STARTTLS). Each server reply is
/// awaited at most `read`. A token the server rejects (a 5xx reply, such
/// as 535 5.7.3 or Office 365's 5.7.139) is `NeedsAuthorization` with the
/// server's reason: the caller may refresh the token once and try again.
/// A server without XOAUTH2 is `Authentication`, a temporary refusal
/// (454 4.7.0: its SASL backend is down) is `Connection`: no new token
/// helps with either.
pub async fn authenticate(
    conn: &mut AsyncSmtpConnection,
    user: &str,
    token: &str,
    read: Duration,
) -> Result<()> {
    if !conn
        .server_info()
        .supports_auth_mechanism(Mechanism::Xoauth2)
    {
        return Err(Error::Authentication(
            "the SMTP server does not offer AUTH XOAUTH2 (Office 365 needs it; is TLS on?)".into(),
        ));
    }
    let blob = initial_response(user, token)?;
    // A refusal of the bare AUTH command is about the mechanism, not the
    // token (no token was sent yet).
    // A hostile server may echo what it got: its texts lose the token
    // and the message carrying it.
    let hide = Scrubber::new(&[token, blob.expose()], user);
    let go = step(conn, "AUTH XOAUTH2", read, &hide)
        .await
        .map_err(|e| match e {
            Error::NeedsAuthorization(why) => Error::Authentication(why),
            other => other,
        })?;
    if !go.has_code(334) {
        return Err(unexpected(&go));
    }
    let answer = step(conn, blob.expose(), read, &hide).await?;
    if answer.has_code(235) {
        return Ok(());
    }
    if !answer.has_code(334) {
        return Err(unexpected(&answer));
    }
    let detail = challenge_text(answer.first_line().unwrap_or("").as_bytes());
    match step(conn, "", read, &hide).await {
        Err(Error::NeedsAuthorization(reason)) => Err(Error::NeedsAuthorization(
            format!("{reason} {detail}").trim_end().to_string(),
        )),
        Err(other) => Err(other),
        Ok(r) => Err(unexpected(&r)),
    }
}

/// Sends one line and reads the reply: a 5xx reply is a refusal
/// (`NeedsAuthorization`), a 4xx one a server that cannot check the login
/// now (`Connection`).
async fn step(
    conn: &mut AsyncSmtpConnection,
    line: &str,
    read: Duration,
    hide: &Scrubber,
) -> Result<Response> {
    let text =
        |e: &lettre::transport::smtp::Error| super::errors::clean(&hide.clean(&e.to_string()));
    match tokio::time::timeout(read, conn.command(Line(line))).await {
        Err(_) => Err(Error::connection(format!(
            "no answer from the SMTP server within {} s during AUTH",
            read.as_secs()
        ))),
        Ok(Ok(r)) => Ok(r),
        Ok(Err(e)) if e.is_permanent() => Err(Error::NeedsAuthorization(format!(
            "login rejected by SMTP server: {}",
            text(&e)
        ))),
        Ok(Err(e)) if e.status().is_some() => Err(Error::connection(format!(
            "the SMTP server cannot check the login now: {}",
            text(&e)
        ))),
        Ok(Err(e)) => Err(Error::connection_by("SMTP AUTH failed", e)),
    }
}

fn unexpected(r: &Response) -> Error {
    Error::connection(format!(
        "the SMTP server answered AUTH XOAUTH2 with {}: {}",
        r.code(),
        super::errors::clean(r.first_line().unwrap_or(""))
    ))
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use base64::Engine;
    use lettre::transport::smtp::client::AsyncTokioStream;
    use lettre::transport::smtp::extension::ClientId;
    use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, ReadBuf};

    use super::*;

    const TOKEN: &str = "tok.en-secret-1234";

    /// The client's end of an in-memory connection.
    #[derive(Debug)]
    struct Pipe(tokio::io::DuplexStream);

    impl AsyncRead for Pipe {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<std::io::Result<()>> {
            Pin::new(&mut self.0).poll_read(cx, buf)
        }
    }

    impl AsyncWrite for Pipe {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<std::io::Result<usize>> {
            Pin::new(&mut self.0).poll_write(cx, buf)
        }
        fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Pin::new(&mut self.0).poll_flush(cx)
        }
        fn poll_shutdown(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<std::io::Result<()>> {
            Pin::new(&mut self.0).poll_shutdown(cx)
        }
    }

    impl AsyncTokioStream for Pipe {
        fn peer_addr(&self) -> std::io::Result<std::net::SocketAddr> {
            Ok(([127, 0, 0, 1], 25).into())
        }
    }

    /// Logs in against a server that greets, offers `auth`, and answers
    /// the client's lines after EHLO with `answers` in turn; the result
    /// and the lines the server got after EHLO.
    async fn run(auth: &str, answers: &[&str]) -> (Result<()>, Vec<String>) {
        let (client, server) = tokio::io::duplex(64 * 1024);
        let auth = auth.to_string();
        let answers: Vec<String> = answers.iter().map(|a| format!("{a}\r\n")).collect();
        let script = tokio::spawn(async move {
            let mut s = BufReader::new(server);
            s.get_mut().write_all(b"220 scripted\r\n").await.unwrap();
            let mut line = String::new();
            s.read_line(&mut line).await.unwrap();
            let ehlo = format!("250-scripted\r\n250 {auth}\r\n");
            s.get_mut().write_all(ehlo.as_bytes()).await.unwrap();
            let mut got = Vec::new();
            for a in answers {
                line.clear();
                if s.read_line(&mut line).await.unwrap() == 0 {
                    break;
                }
                got.push(line.trim_end_matches("\r\n").to_string());
                s.get_mut().write_all(a.as_bytes()).await.unwrap();
            }
            got
        });
        let hello = ClientId::Domain("client.test".into());
        let mut conn = AsyncSmtpConnection::connect_with_transport(Box::new(Pipe(client)), &hello)
            .await
            .unwrap();
        let r = authenticate(&mut conn, "anna@example.com", TOKEN, Duration::from_secs(5)).await;
        drop(conn);
        (r, script.await.unwrap())
    }

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[tokio::test]
    async fn a_good_token_logs_in_in_two_steps() {
        let (r, got) = run("AUTH PLAIN XOAUTH2", &["334 ", "235 2.7.0 ok"]).await;
        r.unwrap();
        assert_eq!(got[0], "AUTH XOAUTH2");
        let raw = base64::engine::general_purpose::STANDARD
            .decode(&got[1])
            .unwrap();
        let expected = format!("user=anna@example.com\x01auth=Bearer {TOKEN}\x01\x01");
        assert_eq!(raw, expected.as_bytes());
    }

    #[tokio::test]
    async fn a_refused_token_answers_the_challenge_and_hides_the_token() {
        let challenge = b64(r#"{"status":"401","schemes":"bearer"}"#);
        let refusal = format!("535 5.7.8 no such token {TOKEN} {}", b64(TOKEN));
        let (r, got) = run(
            "AUTH XOAUTH2",
            &["334 ", &format!("334 {challenge}"), &refusal],
        )
        .await;
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!(got[2], "", "the challenge is answered with an empty line");
        match r {
            Err(Error::NeedsAuthorization(m)) => {
                assert!(m.contains("535") && m.contains("401"), "{m}");
                assert!(!m.contains(TOKEN) && !m.contains(&b64(TOKEN)), "{m}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_temporary_refusal_or_a_missing_mechanism_is_no_token_problem() {
        let (r, _) = run("AUTH XOAUTH2", &["334 ", "454 4.7.0 try later"]).await;
        assert!(matches!(r, Err(Error::Connection { .. })), "{r:?}");
        let (r, got) = run("AUTH PLAIN LOGIN", &[]).await;
        assert!(matches!(r, Err(Error::Authentication(_))), "{r:?}");
        assert!(got.is_empty(), "{got:?}");
        let (r, _) = run("AUTH XOAUTH2", &["504 5.5.4 not now"]).await;
        assert!(matches!(r, Err(Error::Authentication(_))), "{r:?}");
    }
}
