//! What the decision produces: the status NUT serves, the values written
//! with it, and the changes of status with their causes.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What `ups.status` says, in the seed format every NUT client reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    #[serde(rename = "OL")]
    Online,
    #[serde(rename = "OB")]
    OnBattery,
    #[serde(rename = "OB LB")]
    LowBattery,
}

impl Status {
    pub fn as_nut(self) -> &'static str {
        match self {
            Status::Online => "OL",
            Status::OnBattery => "OB",
            Status::LowBattery => "OB LB",
        }
    }

    pub fn on_battery(self) -> bool {
        self != Status::Online
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_nut())
    }
}

/// A change of the published status, and what caused it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    pub from: Status,
    pub to: Status,
    pub cause: Cause,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// The quorum of silent sentinels held for `on-battery-after`.
    PowerLost,
    /// The runtime left reached `low-runtime`.
    BatteryLow,
    /// The quorum stayed unmet for `online-after`.
    PowerRestored,
    /// A pause forced `OL`.
    Paused,
    /// `fakeupsctl drill` started a simulated outage.
    DrillStarted,
    /// The drill ended (its time was up, or it was stopped).
    DrillEnded,
}

/// The values written for NUT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    pub status: Status,
    /// battery.charge, percent.
    pub charge: u8,
    /// battery.runtime, seconds left.
    pub runtime: u64,
    /// battery.charge.low, percent.
    pub charge_low: u8,
    /// battery.runtime.low, seconds.
    pub runtime_low: u64,
}
