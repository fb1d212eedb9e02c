//! Whether user `nut`, as whom the dummy-ups driver runs, can read the data
//! file: every directory on the way entered, the file read.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Why user `nut` (the driver) could not read the file at `path`, if it could not.
pub fn unreadable_by_nut(path: &Path) -> Option<String> {
    let user = nix::unistd::User::from_name("nut").ok().flatten()?;
    let (uid, gid) = (user.uid.as_raw(), user.gid.as_raw());
    let can = |meta: &fs::Metadata, bits: u32| -> bool {
        let mode = meta.mode();
        if uid == 0 {
            return true;
        }
        if meta.uid() == uid {
            mode & (bits << 6) == bits << 6
        } else if meta.gid() == gid {
            mode & (bits << 3) == bits << 3
        } else {
            mode & bits == bits
        }
    };
    let mut dir = path.parent();
    while let Some(d) = dir {
        if let Ok(meta) = fs::metadata(d)
            && !can(&meta, 0o1)
        {
            return Some(format!(
                "user nut cannot enter {} (mode {:o})",
                d.display(),
                meta.mode() & 0o7777
            ));
        }
        dir = d.parent();
    }
    let meta = fs::metadata(path).ok()?;
    (!can(&meta, 0o4)).then(|| {
        format!(
            "user nut cannot read {} (mode {:o})",
            path.display(),
            meta.mode() & 0o7777
        )
    })
}
