//! A NAS in a network namespace of its own: a real upsmon logged in to
//! the test's upsd over its veth as a secondary. When upsmon runs its
//! SHUTDOWNCMD the NAS "powers off": upsmon is gone (it exits after the
//! command, and is killed if it has not) and the namespace stops answering
//! ping. A UDP socket on port 9 inside the namespace is its network card:
//! a magic packet with its own MAC "powers it on" again (ping answered,
//! upsmon started), unless it is told to ignore the first ones.

use std::fs;
use std::net::UdpSocket;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::netns::NetNs;
use super::nut::nut_bin;
use super::workdir;

/// What the NAS saw and did.
#[derive(Debug, Default)]
pub struct NasLog {
    /// Magic packets with its own MAC, when they arrived.
    pub packets: Vec<Instant>,
    /// Anything else that reached port 9.
    pub other: usize,
    /// When upsmon ran SHUTDOWNCMD.
    pub shutdowns: Vec<Instant>,
    /// When a magic packet powered it on.
    pub power_ons: Vec<Instant>,
    pub powered: bool,
}

pub struct Nas {
    pub ns: NetNs,
    pub mac: String,
    dir: tempfile::TempDir,
    log: Arc<Mutex<NasLog>>,
    /// Magic packets ignored before one powers it on.
    ignore: Arc<Mutex<usize>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Nas {
    /// A NAS whose upsmon watches `fakeups` on upsd at the host side of its
    /// veth, `port`. `shuts_down`: a secondary that shuts down at OB LB;
    /// otherwise upsmon only watches (power value 0), logged in all along.
    pub fn start(port: u16, shuts_down: bool) -> Nas {
        let ns = NetNs::new();
        let mac = ns.peer_mac();
        let dir = workdir();
        let flag = dir.path().join("shutdown");
        let conf = format!(
            "MONITOR fakeups@{host}:{port} {pv} admin 123456 secondary\n\
             MINSUPPLIES {pv}\n\
             SHUTDOWNCMD \"/bin/touch {flag}\"\n\
             POLLFREQ 1\nPOLLFREQALERT 1\nHOSTSYNC 2\nDEADTIME 15\nFINALDELAY 0\n\
             POWERDOWNFLAG {dir}/killpower\n",
            host = ns.host_ip(),
            pv = u8::from(shuts_down),
            flag = flag.display(),
            dir = dir.path().display(),
        );
        fs::write(dir.path().join("upsmon.conf"), conf).unwrap();
        fs::write(dir.path().join("nut.conf"), "MODE=netclient\n").unwrap();
        let log = Arc::new(Mutex::new(NasLog::default()));
        let ignore = Arc::new(Mutex::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let card = Card {
            ns_path: ns.path(),
            ns_name: ns.name.clone(),
            mac: parse_mac(&mac),
            dir: dir.path().to_path_buf(),
            log: Arc::clone(&log),
            ignore: Arc::clone(&ignore),
            stop: Arc::clone(&stop),
        };
        let thread = thread::spawn(move || card.run(ready_tx));
        ready_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the NAS's card is listening")
            .unwrap_or_else(|e| panic!("{e}"));
        Nas {
            ns,
            mac,
            dir,
            log,
            ignore,
            stop,
            thread: Some(thread),
        }
    }

    pub fn address(&self) -> String {
        self.ns.peer_ip()
    }

    pub fn log(&self) -> MutexGuard<'_, NasLog> {
        self.log.lock().unwrap()
    }

    /// The next `n` magic packets do not power it on.
    pub fn ignore_next(&self, n: usize) {
        *self.ignore.lock().unwrap() = n;
    }

    /// upsmon's own log, for failures.
    pub fn upsmon_log(&self) -> String {
        fs::read_to_string(self.dir.path().join("upsmon.log")).unwrap_or_default()
    }
}

impl Drop for Nas {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn parse_mac(text: &str) -> [u8; 6] {
    let mut mac = [0u8; 6];
    for (b, part) in mac.iter_mut().zip(text.split(':')) {
        *b = u8::from_str_radix(part, 16).expect("a MAC");
    }
    mac
}

/// The NAS's card and power button, on a thread that entered its namespace.
struct Card {
    ns_path: String,
    ns_name: String,
    mac: [u8; 6],
    dir: PathBuf,
    log: Arc<Mutex<NasLog>>,
    ignore: Arc<Mutex<usize>>,
    stop: Arc<AtomicBool>,
}

impl Card {
    fn run(self, ready: std::sync::mpsc::Sender<Result<(), String>>) {
        let socket = match self.listen() {
            Ok(s) => s,
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        };
        let mut upsmon = Some(self.upsmon());
        self.log.lock().unwrap().powered = true;
        let _ = ready.send(Ok(()));
        let flag = self.dir.join("shutdown");
        let mut buf = [0u8; 1500];
        while !self.stop.load(Ordering::SeqCst) {
            if let Ok((n, _)) = socket.recv_from(&mut buf) {
                let now = Instant::now();
                if is_magic(&buf[..n], &self.mac) {
                    let mut log = self.log.lock().unwrap();
                    log.packets.push(now);
                    let mut ignore = self.ignore.lock().unwrap();
                    if *ignore > 0 {
                        *ignore -= 1;
                    } else if !log.powered {
                        log.powered = true;
                        log.power_ons.push(now);
                        drop(log);
                        set_ping(&self.ns_name, true);
                        upsmon = Some(self.upsmon());
                    }
                } else {
                    self.log.lock().unwrap().other += 1;
                }
            }
            if flag.exists() {
                let _ = fs::remove_file(&flag);
                // Powered off: upsmon gone, ping unanswered.
                if let Some(mut child) = upsmon.take() {
                    let _ = child.kill();
                    let _ = child.wait();
                }
                set_ping(&self.ns_name, false);
                let mut log = self.log.lock().unwrap();
                log.powered = false;
                log.shutdowns.push(Instant::now());
            }
        }
        if let Some(mut child) = upsmon.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// A UDP socket on port 9 in the namespace: this thread enters it
    /// (setns affects the calling thread only) before creating it.
    fn listen(&self) -> Result<UdpSocket, String> {
        let ns = fs::File::open(&self.ns_path).map_err(|e| format!("{}: {e}", self.ns_path))?;
        // SAFETY: a valid descriptor of a network namespace; only this
        // thread moves into it.
        let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
        if rc != 0 {
            return Err(format!(
                "setns {}: {}",
                self.ns_path,
                std::io::Error::last_os_error()
            ));
        }
        let socket = UdpSocket::bind("0.0.0.0:9").map_err(|e| format!("bind :9: {e}"))?;
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .map_err(|e| e.to_string())?;
        Ok(socket)
    }

    fn upsmon(&self) -> Child {
        let bin = nut_bin().expect("NUT binaries").join("upsmon");
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("upsmon.log"))
            .unwrap();
        // upsmon keeps its PID file in /run/nut whatever the environment
        // says: each NAS gets a /run/nut of its own, a tmpfs in the mount
        // namespace that `ip netns exec` makes for its command.
        Command::new("ip")
            .args(["netns", "exec", &self.ns_name, "sh", "-c"])
            .arg("mkdir -p /run/nut && mount -t tmpfs -o size=1m nas /run/nut && exec \"$0\" -F -p")
            .arg(bin)
            .env("NUT_CONFPATH", &self.dir)
            .env("NUT_STATEPATH", &self.dir)
            .env("NUT_ALTPIDPATH", &self.dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("upsmon")
    }
}

fn set_ping(ns: &str, answer: bool) {
    let value = format!("net.ipv4.icmp_echo_ignore_all={}", u8::from(!answer));
    let _ = Command::new("ip")
        .args(["netns", "exec", ns, "sysctl", "-q", "-w", &value])
        .status();
}

/// A magic packet for `mac`: six 0xFF, then the MAC sixteen times.
pub fn is_magic(p: &[u8], mac: &[u8; 6]) -> bool {
    p.len() >= 102 && p[..6] == [0xff; 6] && p[6..102].chunks(6).all(|c| c == mac)
}
