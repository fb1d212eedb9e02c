//! The configuration file /etc/fakeups/fakeups.toml: its schema with a
//! default for every key (schema.rs), parsing with `file:line:col` errors,
//! and the checks that need more than one key (check.rs).

mod check;
mod locate;
mod quorum;
mod schema;

use std::path::{Path, PathBuf};

use crate::paths;

pub use schema::{Battery, Config, Control, Detection, Log, Nut, Pause};

use locate::{line_col, locate_key};

/// A configuration that cannot be used, with where the problem is:
/// `PATH:LINE:COL: PROBLEM`, or `PATH: PROBLEM` when it has no place.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{}: {message}", path.display(), place(*position))]
pub struct ConfigError {
    pub path: PathBuf,
    /// 1-based line and column (in characters), when the problem has a place.
    pub position: Option<(usize, usize)>,
    pub message: String,
}

fn place(position: Option<(usize, usize)>) -> String {
    position.map_or_else(String::new, |(line, col)| format!(":{line}:{col}"))
}

impl Config {
    /// Reads, parses and checks the file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            path: path.to_path_buf(),
            position: None,
            message: format!("cannot read the configuration: {e}"),
        })?;
        Config::parse(path, &text)
    }

    /// Parses and checks `text`; `path` only names it in errors.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let mut config: Config = toml::from_str(text).map_err(|e| ConfigError {
            path: path.to_path_buf(),
            position: e.span().map(|span| line_col(text, span.start)),
            message: e.message().trim().to_string(),
        })?;
        config.nut.data_file = data_file_in_use(config.nut.data_file);
        check::check(&config).map_err(|problem| ConfigError {
            path: path.to_path_buf(),
            position: locate_key(text, &problem.key),
            message: format!("{}: {}", problem.key.join("."), problem.message),
        })?;
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

#[cfg(test)]
mod tests;
