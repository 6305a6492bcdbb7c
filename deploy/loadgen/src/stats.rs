use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Latencies in microseconds, from 1 µs to 10 minutes.
pub struct Latencies(Histogram<u64>);

impl Default for Latencies {
    #[allow(clippy::expect_used)] // constant bounds that hdrhistogram accepts
    fn default() -> Self {
        Self(Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds"))
    }
}

/// Percentiles in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Summary {
    pub count: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Latencies {
    pub fn record(&mut self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        self.0.saturating_record(micros);
    }

    pub fn summary(&self) -> Summary {
        let ms = |micros: u64| micros as f64 / 1000.0;
        Summary {
            count: self.0.len(),
            p50_ms: ms(self.0.value_at_quantile(0.50)),
            p90_ms: ms(self.0.value_at_quantile(0.90)),
            p99_ms: ms(self.0.value_at_quantile(0.99)),
            max_ms: ms(self.0.max()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p99_of(count: u64) -> f64 {
        let mut latencies = Latencies::default();
        for ms in 1..=count {
            latencies.record(Duration::from_millis(ms));
        }
        latencies.summary().p99_ms
    }

    #[test]
    fn the_p99_of_30_reads_is_the_slowest_and_of_200_the_third_slowest() {
        let about = |ms: f64, expected: f64| (ms - expected).abs() < expected / 100.0;
        assert!(about(p99_of(30), 30.0), "{}", p99_of(30));
        assert!(about(p99_of(200), 198.0), "{}", p99_of(200));
    }
}
