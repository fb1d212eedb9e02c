//! fakeupsctl: one request to the daemon's control socket, its answer shown
//! to a person (or as JSON), and an exit status that says what happened.

use std::fmt::Write as _;
use std::io;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use chrono::{DateTime, Local};
use tokio::net::UnixStream;

use crate::cli::{CtlArgs, CtlCommand};
use clap::CommandFactory;

use crate::config::{Config, fmt_duration, fmt_secs};
use crate::control::{
    self, ErrorKind, PROTOCOL_VERSION, Request, RequestFrame, Response, ResponseFrame, StatusReport,
};
use crate::nut_setup;
use crate::sysexits::{
    EX_CONFIG, EX_NOPERM, EX_PROTOCOL, EX_SOFTWARE, EX_TEMPFAIL, EX_UNAVAILABLE, EX_USAGE,
};

/// A failure, with the exit status it gives.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    fn new(code: u8, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
        }
    }
}

/// Entry point of the `fakeupsctl` binary, after parsing.
pub fn main(args: CtlArgs) -> ExitCode {
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
    let password = nut_setup::Password::read(Path::new(nut_setup::PASSWORD_FILE));
    Ok(nut_setup::render(&data_file, &password))
}

fn completions(shell: clap_complete::Shell) -> String {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut CtlArgs::command(), "fakeupsctl", &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// Sends `request` and reads the answer, all within `timeout`.
pub async fn call(
    socket: &Path,
    timeout: Duration,
    request: &Request,
) -> Result<Response, Failure> {
    let exchange = async {
        let mut stream = UnixStream::connect(socket)
            .await
            .map_err(|e| connect_failure(socket, &e))?;
        let frame = RequestFrame {
            version: PROTOCOL_VERSION,
            request: request.clone(),
        };
        control::write_frame(&mut stream, &frame)
            .await
            .map_err(|e| {
                Failure::new(
                    EX_UNAVAILABLE,
                    format!("cannot send to {}: {e}", socket.display()),
                )
            })?;
        let body = control::read_frame(&mut stream).await.map_err(|e| {
            Failure::new(
                EX_UNAVAILABLE,
                format!("no answer from fakeups on {}: {e}", socket.display()),
            )
        })?;
        let frame: ResponseFrame = serde_json::from_slice(&body).map_err(|e| {
            Failure::new(
                EX_SOFTWARE,
                format!(
                    "unexpected answer from fakeups on {}: {e}",
                    socket.display()
                ),
            )
        })?;
        if frame.version != PROTOCOL_VERSION {
            return Err(Failure::new(
                EX_PROTOCOL,
                format!(
                    "fakeups answered with protocol version {}; this fakeupsctl speaks {PROTOCOL_VERSION}",
                    frame.version
                ),
            ));
        }
        Ok(frame.response)
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .unwrap_or_else(|_| {
            Err(Failure::new(
                EX_UNAVAILABLE,
                format!(
                    "fakeups did not answer within {} on {}",
                    fmt_duration(timeout),
                    socket.display()
                ),
            ))
        })
}

fn connect_failure(socket: &Path, e: &io::Error) -> Failure {
    let path = socket.display();
    match e.kind() {
        io::ErrorKind::NotFound => Failure::new(
            EX_UNAVAILABLE,
            format!("fakeups is not running (no socket at {path})"),
        ),
        io::ErrorKind::ConnectionRefused => Failure::new(
            EX_UNAVAILABLE,
            format!("fakeups is not running (nothing listens on {path})"),
        ),
        io::ErrorKind::PermissionDenied => Failure::new(
            EX_NOPERM,
            format!("cannot connect to {path}: permission denied"),
        ),
        _ => Failure::new(EX_UNAVAILABLE, format!("cannot connect to {path}: {e}")),
    }
}

fn ago(then: DateTime<Local>, now: DateTime<Local>) -> String {
    let secs = (now - then).num_seconds().max(0) as u64;
    format!("{} ago", fmt_secs(secs))
}

fn clock(t: DateTime<Local>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// The status for a person.
pub fn render_status(r: &StatusReport, now: DateTime<Local>) -> String {
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
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::{
        BatteryReport, DaemonInfo, DetectionReport, NutReport, PauseReport, UpsReport,
    };
    use crate::probe::SentinelReport;
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
        }
    }

    #[test]
    fn status_for_a_person() {
        let now = Local::now();
        let text = render_status(&report(now), now);
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
