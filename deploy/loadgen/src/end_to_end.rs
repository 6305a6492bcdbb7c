//! Orders through the gateway: POST throughput and latency, projection lag, read latency under
//! the write load, and the drain time until every accepted order is readable.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{json, Value};
use tokio::task::JoinSet;

use crate::arrivals::Arrivals;
use crate::stats::{Latencies, Summary};
use crate::Options;

const CUSTOMERS: usize = 1000;

/// The email of the load's customer `n`, of [`CUSTOMERS`].
pub fn customer_email(n: usize) -> String {
    format!("bench{n}@loadgen.example")
}
const DRAIN_DEADLINE: Duration = Duration::from_secs(120);
/// Own-write reads in flight at once: one request each, waiting in the query service.
const MAX_OWN_WRITE_READS: usize = 16;
const READ_PACE: Duration = Duration::from_millis(20);

#[derive(Debug, Clone, Serialize)]
pub struct EndToEnd {
    pub concurrency: usize,
    pub sent: u64,
    pub accepted: u64,
    pub failed: u64,
    pub posting_secs: f64,
    /// Accepted orders per second while posting.
    pub accepted_per_sec: f64,
    /// Seconds after the last POST until every accepted order was readable.
    pub drain_secs: f64,
    /// Accepted orders per second counting until the last one was readable: the end-to-end rate.
    pub end_to_end_per_sec: f64,
    pub post_latency: Summary,
    /// From the 202 to the order being readable through the gateway (sampled orders).
    pub projection_lag: Summary,
    /// The `GET /orders/{id}` requests the lag probes made: load on the read side that no
    /// client of a deployment makes.
    pub lag_probe_requests: u64,
    /// From the 202 to the answer of a `GET /orders/{id}` sent at once with the POST's
    /// consistency token (other sampled orders): what a client reading its own write waits.
    pub own_write_read: Summary,
    /// Own-write reads answered anything but 200 (a 503 when the wait ran out).
    pub own_write_reads_failed: u64,
    pub get_by_id_latency: Summary,
    pub get_by_email_latency: Summary,
    /// With `--read-floor`: the same reader's requests that reach no read store.
    pub read_floor: Option<ReadFloor>,
    /// Second by second while posting.
    pub timeline: Vec<Second>,
}

/// Requests on the path of a `GET /orders/{id}` that stop before its store lookup, timed by a
/// reader of their own while posting: the part of the read's tail that the gateway, the service
/// and these shared cores make, whatever the store does.
#[derive(Debug, Clone, Serialize)]
pub struct ReadFloor {
    /// `GET /health`, which the gateway answers itself.
    pub gateway: Summary,
    /// `GET /orders/{id}` with an id that is no UUID: query-service answers 400 before any
    /// read, through the same gateway location, connection pool and handler.
    pub service: Summary,
}

/// One second of the posting phase.
#[derive(Debug, Clone, Serialize)]
pub struct Second {
    /// Seconds since posting started, at the end of this one.
    pub at: u64,
    pub accepted: u64,
    pub post_latency: Summary,
    /// Both kinds of read together.
    pub get_latency: Summary,
}

#[derive(Default)]
struct Shared {
    post: Latencies,
    lag: Latencies,
    lag_probe_requests: u64,
    own_write_read: Latencies,
    own_write_reads_failed: u64,
    get_by_id: Latencies,
    get_by_email: Latencies,
    gateway_floor: Latencies,
    service_floor: Latencies,
    accepted_ids: Vec<String>,
    timeline: Timeline,
}

/// Latencies of each second, by the second a request was answered in.
#[derive(Default)]
struct Timeline {
    posts: Vec<Latencies>,
    gets: Vec<Latencies>,
}

impl Timeline {
    fn second(seconds: &mut Vec<Latencies>, at: Duration) -> &mut Latencies {
        let index = usize::try_from(at.as_secs()).unwrap_or(usize::MAX);
        if seconds.len() <= index {
            seconds.resize_with(index + 1, Latencies::default);
        }
        &mut seconds[index]
    }

    fn post(&mut self, at: Duration, latency: Duration) {
        Self::second(&mut self.posts, at).record(latency);
    }

    fn get(&mut self, at: Duration, latency: Duration) {
        Self::second(&mut self.gets, at).record(latency);
    }

    /// Every whole second of the posting phase (a last partial second would read as a drop).
    fn seconds(&self, posting: Duration) -> Vec<Second> {
        let whole = usize::try_from(posting.as_secs()).unwrap_or(usize::MAX);
        (0..whole)
            .map(|index| {
                let summary = |seconds: &[Latencies]| {
                    seconds
                        .get(index)
                        .map(Latencies::summary)
                        .unwrap_or_default()
                };
                let post_latency = summary(&self.posts);
                Second {
                    at: index as u64 + 1,
                    accepted: post_latency.count,
                    post_latency,
                    get_latency: summary(&self.gets),
                }
            })
            .collect()
    }
}

fn order(n: u64) -> Value {
    json!({
        "description": format!("benchmark order {n}"),
        "quantity": 1 + n % 9,
        "firstName": "Bench",
        "lastName": "Mark",
        "email": customer_email(n as usize % CUSTOMERS),
    })
}

pub async fn run(options: &Options, client: &reqwest::Client) -> EndToEnd {
    let shared = Arc::new(Mutex::new(Shared::default()));
    let counter = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let accepted = Arc::new(AtomicU64::new(0));
    let posting_flag = Arc::new(AtomicBool::new(true));
    let probes = Arc::new(tokio::sync::Semaphore::new(options.lag_probes));
    let own_write_reads = Arc::new(tokio::sync::Semaphore::new(MAX_OWN_WRITE_READS));
    let started = Instant::now();
    let deadline = options
        .duration
        .map(|secs| started + Duration::from_secs_f64(secs));
    let arrivals = options
        .rate
        .map(|rate| Arrivals::new(rate, options.concurrency));

    let mut workers = JoinSet::new();
    for _ in 0..options.concurrency {
        let (client, shared, counter, failed, accepted) = (
            client.clone(),
            shared.clone(),
            counter.clone(),
            failed.clone(),
            accepted.clone(),
        );
        let (probes, own_write_reads) = (probes.clone(), own_write_reads.clone());
        let url = format!("{}/orders", options.gateway);
        let gateway = options.gateway.clone();
        let (count, lag_every) = (options.count, options.lag_sample_every);
        workers.spawn(async move {
            let mut next_slot = Instant::now() + arrivals.map_or(Duration::ZERO, |a| a.next_gap());
            loop {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                if count.is_some_and(|count| n >= count)
                    || deadline.is_some_and(|d| Instant::now() >= d)
                {
                    break;
                }
                if let Some(arrivals) = arrivals {
                    tokio::time::sleep_until(next_slot.into()).await;
                    next_slot += arrivals.next_gap();
                }
                let sent = Instant::now();
                let response = client.post(&url).json(&order(n)).send().await;
                let latency = sent.elapsed();
                let body = match response {
                    Ok(response) if response.status() == 202 => response.json::<Value>().await.ok(),
                    _ => None,
                };
                let Some((id, token)) = body.and_then(|body| {
                    Some((
                        body["id"].as_str()?.to_owned(),
                        body["consistencyToken"].as_str()?.to_owned(),
                    ))
                }) else {
                    failed.fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                let accepted_at = Instant::now();
                let sequence = accepted.fetch_add(1, Ordering::Relaxed);
                {
                    let mut shared = shared.lock().unwrap_or_else(|e| e.into_inner());
                    shared.post.record(latency);
                    shared.timeline.post(accepted_at - started, latency);
                    shared.accepted_ids.push(id.clone());
                }
                // Half-way between two lag probes, an own-write read.
                if (sequence + lag_every / 2).is_multiple_of(lag_every) && lag_every > 1 {
                    if let Ok(permit) = own_write_reads.clone().try_acquire_owned() {
                        let (client, shared) = (client.clone(), shared.clone());
                        let url = format!("{gateway}/orders/{id}");
                        tokio::spawn(async move {
                            let _permit = permit;
                            let answer = client
                                .get(&url)
                                .header("X-Consistency-Token", token)
                                .send()
                                .await;
                            let read = match answer {
                                Ok(response) if response.status() == 200 => {
                                    response.bytes().await.is_ok()
                                }
                                _ => false,
                            };
                            let waited = accepted_at.elapsed();
                            let mut shared = shared.lock().unwrap_or_else(|e| e.into_inner());
                            if read {
                                shared.own_write_read.record(waited);
                            } else {
                                shared.own_write_reads_failed += 1;
                            }
                        });
                    }
                }
                let probe = sequence
                    .is_multiple_of(lag_every)
                    .then(|| probes.clone().try_acquire_owned().ok())
                    .flatten();
                if let Some(permit) = probe {
                    let (client, shared, gateway) =
                        (client.clone(), shared.clone(), gateway.clone());
                    tokio::spawn(async move {
                        let _permit = permit;
                        let (lag, requests) = time_until_readable(
                            &client,
                            &gateway,
                            &id,
                            accepted_at,
                            DRAIN_DEADLINE,
                        )
                        .await;
                        let mut shared = shared.lock().unwrap_or_else(|e| e.into_inner());
                        shared.lag_probe_requests += requests;
                        if let Some(lag) = lag {
                            shared.lag.record(lag);
                        }
                    });
                }
            }
        });
    }

    let readers = tokio::spawn(read_while_posting(
        client.clone(),
        options.gateway.clone(),
        shared.clone(),
        posting_flag.clone(),
        started,
    ));
    let floor_reader = options.read_floor.then(|| {
        tokio::spawn(read_floor_while_posting(
            client.clone(),
            options.gateway.clone(),
            shared.clone(),
            posting_flag.clone(),
        ))
    });
    let progress = tokio::spawn(report_progress(
        accepted.clone(),
        failed.clone(),
        posting_flag.clone(),
        started,
    ));
    while workers.join_next().await.is_some() {}
    let posting = started.elapsed();
    let posting_secs = posting.as_secs_f64();
    posting_flag.store(false, Ordering::Relaxed);
    let _ = readers.await;
    if let Some(floor_reader) = floor_reader {
        let _ = floor_reader.await;
    }
    let _ = progress.await;

    let last = shared
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .accepted_ids
        .last()
        .cloned();
    let drained = Instant::now();
    if let Some(last) = last {
        let _ = time_until_readable(client, &options.gateway, &last, drained, DRAIN_DEADLINE).await;
    }
    let drain_secs = drained.elapsed().as_secs_f64();
    // Lag probes still polling hold permits; each ends within DRAIN_DEADLINE.
    let _ = probes
        .acquire_many(u32::try_from(options.lag_probes).unwrap_or(u32::MAX))
        .await;
    let _ = own_write_reads
        .acquire_many(MAX_OWN_WRITE_READS as u32)
        .await;

    let shared = shared.lock().unwrap_or_else(|e| e.into_inner());
    let accepted = accepted.load(Ordering::Relaxed);
    EndToEnd {
        concurrency: options.concurrency,
        sent: accepted + failed.load(Ordering::Relaxed),
        accepted,
        failed: failed.load(Ordering::Relaxed),
        posting_secs,
        accepted_per_sec: accepted as f64 / posting_secs,
        drain_secs,
        end_to_end_per_sec: accepted as f64 / (posting_secs + drain_secs),
        post_latency: shared.post.summary(),
        projection_lag: shared.lag.summary(),
        lag_probe_requests: shared.lag_probe_requests,
        own_write_read: shared.own_write_read.summary(),
        own_write_reads_failed: shared.own_write_reads_failed,
        get_by_id_latency: shared.get_by_id.summary(),
        get_by_email_latency: shared.get_by_email.summary(),
        read_floor: options.read_floor.then(|| ReadFloor {
            gateway: shared.gateway_floor.summary(),
            service: shared.service_floor.summary(),
        }),
        timeline: shared.timeline.seconds(posting),
    }
}

/// Polls `GET /orders/{id}` until it is 200, waiting 1 ms, then 2, 4, … up to 32 ms between
/// polls (a few requests per order, at most 1 ms late while the lag is small); the time since
/// `since` (`None` past `deadline`) and the requests made.
async fn time_until_readable(
    client: &reqwest::Client,
    gateway: &str,
    id: &str,
    since: Instant,
    deadline: Duration,
) -> (Option<Duration>, u64) {
    let url = format!("{gateway}/orders/{id}");
    let mut pause = Duration::from_millis(1);
    let mut requests = 0;
    while since.elapsed() < deadline {
        requests += 1;
        if let Ok(response) = client.get(&url).send().await {
            if response.status() == 200 {
                return (Some(since.elapsed()), requests);
            }
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(32));
    }
    (None, requests)
}

/// One reader alternating `GET /orders/{id}` and `GET /orders?email=` on known data, every 20 ms.
async fn read_while_posting(
    client: reqwest::Client,
    gateway: String,
    shared: Arc<Mutex<Shared>>,
    posting: Arc<AtomicBool>,
    started: Instant,
) {
    let mut n = 0_usize;
    while posting.load(Ordering::Relaxed) {
        tokio::time::sleep(READ_PACE).await;
        let known = {
            let shared = shared.lock().unwrap_or_else(|e| e.into_inner());
            let ids = &shared.accepted_ids;
            // An order old enough to be projected already.
            ids.len()
                .checked_sub(10)
                .map(|i| ids[i * 7919 % (i + 1)].clone())
        };
        let Some(id) = known else { continue };
        n += 1;
        let by_email = n.is_multiple_of(2);
        let url = if by_email {
            format!(
                "{gateway}/orders?limit=10&email={}",
                customer_email(n % CUSTOMERS)
            )
        } else {
            format!("{gateway}/orders/{id}")
        };
        if let Some(latency) = timed_get(&client, &url, 200).await {
            let mut shared = shared.lock().unwrap_or_else(|e| e.into_inner());
            let histogram = if by_email {
                &mut shared.get_by_email
            } else {
                &mut shared.get_by_id
            };
            histogram.record(latency);
            shared.timeline.get(started.elapsed(), latency);
        }
    }
}

/// One reader alternating the two requests of [`ReadFloor`], every 20 ms, as the reader of known
/// data paces its own.
async fn read_floor_while_posting(
    client: reqwest::Client,
    gateway: String,
    shared: Arc<Mutex<Shared>>,
    posting: Arc<AtomicBool>,
) {
    let health = format!("{gateway}/health");
    let not_an_id = format!("{gateway}/orders/not-an-order-id");
    let mut n = 0_usize;
    while posting.load(Ordering::Relaxed) {
        tokio::time::sleep(READ_PACE).await;
        n += 1;
        let at_gateway = n.is_multiple_of(2);
        let (url, expected) = if at_gateway {
            (&health, 200)
        } else {
            (&not_an_id, 400)
        };
        if let Some(latency) = timed_get(&client, url, expected).await {
            let mut shared = shared.lock().unwrap_or_else(|e| e.into_inner());
            if at_gateway {
                shared.gateway_floor.record(latency);
            } else {
                shared.service_floor.record(latency);
            }
        }
    }
}

/// The time from sending `GET url` to the end of its answer's body, if it answered `expected`.
async fn timed_get(client: &reqwest::Client, url: &str, expected: u16) -> Option<Duration> {
    let sent = Instant::now();
    let response = client.get(url).send().await.ok()?;
    if response.status() != expected {
        return None;
    }
    response.bytes().await.ok()?;
    Some(sent.elapsed())
}

async fn report_progress(
    accepted: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    posting: Arc<AtomicBool>,
    started: Instant,
) {
    let mut previous = 0;
    while posting.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = accepted.load(Ordering::Relaxed);
        eprintln!(
            "  {:>5.1} s  accepted {now:>7} ({:>6}/s)  failed {}",
            started.elapsed().as_secs_f64(),
            now - previous,
            failed.load(Ordering::Relaxed)
        );
        previous = now;
    }
}
