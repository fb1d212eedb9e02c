//! Who is on the other end of the control socket (SO_PEERCRED,
//! SO_PEERGROUPS) and whether they may pause and resume.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use tokio::net::UnixStream;

/// The group whose members may pause and resume.
pub const CONTROL_GROUP: &str = "fakeups";

/// Who is on the other end, from the kernel (SO_PEERCRED, SO_PEERGROUPS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
}

impl Peer {
    /// Root, or a process whose primary or supplementary group is `group`.
    pub fn may_control(&self, group: Option<u32>) -> bool {
        self.uid == 0 || group.is_some_and(|g| self.gid == g || self.groups.contains(&g))
    }

    /// The user name, or `uid N` when the user database has none.
    pub fn name(&self) -> String {
        nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(self.uid))
            .ok()
            .flatten()
            .map_or_else(|| format!("uid {}", self.uid), |u| u.name)
    }
}

/// The gid of group fakeups, if it exists.
pub fn control_gid() -> Option<u32> {
    nix::unistd::Group::from_name(CONTROL_GROUP)
        .ok()
        .flatten()
        .map(|g| g.gid.as_raw())
}

/// The supplementary groups the peer process held when it connected.
fn peer_groups(fd: BorrowedFd<'_>) -> io::Result<Vec<u32>> {
    use nix::libc;
    let mut groups: Vec<libc::gid_t> = vec![0; 32];
    loop {
        let mut len = (groups.len() * std::mem::size_of::<libc::gid_t>()) as libc::socklen_t;
        // SAFETY: `groups` is valid for writes of `len` bytes and outlives the
        // call; the kernel writes at most `len` bytes and updates `len`.
        let rc = unsafe {
            libc::getsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_PEERGROUPS,
                groups.as_mut_ptr().cast(),
                &mut len,
            )
        };
        let n = len as usize / std::mem::size_of::<libc::gid_t>();
        if rc == 0 {
            groups.truncate(n);
            return Ok(groups);
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::ERANGE) && n > groups.len() {
            groups.resize(n, 0);
            continue;
        }
        return Err(err);
    }
}

/// What the kernel told of the peer when it connected. SO_PEERGROUPS may
/// fail where SO_PEERCRED works: kernels before 4.13 lack it, and qemu-user
/// (which runs the ARM packages in tests) does not translate it.
pub struct Credentials {
    uid: u32,
    gid: u32,
    pid: Option<i32>,
    groups: io::Result<Vec<u32>>,
}

/// The caller's groups could be read neither from the socket nor from /proc.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the groups of the caller (uid {uid}): SO_PEERGROUPS: {sockopt}; {fallback}")]
pub struct GroupsUnknown {
    uid: u32,
    sockopt: io::Error,
    fallback: String,
}

/// Reads the peer's credentials from the socket; no file or database is read.
pub fn credentials(stream: &UnixStream) -> io::Result<Credentials> {
    let cred = stream.peer_cred()?;
    Ok(Credentials {
        uid: cred.uid(),
        gid: cred.gid(),
        pid: cred.pid(),
        groups: peer_groups(stream.as_fd()),
    })
}

impl Credentials {
    /// The peer, with its supplementary groups from the socket or, where
    /// the socket gave none, from /proc/PID/status (the peer is alive: it
    /// waits for the answer). Root needs no groups. May read a file: call
    /// it off the loop's thread.
    pub fn resolve(self) -> Result<Peer, GroupsUnknown> {
        let groups = match self.groups {
            Ok(groups) => groups,
            Err(_) if self.uid == 0 => vec![],
            Err(sockopt) => {
                let fallback = match self.pid {
                    None => Err("the kernel gave no process id".to_string()),
                    Some(pid) => {
                        let path = format!("/proc/{pid}/status");
                        std::fs::read_to_string(&path)
                            .map_err(|e| format!("{path}: {e}"))
                            .and_then(|text| {
                                groups_in_status(&text)
                                    .ok_or_else(|| format!("{path}: no Groups line"))
                            })
                    }
                };
                fallback.map_err(|fallback| GroupsUnknown {
                    uid: self.uid,
                    sockopt,
                    fallback,
                })?
            }
        };
        Ok(Peer {
            uid: self.uid,
            gid: self.gid,
            groups,
        })
    }
}

/// The supplementary groups on the `Groups:` line of /proc/PID/status.
fn groups_in_status(text: &str) -> Option<Vec<u32>> {
    let line = text.lines().find_map(|l| l.strip_prefix("Groups:"))?;
    line.split_whitespace().map(|g| g.parse().ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn who_may_pause() {
        let peer = |uid, gid, groups: &[u32]| Peer {
            uid,
            gid,
            groups: groups.to_vec(),
        };
        assert!(peer(0, 0, &[]).may_control(None));
        assert!(peer(1000, 998, &[]).may_control(Some(998)));
        assert!(peer(1000, 1000, &[27, 998]).may_control(Some(998)));
        assert!(!peer(1000, 1000, &[27]).may_control(Some(998)));
        assert!(!peer(65534, 65534, &[]).may_control(None));
    }

    #[test]
    fn groups_from_proc_status_match_the_process() {
        let text = std::fs::read_to_string("/proc/self/status").unwrap();
        let mut from_proc = groups_in_status(&text).unwrap();
        let mut own: Vec<u32> = nix::unistd::getgroups()
            .unwrap()
            .iter()
            .map(|g| g.as_raw())
            .collect();
        from_proc.sort_unstable();
        own.sort_unstable();
        assert_eq!(from_proc, own);
        assert_eq!(
            groups_in_status("Name:\tx\nGroups:\t27 998 \nPid:\t1\n"),
            Some(vec![27, 998])
        );
        assert_eq!(groups_in_status("Groups:\t\n"), Some(vec![]));
        assert_eq!(groups_in_status("Name:\tx\n"), None);
    }
}
