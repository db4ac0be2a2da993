//! A small tmpfs of its own for the full-disk tests (`mount -t tmpfs`; the
//! tests run as root under scripts/test), and a ballast file that fills it.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A mounted tmpfs; unmounted when dropped (drop what uses it first).
pub struct Tmpfs {
    dir: PathBuf,
    _parent: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `bytes` bytes; panics (with the reason) if it cannot.
    pub fn mount(bytes: u64) -> Tmpfs {
        let parent = tempfile::tempdir().expect("a dir for the mount point");
        let dir = parent.path().join("fs");
        fs::create_dir(&dir).expect("create the mount point");
        // The full-disk tests need root (scripts/test runs them as root).
        run(Command::new("mount")
            .args(["-t", "tmpfs", "-o"])
            .arg(format!("size={bytes},mode=0700"))
            .arg("tmpfs")
            .arg(&dir));
        Tmpfs {
            dir,
            _parent: parent,
        }
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Mounts `dir` read-only over itself: new opens for writing fail
    /// with EROFS, files already open stay writable. Undone when dropped.
    pub fn bind_read_only(&self, dir: &Path) -> Bind {
        run(Command::new("mount").arg("--bind").arg(dir).arg(dir));
        let bind = Bind(dir.to_path_buf());
        run(Command::new("mount")
            .args(["-o", "remount,bind,ro"])
            .arg(dir));
        bind
    }

    /// Bytes still free for files.
    pub fn free(&self) -> u64 {
        let st = nix::sys::statvfs::statvfs(&self.dir).expect("statvfs");
        st.blocks_available() * st.fragment_size()
    }

    /// Writes a ballast file (real pages, not a sparse file) until only
    /// about `keep` bytes stay free; returns its path.
    pub fn fill_leaving(&self, keep: u64) -> PathBuf {
        let path = self.dir.join("ballast");
        let mut file = fs::File::create(&path).expect("create the ballast");
        let chunk = vec![0x5au8; 64 * 1024];
        while self.free() > keep + chunk.len() as u64 {
            file.write_all(&chunk).expect("write the ballast");
        }
        file.sync_all().expect("sync the ballast");
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

/// A bind mount; unmounted when dropped.
pub struct Bind(PathBuf);

impl Drop for Bind {
    fn drop(&mut self) {
        // Lazy: the store's read-only view still holds the file open there.
        run(Command::new("umount").arg("-l").arg(&self.0));
    }
}

fn run(cmd: &mut Command) {
    let out = cmd.output().expect("run mount");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
