//! Exit statuses from sysexits.h, shared by the daemon and fakeupsctl and
//! documented in their man pages.

/// Bad command-line usage.
pub const EX_USAGE: u8 = 64;
/// The daemon is not running or does not answer.
pub const EX_UNAVAILABLE: u8 = 69;
/// Internal error.
pub const EX_SOFTWARE: u8 = 70;
/// The control socket cannot be created.
pub const EX_CANTCREAT: u8 = 73;
/// Temporary failure; trying again may work.
pub const EX_TEMPFAIL: u8 = 75;
/// The other end spoke something else than the protocol.
pub const EX_PROTOCOL: u8 = 76;
/// Permission denied (pausing; no ICMP socket).
pub const EX_NOPERM: u8 = 77;
/// Configuration error.
pub const EX_CONFIG: u8 = 78;
