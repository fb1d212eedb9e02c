//! How many control connections each user may hold at once, and how the
//! trouble one user makes is logged: once when it starts, a count when it
//! stops. Pure bookkeeping: the server passes the time in.
//!
//! The socket is open to every local user (anyone may read the status), so
//! one user must not be able to take every place. Each connection is
//! counted for the uid the kernel gives (SO_PEERCRED) from the moment it is
//! accepted until it closes. Root has places of its own, which no other
//! user can take; the other users share a budget kept well under the
//! daemon's limit on open files, and each of them may hold only a few of
//! those places.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::format::fmt_duration;
use crate::sys::logging::Level;

/// How long a user's trouble must stop before its episode ends (and the
/// next one is logged again).
pub const QUIET: Duration = Duration::from_secs(10);

/// The most connections held at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    /// By one user other than root.
    pub per_user: usize,
    /// By all users other than root together.
    pub all_users: usize,
    /// By root.
    pub root: usize,
}

impl Caps {
    /// The caps for a process that may open `open_files` files (its soft
    /// RLIMIT_NOFILE; None when unlimited or unknown): at most a quarter of
    /// them for the users and a sixteenth for root, so that the rounds, the
    /// writers and the log always find a descriptor. Under systemd's
    /// default of 1024: 32 a user, 256 for all users, 64 for root.
    pub fn for_open_files(open_files: Option<u64>) -> Caps {
        let n = open_files.unwrap_or(u64::MAX);
        let all_users = usize::try_from((n / 4).clamp(8, 512)).unwrap_or(512);
        let root = usize::try_from((n / 16).clamp(4, 64)).unwrap_or(64);
        Caps {
            per_user: all_users.min(32),
            all_users,
            root,
        }
    }
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Its user holds as many connections as one user may.
    User { open: usize },
    /// The users other than root hold as many as they may together.
    AllUsers { open: usize },
}

impl Refusal {
    /// What the refused client is told.
    pub fn message(&self, uid: u32) -> String {
        match self {
            Refusal::User { open } => format!(
                "too many connections from uid {uid} ({open} open, the most one user may have); \
                 try again later"
            ),
            Refusal::AllUsers { open } => format!(
                "too many connections from users other than root ({open} open); try again later"
            ),
        }
    }
}

/// Trouble a user made on the control socket.
#[derive(Debug, Clone, PartialEq)]
pub enum Trouble {
    /// A connection refused: too many open.
    Refused(Refusal),
    /// A connection closed without a whole request within the deadline
    /// (idle, or sending slowly).
    NoRequest(Duration),
    /// An answer that could not be sent (the client went away, or did not
    /// read it in time).
    Undelivered(String),
    /// A pause or resume refused (the message says who and why).
    Denied(String),
}

impl Trouble {
    fn level(&self) -> Level {
        match self {
            Trouble::Refused(_) => Level::Warning,
            _ => Level::Notice,
        }
    }

    fn describe(&self, uid: u32, caps: Caps) -> String {
        match self {
            Trouble::Refused(Refusal::User { open }) => format!(
                "control socket: refused a connection from uid {uid}: it holds {open}, the \
                 most one user may have (a cap of {})",
                caps.per_user
            ),
            Trouble::Refused(Refusal::AllUsers { open }) => format!(
                "control socket: refused a connection from uid {uid}: users other than root \
                 hold {open}, the most they may have together"
            ),
            Trouble::NoRequest(limit) => format!(
                "control socket: closed a connection from uid {uid} that sent no whole \
                 request within {}",
                fmt_duration(*limit)
            ),
            Trouble::Undelivered(why) => {
                format!("control socket: could not send an answer to uid {uid}: {why}")
            }
            Trouble::Denied(message) => message.clone(),
        }
    }
}

/// One user's trouble since it started.
#[derive(Debug, Clone)]
struct Episode {
    started: Instant,
    last: Instant,
    refused: u64,
    no_request: u64,
    undelivered: u64,
    denied: u64,
}

impl Episode {
    fn count(&mut self, trouble: &Trouble) {
        match trouble {
            Trouble::Refused(_) => self.refused += 1,
            Trouble::NoRequest(_) => self.no_request += 1,
            Trouble::Undelivered(_) => self.undelivered += 1,
            Trouble::Denied(_) => self.denied += 1,
        }
    }

    fn total(&self) -> u64 {
        self.refused + self.no_request + self.undelivered + self.denied
    }
}

/// The connections open per user, and each user's trouble.
#[derive(Debug)]
pub struct Limits {
    caps: Caps,
    open: HashMap<u32, usize>,
    users_open: usize,
    episodes: HashMap<u32, Episode>,
}

impl Limits {
    pub fn new(caps: Caps) -> Limits {
        Limits {
            caps,
            open: HashMap::new(),
            users_open: 0,
            episodes: HashMap::new(),
        }
    }

    /// Takes a place for a new connection of `uid`, or says why not. Each
    /// place taken must be given back with `release`.
    pub fn admit(&mut self, uid: u32) -> Result<(), Refusal> {
        let open = self.open.get(&uid).copied().unwrap_or(0);
        if uid == 0 {
            if open >= self.caps.root {
                return Err(Refusal::User { open });
            }
        } else if open >= self.caps.per_user {
            return Err(Refusal::User { open });
        } else if self.users_open >= self.caps.all_users {
            return Err(Refusal::AllUsers {
                open: self.users_open,
            });
        }
        *self.open.entry(uid).or_insert(0) += 1;
        if uid != 0 {
            self.users_open += 1;
        }
        Ok(())
    }

    /// Gives back a place taken by `admit`.
    pub fn release(&mut self, uid: u32) {
        if let Some(n) = self.open.get_mut(&uid) {
            *n -= 1;
            if *n == 0 {
                self.open.remove(&uid);
            }
            if uid != 0 {
                self.users_open = self.users_open.saturating_sub(1);
            }
        }
    }

    /// Connections open for `uid` now.
    #[cfg(test)]
    fn open(&self, uid: u32) -> usize {
        self.open.get(&uid).copied().unwrap_or(0)
    }

    /// Records `trouble` from `uid` at `now`. When it starts an episode,
    /// returns the line to log; the episode's end is then to be asked for
    /// with `end_if_quiet`.
    pub fn note(&mut self, uid: u32, trouble: &Trouble, now: Instant) -> Option<(Level, String)> {
        if let Some(episode) = self.episodes.get_mut(&uid) {
            episode.count(trouble);
            episode.last = now;
            return None;
        }
        let mut episode = Episode {
            started: now,
            last: now,
            refused: 0,
            no_request: 0,
            undelivered: 0,
            denied: 0,
        };
        episode.count(trouble);
        self.episodes.insert(uid, episode);
        let line = format!(
            "{}; more trouble from uid {uid} is counted, not logged, until it stops for {}",
            trouble.describe(uid, self.caps),
            fmt_duration(QUIET)
        );
        Some((trouble.level(), line))
    }

    /// Ends the episode of `uid` if it has been quiet for `QUIET` at `now`:
    /// `Ok` with the summary to log (None when the episode was its first
    /// line alone, or there is none); `Err` with when to ask again.
    pub fn end_if_quiet(&mut self, uid: u32, now: Instant) -> Result<Option<String>, Instant> {
        let Some(episode) = self.episodes.get(&uid) else {
            return Ok(None);
        };
        let quiet_at = episode.last + QUIET;
        if now < quiet_at {
            return Err(quiet_at);
        }
        let episode = episode.clone();
        self.episodes.remove(&uid);
        if episode.total() <= 1 {
            return Ok(None);
        }
        let counts: Vec<String> = [
            (episode.refused, "connection(s) refused"),
            (episode.no_request, "closed without a request in time"),
            (episode.undelivered, "answer(s) not delivered"),
            (episode.denied, "pause or resume request(s) denied"),
        ]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
        Ok(Some(format!(
            "control socket: trouble from uid {uid} stopped after {}: {}",
            fmt_duration(round_to_seconds(episode.last - episode.started)),
            counts.join(", ")
        )))
    }
}

fn round_to_seconds(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs() + u64::from(d.subsec_millis() >= 500))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_stay_well_under_the_open_files_limit() {
        let c = Caps::for_open_files(Some(1024));
        assert_eq!(
            c,
            Caps {
                per_user: 32,
                all_users: 256,
                root: 64
            }
        );
        assert!(c.all_users + c.root < 1024 / 2);
        assert_eq!(
            Caps::for_open_files(None),
            Caps {
                per_user: 32,
                all_users: 512,
                root: 64
            }
        );
        assert_eq!(
            Caps::for_open_files(Some(64)),
            Caps {
                per_user: 16,
                all_users: 16,
                root: 4
            }
        );
    }

    fn small() -> Limits {
        Limits::new(Caps {
            per_user: 2,
            all_users: 3,
            root: 2,
        })
    }

    #[test]
    fn one_user_cannot_take_every_place_nor_any_of_roots() {
        let mut l = small();
        assert_eq!(l.admit(1000), Ok(()));
        assert_eq!(l.admit(1000), Ok(()));
        assert_eq!(l.admit(1000), Err(Refusal::User { open: 2 }));
        // Another user still gets in, up to the budget of all users.
        assert_eq!(l.admit(1001), Ok(()));
        assert_eq!(l.admit(1002), Err(Refusal::AllUsers { open: 3 }));
        // Root has places of its own.
        assert_eq!(l.admit(0), Ok(()));
        assert_eq!(l.admit(0), Ok(()));
        assert_eq!(l.admit(0), Err(Refusal::User { open: 2 }));
        l.release(1000);
        assert_eq!(l.open(1000), 1);
        assert_eq!(l.admit(1002), Ok(()));
        l.release(0);
        assert_eq!(l.admit(0), Ok(()));
        // A release without an admit changes nothing.
        l.release(4242);
        assert_eq!(l.admit(1003), Err(Refusal::AllUsers { open: 3 }));
        assert_eq!(
            Refusal::User { open: 32 }.message(65534),
            "too many connections from uid 65534 (32 open, the most one user may have); \
             try again later"
        );
    }

    #[test]
    fn trouble_is_logged_once_and_counted_until_it_stops() {
        let mut l = small();
        let t0 = Instant::now();
        let first = l.note(65534, &Trouble::Refused(Refusal::User { open: 2 }), t0);
        assert_eq!(
            first,
            Some((
                Level::Warning,
                "control socket: refused a connection from uid 65534: it holds 2, the most one \
                 user may have (a cap of 2); more trouble from uid 65534 is counted, not \
                 logged, until it stops for 10s"
                    .to_string()
            ))
        );
        for i in 1..=999 {
            let t = t0 + Duration::from_millis(i);
            assert_eq!(
                l.note(65534, &Trouble::Refused(Refusal::User { open: 2 }), t),
                None
            );
        }
        let t1 = t0 + Duration::from_millis(1500);
        assert_eq!(
            l.note(65534, &Trouble::NoRequest(Duration::from_secs(1)), t1),
            None
        );
        // Another user's trouble is its own episode.
        let other = l.note(1000, &Trouble::NoRequest(Duration::from_secs(1)), t1);
        assert_eq!(
            other.map(|(level, _)| level),
            Some(Level::Notice),
            "a first line for uid 1000 too"
        );
        assert_eq!(l.end_if_quiet(65534, t1 + QUIET / 2), Err(t1 + QUIET));
        assert_eq!(
            l.end_if_quiet(65534, t1 + QUIET),
            Ok(Some(
                "control socket: trouble from uid 65534 stopped after 2s: 1000 connection(s) \
                 refused, 1 closed without a request in time"
                    .to_string()
            ))
        );
        // A single event needs no summary; the next one starts afresh.
        assert_eq!(l.end_if_quiet(1000, t1 + QUIET), Ok(None));
        assert_eq!(l.end_if_quiet(1000, t1 + QUIET), Ok(None));
        assert!(
            l.note(
                65534,
                &Trouble::Undelivered("broken pipe".into()),
                t1 + QUIET
            )
            .is_some()
        );
    }
}
