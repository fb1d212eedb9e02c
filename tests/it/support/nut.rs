//! A real upsd with dummy-ups drivers on loopback, and a watch on what it
//! serves.

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::{wait_for, workdir};

/// Where this distribution keeps NUT's drivers and upsd.
pub fn nut_bin() -> Option<PathBuf> {
    ["/lib/nut", "/usr/lib/nut"]
        .iter()
        .map(PathBuf::from)
        .find(|d| d.join("dummy-ups").exists() && d.join("upsd").exists())
}

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
        Nut::start_listening(data_file, names, port, &[])
    }

    /// The same, with upsd listening on `addresses` too (the host side of
    /// test namespaces' veth pairs, for clients inside them).
    pub fn start_listening(
        data_file: &Path,
        names: &[&str],
        port: u16,
        addresses: &[String],
    ) -> Nut {
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
        let mut listen = format!("LISTEN 127.0.0.1 {port}\n");
        for a in addresses {
            listen.push_str(&format!("LISTEN {a} {port}\n"));
        }
        fs::write(etc.join("upsd.conf"), listen).unwrap();
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
