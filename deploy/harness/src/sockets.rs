//! The TCP sockets listening on this machine and the programs that hold them, and the
//! programs' command lines, read from `/proc` (no `ss`, `netstat` or `ps` needed).

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

/// One listening TCP socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListeningSocket {
    pub address: IpAddr,
    pub port: u16,
    /// The short name (`comm`) of a process holding it; empty when no visible process does.
    pub program: String,
}

const TCP_LISTEN: &str = "0A";

/// Every listening TCP socket, IPv4 and IPv6.
pub fn listening_sockets() -> Vec<ListeningSocket> {
    let owners = socket_owners();
    listening()
        .map(|(address, port, inode)| ListeningSocket {
            address,
            port,
            program: owners.get(&inode).cloned().unwrap_or_default(),
        })
        .collect()
}

/// The ports of every listening TCP socket, IPv4 and IPv6, without looking for their owners.
pub fn listening_ports() -> HashSet<u16> {
    listening().map(|(_, port, _)| port).collect()
}

/// `(address, port, inode)` of each listening socket in the kernel's IPv4 and IPv6 tables.
fn listening() -> impl Iterator<Item = (IpAddr, u16, u64)> {
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .into_iter()
        .filter_map(|table| std::fs::read_to_string(table).ok())
        .flat_map(|table| parse_listening(&table))
}

/// `(address, port, inode)` of each listening socket in a `/proc/net/tcp{,6}` table.
fn parse_listening(table: &str) -> Vec<(IpAddr, u16, u64)> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.get(3) != Some(&TCP_LISTEN) {
                return None;
            }
            let (address, port) = fields.get(1)?.split_once(':')?;
            Some((
                parse_address(address)?,
                u16::from_str_radix(port, 16).ok()?,
                fields.get(9)?.parse().ok()?,
            ))
        })
        .collect()
}

/// The kernel prints addresses as 32-bit words in host byte order (little-endian here).
fn parse_address(hex: &str) -> Option<IpAddr> {
    let words = (0..hex.len() / 8)
        .map(|i| u32::from_str_radix(&hex[8 * i..8 * i + 8], 16).map(u32::swap_bytes))
        .collect::<Result<Vec<_>, _>>()
        .ok()?;
    match words.as_slice() {
        [word] => Some(IpAddr::V4(Ipv4Addr::from(*word))),
        [a, b, c, d] => {
            let mut octets = [0_u8; 16];
            for (chunk, word) in octets.chunks_mut(4).zip([a, b, c, d]) {
                chunk.copy_from_slice(&word.to_be_bytes());
            }
            Some(IpAddr::V6(Ipv6Addr::from(octets)))
        }
        _ => None,
    }
}

/// Socket inode → the name of a process that holds it.
fn socket_owners() -> HashMap<u64, String> {
    let mut owners = HashMap::new();
    let Ok(processes) = std::fs::read_dir("/proc") else {
        return owners;
    };
    for process in processes.filter_map(Result::ok) {
        let dir = process.path();
        let Ok(fds) = std::fs::read_dir(dir.join("fd")) else {
            continue;
        };
        let program = program_name(&dir);
        for fd in fds.filter_map(Result::ok) {
            let Ok(target) = std::fs::read_link(fd.path()) else {
                continue;
            };
            let inode = target
                .to_str()
                .and_then(|text| text.strip_prefix("socket:["))
                .and_then(|text| text.strip_suffix(']'))
                .and_then(|inode| inode.parse().ok());
            if let Some(inode) = inode {
                owners.insert(inode, program.clone());
            }
        }
    }
    owners
}

/// Every process as `ps` shows it to every user of the machine: its short name (`comm`) and
/// its command line, arguments joined by spaces.
pub fn command_lines() -> Vec<(String, String)> {
    let Ok(processes) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    processes
        .filter_map(Result::ok)
        .filter_map(|process| {
            let dir = process.path();
            let line = std::fs::read(dir.join("cmdline")).ok()?;
            let line = String::from_utf8_lossy(&line).replace('\0', " ");
            Some((program_name(&dir), line))
        })
        .collect()
}

fn program_name(process_dir: &Path) -> String {
    std::fs::read_to_string(process_dir.join("comm"))
        .map(|name| name.trim_end().to_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listening_socket_is_read_with_its_address_port_and_inode() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1538 00000000:0000 0A 00000000:00000000 00:00000000 00000000   104        0 31597 1 0 100 0 0 10 0
   1: 00000000:3D3E 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 31602 1 0 100 0 0 10 0
   2: 0100007F:1538 0100007F:D2F0 01 00000000:00000000 00:00000000 00000000   104        0 40001 1 0 20 4 30 10 -1
";
        assert_eq!(
            parse_listening(table),
            vec![
                (IpAddr::V4(Ipv4Addr::LOCALHOST), 5432, 31597),
                (IpAddr::V4(Ipv4Addr::UNSPECIFIED), 15678, 31602),
            ]
        );
    }

    #[test]
    fn a_listening_socket_of_this_machine_is_found() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a listener");
        let port = listener.local_addr().expect("its address").port();
        assert!(listening_ports().contains(&port));
    }

    #[test]
    fn ipv6_addresses_are_read_word_by_word() {
        assert_eq!(
            parse_address("00000000000000000000000001000000"),
            Some(IpAddr::V6(Ipv6Addr::LOCALHOST))
        );
        assert_eq!(
            parse_address("00000000000000000000000000000000"),
            Some(IpAddr::V6(Ipv6Addr::UNSPECIFIED))
        );
    }
}
