//! How to go on after a restart: the saved status, charge and pause
//! weighed against how long fakeups was down and whether the machine
//! rebooted. Both moments are arguments; nothing here reads a clock.

use std::time::Duration;

use chrono::{DateTime, Local};

use super::moment::Moment;
use super::pause::PauseRecord;
use super::status::Status;
use crate::format::{TIME_FORMAT, fmt_secs};

/// What was saved, and when.
#[derive(Debug, Clone, PartialEq)]
pub struct Saved {
    pub status: Status,
    /// 0.0 (empty) to 1.0 (full).
    pub charge: f64,
    pub status_since: DateTime<Local>,
    pub pause: Option<PauseRecord>,
    /// A drill was under way: its OB is not a real outage.
    pub drill: bool,
    pub at: Moment,
}

/// What to start from, after weighing the saved state against its age.
#[derive(Debug, Clone, PartialEq)]
pub struct Restored {
    pub status: Status,
    pub charge: f64,
    pub status_since: DateTime<Local>,
    pub pause: Option<PauseRecord>,
    /// Lines for the log that say what was restored and why.
    pub notes: Vec<String>,
}

/// Of the saves found (the state directory's, and the copy in the runtime
/// directory that is rewritten at every change without fsync), the one to go
/// on from: the latest of this boot by the boot clock, else the latest by
/// wall time.
pub fn newest<'a>(saves: impl IntoIterator<Item = &'a Saved>, now: &Moment) -> Option<&'a Saved> {
    let this_boot = |s: &Saved| s.at.boot_id.is_some() && s.at.boot_id == now.boot_id;
    saves.into_iter().max_by(|a, b| {
        let key = |s: &Saved| {
            (
                this_boot(s),
                this_boot(s).then_some(s.at.since_boot).flatten(),
            )
        };
        key(a).cmp(&key(b)).then(a.at.wall.cmp(&b.at.wall))
    })
}

/// Decides how to go on from `saved` at `now`.
///
/// A restart of the daemon during an outage (the same boot) goes on on
/// battery, with the charge drained by the time it was down, measured on
/// CLOCK_BOOTTIME: it neither refills the battery nor flips to OL by itself.
/// If it was down longer than a whole `runtime`, the saved state says nothing
/// about the present and it starts on mains (keeping the charge), as it does
/// after a reboot: then the machine itself was off or restarted, and its wall
/// clock may be anything (a Raspberry Pi has no real-time clock), so a stale
/// OB LB must not make a NAS that boots on restored mains shut down again. In
/// every case the sentinels decide from the first round, and the charge is
/// never refilled. A pause is kept until its end: on the boot clock within
/// the boot it was set in, at its wall time after a reboot (see core::pause).
pub fn restore(saved: &Saved, now: &Moment, runtime: Duration) -> Restored {
    let charge = saved.charge.clamp(0.0, 1.0);
    let percent = |c: f64| format!("{:.0}%", c * 100.0);
    let same_boot = saved.at.boot_id.is_some() && saved.at.boot_id == now.boot_id;
    let down_for = match (same_boot, saved.at.since_boot, now.since_boot) {
        (true, Some(saved_at), Some(now_since)) => Some(now_since.saturating_sub(saved_at)),
        _ => None,
    };
    let mut notes = vec![];
    let (status, charge, status_since) = match (saved.status.on_battery(), down_for) {
        // A drill does not outlive the daemon: its outage was simulated.
        (true, _) if saved.drill => {
            notes.push(format!(
                "a drill was under way ({}): it ended with the restart; starting on mains \
                 with battery {}",
                saved.status,
                percent(charge)
            ));
            (Status::Online, charge, now.wall)
        }
        (false, _) => {
            notes.push(format!("restored OL with battery {}", percent(charge)));
            (Status::Online, charge, saved.status_since)
        }
        (true, Some(down)) if down <= runtime => {
            let drained = (charge - down.as_secs_f64() / runtime.as_secs_f64()).max(0.0);
            notes.push(format!(
                "restored {} with battery {} (down for {})",
                saved.status,
                percent(drained),
                fmt_secs(down.as_secs())
            ));
            (saved.status, drained, saved.status_since)
        }
        (true, Some(down)) => {
            notes.push(format!(
                "the saved {} is {} old, longer than battery.runtime: starting on mains \
                 with battery {}; the sentinels decide",
                saved.status,
                fmt_secs(down.as_secs()),
                percent(charge)
            ));
            (Status::Online, charge, now.wall)
        }
        (true, None) => {
            notes.push(format!(
                "the machine restarted since {} was saved: starting on mains with battery {}; \
                 the sentinels decide",
                saved.status,
                percent(charge)
            ));
            (Status::Online, charge, now.wall)
        }
    };
    let pause = match &saved.pause {
        Some(p) if p.expired(now) => {
            notes.push(format!(
                "the pause by {} ended at {} while fakeups was down",
                p.by,
                p.ends_at(now)
                    .map(|u| u.format(TIME_FORMAT).to_string())
                    .unwrap_or_default()
            ));
            None
        }
        Some(p) => {
            let mut p = p.clone();
            if let Some(moved) = p.follow_wall_clock(now) {
                notes.push(p.describe_step(moved, now));
            }
            Some(p)
        }
        None => None,
    };
    Restored {
        status,
        charge,
        status_since,
        pause,
        notes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    const RUNTIME: Duration = Duration::from_secs(300);
    const BOOT: &str = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";

    fn moment(boot: &str, since_boot_secs: u64, wall: DateTime<Local>) -> Moment {
        Moment {
            wall,
            boot_id: Some(boot.to_string()),
            since_boot: Some(Duration::from_secs(since_boot_secs)),
        }
    }

    /// Saved at 1000 s after boot BOOT.
    fn saved(status: Status, charge: f64, wall: DateTime<Local>) -> Saved {
        Saved {
            drill: false,
            status,
            charge,
            status_since: wall - TimeDelta::seconds(60),
            pause: None,
            at: moment(BOOT, 1000, wall),
        }
    }

    #[test]
    fn a_restart_on_battery_goes_on_draining_from_the_save() {
        let t = Local::now();
        let r = restore(
            &saved(Status::OnBattery, 0.74, t),
            &moment(BOOT, 1003, t),
            RUNTIME,
        );
        assert_eq!(r.status, Status::OnBattery);
        assert!((r.charge - (0.74 - 3.0 / 300.0)).abs() < 1e-9, "{r:?}");
        assert_eq!(r.notes, vec!["restored OB with battery 73% (down for 3s)"]);
    }

    #[test]
    fn the_wall_clock_does_not_matter_within_a_boot() {
        // The wall clock jumped back an hour (NTP): the down time is still 3 s.
        let t = Local::now();
        let now = moment(BOOT, 1003, t - TimeDelta::hours(1));
        let r = restore(&saved(Status::LowBattery, 0.2, t), &now, RUNTIME);
        assert_eq!(r.status, Status::LowBattery);
        assert!((r.charge - 0.19).abs() < 1e-9);
    }

    #[test]
    fn down_longer_than_the_runtime_starts_on_mains_without_refill() {
        let t = Local::now();
        let r = restore(
            &saved(Status::LowBattery, 0.3, t),
            &moment(BOOT, 1000 + 3600, t),
            RUNTIME,
        );
        assert_eq!((r.status, r.charge), (Status::Online, 0.3));
    }

    #[test]
    fn after_a_reboot_a_saved_outage_starts_on_mains() {
        // The Pi lost power and its clock is behind the save (no RTC).
        let t = Local::now();
        let now = moment("another-boot", 20, t - TimeDelta::days(3));
        let r = restore(&saved(Status::LowBattery, 0.1, t), &now, RUNTIME);
        assert_eq!((r.status, r.charge), (Status::Online, 0.1));
        assert!(
            r.notes[0].starts_with("the machine restarted"),
            "{:?}",
            r.notes
        );
        // And a state from before boot ids were saved counts as another boot.
        let mut old = saved(Status::OnBattery, 0.5, t);
        old.at.boot_id = None;
        let r = restore(&old, &moment(BOOT, 1001, t), RUNTIME);
        assert_eq!(r.status, Status::Online);
    }

    #[test]
    fn the_newest_save_of_this_boot_wins() {
        let t = Local::now();
        let durable = saved(Status::OnBattery, 0.9, t);
        let mut runtime_copy = saved(Status::LowBattery, 0.2, t - TimeDelta::hours(2));
        runtime_copy.at.since_boot = Some(Duration::from_secs(1200));
        let now = moment(BOOT, 1300, t);
        // Later on the boot clock, although its wall time is older.
        let pick = newest([&durable, &runtime_copy], &now).unwrap();
        assert_eq!(pick.status, Status::LowBattery);
        // From another boot, the wall time decides.
        let mut old_boot = saved(Status::Online, 1.0, t + TimeDelta::seconds(5));
        old_boot.at.boot_id = Some("another".into());
        assert_eq!(
            newest([&old_boot, &durable], &now).unwrap().status,
            Status::OnBattery
        );
        let after_reboot = moment("third", 10, t + TimeDelta::hours(1));
        assert_eq!(
            newest([&old_boot, &durable], &after_reboot).unwrap().status,
            Status::Online
        );
        assert!(newest([], &now).is_none());
    }

    #[test]
    fn a_drill_ends_with_a_restart_on_mains_keeping_its_charge() {
        let t = Local::now();
        let mut s = saved(Status::LowBattery, 0.4, t);
        s.drill = true;
        let r = restore(&s, &moment(BOOT, 1010, t), RUNTIME);
        assert_eq!((r.status, r.charge), (Status::Online, 0.4));
        assert!(
            r.notes[0].contains("a drill was under way (OB LB)"),
            "{:?}",
            r.notes
        );
    }

    #[test]
    fn on_mains_keeps_the_charge() {
        let t = Local::now();
        let r = restore(&saved(Status::Online, 0.5, t), &moment("x", 5, t), RUNTIME);
        assert_eq!((r.status, r.charge), (Status::Online, 0.5));
    }

    /// A pause of `minutes` set with the save, at 1000 s after boot BOOT.
    fn saved_with_pause(t: DateTime<Local>, minutes: u64) -> Saved {
        let mut s = saved(Status::Online, 1.0, t);
        let length = Duration::from_secs(minutes * 60);
        s.pause = Some(PauseRecord::new(&s.at, Some(length), "root".into(), None));
        s
    }

    #[test]
    fn after_a_reboot_a_pause_is_kept_until_its_wall_time() {
        let t = Local::now();
        let s = saved_with_pause(t, 10);
        let r = restore(
            &s,
            &moment("reboot", 30, t + TimeDelta::minutes(5)),
            RUNTIME,
        );
        assert_eq!(r.pause, s.pause, "kept as it was");
        let r = restore(
            &s,
            &moment("reboot", 30, t + TimeDelta::minutes(11)),
            RUNTIME,
        );
        assert!(r.pause.is_none());
        let end = (t + TimeDelta::minutes(10)).format(TIME_FORMAT);
        assert_eq!(
            r.notes[1],
            format!("the pause by root ended at {end} while fakeups was down")
        );
    }

    #[test]
    fn within_a_boot_a_pause_is_kept_for_its_length_on_the_boot_clock() {
        let t = Local::now();
        let s = saved_with_pause(t, 10);
        // The wall clock as it reads `secs` after the save, stepped by `step`.
        let wall = |step: TimeDelta, secs: i64| t + step + TimeDelta::seconds(secs);
        // Restarted 5 s later in the same boot, the wall clock stepped a
        // day ahead meanwhile: 9m 55s left, and its end shown a day later.
        let day = TimeDelta::days(1);
        let r = restore(&s, &moment(BOOT, 1005, wall(day, 5)), RUNTIME);
        assert_eq!(r.pause.and_then(|p| p.until), Some(wall(day, 600)));
        assert!(
            r.notes[1].starts_with(
                "the wall clock was stepped by +1day; the pause by root still ends in 9m 55s"
            ),
            "{:?}",
            r.notes
        );
        // Stepped a day back: kept, and not for a day more.
        let r = restore(&s, &moment(BOOT, 1005, wall(-day, 5)), RUNTIME);
        assert_eq!(r.pause.and_then(|p| p.until), Some(wall(-day, 600)));
        // Its length on the boot clock is over: ended, whatever the wall
        // says, at the time the wall clock now reads for its end.
        let r = restore(&s, &moment(BOOT, 1601, wall(-day, 601)), RUNTIME);
        assert!(r.pause.is_none());
        let end = wall(-day, 600).format(TIME_FORMAT);
        assert_eq!(
            r.notes[1],
            format!("the pause by root ended at {end} while fakeups was down")
        );
        // Unstepped, nothing moves and nothing is said of it.
        let r = restore(&s, &moment(BOOT, 1005, wall(TimeDelta::zero(), 5)), RUNTIME);
        assert_eq!(r.pause, s.pause);
        assert_eq!(r.notes.len(), 1, "{:?}", r.notes);
    }

    #[test]
    fn a_pause_saved_by_0_1_0_goes_by_wall_time() {
        // No boot and no end on the boot clock: the wall time decides,
        // even in the boot it may have been set in.
        let t = Local::now();
        let mut s = saved_with_pause(t, 10);
        if let Some(p) = s.pause.as_mut() {
            p.boot_id = None;
            p.until_since_boot_ms = None;
        }
        let r = restore(&s, &moment(BOOT, 1005, t + TimeDelta::days(1)), RUNTIME);
        assert!(r.pause.is_none(), "ended by the wall clock");
        let r = restore(&s, &moment(BOOT, 1005, t - TimeDelta::days(1)), RUNTIME);
        assert_eq!(r.pause, s.pause, "kept as it was");
    }
}
