//! The benchmark behind `cargo run --release -p loadgen`: drives orders through the gateway
//! and compares the end-to-end rate with each component's own rate, measured in the same run
//! with the same number of clients.

mod arrivals;
mod baselines;
mod cpu;
mod end_to_end;
mod lag;
mod reads;
mod report;
mod stats;
mod write_costs;

use std::fmt::Write as _;
use std::time::Duration;

use clap::Parser;
use serde::Serialize;

pub use baselines::Baselines;
pub use cpu::CpuUse;
pub use end_to_end::{EndToEnd, Second};
pub use lag::ReadSideLag;
pub use reads::ListReads;
pub use write_costs::WriteCost;

#[derive(Debug, Clone, Parser)]
#[command(
    version,
    about = "Orders/s through the gateway, projection lag, read latency, and each component's ceiling"
)]
pub struct Options {
    /// The gateway's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub gateway: String,
    /// Clients posting at once (and clients per component baseline).
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Stop after this many orders.
    #[arg(long)]
    pub count: Option<u64>,
    /// Post for this many seconds (default 10 when no --count is given). This is the posting
    /// phase alone: the drain, the list reads and the baselines come after it (the plan
    /// printed first says how long each takes).
    #[arg(long)]
    pub duration: Option<f64>,
    /// Hold the total posting rate at this many orders/s, arriving as independent clients' orders
    /// do (a Poisson process; default: as fast as answered).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Hold the posting at this share of the maximum end-to-end rate, measured first in the
    /// same run (a posting phase as fast as answered, then its drain): 0.5 is half the
    /// maximum, as the freshness targets are stated, whatever the machine's speed that hour.
    /// The report gives the maximum's CPU per order by process group too, and the stack's
    /// CPU per order held ÷ at the maximum.
    #[arg(long, conflicts_with = "rate", value_parser = share)]
    pub rate_share: Option<f64>,
    /// Seconds of posting at the measured rate just before the measurement, then a drain,
    /// neither of them measured: without it a run at `--rate` starts on an idle machine, and
    /// its first second's tail is a start's (cold connections, caches and schedulers).
    #[arg(long, default_value_t = 0.0)]
    pub warmup: f64,
    /// Measure the projection lag of one accepted order in this many.
    #[arg(long, default_value_t = 10)]
    pub lag_sample_every: u64,
    /// Lag probes in flight at once (0: none). Each polls `GET /orders/{id}` until the order
    /// is readable: a load on the read side that no client of a deployment makes, which the
    /// report counts per order.
    #[arg(long, default_value_t = 2)]
    pub lag_probes: usize,
    /// Seconds each component baseline runs; 0 skips them.
    #[arg(long, default_value_t = 5.0)]
    pub baseline_secs: f64,
    /// PostgreSQL URL allowed to create and drop a scratch database.
    #[arg(
        long,
        env = "POSTGRES_ADMIN_URL",
        default_value = "postgres://cqrs:cqrs@127.0.0.1:5432/postgres"
    )]
    pub postgres_admin_url: String,
    /// AMQP URL of a user allowed to declare a scratch queue (default: the local stack's
    /// administrator, whose password `deploy/up` keeps in `.stack/rabbitmq-admin-password`).
    #[arg(long, env = "AMQP_URL")]
    pub amqp_url: Option<String>,
    #[arg(long, env = "MONGODB_URI", default_value = "mongodb://127.0.0.1:27017")]
    pub mongodb_uri: String,
    /// query-service's metrics endpoint, whose `projection_lag_seconds` histogram gives the
    /// read side's own lag for every event of the run (skipped if it does not answer).
    #[arg(long, default_value = "http://127.0.0.1:9182/metrics")]
    pub query_metrics: String,
    /// command-service's metrics endpoint, whose `outbox_publish_delay_seconds` histogram gives
    /// the write side's part of the lag (skipped if it does not answer).
    #[arg(long, default_value = "http://127.0.0.1:9181/metrics")]
    pub command_metrics: String,
    /// Times of each idle list read (first pages, a deep page) after the load; 0 skips them.
    /// Of 30 reads the p99 is the slowest one; of 200, the third slowest.
    #[arg(long, default_value_t = 200)]
    pub list_reads: usize,
    /// Orders posted through the pipeline (as fast as answered) between a first measurement
    /// and the main one, so that one run gives the end-to-end rate on the read model as found
    /// and on one grown by this many orders, and their ratio; 0 skips it.
    #[arg(long, default_value_t = 0)]
    pub preload: u64,
    /// Documents per kind of write when measuring what each write costs the read store alone
    /// (CPU per document of secantusd-rs, mongod, or FerretDB and its PostgreSQL); 0 skips it.
    #[arg(long, default_value_t = 0)]
    pub write_costs: u64,
    /// Also take each process group's CPU every 100 ms of the main measurement and report, by
    /// group, its median, 99th-percentile and busiest window, and how many windows held half a
    /// core or more: the stalls that make the tails (it reads /proc ten times a second).
    #[arg(long)]
    pub cpu_windows: bool,
    /// Also time, while posting, requests on a `GET /orders/{id}`'s path that reach no store:
    /// `GET /health`, answered by the gateway, and `GET /orders/{an id that is no UUID}`,
    /// answered 400 by query-service before any read. Their tail is the part of the read's that
    /// the gateway, the service and the shared cores make (a second reader, every 20 ms).
    #[arg(long)]
    pub read_floor: bool,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,
    /// Also draw the report as an HTML page with SVG charts in this file.
    #[arg(long)]
    pub report: Option<std::path::PathBuf>,
    /// Bearer token sent with every request, for a stack with auth enabled (it needs both
    /// scopes, as `issue-token` gives by default).
    #[arg(long, env = "LOADGEN_TOKEN")]
    pub token: Option<String>,
}

/// A share of the maximum rate: above 0, at most 1.
fn share(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(share) if share > 0.0 && share <= 1.0 => Ok(share),
        _ => Err(format!("{text} is not a share above 0 and at most 1")),
    }
}

/// Resident memory of one service process at the end of the run.
#[derive(Debug, Clone, Serialize)]
pub struct ProcessMemory {
    pub name: String,
    pub pid: u32,
    pub rss_mib: f64,
}

/// The first measurement of a run with `--preload`, on the read model as found.
#[derive(Debug, Clone, Serialize)]
pub struct BeforePreload {
    pub end_to_end: EndToEnd,
    /// CPU time by process group while posting and draining, most first.
    pub cpu: Vec<CpuUse>,
    /// Orders then posted to grow the read model, and how long that took until all were
    /// readable.
    pub preloaded: u64,
    pub preload_secs: f64,
}

/// With `--rate-share`: the maximum measured first, and the rate the main measurement held.
#[derive(Debug, Clone, Serialize)]
pub struct HeldRate {
    pub maximum_per_sec: f64,
    /// CPU time by process group while the maximum was measured, most first.
    pub maximum_cpu: Vec<CpuUse>,
    pub share: f64,
    pub rate: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// With `--preload`: the measurement before it; `end_to_end` is then the one after.
    pub before_preload: Option<BeforePreload>,
    /// With `--rate-share`: the maximum the main measurement's rate was drawn from.
    pub held_rate: Option<HeldRate>,
    pub end_to_end: EndToEnd,
    /// From query-service's histogram; `None` if its metrics endpoint did not answer.
    pub read_side_lag: Option<ReadSideLag>,
    pub list_reads: Option<ListReads>,
    pub baselines: Option<Baselines>,
    /// What each kind of write costs the read store alone.
    pub write_costs: Vec<WriteCost>,
    /// End-to-end orders/s divided by the slowest component's rate.
    pub ratio_to_slowest: Option<f64>,
    pub slowest_component: Option<String>,
    pub memory: Vec<ProcessMemory>,
    /// CPU time by process group while posting and draining, most first.
    pub cpu: Vec<CpuUse>,
    /// Cores those groups kept busy on average over the same time.
    pub cores_busy: f64,
    /// With `--cpu-windows`: each group's CPU in the 100 ms windows while posting and
    /// draining, busiest first.
    pub cpu_windows: Vec<cpu::CpuWindows>,
}

impl Options {
    /// What the run will do, phase by phase, printed before it starts (after [`run`] gave
    /// `duration` its default).
    fn plan(&self) -> String {
        let mut plan = String::from("plan:\n");
        let mut step = 0;
        let mut line = |text: String| {
            step += 1;
            let _ = writeln!(plan, "  {step}. {text}");
        };
        let posting = match (self.count, self.duration) {
            (Some(count), _) => format!("{count} orders"),
            (None, duration) => format!("{} s", duration.unwrap_or_default()),
        };
        let fixed_rate = self.rate.map_or_else(
            || "as fast as answered".to_owned(),
            |rate| format!("at {rate} orders/s"),
        );
        let rate = match self.rate_share {
            Some(share) => format!("at {share} of the maximum measured just before"),
            None => fixed_rate.clone(),
        };
        if self.preload > 0 {
            line(format!(
                "post for {posting} ({fixed_rate}) on the read model as found, then drain"
            ));
            line(format!(
                "preload {} orders through the pipeline, until all are readable",
                self.preload
            ));
        }
        if self.rate_share.is_some() {
            line(format!(
                "the maximum: post for {posting} as fast as answered, then drain"
            ));
        }
        if self.warmup > 0.0 {
            line(format!(
                "warm-up: post for {} s ({rate}), then drain; not measured",
                self.warmup
            ));
        }
        line(format!(
            "post for {posting} through {} with {} clients ({rate}); every {}th order's lag is \
             probed, {} at a time",
            self.gateway, self.concurrency, self.lag_sample_every, self.lag_probes
        ));
        line(
            "drain: wait until every accepted order is readable (not part of the posting time)"
                .to_owned(),
        );
        if self.list_reads > 0 {
            line(format!(
                "idle list reads: {} of each page read",
                self.list_reads
            ));
        }
        if self.baseline_secs > 0.0 {
            line(format!(
                "baselines: PostgreSQL, RabbitMQ and the MongoDB-wire server each alone, {} \
                 clients, {} s each ({} s; --baseline-secs 0 skips them)",
                self.concurrency,
                self.baseline_secs,
                3.0 * self.baseline_secs
            ));
        }
        if self.write_costs > 0 {
            line(format!(
                "write costs: {} documents of each kind of write to the read store",
                self.write_costs
            ));
        }
        plan
    }
}

/// A warning when the machine was busy before the run (`/proc/loadavg`'s one-minute load
/// above half of `cores`): the numbers would then be lower and noisier than the stack's own.
fn busy_machine_warning(loadavg: &str, cores: usize) -> Option<String> {
    let load: f64 = loadavg.split_whitespace().next()?.parse().ok()?;
    (load > 0.5 * cores as f64).then(|| {
        format!(
            "warning: the machine was not idle before the run (load average {load:.2} over the \
             last minute on {cores} cores): other work competes with the stack, so expect lower \
             and noisier numbers"
        )
    })
}

/// The local stack's broker as its administrator, whose password `deploy/up` made.
fn local_stack_amqp_url() -> anyhow::Result<String> {
    let state_dir = std::env::var_os("CQRS_STATE_DIR").map_or_else(
        || std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.stack"),
        std::path::PathBuf::from,
    );
    let file = state_dir.join("rabbitmq-admin-password");
    let password = std::fs::read_to_string(&file).map_err(|error| {
        anyhow::anyhow!(
            "no --amqp-url (AMQP_URL) given and the local stack's broker password is not in {}: {error}",
            file.display()
        )
    })?;
    Ok(format!(
        "amqp://cqrs:{}@127.0.0.1:5672/%2f",
        password.trim()
    ))
}

/// Runs the end-to-end load, then the baselines, and returns the report.
pub async fn run(mut options: Options) -> anyhow::Result<Report> {
    if options.count.is_none() && options.duration.is_none() {
        options.duration = Some(10.0);
    }
    anyhow::ensure!(options.concurrency > 0, "--concurrency must be at least 1");
    anyhow::ensure!(
        options.lag_sample_every > 0,
        "--lag-sample-every must be at least 1"
    );
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(token) = &options.token {
        let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| anyhow::anyhow!("--token is not a valid header value"))?;
        value.set_sensitive(true);
        headers.insert(reqwest::header::AUTHORIZATION, value);
    }
    let client = reqwest::Client::builder()
        .default_headers(headers)
        .pool_max_idle_per_host(options.concurrency + 4)
        .timeout(Duration::from_secs(30))
        .build()?;
    eprint!("{}", options.plan());
    if let Some(warning) = busy_machine_warning(
        &std::fs::read_to_string("/proc/loadavg").unwrap_or_default(),
        std::thread::available_parallelism().map_or(1, usize::from),
    ) {
        eprintln!("{warning}");
    }
    let before_preload = if options.preload > 0 {
        let (end_to_end, cpu) = measured(&options, &client).await;
        eprintln!(
            "before preloading: {:.0} orders/s end to end",
            end_to_end.end_to_end_per_sec
        );
        let (preloaded, preload_secs) = preload(&options, &client).await;
        Some(BeforePreload {
            end_to_end,
            cpu,
            preloaded,
            preload_secs,
        })
    } else {
        None
    };
    let held_rate = match options.rate_share {
        Some(share) => {
            let (maximum, maximum_cpu) = measured(
                &Options {
                    rate: None,
                    ..options.clone()
                },
                &client,
            )
            .await;
            let maximum = maximum.end_to_end_per_sec;
            let rate = maximum * share;
            eprintln!("the maximum: {maximum:.0} orders/s end to end; holding {rate:.0}");
            options.rate = Some(rate);
            Some(HeldRate {
                maximum_per_sec: maximum,
                maximum_cpu,
                share,
                rate,
            })
        }
        None => None,
    };
    if options.warmup > 0.0 {
        eprintln!("warm-up: {} s, not measured", options.warmup);
        let warmup = Options {
            count: None,
            duration: Some(options.warmup),
            ..options.clone()
        };
        end_to_end::run(&warmup, &client).await;
    }
    let query_before = lag::scrape(&client, &options.query_metrics).await;
    let command_before = lag::scrape(&client, &options.command_metrics).await;
    let cpu_before = cpu::CpuSnapshot::take();
    let windows = options
        .cpu_windows
        .then(|| cpu::WindowSampler::start(CPU_WINDOW));
    let end_to_end = end_to_end::run(&options, &client).await;
    let (cpu, cores_busy) = cpu_before.used_since(end_to_end.accepted);
    let cpu_windows = windows.map(cpu::WindowSampler::finish).unwrap_or_default();
    let query_after = lag::scrape(&client, &options.query_metrics).await;
    let command_after = lag::scrape(&client, &options.command_metrics).await;
    let read_side_lag = match (&query_before, &query_after) {
        (Some(before), Some(after)) => {
            let over_run = |before: &str, after: &str, metric: &str| {
                lag::Buckets::parse(after, metric).since(&lag::Buckets::parse(before, metric))
            };
            let mut lag = ReadSideLag::of(&over_run(before, after, lag::LAG));
            for (step, metric, on_command_side) in lag::STEPS {
                let pages = if on_command_side {
                    (&command_before, &command_after)
                } else {
                    (&query_before, &query_after)
                };
                if let (Some(before), Some(after)) = pages {
                    lag.steps
                        .push(lag::LagStep::of(step, &over_run(before, after, metric)));
                }
            }
            Some(lag)
        }
        _ => {
            eprintln!(
                "no projection_lag_seconds from {}: the read side's lag is not reported",
                options.query_metrics
            );
            None
        }
    };
    eprintln!(
        "posted for {:.1} s; every accepted order readable {:.1} s after the last POST",
        end_to_end.posting_secs, end_to_end.drain_secs
    );
    let memory = service_memory();
    let list_reads = if options.list_reads > 0 {
        eprintln!("idle list reads: {} of each", options.list_reads);
        Some(
            reads::run(
                &client,
                &options.gateway,
                &end_to_end::customer_email(0),
                options.list_reads,
            )
            .await?,
        )
    } else {
        None
    };

    let baselines = if options.baseline_secs > 0.0 {
        let duration = Duration::from_secs_f64(options.baseline_secs);
        let clients = options.concurrency;
        eprintln!(
            "baselines: {clients} clients, {:.1} s each",
            options.baseline_secs
        );
        let timed = std::time::Instant::now();
        let postgres = baselines::postgres(&options.postgres_admin_url, clients, duration).await?;
        eprintln!(
            "  PostgreSQL alone: {postgres:.0} command transactions/s ({:.1} s)",
            timed.elapsed().as_secs_f64()
        );
        let timed = std::time::Instant::now();
        let amqp_url = match &options.amqp_url {
            Some(url) => url.clone(),
            None => local_stack_amqp_url()?,
        };
        let rabbitmq = baselines::rabbitmq(&amqp_url, clients, duration).await?;
        eprintln!(
            "  RabbitMQ alone: {rabbitmq:.0} confirmed publishes/s ({:.1} s)",
            timed.elapsed().as_secs_f64()
        );
        let timed = std::time::Instant::now();
        let mongodb = baselines::mongodb(&options.mongodb_uri, clients, duration).await?;
        eprintln!(
            "  MongoDB-wire alone: {mongodb:.0} inserts/s ({:.1} s)",
            timed.elapsed().as_secs_f64()
        );
        Some(Baselines {
            postgres_orders_per_sec: postgres,
            rabbitmq_confirmed_per_sec: rabbitmq,
            mongodb_inserts_per_sec: mongodb,
        })
    } else {
        None
    };
    let write_costs = if options.write_costs > 0 {
        eprintln!(
            "write costs: {} documents of each kind of write",
            options.write_costs
        );
        write_costs::measure(&options.mongodb_uri, options.write_costs).await?
    } else {
        Vec::new()
    };
    let slowest = baselines.as_ref().map(Baselines::slowest);
    let report = Report {
        before_preload,
        held_rate,
        ratio_to_slowest: slowest.map(|(_, rate)| end_to_end.end_to_end_per_sec / rate),
        slowest_component: slowest.map(|(name, _)| name.to_owned()),
        end_to_end,
        read_side_lag,
        list_reads,
        baselines,
        write_costs,
        memory,
        cpu,
        cores_busy,
        cpu_windows,
    };
    if let Some(path) = &options.report {
        report::write(&report, path)?;
    }
    if let Some(path) = &options.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)?;
    }
    Ok(report)
}

/// One end-to-end measurement and the CPU each process group used for it.
async fn measured(options: &Options, client: &reqwest::Client) -> (EndToEnd, Vec<CpuUse>) {
    let cpu_before = cpu::CpuSnapshot::take();
    let end_to_end = end_to_end::run(options, client).await;
    let (cpu, _) = cpu_before.used_since(end_to_end.accepted);
    (end_to_end, cpu)
}

/// Orders preloaded per step, after each of which progress is printed.
const PRELOAD_STEP: u64 = 10_000;

/// The window of `--cpu-windows`: short enough to see a stall of a tenth of a second, long
/// enough for /proc's 10 ms ticks.
const CPU_WINDOW: Duration = Duration::from_millis(100);

/// Posts `options.preload` orders as fast as they are answered, each step waiting until its
/// orders are readable; how many were accepted and how long it all took.
async fn preload(options: &Options, client: &reqwest::Client) -> (u64, f64) {
    let started = std::time::Instant::now();
    let mut accepted = 0;
    let mut posted = 0;
    while posted < options.preload {
        let step = PRELOAD_STEP.min(options.preload - posted);
        let step_options = Options {
            count: Some(step),
            duration: None,
            rate: None,
            lag_sample_every: u64::MAX,
            ..options.clone()
        };
        accepted += end_to_end::run(&step_options, client).await.accepted;
        posted += step;
        let secs = started.elapsed().as_secs_f64();
        eprintln!(
            "preloaded {accepted} of {} orders in {secs:.0} s ({:.0} orders/s end to end)",
            options.preload,
            accepted as f64 / secs
        );
    }
    (accepted, started.elapsed().as_secs_f64())
}

/// Every running command-service and query-service process, by scanning /proc.
fn service_memory() -> Vec<ProcessMemory> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut found: Vec<ProcessMemory> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let status = std::fs::read_to_string(entry.path().join("status")).ok()?;
            let name = status
                .lines()
                .next()?
                .strip_prefix("Name:")?
                .trim()
                .to_owned();
            if name != "command-service" && name != "query-service" {
                return None;
            }
            let kib: f64 = status
                .lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))?
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .ok()?;
            Some(ProcessMemory {
                name,
                pid,
                rss_mib: kib / 1024.0,
            })
        })
        .collect();
    found.sort_by(|a, b| a.name.cmp(&b.name).then(a.pid.cmp(&b.pid)));
    found
}

impl Report {
    /// The report as a Markdown table.
    pub fn table(&self) -> String {
        let e = &self.end_to_end;
        let mut text = String::new();
        let _ = writeln!(text, "| measure | value |\n| --- | ---: |");
        let _ = writeln!(text, "| clients | {} |", e.concurrency);
        if let Some(before) = &self.before_preload {
            let _ = writeln!(
                text,
                "| before preloading: end-to-end orders/s | {:.0} |",
                before.end_to_end.end_to_end_per_sec
            );
            for group in &before.cpu {
                let _ = writeln!(
                    text,
                    "| before preloading: CPU {} | {:.2} ms/order |",
                    group.group, group.ms_per_order
                );
            }
            let _ = writeln!(
                text,
                "| preloaded through the pipeline | {} orders in {:.0} s |",
                before.preloaded, before.preload_secs
            );
            let _ = writeln!(
                text,
                "| **end-to-end after ÷ before preloading** | **{:.0} %** |",
                100.0 * e.end_to_end_per_sec
                    / before.end_to_end.end_to_end_per_sec.max(f64::MIN_POSITIVE)
            );
        }
        if let Some(held) = &self.held_rate {
            let _ = writeln!(
                text,
                "| the maximum, measured first: end-to-end orders/s | {:.0} |",
                held.maximum_per_sec
            );
            for group in &held.maximum_cpu {
                let _ = writeln!(
                    text,
                    "| the maximum: CPU {} | {:.2} ms/order |",
                    group.group, group.ms_per_order
                );
            }
            let _ = writeln!(
                text,
                "| posting held at (share of the maximum) | {:.0} orders/s ({}) |",
                held.rate, held.share
            );
        }
        let _ = writeln!(
            text,
            "| orders accepted / failed | {} / {} |",
            e.accepted, e.failed
        );
        let _ = writeln!(
            text,
            "| accepted orders/s (while posting) | {:.0} |",
            e.accepted_per_sec
        );
        let _ = writeln!(
            text,
            "| drain after the last POST | {:.2} s |",
            e.drain_secs
        );
        let _ = writeln!(
            text,
            "| **end-to-end orders/s** (accepted and readable) | **{:.0}** |",
            e.end_to_end_per_sec
        );
        let row = |text: &mut String, name: &str, s: &stats::Summary| {
            let _ = writeln!(
                text,
                "| {name} p50 / p90 / p99 / max (ms) | {:.1} / {:.1} / {:.1} / {:.1} (n={}) |",
                s.p50_ms, s.p90_ms, s.p99_ms, s.max_ms, s.count
            );
        };
        row(&mut text, "POST latency", &e.post_latency);
        row(&mut text, "projection lag", &e.projection_lag);
        let _ = writeln!(
            text,
            "| lag probes' GET /orders/{{id}} requests (per accepted order) | {} ({:.2}) |",
            e.lag_probe_requests,
            e.lag_probe_requests as f64 / e.accepted.max(1) as f64
        );
        row(
            &mut text,
            "own-write read (POST's answer → GET with its token answered)",
            &e.own_write_read,
        );
        if e.own_write_reads_failed > 0 {
            let _ = writeln!(
                text,
                "| own-write reads not answered 200 | {} |",
                e.own_write_reads_failed
            );
        }
        if let Some(lag) = &self.read_side_lag {
            let ms = |value: Option<f64>| {
                value.map_or_else(|| "> 16 s".to_owned(), |v| format!("{v:.1}"))
            };
            let mut quantiles = |name: &str, p50: Option<f64>, p99: Option<f64>, n: u64| {
                let _ = writeln!(
                    text,
                    "| {name}, p50 / p99 (ms) | {} / {} (n={n}) |",
                    ms(p50),
                    ms(p99)
                );
            };
            quantiles(
                "projection lag, read side's histogram",
                lag.p50_ms,
                lag.p99_ms,
                lag.events,
            );
            for step in &lag.steps {
                quantiles(
                    &format!("lag step: {}", step.step),
                    step.p50_ms,
                    step.p99_ms,
                    step.observations,
                );
            }
        }
        row(&mut text, "GET /orders/{id}", &e.get_by_id_latency);
        row(&mut text, "GET /orders?email=", &e.get_by_email_latency);
        if let Some(floor) = &e.read_floor {
            row(&mut text, "GET /health (the gateway alone)", &floor.gateway);
            row(
                &mut text,
                "GET /orders/{not an id} (query-service, no store)",
                &floor.service,
            );
        }
        for (name, summary) in self.list_reads.iter().flat_map(ListReads::rows) {
            row(&mut text, &name, &summary);
        }
        if let Some(b) = &self.baselines {
            let _ = writeln!(
                text,
                "| PostgreSQL alone: command transactions/s | {:.0} |",
                b.postgres_orders_per_sec
            );
            let _ = writeln!(
                text,
                "| RabbitMQ alone: persistent confirmed publishes/s | {:.0} |",
                b.rabbitmq_confirmed_per_sec
            );
            let _ = writeln!(
                text,
                "| MongoDB-wire alone: inserts/s | {:.0} |",
                b.mongodb_inserts_per_sec
            );
        }
        for cost in &self.write_costs {
            let _ = writeln!(
                text,
                "| MongoDB-wire alone, CPU ms per document: {} | {:.3} (n={}) |",
                cost.write, cost.cpu_ms_per_document, cost.documents
            );
        }
        if let (Some(ratio), Some(slowest)) = (self.ratio_to_slowest, &self.slowest_component) {
            let _ = writeln!(
                text,
                "| end-to-end ÷ slowest component ({slowest}) | {:.0} % |",
                ratio * 100.0
            );
        }
        for process in &self.memory {
            let _ = writeln!(
                text,
                "| RSS {} (pid {}) | {:.1} MiB |",
                process.name, process.pid, process.rss_mib
            );
        }
        if !self.cpu.is_empty() {
            let _ = writeln!(
                text,
                "| cores busy while posting and draining | {:.2} |",
                self.cores_busy
            );
        }
        for group in &self.cpu {
            let _ = writeln!(
                text,
                "| CPU {} | {:.2} s, {:.0} %, {:.2} ms/order |",
                group.group,
                group.cpu_secs,
                group.share * 100.0,
                group.ms_per_order
            );
        }
        if let Some(store) = cpu::read_store_ms_per_order(&self.cpu) {
            let _ = writeln!(
                text,
                "| CPU read store (its groups above) | {store:.2} ms/order |"
            );
        }
        if !self.cpu.is_empty() {
            let stack = cpu::stack_ms_per_order(&self.cpu);
            let _ = writeln!(
                text,
                "| CPU the stack (its groups above but loadgen and other) | {stack:.2} ms/order |"
            );
            if let Some(held) = self
                .held_rate
                .as_ref()
                .filter(|held| !held.maximum_cpu.is_empty())
            {
                let _ = writeln!(
                    text,
                    "| … held ÷ at the maximum, per order | {:.2} |",
                    stack / cpu::stack_ms_per_order(&held.maximum_cpu).max(f64::MIN_POSITIVE)
                );
            }
        }
        for group in &self.cpu_windows {
            let _ = writeln!(
                text,
                "| CPU {} in 100 ms windows: median / p99 / busiest (cores); windows at half a core or more | {:.2} / {:.2} / {:.2}; {} of {} |",
                group.group,
                group.median_cores,
                group.p99_cores,
                group.peak_cores,
                group.bursts,
                group.windows
            );
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_names_every_phase_and_what_the_duration_covers() {
        let options = Options::parse_from(["loadgen", "--duration", "5", "--preload", "1000"]);
        let plan = options.plan();
        assert!(plan.contains("1. post for 5 s"), "{plan}");
        assert!(plan.contains("2. preload 1000 orders"), "{plan}");
        assert!(plan.contains("drain: wait until every accepted order is readable"));
        assert!(plan.contains("idle list reads: 200"), "{plan}");
        assert!(plan.contains("5 s each (15 s;"), "{plan}");
        assert!(!plan.contains("write costs"));

        let quick = Options::parse_from(["loadgen", "--count", "10", "--baseline-secs", "0"]);
        assert!(!quick.plan().contains("baselines"));
        assert!(quick.plan().contains("post for 10 orders"));
    }

    #[test]
    fn the_command_line_answers_version_and_refuses_an_unknown_argument() {
        let version = Options::try_parse_from(["loadgen", "--version"]).unwrap_err();
        assert_eq!(version.kind(), clap::error::ErrorKind::DisplayVersion);
        let unknown = Options::try_parse_from(["loadgen", "--frobnicate"]).unwrap_err();
        assert_eq!(unknown.kind(), clap::error::ErrorKind::UnknownArgument);
        assert_eq!(unknown.exit_code(), 2);
    }

    #[test]
    fn a_share_of_the_maximum_and_a_warm_up_come_first_and_a_share_excludes_a_fixed_rate() {
        let options = Options::parse_from(["loadgen", "--duration", "5", "--rate-share", "0.5"]);
        let plan = options.plan();
        assert!(
            plan.contains("1. the maximum: post for 5 s as fast as answered"),
            "{plan}"
        );
        assert!(
            plan.contains("2. post for 5 s through http://127.0.0.1:8080 with 8 clients (at 0.5 of the maximum"),
            "{plan}"
        );
        let warmed = Options::parse_from([
            "loadgen",
            "--duration",
            "5",
            "--rate",
            "100",
            "--warmup",
            "3",
        ]);
        assert!(
            warmed
                .plan()
                .contains("1. warm-up: post for 3 s (at 100 orders/s), then drain; not measured\n  2. post for 5 s"),
            "{}",
            warmed.plan()
        );
        let preloading = Options::parse_from([
            "loadgen",
            "--duration",
            "5",
            "--rate-share",
            "0.5",
            "--preload",
            "10",
        ]);
        assert!(
            preloading
                .plan()
                .contains("1. post for 5 s (as fast as answered) on the read model as found"),
            "{}",
            preloading.plan()
        );
        for refused in [
            &["--rate-share", "0"][..],
            &["--rate-share", "1.5"],
            &["--rate-share", "0.5", "--rate", "100"],
        ] {
            let arguments = ["loadgen"].iter().chain(refused).copied();
            assert!(Options::try_parse_from(arguments).is_err(), "{refused:?}");
        }
    }

    #[test]
    fn a_busy_machine_is_reported() {
        assert!(busy_machine_warning("1.70 0.90 0.40 3/200 1234\n", 2).is_some());
        assert_eq!(busy_machine_warning("0.30 0.90 0.40 3/200 1234\n", 2), None);
        assert_eq!(busy_machine_warning("", 2), None);
    }
}
