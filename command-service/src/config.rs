//! Settings: built-in defaults (`config/default.toml`), then the optional file named by
//! `APP_CONFIG_FILE`, then `APP_`-prefixed environment variables with `__` between levels
//! (`APP_DATABASE__POOL_SIZE=20`). `DATABASE_URL` and `AMQP_URL` are accepted as the
//! conventional names for the two connection strings.

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
    pub database: DatabaseSettings,
    pub broker: BrokerSettings,
    pub outbox: OutboxSettings,
    pub admin: AdminSettings,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AdminSettings {
    /// Empty: the operator endpoints are disabled.
    pub token: SecretString,
}

#[derive(Debug, Clone, Deserialize)]
pub struct HttpSettings {
    pub host: String,
    pub port: u16,
    pub shutdown_timeout_secs: u64,
    pub max_body_bytes: usize,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    /// Holds the password: never printed, `Debug` included.
    pub url: SecretString,
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
            .set_override_option("database.url", vars.get("DATABASE_URL").cloned())?
            .set_override_option("broker.url", vars.get("AMQP_URL").cloned())?
            .set_override_option("admin.token", vars.get("ADMIN_TOKEN").cloned())?
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

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

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
    fn database_url_and_amqp_url_are_honoured() {
        let settings = Settings::from_env(vars(&[
            ("DATABASE_URL", "postgres://db.example/orders"),
            ("AMQP_URL", "amqp://broker.example/%2f"),
        ]))
        .unwrap();
        assert_eq!(
            settings.database.url.expose_secret(),
            "postgres://db.example/orders"
        );
        assert_eq!(settings.broker.url, "amqp://broker.example/%2f");
    }

    #[test]
    fn printed_settings_show_no_secret() {
        let settings = Settings::from_env(vars(&[
            (
                "DATABASE_URL",
                "postgres://orders:db-password@db.example/orders",
            ),
            ("ADMIN_TOKEN", "the-admin-token"),
            (
                "APP_AUTH__HS256_SECRET",
                "a-signing-secret-of-32-bytes-and-more",
            ),
        ]))
        .unwrap();
        let printed = format!("{settings:?}");
        for secret in ["db-password", "the-admin-token", "a-signing-secret"] {
            assert!(!printed.contains(secret), "{secret} in {printed}");
        }
        assert_eq!(settings.admin.token.expose_secret(), "the-admin-token");
    }

    #[test]
    fn an_empty_pool_is_refused() {
        let error = Settings::from_env(vars(&[("APP_DATABASE__POOL_SIZE", "0")])).unwrap_err();
        assert!(error.to_string().contains("database.pool_size"), "{error}");
    }
}
