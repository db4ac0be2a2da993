//! The scripted IMAP server of this module's unit tests: one connection on
//! loopback that answers a fixed script and fails the test on any command
//! it did not expect, so "no EXAMINE" or "MOVE, not COPY" is checked by the
//! script itself. (Integration tests have their own in tests/common: unit
//! tests cannot reach it.)
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers: a failed unwrap is a failed test

use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::task::JoinHandle;

use super::connection::Connection;
use crate::account::{Account, SettingValue};
use crate::net::{Stream, Timeouts};
use crate::store::Store;

/// (command after the tag, reply with `{tag}` for the command's tag). The
/// reply of `DONE` gets the tag of the IDLE it ends; `DONE+` is a DONE
/// whose NOOP and IDLE came in the same write.
pub type Step = (&'static str, &'static str);

/// Greets with `* OK scripted`, then plays `script`; the handle ends with
/// a panic if a command differed.
pub async fn scripted_server(script: Vec<Step>) -> (u16, JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let (sock, _) = listener.accept().await.unwrap();
        let (r, mut w) = sock.into_split();
        let mut r = BufReader::new(r);
        w.write_all(b"* OK scripted\r\n").await.unwrap();
        let mut last_tag = String::new();
        for (want, reply) in script {
            let (want, pipelined) = match want.strip_suffix('+') {
                Some(w) => (w, true),
                None => (want, false),
            };
            let mut line = String::new();
            r.read_line(&mut line).await.unwrap();
            let line = line.trim_end().to_string();
            if pipelined {
                let rest = String::from_utf8_lossy(r.buffer()).to_string();
                assert!(rest.contains("NOOP") && rest.contains("IDLE"), "{rest:?}");
            }
            let (tag, cmd) = match line.split_once(' ') {
                Some((tag, cmd)) if line != "DONE" => (tag.to_string(), cmd.to_string()),
                _ => (last_tag.clone(), line.clone()),
            };
            assert!(
                cmd.to_ascii_uppercase().starts_with(want),
                "expected {want}, got {line:?}"
            );
            last_tag = tag.clone();
            w.write_all(reply.replace("{tag}", &tag).as_bytes())
                .await
                .unwrap();
        }
    });
    (port, task)
}

/// A one-connection server that sends `script` and then reads whatever
/// comes, so the client sees exactly that greeting.
pub async fn greeting_server(script: &'static str) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        sock.write_all(script.as_bytes()).await.unwrap();
        let mut buf = [0u8; 1024];
        while let Ok(n) = sock.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    });
    port
}

/// A connection logged in (plain LOGIN, the script's first step) to the
/// scripted server on `port`.
pub async fn connection(port: u16) -> Connection {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let mut client = async_imap::Client::new(Stream::plain(tcp));
    client.read_response().await.unwrap().unwrap();
    let session = client
        .login("anna", "pw")
        .await
        .map_err(|(e, _)| e)
        .unwrap();
    Connection::new(session, "127.0.0.1", &Timeouts::default())
}

/// A store in a temp dir with one IMAP account on loopback.
pub fn store_with_account(
    extra: &[(&str, SettingValue)],
) -> (tempfile::TempDir, Arc<Store>, Account) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    let s = |v: &str| SettingValue::Str(v.into());
    let mut settings = vec![
        ("kind".to_string(), s("imap")),
        ("address".to_string(), s("anna@example.com")),
        ("host".to_string(), s("127.0.0.1")),
    ];
    settings.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
    let account = store
        .create_account(|id| Account::create(id, &settings))
        .unwrap();
    (dir, store, account)
}
