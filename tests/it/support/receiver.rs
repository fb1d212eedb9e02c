//! A small HTTP server on 127.0.0.1 that stands in for sentry.io: it takes
//! each envelope fakeups posts, answers 200, and keeps what it got. Only
//! the remote service is replaced; fakeups' own code runs unchanged.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::wait_for;

/// One envelope as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub at: Instant,
    pub path: String,
    pub auth: String,
    /// The envelope's items that are events, as JSON.
    pub events: Vec<Value>,
    #[allow(dead_code)]
    pub raw: String,
}

pub struct Receiver {
    pub port: u16,
    got: Arc<Mutex<Vec<Received>>>,
    stop: Arc<AtomicBool>,
}

impl Receiver {
    pub fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the receiver");
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let got = Arc::new(Mutex::new(vec![]));
        let stop = Arc::new(AtomicBool::new(false));
        let (g, s) = (got.clone(), stop.clone());
        thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let g = g.clone();
                        thread::spawn(move || serve(stream, g));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Receiver { port, got, stop }
    }

    /// A DSN for project 42 at this receiver.
    pub fn dsn(&self) -> String {
        format!("http://0123456789abcdef@127.0.0.1:{}/42", self.port)
    }

    pub fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// Every event received so far, with when.
    pub fn events(&self) -> Vec<(Instant, Value)> {
        self.received()
            .into_iter()
            .flat_map(|r| r.events.into_iter().map(move |e| (r.at, e)))
            .collect()
    }

    /// Waits for an event whose message is `message`.
    pub fn wait_event(&self, message: &str, timeout: Duration) -> Option<(Instant, Value)> {
        wait_for(timeout, Duration::from_millis(20), || {
            self.events()
                .into_iter()
                .find(|(_, e)| e["message"].as_str() == Some(message))
        })
    }

    /// The events whose message contains `needle`.
    pub fn count(&self, needle: &str) -> usize {
        self.events()
            .iter()
            .filter(|(_, e)| e["message"].as_str().is_some_and(|m| m.contains(needle)))
            .count()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Serves one connection: requests until it closes.
fn serve(stream: TcpStream, got: Arc<Mutex<Vec<Received>>>) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let mut writer = match stream.try_clone() {
        Ok(w) => w,
        Err(_) => return,
    };
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let path = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_string();
        let (mut length, mut chunked, mut auth) = (0usize, false, String::new());
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
                match k.as_str() {
                    "content-length" => length = v.parse().unwrap_or(0),
                    "transfer-encoding" => chunked = v.eq_ignore_ascii_case("chunked"),
                    "x-sentry-auth" => auth = v.to_string(),
                    _ => {}
                }
            }
        }
        let mut body = Vec::new();
        if chunked {
            loop {
                let mut size = String::new();
                if reader.read_line(&mut size).unwrap_or(0) == 0 {
                    return;
                }
                let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
                let mut chunk = vec![0; n + 2];
                if reader.read_exact(&mut chunk).is_err() {
                    return;
                }
                if n == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..n]);
            }
        } else {
            body.resize(length, 0);
            if reader.read_exact(&mut body).is_err() {
                return;
            }
        }
        let raw = String::from_utf8_lossy(&body).to_string();
        got.lock().unwrap().push(Received {
            at: Instant::now(),
            path,
            auth,
            events: events_of(&raw),
            raw,
        });
        let answer =
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";
        if writer.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

/// The event items of an envelope: a header line, then for each item a
/// header line and its payload (one line, or `length` bytes).
fn events_of(envelope: &str) -> Vec<Value> {
    let mut events = vec![];
    let mut rest = match envelope.split_once('\n') {
        Some((_, rest)) => rest,
        None => return events,
    };
    while let Some((header, after)) = rest.split_once('\n') {
        let Ok(header) = serde_json::from_str::<Value>(header) else {
            break;
        };
        let (payload, next) = match header["length"].as_u64() {
            Some(n) if (n as usize) <= after.len() => {
                let (p, r) = after.split_at(n as usize);
                (p, r.strip_prefix('\n').unwrap_or(r))
            }
            _ => after.split_once('\n').unwrap_or((after, "")),
        };
        if header["type"] == "event"
            && let Ok(event) = serde_json::from_str(payload)
        {
            events.push(event);
        }
        rest = next;
    }
    events
}
