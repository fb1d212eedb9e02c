//! A pause of the watch (`fakeupsctl pause`): how long a request may make
//! it, what is kept of its reason, when it ends and how it reads. Wall times
//! are arguments; nothing here reads a clock.

use std::time::Duration;

use chrono::{DateTime, Local, TimeDelta};
use serde::{Deserialize, Serialize};

use crate::format::{TIME_FORMAT, fmt_duration};

/// The longest pause a request may ask for.
pub const MAX_PAUSE: Duration = Duration::from_secs(366 * 24 * 3600);
/// The longest reason kept, in characters.
pub const MAX_REASON: usize = 200;

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
        now: DateTime<Local>,
        length: Option<Duration>,
        by: String,
        reason: Option<String>,
    ) -> PauseRecord {
        let until = length.and_then(|l| {
            TimeDelta::from_std(l)
                .ok()
                .and_then(|d| now.checked_add_signed(d))
        });
        PauseRecord {
            until,
            by,
            reason: clean_reason(reason),
            since: now,
        }
    }

    pub fn expired(&self, now: DateTime<Local>) -> bool {
        self.until.is_some_and(|until| until <= now)
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
        let now = Local::now();
        let p = PauseRecord::new(now, None, "root".into(), Some(" a\nb\tc ".into()));
        assert_eq!(p.reason.as_deref(), Some("a b c"));
        assert_eq!(p.describe(), "by root until resumed: a b c");
        let p = PauseRecord::new(now, Some(HOUR), "root".into(), Some("  ".into()));
        assert_eq!(p.reason, None);
        assert_eq!(p.until, Some(now + TimeDelta::hours(1)));
        let long = "x".repeat(500);
        let p = PauseRecord::new(now, None, "root".into(), Some(long));
        assert_eq!(p.reason.map(|r| r.chars().count()), Some(MAX_REASON));
    }
}
