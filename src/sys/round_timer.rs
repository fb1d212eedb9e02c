//! The tick that starts each round: a kernel timerfd on CLOCK_MONOTONIC,
//! periodic, so the process wakes once per round. tokio's hierarchical
//! timer wheel wakes twice for a deadline a second away (at the slot
//! boundary before it, then at it) and once more every 4.096 s to cascade;
//! on a Raspberry Pi that idles between rounds, those wake-ups were about a
//! seventh of fakeups' CPU time (measured by the benchmark in tests/bench).
//! Where a timerfd cannot be had, tokio's interval is used.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::time::{Duration, Instant};

use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use tokio::io::unix::AsyncFd;
use tokio::time::{Interval, MissedTickBehavior};

/// A timerfd that tokio can wait on.
struct TickFd(TimerFd);

impl AsFd for TickFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

impl AsRawFd for TickFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

enum Source {
    TimerFd(AsyncFd<TickFd>),
    Tokio(Interval),
}

/// Ticks every `interval`, the first at once. Missed ticks are skipped, not
/// caught up.
pub struct RoundTimer {
    source: Source,
    next: Instant,
    interval: Duration,
}

impl RoundTimer {
    /// Must run inside the tokio runtime.
    pub fn new(interval: Duration) -> RoundTimer {
        let source = match timerfd(interval) {
            Ok(fd) => Source::TimerFd(fd),
            Err(_) => {
                let mut t = tokio::time::interval(interval);
                t.set_missed_tick_behavior(MissedTickBehavior::Delay);
                Source::Tokio(t)
            }
        };
        RoundTimer {
            source,
            next: Instant::now(),
            interval,
        }
    }

    /// Waits for the next tick and returns the instant it was due.
    pub async fn tick(&mut self) -> Instant {
        let fd = match &mut self.source {
            Source::Tokio(t) => return t.tick().await.into_std(),
            Source::TimerFd(fd) => fd,
        };
        loop {
            let mut ready = match fd.readable().await {
                Ok(ready) => ready,
                Err(_) => {
                    // Not expected of a timerfd; keep the rounds going.
                    tokio::time::sleep(self.interval).await;
                    self.next = Instant::now() + self.interval;
                    return Instant::now();
                }
            };
            let mut count = [0u8; 8];
            match nix::unistd::read(ready.get_inner(), &mut count) {
                Ok(8) => {
                    // The number of expirations since the last read: more
                    // than one when rounds overran; those are skipped.
                    let expirations = u64::from_ne_bytes(count).max(1);
                    let skipped = u32::try_from(expirations - 1).unwrap_or(u32::MAX);
                    let due = self.next + self.interval * skipped;
                    self.next = due + self.interval;
                    return due;
                }
                _ => ready.clear_ready(),
            }
        }
    }

    /// Whether the kernel timer is in use.
    #[cfg(test)]
    pub fn uses_timerfd(&self) -> bool {
        matches!(self.source, Source::TimerFd(_))
    }
}

fn timerfd(interval: Duration) -> std::io::Result<AsyncFd<TickFd>> {
    let fd = TimerFd::new(
        ClockId::CLOCK_MONOTONIC,
        TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
    )?;
    // The first expiry at once (1 ns: zero would disarm it), then periodic.
    fd.set(
        Expiration::IntervalDelayed(
            TimeSpec::from_duration(Duration::from_nanos(1)),
            TimeSpec::from_duration(interval),
        ),
        TimerSetTimeFlags::empty(),
    )?;
    // SAFETY: TickFd owns the timerfd (an OwnedFd inside TimerFd): it stays
    // open and is the same descriptor for as long as the AsyncFd holds it,
    // and nothing else closes or replaces it.
    unsafe { AsyncFd::register_with_interest(TickFd(fd), tokio::io::Interest::READABLE) }
        .map_err(std::io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ticks_at_once_then_every_interval_and_skips_missed_ticks() {
        let interval = Duration::from_millis(50);
        let mut t = RoundTimer::new(interval);
        assert!(t.uses_timerfd());
        let start = Instant::now();
        let first = t.tick().await;
        assert!(first.saturating_duration_since(start) < Duration::from_millis(20));
        let second = t.tick().await;
        assert_eq!(second - first, interval);
        assert!(Instant::now() >= second);
        // A round that overruns three intervals: the missed ticks are skipped.
        std::thread::sleep(interval * 3 + Duration::from_millis(10));
        let late = t.tick().await;
        assert_eq!(late - second, interval * 3);
        let next = t.tick().await;
        assert_eq!(next - late, interval);
    }
}
