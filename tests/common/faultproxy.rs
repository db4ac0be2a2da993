//! A fault-injecting TCP proxy between postfachd and a real server
//! (Dovecot, Postfix): each accepted connection gets a [`Fault`] from the
//! test's policy, and a [`FaultProxy::watch`] calls a hook once a pattern
//! has passed from the client to the server (the crash loop kills the
//! daemon there: after `RETR`, `DELE`, `UID EXPUNGE`, `APPEND`, `DATA`).
//!
//! The proxy sees bytes only, so it works as well in front of a TLS port:
//! a fault at a small offset from the server lands in the TLS handshake.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A direction of the proxied connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// Client (postfachd) to server.
    Up,
    /// Server to client.
    Down,
}

/// What happens to one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Pass everything both ways.
    Pass,
    /// Once `at` bytes have passed in `dir`, close both sides (FIN).
    Cut { dir: Dir, at: usize },
    /// Once `at` bytes have passed in `dir`, reset both sides (RST through
    /// SO_LINGER 0); from the server side at a small offset this is a
    /// reset during the TLS handshake.
    Reset { dir: Dir, at: usize },
    /// Once `at` bytes have passed in `dir`, pass nothing more that way and
    /// keep both sides open: the receiver waits for bytes that never come.
    Stall { dir: Dir, at: usize },
    /// Pass `dir` `chunk` bytes at a time, one chunk every `every`.
    Drip {
        dir: Dir,
        chunk: usize,
        every: Duration,
    },
    /// Once `at` bytes have passed in `dir`, shut down the write side
    /// towards that direction's receiver (it reads EOF) and keep the other
    /// direction going.
    HalfClose { dir: Dir, at: usize },
}

/// Chooses the fault of the n-th connection (counted from 0).
pub type Policy = Arc<dyn Fn(u64) -> Fault + Send + Sync>;
/// Called once when a watched pattern has gone to the server.
pub type Hook = Box<dyn FnOnce() + Send>;

struct Watch {
    pattern: Vec<u8>,
    hook: Hook,
}

/// Counters of a proxy.
#[derive(Debug, Default)]
pub struct Stats {
    /// Connections accepted.
    pub connections: AtomicU64,
    /// Connections whose fault took effect (a cut, reset, stall or
    /// half-close happened; a drip counts once it began).
    pub faulted: AtomicU64,
}

struct Shared {
    target: (String, u16),
    policy: Mutex<Policy>,
    watch: Mutex<Option<Watch>>,
    stats: Stats,
}

/// A proxy listening on a loopback port; stops when dropped.
pub struct FaultProxy {
    pub port: u16,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// Starts a proxy to `host:port` that passes everything.
    pub async fn start(host: &str, port: u16) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let listen_port = listener.local_addr().expect("local addr").port();
        let shared = Arc::new(Shared {
            target: (host.to_string(), port),
            policy: Mutex::new(Arc::new(|_| Fault::Pass)),
            watch: Mutex::new(None),
            stats: Stats::default(),
        });
        let s = shared.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let n = s.stats.connections.fetch_add(1, Ordering::Relaxed);
                let policy = s.policy.lock().expect("policy lock").clone();
                tokio::spawn(connection(client, s.clone(), policy(n)));
            }
        });
        FaultProxy {
            port: listen_port,
            shared,
            task,
        }
    }

    /// Sets the policy for the connections accepted from now on.
    pub fn set_policy(&self, policy: impl Fn(u64) -> Fault + Send + Sync + 'static) {
        *self.shared.policy.lock().expect("policy lock") = Arc::new(policy);
    }

    /// Calls `hook` once, after the first client bytes that complete
    /// `pattern` went to the server; replaces an earlier watch.
    pub fn watch(&self, pattern: &[u8], hook: impl FnOnce() + Send + 'static) {
        *self.shared.watch.lock().expect("watch lock") = Some(Watch {
            pattern: pattern.to_vec(),
            hook: Box::new(hook),
        });
    }

    /// Drops a watch that has not fired; whether one was still set.
    pub fn unwatch(&self) -> bool {
        self.shared
            .watch
            .lock()
            .expect("watch lock")
            .take()
            .is_some()
    }

    pub fn connections(&self) -> u64 {
        self.shared.stats.connections.load(Ordering::Relaxed)
    }

    pub fn faulted(&self) -> u64 {
        self.shared.stats.faulted.load(Ordering::Relaxed)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// How a pump ended.
enum End {
    /// The sender closed its side; the other direction may go on.
    Eof,
    /// The connection must close now (a cut, a reset or an I/O error).
    Close,
}

async fn connection(client: TcpStream, shared: Arc<Shared>, fault: Fault) {
    let (host, port) = (shared.target.0.as_str(), shared.target.1);
    let Ok(server) = TcpStream::connect((host, port)).await else {
        return;
    };
    let mut client = client;
    let mut server = server;
    if let Fault::Reset { .. } = fault {
        // SO_LINGER 0: closing sends RST instead of FIN. Tokio deprecates
        // set_linger because a non-zero linger blocks the closing thread;
        // a zero one does not wait at all.
        #[allow(deprecated)]
        {
            let _ = client.set_linger(Some(Duration::ZERO));
            let _ = server.set_linger(Some(Duration::ZERO));
        }
    }
    // Borrowed halves: dropping them shuts nothing down, so a reset stays
    // a reset (an owned write half would send FIN first).
    let (cr, cw) = client.split();
    let (sr, sw) = server.split();
    let up = pump(cr, sw, Dir::Up, fault, &shared);
    let down = pump(sr, cw, Dir::Down, fault, &shared);
    tokio::pin!(up, down);
    let (mut up_done, mut down_done) = (false, false);
    while !(up_done && down_done) {
        let end = tokio::select! {
            e = &mut up, if !up_done => { up_done = true; e }
            e = &mut down, if !down_done => { down_done = true; e }
        };
        if let End::Close = end {
            break;
        }
    }
}

/// Passes bytes from `r` to `w` and applies the part of `fault` that
/// concerns `dir`.
async fn pump(
    mut r: tokio::net::tcp::ReadHalf<'_>,
    mut w: tokio::net::tcp::WriteHalf<'_>,
    dir: Dir,
    fault: Fault,
    shared: &Shared,
) -> End {
    let mut buf = vec![0u8; 16 * 1024];
    let mut passed = 0usize;
    // The tail of the client's bytes, so a pattern split over two reads
    // is still seen.
    let mut tail: Vec<u8> = Vec::new();
    let mut dripping = false;
    loop {
        let n = match r.read(&mut buf).await {
            Ok(0) => {
                let _ = w.shutdown().await;
                // When the client closes, the session is over: closing the
                // server side too keeps a stalled server connection from
                // outliving it (Dovecot limits connections per user).
                return match dir {
                    Dir::Up => End::Close,
                    Dir::Down => End::Eof,
                };
            }
            Ok(n) => n,
            Err(_) => return End::Close,
        };
        let mut chunk = &buf[..n];
        // The part of the chunk before the fault's offset.
        let limit = match fault {
            Fault::Cut { dir: d, at }
            | Fault::Reset { dir: d, at }
            | Fault::Stall { dir: d, at }
            | Fault::HalfClose { dir: d, at }
                if d == dir =>
            {
                Some(at.saturating_sub(passed))
            }
            _ => None,
        };
        let hit = limit.is_some_and(|l| l < chunk.len() || l == 0);
        if let Some(l) = limit {
            chunk = &chunk[..l.min(chunk.len())];
        }
        if let Fault::Drip {
            dir: d,
            chunk: size,
            every,
        } = fault
        {
            if d == dir {
                if !dripping {
                    dripping = true;
                    shared.stats.faulted.fetch_add(1, Ordering::Relaxed);
                }
                for piece in chunk.chunks(size.max(1)) {
                    if w.write_all(piece).await.is_err() {
                        return End::Close;
                    }
                    tokio::time::sleep(every).await;
                }
                chunk = &[];
            }
        }
        if !chunk.is_empty() && w.write_all(chunk).await.is_err() {
            return End::Close;
        }
        passed += chunk.len();
        if dir == Dir::Up {
            tail.extend_from_slice(chunk);
            fire_watch(shared, &mut tail);
        }
        if hit {
            shared.stats.faulted.fetch_add(1, Ordering::Relaxed);
            return match fault {
                Fault::Stall { .. } => {
                    // Read on (so the sender is not blocked by a full
                    // window) and drop everything until the peer closes.
                    loop {
                        match r.read(&mut buf).await {
                            Ok(0) | Err(_) => return End::Close,
                            Ok(_) => {}
                        }
                    }
                }
                Fault::HalfClose { .. } => {
                    let _ = w.shutdown().await;
                    // Whatever the sender still sends goes nowhere.
                    loop {
                        match r.read(&mut buf).await {
                            Ok(0) | Err(_) => return End::Eof,
                            Ok(_) => {}
                        }
                    }
                }
                _ => End::Close,
            };
        }
    }
}

/// Calls the watch's hook if `tail` now holds its pattern; keeps `tail`
/// short.
fn fire_watch(shared: &Shared, tail: &mut Vec<u8>) {
    let mut slot = shared.watch.lock().expect("watch lock");
    let Some(watch) = slot.as_ref() else {
        tail.clear();
        return;
    };
    let found = tail
        .windows(watch.pattern.len().max(1))
        .any(|w| w == watch.pattern.as_slice());
    let keep = watch.pattern.len().saturating_sub(1);
    if found {
        if let Some(w) = slot.take() {
            drop(slot);
            (w.hook)();
        }
        tail.clear();
    } else if tail.len() > keep {
        tail.drain(..tail.len() - keep);
    }
}
