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

pub fn peer_of(stream: &UnixStream) -> io::Result<Peer> {
    let cred = stream.peer_cred()?;
    Ok(Peer {
        uid: cred.uid(),
        gid: cred.gid(),
        groups: peer_groups(stream.as_fd())?,
    })
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
}
