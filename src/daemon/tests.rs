//! The daemon's parts, driven without sockets or sleeping: a scripted
//! prober answers for the sentinels and a manual clock sets the time. What
//! is checked is what the outside sees: the data file dummy-ups reads, the
//! STATUS= line, the report, the state file, the replies to commands.

use std::collections::HashMap;
use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{Local, TimeDelta};
use tokio::sync::{mpsc, oneshot};

use super::Daemon;
use super::clock::{Clock, ManualClock};
use crate::config::Config;
use crate::control::{Command, ErrorKind, Response};
use crate::core::Status;
use crate::nut::Snapshot;
use crate::nut::view::{STARTUP_GRACE, UpsState};
use crate::probe::{Outcome, Probe, Target};

const S: Duration = Duration::from_secs(1);
const A: &str = "192.0.2.1";
const B: &str = "192.0.2.2";

/// Answers for the addresses marked as answering; the rest stay silent.
#[derive(Clone, Default)]
struct Scripted {
    answering: Arc<Mutex<HashMap<IpAddr, bool>>>,
    /// Rounds never end: a stuck prober.
    hang: Arc<AtomicBool>,
}

impl Scripted {
    fn set(&self, addr: &str, answers: bool) {
        let addr: IpAddr = addr.parse().expect("a test address");
        self.answering.lock().unwrap().insert(addr, answers);
    }
}

impl Probe for Scripted {
    fn family_error(&self, _v6: bool) -> Option<&str> {
        None
    }

    fn can_ping(&self, _addr: IpAddr) -> bool {
        true
    }

    fn ping_all(
        &mut self,
        targets: &[Target],
        _timeout: Duration,
    ) -> impl Future<Output = Vec<Outcome>> + Send {
        let answering = self.answering.lock().unwrap();
        let outcomes = targets
            .iter()
            .map(|t| match t {
                Ok((addr, _)) if answering.get(addr) == Some(&true) => {
                    Outcome::Answered(Duration::from_micros(250))
                }
                Ok(_) => Outcome::Silent("no answer".into()),
                Err(why) => Outcome::Silent(why.clone()),
            })
            .collect();
        let hang = self.hang.load(Ordering::SeqCst);
        async move {
            if hang {
                std::future::pending::<()>().await;
            }
            outcomes
        }
    }
}

/// A configuration in a directory of its own, the prober and the clock.
struct Bench {
    dir: tempfile::TempDir,
    prober: Scripted,
    clock: Arc<ManualClock>,
}

impl Bench {
    fn new() -> Bench {
        let bench = Bench {
            dir: tempfile::tempdir().unwrap(),
            prober: Scripted::default(),
            clock: Arc::new(ManualClock::new()),
        };
        bench.write_config("data/fakeups.dev", "");
        bench
    }

    fn config_path(&self) -> PathBuf {
        self.dir.path().join("fakeups.toml")
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Two sentinels, quorum all, the shipped timings; `upsd` "" unless
    /// `nut` says otherwise.
    fn write_config(&self, data_file: &str, nut: &str) {
        let d = self.dir.path().display();
        let nut = if nut.is_empty() { "upsd = \"\"" } else { nut };
        let text = format!(
            "sentinels = [\"{A}\", \"{B}\"]\nstate-directory = \"{d}/state\"\n\
             [nut]\ndata-file = \"{d}/{data_file}\"\n{nut}\n\
             [log]\nfile = \"\"\n[control]\nsocket = \"{d}/control.sock\"\n"
        );
        fs::write(self.config_path(), text).unwrap();
    }

    fn daemon(&self) -> Daemon<Scripted> {
        let config = Config::load(&self.config_path()).unwrap();
        Daemon::new(
            self.config_path(),
            config,
            self.prober.clone(),
            self.clock.clone(),
        )
        .unwrap()
    }
}

/// `ups.status: OB` and the rest, as dummy-ups reads them.
fn data_file(path: &Path) -> HashMap<String, String> {
    fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn status_of(path: &Path) -> String {
    data_file(path)["ups.status"].clone()
}

/// 32 s of rounds 2 s apart: with both sentinels silent, OB and a battery
/// already draining (on-battery-after is 30 s).
async fn silent_rounds(d: &mut Daemon<Scripted>, clock: &ManualClock) {
    for _ in 0..16 {
        round(d, clock, 2 * S).await;
    }
}

/// Runs a round now, then moves the clock on by `then`.
async fn round(d: &mut Daemon<Scripted>, clock: &ManualClock, then: Duration) {
    d.round(clock.now()).await;
    clock.advance(then);
}

/// Carries out a command and waits for its reply, which comes once the
/// state is saved.
async fn command(
    d: &mut Daemon<Scripted>,
    make: impl FnOnce(oneshot::Sender<Response>) -> Command,
) -> Response {
    let (tx, rx) = oneshot::channel();
    d.command(make(tx));
    d.settle();
    tokio::time::timeout(Duration::from_secs(10), rx)
        .await
        .expect("a reply once saved")
        .expect("a reply")
}

async fn pause(d: &mut Daemon<Scripted>, seconds: Option<u64>, until_resumed: bool) -> Response {
    command(d, |reply| Command::Pause {
        seconds,
        until_resumed,
        reason: Some("router firmware update".into()),
        by: "root".into(),
        reply,
    })
    .await
}

fn message(r: &Response) -> &str {
    match r {
        Response::Ok { message, .. } => message.as_deref().unwrap_or_default(),
        Response::Error { message, .. } => panic!("an error: {message}"),
    }
}

#[tokio::test]
async fn a_round_with_these_answers_publishes_this_file_and_this_status_line() {
    let b = Bench::new();
    let data = b.path("data/fakeups.dev");
    let mut d = b.daemon();
    assert_eq!(
        d.status_line(),
        "starting: first round under way; 2 sentinel(s)"
    );
    b.prober.set(A, true);
    b.prober.set(B, true);
    round(&mut d, &b.clock, 2 * S).await;
    let file = data_file(&data);
    assert_eq!(file["ups.status"], "OL");
    assert_eq!(file["battery.charge"], "100");
    assert_eq!(file["battery.runtime"], "300");
    let line = "OL: 2/2 sentinels answering; battery 100% (5m left)";
    assert_eq!(d.status_line(), line);
    assert_eq!(d.out.notifier.last_status(), line, "READY=1 with STATUS=");
    assert!(d.out.ready);

    // Both silent: the quorum is met, OB only after on-battery-after.
    b.prober.set(A, false);
    b.prober.set(B, false);
    round(&mut d, &b.clock, 30 * S).await;
    assert_eq!(status_of(&data), "OL");
    assert_eq!(
        d.out.notifier.last_status(),
        "OL: 0/2 sentinels answering, quorum all silent for 0s, OB after 30s; battery 100% (5m left)"
    );
    round(&mut d, &b.clock, 2 * S).await;
    assert_eq!(status_of(&data), "OB");
    assert_eq!(
        d.out.notifier.last_status(),
        "OB: 0/2 sentinels answering; battery 100% (5m left)"
    );
    let saved = d.out.store.load().unwrap().expect("the state is saved");
    assert_eq!(saved.status, Status::OnBattery);

    // One answers again: with quorum all that is mains back, OL after 15 s.
    b.prober.set(A, true);
    round(&mut d, &b.clock, S).await;
    assert_eq!(
        d.out.notifier.last_status(),
        "OB: 1/2 sentinels answering for 0s, OL after 15s; battery 99% (4m 58s left)"
    );
    let report = d.report();
    assert_eq!(report.status, "OB");
    assert_eq!((report.detection.silent, report.detection.total), (1, 2));
    assert!(report.sentinels[0].answered && !report.sentinels[1].answered);
    assert_eq!(report.sentinels[1].silent_rounds, 3);
    assert_eq!(report.battery.runtime, 298);
}

#[tokio::test]
async fn a_reload_that_changes_the_data_file_moves_it() {
    let b = Bench::new();
    b.prober.set(A, true);
    let mut d = b.daemon();
    round(&mut d, &b.clock, 2 * S).await;
    assert_eq!(status_of(&b.path("data/fakeups.dev")), "OL");

    b.write_config("moved/ups.dev", "");
    let (tx, _rx) = mpsc::channel(1);
    let reloaded = d.reload(&tx);
    d.settle();
    assert!(!reloaded.retime && reloaded.nut_view.is_none());
    let moved = b.path("moved/ups.dev");
    assert_eq!(status_of(&moved), "OL", "written at once in its new place");
    assert_eq!(d.report().daemon.data_file, moved);

    // The next change goes to the new place only.
    b.prober.set(A, false);
    silent_rounds(&mut d, &b.clock).await;
    assert_eq!(status_of(&moved), "OB");
    assert_eq!(status_of(&b.path("data/fakeups.dev")), "OL");

    // A broken file is refused and the running configuration kept.
    fs::write(b.config_path(), "sentinels = [\n").unwrap();
    d.reload(&tx);
    assert_eq!(d.config.nut.data_file, moved);
    assert_eq!(d.sentinels.len(), 2);
    assert!(d.out.notifier.last_status().starts_with("OB: 0/2"));
}

#[tokio::test]
async fn a_pause_holds_ol_through_an_outage_and_resume_lets_it_go_ob() {
    let b = Bench::new();
    let data = b.path("data/fakeups.dev");
    let mut d = b.daemon();
    round(&mut d, &b.clock, 2 * S).await;
    let r = pause(&mut d, None, true).await;
    assert_eq!(
        message(&r),
        "Paused by root until resumed: router firmware update"
    );
    // Silent for a minute: the pause holds OL with a full battery.
    for _ in 0..30 {
        round(&mut d, &b.clock, 2 * S).await;
    }
    assert_eq!(status_of(&data), "OL");
    assert_eq!(data_file(&data)["battery.charge"], "100");
    assert_eq!(
        d.out.notifier.last_status(),
        "PAUSED by root until resumed: router firmware update; holding OL; 0/2 sentinels answering"
    );
    assert!(
        d.out.store.load().unwrap().unwrap().pause.is_some(),
        "the pause is saved"
    );

    let r = command(&mut d, |reply| Command::Resume {
        by: "root".into(),
        reply,
    })
    .await;
    assert_eq!(message(&r), "Resumed by root - watching sentinels again");
    // Watching afresh: a whole on-battery-after of silence before OB.
    let resumed = b.clock.now();
    while status_of(&data) == "OL" {
        round(&mut d, &b.clock, S).await;
        assert!(b.clock.now() - resumed <= 32 * S, "no OB after resume");
    }
    assert_eq!(
        b.clock.now() - resumed,
        31 * S,
        "OB in the round 30 s after resume"
    );
}

#[tokio::test]
async fn a_pause_ends_by_itself_and_a_bad_one_is_refused() {
    let b = Bench::new();
    let mut d = b.daemon();
    b.prober.set(A, true);
    round(&mut d, &b.clock, S).await;
    let r = pause(&mut d, Some(10), false).await;
    assert!(message(&r).starts_with("Paused by root until "), "{r:?}");
    round(&mut d, &b.clock, 10 * S).await;
    assert!(d.pause.is_some());
    round(&mut d, &b.clock, S).await;
    assert!(d.pause.is_none(), "expired at its end");
    assert!(
        d.status_line().starts_with("OL: 1/2"),
        "{}",
        d.status_line()
    );

    for (seconds, until_resumed, why) in [
        (Some(5), true, "either a length or lasts until resumed"),
        (Some(0), false, "longer than 0s"),
        (Some(400 * 24 * 3600), false, "at most"),
    ] {
        match pause(&mut d, seconds, until_resumed).await {
            Response::Error { kind, message } => {
                assert_eq!(kind, ErrorKind::BadRequest);
                assert!(message.contains(why), "{message}");
            }
            ok => panic!("{ok:?}"),
        }
    }
    assert!(d.pause.is_none());
}

/// The end of the pause as the daemon shows it and saves it.
fn pause_until(d: &Daemon<Scripted>) -> chrono::DateTime<Local> {
    d.pause
        .as_ref()
        .and_then(|p| p.until)
        .expect("a pause with an end")
}

#[tokio::test]
async fn a_wall_clock_step_neither_ends_nor_stretches_a_pause() {
    let b = Bench::new();
    let data = b.path("data/fakeups.dev");
    let mut d = b.daemon();
    b.prober.set(A, true);
    b.prober.set(B, true);
    round(&mut d, &b.clock, S).await;

    // 10 minutes of maintenance; NTP steps the wall clock a day ahead and
    // the sentinels fall silent.
    message(&pause(&mut d, Some(600), false).await);
    let set = b.clock.now();
    let until = pause_until(&d);
    b.clock.step_wall(TimeDelta::days(1));
    b.prober.set(A, false);
    b.prober.set(B, false);
    round(&mut d, &b.clock, 2 * S).await;
    assert!(d.pause.is_some(), "a step ahead ended the pause");
    // Its end, as shown and as saved, moved with the wall clock.
    let ahead = until + TimeDelta::days(1);
    assert_eq!(pause_until(&d), ahead);
    assert_eq!(
        d.out.notifier.last_status(),
        format!(
            "PAUSED by root until {}: router firmware update; holding OL; \
             0/2 sentinels answering",
            ahead.format(crate::format::TIME_FORMAT)
        )
    );
    let saved = d.out.store.load().unwrap().and_then(|s| s.pause);
    assert_eq!(saved.and_then(|p| p.until), Some(ahead));
    // It holds OL through the outage for its 10 minutes on the boot clock.
    while d.pause.is_some() {
        assert_eq!(status_of(&data), "OL");
        round(&mut d, &b.clock, 2 * S).await;
    }
    let held = b.clock.now() - set;
    assert!((600 * S..=602 * S).contains(&held), "held {held:?}");
    assert_eq!(status_of(&data), "OL", "OB only after on-battery-after");

    // A day back now: a 10 s pause still ends 10 s later, not a day later.
    b.prober.set(A, true);
    b.prober.set(B, true);
    for _ in 0..20 {
        round(&mut d, &b.clock, S).await;
    }
    message(&pause(&mut d, Some(10), false).await);
    let set = b.clock.now();
    let until = pause_until(&d);
    b.clock.step_wall(-TimeDelta::days(1));
    round(&mut d, &b.clock, S).await;
    assert_eq!(pause_until(&d), until - TimeDelta::days(1));
    while d.pause.is_some() {
        assert!(
            b.clock.now() - set <= 11 * S,
            "a step back stretched the pause"
        );
        round(&mut d, &b.clock, S).await;
    }
    assert_eq!(b.clock.now() - set, 11 * S, "ended in the round after 10 s");
    assert!(
        d.status_line().starts_with("OL: 2/2"),
        "{}",
        d.status_line()
    );
}

#[tokio::test]
async fn the_status_names_what_nut_does_not_serve() {
    let b = Bench::new();
    b.write_config(
        "data/fakeups.dev",
        "upsd = \"127.0.0.1:3493\"\nups = [\"fakeups\", \"qnapups\", \"ups\"]",
    );
    b.prober.set(A, true);
    b.prober.set(B, true);
    let mut d = b.daemon();
    b.clock.advance(STARTUP_GRACE);
    round(&mut d, &b.clock, S).await;
    let look = |qnap: Result<&str, &str>| Snapshot {
        checked: Local::now(),
        error: None,
        ups: [("fakeups", Ok("OL")), ("qnapups", qnap), ("ups", Ok("OL"))]
            .into_iter()
            .map(|(name, status)| UpsState {
                name: name.into(),
                status: status.map(String::from).map_err(String::from),
                clients: vec!["192.0.2.20".into()],
            })
            .collect(),
        foreign: vec![],
    };
    d.on_nut(look(Err("driver not connected")));
    assert_eq!(
        d.out.notifier.last_status(),
        "OL: 2/2 sentinels answering; battery 100% (5m left); \
         NUT not serving qnapups: driver not connected"
    );
    let nut = d.report().nut;
    assert_eq!(nut.ups[1].problem.as_deref(), Some("driver not connected"));
    assert_eq!(nut.ups[0].status.as_deref(), Some("OL"));
    assert_eq!(nut.ups[0].clients, vec!["192.0.2.20"]);
    d.on_nut(look(Ok("OL")));
    assert_eq!(
        d.out.notifier.last_status(),
        "OL: 2/2 sentinels answering; battery 100% (5m left)"
    );
}

#[tokio::test]
async fn a_restart_on_battery_goes_on_from_the_state_file() {
    let b = Bench::new();
    let data = b.path("data/fakeups.dev");
    let mut d = b.daemon();
    silent_rounds(&mut d, &b.clock).await;
    assert_eq!(status_of(&data), "OB");
    let left = d.model.published().runtime;
    drop(d);
    // Down for 3 s, within the same boot: OB goes on, drained by those 3 s.
    b.clock.advance(3 * S);
    let mut d = b.daemon();
    assert_eq!(d.model.status(), Status::OnBattery);
    round(&mut d, &b.clock, S).await;
    assert_eq!(status_of(&data), "OB");
    assert_eq!(d.model.published().runtime, left - 3 - 2);
}

/// The state file as saved with fsync, and its runtime copy.
fn saved_states(b: &Bench) -> (crate::state::SavedState, crate::state::SavedState) {
    let load = |dir: &str| {
        crate::state::StateStore::new(&b.path(dir))
            .load()
            .unwrap()
            .unwrap()
    };
    (load("state"), load(""))
}

#[tokio::test]
async fn on_battery_the_state_is_saved_to_disk_only_when_the_status_changes() {
    let b = Bench::new();
    let data = b.path("data/fakeups.dev");
    let mut d = b.daemon();
    silent_rounds(&mut d, &b.clock).await;
    assert_eq!(status_of(&data), "OB");
    let (at_ob, copy) = saved_states(&b);
    assert_eq!(at_ob.status, Status::OnBattery);
    assert_eq!(copy.since_boot_ms, at_ob.since_boot_ms);
    for _ in 0..10 {
        round(&mut d, &b.clock, 2 * S).await;
    }
    let (durable, copy) = saved_states(&b);
    // Twenty seconds on battery: the disk's copy is the one of the OB
    // moment, the runtime copy follows every round (its charge with it).
    assert_eq!(durable, at_ob);
    assert_eq!(
        copy.since_boot_ms.unwrap() - at_ob.since_boot_ms.unwrap(),
        20_000
    );
    assert!(copy.charge < durable.charge);
    // A new status is saved to disk.
    while status_of(&data) == "OB" {
        round(&mut d, &b.clock, 2 * S).await;
    }
    assert_eq!(saved_states(&b).0.status, Status::LowBattery);
}

#[tokio::test]
async fn commands_are_carried_out_while_a_round_runs() {
    let b = Bench::new();
    b.prober.set(A, true);
    let mut d = b.daemon();
    round(&mut d, &b.clock, 2 * S).await;
    b.prober.hang.store(true, Ordering::SeqCst);
    let mut running = d.start_round(b.clock.now()).expect("a round starts");
    let r = pause(&mut d, Some(600), false).await;
    assert!(message(&r).starts_with("Paused by root until "), "{r:?}");
    // The round is still under way, and a second one cannot start.
    assert!(futures_poll_once(&mut running).await);
    assert!(d.start_round(b.clock.now()).is_none());
    assert!(d.report().pause.is_some());
}

/// Polls the round once: whether it is still running.
async fn futures_poll_once(running: &mut super::round::Running<Scripted>) -> bool {
    std::future::poll_fn(|cx| std::task::Poll::Ready(running.as_mut().poll(cx).is_pending())).await
}

#[tokio::test]
async fn the_watchdog_is_withheld_only_when_no_round_finishes_for_three_periods() {
    let b = Bench::new();
    b.prober.set(A, true);
    let mut d = b.daemon();
    round(&mut d, &b.clock, 2 * S).await;
    d.watchdog();
    assert_eq!(d.out.notifier.watchdogs(), 1);
    // The shipped timings: a round may take 2 x 1 s + 1 s; three of those.
    b.prober.hang.store(true, Ordering::SeqCst);
    let _running = d.start_round(b.clock.now()).expect("a round starts");
    b.clock.advance(7 * S);
    d.watchdog();
    assert_eq!(d.out.notifier.watchdogs(), 2, "a long round is not stuck");
    b.clock.advance(3 * S);
    d.watchdog();
    assert_eq!(
        d.out.notifier.watchdogs(),
        2,
        "withheld after 9 s without a round"
    );
    assert!(d.rounds.withheld);
}

/// A look at upsd with one foreign client logged in (or none).
fn look_with_client(client: Option<(&str, &str)>) -> Snapshot {
    let (clients, foreign) = match client {
        Some((address, mac)) => (
            vec![address.to_string()],
            vec![(address.parse().unwrap(), Some(mac.parse().unwrap()))],
        ),
        None => (vec![], vec![]),
    };
    Snapshot {
        checked: Local::now(),
        error: None,
        ups: ["fakeups", "qnapups", "ups"]
            .into_iter()
            .map(|name| UpsState {
                name: name.into(),
                status: Ok("OB".into()),
                clients: clients.clone(),
            })
            .collect(),
        foreign,
    }
}

#[tokio::test]
async fn the_wake_is_saved_to_disk_with_the_transitions_on_battery_and_once_a_step_on_mains() {
    use crate::core::wake::JobResult;
    let b = Bench::new();
    let data = b.path("data/fakeups.dev");
    let mut d = b.daemon();
    let nas = ("192.0.2.20", "00:11:32:aa:bb:cc");
    silent_rounds(&mut d, &b.clock).await;
    assert_eq!(status_of(&data), "OB");
    // The NAS is seen logged in on battery: the runtime copy has it at
    // once, the disk's copy at the next transition.
    d.on_nut(look_with_client(Some(nas)));
    d.settle();
    let (durable, copy) = saved_states(&b);
    let targets = |s: &crate::state::SavedState| s.wake.as_ref().map_or(0, |w| w.targets.len());
    assert_eq!((targets(&durable), targets(&copy)), (0, 1));
    while status_of(&data) == "OB" {
        round(&mut d, &b.clock, 2 * S).await;
    }
    let (durable, _) = saved_states(&b);
    assert_eq!(targets(&durable), 1);
    let target = &durable.wake.as_ref().unwrap().targets[0];
    assert_eq!(target.mac.map(|m| m.to_string()).as_deref(), Some(nas.1));

    // The NAS shut down; mains comes back: OL, then the first step after
    // wake.after (2 minutes).
    d.on_nut(look_with_client(None));
    b.prober.set(A, true);
    b.prober.set(B, true);
    while status_of(&data) != "OL" {
        round(&mut d, &b.clock, 2 * S).await;
    }
    let at_ol = saved_states(&b).0;
    let due = d.wake_due().expect("a step is due");
    assert_eq!(due - b.clock.now(), 120 * S - 2 * S);
    let mut saves = vec![];
    for step in 1..=3u32 {
        // Rounds until the step is due: nothing more on disk.
        while b.clock.now() < d.wake_due().unwrap() {
            round(&mut d, &b.clock, 2 * S).await;
        }
        assert_eq!(
            saved_states(&b).0.since_boot_ms,
            saves
                .last()
                .map_or(at_ol.since_boot_ms, |s: &crate::state::SavedState| s
                    .since_boot_ms)
        );
        // The step, its packet reported sent (no packet leaves a unit test).
        let (jobs, _) = d.wake.wake.step(b.clock.now(), &Default::default());
        assert_eq!(jobs.len(), 1);
        d.finish_wake_step(vec![(
            jobs[0].name.clone(),
            JobResult::Sent("192.0.2.255:9".into()),
        )]);
        d.settle();
        let durable = saved_states(&b).0;
        assert_eq!(durable.wake.as_ref().unwrap().targets[0].sent, step);
        saves.push(durable);
    }
    assert!(
        d.status_line().ends_with("; waking 1 machine"),
        "{}",
        d.status_line()
    );
    // Logged in again: up, and the wake's end is saved.
    d.on_nut(look_with_client(Some(nas)));
    d.settle();
    let durable = saved_states(&b).0;
    let wake = durable.wake.expect("the wake");
    assert!(wake.outage.is_none());
    assert!(matches!(
        wake.targets[0].state,
        crate::core::wake::TargetState::Up {
            after_ms: Some(60_000)
        }
    ));
    assert_eq!(d.wake_due(), None);
}
