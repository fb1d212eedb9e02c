//! The IPv4 route table, as /proc/net/route shows it: which directly
//! connected subnet holds an address, and that subnet's broadcast.

use std::io;
use std::net::Ipv4Addr;

pub const PATH: &str = "/proc/net/route";
const RTF_UP: u32 = 0x1;
const RTF_REJECT: u32 = 0x200;

/// A directly connected subnet (no gateway) that is up and not a reject
/// or blackhole route.
#[derive(Debug, Clone, PartialEq)]
pub struct Subnet {
    pub device: String,
    pub network: Ipv4Addr,
    pub mask: Ipv4Addr,
    pub metric: u32,
}

impl Subnet {
    fn prefix(&self) -> u32 {
        u32::from(self.mask).leading_ones()
    }

    fn holds(&self, a: Ipv4Addr) -> bool {
        u32::from(a) & u32::from(self.mask) == u32::from(self.network)
    }

    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) | !u32::from(self.mask))
    }
}

pub fn read() -> io::Result<Vec<Subnet>> {
    Ok(parse(&std::fs::read_to_string(PATH)?))
}

/// The connected subnets of the table's text. The kernel prints each
/// address as the u32 of its bytes in network order, in hex.
pub fn parse(text: &str) -> Vec<Subnet> {
    let addr = |hex: &str| -> Option<Ipv4Addr> {
        u32::from_str_radix(hex, 16)
            .ok()
            .map(|x| Ipv4Addr::from(x.to_ne_bytes()))
    };
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 8 {
                return None;
            }
            let flags = u32::from_str_radix(f[3], 16).ok()?;
            let gateway = addr(f[2])?;
            let mask = addr(f[7])?;
            let connected = flags & RTF_UP != 0
                && flags & RTF_REJECT == 0
                && gateway.is_unspecified()
                && !mask.is_unspecified();
            connected.then_some(Subnet {
                device: f[0].to_string(),
                network: addr(f[1])?,
                mask,
                metric: f[6].parse().ok()?,
            })
        })
        .collect()
}

/// The directed broadcast that reaches `address` (the most specific
/// connected subnet that holds it, on `interface` when it is given), or,
/// without an address, the one of `interface`'s subnet.
pub fn broadcast(
    subnets: &[Subnet],
    address: Option<Ipv4Addr>,
    interface: Option<&str>,
) -> Result<Ipv4Addr, String> {
    let candidates = subnets
        .iter()
        .filter(|s| interface.is_none_or(|i| s.device == i))
        .filter(|s| address.is_none_or(|a| s.holds(a)))
        .filter(|s| s.prefix() <= 30);
    let best = candidates.max_by(|a, b| a.prefix().cmp(&b.prefix()).then(b.metric.cmp(&a.metric)));
    match best {
        Some(s) => Ok(s.broadcast()),
        None => Err(match (address, interface) {
            (Some(a), Some(i)) => format!("no connected IPv4 subnet on {i} holds {a}"),
            (Some(a), None) => {
                format!("no connected IPv4 subnet holds {a}: it is not on this machine's LAN")
            }
            (None, Some(i)) => format!("{i} has no connected IPv4 subnet with a broadcast"),
            (None, None) => "neither an address nor an interface to find the subnet by".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
        eth0\t00000000\t0101A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n\
        eth0\t0001A8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0\n\
        *\t0005E70A\t00000000\t0201\t0\t0\t4000\t00FFFFFF\t0\t0\t0\n\
        fu5h\t0005E70A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
        wg0\t0A0A0A0A\t00000000\t0005\t0\t0\t0\tFFFFFFFF\t0\t0\t0\n";

    #[test]
    fn the_connected_subnet_of_an_address_gives_its_broadcast() {
        let s = parse(TABLE);
        // The default route and the blackhole are not connected subnets.
        assert_eq!(s.len(), 3);
        let b = |a: Option<&str>, i: Option<&str>| broadcast(&s, a.map(|a| a.parse().unwrap()), i);
        assert_eq!(
            b(Some("192.168.1.20"), None),
            Ok(Ipv4Addr::new(192, 168, 1, 255))
        );
        assert_eq!(
            b(Some("10.231.5.2"), None),
            Ok(Ipv4Addr::new(10, 231, 5, 255))
        );
        assert_eq!(b(None, Some("eth0")), Ok(Ipv4Addr::new(192, 168, 1, 255)));
        assert!(
            b(Some("8.8.8.8"), None)
                .unwrap_err()
                .contains("not on this machine's LAN")
        );
        assert!(b(Some("10.231.5.2"), Some("eth0")).is_err());
        // A /32 has no broadcast.
        assert!(b(None, Some("wg0")).is_err());
    }
}
