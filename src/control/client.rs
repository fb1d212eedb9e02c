//! fakeupsctl's end of the control socket: one request, one answer, all
//! within a timeout.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::AsyncWriteExt as _;
use tokio::net::UnixStream;

use super::protocol::{
    self, EncodeError, FrameError, MAX_REQUEST, MAX_RESPONSE, PROTOCOL_VERSION, Request,
    RequestFrame, Response, ResponseFrame,
};
use crate::format::fmt_duration;

/// Why the daemon gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("fakeups is not running (no socket at {})", .0.display())]
    NoSocket(PathBuf),
    #[error("fakeups is not running (nothing listens on {})", .0.display())]
    NothingListens(PathBuf),
    #[error("cannot connect to {}: permission denied", .0.display())]
    PermissionDenied(PathBuf),
    #[error("cannot connect to {}: {source}", path.display())]
    Connect { path: PathBuf, source: io::Error },
    #[error("the request is too large to send: {0} (a shorter reason?)")]
    RequestTooLarge(EncodeError),
    #[error("cannot send to {}: {source}", path.display())]
    Send { path: PathBuf, source: io::Error },
    #[error("no answer from fakeups on {}: {source}", path.display())]
    NoAnswer { path: PathBuf, source: FrameError },
    #[error("unexpected answer from fakeups on {}: {source}", path.display())]
    BadAnswer {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error(
        "fakeups answered with protocol version {0}; this fakeupsctl speaks {PROTOCOL_VERSION}"
    )]
    Version(u32),
    #[error("fakeups did not answer within {} on {}", fmt_duration(*timeout), path.display())]
    Timeout { path: PathBuf, timeout: Duration },
}

/// Sends `request` to the daemon at `socket` and reads the answer, all
/// within `timeout`.
pub async fn call(
    socket: &Path,
    timeout: Duration,
    request: &Request,
) -> Result<Response, CallError> {
    let path = || socket.to_path_buf();
    let frame = RequestFrame {
        version: PROTOCOL_VERSION,
        request: request.clone(),
    };
    let bytes = protocol::encode_frame(&frame, MAX_REQUEST).map_err(CallError::RequestTooLarge)?;
    let exchange = async {
        let mut stream = UnixStream::connect(socket)
            .await
            .map_err(|e| connect_error(socket, e))?;
        // A daemon that refuses the connection (too many from this user)
        // answers why and closes at once, maybe before the request is
        // written: its answer is read even when the write failed.
        let sent = stream.write_all(&bytes).await;
        let body = match (protocol::read_frame(&mut stream, MAX_RESPONSE).await, sent) {
            (Ok(body), _) => body,
            (Err(_), Err(source)) => {
                return Err(CallError::Send {
                    path: path(),
                    source,
                });
            }
            (Err(source), Ok(())) => {
                return Err(CallError::NoAnswer {
                    path: path(),
                    source,
                });
            }
        };
        let frame: ResponseFrame =
            serde_json::from_slice(&body).map_err(|source| CallError::BadAnswer {
                path: path(),
                source,
            })?;
        if frame.version != PROTOCOL_VERSION {
            return Err(CallError::Version(frame.version));
        }
        Ok(frame.response)
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .unwrap_or_else(|_| {
            Err(CallError::Timeout {
                path: path(),
                timeout,
            })
        })
}

fn connect_error(socket: &Path, e: io::Error) -> CallError {
    let path = socket.to_path_buf();
    match e.kind() {
        io::ErrorKind::NotFound => CallError::NoSocket(path),
        io::ErrorKind::ConnectionRefused => CallError::NothingListens(path),
        io::ErrorKind::PermissionDenied => CallError::PermissionDenied(path),
        _ => CallError::Connect { path, source: e },
    }
}
