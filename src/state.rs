//! What survives a restart and a reboot, kept in the state directory
//! (/var/lib/fakeups/state.json): the published status and since when, the
//! battery charge, and a pause with who set it, why and until when.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Local};
use serde::{Deserialize, Serialize};

use crate::atomic_file::{WriteError, write_atomically};
use crate::config::fmt_secs;
use crate::logging::TIME_FORMAT;
use crate::power::Status;

const FILE_NAME: &str = "state.json";
const VERSION: u32 = 1;

/// A pause of the watch, set by `fakeupsctl pause`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PauseRecord {
    /// When the pause ends by itself; None until resumed.
    pub until: Option<DateTime<Local>>,
    /// The user who set it.
    pub by: String,
    pub reason: Option<String>,
    pub since: DateTime<Local>,
}

impl PauseRecord {
    pub fn expired(&self, now: DateTime<Local>) -> bool {
        self.until.is_some_and(|until| until <= now)
    }
}

/// When something happened, on the clocks that matter after a restart: wall
/// time for people and for the end of a pause; the boot and the time since
/// it (CLOCK_BOOTTIME, which wall-clock corrections do not move) to measure
/// how long the daemon was down.
#[derive(Debug, Clone, PartialEq)]
pub struct Moment {
    pub wall: DateTime<Local>,
    pub boot_id: Option<String>,
    pub since_boot: Option<Duration>,
}

impl Moment {
    /// Now, on this machine.
    pub fn now() -> Moment {
        Moment {
            wall: Local::now(),
            boot_id: this_boot_id().clone(),
            since_boot: nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME)
                .ok()
                .map(Duration::from),
        }
    }
}

/// The kernel's id of the current boot.
pub const BOOT_ID: &str = "/proc/sys/kernel/random/boot_id";

/// The id of the current boot, read once: it cannot change while the
/// process runs, and on battery the state is saved at every round.
fn this_boot_id() -> &'static Option<String> {
    static ID: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    ID.get_or_init(|| {
        std::fs::read_to_string(BOOT_ID)
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    })
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedState {
    pub version: u32,
    pub status: Status,
    /// 0.0 (empty) to 1.0 (full).
    pub charge: f64,
    pub status_since: DateTime<Local>,
    pub saved_at: DateTime<Local>,
    /// The boot during which it was saved.
    #[serde(default)]
    pub boot_id: Option<String>,
    /// Milliseconds from that boot to the save.
    #[serde(default)]
    pub since_boot_ms: Option<u64>,
    #[serde(default)]
    pub pause: Option<PauseRecord>,
}

impl SavedState {
    pub fn new(
        status: Status,
        charge: f64,
        status_since: DateTime<Local>,
        pause: Option<PauseRecord>,
        now: &Moment,
    ) -> SavedState {
        SavedState {
            version: VERSION,
            status,
            charge,
            status_since,
            saved_at: now.wall,
            boot_id: now.boot_id.clone(),
            since_boot_ms: now
                .since_boot
                .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            pause,
        }
    }
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
/// never refilled. A pause is kept until its end time (wall clock).
pub fn restore(saved: &SavedState, now: &Moment, runtime: Duration) -> Restored {
    let charge = saved.charge.clamp(0.0, 1.0);
    let percent = |c: f64| format!("{:.0}%", c * 100.0);
    let same_boot = saved.boot_id.is_some() && saved.boot_id == now.boot_id;
    let down_for = match (same_boot, saved.since_boot_ms, now.since_boot) {
        (true, Some(saved_ms), Some(now_since)) => {
            Some(now_since.saturating_sub(Duration::from_millis(saved_ms)))
        }
        _ => None,
    };
    let mut notes = vec![];
    let (status, charge, status_since) = match (saved.status.on_battery(), down_for) {
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
        Some(p) if p.expired(now.wall) => {
            notes.push(format!(
                "the pause by {} ended at {} while fakeups was down",
                p.by,
                p.until
                    .map(|u| u.format(TIME_FORMAT).to_string())
                    .unwrap_or_default()
            ));
            None
        }
        other => other.clone(),
    };
    Restored {
        status,
        charge,
        status_since,
        pause,
        notes,
    }
}

/// The state file in the state directory.
#[derive(Debug, Clone)]
pub struct StateStore {
    path: PathBuf,
}

/// Why the saved state could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("{path}:{line}:{column}: unreadable state: {message}")]
    Parse {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
}

impl StateStore {
    pub fn new(directory: &Path) -> StateStore {
        StateStore {
            path: directory.join(FILE_NAME),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The saved state, or None when there is none yet.
    pub fn load(&self) -> Result<Option<SavedState>, LoadError> {
        let text = match fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(LoadError::Read {
                    path: self.path.clone(),
                    source,
                });
            }
        };
        let state: SavedState = serde_json::from_str(&text).map_err(|e| {
            let message = e.to_string();
            // serde_json ends its text with the place, which we print first.
            let message = match message.rfind(" at line ") {
                Some(i) => message[..i].to_string(),
                None => message,
            };
            LoadError::Parse {
                path: self.path.clone(),
                line: e.line(),
                column: e.column(),
                message,
            }
        })?;
        if state.version > VERSION {
            return Err(LoadError::Parse {
                path: self.path.clone(),
                line: 1,
                column: 1,
                message: format!(
                    "written by a newer fakeups (state version {}; this one reads {VERSION})",
                    state.version
                ),
            });
        }
        Ok(Some(state))
    }

    pub fn save(&self, state: &SavedState) -> Result<(), WriteError> {
        let mut text = serde_json::to_string_pretty(state).map_err(|e| WriteError {
            path: self.path.clone(),
            what: "cannot encode the state",
            source: e.into(),
        })?;
        text.push('\n');
        write_atomically(&self.path, text.as_bytes(), 0o644)
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
    fn saved(status: Status, charge: f64, wall: DateTime<Local>) -> SavedState {
        let at = moment(BOOT, 1000, wall);
        SavedState::new(status, charge, wall - TimeDelta::seconds(60), None, &at)
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
        old.boot_id = None;
        let r = restore(&old, &moment(BOOT, 1001, t), RUNTIME);
        assert_eq!(r.status, Status::Online);
    }

    #[test]
    fn on_mains_keeps_the_charge() {
        let t = Local::now();
        let r = restore(&saved(Status::Online, 0.5, t), &moment("x", 5, t), RUNTIME);
        assert_eq!((r.status, r.charge), (Status::Online, 0.5));
    }

    #[test]
    fn a_pause_is_kept_until_its_end() {
        let t = Local::now();
        let mut s = saved(Status::Online, 1.0, t);
        s.pause = Some(PauseRecord {
            until: Some(t + TimeDelta::minutes(10)),
            by: "root".into(),
            reason: None,
            since: t,
        });
        let r = restore(
            &s,
            &moment("reboot", 30, t + TimeDelta::minutes(5)),
            RUNTIME,
        );
        assert!(r.pause.is_some());
        let r = restore(
            &s,
            &moment("reboot", 30, t + TimeDelta::minutes(11)),
            RUNTIME,
        );
        assert!(r.pause.is_none());
        assert!(
            r.notes[1].starts_with("the pause by root ended at "),
            "{:?}",
            r.notes
        );
    }

    #[test]
    fn save_and_load_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::new(dir.path());
        assert!(store.load().unwrap().is_none());
        let now = Local::now();
        let mut s = saved(Status::LowBattery, 0.25, now);
        s.pause = Some(PauseRecord {
            until: Some(now + TimeDelta::hours(1)),
            by: "root".into(),
            reason: Some("router firmware update".into()),
            since: now,
        });
        store.save(&s).unwrap();
        assert_eq!(store.load().unwrap(), Some(s));
    }

    #[test]
    fn a_broken_file_is_reported_with_its_place_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::new(dir.path());
        fs::write(store.path(), "{\n  \"version\": 1,\n  oops\n}").unwrap();
        let e = store.load().unwrap_err().to_string();
        assert!(
            e.contains("state.json:3:3: unreadable state: key must be a string"),
            "{e}"
        );
        assert!(!e.contains("at line"), "{e}");
    }

    #[test]
    fn a_newer_version_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::new(dir.path());
        let mut s = saved(Status::Online, 1.0, Local::now());
        s.version = 9;
        store.save(&s).unwrap();
        assert!(
            store
                .load()
                .unwrap_err()
                .to_string()
                .contains("newer fakeups")
        );
    }

    #[test]
    fn pause_expiry() {
        let now = Local::now();
        let p = PauseRecord {
            until: Some(now),
            by: "root".into(),
            reason: None,
            since: now,
        };
        assert!(p.expired(now));
        assert!(!p.expired(now - TimeDelta::seconds(1)));
        let forever = PauseRecord { until: None, ..p };
        assert!(!forever.expired(now + TimeDelta::days(365)));
    }

    #[test]
    fn this_machine_has_a_boot_id_and_a_boot_clock() {
        let m = Moment::now();
        assert!(m.boot_id.is_some() && m.since_boot.is_some(), "{m:?}");
    }
}
