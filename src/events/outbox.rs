//! The transport of Sentry's envelopes: a queue to a thread of its own,
//! which posts each to the DSN's envelope endpoint with ureq (rustls and
//! ring: no C to cross-build for ARM). The daemon's loop only queues.
//!
//! Its own rather than the sentry crate's ureq transport, because fakeups
//! must know when sending fails: the failure is logged once (not every
//! event) and shown by `fakeupsctl status`, and the recovery is logged with
//! the count of what was lost.

use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use chrono::Local;
use sentry::types::Dsn;
use sentry::{Envelope, Transport};

use super::{SharedHealth, update};
use crate::sys::logging;

/// Envelopes waiting to be sent; more are dropped (and counted).
const QUEUE: usize = 30;
/// How long one post may take, connection and DNS included.
const POST_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Envelopes queued or being sent: what a flush waits for.
#[derive(Default)]
struct Pending {
    count: Mutex<usize>,
    done: Condvar,
}

impl Pending {
    fn add(&self, n: isize) {
        let mut count = self.count.lock().unwrap_or_else(|p| p.into_inner());
        *count = count.saturating_add_signed(n);
        if *count == 0 {
            self.done.notify_all();
        }
    }

    /// Waits until nothing is pending, at most `timeout`.
    fn wait_empty(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut count = self.count.lock().unwrap_or_else(|p| p.into_inner());
        while *count > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            count = match self.done.wait_timeout(count, left) {
                Ok((c, _)) => c,
                Err(p) => p.into_inner().0,
            };
        }
        true
    }
}

/// The sentry crate's view of the transport.
pub struct Outbox {
    queue: SyncSender<Envelope>,
    pending: Arc<Pending>,
    health: SharedHealth,
}

impl Outbox {
    /// The thread that sends to `dsn`; an error when it cannot start.
    pub fn start(dsn: &Dsn, user_agent: &str, health: SharedHealth) -> std::io::Result<Outbox> {
        let (queue, envelopes) = mpsc::sync_channel(QUEUE);
        let pending = Arc::new(Pending::default());
        let sender = Sender {
            url: dsn.envelope_api_url().to_string(),
            auth: dsn.to_auth(Some(user_agent)).to_string(),
            host: dsn.host().to_string(),
            user_agent: user_agent.to_string(),
            pending: pending.clone(),
            health: health.clone(),
        };
        thread::Builder::new()
            .name("fakeups-sentry".into())
            .spawn(move || sender.run(envelopes))?;
        Ok(Outbox {
            queue,
            pending,
            health,
        })
    }
}

impl Transport for Outbox {
    /// Queues `envelope`; never waits. A full queue drops it (counted; the
    /// sender thread is then busy with an unreachable host and says so).
    fn send_envelope(&self, envelope: Envelope) {
        self.pending.add(1);
        match self.queue.try_send(envelope) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.pending.add(-1);
                update(&self.health, |h| h.dropped += 1);
            }
        }
    }

    fn flush(&self, timeout: Duration) -> bool {
        self.pending.wait_empty(timeout)
    }

    fn shutdown(&self, timeout: Duration) -> bool {
        self.flush(timeout)
    }
}

/// The sending thread.
struct Sender {
    url: String,
    auth: String,
    host: String,
    user_agent: String,
    pending: Arc<Pending>,
    health: SharedHealth,
}

impl Sender {
    fn run(self, envelopes: Receiver<Envelope>) {
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(POST_TIMEOUT))
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .user_agent(self.user_agent.as_str())
            .http_status_as_error(true)
            .build();
        let agent = ureq::Agent::new_with_config(config);
        // Since when sends fail, and how many were lost since.
        let mut failing: Option<u64> = None;
        for envelope in envelopes {
            let result = self.post(&agent, &envelope);
            match result {
                Ok(()) => {
                    update(&self.health, |h| h.delivered += 1);
                    if let Some(lost) = failing.take() {
                        logging::info(&format!(
                            "Sentry at {} answers again; {lost} event(s) were lost while it \
                             did not",
                            self.host
                        ));
                    }
                }
                Err(e) => {
                    let error = format!("cannot send to Sentry at {}: {e}", self.host);
                    update(&self.health, |h| {
                        h.dropped += 1;
                        h.last_failure = Some((Local::now(), error.clone()));
                    });
                    match &mut failing {
                        Some(lost) => *lost += 1,
                        None => {
                            failing = Some(1);
                            // Once, not at every event: WARNING, so that it
                            // is no Sentry event itself.
                            logging::warning(&format!(
                                "{error}; its events are dropped until it answers (each new \
                                 one tries again)"
                            ));
                        }
                    }
                }
            }
            self.pending.add(-1);
        }
    }

    fn post(&self, agent: &ureq::Agent, envelope: &Envelope) -> Result<(), String> {
        let mut body = Vec::with_capacity(2048);
        envelope
            .to_writer(&mut body)
            .map_err(|e| format!("cannot serialize the event: {e}"))?;
        let mut response = agent
            .post(&self.url)
            .header("X-Sentry-Auth", &self.auth)
            .content_type("application/x-sentry-envelope")
            .send(&body[..])
            .map_err(|e| e.to_string())?;
        // Read to the end, so the connection can be kept.
        let _ = response.body_mut().read_to_vec();
        Ok(())
    }
}
