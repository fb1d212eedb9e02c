//! Capabilities: what the process holds at start, and dropping all of them
//! but CAP_NET_RAW, which raw ICMP sockets need.

use caps::{CapSet, Capability, CapsHashSet};

/// What was held and what is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapsReport {
    /// Effective capabilities at start, sorted names.
    pub held: Vec<String>,
    /// Whether CAP_NET_RAW is kept (it was permitted).
    pub net_raw: bool,
}

impl CapsReport {
    pub fn summary(&self) -> String {
        let held = if self.held.is_empty() {
            "none".to_string()
        } else if self.held.len() > 8 {
            format!("{} capabilities", self.held.len())
        } else {
            self.held.join(",")
        };
        let kept = if self.net_raw { "cap_net_raw" } else { "none" };
        format!("capabilities held at start: {held}; kept: {kept}")
    }
}

/// A capability set that could not be read or changed.
#[derive(Debug, thiserror::Error)]
pub enum CapsError {
    #[error("cannot read the {set:?} set: {source}")]
    Read {
        set: CapSet,
        source: caps::errors::CapsError,
    },
    #[error("cannot drop {cap} from the bounding set: {source}")]
    DropBounding {
        cap: Capability,
        source: caps::errors::CapsError,
    },
    #[error("cannot clear the ambient set: {source}")]
    ClearAmbient { source: caps::errors::CapsError },
    #[error("cannot set the {set:?} set: {source}")]
    Set {
        set: CapSet,
        source: caps::errors::CapsError,
    },
}

fn names(set: &CapsHashSet) -> Vec<String> {
    let mut v: Vec<String> = set.iter().map(|c| c.to_string().to_lowercase()).collect();
    v.sort();
    v
}

/// Drops every capability but CAP_NET_RAW from the bounding, inheritable,
/// ambient, effective and permitted sets. Keeps CAP_NET_RAW only where it
/// already is: it never gains a capability. A set that holds nothing else is
/// left alone, so under the unit (which grants CAP_NET_RAW only, and whose
/// system call filter refuses capset) nothing needs changing.
pub fn drop_all_but_net_raw() -> Result<CapsReport, CapsError> {
    let read =
        |set: CapSet| caps::read(None, set).map_err(|source| CapsError::Read { set, source });
    let effective = read(CapSet::Effective)?;
    let permitted = read(CapSet::Permitted)?;
    let net_raw = permitted.contains(&Capability::CAP_NET_RAW);
    let only_net_raw = |set: &CapsHashSet| -> CapsHashSet {
        set.iter()
            .filter(|c| **c == Capability::CAP_NET_RAW)
            .copied()
            .collect()
    };
    // The bounding set can only shrink while CAP_SETPCAP is effective, so
    // it goes first.
    if effective.contains(&Capability::CAP_SETPCAP) {
        let bounding = read(CapSet::Bounding)?;
        for cap in bounding.difference(&only_net_raw(&bounding)) {
            caps::drop(None, CapSet::Bounding, *cap)
                .map_err(|source| CapsError::DropBounding { cap: *cap, source })?;
        }
    }
    let ambient = read(CapSet::Ambient)?;
    if ambient != only_net_raw(&ambient) {
        caps::clear(None, CapSet::Ambient).map_err(|source| CapsError::ClearAmbient { source })?;
    }
    // Inheritable, then effective, then permitted: each stays a superset of
    // what the next change needs.
    for (set, current) in [
        (CapSet::Inheritable, read(CapSet::Inheritable)?),
        (CapSet::Effective, effective.clone()),
        (CapSet::Permitted, permitted),
    ] {
        let keep = only_net_raw(&current);
        if keep != current {
            caps::set(None, set, &keep).map_err(|source| CapsError::Set { set, source })?;
        }
    }
    Ok(CapsReport {
        held: names(&effective),
        net_raw,
    })
}

/// The one line printed when no ICMP socket can be opened.
pub fn no_icmp_socket_message(detail: &str) -> String {
    format!(
        "cannot open an ICMP socket ({detail}): grant CAP_NET_RAW \
         (AmbientCapabilities=CAP_NET_RAW in the unit, or run as root), or allow \
         datagram ICMP sockets for the daemon's group with sysctl \
         net.ipv4.ping_group_range (it covers IPv6 too)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_names_held_and_kept() {
        let r = CapsReport {
            held: vec!["cap_chown".into(), "cap_net_raw".into()],
            net_raw: true,
        };
        assert_eq!(
            r.summary(),
            "capabilities held at start: cap_chown,cap_net_raw; kept: cap_net_raw"
        );
        let none = CapsReport {
            held: vec![],
            net_raw: false,
        };
        assert_eq!(
            none.summary(),
            "capabilities held at start: none; kept: none"
        );
    }

    #[test]
    fn message_names_both_remedies() {
        let m = no_icmp_socket_message("Operation not permitted");
        assert!(m.contains("CAP_NET_RAW") && m.contains("ping_group_range"));
        assert!(!m.contains('\n'));
    }
}
