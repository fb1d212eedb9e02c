//! The IPv4 neighbour table, as /proc/net/arp shows it: the MAC of each
//! machine this one talked to lately.

use std::io;
use std::net::Ipv4Addr;

use crate::core::Mac;

pub const PATH: &str = "/proc/net/arp";
/// ATF_COM: the entry is complete (its MAC is known).
const COMPLETE: u32 = 0x2;

#[derive(Debug, Clone, PartialEq)]
pub struct Neighbour {
    pub address: Ipv4Addr,
    pub mac: Mac,
    pub device: String,
}

/// The complete entries of the table.
pub fn read() -> io::Result<Vec<Neighbour>> {
    Ok(parse(&std::fs::read_to_string(PATH)?))
}

/// The complete entries of the table's text; lines that do not parse are
/// left out.
pub fn parse(text: &str) -> Vec<Neighbour> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 6 {
                return None;
            }
            let flags = u32::from_str_radix(f[2].trim_start_matches("0x"), 16).ok()?;
            if flags & COMPLETE == 0 {
                return None;
            }
            Some(Neighbour {
                address: f[0].parse().ok()?,
                mac: f[3].parse().ok()?,
                device: f[5].to_string(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complete_entries_only() {
        let text = "IP address       HW type     Flags       HW address            Mask     Device\n\
                    10.231.5.2       0x1         0x2         aa:bb:cc:dd:ee:02     *        fu5h\n\
                    10.231.5.3       0x1         0x0         00:00:00:00:00:00     *        fu5h\n\
                    192.168.1.20     0x1         0x6         00:11:32:aa:bb:cc     *        eth0\n\
                    garbage\n";
        let n = parse(text);
        assert_eq!(n.len(), 2);
        assert_eq!(n[0].address, Ipv4Addr::new(10, 231, 5, 2));
        assert_eq!(n[0].mac.to_string(), "aa:bb:cc:dd:ee:02");
        assert_eq!(n[0].device, "fu5h");
        assert_eq!(n[1].device, "eth0");
    }
}
