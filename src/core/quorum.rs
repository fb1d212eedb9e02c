//! How many silent sentinels mean that mains is lost.

use std::fmt;

/// How many silent sentinels mean that mains is lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quorum {
    /// Every sentinel is silent.
    All,
    /// More than half of the sentinels are silent.
    Majority,
    /// At least one sentinel is silent.
    Any,
    /// At least this many sentinels are silent.
    AtLeast(usize),
}

impl Quorum {
    /// Whether `silent` of `total` sentinels meet the quorum.
    pub fn is_met(self, silent: usize, total: usize) -> bool {
        match self {
            Quorum::All => total > 0 && silent >= total,
            Quorum::Majority => silent * 2 > total,
            Quorum::Any => silent >= 1,
            Quorum::AtLeast(n) => silent >= n.max(1),
        }
    }
}

impl fmt::Display for Quorum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Quorum::All => f.write_str("all"),
            Quorum::Majority => f.write_str("majority"),
            Quorum::Any => f.write_str("any"),
            Quorum::AtLeast(n) => write!(f, "{n}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quorum_rules() {
        assert!(Quorum::All.is_met(3, 3));
        assert!(!Quorum::All.is_met(2, 3));
        assert!(!Quorum::All.is_met(0, 0));
        assert!(Quorum::Majority.is_met(2, 3));
        assert!(!Quorum::Majority.is_met(1, 2));
        assert!(Quorum::Majority.is_met(2, 2));
        assert!(Quorum::Any.is_met(1, 5));
        assert!(!Quorum::Any.is_met(0, 5));
        assert!(Quorum::AtLeast(2).is_met(2, 4));
        assert!(!Quorum::AtLeast(2).is_met(1, 4));
    }
}
