//! The configuration file /etc/fakeups/fakeups.toml: its schema with a
//! default for every key (schema.rs), parsing with `file:line:col` errors,
//! the checks that need more than one key or more than a type (check.rs),
//! and what the file system says about its paths (on_disk.rs).

mod check;
mod locate;
mod on_disk;
mod quorum;
mod schema;

use std::io::Read as _;
use std::path::{Path, PathBuf};

use crate::paths;

pub use schema::{
    Battery, Config, Control, Detection, Events, Log, Nut, Pause, SentryConfig, WakeConfig,
    WakeHost,
};

use locate::{deep_key, line_col, locate_key};

/// A configuration that cannot be used, with where the problem is:
/// `PATH:LINE:COL: PROBLEM`, or `PATH: PROBLEM` when it has no place. Always
/// one line: control characters in the path or the message are escaped, and
/// a message that echoes a huge value is shortened in its middle.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{}: {message}", one_line(&path.display().to_string(), usize::MAX), place(*position))]
pub struct ConfigError {
    pub path: PathBuf,
    /// 1-based line and column (in characters), when the problem has a place.
    pub position: Option<(usize, usize)>,
    /// One line, at most about `MAX_MESSAGE` characters.
    pub message: String,
}

/// The longest message kept whole: long enough for any message of fakeups'
/// own, short enough that an echoed 50 MB value is not printed.
const MAX_MESSAGE: usize = 400;

impl ConfigError {
    fn new(path: &Path, position: Option<(usize, usize)>, message: &str) -> ConfigError {
        ConfigError {
            path: path.to_path_buf(),
            position,
            message: one_line(message, MAX_MESSAGE),
        }
    }
}

fn place(position: Option<(usize, usize)>) -> String {
    position.map_or_else(String::new, |(line, col)| format!(":{line}:{col}"))
}

/// `text` on one line: line breaks, other control characters and Unicode's
/// line and paragraph separators escaped (`\n`, `\u{1b}`); when it is longer
/// than `max` characters, its middle is left out.
fn one_line(text: &str, max: usize) -> String {
    let mut escaped = String::with_capacity(text.len());
    let mut count = 0;
    for c in text.chars() {
        if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') {
            for e in c.escape_debug() {
                escaped.push(e);
                count += 1;
            }
        } else {
            escaped.push(c);
            count += 1;
        }
    }
    if count <= max {
        return escaped;
    }
    let tail = max / 4;
    let head = max - tail;
    let start: String = escaped.chars().take(head).collect();
    let end: String = escaped.chars().skip(count - tail).collect();
    format!(
        "{start}[... {} characters left out ...]{end}",
        count - head - tail
    )
}

impl Config {
    /// Reads, parses and checks the file at `path`, then its paths against
    /// the file system.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|file| file.take(MAX_SIZE as u64 + 1).read_to_end(&mut bytes))
            .map_err(|e| {
                ConfigError::new(path, None, &format!("cannot read the configuration: {e}"))
            })?;
        let kept = &bytes[..bytes.len().min(MAX_SIZE)];
        let text = match std::str::from_utf8(kept) {
            Ok(text) => text,
            // A character cut at the limit is the limit's problem.
            Err(e) if bytes.len() > MAX_SIZE && e.error_len().is_none() => {
                return Err(too_long(path, &kept[..e.valid_up_to()]));
            }
            Err(e) => return Err(not_utf8(path, kept, &e)),
        };
        if bytes.len() > MAX_SIZE {
            return Err(too_long(path, kept));
        }
        let config = Config::parse(path, text)?;
        on_disk::check(&config).map_err(|problem| key_error(path, text, problem))?;
        Ok(config)
    }

    /// Parses and checks `text` without looking at the file system; `path`
    /// only names it in errors.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let mut config: Config = toml::from_str(text).map_err(|e| match e.span() {
            Some(span) => ConfigError::new(path, Some(line_col(text, span.start)), e.message()),
            // The parser gives no place when a dotted key is too deep.
            None => match deep_key(text) {
                Some(deep) => ConfigError::new(
                    path,
                    Some(line_col(text, deep.start)),
                    &format!(
                        "this dotted key has {} parts, more than the {} the parser allows",
                        deep.parts,
                        locate::MAX_KEY_PARTS
                    ),
                ),
                None => ConfigError::new(path, None, e.message().trim()),
            },
        })?;
        config.nut.data_file = data_file_in_use(config.nut.data_file);
        check::check(&config).map_err(|problem| key_error(path, text, problem))?;
        Ok(config)
    }
}

/// `nut.data-file` as the daemon uses it. fakeups 0.1.0 kept the data file
/// on disk, where it outlived the daemon, and its configuration file spelled
/// that path out; a configuration kept from then (edited, so dpkg kept it)
/// still names it. It is read as today's default, on /run, which goes with
/// the service; the package leaves a symbolic link at the old path for the
/// NUT sections that still read it.
fn data_file_in_use(path: PathBuf) -> PathBuf {
    if path == Path::new(paths::DATA_FILE_0_1) {
        PathBuf::from(paths::DATA_FILE)
    } else {
        path
    }
}

/// A problem with a key, at the place of its value (or of the entry of a
/// list) when the file has it, otherwise named by the key alone.
fn key_error(path: &Path, text: &str, problem: check::Problem) -> ConfigError {
    ConfigError::new(
        path,
        locate_key(text, &problem.key, problem.entry, problem.field),
        &format!("{}: {}", problem.key.join("."), problem.message),
    )
}

/// The most bytes a configuration may have. 100,000 sentinels take 1.5 MB
/// (2.5 MB as IPv6 addresses); real files take a few KB. The parser needs 15
/// (a list of sentinels) to 160 (100,000s of `[[tables]]`) times the file's
/// size in memory: without a cap, a 50 MB file would take gigabytes.
const MAX_SIZE: usize = 4 << 20;

/// A file longer than `MAX_SIZE`, at the place where it passes the limit
/// (`before` is the valid UTF-8 up to there).
fn too_long(path: &Path, before: &[u8]) -> ConfigError {
    let before = String::from_utf8_lossy(before);
    ConfigError::new(
        path,
        Some(line_col(&before, before.len())),
        &format!(
            "the file goes on past {} MiB here; a configuration may have at most that",
            MAX_SIZE >> 20
        ),
    )
}

/// A file that is not UTF-8, with the place of its first invalid byte.
fn not_utf8(path: &Path, bytes: &[u8], e: &std::str::Utf8Error) -> ConfigError {
    let at = e.valid_up_to();
    // Valid up to `at` by definition: the lossy conversion borrows.
    let before = String::from_utf8_lossy(&bytes[..at]);
    let what = match e.error_len() {
        Some(len) => {
            let seq: Vec<String> = bytes[at..at + len]
                .iter()
                .map(|b| format!("0x{b:02X}"))
                .collect();
            match len {
                1 => format!("byte {} is not UTF-8", seq.join(" ")),
                _ => format!("bytes {} are not UTF-8", seq.join(" ")),
            }
        }
        None => "the file ends inside a UTF-8 character".to_string(),
    };
    let message = format!("{what} (byte offset {at}): the configuration must be UTF-8");
    ConfigError::new(path, Some(line_col(&before, at)), &message)
}

#[cfg(test)]
mod tests;
