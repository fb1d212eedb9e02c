//! strace attached to the running daemon: to count its system calls, to
//! hold one at an exact point (a crash right after it), or to stall the
//! disk (delayed fsync), as a dying SD card does.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use super::have;

/// strace, and whether it can be used here.
pub fn available() -> Result<(), String> {
    if !have("strace") {
        return Err("needs strace (apt-get install strace)".into());
    }
    Ok(())
}

/// strace attached to every thread of a process.
pub struct Strace {
    child: Option<Child>,
    out: PathBuf,
}

impl Strace {
    /// Attaches `strace -f ARGS` to `pid`, writing to `out`; returns once
    /// strace says it is attached.
    pub fn attach(pid: i32, args: &[&str], out: &Path) -> Strace {
        let mut child = Command::new("strace")
            .args(["-f", "-p", &pid.to_string(), "-o"])
            .arg(out)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start strace");
        let stderr = child.stderr.take().expect("strace's stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("attached") {
                    let _ = tx.send(());
                }
            }
        });
        let strace = Strace {
            child: Some(child),
            out: out.to_path_buf(),
        };
        assert!(
            rx.recv_timeout(Duration::from_secs(10)).is_ok(),
            "strace did not attach to {pid}"
        );
        strace
    }

    /// The lines strace wrote so far.
    pub fn lines(&self) -> Vec<String> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect()
    }

    /// Detaches (SIGTERM to strace, which lets the process go on).
    pub fn detach(&mut self) {
        if let Some(mut c) = self.child.take() {
            let pid = nix::unistd::Pid::from_raw(c.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let _ = c.wait();
        }
    }
}

impl Drop for Strace {
    fn drop(&mut self) {
        self.detach();
    }
}
