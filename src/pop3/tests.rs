//! POP3 client tests against a scripted server over `tokio::io::duplex`.

use std::time::Duration;

use base64::Engine;
use tokio::io::{duplex, AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream};
use tokio::task::JoinHandle;

use super::client::{Client, Mails, Retr};
use super::wire::Wait;
use crate::error::{Error, Result};
use crate::fetch::deadline::Budget;

/// One step of a scripted server.
pub(super) enum Step {
    /// Read one command line; it must equal this (without CRLF).
    Expect(&'static str),
    /// Read one command line and hand it to the check.
    Check(Box<dyn Fn(&str) + Send + Sync>),
    /// Write these bytes.
    Write(Vec<u8>),
    /// Write these bytes one at a time, each after a pause: a server that
    /// drips.
    Drip(Vec<u8>, Duration),
    /// Close the connection.
    Close,
}

pub(super) use Step::{Close, Expect, Write};

pub(super) fn send(s: &str) -> Step {
    Write(s.as_bytes().to_vec())
}

pub(super) const READ: Duration = Duration::from_secs(5);

/// A session's limits: `READ`, and the default deadline.
pub(super) fn wait() -> Wait {
    Wait::new(READ, Budget::default())
}

/// Collects every mail of [`Client::retr_each`]; `stop_after`: answer
/// `more()` with false once that many mails are done.
#[derive(Default)]
pub(super) struct Collect {
    pub mails: Vec<Vec<u8>>,
    pub replies: Vec<Retr>,
    pub stop_after: Option<usize>,
}

impl Mails for Collect {
    fn more(&self) -> bool {
        self.stop_after.is_none_or(|n| self.replies.len() < n)
    }
    fn piece(&mut self, i: usize, bytes: &[u8]) -> Result<()> {
        if self.mails.len() <= i {
            self.mails.resize(i + 1, Vec::new());
        }
        self.mails[i].extend_from_slice(bytes);
        Ok(())
    }
    fn done(&mut self, _: usize, reply: Retr) -> Result<()> {
        self.replies.push(reply);
        Ok(())
    }
}

/// Start a server running `steps`; returns the client end. The handle
/// fails the test if the server saw something unexpected.
pub(super) fn server(steps: Vec<Step>) -> (DuplexStream, JoinHandle<()>) {
    let (client, srv) = duplex(1 << 16);
    let task = tokio::spawn(async move {
        let mut srv = BufReader::new(srv);
        for step in steps {
            match step {
                Write(bytes) => {
                    if srv.get_mut().write_all(&bytes).await.is_err() {
                        return;
                    }
                }
                Step::Drip(bytes, every) => {
                    for b in bytes {
                        tokio::time::sleep(every).await;
                        if srv.get_mut().write_all(&[b]).await.is_err() {
                            return;
                        }
                    }
                }
                Close => return,
                Expect(want) => assert_eq!(read_cmd(&mut srv).await, want),
                Step::Check(f) => f(&read_cmd(&mut srv).await),
            }
        }
        // Keep the connection open until the client is done.
        let mut rest = String::new();
        let _ = srv.read_line(&mut rest).await;
        assert!(
            rest.is_empty(),
            "unexpected command after the script: {rest:?}"
        );
    });
    (client, task)
}

async fn read_cmd(srv: &mut BufReader<DuplexStream>) -> String {
    let mut line = String::new();
    srv.read_line(&mut line).await.unwrap();
    assert!(
        line.ends_with("\r\n"),
        "command not CRLF-terminated: {line:?}"
    );
    line.truncate(line.len() - 2);
    line
}

pub(super) async fn client(steps: Vec<Step>) -> (Client<DuplexStream>, JoinHandle<()>) {
    let mut all = vec![send("+OK POP3 ready\r\n")];
    all.extend(steps);
    let (stream, task) = server(all);
    let (c, greeting) = Client::connect(stream, wait()).await.unwrap();
    assert_eq!(greeting, "POP3 ready");
    (c, task)
}

pub(super) fn retr(body: &[u8]) -> Step {
    let mut v = b"+OK message follows\r\n".to_vec();
    v.extend_from_slice(body);
    Write(v)
}

#[tokio::test]
async fn retr_unstuffs_and_keeps_every_other_byte() {
    let wire = b"Subject: x\r\n\r\n..leading dot\r\nmid . dot\r\n...two\r\nbare\rCR and bare\nLF\r\n\xff\x00\r\n.\r\n";
    let want = b"Subject: x\r\n\r\n.leading dot\r\nmid . dot\r\n..two\r\nbare\rCR and bare\nLF\r\n\xff\x00\r\n";
    let (mut c, task) = client(vec![Expect("RETR 7"), retr(wire)]).await;
    assert_eq!(c.retr(7).await.unwrap(), want);
    drop(c);
    task.await.unwrap();
}

#[tokio::test]
async fn empty_message_is_empty() {
    let (mut c, task) = client(vec![Expect("RETR 1"), retr(b".\r\n")]).await;
    assert_eq!(c.retr(1).await.unwrap(), b"");
    drop(c);
    task.await.unwrap();
}

#[tokio::test]
async fn pipelined_retr_keeps_order_and_per_message_errors() {
    let (mut c, task) = client(vec![
        Expect("CAPA"),
        send("+OK\r\nUIDL\r\nPIPELINING\r\nSASL PLAIN XOAUTH2\r\n.\r\n"),
        // All three commands arrive before the first reply is sent: a client
        // that waited for each reply would hang here.
        Expect("RETR 3"),
        Expect("RETR 1"),
        Expect("RETR 2"),
        retr(b"three\r\n.\r\n"),
        send("-ERR no such message\r\n"),
        retr(b"two\r\n.\r\n"),
    ])
    .await;
    let caps = c.capa().await.unwrap();
    assert!(caps.pipelining && caps.uidl && caps.has_sasl("plain") && !caps.stls);
    let mut got = Collect::default();
    let answered = tokio::time::timeout(READ, c.retr_each(&[3, 1, 2], &mut got))
        .await
        .expect("client did not pipeline")
        .unwrap();
    assert_eq!(answered, 3);
    assert_eq!(
        got.replies,
        vec![
            Retr::Mail(7),
            Retr::Refused("no such message".to_string()),
            Retr::Mail(5)
        ]
    );
    assert_eq!(got.mails[0], b"three\r\n");
    assert_eq!(got.mails[2], b"two\r\n");
    drop(c);
    task.await.unwrap();
}

#[tokio::test]
async fn pipelining_window_is_bounded() {
    let n = super::client::PIPELINE_WINDOW as u32 + 3;
    let mut steps = vec![Expect("CAPA"), send("+OK\r\nPIPELINING\r\n.\r\n")];
    // The whole window arrives first, then one more command per reply.
    let cmds: Vec<&'static str> = (1..=n)
        .map(|i| &*Box::leak(format!("RETR {i}").into_boxed_str()))
        .collect();
    let w = super::client::PIPELINE_WINDOW;
    steps.extend(cmds[..w].iter().map(|c| Expect(c)));
    for i in 0..n as usize {
        steps.push(retr(format!("m{i}\r\n.\r\n").as_bytes()));
        if w + i < n as usize {
            steps.push(Expect(cmds[w + i]));
        }
    }
    let (mut c, task) = client(steps).await;
    c.capa().await.unwrap();
    let msgs: Vec<u32> = (1..=n).collect();
    let mut got = Collect::default();
    assert_eq!(c.retr_each(&msgs, &mut got).await.unwrap(), n as usize);
    assert_eq!(got.replies.len(), n as usize);
    assert_eq!(
        got.mails[n as usize - 1],
        format!("m{}\r\n", n - 1).into_bytes()
    );
    drop(c);
    task.await.unwrap();
}

fn conn_err<T: std::fmt::Debug>(r: crate::error::Result<T>) -> String {
    match r {
        Err(Error::Connection { message: m, .. }) => m,
        other => panic!("expected a connection error, got {other:?}"),
    }
}

#[tokio::test]
async fn overlong_line_is_refused() {
    let (stream, _task) = server(vec![Write(vec![b'+'; 20_000])]);
    let m = conn_err(Client::connect(stream, wait()).await);
    assert!(m.contains("longer than 8 KiB"), "{m}");
}

#[tokio::test]
async fn eof_inside_a_mail_is_an_error_not_a_hang() {
    let (mut c, _task) = client(vec![Expect("RETR 1"), retr(b"partial\r\n"), Close]).await;
    let r = tokio::time::timeout(READ, c.retr(1)).await.expect("hung");
    let m = conn_err(r);
    assert!(m.contains("in the middle of message 1"), "{m}");
}

#[tokio::test]
async fn silent_server_times_out() {
    let (stream, _task) = server(vec![]);
    let r = Client::connect(
        stream,
        Wait::new(Duration::from_millis(100), Budget::default()),
    )
    .await;
    assert!(conn_err(r).contains("did not answer"));
}

#[tokio::test]
async fn garbage_status_is_a_protocol_error() {
    let (stream, _task) = server(vec![send("HELLO there\r\n")]);
    let m = conn_err(Client::connect(stream, wait()).await);
    assert!(m.starts_with("POP3 server sent \"HELLO there\""), "{m}");
}

#[tokio::test]
async fn mail_over_the_cap_is_refused() {
    let (mut c, _task) = client(vec![Expect("RETR 1"), retr(&[b'x'; 5000])]).await;
    c.set_max_mail(1000);
    assert!(conn_err(c.retr(1).await).contains("larger than"));
}

#[tokio::test]
async fn rejected_password_is_an_authentication_error_without_the_password() {
    let (mut c, _task) = client(vec![
        Expect("USER anna"),
        send("+OK\r\n"),
        Expect("PASS s3cret"),
        send("-ERR [AUTH] Authentication failed.\r\n"),
    ])
    .await;
    let e = c.login_user_pass("anna", "s3cret").await.unwrap_err();
    assert_eq!(
        e,
        Error::Authentication("login rejected by server: [AUTH] Authentication failed.".into())
    );
    assert!(!format!("{e:?}").contains("s3cret"));
}

#[tokio::test]
async fn auth_plain_sends_rfc4616_message() {
    let (mut c, task) = client(vec![
        Step::Check(Box::new(|line: &str| {
            let blob = line.strip_prefix("AUTH PLAIN ").unwrap();
            let raw = base64::engine::general_purpose::STANDARD
                .decode(blob)
                .unwrap();
            assert_eq!(raw, b"\0anna\0pw");
        })),
        send("+OK logged in\r\n"),
    ])
    .await;
    c.login_plain("anna", "pw").await.unwrap();
    drop(c);
    task.await.unwrap();
}

#[tokio::test]
async fn xoauth2_two_step_answers_the_error_challenge() {
    let challenge =
        base64::engine::general_purpose::STANDARD.encode(r#"{"status":"401","schemes":"bearer"}"#);
    let (mut c, task) = client(vec![
        Expect("AUTH XOAUTH2"),
        send("+ \r\n"),
        Step::Check(Box::new(|line: &str| {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(line)
                .unwrap();
            assert_eq!(raw, b"user=anna@example.com\x01auth=Bearer tok\x01\x01");
        })),
        Write(format!("+ {challenge}\r\n").into_bytes()),
        Expect(""),
        send("-ERR [AUTH] Authentication failed.\r\n"),
    ])
    .await;
    let e = c
        .login_xoauth2("anna@example.com", "tok")
        .await
        .unwrap_err();
    match e {
        Error::Authentication(m) => {
            assert!(m.starts_with("login rejected by server: [AUTH]"), "{m}");
            assert!(m.contains("401") && !m.contains("tok\u{1}"), "{m}");
        }
        other => panic!("{other:?}"),
    }
    drop(c);
    task.await.unwrap();
}

/// Regression: the "+OK" of a successful login was taken for an error
/// challenge, answered with an empty line, and the server's "-ERR Unknown
/// command" turned the login into a failure.
#[tokio::test]
async fn xoauth2_two_step_success_is_not_a_challenge() {
    let (mut c, task) = client(vec![
        Expect("AUTH XOAUTH2"),
        send("+ \r\n"),
        Step::Check(Box::new(|_: &str| {})),
        send("+OK Logged in.\r\n"),
        Expect("LIST"),
        send("+OK 0 messages\r\n.\r\n"),
    ])
    .await;
    c.login_xoauth2("anna@example.com", "tok").await.unwrap();
    assert_eq!(c.list().await.unwrap(), vec![]);
    drop(c);
    task.await.unwrap();
}

#[tokio::test]
async fn stls_hands_back_the_raw_stream() {
    let (c, _task) = client(vec![Expect("STLS"), send("+OK Begin TLS\r\n")]).await;
    assert!(c.stls().await.is_ok());
}

#[tokio::test]
async fn stls_refuses_data_injected_after_ok() {
    let (c, _task) = client(vec![
        Expect("STLS"),
        send("+OK Begin TLS\r\n+OK injected\r\n"),
    ])
    .await;
    assert!(conn_err(c.stls().await).contains("after its +OK to STLS"));
}

#[tokio::test]
async fn stls_refused_is_a_tls_error() {
    let (c, _task) = client(vec![Expect("STLS"), send("-ERR not now\r\n")]).await;
    assert!(matches!(c.stls().await, Err(Error::Tls(m)) if m.contains("not now")));
}

#[tokio::test]
async fn uidl_listing_is_parsed_strictly() {
    let (mut c, _task) = client(vec![
        Expect("UIDL"),
        send("+OK\r\n1 abc\r\n2 00000002\r\n.\r\n"),
        Expect("UIDL"),
        send("-ERR not supported\r\n"),
        Expect("UIDL"),
        send("+OK\r\n1 abc\r\nzz top\r\n.\r\n"),
    ])
    .await;
    assert_eq!(
        c.uidl().await.unwrap(),
        Some(vec![(1, "abc".into()), (2, "00000002".into())])
    );
    assert_eq!(c.uidl().await.unwrap(), None);
    assert!(conn_err(c.uidl().await).contains("malformed UIDL line"));
}

#[tokio::test]
async fn command_injection_through_the_user_name_is_refused() {
    let (mut c, _task) = client(vec![]).await;
    let e = c.login_user_pass("anna\r\nDELE 1", "pw").await.unwrap_err();
    assert!(matches!(e, Error::InvalidArgument { .. }));
}
