//! What survives a restart and a reboot, kept in the state directory
//! (/var/lib/fakeups/state.json): the published status and since when, the
//! battery charge, and a pause with who set it, why and until when. How to
//! go on from it is the core's decision (core::restore).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Local};
use serde::{Deserialize, Serialize};

use crate::core::{Moment, PauseRecord, Saved, Status, WakeRecord};
use crate::sys::atomic_file::{Sync, WriteError, write_atomically};

const FILE_NAME: &str = "state.json";
const VERSION: u32 = 1;

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
    /// A drill (`fakeupsctl drill`) was under way.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub drill: bool,
    /// The machines to wake after the last outage, and how far that went.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wake: Option<WakeRecord>,
}

impl SavedState {
    /// The state `saved` and the wake in the file's form.
    pub fn new(saved: Saved, wake: Option<WakeRecord>) -> SavedState {
        SavedState {
            version: VERSION,
            status: saved.status,
            charge: saved.charge,
            status_since: saved.status_since,
            saved_at: saved.at.wall,
            boot_id: saved.at.boot_id,
            since_boot_ms: saved
                .at
                .since_boot
                .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            pause: saved.pause,
            drill: saved.drill,
            wake,
        }
    }

    /// What the file says, for the decision of how to go on.
    pub fn saved(&self) -> Saved {
        Saved {
            status: self.status,
            charge: self.charge,
            status_since: self.status_since,
            pause: self.pause.clone(),
            drill: self.drill,
            at: Moment {
                wall: self.saved_at,
                boot_id: self.boot_id.clone(),
                since_boot: self.since_boot_ms.map(Duration::from_millis),
            },
        }
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

    /// The text of the file for `state`.
    pub fn encode(&self, state: &SavedState) -> Result<String, WriteError> {
        let mut text = serde_json::to_string_pretty(state).map_err(|e| WriteError {
            path: self.path.clone(),
            what: "cannot encode the state",
            source: e.into(),
        })?;
        text.push('\n');
        Ok(text)
    }

    /// Writes `text` (from `encode`) as the file.
    pub fn write(&self, text: &str, sync: Sync) -> Result<(), WriteError> {
        write_atomically(&self.path, text.as_bytes(), 0o644, sync)
    }

    #[cfg(test)]
    pub fn save(&self, state: &SavedState, sync: Sync) -> Result<(), WriteError> {
        self.write(&self.encode(state)?, sync)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    fn saved(status: Status, charge: f64, wall: DateTime<Local>) -> SavedState {
        SavedState::new(
            Saved {
                drill: false,
                status,
                charge,
                status_since: wall - TimeDelta::seconds(60),
                pause: None,
                at: Moment {
                    wall,
                    boot_id: Some("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0".into()),
                    since_boot: Some(Duration::from_secs(1000)),
                },
            },
            None,
        )
    }

    #[test]
    fn the_file_keeps_what_the_decision_needs() {
        let now = Local::now();
        let s = saved(Status::OnBattery, 0.5, now);
        let back = SavedState::new(s.saved(), None);
        assert_eq!(back, s);
        assert_eq!(s.saved().at.since_boot, Some(Duration::from_secs(1000)));
    }

    #[test]
    fn save_and_load_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::new(dir.path());
        assert!(store.load().unwrap().is_none());
        let now = Local::now();
        let mut s = saved(Status::LowBattery, 0.25, now);
        s.pause = Some(PauseRecord::new(
            &s.saved().at,
            Some(Duration::from_secs(3600)),
            "root".into(),
            Some("router firmware update".into()),
        ));
        store.save(&s, Sync::Durable).unwrap();
        assert_eq!(store.load().unwrap(), Some(s));
    }

    #[test]
    fn a_state_file_of_0_1_0_with_a_pause_loads() {
        // As fakeups 0.1.0 wrote it: the pause has no boot and no end on
        // the boot clock, and goes by its wall time (core::pause).
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::new(dir.path());
        let text = r#"{
  "version": 1,
  "status": "OL",
  "charge": 1.0,
  "status_since": "2026-11-21T13:00:00+01:00",
  "saved_at": "2026-11-21T14:00:00.123456789+01:00",
  "boot_id": "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
  "since_boot_ms": 1000000,
  "pause": {
    "until": "2026-11-21T16:00:00.123456789+01:00",
    "by": "root",
    "reason": "router firmware update",
    "since": "2026-11-21T14:00:00.123456789+01:00"
  }
}
"#;
        fs::write(store.path(), text).unwrap();
        let state = store.load().unwrap().expect("a state");
        let pause = state.pause.expect("its pause");
        assert_eq!(pause.reason.as_deref(), Some("router firmware update"));
        assert_eq!((pause.boot_id, pause.until_since_boot_ms), (None, None));
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
        store.save(&s, Sync::Durable).unwrap();
        assert!(
            store
                .load()
                .unwrap_err()
                .to_string()
                .contains("newer fakeups")
        );
    }
}
