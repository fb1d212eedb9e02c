//! A small tmpfs mounted for one test (the log directory of a full disk),
//! unmounted by its path when the test ends, whether it passed or not.

use std::fs;
use std::io::{ErrorKind, Write as _};
use std::path::{Path, PathBuf};

use super::{have, is_root, must, run};

/// Root and mount(8), to mount a tmpfs.
pub fn available() -> Result<(), String> {
    if !is_root() {
        return Err("needs root to mount a tmpfs".into());
    }
    if !have("mount") || !have("umount") {
        return Err("needs mount and umount (util-linux)".into());
    }
    Ok(())
}

/// A tmpfs of `size` bytes mounted at a path of the test's own.
pub struct Tmpfs {
    pub path: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (as mount's `size=`, e.g. "256k") at
    /// `path`, which is created first.
    pub fn mount(path: &Path, size: &str) -> Tmpfs {
        fs::create_dir_all(path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
        let path_text = path.to_str().expect("a test path is UTF-8");
        must(
            "mount",
            &[
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "fakeups-test",
                path_text,
            ],
        );
        Tmpfs {
            path: path.to_path_buf(),
        }
    }

    /// Writes the file `name` in whole pages until the file system is full
    /// (ENOSPC); returns its path.
    pub fn fill(&self, name: &str) -> PathBuf {
        let path = self.path.join(name);
        let mut f =
            fs::File::create(&path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
        let page = [0u8; 4096];
        loop {
            match f.write_all(&page) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::StorageFull => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => panic!("filling {}: {e}", path.display()),
            }
        }
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let path = self.path.to_string_lossy().into_owned();
        if !run("umount", &[&path]).status.success() {
            // Still busy (a process that has not exited yet): detach it.
            let _ = run("umount", &["-l", &path]);
        }
    }
}
