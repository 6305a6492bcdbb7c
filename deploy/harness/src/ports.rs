//! Ports for the servers the tests start.
//!
//! A port found by binding port 0 and letting it go comes from the kernel's ephemeral range,
//! which every outgoing connection on the machine draws from too: between the test letting it
//! go and its server binding it, or while that server is stopped for a restart, a client
//! socket may take it (a RabbitMQ node once failed to start with `eaddrinuse` that way). So a
//! port is handed out only from outside the ephemeral range (read from the kernel), and only
//! while no other holder has it: each one handed out is held by an exclusive lock on a file
//! named after it, shared by every test process on the machine, for as long as its
//! [`ReservedPort`] lives. The server that owns a port keeps the reservation across its
//! restarts.
//!
//! Whether something else listens on a port is read from the kernel's socket tables, never
//! found by binding the port: a child that another thread forks while such a probe is bound
//! holds a copy of its socket until the child execs, and the port's owner then finds it taken
//! (a lookout once failed to bind so, while a parallel test spawned a process).

use std::fs::{File, OpenOptions};
use std::hash::{BuildHasher, Hasher};
use std::net::TcpListener;
use std::ops::RangeInclusive;
use std::path::PathBuf;

/// Where the local stack (`deploy/up`) and the system's RabbitMQ command-line tools listen:
/// never handed out, even while nothing listens there.
const FIXED_PORTS: [RangeInclusive<u16>; 5] = [
    15672..=15672, // RabbitMQ management
    16685..=16686, // Jaeger's query API (gRPC, HTTP)
    25672..=25672, // RabbitMQ distribution
    27017..=27017, // the MongoDB-wire server
    35672..=35682, // rabbitmqctl's own distribution ports
];

/// Below this, ports are left to the well-known services of the machine.
const LOWEST: u16 = 10_000;

/// A port no one else is handed while this lives.
#[derive(Debug)]
pub struct ReservedPort {
    number: u16,
    _lock: File,
}

impl ReservedPort {
    /// Reserves a port outside the kernel's ephemeral range that nothing listens on now.
    pub fn new() -> Self {
        let candidates = candidates(&ephemeral_range());
        let start = random_index(candidates.len());
        let lock_dir = lock_dir();
        let listened_on = crate::sockets::listening_ports();
        candidates[start..]
            .iter()
            .chain(&candidates[..start])
            // A port something else listens on (another program, or a server of an earlier
            // test process still going down) is passed over.
            .filter(|number| !listened_on.contains(number))
            .find_map(|&number| Self::try_reserve(&lock_dir, number))
            .expect("a free port outside the ephemeral range")
    }

    fn try_reserve(lock_dir: &std::path::Path, number: u16) -> Option<Self> {
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(lock_dir.join(number.to_string()))
            .expect("open a port's lock file");
        lock.try_lock().ok()?;
        Some(Self {
            number,
            _lock: lock,
        })
    }

    pub fn number(&self) -> u16 {
        self.number
    }
}

impl Default for ReservedPort {
    fn default() -> Self {
        Self::new()
    }
}

/// A listener on a port of its own that only notes whether anything connected: it stands
/// where a program's servers would be, for a test that the program contacts none of them.
pub struct Lookout {
    listener: TcpListener,
    _port: ReservedPort,
}

impl Lookout {
    pub fn new() -> Self {
        let port = ReservedPort::new();
        let listener = TcpListener::bind(("127.0.0.1", port.number())).expect("bind the lookout");
        listener
            .set_nonblocking(true)
            .expect("a non-blocking lookout");
        Self {
            listener,
            _port: port,
        }
    }

    /// A URL of `scheme` naming this listener, with a user, a password and a path.
    pub fn url(&self, scheme: &str) -> String {
        let port = self
            .listener
            .local_addr()
            .expect("the lookout's address")
            .port();
        format!("{scheme}://user:password@127.0.0.1:{port}/lookout")
    }

    /// Whether a connection arrived and waits to be accepted.
    pub fn was_contacted(&self) -> bool {
        self.listener.accept().is_ok()
    }
}

impl Default for Lookout {
    fn default() -> Self {
        Self::new()
    }
}

/// The ports the kernel gives outgoing connections (`ip_local_port_range`).
fn ephemeral_range() -> RangeInclusive<u16> {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .expect("read the kernel's ephemeral port range");
    parse_range(&text).unwrap_or_else(|| panic!("unexpected ip_local_port_range: {text:?}"))
}

fn parse_range(text: &str) -> Option<RangeInclusive<u16>> {
    let mut bounds = text.split_whitespace().map(str::parse::<u16>);
    let low = bounds.next()?.ok()?;
    let high = bounds.next()?.ok()?;
    Some(low..=high)
}

/// Every port that may be handed out, in order.
fn candidates(ephemeral: &RangeInclusive<u16>) -> Vec<u16> {
    (LOWEST..=u16::MAX)
        .filter(|port| !ephemeral.contains(port))
        .filter(|port| !FIXED_PORTS.iter().any(|fixed| fixed.contains(port)))
        .collect()
}

/// Where the lock files live: one directory for every test process of the machine, whichever
/// checkout it runs from.
fn lock_dir() -> PathBuf {
    let dir = std::env::temp_dir().join("cqrs-test-ports");
    std::fs::create_dir_all(&dir).expect("create the ports' lock directory");
    dir
}

/// Where to start looking, so that parallel tests do not all contend for the same first port.
fn random_index(len: usize) -> usize {
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    usize::try_from(random % len as u64).expect("an index below len")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_leave_out_the_ephemeral_range_and_the_fixed_ports() {
        let candidates = candidates(&(32768..=60999));
        assert_eq!(candidates.first(), Some(&10_000));
        assert_eq!(candidates.last(), Some(&u16::MAX));
        for port in [32768, 40531, 60999, 15672, 25672, 27017, 35672, 35682, 9999] {
            assert!(!candidates.contains(&port), "{port} must not be handed out");
        }
        for port in [32767, 61000, 15671, 27018] {
            assert!(candidates.contains(&port), "{port} may be handed out");
        }
    }

    #[test]
    fn the_kernel_range_is_read_as_two_numbers() {
        assert_eq!(parse_range("32768\t60999\n"), Some(32768..=60999));
        assert_eq!(parse_range("oops"), None);
    }

    #[test]
    fn a_reserved_port_is_not_handed_out_again_while_it_lives() {
        let ephemeral = ephemeral_range();
        let held: Vec<ReservedPort> = (0..200).map(|_| ReservedPort::new()).collect();
        let mut numbers: Vec<u16> = held.iter().map(ReservedPort::number).collect();
        assert!(numbers.iter().all(|port| !ephemeral.contains(port)));
        numbers.sort_unstable();
        numbers.dedup();
        assert_eq!(numbers.len(), held.len(), "a port was handed out twice");
        let first = held[0].number();
        assert!(
            ReservedPort::try_reserve(&lock_dir(), first).is_none(),
            "a held port can be reserved again"
        );
        drop(held);
        assert!(ReservedPort::try_reserve(&lock_dir(), first).is_some());
    }
}
