//! The sd_notify side of the service: READY=1, STATUS=, WATCHDOG=1,
//! RELOADING=1 and STOPPING=1. Without NOTIFY_SOCKET (run by hand) every
//! call does nothing.

use std::time::Duration;

use sd_notify::NotifyState;

use super::logging;

#[derive(Debug, Default)]
pub struct Notifier {
    last_status: String,
    watchdogs: u64,
}

impl Notifier {
    pub fn new() -> Notifier {
        Notifier::default()
    }

    /// How often the main loop must send WATCHDOG=1: half of WatchdogSec,
    /// or None when the watchdog is off.
    pub fn watchdog_period() -> Option<Duration> {
        sd_notify::watchdog_enabled()
            .filter(|d| !d.is_zero())
            .map(|d| d / 2)
    }

    /// The last STATUS= sent.
    #[cfg(test)]
    pub fn last_status(&self) -> &str {
        &self.last_status
    }

    pub fn ready(&mut self, status: &str) {
        self.last_status = status.to_string();
        send(&[NotifyState::Ready, NotifyState::Status(status)]);
    }

    /// Sends STATUS= when it differs from the last one sent.
    pub fn status(&mut self, status: &str) {
        if self.last_status != status {
            self.last_status = status.to_string();
            send(&[NotifyState::Status(status)]);
        }
    }

    pub fn watchdog(&mut self) {
        self.watchdogs += 1;
        send(&[NotifyState::Watchdog]);
    }

    /// How many WATCHDOG=1 were sent.
    #[cfg(test)]
    pub fn watchdogs(&self) -> u64 {
        self.watchdogs
    }

    /// RELOADING=1 with the MONOTONIC_USEC that systemd 253 and later want.
    pub fn reloading(&self) {
        match NotifyState::monotonic_usec_now() {
            Ok(now) => send(&[
                NotifyState::Reloading,
                now,
                NotifyState::Status("reloading the configuration"),
            ]),
            Err(_) => send(&[NotifyState::Reloading]),
        }
    }

    pub fn stopping(&self) {
        send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
    }
}

fn send(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        logging::debug(&format!("sd_notify failed: {e}"));
    }
}
