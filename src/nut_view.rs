//! Reading back what NUT really serves: every few seconds upsd is asked for
//! each UPS name's `ups.status` and logged-in clients; a name that upsd does
//! not serve as fakeups wrote it is a problem, warned about once per episode.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Local};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::nut_client::{NutConnection, NutError};

/// How often upsd is asked.
pub const POLL_PERIOD: Duration = Duration::from_secs(3);
/// How often upsd is asked after the start until it first serves every
/// name: right after an install or a boot NUT comes up a moment after
/// fakeups, and `systemctl status` should not show it missing for long.
pub const STARTUP_POLL_PERIOD: Duration = Duration::from_secs(1);
/// How long each exchange with upsd may take.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long upsd may serve another status than the one written (the driver
/// polls the file every second, and upsd is asked every 3 s).
pub const MISMATCH_GRACE: Duration = Duration::from_secs(5);
/// How long after the start problems are shown but not warned about, unless
/// NUT served everything as written before: at boot fakeups starts first
/// (the drivers need its data file) and upsd follows a few seconds later.
pub const STARTUP_GRACE: Duration = Duration::from_secs(20);

/// One look at upsd.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub checked: DateTime<Local>,
    /// Why upsd could not be asked at all.
    pub error: Option<String>,
    pub ups: Vec<UpsState>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct UpsState {
    pub name: String,
    /// `ups.status` as served, or why it is not served.
    pub status: Result<String, String>,
    pub clients: Vec<String>,
}

/// Starts asking `upsd` about `names` at once and then every `POLL_PERIOD`
/// (`STARTUP_POLL_PERIOD` until NUT is first seen serving); each look goes
/// to `tx`.
pub fn spawn(
    upsd: String,
    names: Vec<String>,
    tx: watch::Sender<Option<Snapshot>>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let started = Instant::now();
        let mut served = false;
        loop {
            let asked = tokio::time::Instant::now();
            let snapshot = look(&upsd, &names).await;
            served = served || snapshot.serves_every_name();
            if tx.send(Some(snapshot)).is_err() {
                return;
            }
            let period = poll_period(served, started.elapsed());
            tokio::time::sleep_until(asked + period).await;
        }
    })
}

/// The pause before the next look: short while NUT has not yet been seen
/// serving every name during the startup grace, `POLL_PERIOD` after that.
pub fn poll_period(served_once: bool, since_start: Duration) -> Duration {
    if served_once || since_start >= STARTUP_GRACE {
        POLL_PERIOD
    } else {
        STARTUP_POLL_PERIOD
    }
}

impl Snapshot {
    /// upsd answered and served a status for every name.
    pub fn serves_every_name(&self) -> bool {
        self.error.is_none() && self.ups.iter().all(|u| u.status.is_ok())
    }
}

/// Asks upsd once, over one connection.
pub async fn look(upsd: &str, names: &[String]) -> Snapshot {
    let checked = Local::now();
    // upsd could not be asked (as opposed to refusing one name).
    let failed = |e: NutError| Snapshot {
        checked,
        error: Some(e.to_string()),
        ups: vec![],
    };
    let mut conn = match NutConnection::connect(upsd, EXCHANGE_TIMEOUT).await {
        Ok(c) => c,
        Err(e) => return failed(e),
    };
    let mut ups = Vec::with_capacity(names.len());
    for name in names {
        let status = match conn.get_var(name, "ups.status").await {
            Ok(s) => Ok(s),
            Err(e @ NutError::Refused(_)) => Err(e.to_string()),
            Err(e) => return failed(e),
        };
        let clients = match conn.list_clients(name).await {
            Ok(c) => c,
            Err(NutError::Refused(_)) => vec![],
            Err(e) => return failed(e),
        };
        ups.push(UpsState {
            name: name.clone(),
            status,
            clients,
        });
    }
    Snapshot {
        checked,
        error: None,
        ups,
    }
}

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
    fn asks_every_second_until_nut_first_serves_then_every_three() {
        assert_eq!(poll_period(false, Duration::ZERO), STARTUP_POLL_PERIOD);
        assert_eq!(poll_period(false, STARTUP_GRACE / 2), STARTUP_POLL_PERIOD);
        assert_eq!(poll_period(true, Duration::from_secs(2)), POLL_PERIOD);
        // NUT never came up: back to the normal pace once the grace is over.
        assert_eq!(poll_period(false, STARTUP_GRACE), POLL_PERIOD);
        assert!(snap(&[Ok("OL"), Ok("OL"), Ok("OL")]).serves_every_name());
        assert!(!snap(&[Ok("OL"), Err("driver not connected"), Ok("OL")]).serves_every_name());
        let down = Snapshot {
            checked: Local::now(),
            error: Some("connection refused".into()),
            ups: vec![],
        };
        assert!(!down.serves_every_name());
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
