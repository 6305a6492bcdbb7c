//! Where the machine's CPU went during the end-to-end phase, by process group, read from
//! /proc: on a machine that runs the whole stack, this names the limit. Processes that ended
//! within the phase are missed; PostgreSQL backends are grouped by the database they serve.

use std::collections::BTreeMap;
use std::time::Instant;

use serde::Serialize;

/// Linux reports process times in USER_HZ, 100 per second on every architecture it supports.
const TICKS_PER_SEC: f64 = 100.0;

/// The process groups of the read store, whichever MongoDB-wire server runs: secantusd-rs,
/// mongod, or FerretDB with the PostgreSQL backends that serve its database.
const READ_STORE_GROUPS: [&str; 4] = ["secantusd-rs", "mongod", "ferretdb", "postgres (ferretdb)"];

/// The read store's CPU milliseconds per order: the sum over its groups, if any of them ran.
pub fn read_store_ms_per_order(uses: &[CpuUse]) -> Option<f64> {
    let store: Vec<f64> = uses
        .iter()
        .filter(|used| READ_STORE_GROUPS.contains(&used.group.as_str()))
        .map(|used| used.ms_per_order)
        .collect();
    (!store.is_empty()).then(|| store.iter().sum())
}

/// CPU time each process group had used at one moment.
pub struct CpuSnapshot {
    taken: Instant,
    ticks: BTreeMap<String, u64>,
}

/// One group's share of the phase.
#[derive(Debug, Clone, Serialize)]
pub struct CpuUse {
    pub group: String,
    pub cpu_secs: f64,
    /// Of all the CPU time the groups used.
    pub share: f64,
    /// CPU milliseconds per order that was accepted and became readable.
    pub ms_per_order: f64,
}

impl CpuSnapshot {
    pub fn take() -> Self {
        Self {
            taken: Instant::now(),
            ticks: ticks_by_group(),
        }
    }

    /// What each group used since this snapshot, most first, and the cores busy on average.
    pub fn used_since(&self, orders: u64) -> (Vec<CpuUse>, f64) {
        let wall_secs = self.taken.elapsed().as_secs_f64();
        let used: Vec<(String, f64)> = ticks_by_group()
            .into_iter()
            .map(|(group, ticks)| {
                let before = self.ticks.get(&group).copied().unwrap_or(0);
                (group, ticks.saturating_sub(before) as f64 / TICKS_PER_SEC)
            })
            .filter(|(_, secs)| *secs > 0.0)
            .collect();
        let total: f64 = used.iter().map(|(_, secs)| secs).sum();
        let mut uses: Vec<CpuUse> = used
            .into_iter()
            .map(|(group, cpu_secs)| CpuUse {
                group,
                cpu_secs,
                share: cpu_secs / total,
                ms_per_order: 1000.0 * cpu_secs / orders.max(1) as f64,
            })
            .collect();
        uses.sort_by(|a, b| b.cpu_secs.total_cmp(&a.cpu_secs));
        (uses, total / wall_secs.max(f64::EPSILON))
    }
}

fn ticks_by_group() -> BTreeMap<String, u64> {
    let mut groups = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return groups;
    };
    for entry in entries.filter_map(Result::ok) {
        if entry
            .file_name()
            .to_str()
            .is_none_or(|name| name.parse::<u32>().is_err())
        {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let Some((name, ticks)) = parse_stat(&stat) else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        *groups.entry(group_of(name, &cmdline)).or_insert(0) += ticks;
    }
    groups
}

/// The process name and its user plus system time from a /proc/<pid>/stat line. The name is
/// in parentheses and may itself contain spaces or parentheses.
fn parse_stat(stat: &str) -> Option<(&str, u64)> {
    let name = stat.get(stat.find('(')? + 1..stat.rfind(')')?)?;
    let fields: Vec<&str> = stat.get(stat.rfind(')')? + 2..)?.split(' ').collect();
    // After the name: state is field 0, utime field 11 and stime field 12.
    let user: u64 = fields.get(11)?.parse().ok()?;
    let system: u64 = fields.get(12)?.parse().ok()?;
    Some((name, user + system))
}

fn group_of(name: &str, cmdline: &[u8]) -> String {
    match name {
        "beam.smp" | "erl_child_setup" | "epmd" | "inet_gethost" => "rabbitmq".to_owned(),
        "command-service" | "query-service" | "secantusd-rs" | "ferretdb" | "mongod" | "nginx"
        | "loadgen" => name.to_owned(),
        _ if name.starts_with("postgres") => postgres_group(cmdline),
        // The trace viewer, installed as jaeger-<version> (deploy/scripts/infra.sh).
        _ if name.starts_with("jaeger") => "jaeger".to_owned(),
        _ => "other".to_owned(),
    }
}

/// A backend's title reads `postgres: [cluster: ]user database host state`; anything else is
/// the server's own work (checkpointer, WAL writer, …).
fn postgres_group(cmdline: &[u8]) -> String {
    let title = String::from_utf8_lossy(cmdline).replace('\0', " ");
    let words: Vec<&str> = title
        .split_whitespace()
        .skip(1)
        .skip_while(|word| word.ends_with(':'))
        .collect();
    match words.as_slice() {
        [_user, database, host, ..] if host.contains('(') || *host == "[local]" => {
            format!("postgres ({database})")
        }
        _ => "postgres (server)".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn used(group: &str, ms_per_order: f64) -> CpuUse {
        CpuUse {
            group: group.to_owned(),
            cpu_secs: 1.0,
            share: 0.1,
            ms_per_order,
        }
    }

    #[test]
    fn the_read_store_is_the_sum_of_its_groups_whichever_server_runs() {
        let ferretdb = [
            used("ferretdb", 0.25),
            used("postgres (ferretdb)", 0.5),
            used("postgres (orders)", 0.125),
        ];
        assert_eq!(read_store_ms_per_order(&ferretdb), Some(0.75));
        let secantusd = [used("secantusd-rs", 0.25), used("query-service", 0.5)];
        assert_eq!(read_store_ms_per_order(&secantusd), Some(0.25));
        assert_eq!(read_store_ms_per_order(&[used("nginx", 0.5)]), None);
    }

    #[test]
    fn stat_lines_give_the_name_and_both_times() {
        let stat = "42 (tokio (worker)) S 1 42 42 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 9 0";
        assert_eq!(parse_stat(stat), Some(("tokio (worker)", 325)));
        assert_eq!(parse_stat("42 (short) S 1"), None);
    }

    #[test]
    fn postgres_backends_are_grouped_by_database() {
        let debian = b"postgres: 15/main: cqrs ferretdb 127.0.0.1(40728) idle\0";
        let docker = b"postgres: cqrs orders 172.18.0.5(51234) idle\0";
        let local = b"postgres: 15/main: postgres orders [local] idle\0";
        let server = b"postgres: 15/main: checkpointer \0";
        assert_eq!(group_of("postgres", debian), "postgres (ferretdb)");
        assert_eq!(group_of("postgres", docker), "postgres (orders)");
        assert_eq!(group_of("postgres", local), "postgres (orders)");
        assert_eq!(group_of("postgres", server), "postgres (server)");
        assert_eq!(group_of("beam.smp", b""), "rabbitmq");
        assert_eq!(group_of("secantusd-rs", b""), "secantusd-rs");
        assert_eq!(group_of("jaeger-v1.75.0", b""), "jaeger");
        assert_eq!(group_of("kworker/0:1", b""), "other");
    }
}
