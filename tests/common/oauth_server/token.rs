//! Access tokens of the test authorization server, and the introspection
//! endpoint Dovecot's `oauth2` passdb asks (tests/env/dovecot.conf).
//!
//! An access token is `pf.<user b64>.<expiry>.<nonce><padding>.<HMAC>`,
//! signed with the run's key (`POSTFACH_TEST_OAUTH_KEY`, made by
//! scripts/testenv). Any process that knows the key can check any token,
//! so one introspection listener per test process (on the run's fixed
//! `POSTFACH_TEST_OAUTH_PORT`, SO_REUSEPORT so that two test binaries at
//! once both serve) answers for the tokens of every server instance.

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::http::{self, Reply};

fn key() -> &'static [u8] {
    static KEY: OnceLock<Vec<u8>> = OnceLock::new();
    KEY.get_or_init(|| {
        std::env::var("POSTFACH_TEST_OAUTH_KEY")
            .expect("POSTFACH_TEST_OAUTH_KEY is not set: run the tests with scripts/test")
            .into_bytes()
    })
}

fn sign(payload: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key()).unwrap();
    mac.update(payload.as_bytes());
    B64.encode(mac.finalize().into_bytes())
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A signed access token for `user`, valid `life` seconds, at least
/// `min_len` bytes long.
pub fn mint(user: &str, life: u64, min_len: usize) -> String {
    let nonce = super::random(16);
    let mut payload = format!("pf.{}.{}.{nonce}", B64.encode(user), now() + life);
    let sig_len = 44;
    if payload.len() + sig_len < min_len {
        payload.push_str(&"x".repeat(min_len - sig_len - payload.len()));
    }
    let sig = sign(&payload);
    format!("{payload}.{sig}")
}

/// The user of a token that is signed and unexpired.
pub fn verify(token: &str) -> Option<String> {
    let (payload, sig) = token.rsplit_once('.')?;
    if sign(payload) != sig {
        return None;
    }
    let mut parts = payload.split('.');
    let (Some("pf"), Some(user), Some(exp)) = (parts.next(), parts.next(), parts.next()) else {
        return None;
    };
    let exp: u64 = exp.parse().ok()?;
    if exp <= now() {
        return None;
    }
    let user = String::from_utf8(B64.decode(user).ok()?).ok()?;
    (!super::revoked::is_revoked(&user, exp)).then_some(user)
}

/// Starts this process's introspection listener once.
pub fn ensure_introspection() {
    static STARTED: OnceLock<()> = OnceLock::new();
    STARTED.get_or_init(|| {
        let port: u16 = std::env::var("POSTFACH_TEST_OAUTH_PORT")
            .expect("POSTFACH_TEST_OAUTH_PORT is not set: run the tests with scripts/test")
            .parse()
            .unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        super::runtime().spawn(async move {
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.set_reuseaddr(true).unwrap();
            socket.set_reuseport(true).unwrap();
            socket.bind(([127, 0, 0, 1], port).into()).unwrap();
            let listener = socket.listen(128).unwrap();
            tx.send(()).unwrap();
            http::serve(listener, |req| async move { introspect(req) }).await;
        });
        rx.recv().expect("the introspection listener did not start");
    });
}

/// RFC 7662 in Dovecot's dialect: `active` as the string "true", the user
/// in `email`. Takes the token from a POST form (introspection_mode =
/// post), a Bearer header (auth) or the end of the path (get).
fn introspect(req: http::Request) -> Reply {
    let token = req
        .form()
        .remove("token")
        .or_else(|| req.bearer())
        .or_else(|| req.path.rsplit_once('=').map(|(_, t)| t.to_string()))
        .unwrap_or_default();
    match verify(&token) {
        Some(user) => Reply::json(
            200,
            serde_json::json!({"active": "true", "email": user, "token_type": "Bearer"}),
        ),
        None => Reply::json(200, serde_json::json!({"active": "false"})),
    }
}
