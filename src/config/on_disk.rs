//! What the file system says about the configured paths, checked when the
//! file is loaded (`--check-config`, the start, a reload): a directory where
//! a file or the socket must go, a file where a directory must be, or a
//! file on the way to a path that does not exist yet. A path whose parent
//! does not exist yet is fine: fakeups creates it. Only what is certain is
//! refused; a path that cannot be looked at (permissions) is left to the
//! daemon, which says why it cannot use it.

use std::fs::{self, Metadata};
use std::io;
use std::os::unix::fs::FileTypeExt;
use std::path::Path;

use super::Config;
use super::check::{PathKind, Problem, paths, quoted};

/// The first path of `config` that cannot be used as it stands on disk.
pub fn check(config: &Config) -> Result<(), Problem> {
    for (key, path, kind) in paths(config) {
        if path.as_os_str().is_empty() {
            continue;
        }
        check_path(path, kind).map_err(|message| Problem::new(key, message))?;
    }
    Ok(())
}

fn check_path(path: &Path, kind: PathKind) -> Result<(), String> {
    // The data file and the socket are replaced, not followed, when they
    // are symbolic links; the log file is opened through one.
    let found = match kind {
        PathKind::Renamed | PathKind::Socket => fs::symlink_metadata(path),
        PathKind::Appended | PathKind::Directory => fs::metadata(path),
    };
    match found {
        Ok(meta) => return check_existing(path, kind, &meta),
        Err(e) if gone(&e) => {}
        // Unknown (e.g. permission denied): the daemon will tell.
        Err(_) => return Ok(()),
    }
    // It does not exist yet: the nearest thing above it that exists must be
    // a directory, or nothing can be created there.
    for above in path.ancestors().skip(1) {
        match fs::metadata(above) {
            Ok(meta) if meta.is_dir() => return Ok(()),
            Ok(meta) => {
                return Err(format!(
                    "{} cannot be created: {} is {}, not a directory",
                    quoted(path),
                    quoted(above),
                    kind_of(&meta)
                ));
            }
            Err(e) if gone(&e) => continue,
            Err(_) => return Ok(()),
        }
    }
    Ok(())
}

fn check_existing(path: &Path, kind: PathKind, meta: &Metadata) -> Result<(), String> {
    let is = kind_of(meta);
    match kind {
        PathKind::Renamed | PathKind::Appended if meta.is_dir() => {
            Err(format!("{} is a directory, not a file", quoted(path)))
        }
        // Any other file that is not a socket is refused by the server
        // (exit 73, documented in fakeups(8)), which removes nothing but a
        // socket left behind.
        PathKind::Socket if meta.is_dir() => {
            Err(format!("{} is a directory, not a socket", quoted(path)))
        }
        PathKind::Directory if !meta.is_dir() => {
            Err(format!("{} is {is}, not a directory", quoted(path)))
        }
        _ => Ok(()),
    }
}

/// Whether the error means that the path does not exist (a component is
/// missing, or one above it is not a directory: found further up).
fn gone(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    )
}

fn kind_of(meta: &Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_file() {
        "a regular file"
    } else if t.is_symlink() {
        "a symbolic link"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_fifo() {
        "a named pipe"
    } else if t.is_char_device() || t.is_block_device() {
        "a device"
    } else {
        "not a file"
    }
}
