//! The control protocol between the daemon and fakeupsctl, version 1.
//!
//! A frame is a 4-byte big-endian length followed by that many bytes of JSON;
//! a frame over 64 KiB is refused. The client sends one request frame
//! `{"version":1,"request":{"type":"status"}}` and gets one response frame
//! `{"version":1,"response":{"result":"ok",...}}` or
//! `{"version":1,"response":{"result":"error","kind":...,"message":...}}`;
//! then the connection closes.

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::report::StatusReport;

pub const PROTOCOL_VERSION: u32 = 1;
/// The largest frame either side accepts, in bytes.
pub const MAX_FRAME: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Request {
    /// Everything `fakeupsctl status` shows. (Variants are structs so that
    /// unknown fields are refused for each of them.)
    Status {},
    /// Hold OL with a full battery for `seconds`, until resumed, or (with
    /// neither) for the daemon's `pause.default-duration`.
    Pause {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seconds: Option<u64>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        until_resumed: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// End a pause.
    Resume {},
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestFrame {
    pub version: u32,
    pub request: Request,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    /// The caller may not do this (pause and resume need root or group fakeups).
    PermissionDenied,
    /// The frame or the request is not understood.
    BadRequest,
    /// The protocol version is not spoken here.
    UnsupportedVersion,
    /// The daemon could not carry it out.
    Failed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum Response {
    Ok {
        /// What was done, for people (e.g. "paused until ...").
        message: Option<String>,
        status: Box<StatusReport>,
    },
    Error {
        kind: ErrorKind,
        message: String,
    },
}

impl Response {
    pub fn error(kind: ErrorKind, message: impl Into<String>) -> Response {
        Response::Error {
            kind,
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResponseFrame {
    pub version: u32,
    pub response: Response,
}

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("the connection closed")]
    Closed,
    #[error("the frame ended after {got} of {expected} bytes")]
    Truncated { got: usize, expected: usize },
    #[error("a frame of {0} bytes exceeds the {MAX_FRAME}-byte limit")]
    TooLarge(usize),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Reads one frame's bytes.
pub async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> Result<Vec<u8>, FrameError> {
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match r.read(&mut len[got..]).await? {
            0 if got == 0 => return Err(FrameError::Closed),
            0 => return Err(FrameError::Truncated { got, expected: 4 }),
            n => got += n,
        }
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(FrameError::TooLarge(len));
    }
    let mut body = vec![0u8; len];
    let mut got = 0;
    while got < len {
        match r.read(&mut body[got..]).await? {
            0 => {
                return Err(FrameError::Truncated { got, expected: len });
            }
            n => got += n,
        }
    }
    Ok(body)
}

/// Writes one frame of `value` as JSON.
pub async fn write_frame<W: AsyncWrite + Unpin, T: Serialize>(
    w: &mut W,
    value: &T,
) -> std::io::Result<()> {
    let body = serde_json::to_vec(value)?;
    if body.len() > MAX_FRAME {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "a frame of {} bytes exceeds the {MAX_FRAME}-byte limit",
                body.len()
            ),
        ));
    }
    let mut frame = Vec::with_capacity(body.len() + 4);
    frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
    frame.extend_from_slice(&body);
    w.write_all(&frame).await?;
    w.flush().await
}

/// Decodes a request frame, or the error response to give instead.
pub fn decode_request(body: &[u8]) -> Result<Request, Response> {
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
        Response::error(
            ErrorKind::BadRequest,
            format!("the request is not JSON: {e}"),
        )
    })?;
    match value.get("version").and_then(serde_json::Value::as_u64) {
        Some(v) if v == u64::from(PROTOCOL_VERSION) => {}
        Some(v) => {
            return Err(Response::error(
                ErrorKind::UnsupportedVersion,
                format!(
                    "protocol version {v} is not supported; this daemon speaks {PROTOCOL_VERSION}"
                ),
            ));
        }
        None => {
            return Err(Response::error(
                ErrorKind::BadRequest,
                "the request has no protocol version",
            ));
        }
    }
    let frame: RequestFrame = serde_json::from_value(value)
        .map_err(|e| Response::error(ErrorKind::BadRequest, format!("bad request: {e}")))?;
    Ok(frame.request)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_have_a_stable_shape() {
        let f = RequestFrame {
            version: 1,
            request: Request::Pause {
                seconds: Some(7200),
                until_resumed: false,
                reason: Some("router firmware update".into()),
            },
        };
        assert_eq!(
            serde_json::to_string(&f).unwrap(),
            r#"{"version":1,"request":{"type":"pause","seconds":7200,"reason":"router firmware update"}}"#
        );
        assert_eq!(
            decode_request(br#"{"version":1,"request":{"type":"status"}}"#),
            Ok(Request::Status {})
        );
        assert_eq!(
            decode_request(br#"{"version":1,"request":{"type":"resume"}}"#),
            Ok(Request::Resume {})
        );
        assert_eq!(
            decode_request(br#"{"version":1,"request":{"type":"pause","until_resumed":true}}"#),
            Ok(Request::Pause {
                seconds: None,
                until_resumed: true,
                reason: None
            })
        );
    }

    #[test]
    fn bad_requests_get_error_responses() {
        let kind = |body: &[u8]| match decode_request(body) {
            Err(Response::Error { kind, .. }) => kind,
            other => panic!("{other:?}"),
        };
        assert_eq!(kind(b"\x00\xffgarbage"), ErrorKind::BadRequest);
        assert_eq!(
            kind(br#"{"request":{"type":"status"}}"#),
            ErrorKind::BadRequest
        );
        assert_eq!(
            kind(br#"{"version":2,"request":{"type":"status"}}"#),
            ErrorKind::UnsupportedVersion
        );
        assert_eq!(
            kind(br#"{"version":1,"request":{"type":"reboot"}}"#),
            ErrorKind::BadRequest
        );
        assert_eq!(
            kind(br#"{"version":1,"request":{"type":"status","x":1}}"#),
            ErrorKind::BadRequest
        );
    }

    #[tokio::test]
    async fn frames_round_trip_and_limits_hold() {
        let (mut a, mut b) = tokio::io::duplex(1 << 20);
        write_frame(&mut a, &Request::Status {}).await.unwrap();
        let body = read_frame(&mut b).await.unwrap();
        assert_eq!(body, br#"{"type":"status"}"#);

        a.write_all(&(MAX_FRAME as u32 + 1).to_be_bytes())
            .await
            .unwrap();
        assert!(matches!(
            read_frame(&mut b).await,
            Err(FrameError::TooLarge(_))
        ));

        a.write_all(&10u32.to_be_bytes()).await.unwrap();
        a.write_all(b"abc").await.unwrap();
        drop(a);
        assert!(matches!(
            read_frame(&mut b).await,
            Err(FrameError::Truncated {
                got: 3,
                expected: 10
            })
        ));
        assert!(matches!(read_frame(&mut b).await, Err(FrameError::Closed)));
    }
}
