//! Helpers of the sending tests (`mod sendkit;`): a store with a sending
//! account, the recipient's delivered mail read back from its maildir,
//! Postfix's log, and a TCP relay in front of Postfix that can be down,
//! up, or cut a session after the final dot.
//!
//! Environment: `POSTFACH_TEST_SMTP_PLAIN_PORT` (Postfix on loopback
//! without required TLS, AUTH optional, rejected@ and deferred@ of the
//! test domain refused with 550 and 450 at RCPT) and
//! `POSTFACH_TEST_MAILLOG`, both from scripts/testenv.
#![allow(dead_code)] // each test binary uses a different subset
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use postfach::account::{Account, Encryption, SettingValue};
use postfach::net::{Timeouts, TlsContext};
use postfach::send::message::MessageValue;
use postfach::send::{Draft, Sender, Transport};
use postfach::store::{SecretKind, Store, Visibility};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::common::{Env, MailUser};

/// Postfix on loopback without required TLS (module docs).
pub fn plain_port() -> u16 {
    std::env::var("POSTFACH_TEST_SMTP_PLAIN_PORT")
        .expect("POSTFACH_TEST_SMTP_PLAIN_PORT: run the tests with scripts/test")
        .parse()
        .unwrap()
}

/// A store in a temp dir and what deliveries need.
pub struct Kit {
    pub dir: tempfile::TempDir,
    pub store: Arc<Store>,
    pub transport: Transport,
}

impl Kit {
    pub fn new(env: &Env) -> Kit {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path()).unwrap());
        Kit {
            dir,
            store,
            transport: transport(env),
        }
    }

    /// Close the store and open it again, as a restarted daemon does.
    pub fn reopen(self) -> Kit {
        let (dir, transport) = self.close();
        Kit::open(dir, transport)
    }

    /// Close the store (so that another process can open it).
    pub fn close(self) -> (tempfile::TempDir, Transport) {
        let Kit {
            dir,
            store,
            transport,
        } = self;
        drop(Arc::try_unwrap(store).expect("the store is not shared"));
        (dir, transport)
    }

    /// Open the store `close` left.
    pub fn open(dir: tempfile::TempDir, transport: Transport) -> Kit {
        let store = Arc::new(Store::open(dir.path()).unwrap());
        Kit {
            dir,
            store,
            transport,
        }
    }

    /// An account sending as `sender` through 127.0.0.1:`port`.
    pub fn account(
        &self,
        sender: &MailUser,
        encryption: Encryption,
        port: u16,
        login: bool,
        extra: &[(&str, SettingValue)],
    ) -> Account {
        let env = Env::get();
        let s = |k: &str, v: &str| (k.to_string(), SettingValue::Str(v.to_string()));
        let mut settings = vec![
            s("kind", "imap"),
            s("host", "127.0.0.1"),
            ("port".into(), SettingValue::U16(env.imaps_port)),
            s("address", &sender.address),
            s("name", "Vertrieb Müller & Söhne"),
            s("tenant", "t1"),
            s("username", &sender.address),
            s("smtp_host", "127.0.0.1"),
            ("smtp_port".into(), SettingValue::U16(port)),
            s("smtp_encryption", encryption.as_str()),
            ("smtp_login".into(), SettingValue::Bool(login)),
        ];
        settings.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
        let a = self
            .store
            .create_account(|id| Account::create(id, &settings))
            .unwrap();
        self.store
            .set_secret(&a.id, SecretKind::Password, Some(&sender.password))
            .unwrap();
        a
    }
}

/// The run's CA, short timeouts.
pub fn transport(env: &Env) -> Transport {
    Transport {
        tls: TlsContext::from_pem(&std::fs::read(&env.ca).unwrap()).unwrap(),
        timeouts: Timeouts {
            connect: Duration::from_secs(10),
            read: Duration::from_secs(20),
            ..Timeouts::default()
        },
        office365: None,
    }
}

/// The CRM user "mm", an admin's view.
pub fn sender() -> Sender {
    Sender {
        user: "mm".into(),
        viewer: Visibility::All,
    }
}

pub fn s(v: &str) -> MessageValue {
    MessageValue::Str(v.into())
}

pub fn list(v: &[&str]) -> MessageValue {
    MessageValue::StrList(v.iter().map(|s| s.to_string()).collect())
}

pub fn draft(pairs: Vec<(&str, MessageValue)>) -> Draft {
    Draft::from_keys(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()).unwrap()
}

/// A plain mail to `to` without signature.
pub fn simple(to: &str, subject: &str) -> Draft {
    draft(vec![
        ("to", list(&[to])),
        ("subject", s(subject)),
        ("text", s("Hallo")),
        ("signature", MessageValue::Bool(false)),
    ])
}

fn mail_files(env: &Env, user: &MailUser) -> Vec<PathBuf> {
    let dir = user.maildir(env);
    let mut files: Vec<PathBuf> = ["new", "cur"]
        .iter()
        .filter_map(|d| std::fs::read_dir(dir.join(d)).ok())
        .flatten()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

/// Line ends as CRLF, as on the wire and in an IMAP FETCH: Dovecot's
/// maildir keeps bare LF (`mail_save_crlf` off).
fn crlf(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len() + b.len() / 32);
    for (i, &c) in b.iter().enumerate() {
        if c == b'\n' && (i == 0 || b[i - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(c);
    }
    out
}

/// The mails delivered to `user` (line ends as CRLF), once there are at least `n` (Postfix
/// delivers through its queue and LMTP, so this waits, up to a minute).
pub async fn delivered(env: &Env, user: &MailUser, n: usize) -> Vec<Vec<u8>> {
    let start = Instant::now();
    loop {
        let files = mail_files(env, user);
        if files.len() >= n {
            return files
                .iter()
                .map(|f| crlf(&std::fs::read(f).unwrap()))
                .collect();
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{} of {n} mails arrived for {}",
            files.len(),
            user.address
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The delivered bytes (from [`delivered`]) end with exactly what was
/// sent (Postfix and Dovecot only put trace headers on top).
pub fn assert_same_mail(delivered: &[u8], sent: &[u8]) {
    // Where the two differ, counted from their ends.
    let same = delivered
        .iter()
        .rev()
        .zip(sent.iter().rev())
        .take_while(|(a, b)| a == b)
        .count();
    let around = |b: &[u8]| {
        let at = b.len() - same;
        String::from_utf8_lossy(&b[at.saturating_sub(200)..(at + 100).min(b.len())]).to_string()
    };
    assert!(
        same == sent.len(),
        "the delivered mail differs from the sent one {} bytes before its end:\n\
         delivered: {:?}\nsent: {:?}",
        same,
        around(delivered),
        around(sent)
    );
}

/// Postfix's queue id from an acceptance ("250 2.0.0 Ok: queued as ID").
pub fn queue_id(reply: &str) -> String {
    reply
        .rsplit_once("queued as ")
        .map(|(_, id)| id.trim().to_string())
        .unwrap_or_else(|| panic!("no queue id in {reply:?}"))
}

/// Postfix's `client=` log line of that queue id: how the client logged in.
pub fn client_line(queue_id: &str) -> String {
    let log = std::env::var("POSTFACH_TEST_MAILLOG").expect("POSTFACH_TEST_MAILLOG");
    let text = std::fs::read_to_string(log).unwrap();
    text.lines()
        .find(|l| l.contains(&format!("{queue_id}: client=")))
        .unwrap_or_else(|| panic!("no log line for {queue_id}"))
        .to_string()
}

/// How the relay behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relay {
    /// Pass everything both ways.
    Pass,
    /// Pass the client's bytes; once the end-of-data mark has gone to
    /// the server and the server has answered it, close both sides
    /// without passing that answer: the server has the mail, the client
    /// never hears so.
    CutAfterDot,
    /// Keep the client's DATA command from the server and go silent,
    /// holding both connections open: the client waits for the 354.
    HoldAtData,
    /// Like CutAfterDot, but keep both connections open without a word:
    /// the server has the mail, the client waits for the reply.
    HoldAfterDot,
}

/// A TCP relay on a fixed loopback port in front of `target`.
pub struct Proxy {
    pub port: u16,
    target: u16,
    task: Option<tokio::task::JoinHandle<()>>,
    /// Told when a Hold mode starts holding.
    pub held: Arc<tokio::sync::Notify>,
}

impl Proxy {
    /// A free port with nothing listening on it yet (the relay is "down").
    pub async fn reserve(target: u16) -> Proxy {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        Proxy {
            port,
            target,
            task: None,
            held: Arc::new(tokio::sync::Notify::new()),
        }
    }

    pub async fn up(&mut self, mode: Relay) {
        let l = TcpListener::bind(("127.0.0.1", self.port)).await.unwrap();
        let (target, held) = (self.target, self.held.clone());
        self.task = Some(tokio::spawn(async move {
            while let Ok((client, _)) = l.accept().await {
                tokio::spawn(relay(client, target, mode, held.clone()));
            }
        }));
    }

    pub fn down(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.down();
    }
}

async fn relay(mut client: TcpStream, target: u16, mode: Relay, held: Arc<tokio::sync::Notify>) {
    let Ok(mut server) = TcpStream::connect(("127.0.0.1", target)).await else {
        return;
    };
    if mode == Relay::Pass {
        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
        return;
    }
    let (mut cr, mut cw) = client.split();
    let (mut sr, mut sw) = server.split();
    let mut seen: Vec<u8> = Vec::new();
    let mut up = [0u8; 16 * 1024];
    let mut down = [0u8; 16 * 1024];
    let mut in_data = false;
    loop {
        tokio::select! {
            n = cr.read(&mut up) => {
                let Ok(n) = n else { return };
                if n == 0 { return; }
                seen.extend_from_slice(&up[..n]);
                let is_data = !in_data && seen.ends_with(b"\nDATA\r\n");
                if is_data && mode == Relay::HoldAtData {
                    held.notify_one();
                    std::future::pending::<()>().await;
                }
                sw.write_all(&up[..n]).await.unwrap_or(());
                if is_data {
                    in_data = true;
                    seen.clear();
                } else if in_data && seen.ends_with(b"\r\n.\r\n") {
                    // Wait for the server's answer to the dot, then cut
                    // or hold.
                    let mut answer = [0u8; 1024];
                    let _ = sr.read(&mut answer).await;
                    if mode == Relay::HoldAfterDot {
                        held.notify_one();
                        std::future::pending::<()>().await;
                    }
                    return;
                }
                if seen.len() > 1 << 20 {
                    seen.drain(..seen.len() - 8);
                }
            }
            n = sr.read(&mut down) => {
                let Ok(n) = n else { return };
                if n == 0 { return; }
                cw.write_all(&down[..n]).await.unwrap_or(());
            }
        }
    }
}
