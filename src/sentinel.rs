//! What a sentinel is (an address, a host name or the IPv4 default gateway)
//! and how each kind turns into an address to ping.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The word that names the router of the IPv4 default route.
pub const GATEWAY: &str = "gateway";

/// One entry of `sentinels` in the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(into = "String")]
pub enum SentinelSpec {
    /// The router of the IPv4 default route, read from /proc/net/route at each round.
    Gateway,
    /// A literal address; `zone` is the interface of a link-local IPv6
    /// address written as `fe80::1%eth0`, whose index is looked up at each
    /// round (it changes when a USB network card is plugged in again).
    Address { addr: IpAddr, zone: Option<String> },
    /// A host name, resolved with the system resolver.
    Host(String),
}

/// Why a string is not a sentinel.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SentinelError {
    #[error("empty sentinel: expected an IP address, a host name or \"gateway\"")]
    Empty,
    #[error("{0:?} is neither an IP address, a valid host name nor \"gateway\"")]
    Invalid(String),
    #[error("{0:?}: unknown network interface {1:?} in the IPv6 zone")]
    UnknownZone(String, String),
    #[error("{0:?}: a zone (%interface) is only allowed on an IPv6 address")]
    ZoneOnIpv4(String),
}

impl FromStr for SentinelSpec {
    type Err = SentinelError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if text.is_empty() {
            return Err(SentinelError::Empty);
        }
        if text.eq_ignore_ascii_case(GATEWAY) {
            return Ok(SentinelSpec::Gateway);
        }
        if let Some((addr, zone)) = text.split_once('%') {
            let addr: IpAddr = addr
                .parse()
                .map_err(|_| SentinelError::Invalid(text.to_string()))?;
            if addr.is_ipv4() {
                return Err(SentinelError::ZoneOnIpv4(text.to_string()));
            }
            // Checked here so that an unknown interface is a config error.
            nix::net::if_::if_nametoindex(zone)
                .map_err(|_| SentinelError::UnknownZone(text.to_string(), zone.to_string()))?;
            return Ok(SentinelSpec::Address {
                addr,
                zone: Some(zone.to_string()),
            });
        }
        if let Ok(addr) = text.parse::<IpAddr>() {
            return Ok(SentinelSpec::Address { addr, zone: None });
        }
        if is_host_name(text) {
            return Ok(SentinelSpec::Host(text.to_ascii_lowercase()));
        }
        Err(SentinelError::Invalid(text.to_string()))
    }
}

/// Parsed inside the deserializer (not as a String first) so that a bad entry
/// is reported at its own place in the file, not at the start of the list.
impl<'de> Deserialize<'de> for SentinelSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = SentinelSpec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an IP address, a host name or \"gateway\"")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<SentinelSpec, E> {
                text.parse().map_err(E::custom)
            }
        }
        d.deserialize_str(Visitor)
    }
}

impl From<SentinelSpec> for String {
    fn from(spec: SentinelSpec) -> String {
        spec.to_string()
    }
}

impl fmt::Display for SentinelSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SentinelSpec::Gateway => f.write_str(GATEWAY),
            SentinelSpec::Address {
                addr,
                zone: Some(zone),
                ..
            } => write!(f, "{addr}%{zone}"),
            SentinelSpec::Address { addr, .. } => write!(f, "{addr}"),
            SentinelSpec::Host(name) => f.write_str(name),
        }
    }
}

/// RFC 1123 host name: dot-separated labels of letters, digits and inner
/// hyphens, 1 to 63 characters each, 253 in all; a trailing dot is allowed.
/// The last label may not be all digits, so that a mistyped address such as
/// `10.0.0.300` is not taken for a name.
pub fn is_host_name(text: &str) -> bool {
    let name = text.strip_suffix('.').unwrap_or(text);
    if name.is_empty() || name.len() > 253 {
        return false;
    }
    let labels: Vec<&str> = name.split('.').collect();
    let label_ok = |label: &&str| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if !labels.iter().all(label_ok) {
        return false;
    }
    labels
        .last()
        .is_some_and(|last| !last.bytes().all(|b| b.is_ascii_digit()))
}

/// The IPv4 default gateway in the text of /proc/net/route: among the routes
/// that are up, have a gateway and have destination and mask 0.0.0.0, the one
/// with the lowest metric.
pub fn default_gateway_v4(route_table: &str) -> Option<Ipv4Addr> {
    const RTF_UP: u32 = 0x1;
    const RTF_GATEWAY: u32 = 0x2;
    let mut best: Option<(u32, Ipv4Addr)> = None;
    for line in route_table.lines().skip(1) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 8 {
            continue;
        }
        let hex = |i: usize| u32::from_str_radix(fields[i], 16).ok();
        let (Some(dest), Some(gw), Some(flags), Some(mask)) = (hex(1), hex(2), hex(3), hex(7))
        else {
            continue;
        };
        let Ok(metric) = fields[6].parse::<u32>() else {
            continue;
        };
        if dest != 0 || mask != 0 || flags & RTF_UP == 0 || flags & RTF_GATEWAY == 0 || gw == 0 {
            continue;
        }
        // The kernel prints the network-order address as a host-order
        // number, so the native byte order of that number gives the bytes.
        let addr = Ipv4Addr::from(gw.to_ne_bytes());
        if best.is_none_or(|(m, _)| metric < m) {
            best = Some((metric, addr));
        }
    }
    best.map(|(_, addr)| addr)
}

/// The route table of this process's network namespace. Through /proc/self
/// because the unit's ProcSubset=pid hides the /proc/net link.
pub const ROUTE_TABLE: &str = "/proc/self/net/route";

/// Reads the route table and returns the IPv4 default gateway, if any.
pub fn read_default_gateway_v4() -> std::io::Result<Option<Ipv4Addr>> {
    let text = std::fs::read_to_string(ROUTE_TABLE)?;
    Ok(default_gateway_v4(&text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_kind() {
        assert_eq!("gateway".parse(), Ok(SentinelSpec::Gateway));
        assert_eq!("Gateway".parse(), Ok(SentinelSpec::Gateway));
        assert_eq!(
            "192.168.1.1".parse(),
            Ok(SentinelSpec::Address {
                addr: "192.168.1.1".parse().unwrap(),
                zone: None
            })
        );
        assert_eq!(
            "2001:db8::1".parse::<SentinelSpec>().unwrap().to_string(),
            "2001:db8::1"
        );
        assert_eq!(
            "Router.LAN".parse(),
            Ok(SentinelSpec::Host("router.lan".into()))
        );
        assert_eq!(
            "fe80::1%lo".parse::<SentinelSpec>().unwrap().to_string(),
            "fe80::1%lo"
        );
    }

    #[test]
    fn rejects_what_is_neither() {
        for bad in [
            "10.0.0.300",
            "under_score.lan",
            "-leading.lan",
            "a..b",
            "space here",
            "1.2.3",
            "fe80::1%nosuchif0",
            "10.0.0.1%lo",
        ] {
            assert!(bad.parse::<SentinelSpec>().is_err(), "{bad} accepted");
        }
        assert_eq!("  ".parse::<SentinelSpec>(), Err(SentinelError::Empty));
    }

    const ROUTES: &str = "\
Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t0101A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0
wlan0\t00000000\t0102A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0
eth0\t0001A8C0\t00000000\t0001\t0\t0\t600\t00FFFFFF\t0\t0\t0
";

    #[test]
    fn gateway_is_lowest_metric_default_route() {
        assert_eq!(
            default_gateway_v4(ROUTES),
            Some(Ipv4Addr::new(192, 168, 2, 1))
        );
    }

    #[test]
    fn no_default_route_means_no_gateway() {
        let only_link = "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\n\
                         eth0\t0001A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\n";
        assert_eq!(default_gateway_v4(only_link), None);
        let down = "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\n\
                    eth0\t00000000\t0101A8C0\t0002\t0\t0\t0\t00000000\n";
        assert_eq!(default_gateway_v4(down), None);
        assert_eq!(default_gateway_v4(""), None);
    }
}
