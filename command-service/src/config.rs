//! Settings: built-in defaults (`config/default.toml`), then the optional file named by
//! `APP_CONFIG_FILE`, then `APP_`-prefixed environment variables with `__` between levels
//! (`APP_DATABASE__POOL_SIZE=20`). `DATABASE_URL` and `AMQP_URL` are accepted as the
//! conventional names for the two connection strings.

use std::time::Duration;

use config::{Config, ConfigError, Environment, File, FileFormat};
use serde::Deserialize;

const DEFAULTS: &str = include_str!("../config/default.toml");

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub http: HttpSettings,
    pub database: DatabaseSettings,
    pub broker: BrokerSettings,
    pub outbox: OutboxSettings,
}

#[derive(Debug, Clone, Deserialize)]
pub struct HttpSettings {
    pub host: String,
    pub port: u16,
    pub max_body_bytes: usize,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    pub url: String,
    pub pool_size: u32,
    pub acquire_timeout_ms: u64,
    pub statement_timeout_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct BrokerSettings {
    pub url: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct OutboxSettings {
    pub poll_interval_ms: u64,
    pub batch_size: u32,
    pub claim_lease_ms: u64,
    pub retry_delay_ms: u64,
}

impl Settings {
    /// Reads the layered configuration from the process environment.
    pub fn load() -> Result<Self, ConfigError> {
        let mut builder = Config::builder().add_source(File::from_str(DEFAULTS, FileFormat::Toml));
        if let Ok(path) = std::env::var("APP_CONFIG_FILE") {
            builder = builder.add_source(File::with_name(&path).required(true));
        }
        let settings: Settings = builder
            .add_source(
                Environment::with_prefix("APP")
                    .prefix_separator("_")
                    .separator("__")
                    .try_parsing(true),
            )
            .set_override_option("database.url", std::env::var("DATABASE_URL").ok())?
            .set_override_option("broker.url", std::env::var("AMQP_URL").ok())?
            .build()?
            .try_deserialize()?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, rule: &str| {
            Err(ConfigError::Message(format!(
                "invalid value for {key}: {rule}"
            )))
        };
        if self.database.pool_size == 0 {
            return invalid("database.pool_size", "must be at least 1");
        }
        if !(1..=1000).contains(&self.outbox.batch_size) {
            return invalid("outbox.batch_size", "must be between 1 and 1000");
        }
        if self.outbox.poll_interval_ms == 0 {
            return invalid("outbox.poll_interval_ms", "must be at least 1");
        }
        if self.http.max_body_bytes < 256 {
            return invalid("http.max_body_bytes", "must be at least 256");
        }
        Ok(())
    }
}

impl DatabaseSettings {
    pub fn acquire_timeout(&self) -> Duration {
        Duration::from_millis(self.acquire_timeout_ms)
    }
}

impl OutboxSettings {
    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms)
    }

    pub fn claim_lease(&self) -> Duration {
        Duration::from_millis(self.claim_lease_ms)
    }

    pub fn retry_delay(&self) -> Duration {
        Duration::from_millis(self.retry_delay_ms)
    }
}
