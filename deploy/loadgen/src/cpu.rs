//! Where the machine's CPU went during the end-to-end phase, by process group, read from
//! /proc: on a machine that runs the whole stack, this names the limit. Processes that ended
//! within the phase are missed; PostgreSQL backends are grouped by the database they serve.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

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

/// The load generator's own group: the clients of a deployment run elsewhere.
const LOADGEN_GROUP: &str = "loadgen";

/// Every process no other group names (kernel threads, shells, tools).
const OTHER_GROUP: &str = "other";

/// The stack's CPU milliseconds per order: the order system's groups, neither the load
/// generator's nor the other processes'.
pub fn stack_ms_per_order(uses: &[CpuUse]) -> f64 {
    uses.iter()
        .filter(|used| used.group != LOADGEN_GROUP && used.group != OTHER_GROUP)
        .map(|used| used.ms_per_order)
        .sum()
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

/// A window in which a group kept at least this many cores busy counts as a burst.
const BURST_CORES: f64 = 0.5;

/// Each group's CPU in consecutive short windows, taken on a thread of its own: the averages
/// of [`CpuSnapshot`] hide the stalls that make the tails, a process taking most of a core
/// for a tenth of a second.
pub struct WindowSampler {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Vec<(Instant, BTreeMap<String, u64>)>>,
}

/// One group's CPU over the windows of a measurement.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CpuWindows {
    pub group: String,
    pub windows: usize,
    /// Cores the group kept busy in its median window, in the window at the 99th percentile
    /// and in its busiest.
    pub median_cores: f64,
    pub p99_cores: f64,
    pub peak_cores: f64,
    /// Windows in which it kept at least [`BURST_CORES`] busy.
    pub bursts: usize,
}

impl WindowSampler {
    pub fn start(window: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut samples = vec![(Instant::now(), ticks_by_group())];
            while !stopped.load(Ordering::Relaxed) {
                std::thread::sleep(window);
                samples.push((Instant::now(), ticks_by_group()));
            }
            samples
        });
        Self { stop, thread }
    }

    /// Each group's windows since [`WindowSampler::start`], busiest peak first.
    pub fn finish(self) -> Vec<CpuWindows> {
        self.stop.store(true, Ordering::Relaxed);
        let samples = self.thread.join().unwrap_or_default();
        let Some(first) = samples.first().map(|(at, _)| *at) else {
            return Vec::new();
        };
        let timed: Vec<(f64, BTreeMap<String, u64>)> = samples
            .into_iter()
            .map(|(at, ticks)| (at.duration_since(first).as_secs_f64(), ticks))
            .collect();
        windows_by_group(&timed)
    }
}

/// Each group's cores busy in each window between consecutive `samples` (seconds since the
/// first, ticks by group), summarised; a group missing from a sample (its processes gone) has
/// no window there.
fn windows_by_group(samples: &[(f64, BTreeMap<String, u64>)]) -> Vec<CpuWindows> {
    let mut cores: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for pair in samples.windows(2) {
        let ((start, before), (end, after)) = (&pair[0], &pair[1]);
        let seconds = end - start;
        if seconds <= 0.0 {
            continue;
        }
        for (group, ticks) in after {
            if let Some(earlier) = before.get(group) {
                let busy = ticks.saturating_sub(*earlier) as f64 / TICKS_PER_SEC / seconds;
                cores.entry(group).or_default().push(busy);
            }
        }
    }
    let mut groups: Vec<CpuWindows> = cores
        .into_iter()
        .map(|(group, mut busy)| {
            busy.sort_by(f64::total_cmp);
            let at = |share: f64| busy[((busy.len() - 1) as f64 * share).round() as usize];
            CpuWindows {
                group: group.to_owned(),
                windows: busy.len(),
                median_cores: at(0.5),
                p99_cores: at(0.99),
                peak_cores: at(1.0),
                bursts: busy.iter().filter(|&&cores| cores >= BURST_CORES).count(),
            }
        })
        .collect();
    groups.sort_by(|a, b| b.peak_cores.total_cmp(&a.peak_cores));
    groups
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
        | LOADGEN_GROUP => name.to_owned(),
        _ if name.starts_with("postgres") => postgres_group(cmdline),
        // The trace viewer, installed as jaeger-<version> (deploy/scripts/infra.sh).
        _ if name.starts_with("jaeger") => "jaeger".to_owned(),
        _ => OTHER_GROUP.to_owned(),
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
    fn the_stack_is_the_order_system_s_groups() {
        let uses = [
            used("secantusd-rs", 0.25),
            used("loadgen", 0.5),
            used("nginx", 0.125),
            used("other", 0.0625),
        ];
        assert_eq!(stack_ms_per_order(&uses), 0.375);
        assert_eq!(stack_ms_per_order(&[]), 0.0);
    }

    #[test]
    fn windows_give_each_group_s_cores_and_its_bursts() {
        let sample = |at: f64, jaeger: u64, nginx: Option<u64>| {
            let mut ticks = BTreeMap::from([("jaeger".to_owned(), jaeger)]);
            if let Some(nginx) = nginx {
                ticks.insert("nginx".to_owned(), nginx);
            }
            (at, ticks)
        };
        // Four windows of 0.1 s: Jaeger 1, 1, 8 and 2 ticks (0.1, 0.1, 0.8, 0.2 cores). nginx is
        // in two samples that are not consecutive: no window of its own.
        let samples = [
            sample(0.0, 100, None),
            sample(0.1, 101, None),
            sample(0.2, 102, Some(50)),
            sample(0.3, 110, None),
            sample(0.4, 112, Some(53)),
        ];

        let groups = windows_by_group(&samples);

        let round = |cores: f64| (cores * 100.0).round() / 100.0;
        let summary: Vec<(&str, usize, f64, f64, usize)> = groups
            .iter()
            .map(|g| {
                (
                    g.group.as_str(),
                    g.windows,
                    round(g.median_cores),
                    round(g.peak_cores),
                    g.bursts,
                )
            })
            .collect();
        assert_eq!(summary, [("jaeger", 4, 0.2, 0.8, 1)]);
        assert!(windows_by_group(&samples[..1]).is_empty());
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
