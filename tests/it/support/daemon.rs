//! The real fakeups daemon: its configuration, the process, and its data
//! file.

use std::collections::HashMap;
use std::fs;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::ctl::ctl_as;
use super::notify::NotifySocket;
use super::{FAKEUPS, wait_for};

/// A test configuration with short timings.
pub struct TestConfig {
    pub sentinels: Vec<String>,
    pub quorum: String,
    pub interval: &'static str,
    pub timeout: &'static str,
    pub on_battery_after: &'static str,
    pub online_after: &'static str,
    pub runtime: &'static str,
    pub low_runtime: &'static str,
    pub upsd: String,
    pub ups: Vec<String>,
}

impl TestConfig {
    pub fn new(sentinels: &[String]) -> TestConfig {
        TestConfig {
            sentinels: sentinels.to_vec(),
            quorum: "\"all\"".into(),
            interval: "200ms",
            timeout: "150ms",
            on_battery_after: "2s",
            online_after: "1s",
            runtime: "6s",
            low_runtime: "3s",
            upsd: String::new(),
            ups: vec!["fakeups".into()],
        }
    }

    pub fn render(&self, dir: &Path) -> String {
        let list = |v: &[String]| {
            v.iter()
                .map(|s| format!("{s:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        format!(
            "sentinels = [{sentinels}]\n\
             state-directory = \"{dir}/state\"\n\
             [detection]\ninterval = \"{interval}\"\ntimeout = \"{timeout}\"\nquorum = {quorum}\n\
             on-battery-after = \"{oba}\"\nonline-after = \"{ola}\"\n\
             [battery]\nruntime = \"{runtime}\"\nlow-runtime = \"{low}\"\nrecharge-time = \"1h\"\n\
             [pause]\ndefault-duration = \"1h\"\n\
             [nut]\ndata-file = \"{dir}/lib/fakeups.dev\"\nupsd = \"{upsd}\"\nups = [{ups}]\n\
             [log]\nfile = \"{dir}/log/fakeups.log\"\nlevel = \"debug\"\n\
             [control]\nsocket = \"{dir}/run/control.sock\"\n",
            sentinels = list(&self.sentinels),
            dir = dir.display(),
            interval = self.interval,
            timeout = self.timeout,
            quorum = self.quorum,
            oba = self.on_battery_after,
            ola = self.online_after,
            runtime = self.runtime,
            low = self.low_runtime,
            upsd = self.upsd,
            ups = list(&self.ups),
        )
    }
}

/// The real fakeups daemon, started in its own work directory.
pub struct Daemon {
    pub dir: PathBuf,
    pub config: PathBuf,
    pub child: Option<Child>,
    pub notify: NotifySocket,
    stderr_path: PathBuf,
    prefix: Vec<String>,
    env: Vec<(String, String)>,
}

impl Daemon {
    /// Writes `cfg` to DIR/fakeups.toml, starts the daemon on it and waits
    /// for READY=1.
    pub fn start_ready(dir: &Path, cfg: &TestConfig) -> Daemon {
        let daemon = Daemon::start_with(dir, &cfg.render(dir), &[]);
        daemon.wait_ready();
        daemon
    }

    /// The same, run through `prefix` (e.g. `ip netns exec NS`).
    pub fn start_with(dir: &Path, config: &str, prefix: &[&str]) -> Daemon {
        Daemon::start_env(dir, config, prefix, &[])
    }

    /// The same, with variables added to its environment (e.g.
    /// WATCHDOG_USEC, as systemd sets it).
    pub fn start_env(dir: &Path, config: &str, prefix: &[&str], env: &[(&str, &str)]) -> Daemon {
        let path = dir.join("fakeups.toml");
        fs::write(&path, config).unwrap();
        let mut d = Daemon {
            dir: dir.to_path_buf(),
            config: path,
            child: None,
            notify: NotifySocket::bind(dir),
            stderr_path: dir.join("stderr.log"),
            prefix: prefix.iter().map(|s| s.to_string()).collect(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        d.spawn();
        d
    }

    pub fn spawn(&mut self) {
        let stderr = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.stderr_path)
            .unwrap();
        let mut cmd = match self.prefix.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).args(FAKEUPS.argv());
                c
            }
            None => FAKEUPS.command(),
        };
        cmd.arg("--config")
            .arg(&self.config)
            .env("NOTIFY_SOCKET", &self.notify.path)
            .env_remove("JOURNAL_STREAM")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        self.child = Some(cmd.spawn().expect("start fakeups"));
    }

    /// Starts the daemon again (after a stop or kill) and waits for its READY=1.
    pub fn restart(&mut self) {
        let seen = self.notify.messages().len();
        self.spawn();
        assert!(
            self.notify
                .wait_line("READY=1", seen, Duration::from_secs(10))
                .is_some(),
            "no READY=1 after the restart; stderr:\n{}",
            self.stderr()
        );
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().map_or(0, |c| c.id() as i32)
    }

    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid()), sig).expect("kill");
    }

    /// Waits for READY=1 (the first round done and the data file written).
    pub fn wait_ready(&self) {
        assert!(
            self.notify
                .wait_line("READY=1", 0, Duration::from_secs(10))
                .is_some(),
            "no READY=1 from fakeups; stderr:\n{}",
            self.stderr()
        );
    }

    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and the exit status.
    pub fn stop(&mut self) -> ExitStatus {
        self.signal(nix::sys::signal::Signal::SIGTERM);
        let mut c = self.child.take().expect("running");
        wait_for(Duration::from_secs(10), Duration::from_millis(20), || {
            c.try_wait().ok().flatten()
        })
        .unwrap_or_else(|| {
            let _ = c.kill();
            panic!("fakeups did not stop on SIGTERM")
        })
    }

    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    pub fn stderr(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = fs::File::open(&self.stderr_path) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }

    pub fn data_file(&self) -> PathBuf {
        self.dir.join("lib/fakeups.dev")
    }

    pub fn log_file(&self) -> PathBuf {
        self.dir.join("log/fakeups.log")
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.log_file()).unwrap_or_default()
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.join("run/control.sock")
    }

    /// Runs `fakeupsctl --socket SOCKET ARGS` as root.
    pub fn ctl(&self, args: &[&str]) -> Output {
        ctl_as(&self.socket(), args, None)
    }

    /// Waits until the log has a line containing `needle`; returns it.
    pub fn wait_log(&self, needle: &str, timeout: Duration) -> Option<String> {
        self.wait_log_after(needle, 0, timeout)
    }

    /// How many log lines contain `needle` now.
    pub fn log_count(&self, needle: &str) -> usize {
        self.log().lines().filter(|l| l.contains(needle)).count()
    }

    /// Waits for a line containing `needle` beyond the first `seen` of them.
    pub fn wait_log_after(&self, needle: &str, seen: usize, timeout: Duration) -> Option<String> {
        wait_for(timeout, Duration::from_millis(50), || {
            self.log()
                .lines()
                .filter(|l| l.contains(needle))
                .nth(seen)
                .map(String::from)
        })
    }

    /// The data file as a map, or an empty map while it is missing.
    pub fn data(&self) -> HashMap<String, String> {
        read_data_file(&self.data_file())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill9();
        if thread::panicking() {
            eprintln!(
                "--- fakeups stderr ({}):\n{}",
                self.stderr_path.display(),
                self.stderr()
            );
        }
    }
}

pub fn read_data_file(path: &Path) -> HashMap<String, String> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Records every change of `ups.status` in the data file, polled every 10 ms.
pub struct DataWatch {
    seen: Arc<Mutex<Vec<(Instant, String, u64)>>>,
    stop: Arc<AtomicBool>,
}

impl DataWatch {
    pub fn start(path: PathBuf) -> DataWatch {
        let seen = Arc::new(Mutex::new(vec![]));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (seen.clone(), stop.clone());
        thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                let data = read_data_file(&path);
                if let Some(status) = data.get("ups.status") {
                    let runtime = data
                        .get("battery.runtime")
                        .and_then(|r| r.parse().ok())
                        .unwrap_or(0);
                    let mut v = s.lock().unwrap();
                    if v.last().is_none_or(|(_, last, _)| last != status) {
                        v.push((Instant::now(), status.clone(), runtime));
                    }
                }
                thread::sleep(Duration::from_millis(10));
            }
        });
        DataWatch { seen, stop }
    }

    /// The status changes seen: (time, status, battery.runtime).
    pub fn changes(&self) -> Vec<(Instant, String, u64)> {
        self.seen.lock().unwrap().clone()
    }

    pub fn first(&self, status: &str) -> Option<Instant> {
        self.changes()
            .iter()
            .find(|(_, s, _)| s == status)
            .map(|(t, _, _)| *t)
    }
}

impl Drop for DataWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
