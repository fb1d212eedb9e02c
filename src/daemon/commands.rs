//! Pause and resume, handed over by the control socket once the caller was
//! found to be allowed.

use super::Daemon;
use crate::control::{Command, ErrorKind, Response};
use crate::core::{PauseRecord, pause};
use crate::probe::Probe;
use crate::sys::logging::{self, Level};

impl<P: Probe> Daemon<P> {
    /// Carries out a pause or resume from the control socket, unless the
    /// client stopped waiting for it (it was told it failed).
    pub(super) fn command(&mut self, command: Command) {
        let closed = match &command {
            Command::Pause { reply, .. } | Command::Resume { reply, .. } => reply.is_closed(),
        };
        if closed {
            logging::warning(
                "a pause or resume came too late: its client had given up; not carried out",
            );
            return;
        }
        let (reply, response) = match command {
            Command::Pause {
                seconds,
                until_resumed,
                reason,
                by,
                reply,
            } => (reply, self.pause(seconds, until_resumed, reason, by)),
            Command::Resume { by, reply } => (reply, self.resume(&by)),
        };
        let _ = reply.send(response);
    }

    fn pause(
        &mut self,
        seconds: Option<u64>,
        until_resumed: bool,
        reason: Option<String>,
        by: String,
    ) -> Response {
        let length = match pause::requested_length(
            seconds,
            until_resumed,
            self.config.pause.default_duration,
        ) {
            Ok(length) => length,
            Err(e) => return Response::error(ErrorKind::BadRequest, e.to_string()),
        };
        let record = PauseRecord::new(self.clock.wall(), length, by, reason);
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
            ],
        );
        self.pause = Some(record);
        self.publish();
        Response::Ok {
            message: Some(text),
            status: Box::new(self.report()),
        }
    }

    fn resume(&mut self, by: &str) -> Response {
        if self.pause.is_none() {
            return Response::Ok {
                message: Some("not paused: nothing to resume".into()),
                status: Box::new(self.report()),
            };
        }
        self.pause = None;
        self.model.set_paused(self.clock.now(), false);
        let text = format!("Resumed by {by} - watching sentinels again");
        logging::event(
            Level::Info,
            &text,
            &[("FAKEUPS_PAUSE", "resumed"), ("FAKEUPS_PAUSE_BY", by)],
        );
        self.publish();
        Response::Ok {
            message: Some(text),
            status: Box::new(self.report()),
        }
    }
}
