//! fakeupsctl as root or as another user, and what it needs.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use super::{FAKEUPSCTL, must, stderr};

/// Runs fakeupsctl on `socket`, as root or (with `user`) through
/// `setpriv --reuid=nobody --regid=nogroup` and the given group list.
pub fn ctl_as(socket: &Path, args: &[&str], user: Option<&[&str]>) -> Output {
    let mut cmd = match user {
        None => FAKEUPSCTL.command(),
        Some(groups) => {
            let mut c = Command::new("setpriv");
            c.args(["--reuid=nobody", "--regid=nogroup"]);
            if groups.is_empty() {
                c.arg("--clear-groups");
            } else {
                c.arg(format!("--groups={}", groups.join(",")));
            }
            c.arg("--").args(FAKEUPSCTL.argv());
            c
        }
    };
    cmd.arg("--socket")
        .arg(socket)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run fakeupsctl")
}

/// `fakeupsctl status --json` as a JSON value.
pub fn status_json(socket: &Path) -> serde_json::Value {
    let out = ctl_as(socket, &["status", "--json"], None);
    assert!(out.status.success(), "status --json: {}", stderr(&out));
    serde_json::from_slice(&out.stdout).expect("status JSON")
}

/// Makes sure system group `fakeups` exists (the package creates it; a test
/// machine may not have it yet).
pub fn ensure_fakeups_group() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if nix::unistd::Group::from_name("fakeups")
            .ok()
            .flatten()
            .is_none()
        {
            must("groupadd", &["--system", "fakeups"]);
        }
    });
}
