//! Where the daemon's messages go: the journal (when systemd connected its
//! stderr to it) or stderr, and the monolog-format file
//! `[2025-07-01T12:00:00] INFO: Power restored`.
//!
//! A log file that cannot be written (a full disk) does not stop the
//! console: its lines are counted, the console says once that it failed,
//! and it is opened again every `FILE_RETRY` (the main loop calls
//! `retry_file`) or on a reopen; its first line back, and the console, say
//! how many lines it lost.

use std::fs::{File, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::{FileExt as _, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Local};
use serde::{Deserialize, Serialize};
use systemd_journal_logger::JournalLog;

use crate::format::{TIME_FORMAT, fmt_duration};

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
        if systemd_journal_logger::connected_to_journal()
            && let Ok(journal) = JournalLog::new()
        {
            return Console::Journal(Box::new(
                journal.with_syslog_identifier("fakeups".to_string()),
            ));
        }
        Console::Stderr
    }
}

struct Logger {
    level: AtomicU8,
    console: Console,
    file: Mutex<FileSink>,
}

/// How long after the log file failed it is tried again. Meanwhile its
/// lines go to the console only and are counted, nothing more.
pub const FILE_RETRY: Duration = Duration::from_secs(5);

/// The log file: open, off, or failing. A failing file costs a counter per
/// line; it is opened again when `retry` finds it due (every `FILE_RETRY`)
/// or on a reopen, and its first line back says how many lines it lost.
struct FileSink {
    path: Option<PathBuf>,
    file: Option<File>,
    failing: Option<Failing>,
    /// Where every line goes too, for the note: "the journal".
    elsewhere: &'static str,
}

/// Since when the log file could not be written, why, and what it missed.
#[derive(Debug)]
struct Failing {
    path: PathBuf,
    error: String,
    since: DateTime<Local>,
    lost: u64,
    retry_at: Instant,
}

impl Failing {
    /// The first line back: how many lines the file lost, and why.
    fn note(&self, elsewhere: &str) -> String {
        let (lines, them) = match self.lost {
            1 => ("line was", "it"),
            _ => ("lines were", "them"),
        };
        let mut note = format!(
            "{} {lines} lost while {} could not be written ({}) since {}",
            self.lost,
            self.path.display(),
            self.error,
            self.since.format(TIME_FORMAT)
        );
        if self.lost > 0 {
            note.push_str(&format!("; {elsewhere} has {them}"));
        }
        note
    }
}

impl FileSink {
    fn new(elsewhere: &'static str) -> FileSink {
        FileSink {
            path: None,
            file: None,
            failing: None,
            elsewhere,
        }
    }

    /// Writes one line (stamped `wall`). While the file is failing the line
    /// is only counted. When this write fails, the file starts failing and
    /// the note for the console is returned (once, not per line).
    fn write(&mut self, line: &str, wall: &DateTime<Local>) -> Option<String> {
        if let Some(failing) = self.failing.as_mut() {
            failing.lost += 1;
            return None;
        }
        let (Some(file), Some(path)) = (self.file.as_mut(), self.path.as_ref()) else {
            return None;
        };
        let error = file.write_all(line.as_bytes()).err()?;
        let report = format!(
            "cannot write the log file {}: {error}; its lines go to {} only until it can be \
             written again (tried every {})",
            path.display(),
            self.elsewhere,
            fmt_duration(FILE_RETRY)
        );
        self.failing = Some(Failing {
            path: path.clone(),
            error: error.to_string(),
            since: *wall,
            lost: 1,
            retry_at: Instant::now() + FILE_RETRY,
        });
        self.file = None;
        Some(report)
    }

    /// When a failing file is tried again.
    fn retry_at(&self) -> Option<Instant> {
        self.failing.as_ref().map(|f| f.retry_at)
    }

    /// Opens a failing file again if it is due at `now`; the note it got as
    /// its first line when it could be written again.
    fn retry(&mut self, now: Instant, wall: &DateTime<Local>) -> Option<String> {
        if self.failing.as_ref().is_some_and(|f| now >= f.retry_at) {
            self.open(now, wall).ok().flatten()
        } else {
            None
        }
    }

    /// Closes the file and opens `path` (created if missing). When the file
    /// was failing, the note of what it lost is written first and returned.
    /// If it cannot be opened or written, it is failing (tried again at
    /// `now + FILE_RETRY`) and the error says why.
    fn open(&mut self, now: Instant, wall: &DateTime<Local>) -> Result<Option<String>, LogError> {
        self.file = None;
        let Some(path) = self.path.clone() else {
            // Off: nothing to write, nothing to lose.
            self.failing = None;
            return Ok(None);
        };
        let note = self.failing.as_ref().map(|f| f.note(self.elsewhere));
        let opened = open_log_file(&path)
            .map_err(|source| LogError::Open {
                path: path.clone(),
                source,
            })
            .and_then(|mut file| {
                if let Some(note) = &note {
                    write_first_line(&mut file, &monolog_line(wall, Level::Warning, note))
                        .map_err(|source| LogError::Write {
                            path: path.clone(),
                            source,
                        })?;
                }
                Ok(file)
            });
        match opened {
            Ok(file) => {
                self.file = Some(file);
                self.failing = None;
                Ok(note)
            }
            Err(e) => {
                let failing = self.failing.get_or_insert_with(|| Failing {
                    path: path.clone(),
                    error: e.io_error().to_string(),
                    since: *wall,
                    lost: 0,
                    retry_at: now,
                });
                failing.retry_at = now + FILE_RETRY;
                Err(e)
            }
        }
    }
}

/// Writes `line` as a line of its own: after a newline if the file ends in
/// the middle of one (a line cut short by a full disk).
fn write_first_line(file: &mut File, line: &str) -> io::Result<()> {
    let len = file.metadata()?.len();
    let mut last = [b'\n'];
    if len > 0 && file.read_exact_at(&mut last, len - 1).is_err() {
        last = [b'\n'];
    }
    if last[0] == b'\n' {
        file.write_all(line.as_bytes())
    } else {
        file.write_all(format!("\n{line}").as_bytes())
    }
}

static LOGGER: OnceLock<Logger> = OnceLock::new();

/// Why logging could not be set up as asked.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("logging was already set up")]
    AlreadySetUp,
    #[error("cannot open the log file {path}: {source}")]
    Open { path: PathBuf, source: io::Error },
    #[error("cannot write the log file {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
}

impl LogError {
    /// The system's reason alone, without the path.
    fn io_error(&self) -> String {
        match self {
            LogError::AlreadySetUp => self.to_string(),
            LogError::Open { source, .. } | LogError::Write { source, .. } => source.to_string(),
        }
    }
}

/// Sets up logging once for the process. The file is opened at once; if it
/// cannot be, the reason is returned, messages still go to the console, and
/// the file is tried again like one that failed (see `retry_file`).
pub fn init(console: Console, file: Option<&Path>, level: Level) -> Result<(), LogError> {
    let elsewhere = match console {
        Console::Journal(_) => "the journal",
        Console::Stderr => "standard error",
    };
    let logger = Logger {
        level: AtomicU8::new(level as u8),
        console,
        file: Mutex::new(FileSink::new(elsewhere)),
    };
    if LOGGER.set(logger).is_err() {
        return Err(LogError::AlreadySetUp);
    }
    reopen(file, level)
}

/// Applies a new level and (re)opens the file: after a reload, and on
/// SIGUSR1 once logrotate moved it away. A file that was failing gets the
/// count of its lost lines as its first line, and the console a copy.
pub fn reopen(file: Option<&Path>, level: Level) -> Result<(), LogError> {
    let Some(logger) = LOGGER.get() else {
        return Ok(());
    };
    logger.level.store(level as u8, Ordering::Relaxed);
    let opened = {
        let mut sink = logger.file.lock().unwrap_or_else(|p| p.into_inner());
        sink.path = file.map(Path::to_path_buf);
        sink.open(Instant::now(), &Local::now())
    };
    if let Some(note) = opened? {
        logger.to_console(Level::Warning, &note, &[]);
    }
    Ok(())
}

/// When the log file, failing, is to be tried again (`retry_file`); None
/// while it is written (or off).
pub fn file_retry_at() -> Option<Instant> {
    let logger = LOGGER.get()?;
    let sink = logger.file.lock().unwrap_or_else(|p| p.into_inner());
    sink.retry_at()
}

/// Tries the failing log file again, if it is due: when it can be written
/// again, its first line, and the console, say how many lines it lost.
pub fn retry_file() {
    let Some(logger) = LOGGER.get() else {
        return;
    };
    let note = {
        let mut sink = logger.file.lock().unwrap_or_else(|p| p.into_inner());
        sink.retry(Instant::now(), &Local::now())
    };
    if let Some(note) = note {
        logger.to_console(Level::Warning, &note, &[]);
    }
}

fn open_log_file(path: &Path) -> io::Result<File> {
    super::atomic_file::create_parent_dir(path)?;
    // Read too: a file that failed is checked for a line cut short.
    OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(0o640)
        .open(path)
}

impl Logger {
    /// `message` at `level`, with `fields`, to the journal (or stderr).
    fn to_console(&self, level: Level, message: &str, fields: &[(&str, &str)]) {
        let line = || monolog_line(&Local::now(), level, message);
        match &self.console {
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
                    eprint!("{}", line());
                }
            }
            Console::Stderr => eprint!("{}", line()),
        }
    }
}

/// A function every logged line is handed to as well: Sentry's
/// breadcrumbs and error events (src/events/sentry.rs).
pub type Tap = fn(Level, &str, &[(&str, &str)]);

static TAP: OnceLock<Tap> = OnceLock::new();

/// Sets the tap, once for the process.
pub fn set_tap(tap: Tap) {
    let _ = TAP.set(tap);
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
    let now = Local::now();
    let line = monolog_line(&now, level, message);
    match &logger.console {
        Console::Stderr => eprint!("{line}"),
        Console::Journal(_) => logger.to_console(level, message, fields),
    }
    let broke = {
        let mut sink = logger.file.lock().unwrap_or_else(|p| p.into_inner());
        sink.write(&line, &now)
    };
    if let Some(report) = broke {
        logger.to_console(Level::Error, &report, &[]);
    }
    if let Some(tap) = TAP.get() {
        tap(level, message, fields);
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
    use std::fs;

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

    fn wall() -> DateTime<Local> {
        Local.with_ymd_and_hms(2025, 7, 1, 12, 0, 1).unwrap()
    }

    /// A sink on `path`, opened.
    fn sink_on(path: &Path) -> FileSink {
        let mut sink = FileSink::new("the journal");
        sink.path = Some(path.to_path_buf());
        sink
    }

    #[test]
    fn a_full_file_counts_its_lines_and_says_so_when_it_can_be_written_again() {
        if !Path::new("/dev/full").exists() {
            eprintln!("SKIPPED: no /dev/full to fail writes with ENOSPC");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fakeups.log");
        std::os::unix::fs::symlink("/dev/full", &path).unwrap();
        let mut sink = sink_on(&path);
        let start = Instant::now();
        assert_eq!(sink.open(start, &wall()).unwrap(), None);
        let line = monolog_line(&wall(), Level::Info, "Power lost");
        let report = sink.write(&line, &wall()).expect("the failure is reported");
        assert!(
            report.starts_with(&format!(
                "cannot write the log file {}: No space left on device",
                path.display()
            )),
            "{report}"
        );
        assert!(report.contains("tried every 5s"), "{report}");
        // Then only counted, and reported no more.
        assert_eq!(sink.write(&line, &wall()), None);
        assert_eq!(sink.write(&line, &wall()), None);
        // Not tried again before FILE_RETRY.
        let retry_at = sink.retry_at().expect("failing");
        assert!(retry_at >= start + FILE_RETRY);
        assert_eq!(
            sink.retry(retry_at - Duration::from_millis(1), &wall()),
            None
        );
        // Still full at the retry: tried again FILE_RETRY later.
        assert_eq!(sink.retry(retry_at, &wall()), None);
        assert_eq!(sink.retry_at(), Some(retry_at + FILE_RETRY));
        assert_eq!(sink.write(&line, &wall()), None);

        // Space again: the next retry writes the note first.
        fs::remove_file(&path).unwrap();
        let later = Local.with_ymd_and_hms(2025, 7, 1, 12, 0, 9).unwrap();
        let note = sink
            .retry(retry_at + FILE_RETRY, &later)
            .expect("written again");
        assert_eq!(
            note,
            format!(
                "4 lines were lost while {} could not be written (No space left on device \
                 (os error 28)) since 2025-07-01T12:00:01; the journal has them",
                path.display()
            )
        );
        assert_eq!(sink.retry_at(), None);
        let next = monolog_line(&later, Level::Info, "Power restored");
        assert_eq!(sink.write(&next, &later), None);
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            format!("{}{next}", monolog_line(&later, Level::Warning, &note))
        );
    }

    #[test]
    fn a_file_that_cannot_be_opened_is_tried_again_and_counts_from_then() {
        let dir = tempfile::tempdir().unwrap();
        // Its directory is a file: no directory can be made there.
        let blocker = dir.path().join("log");
        fs::write(&blocker, "").unwrap();
        let path = blocker.join("fakeups.log");
        let mut sink = sink_on(&path);
        let start = Instant::now();
        let e = sink.open(start, &wall()).unwrap_err();
        assert!(
            e.to_string()
                .starts_with(&format!("cannot open the log file {}: ", path.display())),
            "{e}"
        );
        assert_eq!(sink.retry_at(), Some(start + FILE_RETRY));
        let line = monolog_line(&wall(), Level::Error, &e.to_string());
        assert_eq!(sink.write(&line, &wall()), None, "reported by the caller");

        fs::remove_file(&blocker).unwrap();
        let note = sink.retry(start + FILE_RETRY, &wall()).expect("opened");
        assert!(
            note.starts_with(&format!(
                "1 line was lost while {} could not be written (",
                path.display()
            )) && note.ends_with("since 2025-07-01T12:00:01; the journal has it"),
            "{note}"
        );
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            monolog_line(&wall(), Level::Warning, &note)
        );
    }

    #[test]
    fn a_reopen_mends_a_failing_file_and_a_file_turned_off_forgets_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fakeups.log");
        let mut sink = sink_on(&path);
        sink.failing = Some(Failing {
            path: path.clone(),
            error: "No space left on device (os error 28)".into(),
            since: wall(),
            lost: 0,
            retry_at: Instant::now() + Duration::from_secs(3600),
        });
        // A reopen does not wait for the retry.
        let note = sink.open(Instant::now(), &wall()).unwrap().expect("mended");
        assert!(note.starts_with("0 lines were lost while "), "{note}");
        assert!(note.ends_with("since 2025-07-01T12:00:01"), "{note}");
        sink.failing = Some(Failing {
            path: path.clone(),
            error: "e".into(),
            since: wall(),
            lost: 2,
            retry_at: Instant::now(),
        });
        sink.path = None;
        assert_eq!(sink.open(Instant::now(), &wall()).unwrap(), None);
        assert_eq!(sink.retry_at(), None);
    }

    #[test]
    fn a_line_cut_short_by_a_full_disk_is_ended_before_the_note() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fakeups.log");
        fs::write(&path, "[2025-07-01T12:00:00] INFO: Pow").unwrap();
        let mut file = open_log_file(&path).unwrap();
        write_first_line(
            &mut file,
            "[2025-07-01T12:00:09] WARNING: 1 line was lost\n",
        )
        .unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "[2025-07-01T12:00:00] INFO: Pow\n[2025-07-01T12:00:09] WARNING: 1 line was lost\n"
        );
        // A whole line before it, or none: nothing added.
        let empty = dir.path().join("empty.log");
        let mut file = open_log_file(&empty).unwrap();
        write_first_line(&mut file, "a\n").unwrap();
        write_first_line(&mut file, "b\n").unwrap();
        assert_eq!(fs::read_to_string(&empty).unwrap(), "a\nb\n");
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
