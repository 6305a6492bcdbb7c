//! When each client posts under `--rate`. The clients are independent, so the orders arrive as
//! a Poisson process at the rate: each client's gaps, its first one included, are exponential
//! with a mean of clients ÷ rate. (Clients that all started at once and kept a fixed interval
//! would post in bursts of every client at once, and a burst's last order waits for the others
//! in every queue of the pipeline.)

use std::time::Duration;

#[derive(Debug, Clone, Copy)]
pub struct Arrivals {
    mean_gap: Duration,
}

impl Arrivals {
    /// `rate` orders/s in all from `clients` clients.
    pub fn new(rate: f64, clients: usize) -> Self {
        Self {
            mean_gap: Duration::from_secs_f64(clients as f64 / rate),
        }
    }

    /// A client's next gap, from `uniform`, a random number in [0, 1).
    pub fn gap(&self, uniform: f64) -> Duration {
        self.mean_gap.mul_f64(-(1.0 - uniform).ln())
    }

    /// A client's next gap, at random.
    pub fn next_gap(&self) -> Duration {
        self.gap(rand::random())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_are_exponential_with_a_mean_of_clients_over_the_rate() {
        let arrivals = Arrivals::new(500.0, 64);
        let quantiles = 100_000;
        let gaps: Vec<f64> = (0..quantiles)
            .map(|i| (f64::from(i) + 0.5) / f64::from(quantiles))
            .map(|uniform| arrivals.gap(uniform).as_secs_f64())
            .collect();

        let mean = gaps.iter().sum::<f64>() / f64::from(quantiles);
        assert!((mean - 0.128).abs() < 0.001, "mean gap {mean} s");
        // An exponential's median is ln 2 times its mean; a fixed interval's is its mean.
        let median = gaps[gaps.len() / 2];
        assert!(
            (median - 0.128 * 2_f64.ln()).abs() < 0.001,
            "median gap {median} s"
        );
        assert_eq!(arrivals.gap(0.0), Duration::ZERO);
    }
}
