//! The command service's settings, layered as [`service_support::config`] describes over
//! `config/default.toml`, and checked before the service starts.

use std::time::Duration;

use config::ConfigError;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use service_support::auth::AuthSettings;
use service_support::broker::BrokerAddresses;
use service_support::config::{invalid, Alias, LayeredSettings};
use service_support::metrics::MetricsSettings;
use service_support::secrets;
use service_support::startup::ListenSettings;
use service_support::traces::TraceSettings;

const DEFAULTS: &str = include_str!("../config/default.toml");
/// The operator token reads the event log and every order: as strong as a signing key.
const MIN_ADMIN_TOKEN_BYTES: usize = 32;

const ALIASES: &[Alias] = &[
    Alias {
        variable: "OTEL_EXPORTER_OTLP_ENDPOINT",
        key: "traces.otlp_endpoint",
    },
    Alias {
        variable: "DATABASE_URL",
        key: "database.url",
    },
    Alias {
        variable: "AMQP_URL",
        key: "broker.url",
    },
    Alias {
        variable: "ADMIN_TOKEN",
        key: "admin.token",
    },
];

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub http: HttpSettings,
    pub metrics: MetricsSettings,
    pub traces: TraceSettings,
    pub auth: AuthSettings,
    pub database: DatabaseSettings,
    pub broker: BrokerSettings,
    pub outbox: OutboxSettings,
    pub group_commit: GroupCommitSettings,
    pub admin: AdminSettings,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AdminSettings {
    /// Empty: the operator endpoints are disabled.
    pub token: SecretString,
}

#[derive(Debug, Clone, Deserialize)]
pub struct HttpSettings {
    #[serde(flatten)]
    pub listen: ListenSettings,
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
    pub url: BrokerAddresses,
}

#[derive(Debug, Clone, Deserialize)]
pub struct OutboxSettings {
    pub poll_interval_ms: u64,
    pub batch_size: u32,
    pub claim_lease_ms: u64,
    pub retry_delay_ms: u64,
    pub confirm_timeout_ms: u64,
    pub max_batches_in_flight: usize,
}

#[derive(Debug, Clone, Deserialize)]
pub struct GroupCommitSettings {
    pub enabled: bool,
    pub max_size: usize,
    pub max_wait_ms: u64,
    pub max_gap_ms: u64,
    pub committers: usize,
    pub queue_capacity: usize,
}

impl LayeredSettings for Settings {
    const DEFAULTS: &'static str = DEFAULTS;
    const ALIASES: &'static [Alias] = ALIASES;

    fn validate(&self) -> Result<(), ConfigError> {
        self.traces.validate()?;
        let admin_token = self.admin.token.expose_secret();
        if let Some(weakness) = secrets::weakness(admin_token, MIN_ADMIN_TOKEN_BYTES)
            .filter(|_| !admin_token.is_empty())
        {
            return Err(invalid("admin.token", &weakness));
        }
        if self.database.pool_size == 0 {
            return Err(invalid("database.pool_size", "must be at least 1"));
        }
        if !(1..=1000).contains(&self.outbox.batch_size) {
            return Err(invalid("outbox.batch_size", "must be between 1 and 1000"));
        }
        if !(1..=64).contains(&self.outbox.max_batches_in_flight) {
            return Err(invalid(
                "outbox.max_batches_in_flight",
                "must be between 1 and 64",
            ));
        }
        if self.outbox.poll_interval_ms == 0 {
            return Err(invalid("outbox.poll_interval_ms", "must be at least 1"));
        }
        if !(1..self.outbox.claim_lease_ms).contains(&self.outbox.confirm_timeout_ms) {
            return Err(invalid(
                "outbox.confirm_timeout_ms",
                "must be at least 1 and less than outbox.claim_lease_ms",
            ));
        }
        let group_commit = &self.group_commit;
        if !(1..=1000).contains(&group_commit.max_size) {
            return Err(invalid(
                "group_commit.max_size",
                "must be between 1 and 1000",
            ));
        }
        if group_commit.max_wait_ms > 1000 {
            return Err(invalid("group_commit.max_wait_ms", "must be at most 1000"));
        }
        if group_commit.max_gap_ms > group_commit.max_wait_ms {
            return Err(invalid(
                "group_commit.max_gap_ms",
                "must be at most group_commit.max_wait_ms",
            ));
        }
        if !(1..=self.database.pool_size as usize).contains(&group_commit.committers) {
            return Err(invalid(
                "group_commit.committers",
                "must be at least 1 and at most database.pool_size",
            ));
        }
        if group_commit.queue_capacity == 0 {
            return Err(invalid("group_commit.queue_capacity", "must be at least 1"));
        }
        self.http.listen.validate()?;
        if self.http.max_body_bytes < 256 {
            return Err(invalid("http.max_body_bytes", "must be at least 256"));
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

    pub fn confirm_timeout(&self) -> Duration {
        Duration::from_millis(self.confirm_timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn the_built_in_defaults_are_valid() {
        let settings = Settings::defaults().unwrap();
        assert_eq!(settings.http.listen.host, "127.0.0.1");
    }

    #[test]
    fn the_listen_address_and_the_body_limit_are_both_http_keys() {
        let settings = Settings::from_env([
            ("APP_HTTP__PORT", "9123"),
            ("APP_HTTP__MAX_BODY_BYTES", "512"),
        ])
        .unwrap();
        assert_eq!(settings.http.listen.port, 9123);
        assert_eq!(settings.http.max_body_bytes, 512);
    }

    #[test]
    fn the_http_workers_are_one_per_core_unless_set_and_never_zero() {
        assert_eq!(Settings::defaults().unwrap().http.listen.workers, None);
        let settings = Settings::from_env([("APP_HTTP__WORKERS", "1")]).unwrap();
        assert_eq!(settings.http.listen.workers, Some(1));
        let error = Settings::from_env([("APP_HTTP__WORKERS", "0")]).unwrap_err();
        assert!(error.to_string().contains("http.workers"), "{error}");
    }

    #[test]
    fn database_url_and_amqp_url_are_honoured() {
        let settings = Settings::from_env([
            ("DATABASE_URL", "postgres://db.example/orders"),
            ("AMQP_URL", "amqp://broker.example/%2f"),
        ])
        .unwrap();
        assert_eq!(
            settings.database.url.expose_secret(),
            "postgres://db.example/orders"
        );
        assert_eq!(
            format!("{:?}", settings.broker.url),
            r#"["broker.example:5672"]"#
        );
    }

    #[test]
    fn printed_settings_show_no_secret() {
        let settings = Settings::from_env([
            (
                "DATABASE_URL",
                "postgres://orders:db-password@db.example/orders",
            ),
            ("ADMIN_TOKEN", "the-admin-token-0123456789abcdefghijklmnopq"),
            (
                "APP_AUTH__HS256_SECRET",
                "a-signing-secret-of-32-bytes-and-more",
            ),
        ])
        .unwrap();
        let printed = format!("{settings:?}");
        for secret in ["db-password", "the-admin-token", "a-signing-secret"] {
            assert!(!printed.contains(secret), "{secret} in {printed}");
        }
        assert_eq!(
            settings.admin.token.expose_secret(),
            "the-admin-token-0123456789abcdefghijklmnopq"
        );
    }

    #[test]
    fn more_committers_than_database_connections_are_refused() {
        let error = Settings::from_env([
            ("APP_DATABASE__POOL_SIZE", "2"),
            ("APP_GROUP_COMMIT__COMMITTERS", "3"),
        ])
        .unwrap_err();
        assert!(
            error.to_string().contains("group_commit.committers"),
            "{error}"
        );
    }

    #[test]
    fn a_group_gap_longer_than_the_group_wait_is_refused() {
        let error = Settings::from_env([
            ("APP_GROUP_COMMIT__MAX_WAIT_MS", "2"),
            ("APP_GROUP_COMMIT__MAX_GAP_MS", "3"),
        ])
        .unwrap_err();
        assert!(
            error.to_string().contains("group_commit.max_gap_ms"),
            "{error}"
        );
    }

    #[test]
    fn a_placeholder_or_short_admin_token_is_refused_naming_the_setting() {
        for token in ["change-me-operator-token", "stack-admin-token"] {
            let error = Settings::from_env([("ADMIN_TOKEN", token)]).unwrap_err();
            assert!(error.to_string().contains("admin.token"), "{error}");
        }
    }

    #[test]
    fn an_empty_pool_is_refused() {
        let error = Settings::from_env([("APP_DATABASE__POOL_SIZE", "0")]).unwrap_err();
        assert!(error.to_string().contains("database.pool_size"), "{error}");
    }
}
