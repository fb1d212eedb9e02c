//! What a crash leaves and what NUT's faults say: temporary files of
//! killed writes are swept at the next start, and when upsd says a driver
//! is not connected, fakeups names the cause it can see.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use crate::support::ctl::status_json;
use crate::support::daemon::{Daemon, TestConfig};
use crate::support::netns::NetNs;
use crate::support::nut::Nut;
use crate::support::{self, require, workdir};

const SEC: Duration = Duration::from_secs(1);

/// Temporary files as a kill between write and rename leaves them (0.1.0
/// named them by PID, this version by PID and a count): none survive a
/// restart; files that are not fakeups' own are left alone.
#[test]
fn a_restart_sweeps_the_temporary_files_of_killed_writes() {
    require!(
        support::root_and_netns(),
        "a_restart_sweeps_the_temporary_files_of_killed_writes"
    );
    let ns = NetNs::new();
    let dir = workdir();
    let cfg = crate::faults::long_on_battery(&ns);
    let mut daemon = Daemon::start_ready(dir.path(), &cfg);
    // On battery every round writes: kills land between writes and renames.
    ns.cut();
    assert!(
        daemon
            .wait_log("Power lost - switching to OB", 10 * SEC)
            .is_some()
    );
    let lib = dir.path().join("lib");
    let state = dir.path().join("state");
    let planted = [
        lib.join(".fakeups.dev.tmp4242"),
        state.join(".state.json.tmp4242.7"),
        dir.path().join("run/.state.json.tmp17"),
    ];
    let foreign = lib.join(".fakeups.dev.tmp-not-ours");
    for p in planted.iter().chain([&foreign]) {
        fs::write(p, "partial").unwrap();
    }
    for _ in 0..10 {
        daemon.kill9();
        daemon.restart();
        std::thread::sleep(Duration::from_millis(150));
    }
    daemon.kill9();
    daemon.restart();
    let tmp_files: Vec<String> = [&lib, &state, &dir.path().join("run")]
        .iter()
        .flat_map(|d| fs::read_dir(d).unwrap())
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.contains(".tmp"))
        .collect();
    assert_eq!(
        tmp_files,
        vec![".fakeups.dev.tmp-not-ours".to_string()],
        "left over after kills and restarts"
    );
    assert!(daemon.log().contains("left by a crash"), "{}", daemon.log());
}

/// upsd says "driver not connected": fakeups checks again whether user nut
/// can read the data file, names the cause when it cannot, and says what
/// else to check when it can.
#[test]
fn a_driver_not_connected_gets_its_cause_named() {
    require!(
        support::root_netns_and_nut(),
        "a_driver_not_connected_gets_its_cause_named"
    );
    if nix::unistd::User::from_name("nut").ok().flatten().is_none() {
        support::skip(
            "a_driver_not_connected_gets_its_cause_named",
            "needs user nut (apt-get install nut-server)",
        );
        return;
    }
    let dir = workdir();
    let mut cfg = TestConfig::new(&["127.0.0.1".to_string()]);
    let port_holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = port_holder.local_addr().unwrap().port();
    drop(port_holder);
    cfg.upsd = format!("127.0.0.1:{port}");
    let daemon = Daemon::start_ready(dir.path(), &cfg);
    let mut nut = Nut::start_on(&daemon.data_file(), &["fakeups"], port);
    let served = support::wait_for(10 * SEC, Duration::from_millis(200), || {
        (status_json(&daemon.socket())["nut"]["ups"][0]["status"] == "OL").then_some(())
    });
    assert!(served.is_some(), "upsd never served fakeups");

    // The driver dies while user nut can read the file: what else to check.
    nut.kill_driver("fakeups");
    let hint = daemon.wait_log("though user nut can read", 15 * SEC);
    assert!(hint.is_some(), "no hint: {}", daemon.log());
    assert!(hint.unwrap().contains("port ="));
    nut.start_driver("fakeups");
    assert!(
        daemon
            .wait_log("NUT serves fakeups again", 15 * SEC)
            .is_some(),
        "{}",
        daemon.log()
    );

    // Its directory is closed to user nut after the first write: the cause.
    let lib = dir.path().join("lib");
    fs::set_permissions(&lib, fs::Permissions::from_mode(0o700)).unwrap();
    nut.kill_driver("fakeups");
    let cause = daemon.wait_log("the cause of \"driver not connected\"", 15 * SEC);
    fs::set_permissions(&lib, fs::Permissions::from_mode(0o755)).unwrap();
    let cause = cause.unwrap_or_else(|| panic!("no cause named: {}", daemon.log()));
    assert!(cause.contains("user nut cannot enter"), "{cause}");
    let problem = status_json(&daemon.socket())["nut"]["ups"][0]["problem"].clone();
    assert!(
        problem
            .as_str()
            .is_some_and(|p| p.starts_with("driver not connected: user nut cannot enter")),
        "{problem}"
    );
}
