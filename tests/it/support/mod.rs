//! Test fixtures that run the real things: network namespaces with veth
//! pairs on 10.231.0.0/16 (with a blackhole guard route), a real upsd with
//! dummy-ups drivers on loopback, the real fakeups binary with an sd_notify
//! socket of the test's own. One file per fixture; this one has what they
//! all share: skipping, running commands, polling, scratch directories.
//!
//! Tests that need root, namespaces or NUT skip with a printed reason on a
//! developer machine and fail under CI=true.

pub mod ctl;
pub mod daemon;
pub mod faketime;
pub mod logs;
pub mod nas;
pub mod netns;
pub mod notify;
pub mod nut;
pub mod receiver;
pub mod strace;
pub mod tmpfs;

use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// The binaries under test. By default the ones cargo built for this run;
/// with `FAKEUPS_TEST_BIN_DIR` the ones in that directory (the release
/// binaries of a package, e.g. for ARM), started through the words of
/// `FAKEUPS_TEST_RUNNER` (e.g. `qemu-arm-static -cpu arm1176`).
#[derive(Debug, Clone, Copy)]
pub enum Bin {
    Fakeups,
    Fakeupsctl,
}

impl Bin {
    fn path(self) -> PathBuf {
        let (name, built) = match self {
            Bin::Fakeups => ("fakeups", env!("CARGO_BIN_EXE_fakeups")),
            Bin::Fakeupsctl => ("fakeupsctl", env!("CARGO_BIN_EXE_fakeupsctl")),
        };
        match std::env::var_os("FAKEUPS_TEST_BIN_DIR") {
            Some(dir) => PathBuf::from(dir).join(name),
            None => PathBuf::from(built),
        }
    }

    /// The command line that starts it: the runner's words, then the binary.
    pub fn argv(self) -> Vec<OsString> {
        let runner = std::env::var("FAKEUPS_TEST_RUNNER").unwrap_or_default();
        let mut argv: Vec<OsString> = runner.split_whitespace().map(OsString::from).collect();
        argv.push(self.path().into_os_string());
        argv
    }

    /// A command that runs it.
    pub fn command(self) -> Command {
        let argv = self.argv();
        let mut c = Command::new(&argv[0]);
        c.args(&argv[1..]);
        c
    }
}

pub const FAKEUPS: Bin = Bin::Fakeups;
pub const FAKEUPSCTL: Bin = Bin::Fakeupsctl;

/// Whether this run is CI, where nothing may be skipped.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Skips the calling test with a printed reason, or fails it under CI=true.
/// Use through `require!`.
pub fn skip(test: &str, reason: &str) {
    if in_ci() {
        panic!("{test}: cannot run under CI=true: {reason}");
    }
    eprintln!("SKIPPED {test}: {reason}");
}

/// `require!(root_netns_and_nut(), "name")`: return from the test when the
/// check gives a reason not to run.
macro_rules! require {
    ($check:expr, $test:expr) => {
        if let Err(reason) = $check {
            $crate::support::skip($test, &reason);
            return;
        }
    };
}
pub(crate) use require;

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

pub fn have(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Root, for raw ICMP on loopback where no namespace is needed.
pub fn root() -> Result<(), String> {
    if is_root() {
        Ok(())
    } else {
        Err("needs root for raw ICMP".into())
    }
}

/// Root and iproute2, for network namespaces.
pub fn root_and_netns() -> Result<(), String> {
    if !is_root() {
        return Err("needs root for network namespaces and raw ICMP".into());
    }
    if !have("ip") {
        return Err("needs `ip` (apt-get install iproute2)".into());
    }
    Ok(())
}

/// Root, namespaces and a NUT server (nut-server, nut-client).
pub fn root_netns_and_nut() -> Result<(), String> {
    root_and_netns()?;
    if nut::nut_bin().is_none() {
        return Err("needs NUT's dummy-ups and upsd (apt-get install nut-server)".into());
    }
    if !have("upsc") {
        return Err("needs upsc (apt-get install nut-client)".into());
    }
    Ok(())
}

pub fn run(cmd: &str, args: &[&str]) -> Output {
    Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd}: {e}"))
}

pub fn must(cmd: &str, args: &[&str]) {
    let out = run(cmd, args);
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Polls `f` every `every` until it gives Some or `timeout` passes.
pub fn wait_for<T>(
    timeout: Duration,
    every: Duration,
    mut f: impl FnMut() -> Option<T>,
) -> Option<T> {
    let end = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= end {
            return None;
        }
        thread::sleep(every);
    }
}

/// A scratch directory that user nut (and nobody) can enter.
pub fn workdir() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("fakeups-test-")
        .tempdir()
        .expect("temp dir");
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
    dir
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
