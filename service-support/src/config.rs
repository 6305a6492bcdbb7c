//! How both services read their settings: built-in defaults (a service's
//! `config/default.toml`), then the optional file named by `APP_CONFIG_FILE`, then
//! `APP_`-prefixed environment variables with `__` between levels (`APP_HTTP__PORT=9000`),
//! then the conventional names of connection strings and tokens (`DATABASE_URL`, `AMQP_URL`,
//! `MONGODB_URI`, `ADMIN_TOKEN`), each overriding one key.

use std::collections::HashMap;

use config::{Config, ConfigError, Environment, File, FileFormat};
use serde::de::DeserializeOwned;

/// A variable with a conventional name that overrides one settings key.
#[derive(Debug, Clone, Copy)]
pub struct Alias {
    pub variable: &'static str,
    pub key: &'static str,
}

/// A service's settings, read in layers and checked before the service starts.
pub trait LayeredSettings: DeserializeOwned {
    /// The TOML text of the built-in defaults.
    const DEFAULTS: &'static str;
    const ALIASES: &'static [Alias];

    /// Checks the rules a type cannot say, naming the key at fault ([`invalid`]).
    fn validate(&self) -> Result<(), ConfigError>;

    /// Reads the settings from the process environment.
    fn load() -> Result<Self, ConfigError> {
        Self::from_env(std::env::vars())
    }

    /// The built-in defaults alone, as if no variable were set.
    fn defaults() -> Result<Self, ConfigError> {
        Self::from_env(std::iter::empty::<(String, String)>())
    }

    /// Reads the settings from `vars`, standing for the environment.
    fn from_env<K: Into<String>, V: Into<String>>(
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Self, ConfigError> {
        let vars: HashMap<String, String> = vars
            .into_iter()
            .map(|(key, value)| (key.into(), value.into()))
            .collect();
        let settings: Self = load_layered(Self::DEFAULTS, &vars, Self::ALIASES)?;
        settings.validate()?;
        Ok(settings)
    }
}

fn load_layered<T: DeserializeOwned>(
    defaults: &str,
    vars: &HashMap<String, String>,
    aliases: &[Alias],
) -> Result<T, ConfigError> {
    let mut builder = Config::builder().add_source(File::from_str(defaults, FileFormat::Toml));
    if let Some(path) = vars.get("APP_CONFIG_FILE") {
        builder = builder.add_source(File::with_name(path).required(true));
    }
    builder = builder.add_source(
        Environment::with_prefix("APP")
            .prefix_separator("_")
            .separator("__")
            .try_parsing(true)
            .source(Some(vars.clone())),
    );
    for alias in aliases {
        builder = builder.set_override_option(alias.key, vars.get(alias.variable).cloned())?;
    }
    builder.build()?.try_deserialize()
}

/// The error of a setting whose value breaks `rule`, naming its key.
pub fn invalid(key: &str, rule: &str) -> ConfigError {
    ConfigError::Message(format!("invalid value for {key}: {rule}"))
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    const DEFAULTS: &str = "[http]\nhost = \"127.0.0.1\"\nport = 8080\n\n[database]\nurl = \"\"\n";
    const ALIASES: &[Alias] = &[Alias {
        variable: "DATABASE_URL",
        key: "database.url",
    }];

    #[derive(Debug, Deserialize)]
    struct Settings {
        http: Http,
        database: Database,
    }

    #[derive(Debug, Deserialize)]
    struct Http {
        host: String,
        port: u16,
    }

    #[derive(Debug, Deserialize)]
    struct Database {
        url: String,
    }

    impl LayeredSettings for Settings {
        const DEFAULTS: &'static str = DEFAULTS;
        const ALIASES: &'static [Alias] = ALIASES;

        fn validate(&self) -> Result<(), ConfigError> {
            if self.http.port == 1 {
                return Err(invalid("http.port", "must not be 1"));
            }
            Ok(())
        }
    }

    fn load(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        Settings::from_env(pairs.iter().copied())
    }

    #[test]
    fn the_defaults_apply_when_nothing_overrides_them() {
        let settings = load(&[]).unwrap();
        assert_eq!(
            (settings.http.host.as_str(), settings.http.port),
            ("127.0.0.1", 8080)
        );
    }

    #[test]
    fn prefixed_variables_override_nested_keys() {
        let settings = load(&[("APP_HTTP__PORT", "9123")]).unwrap();
        assert_eq!(settings.http.port, 9123);
    }

    #[test]
    fn a_value_of_the_wrong_type_is_refused_with_its_key() {
        let error = load(&[("APP_HTTP__PORT", "eighty")]).unwrap_err();
        assert!(error.to_string().contains("port"), "{error}");
    }

    #[test]
    fn a_missing_config_file_is_refused() {
        let error = load(&[("APP_CONFIG_FILE", "/nonexistent/settings.toml")]).unwrap_err();
        assert!(error.to_string().contains("nonexistent"), "{error}");
    }

    #[test]
    fn a_value_the_service_refuses_is_named_with_its_rule() {
        let error = load(&[("APP_HTTP__PORT", "1")]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid value for http.port: must not be 1"
        );
    }

    #[test]
    fn an_alias_overrides_its_key_and_the_prefixed_variable() {
        let settings = load(&[
            ("APP_DATABASE__URL", "postgres://prefixed/orders"),
            ("DATABASE_URL", "postgres://db.example/orders"),
        ])
        .unwrap();
        assert_eq!(settings.database.url, "postgres://db.example/orders");
    }
}
