//! The control protocol between the daemon and fakeupsctl, version 1.
//!
//! A frame is a 4-byte big-endian length followed by that many bytes of JSON.
//! The client sends one request frame `{"version":1,"request":{"type":"status"}}`
//! and gets one response frame `{"version":1,"response":{"result":"ok",...}}`
//! or `{"version":1,"response":{"result":"error","kind":...,"message":...}}`;
//! then the connection closes.
//!
//! The two directions have limits of their own. The daemon reads a request
//! of at most [`MAX_REQUEST`] bytes (a request is a few dozen bytes and a
//! reason). A response is as large as the status it carries (some 170 bytes
//! a sentinel), and fakeupsctl reads one of up to [`MAX_RESPONSE`] bytes.
//!
//! Compatibility: fakeupsctl 0.1.0 refused any frame over 64 KiB
//! ([`V1_MAX_FRAME`]), in both directions. The version stays 1, since
//! requests did not change and every answer that 0.1.0 could read is the
//! same; a status of more than about 380 sentinels, which 0.1.0 never
//! delivered, now reaches a newer fakeupsctl, and a 0.1.0 one says that the
//! frame exceeds its limit. The answer to a pause or a resume, which
//! fakeupsctl shows only by its message, is kept within 64 KiB by leaving
//! out the status's list of sentinels when it would not fit, so that an old
//! fakeupsctl (during a package upgrade) still hears how its pause ended.

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt};

use super::report::StatusReport;

pub const PROTOCOL_VERSION: u32 = 1;
/// The largest request the daemon reads, in bytes.
pub const MAX_REQUEST: usize = 8 * 1024;
/// The largest response fakeupsctl reads, in bytes: some 90 000 sentinels
/// at their usual size, 20 000 with long host names and problems.
pub const MAX_RESPONSE: usize = 16 * 1024 * 1024;
/// The largest frame fakeupsctl 0.1.0 reads, in bytes.
pub const V1_MAX_FRAME: usize = 64 * 1024;

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
    /// Send a magic packet now to `target`: a wake target's or
    /// `[[wake.host]]`'s name, or a MAC.
    Wake { target: String },
    /// Start a drill of `seconds` (a simulated outage), or stop the one
    /// under way.
    Drill {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seconds: Option<u64>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        stop: bool,
    },
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
    /// The caller may not do this (pause, resume and wake need root or
    /// group fakeups; a drill needs root).
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
    #[error("a frame of {len} bytes exceeds the {max}-byte limit")]
    TooLarge { len: usize, max: usize },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Reads one frame's bytes, refusing one over `max` bytes. Memory grows
/// with the bytes that arrive, not with the length announced.
pub async fn read_frame<R: AsyncRead + Unpin>(
    r: &mut R,
    max: usize,
) -> Result<Vec<u8>, FrameError> {
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
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    let mut body = Vec::with_capacity(len.min(V1_MAX_FRAME));
    let got = (&mut *r).take(len as u64).read_to_end(&mut body).await?;
    if got < len {
        return Err(FrameError::Truncated { got, expected: len });
    }
    Ok(body)
}

/// `value` as one frame: its length, then its JSON; refused over `max` bytes
/// of JSON.
pub fn encode_frame<T: Serialize>(value: &T, max: usize) -> Result<Vec<u8>, EncodeError> {
    let mut frame = vec![0u8; 4];
    serde_json::to_writer(&mut frame, value).map_err(EncodeError::Json)?;
    let len = frame.len() - 4;
    if len > max {
        return Err(EncodeError::TooLarge { len, max });
    }
    let prefix = u32::try_from(len).map_err(|_| EncodeError::TooLarge { len, max })?;
    frame[..4].copy_from_slice(&prefix.to_be_bytes());
    Ok(frame)
}

/// Why a frame could not be made.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("a frame of {len} bytes exceeds the {max}-byte limit")]
    TooLarge { len: usize, max: usize },
    #[error("cannot encode the frame: {0}")]
    Json(serde_json::Error),
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
    use tokio::io::AsyncWriteExt as _;

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
        let frame = encode_frame(&Request::Status {}, MAX_REQUEST).unwrap();
        a.write_all(&frame).await.unwrap();
        let body = read_frame(&mut b, MAX_REQUEST).await.unwrap();
        assert_eq!(body, br#"{"type":"status"}"#);

        a.write_all(&(MAX_REQUEST as u32 + 1).to_be_bytes())
            .await
            .unwrap();
        assert!(matches!(
            read_frame(&mut b, MAX_REQUEST).await,
            Err(FrameError::TooLarge {
                len: 8193,
                max: MAX_REQUEST
            })
        ));

        a.write_all(&10u32.to_be_bytes()).await.unwrap();
        a.write_all(b"abc").await.unwrap();
        drop(a);
        assert!(matches!(
            read_frame(&mut b, MAX_REQUEST).await,
            Err(FrameError::Truncated {
                got: 3,
                expected: 10
            })
        ));
        assert!(matches!(
            read_frame(&mut b, MAX_REQUEST).await,
            Err(FrameError::Closed)
        ));
    }

    #[tokio::test]
    async fn a_response_may_be_larger_than_a_request() {
        // A status of 1000 sentinels is some 170 KB.
        let big = "x".repeat(200_000);
        let (mut a, mut b) = tokio::io::duplex(1 << 20);
        let e = encode_frame(&big, MAX_REQUEST).unwrap_err();
        assert_eq!(
            e.to_string(),
            "a frame of 200002 bytes exceeds the 8192-byte limit"
        );
        let frame = encode_frame(&big, MAX_RESPONSE).unwrap();
        assert_eq!(&frame[..4], &200_002u32.to_be_bytes());
        let writer = tokio::spawn(async move { a.write_all(&frame).await });
        let body = read_frame(&mut b, MAX_RESPONSE).await.unwrap();
        assert_eq!(body.len(), 200_002);
        writer.await.unwrap().unwrap();
        assert!(matches!(
            encode_frame(&big, V1_MAX_FRAME),
            Err(EncodeError::TooLarge {
                len: 200_002,
                max: V1_MAX_FRAME
            })
        ));
    }
}
