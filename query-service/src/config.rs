//! Settings: built-in defaults (`config/default.toml`), then the optional file named by
//! `APP_CONFIG_FILE`, then `APP_`-prefixed environment variables with `__` between levels
//! (`APP_BROKER__PREFETCH=128`). `MONGODB_URI` and `AMQP_URL` are accepted as the conventional
//! names for the two connection strings.

use std::time::Duration;

use config::{Config, ConfigError, Environment, File, FileFormat};
use serde::Deserialize;

const DEFAULTS: &str = include_str!("../config/default.toml");

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub http: HttpSettings,
    pub mongodb: MongoSettings,
    pub broker: BrokerSettings,
}

#[derive(Debug, Clone, Deserialize)]
pub struct HttpSettings {
    pub host: String,
    pub port: u16,
}

#[derive(Debug, Clone, Deserialize)]
pub struct MongoSettings {
    pub uri: String,
    pub database: String,
    pub timeout_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct BrokerSettings {
    pub url: String,
    pub queue: String,
    pub prefetch: u16,
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
            .set_override_option("mongodb.uri", std::env::var("MONGODB_URI").ok())?
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
        if self.broker.prefetch == 0 {
            return invalid("broker.prefetch", "must be at least 1");
        }
        if self.mongodb.database.is_empty() {
            return invalid("mongodb.database", "must not be empty");
        }
        if self.mongodb.timeout_ms == 0 {
            return invalid("mongodb.timeout_ms", "must be at least 1");
        }
        Ok(())
    }
}

impl MongoSettings {
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }
}
