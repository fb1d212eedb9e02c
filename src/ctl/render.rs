//! The status report for a person: what `fakeupsctl status` prints.

use std::fmt::Write as _;
use std::time::Duration;

use chrono::{DateTime, Local};

use crate::control::StatusReport;
use crate::format::{clock, fmt_duration, fmt_secs};

fn ago(then: DateTime<Local>, now: DateTime<Local>) -> String {
    let secs = (now - then).num_seconds().max(0) as u64;
    format!("{} ago", fmt_secs(secs))
}

/// The status for a person.
pub(super) fn render_status(r: &StatusReport, now: DateTime<Local>) -> String {
    let mut o = String::new();
    let secs = |ms: u64| fmt_secs(ms / 1000);
    let _ = writeln!(
        o,
        "fakeups {} (pid {}): {} since {} ({})",
        r.daemon.version,
        r.daemon.pid,
        r.status,
        clock(r.status_since),
        ago(r.status_since, now)
    );
    let _ = writeln!(o, "  {}", r.summary);
    let b = &r.battery;
    let _ = writeln!(
        o,
        "Battery:   {}%, {} of runtime left (low battery at {}% / {})",
        b.charge,
        fmt_secs(b.runtime),
        b.charge_low,
        fmt_secs(b.runtime_low)
    );
    let d = &r.detection;
    let _ = writeln!(
        o,
        "Detection: {}/{} sentinels silent, quorum {}; OB after {} silent, OL after {} back; a round every {}",
        d.silent,
        d.total,
        d.quorum,
        secs(d.on_battery_after_ms),
        secs(d.online_after_ms),
        fmt_duration(Duration::from_millis(d.interval_ms))
    );
    let _ = writeln!(o, "Sentinels:");
    for s in &r.sentinels {
        let addr = match s.address {
            Some(a) if a.to_string() != s.name => format!(" ({a})"),
            _ => String::new(),
        };
        let state = if s.answered {
            match s.last_rtt_ms {
                Some(rtt) => format!("answered, rtt {rtt:.2} ms"),
                None => "answered".to_string(),
            }
        } else {
            format!(
                "silent for {} round(s): {}",
                s.silent_rounds,
                s.problem.as_deref().unwrap_or("no answer")
            )
        };
        let last = match s.last_answer {
            Some(t) if !s.answered => format!("; last answer {}", clock(t)),
            None if !s.answered => "; never answered".to_string(),
            _ => String::new(),
        };
        let _ = writeln!(o, "  {}{addr}: {state}{last}", s.name);
    }
    match &r.pause {
        None => {
            let _ = writeln!(o, "Pause:     none");
        }
        Some(p) => {
            let until = match p.until {
                Some(u) => format!("until {}", clock(u)),
                None => "until resumed".to_string(),
            };
            let why = p
                .reason
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default();
            let _ = writeln!(
                o,
                "Pause:     PAUSED {until} by {} (since {}){why}",
                p.by,
                clock(p.since)
            );
        }
    }
    match &r.nut.upsd {
        None => {
            let _ = writeln!(o, "NUT:       not read back (nut.upsd is \"\")");
        }
        Some(upsd) => {
            let checked = r.nut.checked.map_or_else(
                || "not asked yet".to_string(),
                |t| format!("asked {}", clock(t)),
            );
            let _ = writeln!(o, "NUT:       upsd {upsd}, {checked}");
            if let Some(e) = &r.nut.error {
                let _ = writeln!(o, "  {e}");
            }
            for u in &r.nut.ups {
                let served = u.status.as_deref().unwrap_or("-");
                let clients = if u.clients.is_empty() {
                    "no clients".to_string()
                } else {
                    format!("clients {}", u.clients.join(", "))
                };
                let problem = u
                    .problem
                    .as_deref()
                    .map(|p| format!(" (problem: {p})"))
                    .unwrap_or_default();
                let _ = writeln!(o, "  {}: {served}, {clients}{problem}", u.name);
            }
        }
    }
    let outlets = [
        (
            "Hook:",
            &r.outlets.hooks,
            "events.command is empty",
            "run(s)",
        ),
        (
            "Sentry:",
            &r.outlets.sentry,
            "sentry.dsn is empty",
            "event(s) sent",
        ),
    ];
    for (label, outlet, why_off, unit) in outlets {
        if !outlet.on {
            let _ = writeln!(o, "{label:<10} off ({why_off})");
            continue;
        }
        let failed = match &outlet.last_failure {
            None => "never failed".to_string(),
            Some(f) => format!(
                "last failed {} ({}): {}",
                clock(f.at),
                ago(f.at, now),
                f.error
            ),
        };
        let _ = writeln!(
            o,
            "{label:<10} on, {}: {} {unit}, {} dropped; {failed}",
            outlet.target.as_deref().unwrap_or("?"),
            outlet.delivered,
            outlet.dropped
        );
    }
    render_wake(&mut o, r);
    o
}

/// The drill under way, and the machines of the last outage to wake.
fn render_wake(o: &mut String, r: &StatusReport) {
    if let Some(d) = &r.drill {
        let _ = writeln!(
            o,
            "Drill:     by {} since {}, OL at {}",
            d.by,
            clock(d.since),
            clock(d.until)
        );
    }
    let w = &r.wake;
    let phase = match (&w.outage, w.first_packet_at) {
        (Some(out), _) if out.on_battery => format!(
            "{} since {}: waiting for power to come back",
            if out.drill { "drill" } else { "outage" },
            clock(out.since)
        ),
        (Some(_), Some(at)) => format!(
            "power back: waiting until {} for the first packet",
            clock(at)
        ),
        (Some(_), None) if w.waking => "waking".to_string(),
        (Some(_), None) => "waiting for power to stay back".to_string(),
        (None, _) if w.targets.is_empty() => "nothing to wake".to_string(),
        (None, _) => "done (last outage)".to_string(),
    };
    let _ = writeln!(o, "Wake:      {phase}");
    for t in &w.targets {
        let mac = match (&t.mac, t.mac_from.as_deref()) {
            (Some(m), Some(from)) => format!("{m}, from {from}"),
            (Some(m), None) => m.clone(),
            (None, _) => "no MAC known".to_string(),
        };
        let name = match t.address {
            Some(a) if a.to_string() != t.name => format!("{} ({a})", t.name),
            _ => t.name.clone(),
        };
        // Before the first step a target is not yet known to be down.
        let state = match (&w.outage, w.first_packet_at) {
            (Some(out), _) if out.on_battery && t.state == "down" => {
                "to check once power is back".to_string()
            }
            (Some(_), Some(at)) if t.state == "down" && t.sent == 0 => {
                format!("waiting until {}", clock(at))
            }
            _ => t.description.clone(),
        };
        let _ = writeln!(o, "  {name} [{mac}]: {state}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::report::{
        BatteryReport, DaemonInfo, DetectionReport, FailureReport, NutReport, OutageReport,
        OutletReport, OutletsReport, PauseReport, SentinelReport, UpsReport, WakeReport,
        WakeTargetReport,
    };
    use chrono::TimeDelta;

    fn report(now: DateTime<Local>) -> StatusReport {
        StatusReport {
            format: 1,
            daemon: DaemonInfo {
                version: "0.1.0".into(),
                pid: 42,
                started: now,
                config: "/etc/fakeups/fakeups.toml".into(),
                data_file: "/var/lib/fakeups/fakeups.dev".into(),
            },
            status: "OB".into(),
            status_since: now - TimeDelta::seconds(90),
            summary: "OB: 1/2 sentinels answering; battery 70% (3m 30s left)".into(),
            battery: BatteryReport {
                charge: 70,
                runtime: 210,
                charge_low: 60,
                runtime_low: 180,
            },
            detection: DetectionReport {
                quorum: "any".into(),
                silent: 1,
                total: 2,
                interval_ms: 2000,
                on_battery_after_ms: 30000,
                online_after_ms: 15000,
                lost_for_ms: None,
                back_for_ms: None,
            },
            sentinels: vec![
                SentinelReport {
                    name: "gateway".into(),
                    address: Some("192.168.1.1".parse().unwrap()),
                    answered: true,
                    last_rtt_ms: Some(0.412),
                    last_answer: Some(now),
                    silent_rounds: 0,
                    problem: None,
                },
                SentinelReport {
                    name: "10.0.0.9".into(),
                    address: Some("10.0.0.9".parse().unwrap()),
                    answered: false,
                    last_rtt_ms: None,
                    last_answer: None,
                    silent_rounds: 45,
                    problem: Some("no answer".into()),
                },
            ],
            pause: Some(PauseReport {
                since: now,
                until: None,
                by: "root".into(),
                reason: Some("router firmware update".into()),
            }),
            nut: NutReport {
                upsd: Some("127.0.0.1:3493".into()),
                checked: Some(now),
                error: None,
                ups: vec![
                    UpsReport {
                        name: "qnapups".into(),
                        status: Some("OB".into()),
                        clients: vec!["192.168.1.20".into()],
                        problem: None,
                    },
                    UpsReport {
                        name: "ups".into(),
                        status: None,
                        clients: vec![],
                        problem: Some("driver not connected".into()),
                    },
                ],
            },
            outlets: OutletsReport {
                hooks: OutletReport {
                    on: true,
                    target: Some("/usr/local/bin/notify power".into()),
                    delivered: 3,
                    dropped: 0,
                    last_failure: Some(FailureReport {
                        at: now - TimeDelta::seconds(60),
                        error: "event hook /usr/local/bin/notify for online failed with exit \
                                status 6: curl: (6) Could not resolve host: ntfy.sh"
                            .into(),
                    }),
                },
                sentry: OutletReport::default(),
            },
            wake: WakeReport {
                outage: Some(OutageReport {
                    since: now - TimeDelta::seconds(600),
                    drill: false,
                    on_battery: false,
                }),
                first_packet_at: None,
                waking: true,
                targets: vec![
                    WakeTargetReport {
                        name: "nas".into(),
                        nut_client: false,
                        address: Some("192.168.1.20".parse().unwrap()),
                        mac: Some("00:11:32:aa:bb:cc".into()),
                        mac_from: Some("config".into()),
                        state: "down".into(),
                        sent: 3,
                        up_after_ms: None,
                        description: "sent 3 time(s)".into(),
                    },
                    WakeTargetReport {
                        name: "192.168.1.21".into(),
                        nut_client: true,
                        address: Some("192.168.1.21".parse().unwrap()),
                        mac: None,
                        mac_from: None,
                        state: "no-mac".into(),
                        sent: 0,
                        up_after_ms: None,
                        description: "no MAC known".into(),
                    },
                ],
            },
            drill: None,
        }
    }

    #[test]
    fn before_the_first_packet_a_target_waits() {
        let now = Local::now();
        let mut r = report(now);
        r.wake.waking = false;
        r.wake.first_packet_at = Some(now + TimeDelta::seconds(90));
        r.wake.targets[0].sent = 0;
        r.wake.targets[0].description = "down".into();
        let text = render_status(&r, now);
        let at = clock(now + TimeDelta::seconds(90));
        assert!(
            text.contains(&format!(
                "Wake:      power back: waiting until {at} for the first packet\n"
            )),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "  nas (192.168.1.20) [00:11:32:aa:bb:cc, from config]: waiting until {at}\n"
            )),
            "{text}"
        );
        r.wake.outage.as_mut().unwrap().on_battery = true;
        let text = render_status(&r, now);
        assert!(text.contains(": to check once power is back\n"), "{text}");
    }

    #[test]
    fn the_wake_for_a_person() {
        let now = Local::now();
        let text = render_status(&report(now), now);
        assert!(text.contains("Wake:      waking\n"), "{text}");
        assert!(
            text.contains(
                "  nas (192.168.1.20) [00:11:32:aa:bb:cc, from config]: sent 3 time(s)\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("  192.168.1.21 [no MAC known]: no MAC known\n"),
            "{text}"
        );
    }

    #[test]
    fn status_for_a_person() {
        let now = Local::now();
        let text = render_status(&report(now), now);
        assert!(
            text.contains(
                "Hook:      on, /usr/local/bin/notify power: 3 run(s), 0 dropped; last failed "
            ) && text.contains(" (1m ago): event hook /usr/local/bin/notify for online failed"),
            "{text}"
        );
        assert!(
            text.contains("Sentry:    off (sentry.dsn is empty)\n"),
            "{text}"
        );
        assert!(text.contains("(pid 42): OB since "), "{text}");
        assert!(text.contains("(1m 30s ago)"), "{text}");
        assert!(
            text.contains("Battery:   70%, 3m 30s of runtime left"),
            "{text}"
        );
        assert!(
            text.contains("  gateway (192.168.1.1): answered, rtt 0.41 ms\n"),
            "{text}"
        );
        assert!(
            text.contains("  10.0.0.9: silent for 45 round(s): no answer; never answered\n"),
            "{text}"
        );
        assert!(
            text.contains("Pause:     PAUSED until resumed by root (since "),
            "{text}"
        );
        assert!(
            text.contains("  qnapups: OB, clients 192.168.1.20\n"),
            "{text}"
        );
        assert!(
            text.contains("  ups: -, no clients (problem: driver not connected)\n"),
            "{text}"
        );
    }

    #[test]
    fn json_round_trips() {
        let now = Local::now();
        let r = report(now);
        let text = serde_json::to_string(&r).unwrap();
        let back: StatusReport = serde_json::from_str(&text).unwrap();
        assert_eq!(back, r);
    }
}
