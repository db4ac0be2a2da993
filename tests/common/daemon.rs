//! Running `postfachd` and `postfachctl` in tests, and calling as other
//! Unix users.
//!
//! Every [`Daemon`] gets its own [`TestBus`]: the bus name
//! `org.postfach.Postfach1` can have only one owner per bus, and tests run in
//! parallel. The buses use `tests/env/dbus.conf`, which admits every Unix
//! user, so [`as_user`] calls reach the daemon with their true credentials.

use super::{unique, Env};
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The well-known name the daemon owns (ARCHITECTURE.md "The D-Bus API").
pub const BUS_NAME: &str = "org.postfach.Postfach1";

/// How long a start may take until the bus name is owned.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a stop may take after SIGTERM (invariant 7: it must end).
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// A private `dbus-daemon` for one test (or one daemon and its restarts).
pub struct TestBus {
    child: Child,
    address: String,
    dir: PathBuf,
}

impl TestBus {
    pub fn start() -> Arc<TestBus> {
        let env = Env::get();
        let dir = make_dir(env, "b");
        let template = include_str!("../env/dbus.conf");
        let conf = dir.join("dbus.conf");
        fs::write(&conf, template.replace("@D@", &dir.to_string_lossy()))
            .expect("write the bus config");
        let mut child = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", conf.display()))
            .args(["--nofork", "--print-address=1"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start dbus-daemon");
        // The address is printed once the socket listens.
        let mut line = String::new();
        let stdout = child.stdout.take().expect("dbus-daemon stdout");
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the bus address");
        assert!(!line.trim().is_empty(), "dbus-daemon printed no address");
        Arc::new(TestBus {
            child,
            address: line.trim().to_string(),
            dir,
        })
    }

    pub fn address(&self) -> &str {
        &self.address
    }

    /// The bus daemon's process id (to stop and continue it: a slow bus).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether `name` has an owner on this bus.
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
}

impl Drop for TestBus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// A short directory under the run dir (unix socket paths must stay short),
/// open to the other test users.
fn make_dir(env: &Env, prefix: &str) -> PathBuf {
    let dir = env.dir.join(unique(prefix));
    fs::create_dir(&dir).expect("create a test dir");
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).expect("chmod a test dir");
    dir
}

/// A running `postfachd --session` on its own bus; killed when dropped.
pub struct Daemon {
    child: Option<Child>,
    bus: Arc<TestBus>,
    state_dir: PathBuf,
    config: PathBuf,
    log: PathBuf,
    dir: PathBuf,
}

impl Daemon {
    /// Starts the daemon on a new private bus and waits (≤ 10 s) until it
    /// owns its bus name.
    pub fn start(state_dir: &Path, config_toml: &str) -> Daemon {
        Daemon::start_on(TestBus::start(), state_dir, config_toml)
    }

    /// Like [`Daemon::start`], on a bus the test already has.
    pub fn start_on(bus: Arc<TestBus>, state_dir: &Path, config_toml: &str) -> Daemon {
        let env = Env::get();
        let dir = make_dir(env, "d");
        let config = dir.join("postfachd.toml");
        fs::write(&config, config_toml).expect("write the daemon config");
        let mut daemon = Daemon {
            child: None,
            bus,
            state_dir: state_dir.to_path_buf(),
            config,
            log: dir.join("postfachd.log"),
            dir,
        };
        daemon.spawn();
        daemon
    }

    fn spawn(&mut self) {
        assert!(self.child.is_none(), "the daemon is already running");
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open the daemon log");
        let child = Command::new(env!("CARGO_BIN_EXE_postfachd"))
            .arg("--session")
            .arg("--state-dir")
            .arg(&self.state_dir)
            .arg("--config")
            .arg(&self.config)
            .env("DBUS_SESSION_BUS_ADDRESS", self.bus.address())
            // Logs go to the file below, not to a journal of the test host.
            .env_remove("JOURNAL_STREAM")
            .env_remove("NOTIFY_SOCKET")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup the log file"))
            .stderr(log)
            .spawn()
            .expect("start postfachd");
        self.child = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.child_mut().try_wait().expect("poll postfachd") {
                self.child = None;
                panic!(
                    "postfachd exited during start ({status}); log:\n{}",
                    self.log()
                );
            }
            if self.bus.has_owner(BUS_NAME) {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "postfachd did not own {BUS_NAME} within {START_TIMEOUT:?}; log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn child_mut(&mut self) -> &mut Child {
        self.child.as_mut().expect("the daemon is not running")
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("the daemon is not running").id()
    }

    pub fn bus(&self) -> &Arc<TestBus> {
        &self.bus
    }

    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// Alive, still owning its bus name, and no panic in its log.
    pub fn assert_running(&self) {
        assert!(
            Path::new(&format!("/proc/{}", self.pid())).exists(),
            "postfachd died:\n{}",
            self.log()
        );
        assert!(self.bus.has_owner(BUS_NAME), "postfachd lost its bus name");
        assert!(!self.log().contains("panicked"), "{}", self.log());
    }

    /// Everything the daemon wrote to stdout/stderr so far (all starts).
    pub fn log(&self) -> String {
        let mut text = String::new();
        if let Ok(mut f) = fs::File::open(&self.log) {
            let mut bytes = Vec::new();
            let _ = f.read_to_end(&mut bytes);
            text = String::from_utf8_lossy(&bytes).into_owned();
        }
        text
    }

    /// SIGTERM, then waits (≤ 20 s) for the exit; panics if it hangs.
    pub fn stop(&mut self) -> ExitStatus {
        let pid = nix::unistd::Pid::from_raw(self.pid() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("send SIGTERM");
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            if let Some(status) = self.child_mut().try_wait().expect("poll postfachd") {
                self.child = None;
                return status;
            }
            if Instant::now() > deadline {
                self.kill9();
                panic!(
                    "postfachd did not stop within {STOP_TIMEOUT:?} of SIGTERM; log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: a crash, for the "nothing is lost" tests.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the daemon again with the same state dir, config and bus
    /// (after [`Daemon::stop`] or [`Daemon::kill9`]).
    pub fn restart(&mut self) {
        if self.child.is_some() {
            self.stop();
        }
        self.spawn();
    }

    /// `postfachctl --session ARGS` against this daemon.
    pub fn ctl_command(&self, args: &[&str]) -> Command {
        ctl_command(self.bus.address(), args)
    }

    pub fn ctl(&self, args: &[&str]) -> Output {
        self.ctl_command(args).output().expect("run postfachctl")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill9();
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

fn ctl_command(bus: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_postfachctl"));
    cmd.arg("--session")
        .args(args)
        .env("DBUS_SESSION_BUS_ADDRESS", bus)
        .stdin(Stdio::null());
    cmd
}

/// `postfachctl --session ARGS` on the run's shared bus (where no daemon
/// runs unless a test started one there with [`Daemon::start_on`]).
pub fn ctl(env: &Env, args: &[&str]) -> Output {
    ctl_command(&env.bus, args)
        .output()
        .expect("run postfachctl")
}

/// `cmd` run as the Unix user `user` with that user's own groups
/// (`setpriv --init-groups`), so a daemon sees its true uid and groups.
pub fn as_user(user: &str, cmd: &Command) -> Command {
    let account = nix::unistd::User::from_name(user)
        .expect("look up a Unix user")
        .unwrap_or_else(|| panic!("no Unix user {user}: run the tests with scripts/test"));
    let mut wrapped = Command::new("setpriv");
    wrapped
        .arg(format!("--reuid={}", account.uid))
        .arg(format!("--regid={}", account.gid))
        .arg("--init-groups")
        .arg("--")
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (key, value) in cmd.get_envs() {
        match value {
            Some(v) => wrapped.env(key, v),
            None => wrapped.env_remove(key),
        };
    }
    if let Some(dir) = cmd.get_current_dir() {
        wrapped.current_dir(dir);
    }
    wrapped.stdin(Stdio::null());
    wrapped
}
