//! The data file every dummy-ups section reads: the full variable set,
//! written atomically so the driver never sees it missing or half-written.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use crate::core::Published;
use crate::paths::MACHINE_ID;
use crate::sys::atomic_file::{Sync, WriteError, write_atomically};

/// What the file says about the device besides the battery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub serial: String,
}

impl Identity {
    /// A serial that is stable on this machine and differs between machines:
    /// a hash of /etc/machine-id (or, without one, of the host name), never
    /// the machine id itself.
    pub fn of_this_machine() -> Identity {
        let seed = fs::read_to_string(MACHINE_ID)
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .or_else(|| {
                nix::unistd::gethostname()
                    .ok()
                    .map(|h| h.to_string_lossy().into_owned())
            })
            .unwrap_or_default();
        Identity {
            serial: serial_from_seed(&seed),
        }
    }
}

/// `FU` and 12 hex digits of a 64-bit FNV-1a hash of the seed; never all zeros.
pub fn serial_from_seed(seed: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in b"fakeups-serial:".iter().chain(seed.as_bytes()) {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let digits = hash & 0xffff_ffff_ffff;
    format!("FU{:012X}", digits.max(1))
}

/// The text of the data file: every variable, every time, none empty.
pub fn render(p: &Published, id: &Identity) -> String {
    let mut out = String::with_capacity(256);
    let lines: [(&str, String); 8] = [
        ("ups.status", p.status.as_nut().to_string()),
        ("battery.charge", p.charge.to_string()),
        ("battery.runtime", p.runtime.to_string()),
        ("battery.charge.low", p.charge_low.to_string()),
        ("battery.runtime.low", p.runtime_low.to_string()),
        ("ups.mfr", "fakeups".to_string()),
        ("ups.model", "Virtual UPS (sentinel ping)".to_string()),
        ("ups.serial", id.serial.clone()),
    ];
    for (name, value) in lines {
        // Values are ours: no quote, no newline, never empty.
        debug_assert!(!value.is_empty() && !value.contains(['"', '\n']));
        let _ = writeln!(out, "{name}: {value}");
    }
    out
}

/// The data file's contents, kept so that only a change is written.
#[derive(Debug)]
pub struct DataFile {
    path: PathBuf,
    identity: Identity,
    last: Option<Published>,
}

/// One version of the data file, to be written off the main loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataWrite {
    pub path: PathBuf,
    pub text: String,
}

impl DataWrite {
    /// Writes it atomically, without fsync: dummy-ups reads the kernel's
    /// copy, and after a reboot fakeups writes the file before the drivers
    /// start. On the default tmpfs (/run/fakeups) there is no disk at all.
    pub fn write(&self) -> Result<(), WriteError> {
        write_atomically(&self.path, self.text.as_bytes(), 0o644, Sync::Volatile)
    }
}

impl DataFile {
    pub fn new(path: PathBuf, identity: Identity) -> DataFile {
        DataFile {
            path,
            identity,
            last: None,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file to write for `p`, unless it is what was last given.
    pub fn next(&mut self, p: &Published) -> Option<DataWrite> {
        if self.last.as_ref() == Some(p) {
            return None;
        }
        self.last = Some(*p);
        Some(DataWrite {
            path: self.path.clone(),
            text: render(p, &self.identity),
        })
    }

    /// Writes to `path` from now on (a reload changed `nut.data-file`); the
    /// next version is written in any case.
    pub fn move_to(&mut self, path: PathBuf) {
        self.path = path;
        self.last = None;
    }

    /// Forgets what was given (its write failed), so the next version is
    /// written in any case.
    pub fn invalidate(&mut self) {
        self.last = None;
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;
    use crate::core::Status;

    fn published(status: Status) -> Published {
        Published {
            status,
            charge: 74,
            runtime: 222,
            charge_low: 60,
            runtime_low: 180,
        }
    }

    #[test]
    fn renders_the_full_set() {
        let id = Identity {
            serial: "FU0123456789AB".into(),
        };
        assert_eq!(
            render(&published(Status::OnBattery), &id),
            "ups.status: OB\nbattery.charge: 74\nbattery.runtime: 222\n\
             battery.charge.low: 60\nbattery.runtime.low: 180\nups.mfr: fakeups\n\
             ups.model: Virtual UPS (sentinel ping)\nups.serial: FU0123456789AB\n"
        );
        assert!(render(&published(Status::LowBattery), &id).starts_with("ups.status: OB LB\n"));
    }

    #[test]
    fn serial_is_stable_distinct_and_not_zero() {
        let a = serial_from_seed("0123456789abcdef0123456789abcdef");
        assert_eq!(a, serial_from_seed("0123456789abcdef0123456789abcdef"));
        assert_ne!(a, serial_from_seed("fedcba9876543210fedcba9876543210"));
        assert_eq!(a.len(), 14);
        assert!(a.starts_with("FU") && !a.ends_with("000000000000"));
        assert_ne!(serial_from_seed(""), "FU000000000000");
    }

    #[test]
    fn publish_writes_atomically_only_on_change() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/fakeups.dev");
        let id = Identity {
            serial: "FU1".into(),
        };
        let mut f = DataFile::new(path.clone(), id);
        f.next(&published(Status::Online)).unwrap().write().unwrap();
        assert_eq!(f.next(&published(Status::Online)), None);
        f.next(&published(Status::OnBattery))
            .unwrap()
            .write()
            .unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("ups.status: OB\n"));
        let meta = fs::metadata(&path).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o644);
        // No temporary file is left behind.
        let names: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("fakeups.dev")]);
        f.invalidate();
        assert!(f.next(&published(Status::OnBattery)).is_some());
    }
}
