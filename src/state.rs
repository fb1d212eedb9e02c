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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedState {
    pub version: u32,
    pub status: Status,
    /// 0.0 (empty) to 1.0 (full).
    pub charge: f64,
    pub status_since: DateTime<Local>,
    pub saved_at: DateTime<Local>,
    #[serde(default)]
    pub pause: Option<PauseRecord>,
}

impl SavedState {
    pub fn new(
        status: Status,
        charge: f64,
        status_since: DateTime<Local>,
        pause: Option<PauseRecord>,
        now: DateTime<Local>,
    ) -> SavedState {
        SavedState {
            version: VERSION,
            status,
            charge,
            status_since,
            saved_at: now,
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
    /// A line for the log that says what was restored and why.
    pub note: String,
}

/// Decides how to go on from `saved` at wall time `now`.
///
/// On battery, the battery went on draining while the daemon was down, so the
/// charge loses the time since the save and the status stays on battery: a
/// restart never refills the battery nor flips to OL by itself. A saved
/// on-battery state older than a full `runtime` says nothing about the
/// present (the machine itself was down), so the charge is kept but the
/// status starts on mains and the sentinels decide. On mains, the charge is
/// kept as it was.
pub fn restore(saved: &SavedState, now: DateTime<Local>, runtime: Duration) -> Restored {
    let age = (now - saved.saved_at).to_std().unwrap_or(Duration::ZERO);
    let charge = saved.charge.clamp(0.0, 1.0);
    let age_text = humantime::format_duration(Duration::from_secs(age.as_secs()));
    let (status, charge, status_since, note) = if saved.status.on_battery() {
        if age <= runtime {
            let drained = (charge - age.as_secs_f64() / runtime.as_secs_f64()).max(0.0);
            (
                saved.status,
                drained,
                saved.status_since,
                format!(
                    "restored {} with battery {:.0}% (saved {age_text} ago)",
                    saved.status,
                    drained * 100.0
                ),
            )
        } else {
            (
                Status::Online,
                charge,
                now,
                format!(
                    "saved state {} is {age_text} old, longer than battery.runtime: \
                     starting on mains with battery {:.0}%",
                    saved.status,
                    charge * 100.0
                ),
            )
        }
    } else {
        (
            Status::Online,
            charge,
            saved.status_since,
            format!("restored OL with battery {:.0}%", charge * 100.0),
        )
    };
    Restored {
        status,
        charge,
        status_since,
        pause: saved.pause.clone(),
        note,
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
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| LoadError::Parse {
                path: self.path.clone(),
                line: e.line(),
                column: e.column(),
                message: e.to_string(),
            })
    }

    pub fn save(&self, state: &SavedState) -> Result<(), WriteError> {
        let mut text = serde_json::to_string_pretty(state).unwrap_or_default();
        text.push('\n');
        write_atomically(&self.path, text.as_bytes(), 0o644)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    const RUNTIME: Duration = Duration::from_secs(300);

    fn saved(status: Status, charge: f64, age_secs: i64, now: DateTime<Local>) -> SavedState {
        let at = now - TimeDelta::seconds(age_secs);
        SavedState::new(status, charge, at - TimeDelta::seconds(60), None, at)
    }

    #[test]
    fn on_battery_goes_on_draining_from_the_save() {
        let now = Local::now();
        let r = restore(&saved(Status::OnBattery, 0.74, 3, now), now, RUNTIME);
        assert_eq!(r.status, Status::OnBattery);
        assert!((r.charge - (0.74 - 3.0 / 300.0)).abs() < 1e-9, "{r:?}");
        assert!(
            r.note.starts_with("restored OB with battery 73%"),
            "{}",
            r.note
        );
    }

    #[test]
    fn a_stale_outage_starts_on_mains_without_refill() {
        let now = Local::now();
        let r = restore(&saved(Status::LowBattery, 0.3, 3600, now), now, RUNTIME);
        assert_eq!(r.status, Status::Online);
        assert_eq!(r.charge, 0.3);
        assert_eq!(r.status_since, now);
    }

    #[test]
    fn on_mains_keeps_the_charge() {
        let now = Local::now();
        let r = restore(&saved(Status::Online, 0.5, 100, now), now, RUNTIME);
        assert_eq!((r.status, r.charge), (Status::Online, 0.5));
    }

    #[test]
    fn a_clock_set_back_does_not_refill() {
        let now = Local::now();
        let r = restore(&saved(Status::OnBattery, 0.6, -500, now), now, RUNTIME);
        assert_eq!(r.charge, 0.6);
    }

    #[test]
    fn save_and_load_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::new(dir.path());
        assert!(store.load().unwrap().is_none());
        let now = Local::now();
        let mut s = saved(Status::LowBattery, 0.25, 0, now);
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
    fn a_broken_file_is_reported_with_its_place() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::new(dir.path());
        fs::write(store.path(), "{\n  \"version\": 1,\n  oops\n}").unwrap();
        let e = store.load().unwrap_err().to_string();
        assert!(e.contains("state.json:3:"), "{e}");
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
}
