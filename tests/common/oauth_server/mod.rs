#![allow(dead_code)] // each test binary uses a different subset
#![allow(clippy::unwrap_used, clippy::expect_used)] // test support
//! A small authorization server for the Office 365 tests, speaking the
//! wire format of Microsoft's v2.0 endpoints under
//! `{authority}/{tenant}/oauth2/v2.0/`: `devicecode` (RFC 8628), `authorize`
//! (code with PKCE S256, RFC 7636; the test plays the user: a GET of the
//! authorize URL signs in the `login_hint` user and answers with the
//! redirect), `token` (device code, authorization code, refresh with
//! rotation: a refresh token works once). Access tokens are short-lived
//! signed tokens ([`token`]) that Dovecot checks through the introspection
//! endpoint. On demand: `slow_down`, an expired device code, a declined
//! sign-in, revocation, and the whole server going down (connections
//! refused) and up again on the same port.
//!
//! Every instance runs on one runtime thread of its own, so it outlives
//! the test's runtime and several tests share nothing but that thread.

mod grants;
pub mod http;
pub mod revoked;
pub mod token;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};

use tokio::task::JoinHandle;

pub use grants::State;

/// The runtime thread the servers run on.
pub fn runtime() -> &'static tokio::runtime::Handle {
    static RT: OnceLock<tokio::runtime::Handle> = OnceLock::new();
    RT.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let handle = rt.handle().clone();
        std::thread::spawn(move || rt.block_on(std::future::pending::<()>()));
        handle
    })
}

/// `n` random URL-safe characters.
pub fn random(n: usize) -> String {
    use rand::distributions::{Alphanumeric, DistString};
    Alphanumeric.sample_string(&mut rand::thread_rng(), n)
}

pub struct OAuthServer {
    pub addr: SocketAddr,
    pub state: Arc<Mutex<State>>,
    task: Mutex<Option<JoinHandle<()>>>,
}

/// The app registration's id the server accepts.
pub const CLIENT_ID: &str = "0a1b2c3d-1111-2222-3333-444455556666";
pub const TENANT: &str = "organizations";

impl OAuthServer {
    /// A server on a free loopback port; the introspection listener of
    /// this process is started too.
    pub fn start() -> OAuthServer {
        token::ensure_introspection();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = OAuthServer {
            addr,
            state: Arc::new(Mutex::new(State::new(format!("http://{addr}")))),
            task: Mutex::new(None),
        };
        server.listen(listener);
        server
    }

    fn listen(&self, listener: std::net::TcpListener) {
        listener.set_nonblocking(true).unwrap();
        let state = self.state.clone();
        let task = runtime().spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            http::serve(listener, move |req| {
                let state = state.clone();
                async move { grants::handle(&state, req) }
            })
            .await;
        });
        *self.task.lock().unwrap() = Some(task);
    }

    /// What `[oauth.office365] authority` is set to.
    pub fn authority(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Connections are refused from now on; open ones get 503.
    pub fn down(&self) {
        self.state.lock().unwrap().down = true;
        if let Some(task) = self.task.lock().unwrap().take() {
            task.abort();
        }
        // The abort takes effect on the runtime thread: wait until the
        // port is really closed.
        for _ in 0..200 {
            if std::net::TcpStream::connect(self.addr).is_err() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("the test authorization server did not go down");
    }

    /// Listening again on the same port.
    pub fn up(&self) {
        let listener = std::net::TcpListener::bind(self.addr).unwrap();
        self.state.lock().unwrap().down = false;
        self.listen(listener);
    }

    pub fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().unwrap())
    }
}

impl Drop for OAuthServer {
    fn drop(&mut self) {
        if let Some(task) = self.task.lock().unwrap().take() {
            task.abort();
        }
    }
}
