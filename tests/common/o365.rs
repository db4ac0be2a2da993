#![allow(dead_code)] // each test binary uses a different subset
#![allow(clippy::unwrap_used, clippy::expect_used)] // test support
//! Office 365 accounts in a running daemon (tests/oauth_connect.rs,
//! tests/oauth_tokens.rs): the daemon pointed at the test authorization
//! server, accounts on the run's Dovecot whose oauth2 passdb checks the
//! tokens, the sign-in played as the user, and the check that no token
//! ever shows in the daemon's log.

use std::time::Duration;

use postfach::dbus::proxy::{AccountProxy, Dict};
use zbus::{Connection, OwnedObjectPath};

use crate::common::eventually::eventually;
use crate::common::fetch as fetchkit;
use crate::common::{Daemon, Env, MailUser, Settings};
use crate::oauth_server::{OAuthServer, CLIENT_ID};

/// Long enough for a sign-in and a fetch on a loaded machine.
pub const LIMIT: Duration = Duration::from_secs(60);

/// A daemon that signs Office 365 accounts in at `server`.
pub struct World {
    pub server: OAuthServer,
    pub daemon: Daemon,
    pub conn: Connection,
    _state: tempfile::TempDir,
}

/// The daemon config: the run's CA, and `[oauth.office365]` at `server`.
pub fn config(server: &OAuthServer, extra: &str) -> String {
    format!(
        "{}{extra}\n[oauth.office365]\nclient_id = \"{CLIENT_ID}\"\nauthority = \"{}\"\n",
        fetchkit::config(Env::get()),
        server.authority()
    )
}

impl World {
    pub async fn start() -> World {
        World::start_with("", |_| {}).await
    }

    /// `extra` goes into the config before `[oauth.office365]`; `setup`
    /// changes the server before the daemon starts.
    pub async fn start_with(
        extra: &str,
        setup: impl FnOnce(&mut crate::oauth_server::State),
    ) -> World {
        let server = OAuthServer::start();
        server.with(setup);
        let state = tempfile::tempdir().unwrap();
        let daemon = Daemon::start(state.path(), &config(&server, extra));
        let conn = fetchkit::bus(&daemon).await;
        World {
            server,
            daemon,
            conn,
            _state: state,
        }
    }

    /// An account of `kind` (`imap-office365`, `pop3-office365`) for
    /// `user` on the run's Dovecot over TLS, polled every `poll` seconds.
    pub async fn account(&self, kind: &str, user: &MailUser, poll: u32) -> OwnedObjectPath {
        let s = Settings::on_dovecot(kind, user)
            .with("username", &user.address)
            .with("poll_interval", poll);
        fetchkit::create(&self.conn, s.dbus()).await
    }

    pub async fn proxy(&self, path: &OwnedObjectPath) -> AccountProxy<'_> {
        fetchkit::account(&self.conn, path).await
    }

    /// Connect("device") and the user signing in with the code.
    pub async fn device_sign_in(&self, acc: &AccountProxy<'_>, user: &MailUser) -> Dict {
        let info = acc.connect("device").await.expect("Connect(device)");
        let code: String = fetchkit::get(&info, "user_code");
        self.server.with(|st| st.approve(&code, &user.address));
        until_authorized(acc).await;
        info
    }

    /// Every secret the server handed out so far: live refresh tokens,
    /// device codes.
    pub fn secrets(&self) -> Vec<String> {
        self.server.with(|st| {
            st.refresh
                .keys()
                .cloned()
                .chain(st.devices.keys().cloned())
                .collect()
        })
    }

    /// Refresh-token grants the server answered so far.
    pub fn refreshes(&self) -> usize {
        self.server.with(|st| {
            st.token_requests
                .iter()
                .filter(|g| g.as_str() == "refresh_token")
                .count()
        })
    }

    /// No access token (they all start `pf.`), refresh token or device
    /// code in the daemon's log.
    pub fn assert_log_clean(&self) {
        let log = self.daemon.log();
        assert!(!log.contains("pf."), "an access token in the log:\n{log}");
        for s in self.secrets() {
            assert!(!log.contains(&s), "a secret in the log:\n{log}");
        }
    }
}

pub async fn until_authorized(acc: &AccountProxy<'_>) {
    eventually("Authorized", LIMIT, || async {
        acc.authorized().await.unwrap()
    })
    .await;
}

/// Waits until the account is in `state` with a LastError containing
/// `error`; returns that LastError.
pub async fn until_state(acc: &AccountProxy<'_>, state: &str, error: &str) -> String {
    let what = format!("state {state} with LastError containing {error:?}");
    eventually(&what, LIMIT, || async {
        acc.state().await.unwrap() == state && acc.last_error().await.unwrap().contains(error)
    })
    .await;
    acc.last_error().await.unwrap()
}

/// Waits until `n` mails of the account are listed.
pub async fn until_listed(w: &World, path: &OwnedObjectPath, n: usize) {
    let mb = fetchkit::mailbox(&w.conn).await;
    eventually(&format!("{n} mails listed"), LIMIT, || async {
        fetchkit::list_all(&mb, path).await.len() >= n
    })
    .await;
}
