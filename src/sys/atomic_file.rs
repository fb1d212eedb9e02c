//! Writing a file so that a reader sees the old contents or the new ones,
//! never none and never a part: the dummy-ups driver exits when its
//! data file is missing, and a torn state file would lose the battery.

use std::fs;
use std::io::{self, Write as _};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A failed write, with the file it was for.
#[derive(Debug, thiserror::Error)]
#[error("cannot write {path}: {what}: {source}")]
pub struct WriteError {
    pub path: PathBuf,
    pub what: &'static str,
    #[source]
    pub source: io::Error,
}

/// Creates the directory of `path` (mode 0755, parents too) when it is
/// missing: the data file, the log file and the control socket may be
/// configured anywhere.
pub fn create_parent_dir(path: &Path) -> io::Result<()> {
    match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) if !dir.is_dir() => fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(dir),
        _ => Ok(()),
    }
}

/// Whether a write must reach the disk before it counts as done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sync {
    /// Synced before the rename, the directory after: it survives a power
    /// cut. Two fsyncs, which an SD card may stall for seconds.
    Durable,
    /// Renamed into place only: it survives a crash of the process (the
    /// kernel keeps it) but not of the machine. For files on a tmpfs, and
    /// for files rewritten from scratch after a reboot.
    Volatile,
}

/// Writes `contents` to a temporary file in the directory of `path`, gives
/// it `mode` and renames it over `path`, syncing the file and the directory
/// when `sync` is `Durable`. A reader sees the old file or the new one,
/// never none and never a part.
pub fn write_atomically(
    path: &Path,
    contents: &[u8],
    mode: u32,
    sync: Sync,
) -> Result<(), WriteError> {
    let err = |what: &'static str| {
        let path = path.to_path_buf();
        move |source| WriteError { path, what, source }
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))
        .map_err(err("bad path"))?;
    create_parent_dir(path).map_err(err("cannot create its directory"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    // Unique to the call: two writer threads may write one path (a state
    // directory that is also the runtime directory).
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    tmp_name.push(format!(".tmp{}.{n}", std::process::id()));
    let tmp = dir.join(tmp_name);
    let result = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)
            .map_err(err("cannot create the temporary file"))?;
        // The mode given to open is filtered by the umask; set it exactly.
        file.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(err("cannot set the mode of the temporary file"))?;
        file.write_all(contents).map_err(err("write failed"))?;
        if sync == Sync::Durable {
            file.sync_all().map_err(err("fsync failed"))?;
        }
        fs::rename(&tmp, path).map_err(err("rename failed"))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result?;
    if sync == Sync::Durable
        && let Ok(d) = fs::File::open(dir)
    {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Removes the temporary files that `write_atomically` left for `path`
/// when the process was killed between creating one and renaming it
/// (`.NAME.tmpPID` and `.NAME.tmpPID.N`); other files are left alone.
/// Returns how many were removed, or why the directory could not be read.
pub fn remove_leftovers(path: &Path) -> io::Result<usize> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return Ok(0);
    };
    let prefix = format!(".{name}.tmp");
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(rest) = file_name.to_str().and_then(|n| n.strip_prefix(&prefix)) else {
            continue;
        };
        let ours = rest
            .split('.')
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
            && rest.split('.').count() <= 2;
        if ours
            && entry.file_type().is_ok_and(|t| t.is_file())
            && fs::remove_file(entry.path()).is_ok()
        {
            removed += 1;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_contents_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/state.json");
        write_atomically(&path, b"one", 0o600, Sync::Durable).unwrap();
        write_atomically(&path, b"two", 0o600, Sync::Volatile).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(fs::read_dir(path.parent().unwrap()).unwrap().count(), 1);
    }

    #[test]
    fn leftovers_of_a_crash_are_removed_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let names = [
            ".state.json.tmp123",
            ".state.json.tmp123.7",
            ".state.json.tmpx",
            ".state.json.tmp1.2.3",
            ".other.json.tmp123",
            "state.json",
        ];
        for n in names {
            fs::write(dir.path().join(n), "x").unwrap();
        }
        assert_eq!(remove_leftovers(&path).unwrap(), 2);
        let mut left: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                ".other.json.tmp123",
                ".state.json.tmp1.2.3",
                ".state.json.tmpx",
                "state.json"
            ]
        );
        assert_eq!(remove_leftovers(&dir.path().join("none/x")).unwrap(), 0);
    }

    #[test]
    fn error_names_the_file() {
        let e = write_atomically(
            Path::new("/proc/fakeups-test/x.dev"),
            b"x",
            0o644,
            Sync::Volatile,
        )
        .unwrap_err();
        assert!(e.to_string().contains("/proc/fakeups-test/x.dev"), "{e}");
    }
}
