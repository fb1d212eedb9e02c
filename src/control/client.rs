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

/// How often a connection is tried again while the daemon's listen queue
/// is full.
const CONNECT_RETRY: Duration = Duration::from_millis(20);

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
        let mut stream = loop {
            match UnixStream::connect(socket).await {
                Ok(stream) => break stream,
                // The daemon's listen queue is full (a flood of
                // connections): it drains as the daemon accepts them.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    tokio::time::sleep(CONNECT_RETRY).await;
                }
                Err(e) => return Err(connect_error(socket, e)),
            }
        };
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::protocol::ErrorKind;
    use socket2::{Domain, SockAddr, Socket, Type};

    #[tokio::test]
    async fn a_full_listen_queue_is_waited_for() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.sock");
        let addr = SockAddr::unix(&path).unwrap();
        let listener = Socket::new(Domain::UNIX, Type::STREAM, None).unwrap();
        listener.bind(&addr).unwrap();
        listener.listen(0).unwrap();
        // Connections that say nothing, until the queue is full.
        let mut fillers = vec![];
        loop {
            let s = Socket::new(Domain::UNIX, Type::STREAM, None).unwrap();
            s.set_nonblocking(true).unwrap();
            match s.connect(&addr) {
                Ok(()) => fillers.push(s),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("{e}"),
            }
        }
        // The daemon starts accepting 300 ms later; only a request is answered.
        listener.set_nonblocking(true).unwrap();
        let listener = tokio::net::UnixListener::from_std(listener.into()).unwrap();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            loop {
                let Ok((mut s, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(async move {
                    let read = protocol::read_frame(&mut s, MAX_REQUEST);
                    if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_secs(1), read).await {
                        let answer = ResponseFrame {
                            version: PROTOCOL_VERSION,
                            response: Response::error(ErrorKind::Failed, "answered"),
                        };
                        let frame = protocol::encode_frame(&answer, MAX_RESPONSE).unwrap();
                        s.write_all(&frame).await.unwrap();
                    }
                });
            }
        });
        let answer = call(&path, Duration::from_secs(5), &Request::Status {})
            .await
            .unwrap();
        assert_eq!(answer, Response::error(ErrorKind::Failed, "answered"));
        drop(fillers);
    }
}
