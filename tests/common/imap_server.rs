//! The one scripted fake IMAP server of the integration tests, for what the
//! real Dovecot will not do: swallow LOGOUT, greet with a chosen line,
//! serve TLS with its own acceptor. It answers a fixed little script — an
//! empty INBOX — and writes down every command it got, so a test can assert
//! on what the daemon said and in which order.
//!
//! Each connection: the greeting; CAPABILITY, LOGIN, SELECT/EXAMINE (an
//! empty INBOX, UIDVALIDITY 1), NOOP, UID commands, IDLE … DONE answered
//! OK; LOGOUT answered with BYE and OK, or, with
//! [`Options::swallow_logout`], never (the connection stays open until the
//! client closes it); anything else BAD.

use std::sync::{Arc, Mutex};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::Env;

/// How the fake behaves.
#[derive(Debug, Clone)]
pub struct Options {
    /// The greeting line, without CRLF.
    pub greeting: &'static str,
    /// Implicit TLS with the run's server certificate.
    pub tls: bool,
    /// Never answer LOGOUT.
    pub swallow_logout: bool,
    /// The CAPABILITY list.
    pub caps: &'static str,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            greeting: "* OK fake IMAP ready",
            tls: false,
            swallow_logout: false,
            caps: "IMAP4rev1",
        }
    }
}

#[derive(Debug, Default)]
struct Seen {
    /// Every command line (without its tag), in arrival order.
    commands: Vec<String>,
    open: usize,
}

/// A running fake server on 127.0.0.1; stops when dropped.
pub struct FakeImap {
    port: u16,
    seen: Arc<Mutex<Seen>>,
    accept: JoinHandle<()>,
}

impl FakeImap {
    pub async fn start(options: Options) -> FakeImap {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("address").port();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let acceptor = options.tls.then(acceptor);
        let accept = {
            let seen = seen.clone();
            tokio::spawn(async move {
                while let Ok((tcp, _)) = listener.accept().await {
                    let (seen, options, acceptor) =
                        (seen.clone(), options.clone(), acceptor.clone());
                    tokio::spawn(async move {
                        seen.lock().unwrap().open += 1;
                        match acceptor {
                            Some(a) => {
                                if let Ok(tls) = a.accept(tcp).await {
                                    serve(tls, &options, &seen).await;
                                }
                            }
                            None => serve(tcp, &options, &seen).await,
                        }
                        seen.lock().unwrap().open -= 1;
                    });
                }
            })
        };
        FakeImap { port, seen, accept }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Every command line received so far (tags stripped).
    pub fn commands(&self) -> Vec<String> {
        self.seen.lock().unwrap().commands.clone()
    }

    /// How many commands so far start with `command` (any case).
    pub fn count(&self, command: &str) -> usize {
        let want = command.to_ascii_uppercase();
        self.commands()
            .iter()
            .filter(|c| c.to_ascii_uppercase().starts_with(&want))
            .count()
    }

    /// Connections not yet closed by the client.
    pub fn open_connections(&self) -> usize {
        self.seen.lock().unwrap().open
    }
}

impl Drop for FakeImap {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// A TLS acceptor with the run's server certificate and key.
fn acceptor() -> tokio_rustls::TlsAcceptor {
    let env = Env::get();
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&env.cert)
        .expect("server certificate")
        .map(|c| c.expect("PEM"))
        .collect();
    let key = PrivateKeyDer::from_pem_file(env.dir.join("tls/server.key")).expect("server key");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("server config");
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(stream: S, o: &Options, seen: &Mutex<Seen>) {
    let (r, mut w) = tokio::io::split(stream);
    let mut r = BufReader::new(r);
    if w.write_all(format!("{}\r\n", o.greeting).as_bytes())
        .await
        .is_err()
    {
        return;
    }
    let _ = w.flush().await;
    let mut idle_tag: Option<String> = None;
    loop {
        let mut line = String::new();
        match r.read_line(&mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let line = line.trim_end().to_string();
        if line.eq_ignore_ascii_case("DONE") {
            let tag = idle_tag.take().unwrap_or_default();
            seen.lock().unwrap().commands.push(line);
            if reply(&mut w, &format!("{tag} OK idle done\r\n"))
                .await
                .is_err()
            {
                return;
            }
            continue;
        }
        let (tag, command) = line.split_once(' ').unwrap_or((line.as_str(), ""));
        seen.lock().unwrap().commands.push(command.to_string());
        let upper = command.to_ascii_uppercase();
        let name = upper.split(' ').next().unwrap_or("");
        let answer = match name {
            "CAPABILITY" => format!("* CAPABILITY {}\r\n{tag} OK caps\r\n", o.caps),
            "LOGIN" | "NOOP" | "UID" => format!("{tag} OK done\r\n"),
            "SELECT" | "EXAMINE" => format!(
                "* 0 EXISTS\r\n* 0 RECENT\r\n* OK [UIDVALIDITY 1] v\r\n* OK [UIDNEXT 1] n\r\n\
                 {tag} OK [READ-WRITE] opened\r\n"
            ),
            "IDLE" => {
                idle_tag = Some(tag.to_string());
                "+ idling\r\n".to_string()
            }
            "LOGOUT" if o.swallow_logout => continue,
            "LOGOUT" => {
                let _ = reply(&mut w, &format!("* BYE see you\r\n{tag} OK bye\r\n")).await;
                return;
            }
            _ => format!("{tag} BAD unknown command\r\n"),
        };
        if reply(&mut w, &answer).await.is_err() {
            return;
        }
    }
}

async fn reply<W: AsyncWrite + Unpin>(w: &mut W, text: &str) -> std::io::Result<()> {
    w.write_all(text.as_bytes()).await?;
    w.flush().await
}
