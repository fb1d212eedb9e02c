//! libfaketime (Debian package faketime): the wall clock of one process
//! stepped as NTP steps a Raspberry Pi's clock at boot, while its monotonic
//! and boot clocks go on. Preloaded into the daemon with
//! FAKETIME_DONT_FAKE_MONOTONIC=1, which in libfaketime 0.9.10 leaves
//! CLOCK_MONOTONIC and CLOCK_BOOTTIME alone (without it both are faked with
//! the wall clock; measured with a C probe of all three clocks). The tests
//! check it from the daemon's own state file rather than trust it:
//! `Saved::shows_a_wall_step`.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Local, TimeDelta};

/// libfaketime preloaded through `env`, reading its offset from a file of
/// the test's own, re-read at every call (FAKETIME_NO_CACHE=1).
pub struct Faketime {
    lib: PathBuf,
    file: PathBuf,
}

/// Why a test of wall-clock steps does not run.
pub enum NoFaketime {
    /// The binaries run under an emulator (FAKEUPS_TEST_RUNNER): the host's
    /// libfaketime cannot be preloaded into them. Not a failure, in CI
    /// either: the native run of the same tests covers the code.
    Emulated(String),
    /// libfaketime is not installed: skipped, or a failure under CI=true.
    Missing(String),
}

impl Faketime {
    /// libfaketime for a daemon in `dir`, its offset "+0" for now.
    pub fn new(dir: &Path) -> Result<Faketime, NoFaketime> {
        let runner = std::env::var("FAKEUPS_TEST_RUNNER").unwrap_or_default();
        if !runner.trim().is_empty() {
            return Err(NoFaketime::Emulated(format!(
                "the binaries run under FAKEUPS_TEST_RUNNER ({runner}): the host's libfaketime \
                 cannot be preloaded into an emulated binary (a library of another architecture; \
                 the armhf binary is static, with musl); the native run covers wall-clock steps"
            )));
        }
        let Some(lib) = library() else {
            return Err(NoFaketime::Missing(
                "needs libfaketime (apt-get install faketime)".into(),
            ));
        };
        let ft = Faketime {
            lib,
            file: dir.join("faketime"),
        };
        ft.step("+0");
        Ok(ft)
    }

    /// libfaketime for the test `test`, or None when it cannot run (the
    /// reason printed; a failure under CI=true when it is missing).
    pub fn for_test(test: &str, dir: &Path) -> Option<Faketime> {
        match Faketime::new(dir) {
            Ok(ft) => Some(ft),
            Err(NoFaketime::Emulated(why)) => {
                eprintln!("SKIPPED {test}: {why}");
                None
            }
            Err(NoFaketime::Missing(why)) => {
                super::skip(test, &why);
                None
            }
        }
    }

    /// The words that run a command with it: `env LD_PRELOAD=... ...`.
    pub fn prefix(&self) -> Vec<String> {
        vec![
            "env".into(),
            format!("LD_PRELOAD={}", self.lib.display()),
            format!("FAKETIME_TIMESTAMP_FILE={}", self.file.display()),
            "FAKETIME_NO_CACHE=1".into(),
            "FAKETIME_DONT_FAKE_MONOTONIC=1".into(),
        ]
    }

    /// Sets the wall clock's offset from now on, e.g. "+1d" or "-1d".
    pub fn step(&self, offset: &str) {
        fs::write(&self.file, format!("{offset}\n")).expect("write the faketime file");
    }
}

/// Debian's libfaketime for this machine's architecture, or one installed
/// from source under /usr/local.
fn library() -> Option<PathBuf> {
    let triple = match std::env::consts::ARCH {
        "x86_64" => "x86_64-linux-gnu",
        "aarch64" => "aarch64-linux-gnu",
        "arm" => "arm-linux-gnueabihf",
        other => other,
    };
    [
        format!("/usr/lib/{triple}/faketime/libfaketime.so.1"),
        "/usr/local/lib/faketime/libfaketime.so.1".to_string(),
    ]
    .into_iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
}

/// This process's wall and boot clocks (which libfaketime does not touch).
#[derive(Debug, Clone)]
pub struct Now {
    pub wall: DateTime<Local>,
    pub boot: Duration,
}

impl Now {
    pub fn take() -> Now {
        let boot =
            nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME).expect("CLOCK_BOOTTIME");
        Now {
            wall: Local::now(),
            boot: Duration::from(boot),
        }
    }
}

/// The daemon's wall and boot clocks as its last save of the state
/// (DIR/state/state.json) says they read, and the file's text.
#[derive(Debug)]
pub struct Saved {
    pub wall: DateTime<Local>,
    pub boot: Duration,
    pub text: String,
}

impl Saved {
    /// The last save, or None while there is none.
    pub fn read(dir: &Path) -> Option<Saved> {
        let text = fs::read_to_string(dir.join("state/state.json")).ok()?;
        let state: serde_json::Value = serde_json::from_str(&text).ok()?;
        Some(Saved {
            wall: state["saved_at"].as_str()?.parse().ok()?,
            boot: Duration::from_millis(state["since_boot_ms"].as_u64()?),
            text,
        })
    }

    /// Whether this save, made between `from` and `to` by our clocks, shows
    /// the model of an NTP step: the daemon's wall clock `step` away from
    /// ours, its boot clock not moved. Otherwise, what is wrong.
    pub fn shows_a_wall_step(&self, step: TimeDelta, from: &Now, to: &Now) -> Result<(), String> {
        let slack = Duration::from_secs(1);
        let tslack = TimeDelta::seconds(1);
        let boot_ok = from.boot.saturating_sub(slack) <= self.boot && self.boot <= to.boot + slack;
        let wall = self.wall - step;
        let wall_ok = from.wall - tslack <= wall && wall <= to.wall + tslack;
        match (boot_ok, wall_ok) {
            (true, true) => Ok(()),
            (false, _) => Err(format!(
                "the daemon's boot clock read {:?} at a save made between {:?} and {:?} on ours: \
                 libfaketime moved CLOCK_BOOTTIME too, which no NTP step does",
                self.boot, from.boot, to.boot
            )),
            (true, false) => Err(format!(
                "the daemon's wall clock read {} at a save made between {} and {} on ours, \
                 not {step} away: libfaketime did not step it (not preloaded: a static binary?)",
                self.wall, from.wall, to.wall
            )),
        }
    }
}
