//! Settings: built-in defaults (`config/default.toml`), then the optional file named by
//! `APP_CONFIG_FILE`, then `APP_`-prefixed environment variables with `__` between levels
//! (`APP_BROKER__PREFETCH=128`). `MONGODB_URI` and `AMQP_URL` are accepted as the conventional
//! names for the two connection strings.

use std::collections::HashMap;
use std::time::Duration;

use config::{Config, ConfigError, Environment, File, FileFormat};
use secrecy::SecretString;
use serde::Deserialize;
use service_support::auth::AuthSettings;
use service_support::metrics::MetricsSettings;

const DEFAULTS: &str = include_str!("../config/default.toml");

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub http: HttpSettings,
    pub metrics: MetricsSettings,
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
pub struct HttpSettings {
    pub host: String,
    pub port: u16,
    pub shutdown_timeout_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct MongoSettings {
    pub uri: String,
    pub database: String,
    pub timeout_ms: u64,
    pub generation_refresh_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ConsistencySettings {
    pub max_wait_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct BrokerSettings {
    pub url: String,
    pub queue: String,
    pub prefetch: u16,
    pub batch_size: u16,
    pub batch_wait_ms: u64,
    pub lanes: usize,
    pub max_attempts: u32,
    pub retry_delay_ms: u64,
}

impl Settings {
    /// Reads the layered configuration from the process environment.
    pub fn load() -> Result<Self, ConfigError> {
        Self::from_env(std::env::vars().collect())
    }

    /// Reads the layered configuration from `vars`, standing for the environment.
    pub fn from_env(vars: HashMap<String, String>) -> Result<Self, ConfigError> {
        let mut builder = Config::builder().add_source(File::from_str(DEFAULTS, FileFormat::Toml));
        if let Some(path) = vars.get("APP_CONFIG_FILE") {
            builder = builder.add_source(File::with_name(path).required(true));
        }
        let settings: Settings = builder
            .add_source(
                Environment::with_prefix("APP")
                    .prefix_separator("_")
                    .separator("__")
                    .try_parsing(true)
                    .source(Some(vars.clone())),
            )
            .set_override_option("mongodb.uri", vars.get("MONGODB_URI").cloned())?
            .set_override_option("broker.url", vars.get("AMQP_URL").cloned())?
            .set_override_option("rebuild.event_log_token", vars.get("ADMIN_TOKEN").cloned())?
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
        if self.broker.batch_size == 0 || self.broker.batch_size > self.broker.prefetch {
            return invalid("broker.batch_size", "must be from 1 to broker.prefetch");
        }
        if self.broker.batch_wait_ms > 1_000 {
            return invalid("broker.batch_wait_ms", "must be at most 1000");
        }
        if !(1..=256).contains(&self.broker.lanes) {
            return invalid("broker.lanes", "must be between 1 and 256");
        }
        if self.broker.max_attempts == 0 {
            return invalid("broker.max_attempts", "must be at least 1");
        }
        if self.mongodb.database.is_empty() {
            return invalid("mongodb.database", "must not be empty");
        }
        if self.mongodb.timeout_ms == 0 {
            return invalid("mongodb.timeout_ms", "must be at least 1");
        }
        if self.mongodb.generation_refresh_ms == 0 {
            return invalid("mongodb.generation_refresh_ms", "must be at least 1");
        }
        if !(1..=1000).contains(&self.rebuild.page_size) {
            return invalid("rebuild.page_size", "must be between 1 and 1000");
        }
        if self.consistency.max_wait_ms > 60_000 {
            return invalid("consistency.max_wait_ms", "must be at most 60000");
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

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect()
    }

    #[test]
    fn the_built_in_defaults_are_valid() {
        let settings = Settings::from_env(HashMap::new()).unwrap();
        assert_eq!(settings.http.host, "127.0.0.1");
    }

    #[test]
    fn prefixed_variables_override_nested_keys() {
        let settings = Settings::from_env(vars(&[("APP_HTTP__PORT", "9123")])).unwrap();
        assert_eq!(settings.http.port, 9123);
    }

    #[test]
    fn a_value_of_the_wrong_type_is_refused_with_its_key() {
        let error = Settings::from_env(vars(&[("APP_HTTP__PORT", "eighty")])).unwrap_err();
        assert!(error.to_string().contains("port"), "{error}");
    }

    #[test]
    fn a_missing_config_file_is_refused() {
        let error = Settings::from_env(vars(&[("APP_CONFIG_FILE", "/nonexistent/settings.toml")]))
            .unwrap_err();
        assert!(error.to_string().contains("nonexistent"), "{error}");
    }

    #[test]
    fn mongodb_uri_is_the_switch_for_the_read_database() {
        let settings =
            Settings::from_env(vars(&[("MONGODB_URI", "mongodb://mongo.example:27017")])).unwrap();
        assert_eq!(settings.mongodb.uri, "mongodb://mongo.example:27017");
    }

    #[test]
    fn a_zero_prefetch_is_refused() {
        let error = Settings::from_env(vars(&[("APP_BROKER__PREFETCH", "0")])).unwrap_err();
        assert!(error.to_string().contains("broker.prefetch"), "{error}");
    }

    #[test]
    fn a_batch_larger_than_the_prefetch_is_refused() {
        let error = Settings::from_env(vars(&[
            ("APP_BROKER__PREFETCH", "64"),
            ("APP_BROKER__BATCH_SIZE", "65"),
        ]))
        .unwrap_err();
        assert!(error.to_string().contains("broker.batch_size"), "{error}");
    }
}
