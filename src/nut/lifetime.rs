//! Whether the data file goes away with the service. dummy-ups in
//! `dummy-loop` mode re-reads the file every second and marks its data fresh
//! each time, so a file that outlives the daemon is served as fresh for
//! ever: after a stop every NUT client goes on seeing the last status, with
//! no warning. In the unit's RuntimeDirectory (/run/fakeups, a tmpfs),
//! systemd keeps it across a restart and removes it when the service stops
//! or fails for good; then dummy-ups exits and clients see the UPS as lost.

use std::env;
use std::path::{Path, PathBuf};

use crate::paths::DATA_FILE;

/// Why the data file at `path` will outlive the daemon, if it will: it is
/// outside every directory systemd removes when the service stops (those of
/// RuntimeDirectory=, which systemd passes in `$RUNTIME_DIRECTORY`). Only
/// asked under systemd: a daemon run by hand has no service to outlive.
pub fn outlives_the_service(path: &Path) -> Option<String> {
    let dirs: Vec<PathBuf> = env::split_paths(&env::var_os("RUNTIME_DIRECTORY")?).collect();
    warning(path, &dirs)
}

/// The warning for a data file at `path` when systemd removes `runtime_dirs`
/// on stop.
fn warning(path: &Path, runtime_dirs: &[PathBuf]) -> Option<String> {
    if runtime_dirs
        .iter()
        .any(|d| d.is_absolute() && path.starts_with(d) && path != d)
    {
        return None;
    }
    Some(format!(
        "NUT data file {} stays when fakeups stops or fails (it is not in the \
         service's RuntimeDirectory): NUT would go on serving the last status \
         as fresh; the default, {DATA_FILE}, goes with the service",
        path.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inside_the_runtime_directory_is_fine() {
        let dirs = [PathBuf::from("/run/fakeups")];
        assert_eq!(warning(Path::new("/run/fakeups/fakeups.dev"), &dirs), None);
        assert_eq!(warning(Path::new("/run/fakeups/nut/a.dev"), &dirs), None);
    }

    #[test]
    fn anywhere_else_is_warned_about() {
        let dirs = [PathBuf::from("/run/fakeups")];
        for path in [
            "/var/lib/fakeups/fakeups.dev",
            "/run/fakeups-other/fakeups.dev",
            "/dev/shm/fakeups.dev",
        ] {
            let w = warning(Path::new(path), &dirs).expect(path);
            assert!(
                w.contains(path) && w.contains("/run/fakeups/fakeups.dev"),
                "{w}"
            );
        }
        // Not started by systemd: nothing removes it.
        assert!(warning(Path::new("/run/fakeups/fakeups.dev"), &[]).is_some());
        // The directory itself is not a file in it; a relative entry is ignored.
        assert!(warning(Path::new("/run/fakeups"), &dirs).is_some());
        assert!(warning(Path::new("run/x.dev"), &[PathBuf::from("run")]).is_some());
    }
}
