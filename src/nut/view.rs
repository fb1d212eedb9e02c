//! Reading back what NUT really serves: every few seconds upsd is asked for
//! each UPS name's `ups.status` and logged-in clients (health.rs weighs what
//! it says).

use std::net::IpAddr;
use std::time::{Duration, Instant};

use chrono::{DateTime, Local};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::client::{NutConnection, NutError};
use crate::core::Mac;
use crate::wake::{is_own, neighbours};

/// How often upsd is asked.
pub const POLL_PERIOD: Duration = Duration::from_secs(3);
/// How often upsd is asked after the start until it first serves every
/// name: right after an install or a boot NUT comes up a moment after
/// fakeups, and `systemctl status` should not show it missing for long.
pub const STARTUP_POLL_PERIOD: Duration = Duration::from_secs(1);
/// How long each exchange with upsd may take.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(2);
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
    /// The clients of every name but this machine's own, each once, with
    /// its MAC when the IPv4 neighbour table has it.
    pub foreign: Vec<(IpAddr, Option<Mac>)>,
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
        foreign: vec![],
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
    let foreign = foreign_clients(&ups).await;
    Snapshot {
        checked,
        error: None,
        ups,
        foreign,
    }
}

/// The clients that are not this machine, with their MACs: the neighbour
/// table is read on the blocking pool, and only when there are clients.
async fn foreign_clients(ups: &[UpsState]) -> Vec<(IpAddr, Option<Mac>)> {
    let mut addresses: Vec<IpAddr> = ups
        .iter()
        .flat_map(|u| &u.clients)
        .filter_map(|c| c.parse::<IpAddr>().ok())
        .map(|a| a.to_canonical())
        .collect();
    addresses.sort();
    addresses.dedup();
    if addresses.is_empty() {
        return vec![];
    }
    let found = tokio::task::spawn_blocking(move || {
        let table = neighbours::read().unwrap_or_default();
        addresses
            .into_iter()
            .filter(|a| !is_own(*a))
            .map(|a| {
                let mac = table
                    .iter()
                    .find(|n| IpAddr::V4(n.address) == a)
                    .map(|n| n.mac);
                (a, mac)
            })
            .collect()
    })
    .await;
    found.unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn served(statuses: &[Result<&str, &str>]) -> Snapshot {
        Snapshot {
            checked: Local::now(),
            error: None,
            ups: ["fakeups", "qnapups", "ups"]
                .into_iter()
                .zip(statuses)
                .map(|(name, s)| UpsState {
                    name: name.to_string(),
                    status: s.map(String::from).map_err(String::from),
                    clients: vec![],
                })
                .collect(),
            foreign: vec![],
        }
    }

    #[test]
    fn asks_every_second_until_nut_first_serves_then_every_three() {
        assert_eq!(poll_period(false, Duration::ZERO), STARTUP_POLL_PERIOD);
        assert_eq!(poll_period(false, STARTUP_GRACE / 2), STARTUP_POLL_PERIOD);
        assert_eq!(poll_period(true, Duration::from_secs(2)), POLL_PERIOD);
        // NUT never came up: back to the normal pace once the grace is over.
        assert_eq!(poll_period(false, STARTUP_GRACE), POLL_PERIOD);
        assert!(served(&[Ok("OL"), Ok("OL"), Ok("OL")]).serves_every_name());
        assert!(!served(&[Ok("OL"), Err("driver not connected"), Ok("OL")]).serves_every_name());
        let down = Snapshot {
            checked: Local::now(),
            error: Some("connection refused".into()),
            ups: vec![],
            foreign: vec![],
        };
        assert!(!down.serves_every_name());
    }
}
