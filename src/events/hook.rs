//! The event hook: `[events] command`, run once per event on a thread of
//! its own, one at a time, in order. Events wait in a queue of
//! `events.queue`; beyond it they are dropped, and the drop is logged (once
//! per run of drops, with the count when the queue has room again). A hook
//! that outlives `events.timeout` is killed with its process group.
//!
//! The hook runs as the daemon does (user fakeups, inside the unit's
//! sandbox) but without its capability: the ambient set, which would carry
//! CAP_NET_RAW across exec, is cleared in the child. Its environment is
//! PATH, the locale and time zone, and the FAKEUPS_ variables.

use std::os::unix::process::{CommandExt as _, ExitStatusExt as _};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::thread;
use std::time::{Duration, Instant};

use chrono::Local;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use super::{Event, SharedHealth, update};
use crate::config::Events;
use crate::format::fmt_duration;
use crate::sys::logging;

/// The PATH a hook gets: systemd's default for services.
const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// How much of a hook's standard error is kept, for its first line.
const STDERR_KEPT: usize = 4096;

/// How often a running hook is looked at, for its end or its timeout.
const POLL: Duration = Duration::from_millis(20);

/// The queue to the hook's thread, and what the daemon says of it.
pub struct Hooks {
    queue: SyncSender<Event>,
    capacity: usize,
    /// Events dropped since the queue last had room: logged when it has.
    dropping: u64,
    command: Vec<String>,
    health: SharedHealth,
}

impl Hooks {
    /// The hook's thread for `events.command`; None when it is empty (off)
    /// or the thread cannot start (logged).
    pub fn start(config: &Events, health: SharedHealth) -> Option<Hooks> {
        if config.command.is_empty() {
            return None;
        }
        let capacity = config.queue.max(1);
        let (queue, events) = mpsc::sync_channel(capacity);
        let runner = Runner {
            command: config.command.clone(),
            timeout: config.timeout,
            health: health.clone(),
        };
        let started = thread::Builder::new()
            .name("fakeups-hook".into())
            .stack_size(256 * 1024)
            .spawn(move || runner.run(events));
        if let Err(e) = started {
            logging::error(&format!(
                "cannot start the thread of the event hook {}: {e}; events run no hook",
                config.command[0]
            ));
            return None;
        }
        Some(Hooks {
            queue,
            capacity,
            dropping: 0,
            command: config.command.clone(),
            health,
        })
    }

    /// Queues `event` for the hook; drops it when the queue is full.
    pub fn submit(&mut self, event: Event) {
        let name = event.kind.name();
        match self.queue.try_send(event) {
            Ok(()) => {
                if self.dropping > 0 {
                    logging::warning(&format!(
                        "the event hook's queue has room again: {} event(s) were dropped \
                         while it was full",
                        self.dropping
                    ));
                    self.dropping = 0;
                }
            }
            Err(TrySendError::Full(_)) => {
                update(&self.health, |h| h.dropped += 1);
                if self.dropping == 0 {
                    logging::warning(&format!(
                        "the event hook's queue is full ({} events wait for {}): dropping \
                         {name}, and the events after it until it has room (events.queue)",
                        self.capacity, self.command[0]
                    ));
                }
                self.dropping += 1;
            }
            Err(TrySendError::Disconnected(_)) => {
                update(&self.health, |h| h.dropped += 1);
                if self.dropping == 0 {
                    logging::error(&format!(
                        "the event hook's thread is gone: {name} and the events after it \
                         run no hook"
                    ));
                }
                self.dropping += 1;
            }
        }
    }

    /// The command, for status.
    pub fn describe(&self) -> String {
        self.command.join(" ")
    }

    pub fn health(&self) -> &SharedHealth {
        &self.health
    }
}

/// The hook's thread: runs each event's hook to its end or its timeout.
struct Runner {
    command: Vec<String>,
    timeout: Duration,
    health: SharedHealth,
}

/// How a hook ended, when it failed.
#[derive(Debug, PartialEq)]
enum Failure {
    Spawn(String),
    Status(ExitStatus),
    TimedOut,
}

impl Runner {
    fn run(self, events: Receiver<Event>) {
        for event in events {
            let started = Instant::now();
            let (failure, stderr) = self.run_one(&event);
            let name = event.kind.name();
            let Some(failure) = failure else {
                update(&self.health, |h| h.delivered += 1);
                logging::debug(&format!(
                    "event hook for {name} done in {:.0} ms",
                    started.elapsed().as_secs_f64() * 1000.0
                ));
                continue;
            };
            let how = match failure {
                Failure::Spawn(e) => format!("cannot be run: {e}"),
                Failure::Status(status) => match (status.code(), status.signal()) {
                    (Some(code), _) => format!("failed with exit status {code}"),
                    (None, Some(signal)) => format!("was killed by signal {signal}"),
                    (None, None) => format!("failed: {status}"),
                },
                Failure::TimedOut => format!(
                    "was killed after {} (events.timeout)",
                    fmt_duration(self.timeout)
                ),
            };
            let mut line = format!("event hook {} for {name} {how}", self.command[0]);
            if let Some(stderr) = stderr.filter(|s| !s.is_empty()) {
                line.push_str(&format!(": {stderr}"));
            }
            update(&self.health, |h| {
                h.last_failure = Some((Local::now(), line.clone()))
            });
            logging::event(
                logging::Level::Warning,
                &line,
                &[("FAKEUPS_HOOK_EVENT", name)],
            );
        }
    }

    /// Runs the hook for `event`: how it failed, if it did, and the first
    /// line of its standard error.
    fn run_one(&self, event: &Event) -> (Option<Failure>, Option<String>) {
        let mut command = Command::new(&self.command[0]);
        command
            .args(&self.command[1..])
            .env_clear()
            .env("PATH", PATH)
            .envs(
                ["LANG", "LC_ALL", "TZ"]
                    .into_iter()
                    .filter_map(|k| std::env::var_os(k).map(|v| (k, v))),
            )
            .envs(event.environment())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            // Its own process group: a timeout kills what it started too.
            .process_group(0);
        // SAFETY: between fork and exec only prctl, which is
        // async-signal-safe, runs; it allocates nothing.
        unsafe {
            command.pre_exec(|| {
                // Not CAP_NET_RAW: clear the ambient set, which exec keeps.
                // An old kernel without ambient capabilities has none.
                libc::prctl(
                    libc::PR_CAP_AMBIENT,
                    libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
                    0,
                    0,
                    0,
                );
                Ok(())
            });
        }
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(e) => return (Some(Failure::Spawn(e.to_string())), None),
        };
        let stderr = child.stderr.take().map(|pipe| {
            let (tx, rx) = mpsc::channel();
            let reader = thread::Builder::new()
                .name("fakeups-hook-stderr".into())
                .stack_size(64 * 1024)
                .spawn(move || {
                    let _ = tx.send(first_line(pipe));
                });
            (reader.is_ok(), rx)
        });
        let deadline = Instant::now() + self.timeout;
        let ended = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Ok(status),
                Ok(None) if Instant::now() >= deadline => break Err(Failure::TimedOut),
                Ok(None) => thread::sleep(POLL),
                Err(e) => break Err(Failure::Spawn(format!("cannot wait for it: {e}"))),
            }
        };
        if let Err(Failure::TimedOut) = ended {
            if let Ok(pid) = i32::try_from(child.id()) {
                let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
            }
            let _ = child.wait();
        }
        // A child the hook left behind may hold standard error open: its
        // first line is waited for a moment only.
        let stderr = stderr
            .filter(|(started, _)| *started)
            .and_then(|(_, rx)| rx.recv_timeout(Duration::from_secs(1)).ok());
        let failure = match ended {
            Ok(status) if status.success() => None,
            Ok(status) => Some(Failure::Status(status)),
            Err(failure) => Some(failure),
        };
        (failure, stderr)
    }
}

/// The first line of what `pipe` gives, read to its end (so the writer
/// never blocks on a full pipe) but kept to `STDERR_KEPT` bytes.
fn first_line(mut pipe: impl std::io::Read) -> String {
    let mut kept = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match pipe.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = STDERR_KEPT.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
    let text = String::from_utf8_lossy(&kept);
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::EventKind;

    fn event(kind: EventKind) -> Event {
        Event {
            kind,
            status: "OB",
            previous: "OL",
            charge: 100,
            runtime: 300,
            message: "Power lost - switching to OB".into(),
            time: Local::now(),
            drill: false,
        }
    }

    fn runner(script: &str, timeout: Duration) -> Runner {
        Runner {
            command: vec!["/bin/sh".into(), "-c".into(), script.into()],
            timeout,
            health: Default::default(),
        }
    }

    #[test]
    fn a_hook_gets_the_event_in_its_environment_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("env");
        let r = runner(&format!("env > {}", out.display()), Duration::from_secs(10));
        assert_eq!(r.run_one(&event(EventKind::OnBattery)).0, None);
        let env = std::fs::read_to_string(&out).unwrap();
        assert!(env.contains("FAKEUPS_EVENT=on-battery\n"), "{env}");
        assert!(env.contains("FAKEUPS_PREVIOUS=OL\n"), "{env}");
        assert!(env.contains(&format!("PATH={PATH}\n")), "{env}");
        assert!(!env.contains("NOTIFY_SOCKET"), "{env}");
        assert!(
            !env.contains("CARGO"),
            "the daemon's environment leaked: {env}"
        );
    }

    #[test]
    fn a_failure_says_its_status_and_first_line_of_stderr() {
        let r = runner(
            "echo; echo '  no route to ntfy.sh  ' >&2; echo more >&2; exit 3",
            Duration::from_secs(10),
        );
        let (failure, stderr) = r.run_one(&event(EventKind::Online));
        assert_eq!(failure, Some(Failure::Status(ExitStatus::from_raw(3 << 8))));
        assert_eq!(stderr.as_deref(), Some("no route to ntfy.sh"));
        let r = Runner {
            command: vec!["/nonexistent/hook".into()],
            timeout: Duration::from_secs(1),
            health: Default::default(),
        };
        let (failure, _) = r.run_one(&event(EventKind::Online));
        assert!(
            matches!(&failure, Some(Failure::Spawn(e)) if e.contains("No such file")),
            "{failure:?}"
        );
    }

    #[test]
    fn a_hook_past_its_timeout_is_killed_with_what_it_started() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("pid");
        let r = runner(
            &format!("sleep 30 & echo $! > {}; wait", pid_file.display()),
            Duration::from_millis(300),
        );
        let started = Instant::now();
        let (failure, _) = r.run_one(&event(EventKind::Paused));
        assert_eq!(failure, Some(Failure::TimedOut));
        assert!(started.elapsed() < Duration::from_secs(5));
        let pid: i32 = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // The sleep was in the hook's group: killed too. SIGKILL takes
        // effect when it is next scheduled: gone, or a zombie until its new
        // parent reaps it, within moments (not the 30 s it asked for).
        let mut stat = String::new();
        for _ in 0..200 {
            stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            if stat.is_empty() || stat.contains(") Z ") {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(stat.is_empty() || stat.contains(") Z "), "{stat}");
    }

    #[test]
    fn stderr_is_read_to_its_end_but_kept_short() {
        let long = "x".repeat(100_000);
        assert_eq!(
            first_line(format!("\n\n{long}\nsecond").as_bytes()).len(),
            STDERR_KEPT - 2
        );
        assert_eq!(first_line("a\nb".as_bytes()), "a");
        assert_eq!(first_line("".as_bytes()), "");
    }
}
