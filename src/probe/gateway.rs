//! The `gateway` sentinel: the router of the IPv4 default route, read from
//! the kernel's route table at each round.

use std::net::Ipv4Addr;

use crate::paths::ROUTE_TABLE;

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

/// Reads the route table and returns the IPv4 default gateway, if any.
pub fn read_default_gateway_v4() -> std::io::Result<Option<Ipv4Addr>> {
    let text = std::fs::read_to_string(ROUTE_TABLE)?;
    Ok(default_gateway_v4(&text))
}

#[cfg(test)]
mod tests {
    use super::*;

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
