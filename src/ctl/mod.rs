//! fakeupsctl: one request to the daemon's control socket, its answer shown
//! to a person (or as JSON), and an exit status that says what happened.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use chrono::Local;
use clap::error::ErrorKind as ClapError;
use clap::{CommandFactory, Parser};

use crate::cli::{CtlArgs, CtlCommand};
use crate::config::Config;
use crate::control::client::{self, CallError};
use crate::control::{ErrorKind, Request, Response};
use crate::nut::setup;
use crate::paths;
use crate::sys::sysexits::{
    EX_CONFIG, EX_NOPERM, EX_PROTOCOL, EX_SOFTWARE, EX_TEMPFAIL, EX_UNAVAILABLE, EX_USAGE,
};

mod render;

use render::render_status;

/// A failure, with the exit status it gives.
#[derive(Debug)]
struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    fn new(code: u8, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
        }
    }
}

/// Entry point of the `fakeupsctl` binary: parses the command line, sends
/// the request and exits with a status that says what happened.
pub fn main() -> ExitCode {
    match CtlArgs::try_parse() {
        Ok(args) => run_args(args),
        // --help and --version print as clap formats them.
        Err(e) if matches!(e.kind(), ClapError::DisplayHelp | ClapError::DisplayVersion) => {
            let _ = e.print();
            ExitCode::SUCCESS
        }
        Err(e) if e.kind() == ClapError::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            ExitCode::from(EX_USAGE)
        }
        // Every other error is one line, as every error of fakeupsctl.
        Err(e) => {
            let text = e.to_string();
            let first = text.lines().next().unwrap_or_default();
            eprintln!("fakeupsctl: {}", first.trim_start_matches("error: "));
            ExitCode::from(EX_USAGE)
        }
    }
}

/// The same, after parsing.
fn run_args(args: CtlArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(&Failure::new(EX_SOFTWARE, format!("cannot start: {e}"))),
    };
    match runtime.block_on(run(args)) {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(f) => fail(&f),
    }
}

fn fail(f: &Failure) -> ExitCode {
    eprintln!("fakeupsctl: {}", f.message.replace('\n', " "));
    ExitCode::from(f.code)
}

async fn run(args: CtlArgs) -> Result<String, Failure> {
    let (request, json) = match &args.command {
        CtlCommand::NutConfig { config } => return nut_config(config),
        CtlCommand::Completions { shell } => return Ok(completions(*shell)),
        CtlCommand::Status { json } => (Request::Status {}, *json),
        CtlCommand::Resume => (Request::Resume {}, false),
        CtlCommand::Wake { target } => (
            Request::Wake {
                target: target.clone(),
            },
            false,
        ),
        CtlCommand::Drill(d) => (
            Request::Drill {
                seconds: d.duration.map(|d| d.as_secs().max(1)),
                stop: d.stop,
            },
            false,
        ),
        CtlCommand::Pause(p) => (
            Request::Pause {
                seconds: p.duration.map(|d| d.as_secs().max(1)),
                until_resumed: p.until_resumed,
                reason: p.reason.clone(),
            },
            false,
        ),
    };
    let response = call(&args.socket, args.timeout, &request).await?;
    match response {
        Response::Error { kind, message } => Err(Failure::new(
            match kind {
                ErrorKind::PermissionDenied => EX_NOPERM,
                ErrorKind::BadRequest => EX_USAGE,
                ErrorKind::UnsupportedVersion => EX_PROTOCOL,
                ErrorKind::Failed => EX_TEMPFAIL,
            },
            message,
        )),
        Response::Ok { message, status } => Ok(if json {
            let mut text = serde_json::to_string_pretty(&status)
                .map_err(|e| Failure::new(EX_SOFTWARE, e.to_string()))?;
            text.push('\n');
            text
        } else if let Some(m) = message {
            format!("{m}\n")
        } else {
            render_status(&status, Local::now())
        }),
    }
}

/// The NUT snippets with the data file of the daemon's configuration and the
/// generated password (when readable).
fn nut_config(config: &Path) -> Result<String, Failure> {
    let data_file = if config.exists() {
        Config::load(config)
            .map_err(|e| Failure::new(EX_CONFIG, e.to_string()))?
            .nut
            .data_file
    } else {
        Config::default().nut.data_file
    };
    let password = setup::Password::read(Path::new(paths::NUT_PASSWORD));
    Ok(setup::render(&data_file, &password))
}

fn completions(shell: clap_complete::Shell) -> String {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut CtlArgs::command(), "fakeupsctl", &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// Sends `request` and reads the answer, all within `timeout`; a failure
/// carries the exit status it gives.
async fn call(socket: &Path, timeout: Duration, request: &Request) -> Result<Response, Failure> {
    client::call(socket, timeout, request).await.map_err(|e| {
        let code = match &e {
            CallError::PermissionDenied(_) => EX_NOPERM,
            CallError::RequestTooLarge(_) => EX_USAGE,
            CallError::BadAnswer { .. } => EX_SOFTWARE,
            CallError::Version(_) => EX_PROTOCOL,
            CallError::NoSocket(_)
            | CallError::NothingListens(_)
            | CallError::Connect { .. }
            | CallError::Send { .. }
            | CallError::NoAnswer { .. }
            | CallError::Timeout { .. } => EX_UNAVAILABLE,
        };
        Failure::new(code, e.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_missing_socket_means_not_running() {
        let f = call(
            Path::new("/nonexistent/control.sock"),
            Duration::from_secs(1),
            &Request::Status {},
        )
        .await
        .unwrap_err();
        assert_eq!(f.code, EX_UNAVAILABLE);
        assert_eq!(
            f.message,
            "fakeups is not running (no socket at /nonexistent/control.sock)"
        );
    }

    #[tokio::test]
    async fn a_request_larger_than_the_daemon_reads_is_not_sent() {
        let request = Request::Pause {
            seconds: None,
            until_resumed: true,
            reason: Some("x".repeat(9000)),
        };
        let f = call(
            Path::new("/nonexistent/control.sock"),
            Duration::from_secs(1),
            &request,
        )
        .await
        .unwrap_err();
        assert_eq!(f.code, EX_USAGE);
        assert_eq!(
            f.message,
            "the request is too large to send: a frame of 9073 bytes exceeds the 8192-byte \
             limit (a shorter reason?)"
        );
    }

    #[tokio::test]
    async fn a_silent_daemon_times_out() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.sock");
        let _listener = tokio::net::UnixListener::bind(&path).unwrap();
        let f = call(&path, Duration::from_millis(200), &Request::Status {})
            .await
            .unwrap_err();
        assert_eq!(f.code, EX_UNAVAILABLE);
        assert!(
            f.message.starts_with("fakeups did not answer within 200ms"),
            "{}",
            f.message
        );
    }
}
