//! What the daemon shows: the one-line STATUS= summary and the full report
//! for `fakeupsctl status`.

use std::time::Duration;

use super::Daemon;
use crate::control::StatusReport;
use crate::control::report::{
    BatteryReport, DaemonInfo, DetectionReport, NutReport, PauseReport, UpsReport,
};
use crate::format::{fmt_duration, fmt_secs};
use crate::nut::client::DRIVER_NOT_CONNECTED;
use crate::probe::Probe;

impl<P: Probe> Daemon<P> {
    /// Everything `fakeupsctl status` shows.
    pub(super) fn report(&self) -> StatusReport {
        self.report_with(self.status_line())
    }

    /// The same, with the status line already rendered.
    pub(super) fn report_with(&self, summary: String) -> StatusReport {
        let p = self.model.published();
        let now = self.clock.now();
        let d = &self.config.detection;
        let ms = |x: Duration| u64::try_from(x.as_millis()).unwrap_or(u64::MAX);
        StatusReport {
            format: 1,
            daemon: DaemonInfo {
                version: env!("CARGO_PKG_VERSION").to_string(),
                pid: self.control.pid,
                started: self.control.started,
                config: self.config_path.clone(),
                data_file: self.config.nut.data_file.clone(),
            },
            status: p.status.as_nut().to_string(),
            status_since: self.status_since,
            summary,
            battery: BatteryReport {
                charge: p.charge,
                runtime: p.runtime,
                charge_low: p.charge_low,
                runtime_low: p.runtime_low,
            },
            detection: DetectionReport {
                quorum: d.quorum.to_string(),
                silent: self.sentinels.silent_count(),
                total: self.sentinels.len(),
                interval_ms: ms(d.interval),
                on_battery_after_ms: ms(d.on_battery_after),
                online_after_ms: ms(d.online_after),
                lost_for_ms: self.model.lost_for(now).map(ms),
                back_for_ms: self.model.back_for(now).map(ms),
            },
            sentinels: self.sentinels.reports().to_vec(),
            pause: self.pause.as_ref().map(|p| PauseReport {
                since: p.since,
                until: p.until,
                by: p.by.clone(),
                reason: p.reason.clone(),
            }),
            nut: self.nut_report(),
            outlets: self.events.report(),
            wake: self.wake_report(),
            drill: self.drill_report(),
        }
    }

    /// What upsd serves for each name, as last read back.
    fn nut_report(&self) -> NutReport {
        let upsd = &self.config.nut.upsd;
        if upsd.is_empty() {
            return NutReport::default();
        }
        let snap = self.nut.last.as_ref();
        NutReport {
            upsd: Some(upsd.clone()),
            checked: snap.map(|s| s.checked),
            error: snap.and_then(|s| s.error.clone()),
            ups: self
                .config
                .nut
                .ups
                .iter()
                .map(|name| {
                    let state = snap.and_then(|s| s.ups.iter().find(|u| &u.name == name));
                    UpsReport {
                        name: name.clone(),
                        status: state.and_then(|u| u.status.clone().ok()),
                        clients: state.map(|u| u.clients.clone()).unwrap_or_default(),
                        problem: self.nut.health.problem(name).map(|p| {
                            match (&self.nut.cause, p == DRIVER_NOT_CONNECTED) {
                                (Some(cause), true) => format!("{p}: {cause}"),
                                _ => p.to_string(),
                            }
                        }),
                    }
                })
                .collect(),
        }
    }

    /// The one-line STATUS= summary.
    pub(super) fn status_line(&self) -> String {
        let p = self.model.published();
        let total = self.sentinels.len();
        let answering = total - self.sentinels.silent_count();
        let battery = format!("battery {}% ({} left)", p.charge, fmt_secs(p.runtime));
        let mut line = if !self.out.ready && self.out.data_error.is_none() {
            format!("starting: first round under way; {total} sentinel(s)")
        } else if let Some(drill) = &self.drill {
            format!(
                "DRILL by {} until {}: {}; {battery}",
                drill.by,
                drill.until.format(crate::format::TIME_FORMAT),
                p.status
            )
        } else if let Some(pause) = &self.pause {
            format!(
                "PAUSED {}; holding OL; {answering}/{total} sentinels answering",
                pause.describe()
            )
        } else {
            let now = self.clock.now();
            let mut s = format!("{}: {answering}/{total} sentinels answering", p.status);
            if let Some(d) = self.model.lost_for(now) {
                s.push_str(&format!(
                    ", quorum {} silent for {}, OB after {}",
                    self.config.detection.quorum,
                    fmt_secs(d.as_secs()),
                    fmt_duration(self.config.detection.on_battery_after)
                ));
            } else if let Some(d) = self.model.back_for(now) {
                s.push_str(&format!(
                    " for {}, OL after {}",
                    fmt_secs(d.as_secs()),
                    fmt_duration(self.config.detection.online_after)
                ));
            }
            format!("{s}; {battery}")
        };
        if let Some(e) = &self.out.data_error {
            line.push_str(&format!("; {e}"));
        }
        if let Some(e) = &self.out.state_error {
            line.push_str(&format!("; {e}"));
        }
        if let Some(nut) = self.nut.health.summary() {
            line.push_str(&format!("; {nut}"));
        }
        match self.wake.wake.waking() {
            Some(n) if n > 0 => line.push_str(&format!(
                "; waking {n} machine{}",
                if n == 1 { "" } else { "s" }
            )),
            _ => {}
        }
        line
    }
}
