//! Proves the test environment itself (scripts/testenv, tests/common): every
//! server answers where the other tests expect it, TLS is offered exactly
//! where it should be, and the helpers do what they promise.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

mod common;

use base64::Engine;
use common::{Env, MailUser, TestBus};
use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A plain or TLS line-protocol connection with a read timeout.
enum Io {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Read for Io {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Io::Plain(s) => s.read(buf),
            Io::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Io {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Io::Plain(s) => s.write(buf),
            Io::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Io::Plain(s) => s.flush(),
            Io::Tls(s) => s.flush(),
        }
    }
}

struct Conn {
    r: BufReader<Io>,
}

fn tls_config(env: &Env) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&env.ca).expect("read the CA") {
        roots.add(cert.expect("parse the CA")).expect("add the CA");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

/// TLS on `tcp`, verified against the run's CA for `localhost`; returns the
/// stream and the certificate the server presented.
fn handshake(tcp: TcpStream) -> (Io, Vec<u8>) {
    let env = Env::get();
    let name = "localhost".try_into().expect("server name");
    let mut conn = rustls::ClientConnection::new(tls_config(env), name).expect("TLS client");
    let mut tcp = tcp;
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp).expect("TLS handshake");
    }
    let cert = conn.peer_certificates().expect("a server certificate")[0].to_vec();
    (Io::Tls(Box::new(rustls::StreamOwned::new(conn, tcp))), cert)
}

impl Conn {
    fn tcp(host: &str, port: u16) -> TcpStream {
        let tcp = TcpStream::connect((host, port))
            .unwrap_or_else(|e| panic!("connect to {host}:{port}: {e}"));
        tcp.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        tcp
    }

    fn plain(host: &str, port: u16) -> Conn {
        Conn {
            r: BufReader::new(Io::Plain(Conn::tcp(host, port))),
        }
    }

    fn tls(port: u16) -> (Conn, Vec<u8>) {
        let (io, cert) = handshake(Conn::tcp("127.0.0.1", port));
        (
            Conn {
                r: BufReader::new(io),
            },
            cert,
        )
    }

    /// Upgrades after the server said go ahead (STARTTLS, STLS).
    fn starttls(self) -> Conn {
        assert!(self.r.buffer().is_empty(), "data after the TLS go-ahead");
        let Io::Plain(tcp) = self.r.into_inner() else {
            panic!("already TLS")
        };
        Conn {
            r: BufReader::new(handshake(tcp).0),
        }
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.r.read_line(&mut line).expect("read a line");
        line
    }

    fn send(&mut self, text: &str) {
        self.r.get_mut().write_all(text.as_bytes()).expect("send");
        self.r.get_mut().flush().expect("flush");
    }

    /// Sends an IMAP command and returns every line up to its tagged answer.
    fn imap(&mut self, tag: &str, command: &str) -> String {
        self.send(&format!("{tag} {command}\r\n"));
        let mut all = String::new();
        loop {
            let line = self.line();
            assert!(!line.is_empty(), "IMAP connection closed after {command}");
            all.push_str(&line);
            if line.starts_with(&format!("{tag} ")) {
                return all;
            }
        }
    }

    /// Sends an SMTP command and returns the whole (multi-line) reply.
    fn smtp(&mut self, command: &str) -> String {
        self.send(&format!("{command}\r\n"));
        self.smtp_reply()
    }

    fn smtp_reply(&mut self) -> String {
        let mut all = String::new();
        loop {
            let line = self.line();
            assert!(!line.is_empty(), "SMTP connection closed");
            all.push_str(&line);
            if line.as_bytes().get(3) != Some(&b'-') {
                return all;
            }
        }
    }

    /// POP3 multi-line answer (CAPA), up to the terminating dot.
    fn pop3_multi(&mut self, command: &str) -> String {
        self.send(&format!("{command}\r\n"));
        let mut all = self.line();
        assert!(all.starts_with("+OK"), "{command}: {all}");
        loop {
            let line = self.line();
            assert!(!line.is_empty(), "POP3 connection closed");
            if line == ".\r\n" {
                return all;
            }
            all.push_str(&line);
        }
    }
}

#[test]
fn every_port_greets() {
    let env = Env::get();
    let lo = "127.0.0.1";
    assert!(Conn::plain(lo, env.imap_port).line().starts_with("* OK"));
    assert!(Conn::plain(lo, env.pop3_port).line().starts_with("+OK"));
    assert!(Conn::plain(lo, env.smtp_port).line().starts_with("220 "));
    let notls = env.notls_host.as_str();
    assert!(Conn::plain(notls, env.notls_imap_port)
        .line()
        .starts_with("* OK"));
    assert!(Conn::plain(notls, env.notls_pop3_port)
        .line()
        .starts_with("+OK"));
    assert!(Conn::tls(env.imaps_port).0.line().starts_with("* OK"));
    assert!(Conn::tls(env.pop3s_port).0.line().starts_with("+OK"));
    assert!(Conn::tls(env.smtps_port).0.line().starts_with("220 "));
}

/// Walks the DER of a certificate to its SubjectPublicKeyInfo (RFC 5280
/// §4.1): the 7th element of tbsCertificate, counting the optional [0]
/// version as the first.
fn spki(cert: &[u8]) -> &[u8] {
    fn tlv(d: &[u8]) -> (usize, usize) {
        let (len, hdr) = match d[1] {
            n if n < 0x80 => (n as usize, 2),
            n => {
                let k = (n & 0x7f) as usize;
                let len = d[2..2 + k]
                    .iter()
                    .fold(0usize, |a, b| (a << 8) | *b as usize);
                (len, 2 + k)
            }
        };
        (hdr, hdr + len)
    }
    let (h, _) = tlv(cert);
    let tbs = &cert[h..];
    let (h, _) = tlv(tbs);
    let mut rest = &tbs[h..];
    let mut skip = if rest[0] == 0xa0 { 6 } else { 5 };
    while skip > 0 {
        rest = &rest[tlv(rest).1..];
        skip -= 1;
    }
    &rest[..tlv(rest).1]
}

#[test]
fn servers_present_the_run_certificate_and_pin() {
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    let env = Env::get();
    let expected = CertificateDer::from_pem_file(&env.cert).expect("read the cert");
    for port in [env.imaps_port, env.pop3s_port, env.smtps_port] {
        let (_, cert) = Conn::tls(port);
        assert_eq!(cert, expected.as_ref(), "certificate on port {port}");
    }
    let pin = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(spki(&expected)));
    assert_eq!(pin, env.pin);
}

#[test]
fn tls_is_refused_without_the_run_ca() {
    let env = Env::get();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    let name = "localhost".try_into().expect("server name");
    let mut conn = rustls::ClientConnection::new(Arc::new(config), name).expect("TLS client");
    let mut tcp = Conn::tcp("127.0.0.1", env.imaps_port);
    let mut result = Ok((0, 0));
    while conn.is_handshaking() && result.is_ok() {
        result = conn.complete_io(&mut tcp);
    }
    assert!(result.is_err(), "an unknown CA must fail the handshake");
}

#[test]
fn starttls_is_offered_only_off_the_notls_host() {
    let env = Env::get();
    let mut imap = Conn::plain("127.0.0.1", env.imap_port);
    imap.line();
    assert!(imap.imap("a", "CAPABILITY").contains("STARTTLS"));
    assert!(imap.imap("b", "STARTTLS").contains("b OK"));
    let mut imap = imap.starttls();
    assert!(imap.imap("c", "NOOP").contains("c OK"));

    let mut pop3 = Conn::plain("127.0.0.1", env.pop3_port);
    pop3.line();
    assert!(pop3.pop3_multi("CAPA").contains("STLS"));
    pop3.send("STLS\r\n");
    assert!(pop3.line().starts_with("+OK"));
    let mut pop3 = pop3.starttls();
    assert!(pop3.pop3_multi("CAPA").contains("USER"));

    let mut imap = Conn::plain(&env.notls_host, env.notls_imap_port);
    imap.line();
    let caps = imap.imap("a", "CAPABILITY");
    assert!(
        caps.contains("AUTH=PLAIN") && !caps.contains("STARTTLS"),
        "{caps}"
    );
    let mut pop3 = Conn::plain(&env.notls_host, env.notls_pop3_port);
    pop3.line();
    let caps = pop3.pop3_multi("CAPA");
    assert!(caps.contains("USER") && !caps.contains("STLS"), "{caps}");
}

fn imap_login(port: u16, host: &str, login: &str, password: &str) -> String {
    let mut imap = Conn::plain(host, port);
    imap.line();
    imap.imap("a", &format!("LOGIN \"{login}\" \"{password}\""))
}

#[test]
fn a_created_user_logs_in_and_a_wrong_password_fails_fast() {
    let env = Env::get();
    let user = common::create_user(env, "login");
    let other = common::create_user(env, "login");
    assert_ne!(user.name, other.name);
    assert!(imap_login(env.imap_port, "127.0.0.1", &user.name, &user.password).contains("a OK"));
    assert!(imap_login(
        env.notls_imap_port,
        &env.notls_host,
        &user.address,
        &user.password
    )
    .contains("a OK"));
    let started = Instant::now();
    let answer = imap_login(env.imap_port, "127.0.0.1", &user.name, &other.password);
    assert!(answer.contains("a NO"), "{answer}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "failed logins must be fast"
    );

    let mut pop3 = Conn::plain("127.0.0.1", env.pop3_port);
    pop3.line();
    pop3.send(&format!("USER {}\r\n", user.name));
    assert!(pop3.line().starts_with("+OK"));
    pop3.send(&format!("PASS {}\r\n", user.password));
    let answer = pop3.line();
    assert!(answer.starts_with("+OK"), "{answer}");
}

#[test]
fn drop_raw_keeps_every_byte() {
    let env = Env::get();
    let user = common::create_user(env, "raw");
    let mail: &[u8] = b"Subject: raw\r\n\r\nbare\rCR, bare\nLF\r\n.dot\r\n..two\r\n\xff\xfe 8-bit\r\n.\r\nno final newline";
    common::drop_raw(env, &user, mail);
    assert_eq!(common::message_count(env, &user), 1);
    assert_eq!(common::stored_bytes(env, &user, 1), mail);
}

#[test]
fn drop_messages_is_fast_and_distinct() {
    let env = Env::get();
    let user = common::create_user(env, "bulk");
    let started = Instant::now();
    common::drop_messages(env, &user, 1000);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(common::message_count(env, &user), 1000);
    let ids = common::doveadm(
        env,
        &[
            "fetch",
            "-u",
            &user.name,
            "hdr.message-id",
            "mailbox",
            "INBOX",
            "all",
        ],
    );
    let ids: std::collections::HashSet<&str> = ids.lines().filter(|l| l.contains('@')).collect();
    assert_eq!(ids.len(), 1000);
    let size = common::stored_bytes(env, &user, 1).len();
    assert!((3500..5000).contains(&size), "size {size}");
}

#[test]
fn uidvalidity_can_be_forced() {
    let env = Env::get();
    let user = common::create_user(env, "uidv");
    common::drop_messages(env, &user, 1);
    let before = common::mailbox_status(env, &user, "uidvalidity");
    let wanted = (before as u32).wrapping_add(1000);
    common::set_uidvalidity(env, &user, wanted);
    assert_eq!(
        common::mailbox_status(env, &user, "uidvalidity"),
        wanted as u64
    );
}

#[test]
fn kick_drops_a_logged_in_session() {
    let env = Env::get();
    let user = common::create_user(env, "kick");
    let mut imap = Conn::plain("127.0.0.1", env.imap_port);
    imap.line();
    assert!(imap
        .imap("a", &format!("LOGIN {} {}", user.name, user.password))
        .contains("a OK"));
    common::kick(env, &user);
    // Dovecot says BYE and closes; anything else would block until timeout.
    let mut rest = String::new();
    imap.r.read_to_string(&mut rest).expect("read until close");
    assert!(rest.contains("BYE"), "{rest}");
}

fn submit(
    port_conn: Conn,
    user: &MailUser,
    password: &str,
    rcpt: &MailUser,
    subject: &str,
) -> String {
    let mut smtp = port_conn;
    assert!(smtp.smtp_reply().starts_with("220"));
    let ehlo = smtp.smtp("EHLO client.test");
    assert!(ehlo.contains("STARTTLS"), "{ehlo}");
    assert!(!ehlo.contains("AUTH"), "AUTH before TLS: {ehlo}");
    assert!(smtp.smtp("STARTTLS").starts_with("220"));
    let mut smtp = smtp.starttls();
    let ehlo = smtp.smtp("EHLO client.test");
    assert!(ehlo.contains("AUTH PLAIN LOGIN"), "{ehlo}");
    let token =
        base64::engine::general_purpose::STANDARD.encode(format!("\0{}\0{}", user.name, password));
    let auth = smtp.smtp(&format!("AUTH PLAIN {token}"));
    if !auth.starts_with("235") {
        return auth;
    }
    assert!(smtp
        .smtp(&format!("MAIL FROM:<{}>", user.address))
        .starts_with("250"));
    assert!(smtp
        .smtp(&format!("RCPT TO:<{}>", rcpt.address))
        .starts_with("250"));
    assert!(smtp.smtp("DATA").starts_with("354"));
    smtp.smtp(&format!(
        "From: <{}>\r\nTo: <{}>\r\nSubject: {subject}\r\n\r\nHello over submission.\r\n.",
        user.address, rcpt.address
    ))
}

#[test]
fn submission_authenticates_and_delivers_into_dovecot() {
    let env = Env::get();
    let sender = common::create_user(env, "sender");
    let rcpt = common::create_user(env, "rcpt");
    let smtp = || Conn::plain("127.0.0.1", env.smtp_port);
    let refused = submit(smtp(), &sender, "wrong-password", &rcpt, "never");
    assert!(refused.starts_with("535"), "{refused}");

    let subject = common::unique("subject");
    let queued = submit(smtp(), &sender, &sender.password, &rcpt, &subject);
    assert!(queued.starts_with("250"), "{queued}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while common::message_count(env, &rcpt) == 0 {
        assert!(
            Instant::now() < deadline,
            "the mail did not arrive via LMTP"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let stored = common::stored_bytes(env, &rcpt, 1);
    assert!(String::from_utf8_lossy(&stored).contains(&subject));
}

fn id_of(user: &str, flag: &str) -> String {
    let mut cmd = Command::new("id");
    cmd.arg(flag);
    let out = common::as_user(user, &cmd).output().expect("run id");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn test_unix_users_have_their_groups_and_reach_the_buses() {
    let env = Env::get();
    let alice = nix::unistd::User::from_name(&env.unix_alice)
        .expect("lookup")
        .expect("pf-alice exists");
    assert_eq!(id_of(&env.unix_alice, "-u"), alice.uid.to_string());
    assert!(id_of(&env.unix_admin, "-Gn")
        .split(' ')
        .any(|g| g == env.admin_group));
    assert!(id_of(&env.unix_frontend, "-Gn")
        .split(' ')
        .any(|g| g == env.frontend_group));
    assert!(!id_of(&env.unix_nobody, "-Gn")
        .split(' ')
        .any(|g| g == env.admin_group || g == env.frontend_group));

    let own_bus = TestBus::start();
    for bus in [env.bus.as_str(), own_bus.address()] {
        let mut cmd = Command::new("dbus-send");
        cmd.arg(format!("--bus={bus}")).args([
            "--print-reply",
            "--dest=org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus.GetId",
        ]);
        let out = common::as_user(&env.unix_nobody, &cmd)
            .output()
            .expect("run dbus-send");
        assert!(
            out.status.success(),
            "bus {bus} refused another user: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(!own_bus.has_owner(common::daemon::BUS_NAME));
}
