//! The address of upsd as written in `nut.upsd`: `host:port` or `[v6]:port`.

/// Text that is not `HOST:PORT`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not HOST:PORT (e.g. 127.0.0.1:3493 or [::1]:3493)")]
pub struct NotHostPort(pub String);

/// Splits `host:port` or `[v6]:port`.
pub fn split_host_port(text: &str) -> Result<(String, u16), NotHostPort> {
    let bad = || NotHostPort(text.to_string());
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, port) = rest.split_once("]:").ok_or_else(bad)?;
        (host, port)
    } else {
        let (host, port) = text.rsplit_once(':').ok_or_else(bad)?;
        if host.contains(':') {
            return Err(bad());
        }
        (host, port)
    };
    if host.is_empty() {
        return Err(bad());
    }
    let port: u16 = port.parse().map_err(|_| bad())?;
    if port == 0 {
        return Err(bad());
    }
    Ok((host.to_string(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_forms() {
        assert_eq!(
            split_host_port("127.0.0.1:3493"),
            Ok(("127.0.0.1".into(), 3493))
        );
        assert_eq!(split_host_port("[::1]:3493"), Ok(("::1".into(), 3493)));
        assert_eq!(
            split_host_port("localhost:1234"),
            Ok(("localhost".into(), 1234))
        );
        for bad in [
            "localhost",
            "::1:3493",
            ":3493",
            "host:0",
            "host:99999",
            "[::1]",
        ] {
            assert!(split_host_port(bad).is_err(), "{bad}");
        }
    }
}
