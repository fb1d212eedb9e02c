//! The configuration file /etc/fakeups/fakeups.toml: its schema with a
//! default for every key (schema.rs), parsing with `file:line:col` errors,
//! and the checks that need more than one key (check.rs).

mod check;
mod locate;
mod quorum;
mod schema;

use std::path::{Path, PathBuf};

pub use schema::{Battery, Config, Control, Detection, Log, Nut, Pause};

use locate::{deep_key, line_col, locate_key};

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
        let bytes = std::fs::read(path).map_err(|e| ConfigError {
            path: path.to_path_buf(),
            position: None,
            message: format!("cannot read the configuration: {e}"),
        })?;
        let text = match std::str::from_utf8(&bytes) {
            Ok(text) => text,
            Err(e) => return Err(not_utf8(path, &bytes, &e)),
        };
        Config::parse(path, text)
    }

    /// Parses and checks `text`; `path` only names it in errors.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| {
            let (position, message) = match e.span() {
                Some(span) => (Some(line_col(text, span.start)), e.message().trim().into()),
                // The parser gives no place when a dotted key is too deep.
                None => match deep_key(text) {
                    Some(deep) => (
                        Some(line_col(text, deep.start)),
                        format!(
                            "this dotted key has {} parts, more than the {} the parser allows",
                            deep.parts,
                            locate::MAX_KEY_PARTS
                        ),
                    ),
                    None => (None, e.message().trim().into()),
                },
            };
            ConfigError {
                path: path.to_path_buf(),
                position,
                message,
            }
        })?;
        check::check(&config).map_err(|problem| ConfigError {
            path: path.to_path_buf(),
            position: locate_key(text, &problem.key),
            message: format!("{}: {}", problem.key.join("."), problem.message),
        })?;
        Ok(config)
    }
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
    ConfigError {
        path: path.to_path_buf(),
        position: Some(line_col(&before, at)),
        message: format!("{what} (byte offset {at}): the configuration must be UTF-8"),
    }
}

#[cfg(test)]
mod tests;
