//! Weighing what upsd serves against what fakeups wrote: a name that upsd
//! does not serve as written is a problem, warned about once per episode,
//! after a grace for the driver's next poll and for NUT's start. Pure:
//! snapshots and monotonic time in, events out.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::view::{STARTUP_GRACE, Snapshot};

/// How long upsd may serve another status than the one written (the driver
/// polls the file every second, and upsd is asked every 3 s).
pub const MISMATCH_GRACE: Duration = Duration::from_secs(5);

/// Something to log after weighing a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthEvent {
    /// These names started a problem episode with this text.
    Problem { names: Vec<String>, problem: String },
    /// These names are served as written again.
    Recovered { names: Vec<String> },
}

#[derive(Debug, Default, Clone)]
struct Episode {
    mismatch_since: Option<Instant>,
    problem: Option<String>,
    warned: bool,
}

/// Problem episodes per UPS name.
#[derive(Debug, Clone)]
pub struct Health {
    started: Instant,
    /// NUT served every name as written at least once.
    was_up: bool,
    names: BTreeMap<String, Episode>,
}

impl Health {
    /// Weighs looks from a view started at `started`.
    pub fn new(started: Instant) -> Health {
        Health {
            started,
            was_up: false,
            names: BTreeMap::new(),
        }
    }

    /// Weighs `snap` against the status fakeups wrote, at monotonic `now`,
    /// and returns what changed: problems that start, names that recover.
    pub fn assess(
        &mut self,
        snap: &Snapshot,
        names: &[String],
        written: &str,
        now: Instant,
    ) -> Vec<HealthEvent> {
        self.names.retain(|n, _| names.contains(n));
        let mut started: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut recovered = vec![];
        let in_grace = !self.was_up && now.saturating_duration_since(self.started) < STARTUP_GRACE;
        let mut all_served = true;
        for name in names {
            // A mismatch may be the driver's next poll still to come.
            let (problem, is_mismatch) = match &snap.error {
                Some(e) => (Some(e.clone()), false),
                None => match snap.ups.iter().find(|u| &u.name == name) {
                    None => (Some("not asked".to_string()), false),
                    Some(u) => match &u.status {
                        Err(e) => (Some(e.clone()), false),
                        Ok(served) if served == written => (None, false),
                        Ok(served) => (
                            Some(format!("serves {served} while fakeups wrote {written}")),
                            true,
                        ),
                    },
                },
            };
            all_served &= problem.is_none();
            let ep = self.names.entry(name.clone()).or_default();
            if is_mismatch {
                let since = *ep.mismatch_since.get_or_insert(now);
                if now.saturating_duration_since(since) < MISMATCH_GRACE {
                    // Not a problem yet; an episode already under way goes on.
                    continue;
                }
            } else {
                ep.mismatch_since = None;
            }
            match problem {
                None => {
                    if ep.problem.take().is_some() && ep.warned {
                        recovered.push(name.clone());
                    }
                    ep.warned = false;
                }
                Some(p) => {
                    if !ep.warned && !in_grace {
                        started.entry(p.clone()).or_default().push(name.clone());
                        ep.warned = true;
                    }
                    ep.problem = Some(p);
                }
            }
        }
        self.was_up |= all_served;
        let mut events: Vec<HealthEvent> = started
            .into_iter()
            .map(|(problem, names)| HealthEvent::Problem { names, problem })
            .collect();
        if !recovered.is_empty() {
            events.push(HealthEvent::Recovered { names: recovered });
        }
        events
    }

    /// The current problem of `name`, if any.
    pub fn problem(&self, name: &str) -> Option<&str> {
        self.names.get(name).and_then(|e| e.problem.as_deref())
    }

    /// "NUT not serving qnapups, ups: driver not connected" for STATUS=,
    /// naming the first problem.
    pub fn summary(&self) -> Option<String> {
        let mut by_problem: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (name, ep) in &self.names {
            if let Some(p) = &ep.problem {
                by_problem.entry(p).or_default().push(name);
            }
        }
        by_problem
            .into_iter()
            .next()
            .map(|(p, names)| format!("NUT not serving {}: {p}", names.join(", ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nut::view::{POLL_PERIOD, UpsState};
    use chrono::Local;

    fn names() -> Vec<String> {
        ["fakeups", "qnapups", "ups"].map(String::from).to_vec()
    }

    fn snap(statuses: &[Result<&str, &str>]) -> Snapshot {
        Snapshot {
            checked: Local::now(),
            error: None,
            ups: names()
                .into_iter()
                .zip(statuses)
                .map(|(name, s)| UpsState {
                    name,
                    status: s.map(String::from).map_err(String::from),
                    clients: vec![],
                })
                .collect(),
            foreign: vec![],
        }
    }

    /// A view that started long enough ago for warnings.
    fn health(t0: Instant) -> Health {
        Health::new(t0.checked_sub(STARTUP_GRACE).unwrap_or(t0))
    }

    #[test]
    fn a_driver_not_connected_is_warned_once_and_recovers() {
        let t0 = Instant::now() + STARTUP_GRACE;
        let mut h = health(t0);
        let bad = snap(&[Ok("OL"), Err("driver not connected"), Ok("OL")]);
        assert_eq!(
            h.assess(&bad, &names(), "OL", t0),
            vec![HealthEvent::Problem {
                names: vec!["qnapups".into()],
                problem: "driver not connected".into()
            }]
        );
        assert!(h.assess(&bad, &names(), "OL", t0 + POLL_PERIOD).is_empty());
        assert_eq!(
            h.summary().as_deref(),
            Some("NUT not serving qnapups: driver not connected")
        );
        let good = snap(&[Ok("OL"), Ok("OL"), Ok("OL")]);
        assert_eq!(
            h.assess(&good, &names(), "OL", t0 + 2 * POLL_PERIOD),
            vec![HealthEvent::Recovered {
                names: vec!["qnapups".into()]
            }]
        );
        assert_eq!(h.summary(), None);
    }

    #[test]
    fn upsd_unreachable_is_one_problem_for_every_name() {
        let t0 = Instant::now() + STARTUP_GRACE;
        let mut h = health(t0);
        let down = Snapshot {
            checked: Local::now(),
            error: Some("upsd at 127.0.0.1:3493 unreachable: Connection refused".into()),
            ups: vec![],
            foreign: vec![],
        };
        let ev = h.assess(&down, &names(), "OL", t0);
        assert_eq!(ev.len(), 1);
        assert!(matches!(&ev[0], HealthEvent::Problem { names, .. } if names.len() == 3));
        assert!(
            h.summary()
                .unwrap()
                .starts_with("NUT not serving fakeups, qnapups, ups: upsd at")
        );
    }

    #[test]
    fn a_mismatch_is_a_problem_only_after_the_grace() {
        let t0 = Instant::now() + STARTUP_GRACE;
        let mut h = health(t0);
        let lagging = snap(&[Ok("OL"), Ok("OL"), Ok("OL")]);
        assert!(h.assess(&lagging, &names(), "OB", t0).is_empty());
        assert!(
            h.assess(&lagging, &names(), "OB", t0 + POLL_PERIOD)
                .is_empty()
        );
        let ev = h.assess(&lagging, &names(), "OB", t0 + MISMATCH_GRACE);
        assert_eq!(
            ev,
            vec![HealthEvent::Problem {
                names: names(),
                problem: "serves OL while fakeups wrote OB".into()
            }]
        );
        // Caught up in time: no episode at all.
        let mut h = health(t0);
        assert!(h.assess(&lagging, &names(), "OB", t0).is_empty());
        let caught = snap(&[Ok("OB"), Ok("OB"), Ok("OB")]);
        assert!(
            h.assess(&caught, &names(), "OB", t0 + POLL_PERIOD)
                .is_empty()
        );
        assert!(
            h.assess(&lagging, &names(), "OB", t0 + 2 * POLL_PERIOD)
                .is_empty()
        );
    }

    #[test]
    fn an_unknown_name_is_a_problem() {
        let t0 = Instant::now() + STARTUP_GRACE;
        let mut h = health(t0);
        let s = snap(&[Ok("OL"), Ok("OL"), Err("unknown UPS name")]);
        let ev = h.assess(&s, &names(), "OL", t0);
        assert_eq!(
            ev,
            vec![HealthEvent::Problem {
                names: vec!["ups".into()],
                problem: "unknown UPS name".into()
            }]
        );
        assert_eq!(h.problem("ups"), Some("unknown UPS name"));
    }

    #[test]
    fn upsd_starting_after_fakeups_is_not_warned_about() {
        let t0 = Instant::now();
        let mut h = Health::new(t0);
        let names = vec!["fakeups".to_string()];
        let down = Snapshot {
            checked: Local::now(),
            error: Some("upsd at 127.0.0.1:3493 unreachable: Connection refused".into()),
            ups: vec![],
            foreign: vec![],
        };
        assert!(h.assess(&down, &names, "OL", t0).is_empty());
        // Shown meanwhile, though.
        assert!(h.summary().is_some());
        let up = Snapshot {
            checked: Local::now(),
            error: None,
            ups: vec![UpsState {
                name: "fakeups".into(),
                status: Ok("OL".into()),
                clients: vec![],
            }],
            foreign: vec![],
        };
        // Up within the grace: no warning, no recovery message.
        assert!(h.assess(&up, &names, "OL", t0 + POLL_PERIOD).is_empty());
        // Once it was up, the grace is over: a problem is warned at once.
        assert_eq!(h.assess(&down, &names, "OL", t0 + 2 * POLL_PERIOD).len(), 1);
        // Still down when the grace ends: warned then, once.
        let mut h = Health::new(t0);
        assert!(h.assess(&down, &names, "OL", t0).is_empty());
        assert_eq!(h.assess(&down, &names, "OL", t0 + STARTUP_GRACE).len(), 1);
        assert!(
            h.assess(&down, &names, "OL", t0 + STARTUP_GRACE + POLL_PERIOD)
                .is_empty()
        );
    }
}
