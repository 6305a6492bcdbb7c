//! Projection lag as the services measure it: query-service's `projection_lag_seconds`
//! histogram (event `occurredAt` → applied, for every event), scraped before and after the run,
//! and the histograms of its steps: commit → broker confirm (command side), commit → delivery
//! to the consumer, and the write of each batch (query side). Unlike the probes through the
//! gateway, they cover every order, not a sample.

use serde::Serialize;

/// The end-to-end lag's histogram, on the query side's metrics page.
pub const LAG: &str = "projection_lag_seconds";

/// The steps of the lag: (what it measures, its histogram, on the command side's page or not).
pub const STEPS: [(&str, &str, bool); 3] = [
    (
        "commit → broker confirm",
        "outbox_publish_delay_seconds",
        true,
    ),
    (
        "commit → delivered to the consumer",
        "projection_receive_delay_seconds",
        false,
    ),
    (
        "one batch's write to the read models",
        "projection_apply_seconds",
        false,
    ),
];

/// Cumulative counts by upper bound in seconds, summed over every label set of the metric.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Buckets(Vec<(f64, f64)>);

impl Buckets {
    /// The buckets of histogram `metric` in a Prometheus text exposition.
    pub fn parse(exposition: &str, metric: &str) -> Self {
        let prefix = format!("{metric}_bucket");
        let mut buckets: Vec<(f64, f64)> = Vec::new();
        for line in exposition.lines() {
            let Some(rest) = line.strip_prefix(prefix.as_str()) else {
                continue;
            };
            let Some(le_start) = rest.find("le=\"") else {
                continue;
            };
            let le_text = &rest[le_start + 4..];
            let Some(le_end) = le_text.find('"') else {
                continue;
            };
            let bound = match &le_text[..le_end] {
                "+Inf" => f64::INFINITY,
                text => match text.parse() {
                    Ok(bound) => bound,
                    Err(_) => continue,
                },
            };
            let Some(count) = rest
                .rsplit(' ')
                .next()
                .and_then(|count| count.parse::<f64>().ok())
            else {
                continue;
            };
            match buckets.iter_mut().find(|(b, _)| *b == bound) {
                Some((_, total)) => *total += count,
                None => buckets.push((bound, count)),
            }
        }
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        Self(buckets)
    }

    /// What was observed between `earlier` and `self`.
    pub fn since(&self, earlier: &Self) -> Self {
        Self(
            self.0
                .iter()
                .map(|&(bound, count)| {
                    let before = earlier
                        .0
                        .iter()
                        .find(|(b, _)| *b == bound)
                        .map_or(0.0, |(_, c)| *c);
                    (bound, count - before)
                })
                .collect(),
        )
    }

    pub fn count(&self) -> f64 {
        self.0.last().map_or(0.0, |(_, count)| *count)
    }

    /// The `q` quantile in seconds, interpolated within its bucket as Prometheus's
    /// `histogram_quantile` does; `None` without observations or above the last finite bound.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.count();
        if total <= 0.0 {
            return None;
        }
        let rank = q * total;
        let mut lower = (0.0, 0.0);
        for &(bound, count) in &self.0 {
            if count >= rank {
                if bound.is_infinite() {
                    return None;
                }
                let (lower_bound, lower_count) = lower;
                let in_bucket = count - lower_count;
                let fraction = if in_bucket > 0.0 {
                    (rank - lower_count) / in_bucket
                } else {
                    1.0
                };
                return Some(lower_bound + (bound - lower_bound) * fraction);
            }
            lower = (bound, count);
        }
        None
    }
}

/// The read side's lag over the run.
#[derive(Debug, Clone, Serialize)]
pub struct ReadSideLag {
    pub events: u64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    /// Events by bucket: (upper bound in ms, events above the previous bound and up to it).
    pub histogram: Vec<(f64, u64)>,
    /// Where the time went, step by step ([`STEPS`]), for the steps whose metrics answered.
    pub steps: Vec<LagStep>,
}

/// One step of the lag over the run.
#[derive(Debug, Clone, Serialize)]
pub struct LagStep {
    pub step: &'static str,
    pub observations: u64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

impl LagStep {
    pub fn of(step: &'static str, buckets: &Buckets) -> Self {
        let ms = |seconds: f64| seconds * 1000.0;
        Self {
            step,
            observations: buckets.count() as u64,
            p50_ms: buckets.quantile(0.5).map(ms),
            p99_ms: buckets.quantile(0.99).map(ms),
        }
    }
}

impl ReadSideLag {
    pub fn of(buckets: &Buckets) -> Self {
        let whole = LagStep::of("commit → applied", buckets);
        let mut below = 0.0;
        let histogram = buckets
            .0
            .iter()
            .map(|&(bound, cumulative)| {
                let events = (cumulative - below).max(0.0) as u64;
                below = cumulative;
                (bound * 1000.0, events)
            })
            .collect();
        Self {
            events: whole.observations,
            p50_ms: whole.p50_ms,
            p99_ms: whole.p99_ms,
            histogram,
            steps: Vec::new(),
        }
    }
}

/// The metrics page at `url` now, or `None` if the endpoint does not answer.
pub async fn scrape(client: &reqwest::Client, url: &str) -> Option<String> {
    let response = client.get(url).send().await.ok()?;
    if !response.status().is_success() {
        return None;
    }
    response.text().await.ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEFORE: &str = "# TYPE projection_lag_seconds histogram\n\
        projection_lag_seconds_sum 1.0\n\
        projection_lag_seconds_count 10\n\
        projection_lag_seconds_bucket{le=\"0.001\"} 0\n\
        projection_lag_seconds_bucket{le=\"0.002\"} 5\n\
        projection_lag_seconds_bucket{le=\"0.004\"} 10\n\
        projection_lag_seconds_bucket{le=\"0.008\"} 10\n\
        projection_lag_seconds_bucket{le=\"+Inf\"} 10\n";

    const AFTER: &str = "projection_lag_seconds_bucket{le=\"0.001\"} 0\n\
        projection_lag_seconds_bucket{le=\"0.002\"} 5\n\
        projection_lag_seconds_bucket{le=\"0.004\"} 60\n\
        projection_lag_seconds_bucket{le=\"0.008\"} 109\n\
        projection_lag_seconds_bucket{le=\"+Inf\"} 110\n\
        http_requests_total{method=\"GET\"} 7\n";

    #[test]
    fn the_quantiles_come_from_the_difference_of_two_scrapes() {
        let lag = Buckets::parse(AFTER, LAG).since(&Buckets::parse(BEFORE, LAG));
        assert_eq!(lag.count(), 100.0);
        // 50 of the 100 in (2, 4] ms, 49 in (4, 8] ms, 1 above 8 ms.
        let p50 = lag.quantile(0.5).unwrap();
        assert!((p50 - 0.004).abs() < 1e-9, "{p50}");
        let p90 = lag.quantile(0.9).unwrap();
        assert!(p90 > 0.004 && p90 < 0.008, "{p90}");
        assert_eq!(lag.quantile(0.999), None, "beyond the last finite bucket");
        let histogram = ReadSideLag::of(&lag).histogram;
        assert_eq!(
            histogram,
            [(1.0, 0), (2.0, 0), (4.0, 50), (8.0, 49), (f64::INFINITY, 1)]
        );
    }

    #[test]
    fn no_observations_give_no_quantile() {
        let buckets = Buckets::parse(BEFORE, LAG);
        assert_eq!(buckets.since(&buckets).quantile(0.5), None);
        assert_eq!(Buckets::parse("", LAG).quantile(0.5), None);
    }
}
