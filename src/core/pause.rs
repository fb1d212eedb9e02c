//! A pause of the watch (`fakeupsctl pause`): how long a request may make
//! it, what is kept of its reason, when it ends and how it reads. Moments
//! are arguments; nothing here reads a clock.
//!
//! Within the boot it was set in, a pause lasts its length on the boot clock
//! (CLOCK_BOOTTIME), whatever the wall clock does: a Raspberry Pi has no
//! real-time clock, boots with a stale one, and NTP steps it, often by days.
//! Only a pause from another boot (or from a state file of fakeups 0.1.0,
//! which kept no boot) ends at its wall time: the boot clock restarted with
//! the machine, and the wall time is all that is left to go by.
//!
//! The wall time shown as its end (`until`: fakeupsctl status, STATUS=, the
//! log) is kept truthful within the boot: when the wall clock and the boot
//! clock disagree about the end by `WALL_STEP` or more, the wall clock was
//! stepped, and `until` moves to now (wall) + the time left (boot clock).
//! The daemon saves the moved end, so that after a reboot the pause ends
//! at the wall time it would have ended at. `since` stays as the wall clock
//! read it when the pause was set, like the time of a log line.

use std::time::Duration;

use chrono::{DateTime, Local, TimeDelta};
use serde::{Deserialize, Serialize};

use super::moment::Moment;
use crate::format::{TIME_FORMAT, fmt_duration, fmt_secs};

/// The longest pause a request may ask for.
pub const MAX_PAUSE: Duration = Duration::from_secs(366 * 24 * 3600);
/// The longest reason kept, in characters.
pub const MAX_REASON: usize = 200;
/// How far the wall clock and the boot clock may disagree about a pause's
/// end before `until` follows the boot clock: less is drift (NTP slews the
/// wall clock by up to 0.5 ms/s), more is a step.
pub const WALL_STEP: Duration = Duration::from_secs(2);

/// A pause of the watch, set by `fakeupsctl pause`; kept in state.json as is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PauseRecord {
    /// When the pause ends by itself, in wall time; None until resumed. For
    /// people, and the end after a reboot; within the pause's boot it
    /// follows the boot clock (`follow_wall_clock`).
    pub until: Option<DateTime<Local>>,
    /// The user who set it.
    pub by: String,
    pub reason: Option<String>,
    /// When it was set, as the wall clock read then.
    pub since: DateTime<Local>,
    /// The boot it was set in (the kernel's boot id); None when unknown,
    /// and in a state file of fakeups 0.1.0.
    #[serde(default)]
    pub boot_id: Option<String>,
    /// Its end on that boot's clock (CLOCK_BOOTTIME), in milliseconds since
    /// the boot; None until resumed or when unknown.
    #[serde(default)]
    pub until_since_boot_ms: Option<u64>,
}

/// Why a pause request cannot be carried out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PauseError {
    #[error("a pause has either a length or lasts until resumed, not both")]
    LengthAndUntilResumed,
    #[error("a pause must last longer than 0s")]
    Empty,
    #[error(
        "a pause may last {} at most; use --until-resumed for longer",
        fmt_duration(MAX_PAUSE)
    )]
    TooLong,
}

/// The length of a requested pause: `seconds`, none with `until_resumed`,
/// or `default` when the request names neither.
pub fn requested_length(
    seconds: Option<u64>,
    until_resumed: bool,
    default: Duration,
) -> Result<Option<Duration>, PauseError> {
    let length = match (seconds, until_resumed) {
        (Some(_), true) => return Err(PauseError::LengthAndUntilResumed),
        (Some(0), false) => return Err(PauseError::Empty),
        (Some(s), false) => Some(Duration::from_secs(s)),
        (None, false) => Some(default),
        (None, true) => None,
    };
    if length.is_some_and(|l| l > MAX_PAUSE) {
        return Err(PauseError::TooLong);
    }
    Ok(length)
}

impl PauseRecord {
    /// A pause set by `by` at `now` for `length` (None: until resumed).
    pub fn new(
        now: &Moment,
        length: Option<Duration>,
        by: String,
        reason: Option<String>,
    ) -> PauseRecord {
        let until = length.and_then(|l| {
            TimeDelta::from_std(l)
                .ok()
                .and_then(|d| now.wall.checked_add_signed(d))
        });
        let until_since_boot_ms = match (until, length, now.since_boot) {
            (Some(_), Some(l), Some(t)) => t
                .checked_add(l)
                .and_then(|end| u64::try_from(end.as_millis()).ok()),
            _ => None,
        };
        PauseRecord {
            until,
            by,
            reason: clean_reason(reason),
            since: now.wall,
            boot_id: now.boot_id.clone(),
            until_since_boot_ms,
        }
    }

    /// Its end and now on the boot clock, when it was set in the boot of
    /// `now` and both are known; None when it goes by wall time.
    fn on_boot_clock(&self, now: &Moment) -> Option<(Duration, Duration)> {
        self.until?;
        let end = Duration::from_millis(self.until_since_boot_ms?);
        Some((end, now.since_boot_in(self.boot_id.as_deref())?))
    }

    /// How long it has left at `now` (zero once it has ended); None for a
    /// pause until resumed.
    pub fn left(&self, now: &Moment) -> Option<Duration> {
        if let Some((end, since_boot)) = self.on_boot_clock(now) {
            return Some(end.saturating_sub(since_boot));
        }
        let until = self.until?;
        Some((until - now.wall).to_std().unwrap_or(Duration::ZERO))
    }

    /// Whether it has ended by `now`: on the boot clock within its boot, on
    /// the wall clock after a reboot.
    pub fn expired(&self, now: &Moment) -> bool {
        self.left(now).is_some_and(|left| left.is_zero())
    }

    /// Its end in wall time as the wall clock reads at `now`: within its
    /// boot, now (wall) + the time left on the boot clock (earlier than now
    /// once it has ended); from another boot, `until`.
    pub fn ends_at(&self, now: &Moment) -> Option<DateTime<Local>> {
        let Some((end, since_boot)) = self.on_boot_clock(now) else {
            return self.until;
        };
        let to_end = if end >= since_boot {
            TimeDelta::from_std(end - since_boot)
        } else {
            TimeDelta::from_std(since_boot - end).map(|d| -d)
        };
        to_end.ok().and_then(|d| now.wall.checked_add_signed(d))
    }

    /// Moves `until` to `ends_at(now)` when the two are `WALL_STEP` or more
    /// apart: the wall clock was stepped since `until` was set. Returns by
    /// how much it moved, for the log; None when it did not.
    pub fn follow_wall_clock(&mut self, now: &Moment) -> Option<TimeDelta> {
        let (until, ends_at) = (self.until?, self.ends_at(now)?);
        let moved = ends_at - until;
        let step = TimeDelta::from_std(WALL_STEP).unwrap_or(TimeDelta::MAX);
        if moved.abs() < step {
            return None;
        }
        self.until = Some(ends_at);
        Some(moved)
    }

    /// `the wall clock was stepped by +1day; the pause by root still ends
    /// in 9m 58s, now at 2026-11-22T16:00:00`: after `follow_wall_clock`
    /// moved it by `moved`.
    pub fn describe_step(&self, moved: TimeDelta, now: &Moment) -> String {
        let sign = if moved < TimeDelta::zero() { '-' } else { '+' };
        // To the nearest second: the two clocks are read a moment apart.
        let by = fmt_secs((moved.abs().num_milliseconds().unsigned_abs() + 500) / 1000);
        let left = self
            .left(now)
            .map(|l| fmt_secs(l.as_secs()))
            .unwrap_or_default();
        let at = self
            .until
            .map(|u| u.format(TIME_FORMAT).to_string())
            .unwrap_or_default();
        format!(
            "the wall clock was stepped by {sign}{by}; the pause by {} still ends in {left}, \
             now at {at}",
            self.by
        )
    }

    /// `by root until 2026-11-21T16:00:00: router firmware update`
    pub fn describe(&self) -> String {
        let until = match self.until {
            Some(t) => format!("until {}", t.format(TIME_FORMAT)),
            None => "until resumed".to_string(),
        };
        match &self.reason {
            Some(r) => format!("by {} {until}: {r}", self.by),
            None => format!("by {} {until}", self.by),
        }
    }
}

/// A reason as it is kept: one line, no control characters, at most
/// `MAX_REASON` characters; empty means none.
fn clean_reason(reason: Option<String>) -> Option<String> {
    let text: String = reason?
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_REASON)
        .collect();
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);
    const BOOT: &str = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    /// `since_boot` after boot `boot`, with the wall clock at `wall`.
    fn at(boot: &str, since_boot: Duration, wall: DateTime<Local>) -> Moment {
        Moment {
            wall,
            boot_id: Some(boot.to_string()),
            since_boot: Some(since_boot),
        }
    }

    fn paused(now: &Moment, length: Option<Duration>) -> PauseRecord {
        PauseRecord::new(now, length, "root".into(), None)
    }

    #[test]
    fn a_pause_keeps_its_boot_and_its_end_on_the_boot_clock() {
        let t = Local::now();
        let p = paused(&at(BOOT, secs(1000), t), Some(secs(600)));
        assert_eq!(p.until, Some(t + TimeDelta::minutes(10)));
        assert_eq!(p.since, t);
        assert_eq!(p.boot_id.as_deref(), Some(BOOT));
        assert_eq!(p.until_since_boot_ms, Some(1_600_000));
        let forever = paused(&at(BOOT, secs(1000), t), None);
        assert_eq!((forever.until, forever.until_since_boot_ms), (None, None));
        assert!(!forever.expired(&at(BOOT, secs(1000) + 400 * 24 * HOUR, t)));
        assert_eq!(forever.left(&at(BOOT, secs(1000), t)), None);
    }

    #[test]
    fn a_wall_step_forward_does_not_end_a_pause() {
        // 10 minutes set at 1000 s after boot; NTP steps the wall clock a
        // day ahead a second later.
        let t = Local::now();
        let mut p = paused(&at(BOOT, secs(1000), t), Some(secs(600)));
        let stepped = |since_boot: u64| {
            at(
                BOOT,
                secs(since_boot),
                t + TimeDelta::days(1) + TimeDelta::seconds(since_boot as i64 - 1000),
            )
        };
        let now = stepped(1001);
        assert!(!p.expired(&now));
        assert_eq!(p.left(&now), Some(secs(599)));
        assert_eq!(p.ends_at(&now), Some(now.wall + TimeDelta::seconds(599)));
        // The end shown follows: a day later on the wall, as far away.
        assert_eq!(p.follow_wall_clock(&now), Some(TimeDelta::days(1)));
        assert_eq!(
            p.until,
            Some(t + TimeDelta::days(1) + TimeDelta::minutes(10))
        );
        assert_eq!(p.follow_wall_clock(&stepped(1300)), None, "moved once");
        assert_eq!(
            p.describe_step(TimeDelta::days(1), &now),
            format!(
                "the wall clock was stepped by +1day; the pause by root still ends in 9m 59s, \
                 now at {}",
                (t + TimeDelta::days(1) + TimeDelta::minutes(10)).format(TIME_FORMAT)
            )
        );
        assert!(!p.expired(&stepped(1599)));
        assert!(
            p.expired(&stepped(1600)),
            "ends at its length on the boot clock"
        );
    }

    #[test]
    fn a_wall_step_back_does_not_make_a_pause_longer() {
        // 3 s set at 1000 s after boot; the wall clock goes back a day.
        let t = Local::now();
        let mut p = paused(&at(BOOT, secs(1000), t), Some(secs(3)));
        let back = t - TimeDelta::days(1);
        let later = |ms: u64| {
            at(
                BOOT,
                Duration::from_millis(ms),
                back + TimeDelta::milliseconds(ms as i64 - 1_000_000),
            )
        };
        let now = later(1_001_500);
        assert!(!p.expired(&now));
        assert_eq!(p.left(&now), Some(Duration::from_millis(1500)));
        let moved = p.follow_wall_clock(&now).expect("moved back");
        assert_eq!(moved, -TimeDelta::days(1));
        assert_eq!(p.until, Some(back + TimeDelta::seconds(3)));
        assert!(
            p.describe_step(moved, &now)
                .starts_with("the wall clock was stepped by -1day;")
        );
        // The clocks are read a moment apart: a step a millisecond short
        // of a day reads as a day.
        let short = -TimeDelta::days(1) + TimeDelta::milliseconds(1);
        assert!(
            p.describe_step(short, &now)
                .starts_with("the wall clock was stepped by -1day;")
        );
        assert!(!p.expired(&later(1_002_999)));
        assert!(p.expired(&later(1_003_000)), "a day before its wall end");
        // Once ended, the end it shows is in the past.
        assert_eq!(
            p.ends_at(&later(1_004_000)),
            Some(later(1_004_000).wall - TimeDelta::seconds(1))
        );
    }

    #[test]
    fn drift_is_not_a_step() {
        let t = Local::now();
        let mut p = paused(&at(BOOT, secs(1000), t), Some(HOUR));
        // NTP slewed the wall clock 1.5 s ahead over half an hour.
        let now = at(BOOT, secs(2800), t + TimeDelta::milliseconds(1_801_500));
        assert_eq!(p.follow_wall_clock(&now), None);
        assert_eq!(p.until, Some(t + TimeDelta::hours(1)));
        // 2 s is a step.
        let now = at(BOOT, secs(2800), t + TimeDelta::seconds(1802));
        assert_eq!(p.follow_wall_clock(&now), Some(TimeDelta::seconds(2)));
    }

    #[test]
    fn after_a_reboot_the_wall_time_decides() {
        let t = Local::now();
        let mut p = paused(&at(BOOT, secs(1000), t), Some(HOUR));
        // Rebooted: the boot clock restarted, and says nothing of the pause.
        let other = |wall| at("another-boot", secs(20), wall);
        assert!(!p.expired(&other(t + TimeDelta::minutes(59))));
        assert_eq!(p.left(&other(t + TimeDelta::minutes(59))), Some(secs(60)));
        assert!(p.expired(&other(t + TimeDelta::hours(1))));
        assert_eq!(p.ends_at(&other(t)), p.until);
        // Its wall end is the reference then: a stale clock does not move it.
        assert_eq!(p.follow_wall_clock(&other(t - TimeDelta::days(3))), None);
        // Nor does a machine whose boot is unknown.
        let unknown = Moment {
            wall: t + TimeDelta::hours(2),
            boot_id: None,
            since_boot: Some(secs(1001)),
        };
        assert!(p.expired(&unknown));
    }

    #[test]
    fn a_pause_saved_by_0_1_0_loads_and_ends_at_its_wall_time() {
        let json = r#"{"until": "2026-11-21T16:00:00+01:00", "by": "root",
                       "reason": null, "since": "2026-11-21T14:00:00+01:00"}"#;
        let p: PauseRecord = serde_json::from_str(json).expect("a 0.1.0 pause");
        assert_eq!((p.boot_id.as_deref(), p.until_since_boot_ms), (None, None));
        let until = p.until.expect("an end");
        let now = |wall| at(BOOT, secs(5000), wall);
        assert!(!p.expired(&now(until - TimeDelta::seconds(1))));
        assert!(p.expired(&now(until)));
    }

    #[test]
    fn without_a_boot_clock_a_pause_goes_by_wall_time() {
        let t = Local::now();
        let no_clock = Moment {
            wall: t,
            boot_id: Some(BOOT.into()),
            since_boot: None,
        };
        let p = paused(&no_clock, Some(HOUR));
        assert_eq!(p.until_since_boot_ms, None);
        assert!(!p.expired(&at(BOOT, secs(10), t + TimeDelta::minutes(59))));
        assert!(p.expired(&at(BOOT, secs(10), t + TimeDelta::hours(1))));
    }

    #[test]
    fn a_request_gets_its_length_the_default_or_none() {
        assert_eq!(
            requested_length(Some(60), false, HOUR),
            Ok(Some(60 * Duration::from_secs(1)))
        );
        assert_eq!(requested_length(None, false, HOUR), Ok(Some(HOUR)));
        assert_eq!(requested_length(None, true, HOUR), Ok(None));
        assert_eq!(
            requested_length(Some(5), true, HOUR),
            Err(PauseError::LengthAndUntilResumed)
        );
        assert_eq!(
            requested_length(Some(0), false, HOUR),
            Err(PauseError::Empty)
        );
        let too_long = MAX_PAUSE.as_secs() + 1;
        assert_eq!(
            requested_length(Some(too_long), false, HOUR),
            Err(PauseError::TooLong)
        );
        assert_eq!(
            PauseError::TooLong.to_string(),
            "a pause may last 1year 18h at most; use --until-resumed for longer"
        );
    }

    #[test]
    fn a_reason_is_one_clean_line() {
        let now = at(BOOT, secs(1000), Local::now());
        let p = PauseRecord::new(&now, None, "root".into(), Some(" a\nb\tc ".into()));
        assert_eq!(p.reason.as_deref(), Some("a b c"));
        assert_eq!(p.describe(), "by root until resumed: a b c");
        let p = PauseRecord::new(&now, Some(HOUR), "root".into(), Some("  ".into()));
        assert_eq!(p.reason, None);
        assert_eq!(p.until, Some(now.wall + TimeDelta::hours(1)));
        let long = "x".repeat(500);
        let p = PauseRecord::new(&now, None, "root".into(), Some(long));
        assert_eq!(p.reason.map(|r| r.chars().count()), Some(MAX_REASON));
    }
}
