//! Where the daemon's messages go: the journal (when systemd connected its
//! stderr to it) or stderr, and the monolog-format file
//! `[2025-07-01T12:00:00] INFO: Power restored`.

use std::fs::{File, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Mutex, OnceLock};

use chrono::{DateTime, Local};
use serde::{Deserialize, Serialize};
use systemd_journal_logger::JournalLog;

use crate::format::TIME_FORMAT;

/// The monolog levels, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Debug = 0,
    Info = 1,
    Notice = 2,
    Warning = 3,
    Error = 4,
    Critical = 5,
}

impl Level {
    const ALL: [Level; 6] = [
        Level::Debug,
        Level::Info,
        Level::Notice,
        Level::Warning,
        Level::Error,
        Level::Critical,
    ];

    /// The name in the log file.
    pub fn name(self) -> &'static str {
        match self {
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Notice => "NOTICE",
            Level::Warning => "WARNING",
            Level::Error => "ERROR",
            Level::Critical => "CRITICAL",
        }
    }

    /// The `log` level that systemd-journal-logger turns into the same
    /// priority. Its highest is err (3), so CRITICAL goes to the journal as
    /// err and carries FAKEUPS_LEVEL=CRITICAL.
    fn journal_level(self) -> log::Level {
        match self {
            Level::Debug => log::Level::Trace,
            Level::Info => log::Level::Debug,
            Level::Notice => log::Level::Info,
            Level::Warning => log::Level::Warn,
            Level::Error | Level::Critical => log::Level::Error,
        }
    }

    fn from_u8(n: u8) -> Level {
        Level::ALL[usize::from(n).min(Level::ALL.len() - 1)]
    }
}

/// One line of the log file, newline included. Newlines inside the message
/// become spaces, so a line is always one entry.
pub fn monolog_line(time: &DateTime<Local>, level: Level, message: &str) -> String {
    let message = message.replace(['\n', '\r'], " ");
    format!(
        "[{}] {}: {}\n",
        time.format(TIME_FORMAT),
        level.name(),
        message
    )
}

/// Where messages go besides the file.
pub enum Console {
    Journal(Box<JournalLog>),
    Stderr,
}

impl Console {
    /// The journal when systemd connected stderr to it, else stderr.
    pub fn detect() -> Console {
        if systemd_journal_logger::connected_to_journal() {
            if let Ok(journal) = JournalLog::new() {
                return Console::Journal(Box::new(
                    journal.with_syslog_identifier("fakeups".to_string()),
                ));
            }
        }
        Console::Stderr
    }
}

struct Logger {
    level: AtomicU8,
    console: Console,
    file: Mutex<FileSink>,
}

#[derive(Default)]
struct FileSink {
    path: Option<PathBuf>,
    file: Option<File>,
}

static LOGGER: OnceLock<Logger> = OnceLock::new();

/// Why logging could not be set up as asked.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("logging was already set up")]
    AlreadySetUp,
    #[error("cannot open the log file {path}: {source}")]
    Open { path: PathBuf, source: io::Error },
}

/// Sets up logging once for the process. The file is opened at once; if it
/// cannot be, the reason is returned and messages still go to the console.
pub fn init(console: Console, file: Option<&Path>, level: Level) -> Result<(), LogError> {
    let logger = Logger {
        level: AtomicU8::new(level as u8),
        console,
        file: Mutex::new(FileSink::default()),
    };
    if LOGGER.set(logger).is_err() {
        return Err(LogError::AlreadySetUp);
    }
    reopen(file, level)
}

/// Applies a new level and (re)opens the file, e.g. on SIGHUP after
/// logrotate moved it away.
pub fn reopen(file: Option<&Path>, level: Level) -> Result<(), LogError> {
    let Some(logger) = LOGGER.get() else {
        return Ok(());
    };
    logger.level.store(level as u8, Ordering::Relaxed);
    let mut sink = logger.file.lock().unwrap_or_else(|p| p.into_inner());
    sink.path = file.map(Path::to_path_buf);
    sink.file = None;
    let Some(path) = file else {
        return Ok(());
    };
    match open_log_file(path) {
        Ok(f) => {
            sink.file = Some(f);
            Ok(())
        }
        Err(source) => Err(LogError::Open {
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn open_log_file(path: &Path) -> io::Result<File> {
    super::atomic_file::create_parent_dir(path)?;
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o640)
        .open(path)
}

/// Logs `message` at `level` with journal fields (names in capitals).
pub fn event(level: Level, message: &str, fields: &[(&str, &str)]) {
    let Some(logger) = LOGGER.get() else {
        eprint!("{}", monolog_line(&Local::now(), level, message));
        return;
    };
    if level < Level::from_u8(logger.level.load(Ordering::Relaxed)) {
        return;
    }
    let line = monolog_line(&Local::now(), level, message);
    match &logger.console {
        Console::Journal(journal) => {
            let mut kvs: Vec<(&str, &str)> = Vec::with_capacity(fields.len() + 1);
            kvs.push(("FAKEUPS_LEVEL", level.name()));
            kvs.extend_from_slice(fields);
            let kvs = kvs.as_slice();
            let sent = journal.journal_send(
                &log::Record::builder()
                    .level(level.journal_level())
                    .target("fakeups")
                    .args(format_args!("{message}"))
                    .key_values(&kvs)
                    .build(),
            );
            if sent.is_err() {
                eprint!("{line}");
            }
        }
        Console::Stderr => eprint!("{line}"),
    }
    let mut sink = logger.file.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(file) = sink.file.as_mut() {
        if let Err(e) = file.write_all(line.as_bytes()) {
            let path = sink.path.clone().unwrap_or_default();
            sink.file = None;
            drop(sink);
            let note = format!(
                "cannot write the log file {}: {e}; logging to it stops until reload",
                path.display()
            );
            eprint!("{}", monolog_line(&Local::now(), Level::Error, &note));
        }
    }
}

pub fn debug(message: &str) {
    event(Level::Debug, message, &[]);
}
pub fn info(message: &str) {
    event(Level::Info, message, &[]);
}
pub fn notice(message: &str) {
    event(Level::Notice, message, &[]);
}
pub fn warning(message: &str) {
    event(Level::Warning, message, &[]);
}
pub fn error(message: &str) {
    event(Level::Error, message, &[]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn monolog_format_is_exact() {
        let t = Local.with_ymd_and_hms(2025, 7, 1, 12, 5, 30).unwrap();
        assert_eq!(
            monolog_line(&t, Level::Warning, "Power lost - switching to OB"),
            "[2025-07-01T12:05:30] WARNING: Power lost - switching to OB\n"
        );
        assert_eq!(
            monolog_line(&t, Level::Critical, "two\nlines"),
            "[2025-07-01T12:05:30] CRITICAL: two lines\n"
        );
    }

    #[test]
    fn levels_order_and_journal_priorities() {
        assert!(Level::Debug < Level::Info && Level::Error < Level::Critical);
        // systemd-journal-logger gives Trace 7, Debug 6, Info 5, Warn 4,
        // Error 3: debug, info, notice, warning, err; critical as err.
        let levels: Vec<log::Level> = Level::ALL.iter().map(|l| l.journal_level()).collect();
        use log::Level::*;
        assert_eq!(levels, vec![Trace, Debug, Info, Warn, Error, Error]);
        for l in Level::ALL {
            assert_eq!(Level::from_u8(l as u8), l);
        }
    }
}
