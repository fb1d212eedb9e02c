//! Test fixtures that run the real things: network namespaces with veth
//! pairs on 10.231.0.0/16 (with a blackhole guard route), a real upsd with
//! dummy-ups drivers on loopback, the real fakeups binary with an sd_notify
//! socket of the test's own.
//!
//! Tests that need root, namespaces or NUT skip with a printed reason on a
//! developer machine and fail under CI=true.

#![allow(dead_code)]

use std::collections::HashMap;
use std::fs;
use std::io::Read as _;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

pub const FAKEUPS: &str = env!("CARGO_BIN_EXE_fakeups");
pub const FAKEUPSCTL: &str = env!("CARGO_BIN_EXE_fakeupsctl");

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

/// `require!(root_and_nut(), "name")`: return from the test when the check
/// gives a reason not to run.
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
    if nut_bin().is_none() {
        return Err("needs NUT's dummy-ups and upsd (apt-get install nut-server)".into());
    }
    if !have("upsc") {
        return Err("needs upsc (apt-get install nut-client)".into());
    }
    Ok(())
}

/// Where this distribution keeps NUT's drivers and upsd.
pub fn nut_bin() -> Option<PathBuf> {
    ["/lib/nut", "/usr/lib/nut"]
        .iter()
        .map(PathBuf::from)
        .find(|d| d.join("dummy-ups").exists() && d.join("upsd").exists())
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

// ---------------------------------------------------------------- netns

static NEXT_NS: AtomicU32 = AtomicU32::new(0);

/// A network namespace with one end of a veth pair: the host side is
/// 10.231.N.1, the namespace side 10.231.N.2. A blackhole route for the /24
/// (metric 4000) keeps its traffic off the default route when the link is down.
pub struct NetNs {
    pub name: String,
    pub index: u32,
    host_if: String,
    peer_if: String,
}

impl NetNs {
    pub fn new() -> NetNs {
        // Indexes 1..=199: the benchmark uses 200..=249 and the e2e test
        // 251..=254, so that they can run beside these tests.
        let base = std::process::id() % 199;
        for _ in 0..199 {
            let index = (base + NEXT_NS.fetch_add(1, Ordering::SeqCst)) % 199 + 1;
            let name = format!("fu{index}");
            // `ip netns add` fails when the name is taken (another test
            // process, or a leftover): try the next index then.
            if !run("ip", &["netns", "add", &name]).status.success() {
                continue;
            }
            let ns = NetNs {
                host_if: format!("fu{index}h"),
                peer_if: format!("fu{index}n"),
                name,
                index,
            };
            ns.setup();
            return ns;
        }
        panic!("no free test namespace index");
    }

    fn setup(&self) {
        let subnet = format!("10.231.{}.0/24", self.index);
        let _ = run("ip", &["link", "del", &self.host_if]);
        must(
            "ip",
            &[
                "link",
                "add",
                &self.host_if,
                "type",
                "veth",
                "peer",
                "name",
                &self.peer_if,
            ],
        );
        must("ip", &["link", "set", &self.peer_if, "netns", &self.name]);
        must(
            "ip",
            &[
                "addr",
                "add",
                &format!("{}/24", self.host_ip()),
                "dev",
                &self.host_if,
            ],
        );
        must("ip", &["link", "set", &self.host_if, "up"]);
        self.must_in(&[
            "ip",
            "addr",
            "add",
            &format!("{}/24", self.peer_ip()),
            "dev",
            &self.peer_if,
        ]);
        self.must_in(&["ip", "link", "set", &self.peer_if, "up"]);
        self.must_in(&["ip", "link", "set", "lo", "up"]);
        self.must_in(&["ip", "route", "add", "default", "via", &self.host_ip()]);
        let _ = run(
            "ip",
            &["route", "add", "blackhole", &subnet, "metric", "4000"],
        );
    }

    pub fn host_ip(&self) -> String {
        format!("10.231.{}.1", self.index)
    }

    pub fn peer_ip(&self) -> String {
        format!("10.231.{}.2", self.index)
    }

    pub fn must_in(&self, args: &[&str]) {
        let mut full = vec!["netns", "exec", &self.name];
        full.extend_from_slice(args);
        must("ip", &full);
    }

    /// A command that runs inside the namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }

    /// The outage: the namespace side of the link goes down.
    pub fn cut(&self) {
        self.must_in(&["ip", "link", "set", &self.peer_if, "down"]);
    }

    pub fn restore(&self) {
        self.must_in(&["ip", "link", "set", &self.peer_if, "up"]);
        // The default route went with the link; put it back.
        let mut args = vec!["netns", "exec", &self.name];
        let host = self.host_ip();
        args.extend_from_slice(&["ip", "route", "replace", "default", "via", &host]);
        must("ip", &args);
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = run("ip", &["netns", "del", &self.name]);
        let _ = run("ip", &["link", "del", &self.host_if]);
        let subnet = format!("10.231.{}.0/24", self.index);
        let _ = run(
            "ip",
            &["route", "del", "blackhole", &subnet, "metric", "4000"],
        );
    }
}

// ---------------------------------------------------------------- NUT

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A real upsd on 127.0.0.1 with one dummy-ups driver per UPS name, all
/// reading the same data file (`mode = dummy-loop`, `pollinterval = 1`).
pub struct Nut {
    pub dir: tempfile::TempDir,
    pub port: u16,
    bin: PathBuf,
    drivers: HashMap<String, Child>,
    upsd: Option<Child>,
}

impl Nut {
    /// Starts drivers for `names` and upsd. The data file must exist.
    pub fn start(data_file: &Path, names: &[&str]) -> Nut {
        Nut::start_on(data_file, names, free_port())
    }

    /// The same, with upsd on 127.0.0.1:`port`.
    pub fn start_on(data_file: &Path, names: &[&str], port: u16) -> Nut {
        let bin = nut_bin().expect("NUT binaries");
        let dir = workdir();
        let etc = dir.path().join("etc");
        let state = dir.path().join("state");
        fs::create_dir_all(&etc).unwrap();
        fs::create_dir_all(&state).unwrap();
        fs::set_permissions(&state, fs::Permissions::from_mode(0o770)).unwrap();
        let mut ups_conf = String::new();
        for name in names {
            ups_conf.push_str(&format!(
                "[{name}]\n  driver = dummy-ups\n  port = {}\n  mode = dummy-loop\n  pollinterval = 1\n  desc = \"fakeups test\"\n",
                data_file.display()
            ));
        }
        fs::write(etc.join("ups.conf"), ups_conf).unwrap();
        fs::write(etc.join("upsd.conf"), format!("LISTEN 127.0.0.1 {port}\n")).unwrap();
        fs::write(
            etc.join("upsd.users"),
            "[admin]\n  password = 123456\n  upsmon secondary\n\
             [monuser]\n  password = secret\n  upsmon secondary\n",
        )
        .unwrap();
        fs::set_permissions(etc.join("upsd.users"), fs::Permissions::from_mode(0o600)).unwrap();
        fs::write(etc.join("nut.conf"), "MODE=standalone\n").unwrap();
        let mut nut = Nut {
            dir,
            port,
            bin,
            drivers: HashMap::new(),
            upsd: None,
        };
        for name in names {
            nut.start_driver(name);
        }
        nut.start_upsd();
        let first = names.first().copied().unwrap_or("fakeups");
        // upsd says WAIT until the driver has sent its first data.
        let up = wait_for(Duration::from_secs(10), Duration::from_millis(100), || {
            nut.status(first).ok().filter(|s| s != "WAIT")
        });
        assert!(up.is_some(), "upsd never served {first}: {}", nut.logs());
        nut
    }

    fn command(&self, program: &str) -> Command {
        let mut c = Command::new(self.bin.join(program));
        let d = self.dir.path();
        c.env("NUT_CONFPATH", d.join("etc"))
            .env("NUT_STATEPATH", d.join("state"))
            .env("NUT_ALTPIDPATH", d.join("state"))
            .stdin(Stdio::null());
        c
    }

    fn log_file(&self, name: &str) -> fs::File {
        fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join(format!("{name}.log")))
            .unwrap()
    }

    pub fn start_driver(&mut self, name: &str) {
        let log = self.log_file(&format!("driver-{name}"));
        let child = self
            .command("dummy-ups")
            .args(["-a", name, "-u", "root", "-F"])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("dummy-ups");
        self.drivers.insert(name.to_string(), child);
        // The driver's socket must exist before upsd (re)connects to it.
        let sock = self
            .dir
            .path()
            .join("state")
            .join(format!("dummy-ups-{name}"));
        wait_for(Duration::from_secs(5), Duration::from_millis(50), || {
            sock.exists().then_some(())
        });
    }

    pub fn kill_driver(&mut self, name: &str) {
        if let Some(mut child) = self.drivers.remove(name) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn start_upsd(&mut self) {
        let log = self.log_file("upsd");
        let child = self
            .command("upsd")
            .args(["-u", "root", "-F"])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("upsd");
        self.upsd = Some(child);
    }

    pub fn stop_upsd(&mut self) {
        if let Some(mut child) = self.upsd.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `upsc NAME@127.0.0.1:PORT VAR`: the value, or upsc's error.
    pub fn var(&self, name: &str, var: &str) -> Result<String, String> {
        let out = Command::new("upsc")
            .arg(format!("{name}@{}", self.addr()))
            .arg(var)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run upsc: {e}"))?;
        let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if out.status.success() && !text.is_empty() {
            Ok(text)
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
        }
    }

    pub fn status(&self, name: &str) -> Result<String, String> {
        self.var(name, "ups.status")
    }

    pub fn logs(&self) -> String {
        let mut out = String::new();
        if let Ok(entries) = fs::read_dir(self.dir.path()) {
            for e in entries.flatten() {
                if e.path().extension().is_some_and(|x| x == "log") {
                    out.push_str(&format!(
                        "\n== {}\n{}",
                        e.path().display(),
                        fs::read_to_string(e.path()).unwrap_or_default()
                    ));
                }
            }
        }
        out
    }
}

impl Drop for Nut {
    fn drop(&mut self) {
        self.stop_upsd();
        let names: Vec<String> = self.drivers.keys().cloned().collect();
        for name in names {
            self.kill_driver(&name);
        }
    }
}

/// Watches upsd's `ups.status` for one UPS name and remembers every change
/// with the time it was first seen.
pub struct StatusWatch<'a> {
    nut: &'a Nut,
    name: String,
    pub seen: Vec<(Instant, String)>,
}

impl<'a> StatusWatch<'a> {
    pub fn new(nut: &'a Nut, name: &str) -> StatusWatch<'a> {
        StatusWatch {
            nut,
            name: name.to_string(),
            seen: vec![],
        }
    }

    fn poll(&mut self) -> String {
        let now = Instant::now();
        let s = self
            .nut
            .status(&self.name)
            .unwrap_or_else(|e| format!("error: {e}"));
        if self.seen.last().is_none_or(|(_, last)| *last != s) {
            self.seen.push((now, s.clone()));
        }
        s
    }

    /// Waits until upsd serves `want`; the time it was first seen.
    pub fn until(&mut self, want: &str, timeout: Duration) -> Option<Instant> {
        let end = Instant::now() + timeout;
        loop {
            let t = Instant::now();
            if self.poll() == want {
                return Some(t);
            }
            if Instant::now() >= end {
                return None;
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Watches for `d` and returns every status seen meanwhile.
    pub fn during(&mut self, d: Duration) -> Vec<String> {
        let end = Instant::now() + d;
        let mut all = vec![];
        while Instant::now() < end {
            let s = self.poll();
            if all.last() != Some(&s) {
                all.push(s);
            }
            thread::sleep(Duration::from_millis(100));
        }
        all
    }

    pub fn history(&self) -> String {
        let start = self.seen.first().map(|(t, _)| *t);
        self.seen
            .iter()
            .map(|(t, s)| {
                format!(
                    "+{:.2}s {s}",
                    start.map_or(0.0, |s0| t.duration_since(s0).as_secs_f64())
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

// ---------------------------------------------------------------- sd_notify

/// A NOTIFY_SOCKET of the test's own: collects what the daemon sends.
pub struct NotifySocket {
    pub path: PathBuf,
    messages: Arc<Mutex<Vec<(Instant, String)>>>,
    stop: Arc<AtomicBool>,
}

impl NotifySocket {
    pub fn bind(dir: &Path) -> NotifySocket {
        let path = dir.join("notify.sock");
        let sock = UnixDatagram::bind(&path).expect("notify socket");
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let messages = Arc::new(Mutex::new(vec![]));
        let stop = Arc::new(AtomicBool::new(false));
        let (m, s) = (messages.clone(), stop.clone());
        thread::spawn(move || {
            let mut buf = vec![0u8; 4096];
            while !s.load(Ordering::Relaxed) {
                if let Ok(n) = sock.recv(&mut buf) {
                    let text = String::from_utf8_lossy(&buf[..n]).to_string();
                    m.lock().unwrap().push((Instant::now(), text));
                }
            }
        });
        NotifySocket {
            path,
            messages,
            stop,
        }
    }

    pub fn messages(&self) -> Vec<(Instant, String)> {
        self.messages.lock().unwrap().clone()
    }

    /// Waits for a datagram that has the line `line` (e.g. "READY=1").
    pub fn wait_line(&self, line: &str, after: usize, timeout: Duration) -> Option<usize> {
        wait_for(timeout, Duration::from_millis(20), || {
            self.messages()
                .iter()
                .enumerate()
                .skip(after)
                .find(|(_, (_, m))| m.lines().any(|l| l == line))
                .map(|(i, _)| i)
        })
    }

    pub fn count_lines(&self, line: &str) -> usize {
        self.messages()
            .iter()
            .filter(|(_, m)| m.lines().any(|l| l == line))
            .count()
    }

    pub fn statuses(&self) -> Vec<String> {
        self.messages()
            .iter()
            .flat_map(|(_, m)| {
                m.lines()
                    .filter_map(|l| l.strip_prefix("STATUS="))
                    .map(String::from)
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}

impl Drop for NotifySocket {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

// ---------------------------------------------------------------- daemon

/// A test configuration with short timings; `extra` is appended verbatim
/// (TOML tables after the generated ones must not repeat their names).
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
        let path = dir.join("fakeups.toml");
        fs::write(&path, config).unwrap();
        let mut d = Daemon {
            dir: dir.to_path_buf(),
            config: path,
            child: None,
            notify: NotifySocket::bind(dir),
            stderr_path: dir.join("stderr.log"),
            prefix: prefix.iter().map(|s| s.to_string()).collect(),
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
                c.args(rest).arg(FAKEUPS);
                c
            }
            None => Command::new(FAKEUPS),
        };
        cmd.arg("--config")
            .arg(&self.config)
            .env("NOTIFY_SOCKET", &self.notify.path)
            .env_remove("JOURNAL_STREAM")
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

/// Checks that `log` has monolog lines with these level and message, in
/// this order; returns the missing one.
pub fn monolog_in_order(log: &str, expected: &[(&str, &str)]) -> Result<(), String> {
    let mut lines = log.lines();
    for (level, message) in expected {
        let found = lines.by_ref().any(|l| is_monolog(l, level, message));
        if !found {
            return Err(format!("no line {level}: {message} (in order) in:\n{log}"));
        }
    }
    Ok(())
}

/// `[YYYY-MM-DDTHH:MM:SS] LEVEL: message`, exactly.
pub fn is_monolog(line: &str, level: &str, message: &str) -> bool {
    let b = line.as_bytes();
    if b.len() < 22 || b[0] != b'[' || b[20] != b']' || b[21] != b' ' {
        return false;
    }
    let stamp = &line[1..20];
    let shape_ok = stamp.char_indices().all(|(i, c)| match i {
        4 | 7 => c == '-',
        10 => c == 'T',
        13 | 16 => c == ':',
        _ => c.is_ascii_digit(),
    });
    shape_ok && line[22..] == format!("{level}: {message}")
}

/// Runs fakeupsctl on `socket`, as root or (with `user`) through
/// `setpriv --reuid=nobody --regid=nogroup` and the given group list.
pub fn ctl_as(socket: &Path, args: &[&str], user: Option<&[&str]>) -> Output {
    let mut cmd = match user {
        None => Command::new(FAKEUPSCTL),
        Some(groups) => {
            let mut c = Command::new("setpriv");
            c.args(["--reuid=nobody", "--regid=nogroup"]);
            if groups.is_empty() {
                c.arg("--clear-groups");
            } else {
                c.arg(format!("--groups={}", groups.join(",")));
            }
            c.arg("--").arg(FAKEUPSCTL);
            c
        }
    };
    cmd.arg("--socket")
        .arg(socket)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run fakeupsctl")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `fakeupsctl status --json` as a JSON value.
pub fn status_json(socket: &Path) -> serde_json::Value {
    let out = ctl_as(socket, &["status", "--json"], None);
    assert!(out.status.success(), "status --json: {}", stderr(&out));
    serde_json::from_slice(&out.stdout).expect("status JSON")
}

/// Makes sure system group `fakeups` exists (the package creates it; a test
/// machine may not have it yet).
pub fn ensure_fakeups_group() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if nix::unistd::Group::from_name("fakeups")
            .ok()
            .flatten()
            .is_none()
        {
            must("groupadd", &["--system", "fakeups"]);
        }
    });
}
