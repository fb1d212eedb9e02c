//! Pause and resume, handed over by the control socket once the caller was
//! found to be allowed. Each takes effect at once; the reply waits until it
//! is saved on disk (it must outlive a reboot), or says that the disk has
//! not answered yet.

use std::time::Duration;

use tokio::sync::oneshot;

use super::Daemon;
use crate::control::{Command, ErrorKind, Response};
use crate::core::{PauseRecord, pause};
use crate::events::EventKind;
use crate::probe::Probe;
use crate::sys::logging::{self, Level};

/// How long a reply waits for the save: less than the control socket's
/// limit for a command (4 s), so that the client hears how it went.
const SAVE_WAIT: Duration = Duration::from_secs(3);

impl<P: Probe> Daemon<P> {
    /// Carries out a pause or resume from the control socket, unless the
    /// client stopped waiting for it (it was told it failed).
    pub(super) fn command(&mut self, command: Command) {
        if command.reply().is_closed() {
            logging::warning(
                "a command (pause, resume, wake, drill) came too late: its client had given up; \
                 not carried out",
            );
            return;
        }
        let (reply, response) = match command {
            Command::Wake { target, by, reply } => {
                self.wake_now(target, by, reply);
                return;
            }
            Command::Drill {
                seconds,
                stop,
                by,
                reply,
            } => {
                let response = match self.drill_command(seconds, stop, by) {
                    Ok(text) => self.publish_for_reply(text),
                    Err(response) => {
                        let _ = reply.send(response);
                        return;
                    }
                };
                (reply, Ok(response))
            }
            Command::Pause {
                seconds,
                until_resumed,
                reason,
                by,
                reply,
            } => (reply, self.pause(seconds, until_resumed, reason, by)),
            Command::Resume { by, reply } => (reply, self.resume(&by)),
        };
        let (response, saved) = match response {
            Ok(done) => done,
            Err(response) => {
                let _ = reply.send(response);
                return;
            }
        };
        let path = self.out.store.path().display().to_string();
        tokio::spawn(async move {
            let response = match tokio::time::timeout(SAVE_WAIT, saved).await {
                Ok(Ok(Ok(()))) => response,
                Ok(Ok(Err(e))) => with_note(
                    response,
                    &format!("; it holds until fakeups stops, but could not be saved: {e}"),
                ),
                Ok(Err(_)) => with_note(
                    response,
                    &format!("; it holds until fakeups stops, but was not saved to {path}"),
                ),
                Err(_) => with_note(
                    response,
                    &format!(
                        "; it holds now, but is not on disk yet: saving {path} has taken \
                         more than {} s (a stalled disk?); it is saved when the disk answers",
                        SAVE_WAIT.as_secs()
                    ),
                ),
            };
            let _ = reply.send(response);
        });
    }

    fn pause(
        &mut self,
        seconds: Option<u64>,
        until_resumed: bool,
        reason: Option<String>,
        by: String,
    ) -> Result<(Response, oneshot::Receiver<Result<(), String>>), Response> {
        let length = match pause::requested_length(
            seconds,
            until_resumed,
            self.config.pause.default_duration,
        ) {
            Ok(length) => length,
            Err(e) => return Err(Response::error(ErrorKind::BadRequest, e.to_string())),
        };
        if let Some(d) = &self.drill {
            return Err(Response::error(
                ErrorKind::Failed,
                format!(
                    "a drill by {} is under way: `fakeupsctl drill --stop` ends it first",
                    d.by
                ),
            ));
        }
        let record = PauseRecord::new(&self.clock.moment(), length, by, reason);
        let before = self.model.published().status.as_nut();
        if let Some(t) = self.model.set_paused(self.clock.now(), true) {
            self.on_transition(t);
        }
        let text = format!("Paused {}", record.describe());
        let until_text = record.until.map(|u| u.to_rfc3339()).unwrap_or_default();
        logging::event(
            Level::Notice,
            &text,
            &[
                ("FAKEUPS_PAUSE", "paused"),
                ("FAKEUPS_PAUSE_BY", &record.by),
                ("FAKEUPS_PAUSE_UNTIL", &until_text),
                ("FAKEUPS_EVENT", "paused"),
            ],
        );
        self.pause = Some(record);
        self.emit(EventKind::Paused, &text, before);
        Ok(self.publish_for_reply(text))
    }

    fn resume(
        &mut self,
        by: &str,
    ) -> Result<(Response, oneshot::Receiver<Result<(), String>>), Response> {
        if self.pause.is_none() {
            return Err(Response::Ok {
                message: Some("not paused: nothing to resume".into()),
                status: Box::new(self.report()),
            });
        }
        self.pause = None;
        let before = self.model.published().status.as_nut();
        self.model.set_paused(self.clock.now(), false);
        let text = format!("Resumed by {by} - watching sentinels again");
        logging::event(
            Level::Info,
            &text,
            &[
                ("FAKEUPS_PAUSE", "resumed"),
                ("FAKEUPS_PAUSE_BY", by),
                ("FAKEUPS_EVENT", "resumed"),
            ],
        );
        self.emit(EventKind::Resumed, &text, before);
        Ok(self.publish_for_reply(text))
    }

    /// Publishes the change with the state saved, and the reply that waits
    /// for that save.
    fn publish_for_reply(
        &mut self,
        text: String,
    ) -> (Response, oneshot::Receiver<Result<(), String>>) {
        let (ack, saved) = oneshot::channel();
        self.publish_and_save(Some(ack));
        let response = Response::Ok {
            message: Some(text),
            status: Box::new(self.report()),
        };
        (response, saved)
    }
}

/// `response` with `note` added to its message.
fn with_note(response: Response, note: &str) -> Response {
    match response {
        Response::Ok { message, status } => Response::Ok {
            message: Some(format!("{}{note}", message.unwrap_or_default())),
            status,
        },
        other => other,
    }
}
