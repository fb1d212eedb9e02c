//! How durations and times are written for people, in the configuration,
//! the logs, STATUS= and fakeupsctl alike.

use std::time::Duration;

use chrono::{DateTime, Local};

/// How times are written in the log file, and wherever people read a time
/// next to it (the end of a pause).
pub const TIME_FORMAT: &str = "%Y-%m-%dT%H:%M:%S";

/// `1h`, `2m 30s`, `150ms`: how durations are written in the config.
pub fn fmt_duration(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// The same for a whole number of seconds (what people are shown).
pub fn fmt_secs(secs: u64) -> String {
    fmt_duration(Duration::from_secs(secs))
}

/// `2026-11-21 05:31:33`: a time in fakeupsctl's report.
pub fn clock(t: DateTime<Local>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_written_in_the_config() {
        assert_eq!(fmt_duration(Duration::from_secs(150)), "2m 30s");
        assert_eq!(fmt_duration(Duration::from_millis(150)), "150ms");
        assert_eq!(fmt_secs(3600), "1h");
    }
}
