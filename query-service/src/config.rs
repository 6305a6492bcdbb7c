//! The query service's settings, layered as [`service_support::config`] describes over
//! `config/default.toml`, and checked before the service starts.

use std::time::Duration;

use config::ConfigError;
use secrecy::SecretString;
use serde::Deserialize;
use service_support::auth::AuthSettings;
use service_support::broker::BrokerAddresses;
use service_support::config::{invalid, Alias, LayeredSettings};
use service_support::metrics::MetricsSettings;
use service_support::startup::ListenSettings;
use service_support::traces::TraceSettings;

const DEFAULTS: &str = include_str!("../config/default.toml");

const ALIASES: &[Alias] = &[
    Alias {
        variable: "OTEL_EXPORTER_OTLP_ENDPOINT",
        key: "traces.otlp_endpoint",
    },
    Alias {
        variable: "MONGODB_URI",
        key: "mongodb.uri",
    },
    Alias {
        variable: "AMQP_URL",
        key: "broker.url",
    },
    Alias {
        variable: "ADMIN_TOKEN",
        key: "rebuild.event_log_token",
    },
];

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub http: ListenSettings,
    pub metrics: MetricsSettings,
    pub traces: TraceSettings,
    pub auth: AuthSettings,
    pub mongodb: MongoSettings,
    pub consistency: ConsistencySettings,
    pub rebuild: RebuildSettings,
    pub broker: BrokerSettings,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RebuildSettings {
    pub event_log_url: String,
    pub event_log_token: SecretString,
    pub page_size: u32,
}

#[derive(Debug, Clone, Deserialize)]
pub struct MongoSettings {
    pub uri: String,
    pub database: String,
    pub timeout_ms: u64,
    pub read_timeout_ms: u64,
    pub batch_timeout_ms: u64,
    pub generation_refresh_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ConsistencySettings {
    pub max_wait_ms: u64,
    pub max_waiting_reads: usize,
}

#[derive(Debug, Clone, Deserialize)]
pub struct BrokerSettings {
    pub url: BrokerAddresses,
    pub queue: String,
    pub prefetch: u16,
    pub batch_size: u16,
    pub batch_wait_ms: u64,
    pub lanes: usize,
    pub max_attempts: u32,
    pub retry_delay_ms: u64,
}

impl LayeredSettings for Settings {
    const DEFAULTS: &'static str = DEFAULTS;
    const ALIASES: &'static [Alias] = ALIASES;

    fn validate(&self) -> Result<(), ConfigError> {
        self.traces.validate()?;
        self.http.validate()?;
        if self.broker.prefetch == 0 {
            return Err(invalid("broker.prefetch", "must be at least 1"));
        }
        if self.broker.batch_size == 0 || self.broker.batch_size > self.broker.prefetch {
            return Err(invalid(
                "broker.batch_size",
                "must be from 1 to broker.prefetch",
            ));
        }
        if self.broker.batch_wait_ms > 1_000 {
            return Err(invalid("broker.batch_wait_ms", "must be at most 1000"));
        }
        if !(1..=256).contains(&self.broker.lanes) {
            return Err(invalid("broker.lanes", "must be between 1 and 256"));
        }
        if self.broker.max_attempts == 0 {
            return Err(invalid("broker.max_attempts", "must be at least 1"));
        }
        if self.mongodb.database.is_empty() {
            return Err(invalid("mongodb.database", "must not be empty"));
        }
        for (key, value) in [
            ("mongodb.timeout_ms", self.mongodb.timeout_ms),
            ("mongodb.read_timeout_ms", self.mongodb.read_timeout_ms),
            ("mongodb.batch_timeout_ms", self.mongodb.batch_timeout_ms),
        ] {
            if value == 0 {
                return Err(invalid(key, "must be at least 1"));
            }
        }
        if self.mongodb.generation_refresh_ms == 0 {
            return Err(invalid(
                "mongodb.generation_refresh_ms",
                "must be at least 1",
            ));
        }
        if !(1..=1000).contains(&self.rebuild.page_size) {
            return Err(invalid("rebuild.page_size", "must be between 1 and 1000"));
        }
        if self.consistency.max_wait_ms > 60_000 {
            return Err(invalid("consistency.max_wait_ms", "must be at most 60000"));
        }
        if !(1..=100_000).contains(&self.consistency.max_waiting_reads) {
            return Err(invalid(
                "consistency.max_waiting_reads",
                "must be between 1 and 100000",
            ));
        }
        Ok(())
    }
}

impl BrokerSettings {
    pub fn batch_wait(&self) -> Duration {
        Duration::from_millis(self.batch_wait_ms)
    }
}

impl MongoSettings {
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    pub fn read_timeout(&self) -> Duration {
        Duration::from_millis(self.read_timeout_ms)
    }

    pub fn batch_timeout(&self) -> Duration {
        Duration::from_millis(self.batch_timeout_ms)
    }

    pub fn generation_refresh(&self) -> Duration {
        Duration::from_millis(self.generation_refresh_ms)
    }
}

impl ConsistencySettings {
    pub fn max_wait(&self) -> Duration {
        Duration::from_millis(self.max_wait_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_defaults_are_valid() {
        let settings = Settings::defaults().unwrap();
        assert_eq!(settings.http.host, "127.0.0.1");
    }

    #[test]
    fn zero_http_workers_are_refused() {
        let error = Settings::from_env([("APP_HTTP__WORKERS", "0")]).unwrap_err();
        assert!(error.to_string().contains("http.workers"), "{error}");
    }

    #[test]
    fn mongodb_uri_is_the_switch_for_the_read_database() {
        let settings =
            Settings::from_env([("MONGODB_URI", "mongodb://mongo.example:27017")]).unwrap();
        assert_eq!(settings.mongodb.uri, "mongodb://mongo.example:27017");
    }

    #[test]
    fn a_zero_prefetch_is_refused() {
        let error = Settings::from_env([("APP_BROKER__PREFETCH", "0")]).unwrap_err();
        assert!(error.to_string().contains("broker.prefetch"), "{error}");
    }

    #[test]
    fn a_batch_larger_than_the_prefetch_is_refused() {
        let error = Settings::from_env([
            ("APP_BROKER__PREFETCH", "64"),
            ("APP_BROKER__BATCH_SIZE", "65"),
        ])
        .unwrap_err();
        assert!(error.to_string().contains("broker.batch_size"), "{error}");
    }
}
