//! The log file against the real daemon: a disk that fills up and frees
//! again, and logrotate's rotation, which must reopen the file and do
//! nothing else.

use std::collections::HashMap;
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::daemon::{Daemon, TestConfig};
use crate::support::logs::is_monolog;
use crate::support::tmpfs::{self, Tmpfs};
use crate::support::{self, require, stderr, wait_for, workdir};
use nix::sys::signal::Signal;

const SEC: Duration = Duration::from_secs(1);

/// The console's copy of the note that the file broke, and of the one that
/// it mended (the daemon's stderr stands for the journal here).
const BROKE: &str = "cannot write the log file";

fn root_and_tmpfs() -> Result<(), String> {
    support::root_and_netns()?;
    tmpfs::available()
}

/// The number of lines a note "N lines were lost while PATH could not be
/// written (ERROR) ..." reports, and the rest after PATH.
fn lost_note(message: &str, path: &Path) -> Option<(u64, String)> {
    let (n, rest) = message
        .split_once(" lines were lost while ")
        .or_else(|| message.split_once(" line was lost while "))?;
    let rest = rest.strip_prefix(&format!("{} could not be written ", path.display()))?;
    Some((n.parse().ok()?, rest.to_string()))
}

/// How many of `lines` are not in `file` (as multisets: a line logged twice
/// in the same second is two lines).
fn missing_from(lines: &[&str], file: &[&str]) -> u64 {
    let mut have: HashMap<&str, usize> = HashMap::new();
    for l in file {
        *have.entry(l).or_default() += 1;
    }
    let mut missing = 0;
    for l in lines {
        match have.get_mut(l) {
            Some(n) if *n > 0 => *n -= 1,
            _ => missing += 1,
        }
    }
    missing
}

/// The log directory is a small tmpfs that a file fills up while the daemon
/// runs (it logs a debug line every 200 ms round, and a pause and a resume
/// while the disk is full). The console says once that the file broke; once
/// the filler is removed, the file resumes by itself, its first line back
/// says how many lines were lost (exactly those the console got and the
/// file did not), and later lines follow it.
#[test]
fn a_full_log_disk_resumes_by_itself_and_says_how_many_lines_were_lost() {
    require!(
        root_and_tmpfs(),
        "a_full_log_disk_resumes_by_itself_and_says_how_many_lines_were_lost"
    );
    let dir = workdir();
    // Declared before the daemon, so dropped after it: unmounted once the
    // daemon is gone.
    let disk = Tmpfs::mount(&dir.path().join("log"), "256k");
    let cfg = TestConfig::new(&["127.0.0.1".to_string()]);
    let daemon = Daemon::start_ready(dir.path(), &cfg);
    let log_file = daemon.log_file();
    assert!(daemon.log().contains("started"), "{}", daemon.log());

    let filler = disk.fill("filler");
    // The tail of the log file's last page still takes a few lines.
    let broke = wait_for(30 * SEC, Duration::from_millis(100), || {
        daemon
            .stderr()
            .lines()
            .find(|l| l.contains(BROKE))
            .map(String::from)
    })
    .unwrap_or_else(|| {
        panic!(
            "the log file never failed on the full disk:\n{}",
            daemon.stderr()
        )
    });
    println!("{broke}");
    assert!(broke.contains("No space left on device"), "{broke}");

    // Lines the file cannot take: the console (the journal) gets them.
    for args in [
        &["pause", "--for", "10m", "--reason", "disk full"][..],
        &["resume"][..],
    ] {
        let out = daemon.ctl(args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    }
    std::thread::sleep(SEC);
    let size_full = fs::metadata(&log_file).map_or(0, |m| m.len());

    fs::remove_file(&filler).expect("remove the filler");
    let freed = Instant::now();
    let resumed = wait_for(60 * SEC, Duration::from_millis(50), || {
        let size = fs::metadata(&log_file).map_or(0, |m| m.len());
        (size > size_full).then(Instant::now)
    });
    let Some(resumed) = resumed else {
        panic!(
            "the log file did not resume within 60 s of space returning \
             (0 lines reached it); stderr:\n{}",
            daemon.stderr()
        )
    };
    // Let the first line back be complete, and a round's line follow it.
    std::thread::sleep(SEC);
    println!(
        "the log file resumed {:.2} s after space returned",
        (resumed - freed).as_secs_f64()
    );

    let log = daemon.log();
    let lines: Vec<&str> = log.lines().collect();
    let Some(back) = lines
        .iter()
        .position(|l| l.contains(" lost while ") && l.contains("WARNING: "))
    else {
        panic!("the first line back does not say how many lines were lost:\n{log}")
    };
    let note = lines[back];
    let message = &note[note.find("WARNING: ").map_or(0, |i| i + 9)..];
    assert!(is_monolog(note, "WARNING", message), "{note}");
    let Some((lost, rest)) = lost_note(message, &log_file) else {
        panic!("not a lost-lines note: {note}")
    };
    println!("the first line back: {note}");
    assert!(rest.starts_with("(No space left on device"), "{note}");
    // It is the first line back: what comes before it is what the file had
    // when it filled up (the last of it possibly cut short by the full disk,
    // then ended with a newline of its own).
    let before_bytes = log.find(note).expect("the note is in the log");
    assert!(
        before_bytes as u64 >= size_full && before_bytes as u64 <= size_full + 1,
        "the note starts at byte {before_bytes}, the full file had {size_full}:\n{log}"
    );
    println!(
        "the full disk cut the last line short: {}",
        before_bytes as u64 == size_full + 1
    );
    // Rounds go on being logged after it.
    assert!(
        lines[back + 1..].iter().any(|l| l.contains("round done")),
        "no line after the note:\n{log}"
    );

    // The count is exact: every line the console got before the note and
    // the file did not (the break note aside, which is the console's only).
    let console = daemon.stderr();
    let console_lines: Vec<&str> = console.lines().collect();
    let Some(console_back) = console_lines.iter().position(|l| l.contains(message)) else {
        panic!("the console lacks the note {message:?}:\n{console}")
    };
    let logged: Vec<&str> = console_lines[..console_back]
        .iter()
        .filter(|l| !l.contains(BROKE))
        .copied()
        .collect();
    let expected = missing_from(&logged, &lines[..back]);
    assert_eq!(lost, expected, "console:\n{console}\nfile:\n{log}");
    assert!(
        lost >= 3,
        "a pause, a resume and a second of rounds were lost"
    );
    let paused = "NOTICE: Paused by root";
    assert!(console.contains(paused) && !log.contains(paused), "{log}");

    // Once when it broke, once when it mended, however many lines failed.
    assert_eq!(console.matches(BROKE).count(), 1, "{console}");
    assert_eq!(console.matches(message).count(), 1, "{console}");
    assert_eq!(log.matches(" lost while ").count(), 1, "{log}");
    println!("{lost} lost lines reported");
}

/// logrotate's part: the file is moved away, then SIGUSR1. The daemon
/// writes to a new file at the path, and a configuration changed on disk
/// meanwhile is not applied (no RELOADING=1, no "configuration reloaded",
/// the data file stays where it was). SIGHUP still reloads it.
#[test]
fn sigusr1_reopens_the_log_file_and_reloads_nothing() {
    require!(
        support::root_and_netns(),
        "sigusr1_reopens_the_log_file_and_reloads_nothing"
    );
    let dir = workdir();
    let cfg = TestConfig::new(&["127.0.0.1".to_string()]);
    let mut daemon = Daemon::start_ready(dir.path(), &cfg);
    let rotated = dir.path().join("log/fakeups.log.1");
    fs::rename(daemon.log_file(), &rotated).expect("move the log file away");
    // An edit nobody asked to apply: the data file elsewhere.
    let moved = dir.path().join("lib/moved.dev");
    let edited = cfg
        .render(dir.path())
        .replace("lib/fakeups.dev", "lib/moved.dev");
    fs::write(&daemon.config, edited).expect("edit the configuration");

    let seen = daemon.notify.messages().len();
    let sent = Instant::now();
    daemon.signal(Signal::SIGUSR1);
    let first = wait_for(10 * SEC, Duration::from_millis(50), || {
        daemon.log().lines().next().map(String::from)
    });
    let Some(first) = first else {
        let status = daemon
            .child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten());
        panic!(
            "no new log file within 10 s of SIGUSR1; the daemon {}",
            match status {
                Some(s) => format!("exited: {s}"),
                None => "still runs".to_string(),
            }
        )
    };
    println!(
        "a new log file {:.2} s after SIGUSR1: {first}",
        sent.elapsed().as_secs_f64()
    );
    assert!(
        is_monolog(&first, "INFO", "log file reopened on SIGUSR1"),
        "{first}"
    );
    let out = daemon.ctl(&["pause", "--for", "10m", "--reason", "after rotation"]);
    assert!(out.status.success(), "pause: {}", stderr(&out));
    daemon
        .wait_log("after rotation", 5 * SEC)
        .expect("the pause in the new log file");
    let old = fs::read_to_string(&rotated).expect("the rotated file");
    assert!(!old.contains("after rotation"), "{old}");
    assert!(!old.contains("reopened"), "{old}");

    // A few rounds later: nothing of the edit was applied.
    std::thread::sleep(SEC);
    assert!(daemon.running());
    let log = daemon.log();
    assert!(!log.contains("configuration reloaded"), "{log}");
    assert!(!old.contains("configuration reloaded"), "{old}");
    assert!(!moved.exists(), "the edited data file was applied");
    assert_eq!(daemon.data()["ups.status"], "OL");
    let reloading = daemon.notify.messages()[seen..]
        .iter()
        .any(|(_, m)| m.lines().any(|l| l == "RELOADING=1"));
    assert!(!reloading, "RELOADING=1 after SIGUSR1");

    // SIGHUP is still the reload.
    daemon.signal(Signal::SIGHUP);
    daemon
        .wait_log("configuration reloaded", 5 * SEC)
        .expect("SIGHUP reloads");
    assert!(
        wait_for(5 * SEC, Duration::from_millis(50), || moved
            .exists()
            .then_some(()))
        .is_some(),
        "the data file did not move on SIGHUP"
    );
}

/// The shipped logrotate configuration signals the daemon with SIGUSR1
/// (reopen the log file), never SIGHUP (the configuration reload).
#[test]
fn logrotate_config_reopens_with_sigusr1_not_sighup() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("debian/logrotate");
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let post = text
        .split_once("postrotate")
        .and_then(|(_, rest)| rest.split_once("endscript"))
        .map(|(script, _)| script)
        .unwrap_or_else(|| panic!("{} has no postrotate script", path.display()));
    let commands: Vec<&str> = post
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert!(
        commands
            .iter()
            .any(|c| c.contains("systemctl kill") && c.contains("--signal=USR1")),
        "{post}"
    );
    assert!(
        commands
            .iter()
            .all(|c| !c.contains("HUP") && !c.contains("reload")),
        "{post}"
    );
}
