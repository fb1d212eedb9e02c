//! A small client of upsd's network protocol (NUT docs/net-protocol.txt):
//! the read-only commands that need no login (GET VAR, LIST CLIENT), used to
//! read back what NUT really serves.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use super::address::split_host_port;

/// The longest line accepted from upsd.
const MAX_LINE: usize = 4096;
/// The most entries accepted in one LIST answer.
const MAX_LIST: usize = 1024;

/// What went wrong talking to upsd.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NutError {
    /// No connection, or it broke or timed out.
    #[error("upsd at {addr} unreachable: {message}")]
    Unreachable { addr: String, message: String },
    /// upsd answered `ERR <code>`.
    #[error("{}", describe_err(.0))]
    Refused(String),
    /// upsd answered something this client does not understand.
    #[error("unexpected answer from upsd at {addr} to {command}: {answer:?}")]
    Protocol {
        addr: String,
        command: String,
        answer: String,
    },
}

/// What upsd's DRIVER-NOT-CONNECTED reads as.
pub const DRIVER_NOT_CONNECTED: &str = "driver not connected";

fn describe_err(code: &str) -> String {
    match code {
        "UNKNOWN-UPS" => "unknown UPS name".into(),
        "DRIVER-NOT-CONNECTED" => DRIVER_NOT_CONNECTED.into(),
        "DATA-STALE" => "data stale".into(),
        "VAR-NOT-SUPPORTED" => "variable not supported".into(),
        "ACCESS-DENIED" => "access denied".into(),
        other => format!("upsd refused: {other}"),
    }
}

/// One connection to upsd.
pub struct NutConnection {
    addr: String,
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    timeout: Duration,
}

impl NutConnection {
    /// Connects to `addr` (`host:port`), every step bounded by `timeout`.
    pub async fn connect(addr: &str, timeout: Duration) -> Result<NutConnection, NutError> {
        let unreachable = |message: String| NutError::Unreachable {
            addr: addr.to_string(),
            message,
        };
        let (host, port) = split_host_port(addr).map_err(|e| unreachable(e.to_string()))?;
        let stream = tokio::time::timeout(timeout, TcpStream::connect((host.as_str(), port)))
            .await
            .map_err(|_| unreachable("connection timed out".into()))?
            .map_err(|e| unreachable(e.to_string()))?;
        let (read, writer) = stream.into_split();
        Ok(NutConnection {
            addr: addr.to_string(),
            reader: BufReader::new(read),
            writer,
            timeout,
        })
    }

    fn unreachable(&self, message: String) -> NutError {
        NutError::Unreachable {
            addr: self.addr.clone(),
            message,
        }
    }

    async fn send(&mut self, line: &str) -> Result<(), NutError> {
        let mut msg = line.to_string();
        msg.push('\n');
        match tokio::time::timeout(self.timeout, self.writer.write_all(msg.as_bytes())).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(self.unreachable(e.to_string())),
            Err(_) => Err(self.unreachable("write timed out".into())),
        }
    }

    fn protocol(&self, command: &str, answer: impl Into<String>) -> NutError {
        NutError::Protocol {
            addr: self.addr.clone(),
            command: command.to_string(),
            answer: answer.into(),
        }
    }

    async fn read_line(&mut self, command: &str) -> Result<String, NutError> {
        let mut buf = Vec::new();
        let read = async {
            let mut limited = (&mut self.reader).take(MAX_LINE as u64 + 1);
            limited.read_until(b'\n', &mut buf).await
        };
        let n = match tokio::time::timeout(self.timeout, read).await {
            Ok(Ok(n)) => n,
            Ok(Err(e)) => return Err(self.unreachable(e.to_string())),
            Err(_) => return Err(self.unreachable("no answer in time".into())),
        };
        if n == 0 {
            return Err(self.unreachable("connection closed".into()));
        }
        if buf.len() > MAX_LINE {
            return Err(self.protocol(command, format!("a line over {MAX_LINE} bytes")));
        }
        let line = String::from_utf8_lossy(&buf);
        let line = line.trim_end_matches(['\r', '\n']).to_string();
        if let Some(code) = line.strip_prefix("ERR ") {
            let code = code.split_whitespace().next().unwrap_or_default();
            return Err(NutError::Refused(code.to_string()));
        }
        Ok(line)
    }

    /// `GET VAR ups var`: the value upsd serves.
    pub async fn get_var(&mut self, ups: &str, var: &str) -> Result<String, NutError> {
        let command = format!("GET VAR {ups} {var}");
        self.send(&command).await?;
        let line = self.read_line(&command).await?;
        let prefix = format!("VAR {ups} {var} ");
        line.strip_prefix(&prefix)
            .and_then(unquote)
            .ok_or_else(|| self.protocol(&command, line.as_str()))
    }

    /// `LIST CLIENT ups`: the addresses of the clients logged in to it.
    pub async fn list_clients(&mut self, ups: &str) -> Result<Vec<String>, NutError> {
        let command = format!("LIST CLIENT {ups}");
        self.send(&command).await?;
        let begin = self.read_line(&command).await?;
        if begin != format!("BEGIN LIST CLIENT {ups}") {
            return Err(self.protocol(&command, begin));
        }
        let item = format!("CLIENT {ups} ");
        let mut clients = Vec::new();
        loop {
            let line = self.read_line(&command).await?;
            if line == format!("END LIST CLIENT {ups}") {
                return Ok(clients);
            }
            let Some(addr) = line.strip_prefix(&item) else {
                return Err(self.protocol(&command, line));
            };
            if clients.len() >= MAX_LIST {
                return Err(self.protocol(&command, format!("more than {MAX_LIST} clients")));
            }
            clients.push(addr.trim().to_string());
        }
    }
}

/// The value of a `"quoted"` protocol field, with `\"` and `\\` undone.
pub fn unquote(text: &str) -> Option<String> {
    let inner = text.strip_prefix('"')?.strip_suffix('"')?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            out.push(chars.next()?);
        } else {
            out.push(c);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unquoting() {
        assert_eq!(unquote(r#""OB LB""#), Some("OB LB".into()));
        assert_eq!(unquote(r#""a \"b\" \\c""#), Some(r#"a "b" \c"#.into()));
        assert_eq!(unquote("OL"), None);
    }

    #[test]
    fn errors_read_as_people_say_them() {
        assert_eq!(
            NutError::Refused("DRIVER-NOT-CONNECTED".into()).to_string(),
            "driver not connected"
        );
        assert_eq!(
            NutError::Refused("UNKNOWN-UPS".into()).to_string(),
            "unknown UPS name"
        );
    }

    /// A scripted upsd on loopback answers the way the real one does.
    #[tokio::test]
    async fn talks_the_protocol() {
        use tokio::io::AsyncReadExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 256];
            let mut seen = String::new();
            for reply in [
                "VAR qnapups ups.status \"OB LB\"\n",
                "BEGIN LIST CLIENT qnapups\nCLIENT qnapups 192.168.1.20\nCLIENT qnapups ::1\nEND LIST CLIENT qnapups\n",
                "ERR DRIVER-NOT-CONNECTED\n",
            ] {
                let n = s.read(&mut buf).await.unwrap();
                seen.push_str(&String::from_utf8_lossy(&buf[..n]));
                s.write_all(reply.as_bytes()).await.unwrap();
            }
            seen
        });
        let mut c = NutConnection::connect(&addr, Duration::from_secs(2))
            .await
            .unwrap();
        assert_eq!(c.get_var("qnapups", "ups.status").await.unwrap(), "OB LB");
        assert_eq!(
            c.list_clients("qnapups").await.unwrap(),
            vec!["192.168.1.20", "::1"]
        );
        let e = c.get_var("qnapups", "ups.status").await.unwrap_err();
        assert_eq!(e, NutError::Refused("DRIVER-NOT-CONNECTED".into()));
        assert_eq!(
            server.await.unwrap(),
            "GET VAR qnapups ups.status\nLIST CLIENT qnapups\nGET VAR qnapups ups.status\n"
        );
    }
}
