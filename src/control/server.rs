//! The daemon's end of the control socket: binding it safely, one task per
//! connection, the peer's credentials checked for every privileged request.
//!
//! Every connection is accepted at once, whoever holds the others, and
//! counted for its user (`limits`): a user who holds too many has its new
//! ones refused with a one-line answer, and each connection has a second to
//! send its whole request (fakeupsctl sends it as soon as it is connected),
//! so that no local user can keep root's pause or another user's status
//! waiting.

use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use nix::sys::stat::{Mode, umask};
use tokio::io::AsyncWriteExt as _;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::limits::{Caps, Limits, Trouble};
use super::peer::{CONTROL_GROUP, control_gid, credentials};
use super::protocol::{
    self, EncodeError, ErrorKind, FrameError, MAX_REQUEST, MAX_RESPONSE, PROTOCOL_VERSION, Request,
    Response, ResponseFrame, V1_MAX_FRAME,
};
use super::report::StatusReport;
use crate::format::fmt_duration;
use crate::sys::atomic_file::create_parent_dir;
use crate::sys::logging;
/// The message of a refused pause or resume.
pub const PERMISSION_DENIED: &str =
    "permission denied: pausing needs root or membership of group fakeups";
/// The message of a refused wake.
pub const WAKE_DENIED: &str =
    "permission denied: waking a machine needs root or membership of group fakeups";
/// The message of a refused drill.
pub const DRILL_DENIED: &str = "permission denied: a drill needs root";
/// How long a client has to send its whole request, from the moment it is
/// accepted. A slow one (a byte now and then) is dropped like an idle one.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a client has to take its answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(2);
/// How long the main loop has to carry out a command: less than fakeupsctl's
/// default timeout (5 s), so the client hears how it ended.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(4);

/// A privileged request handed to the main loop.
#[derive(Debug)]
pub enum Command {
    Pause {
        seconds: Option<u64>,
        until_resumed: bool,
        reason: Option<String>,
        by: String,
        reply: oneshot::Sender<Response>,
    },
    Resume {
        by: String,
        reply: oneshot::Sender<Response>,
    },
    Wake {
        target: String,
        by: String,
        reply: oneshot::Sender<Response>,
    },
    Drill {
        seconds: Option<u64>,
        stop: bool,
        by: String,
        reply: oneshot::Sender<Response>,
    },
}

impl Command {
    /// Where the answer goes.
    pub fn reply(&self) -> &oneshot::Sender<Response> {
        match self {
            Command::Pause { reply, .. }
            | Command::Resume { reply, .. }
            | Command::Wake { reply, .. }
            | Command::Drill { reply, .. } => reply,
        }
    }
}

/// The listening socket and the task that serves it.
pub struct ControlServer {
    path: PathBuf,
    inode: u64,
    task: JoinHandle<()>,
}

impl ControlServer {
    /// Binds `path` with mode 0666 (through the umask, so there is no moment
    /// with another mode) and starts serving. A stale socket left by a crash
    /// is replaced; a live one, or a path that is not a socket, is refused.
    pub fn bind(
        path: &Path,
        commands: mpsc::Sender<Command>,
        reports: watch::Receiver<Arc<StatusReport>>,
    ) -> Result<ControlServer, BindError> {
        prepare_path(path)?;
        let old = umask(Mode::from_bits_truncate(0o111));
        let bound = UnixListener::bind(path);
        umask(old);
        let listener = bound.map_err(|source| BindError::Listen {
            path: path.to_path_buf(),
            source,
        })?;
        let inode = fs::symlink_metadata(path).map(|m| m.ino()).unwrap_or(0);
        let caps = Caps::for_open_files(open_files_limit());
        logging::debug(&format!(
            "control socket: at most {} connections at once from one user, {} from all users \
             but root, {} from root",
            caps.per_user, caps.all_users, caps.root
        ));
        let shared = Arc::new(Shared {
            commands,
            reports,
            limits: Mutex::new(Limits::new(caps)),
        });
        let task = tokio::spawn(serve(listener, shared));
        Ok(ControlServer {
            path: path.to_path_buf(),
            inode,
            task,
        })
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.task.abort();
        // Remove the socket only if it is still the one bound here.
        if fs::symlink_metadata(&self.path).is_ok_and(|m| m.ino() == self.inode) {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Why the control socket could not be bound.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("cannot create {dir}: {source}")]
    CreateDir { dir: PathBuf, source: io::Error },
    #[error("cannot inspect {path}: {source}")]
    Inspect { path: PathBuf, source: io::Error },
    #[error("refusing to remove {path}: it is not a socket")]
    NotASocket { path: PathBuf },
    #[error("another fakeups is already listening on {path}")]
    InUse { path: PathBuf },
    #[error("cannot remove the stale socket {path}: {source}")]
    RemoveStale { path: PathBuf, source: io::Error },
    #[error("cannot check {path}: {source}")]
    Check { path: PathBuf, source: io::Error },
    #[error("cannot listen on {path}: {source}")]
    Listen { path: PathBuf, source: io::Error },
}

fn prepare_path(path: &Path) -> Result<(), BindError> {
    let at = || path.to_path_buf();
    create_parent_dir(path).map_err(|source| BindError::CreateDir {
        dir: path.parent().unwrap_or(path).to_path_buf(),
        source,
    })?;
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(BindError::Inspect { path: at(), source }),
        Ok(meta) if !meta.file_type().is_socket() => Err(BindError::NotASocket { path: at() }),
        Ok(_) => match std::os::unix::net::UnixStream::connect(path) {
            Ok(_) => Err(BindError::InUse { path: at() }),
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                logging::info(&format!("replacing the stale socket {}", path.display()));
                fs::remove_file(path)
                    .map_err(|source| BindError::RemoveStale { path: at(), source })
            }
            Err(source) => Err(BindError::Check { path: at(), source }),
        },
    }
}

/// The soft limit on open files, None when unlimited or unknown.
fn open_files_limit() -> Option<u64> {
    use nix::libc;
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid rlimit for the kernel to fill.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    (rc == 0 && lim.rlim_cur != libc::RLIM_INFINITY).then_some(lim.rlim_cur)
}

/// What every connection's task shares.
struct Shared {
    commands: mpsc::Sender<Command>,
    reports: watch::Receiver<Arc<StatusReport>>,
    limits: Mutex<Limits>,
}

impl Shared {
    fn limits(&self) -> MutexGuard<'_, Limits> {
        self.limits.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records trouble from `uid`: logged when it starts an episode (and
    /// then summed up when it stops), counted otherwise.
    fn note(self: &Arc<Self>, uid: u32, trouble: Trouble) {
        let Some((level, line)) = self.limits().note(uid, &trouble, Instant::now()) else {
            return;
        };
        logging::event(level, &line, &[("FAKEUPS_PEER_UID", &uid.to_string())]);
        let shared = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                let ended = shared.limits().end_if_quiet(uid, Instant::now());
                match ended {
                    Ok(summary) => {
                        if let Some(line) = summary {
                            logging::event(
                                logging::Level::Notice,
                                &line,
                                &[("FAKEUPS_PEER_UID", &uid.to_string())],
                            );
                        }
                        return;
                    }
                    Err(at) => {
                        tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await;
                    }
                }
            }
        });
    }
}

/// A connection's place, given back when the connection ends.
struct Place {
    shared: Arc<Shared>,
    uid: u32,
}

impl Drop for Place {
    fn drop(&mut self) {
        self.shared.limits().release(self.uid);
    }
}

async fn serve(listener: UnixListener, shared: Arc<Shared>) {
    let mut accept_failing = false;
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of descriptors (EMFILE) or memory: the connections
                // wait in the listen queue meanwhile. Logged once.
                if !accept_failing {
                    logging::warning(&format!(
                        "control socket: cannot accept connections: {e}; retrying every 100 ms"
                    ));
                    accept_failing = true;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if accept_failing {
            logging::info("control socket: accepting connections again");
            accept_failing = false;
        }
        let uid = match stream.peer_cred() {
            Ok(cred) => cred.uid(),
            Err(e) => {
                logging::warning(&format!(
                    "control socket: cannot read a caller's credentials: {e}; connection closed"
                ));
                continue;
            }
        };
        let admitted = shared.limits().admit(uid);
        match admitted {
            Ok(()) => {
                let place = Place {
                    shared: Arc::clone(&shared),
                    uid,
                };
                tokio::spawn(handle(stream, place));
            }
            Err(refusal) => {
                // One small frame into a fresh socket's empty buffer: sent
                // at once or not at all, never waited for.
                let answer = ResponseFrame {
                    version: PROTOCOL_VERSION,
                    response: Response::error(ErrorKind::Failed, refusal.message(uid)),
                };
                if let Ok(frame) = protocol::encode_frame(&answer, V1_MAX_FRAME) {
                    let _ = stream.try_write(&frame);
                }
                drop(stream);
                shared.note(uid, Trouble::Refused(refusal));
            }
        }
    }
}

/// What a connection asked for, as far as the answer's size and its loss
/// matter.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Asked {
    /// Status, or a request that was not understood.
    Other,
    /// A pause or a resume, carried out if the answer is Ok.
    Command(&'static str),
}

async fn handle(mut stream: UnixStream, place: Place) {
    let (shared, uid) = (&place.shared, place.uid);
    let read = tokio::time::timeout(
        REQUEST_TIMEOUT,
        protocol::read_frame(&mut stream, MAX_REQUEST),
    )
    .await;
    let (response, asked) = match read {
        Err(_) => {
            shared.note(uid, Trouble::NoRequest(REQUEST_TIMEOUT));
            let message = format!("no request within {}", fmt_duration(REQUEST_TIMEOUT));
            (
                Response::error(ErrorKind::BadRequest, message),
                Asked::Other,
            )
        }
        Ok(Err(FrameError::Closed)) | Ok(Err(FrameError::Io(_))) => return,
        Ok(Err(e)) => (
            Response::error(ErrorKind::BadRequest, e.to_string()),
            Asked::Other,
        ),
        Ok(Ok(body)) => match protocol::decode_request(&body) {
            Err(response) => (response, Asked::Other),
            Ok(request) => {
                let asked = match request {
                    Request::Status {} => Asked::Other,
                    Request::Pause { .. } => Asked::Command("pause"),
                    Request::Resume {} => Asked::Command("resume"),
                    Request::Wake { .. } => Asked::Command("wake"),
                    Request::Drill { .. } => Asked::Command("drill"),
                };
                (answer(&stream, uid, request, shared).await, asked)
            }
        },
    };
    let done = asked != Asked::Other && matches!(response, Response::Ok { .. });
    let frame = encode_answer(response, asked);
    let sent = match tokio::time::timeout(ANSWER_TIMEOUT, stream.write_all(&frame)).await {
        Ok(Ok(())) => return,
        Ok(Err(e)) => e.to_string(),
        Err(_) => format!(
            "the answer ({} bytes) was not taken within {}",
            frame.len(),
            fmt_duration(ANSWER_TIMEOUT)
        ),
    };
    match asked {
        // Whoever paused must learn of it from the log at least.
        Asked::Command(what) if done => logging::event(
            logging::Level::Warning,
            &format!(
                "control socket: could not send uid {uid} the answer to its {what}, which was \
                 carried out: {sent}"
            ),
            &[("FAKEUPS_PEER_UID", &uid.to_string())],
        ),
        _ => shared.note(uid, Trouble::Undelivered(sent)),
    }
}

/// The answer as a frame. The answer to a pause or a resume stays within
/// what fakeupsctl 0.1.0 reads (see `protocol`); an answer too large for
/// any fakeupsctl becomes an error that says so.
fn encode_answer(response: Response, asked: Asked) -> Vec<u8> {
    /// An answer too large to send is logged once a run.
    static OVERSIZE_LOGGED: AtomicBool = AtomicBool::new(false);
    let mut frame = ResponseFrame {
        version: PROTOCOL_VERSION,
        response,
    };
    if asked != Asked::Other {
        match protocol::encode_frame(&frame, V1_MAX_FRAME) {
            Ok(bytes) => return bytes,
            Err(EncodeError::TooLarge { .. }) => {
                if let Response::Ok { status, .. } = &mut frame.response {
                    status.sentinels.clear();
                }
            }
            Err(EncodeError::Json(_)) => {}
        }
    }
    let error = match protocol::encode_frame(&frame, MAX_RESPONSE) {
        Ok(bytes) => return bytes,
        Err(e) => e,
    };
    if !OVERSIZE_LOGGED.swap(true, Ordering::Relaxed) {
        logging::error(&format!(
            "control socket: cannot send an answer: {error} (logged once)"
        ));
    }
    let small = ResponseFrame {
        version: PROTOCOL_VERSION,
        response: Response::error(
            ErrorKind::Failed,
            format!("the daemon cannot send its answer: {error}"),
        ),
    };
    protocol::encode_frame(&small, V1_MAX_FRAME).unwrap_or_default()
}

async fn answer(stream: &UnixStream, uid: u32, request: Request, shared: &Arc<Shared>) -> Response {
    // Status is open to everyone and never waits for the main loop.
    if let Request::Status {} = request {
        return Response::Ok {
            message: None,
            status: Box::new(StatusReport::clone(&shared.reports.borrow())),
        };
    }
    let what = match &request {
        Request::Status {} => "status",
        Request::Pause { .. } => "pause",
        Request::Resume {} => "resume",
        Request::Wake { .. } => "wake",
        Request::Drill { .. } => "drill",
    };
    let cred = match credentials(stream) {
        Ok(cred) => cred,
        Err(e) => {
            return Response::error(
                ErrorKind::Failed,
                format!("cannot read the caller's credentials: {e}"),
            );
        }
    };
    // The user and group databases may be sssd or LDAP, and the caller's
    // groups may have to come from /proc: looked up off the daemon's
    // thread, which also runs the rounds and the watchdog.
    let lookup = tokio::task::spawn_blocking(move || {
        cred.resolve()
            .map(|peer| (peer.name(), control_gid(), peer))
    });
    let (by, group, peer) = match lookup.await {
        Ok(Ok(found)) => found,
        Ok(Err(e)) => return Response::error(ErrorKind::Failed, e.to_string()),
        Err(e) => {
            return Response::error(
                ErrorKind::Failed,
                format!("cannot look up the caller (uid {uid}): {e}"),
            );
        }
    };
    let drill = matches!(request, Request::Drill { .. });
    let allowed = if drill {
        peer.uid == 0
    } else {
        peer.may_control(group)
    };
    if !allowed {
        let who = if drill {
            "not root".to_string()
        } else {
            format!("neither root nor in group {CONTROL_GROUP}")
        };
        let message = format!("refused a {what} request from {by}: {who}");
        shared.note(uid, Trouble::Denied(message));
        let denied = match request {
            Request::Drill { .. } => DRILL_DENIED,
            Request::Wake { .. } => WAKE_DENIED,
            _ => PERMISSION_DENIED,
        };
        return Response::error(ErrorKind::PermissionDenied, denied);
    }
    let (reply, wait) = oneshot::channel();
    let command = match request {
        Request::Pause {
            seconds,
            until_resumed,
            reason,
        } => Command::Pause {
            seconds,
            until_resumed,
            reason,
            by,
            reply,
        },
        Request::Resume {} => Command::Resume { by, reply },
        Request::Wake { target } => Command::Wake { target, by, reply },
        Request::Drill { seconds, stop } => Command::Drill {
            seconds,
            stop,
            by,
            reply,
        },
        Request::Status {} => return Response::error(ErrorKind::BadRequest, "not a command"),
    };
    if shared.commands.send(command).await.is_err() {
        return Response::error(ErrorKind::Failed, "the daemon is stopping");
    }
    match tokio::time::timeout(COMMAND_TIMEOUT, wait).await {
        Ok(Ok(response)) => response,
        Ok(Err(_)) => Response::error(ErrorKind::Failed, "the daemon dropped the request"),
        Err(_) => Response::error(ErrorKind::Failed, "the daemon did not carry it out in time"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::report;

    #[tokio::test]
    async fn refuses_a_path_that_is_not_a_socket_and_replaces_a_stale_one() {
        let dir = tempfile::tempdir().unwrap();
        let (tx, _rx) = mpsc::channel(1);
        let report = watch::channel(Arc::new(test_report())).1;

        let file = dir.path().join("file.sock");
        fs::write(&file, "precious").unwrap();
        let e = ControlServer::bind(&file, tx.clone(), report.clone())
            .err()
            .unwrap();
        assert!(e.to_string().contains("not a socket"), "{e}");
        assert_eq!(fs::read_to_string(&file).unwrap(), "precious");

        let path = dir.path().join("sub/control.sock");
        let stale = std::os::unix::net::UnixListener::bind({
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            &path
        })
        .unwrap();
        drop(stale);
        let server = ControlServer::bind(&path, tx.clone(), report.clone()).unwrap();
        let mode = fs::metadata(&path).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o666);
        let e = ControlServer::bind(&path, tx, report).err().unwrap();
        assert!(e.to_string().contains("already listening"), "{e}");
        drop(server);
        assert!(!path.exists());
    }

    fn test_report() -> StatusReport {
        let now = chrono::Local::now();
        StatusReport {
            format: 1,
            daemon: report::DaemonInfo {
                version: "test".into(),
                pid: 1,
                started: now,
                config: "/dev/null".into(),
                data_file: "/dev/null".into(),
            },
            status: "OL".into(),
            status_since: now,
            summary: String::new(),
            battery: report::BatteryReport {
                charge: 100,
                runtime: 300,
                charge_low: 60,
                runtime_low: 180,
            },
            detection: report::DetectionReport {
                quorum: "all".into(),
                silent: 0,
                total: 1,
                interval_ms: 2000,
                on_battery_after_ms: 30000,
                online_after_ms: 15000,
                lost_for_ms: None,
                back_for_ms: None,
            },
            sentinels: vec![],
            pause: None,
            nut: report::NutReport::default(),
            outlets: report::OutletsReport::default(),
            wake: report::WakeReport::default(),
            drill: None,
        }
    }
}
