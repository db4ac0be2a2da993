//! A private bus of type SYSTEM with the SHIPPED policy file, and
//! `postfachd --system` on it as an unprivileged system user: the world
//! the access and attack tests must hold in (ARCHITECTURE.md "The D-Bus API", §6).
//!
//! The bus config is Debian 12's `system.conf` default policy (deny every
//! method call and name unless a policy file allows it; no eavesdropping)
//! plus `dbus/org.postfach.Postfach1.conf` as shipped, with one change:
//! the user that may own the name is `postfach-test-daemon`
//! (`POSTFACH_TEST_UNIX_DAEMON`, made by scripts/testenv) instead of the
//! package's `postfach`. The message size limits are dbus-daemon's own
//! defaults for a system bus (no `<limit>` elements), as on a real machine.
//! Callers are real other Unix users ([`busctl`], [`super::as_user`]); the
//! test process itself is root, which the shipped policy lets call too.

use super::{unique, Env};
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The well-known name the daemon owns.
pub const NAME: &str = "org.postfach.Postfach1";

/// The Unix user postfachd runs as on the system bus.
pub fn daemon_user() -> String {
    std::env::var("POSTFACH_TEST_UNIX_DAEMON").unwrap_or_else(|_| {
        panic!("POSTFACH_TEST_UNIX_DAEMON is not set: run the tests with scripts/test")
    })
}

/// A short directory under the run dir, open to the other test users.
pub fn open_dir(prefix: &str) -> PathBuf {
    let dir = Env::get().dir.join(unique(prefix));
    fs::create_dir(&dir).expect("create a test dir");
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).expect("chmod a test dir");
    dir
}

/// `dir` and everything in it handed to the Unix user `user`.
pub fn give_to(dir: &Path, user: &str) {
    let out = Command::new("chown")
        .arg("-R")
        .arg(format!("{user}:"))
        .arg(dir)
        .output()
        .expect("run chown");
    assert!(
        out.status.success(),
        "chown: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The shipped policy file with only its owning user replaced.
fn shipped_policy() -> String {
    let shipped = fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/dbus/org.postfach.Postfach1.conf"
    ))
    .expect("read the shipped policy file");
    assert_eq!(
        shipped.matches("user=\"postfach\"").count(),
        1,
        "the shipped policy names its owning user once"
    );
    shipped.replace("user=\"postfach\"", &format!("user=\"{}\"", daemon_user()))
}

/// A running `dbus-daemon` of type system.
pub struct SystemBus {
    child: Mutex<Option<Child>>,
    address: String,
    dir: PathBuf,
}

impl SystemBus {
    pub fn start() -> Arc<SystemBus> {
        let dir = open_dir("sb");
        let policy = dir.join("org.postfach.Postfach1.conf");
        fs::write(&policy, shipped_policy()).expect("write the policy");
        let conf = dir.join("system.conf");
        let template = include_str!("../env/dbus-system.conf");
        fs::write(&conf, template.replace("@D@", &dir.to_string_lossy()))
            .expect("write the bus config");
        let mut child = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", conf.display()))
            .args(["--nofork", "--print-address=1"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start dbus-daemon");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("dbus-daemon stdout");
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the bus address");
        assert!(!line.trim().is_empty(), "dbus-daemon printed no address");
        Arc::new(SystemBus {
            child: Mutex::new(Some(child)),
            address: line.trim().to_string(),
            dir,
        })
    }

    pub fn address(&self) -> &str {
        &self.address
    }

    /// SIGKILL the bus daemon: every connection to it ends at once.
    pub fn kill(&self) {
        if let Some(mut c) = self.child.lock().unwrap().take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Whether `name` has an owner (asked as root).
    pub fn has_owner(&self, name: &str) -> bool {
        let out = Command::new("dbus-send")
            .arg(format!("--bus={}", self.address))
            .args([
                "--print-reply",
                "--dest=org.freedesktop.DBus",
                "/org/freedesktop/DBus",
                "org.freedesktop.DBus.NameHasOwner",
            ])
            .arg(format!("string:{name}"))
            .output()
            .expect("run dbus-send");
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("boolean true")
    }

    /// A zbus connection of the test process (root: an admin).
    pub async fn connect(&self) -> zbus::Connection {
        zbus::connection::Builder::address(self.address())
            .build()
            .await
            .expect("connect to the system test bus")
    }

    /// `busctl --address=… ARGS` as the Unix user `user`.
    pub fn busctl(&self, user: &str, args: &[&str]) -> Output {
        let mut cmd = Command::new("busctl");
        cmd.arg(format!("--address={}", self.address)).args(args);
        super::as_user(user, &cmd).output().expect("run busctl")
    }
}

impl Drop for SystemBus {
    fn drop(&mut self) {
        self.kill();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// `postfachd --system` on a [`SystemBus`], as [`daemon_user`].
pub struct SysDaemon {
    child: Option<Child>,
    bus: Arc<SystemBus>,
    log: PathBuf,
    dir: PathBuf,
}

impl SysDaemon {
    /// Starts the daemon with `config_toml` and a state directory of its
    /// own (or `state`, which must belong to [`daemon_user`]), and waits
    /// (≤ `within`) until it owns its name.
    pub fn start(
        bus: Arc<SystemBus>,
        config_toml: &str,
        state: Option<&Path>,
        within: Duration,
    ) -> SysDaemon {
        let dir = open_dir("sd");
        let config = dir.join("postfachd.toml");
        fs::write(&config, config_toml).expect("write the daemon config");
        let state = match state {
            Some(s) => s.to_path_buf(),
            None => {
                let s = dir.join("state");
                fs::create_dir(&s).expect("create the state dir");
                give_to(&s, &daemon_user());
                fs::set_permissions(&s, fs::Permissions::from_mode(0o700)).expect("chmod");
                s
            }
        };
        let log = dir.join("postfachd.log");
        let file = fs::File::create(&log).expect("create the daemon log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_postfachd"));
        cmd.arg("--system")
            .arg("--state-dir")
            .arg(&state)
            .arg("--config")
            .arg(&config)
            .env("DBUS_SYSTEM_BUS_ADDRESS", bus.address())
            .env_remove("JOURNAL_STREAM")
            .env_remove("NOTIFY_SOCKET");
        let child = super::as_user(&daemon_user(), &cmd)
            .stdout(file.try_clone().expect("dup the log"))
            .stderr(file)
            .spawn()
            .expect("start postfachd");
        let mut d = SysDaemon {
            child: Some(child),
            bus,
            log,
            dir,
        };
        let deadline = Instant::now() + within;
        while !d.bus.has_owner(NAME) {
            if let Some(status) = d.try_wait() {
                panic!(
                    "postfachd exited during start ({status}); log:\n{}",
                    d.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "postfachd did not own {NAME} within {within:?}; log:\n{}",
                d.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        d
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("the daemon runs").id()
    }

    pub fn bus(&self) -> &Arc<SystemBus> {
        &self.bus
    }

    /// The exit status once it has exited.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        let status = self.child.as_mut()?.try_wait().expect("poll postfachd")?;
        self.child = None;
        Some(status)
    }

    /// Waits up to `limit` for the daemon to exit on its own.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(s) = self.try_wait() {
                return Some(s);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Everything the daemon logged so far.
    pub fn log(&self) -> String {
        let mut bytes = Vec::new();
        if let Ok(mut f) = fs::File::open(&self.log) {
            let _ = f.read_to_end(&mut bytes);
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Resident memory in KiB now (VmRSS).
    pub fn rss_kb(&self) -> u64 {
        let status = fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("read /proc/PID/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/PID/status")
    }
}

impl Drop for SysDaemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "---- postfachd log ({}):\n{}",
                self.log.display(),
                self.log()
            );
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}
