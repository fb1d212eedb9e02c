//! Network namespaces with one end of a veth pair each, on 10.231.N.0/24
//! behind a blackhole guard route: the sentinels the tests cut and restore.

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use super::{must, run};

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
                "brd",
                "+",
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
            "brd",
            "+",
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

    /// The subnet's directed broadcast (its addresses have `brd +`).
    pub fn broadcast(&self) -> String {
        format!("10.231.{}.255", self.index)
    }

    /// The MAC of the namespace's side of the veth pair.
    pub fn peer_mac(&self) -> String {
        let path = format!("/sys/class/net/{}/address", self.peer_if);
        let out = self.command("cat").arg(&path).output().expect("cat");
        assert!(out.status.success(), "cannot read {path} in {}", self.name);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// The namespace's file, for setns(2).
    pub fn path(&self) -> String {
        format!("/run/netns/{}", self.name)
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
