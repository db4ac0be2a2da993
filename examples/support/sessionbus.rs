//! A private D-Bus session bus for the benches that talk to a real
//! postfachd: `dbus-daemon --session --fork`, stopped when dropped.

use std::process::{Command, Stdio};

pub struct SessionBus {
    pub address: String,
    pid: i32,
}

impl SessionBus {
    pub fn start() -> Result<SessionBus, Box<dyn std::error::Error>> {
        let out = Command::new("dbus-daemon")
            .args(["--session", "--fork", "--print-address=1", "--print-pid=1"])
            .stdout(Stdio::piped())
            .output()?;
        let text = String::from_utf8(out.stdout)?;
        let mut lines = text.lines();
        let address = lines
            .next()
            .ok_or("dbus-daemon printed no address")?
            .to_string();
        let pid = lines
            .next()
            .ok_or("dbus-daemon printed no pid")?
            .trim()
            .parse()?;
        Ok(SessionBus { address, pid })
    }
}

impl Drop for SessionBus {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.pid),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
}

/// Stop a daemon the way systemd does (SIGTERM) and reap it.
pub fn stop(child: &mut std::process::Child) {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = child.wait();
}
