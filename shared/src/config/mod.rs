//! Settings of both daemons, loaded with figment: built-in defaults, then an optional TOML
//! file, then the environment. Environment names are the TOML keys in upper case
//! (`DATABASE_URL`, `BCRYPT_COST`, ...); the seed's names work as they are, including the alias
//! `JWT_SECRET_KEY` for `JWT_SECRET`. Every setting is listed with its default in the README.
//!
//! The keys are flat, but [`Settings`] holds them in sections by who reads them, and each
//! section checks itself (`validate`) in the daemon that reads it:
//! - [`CommonSettings`] (`common.rs`): database, logging, HTTP header timeout, secrets keyring,
//!   the control plane's public origin. Both daemons.
//! - [`SourceSettings`] (`common.rs`): where user-configured sources may point. Both daemons
//!   (the control plane on input, the gateway at load and connect time).
//! - [`ControlPlaneSettings`] (`control_plane.rs`): the REST API, sessions, quotas, the
//!   endpoint pool, retention, the OAuth server. The control plane.
//! - [`GatewaySettings`] and [`UpstreamSettings`] (`gateway.rs`): `GATEWAY_*` and the SaaS
//!   API base URLs. The gateway.

mod common;
mod control_plane;
mod gateway;

use std::{net::SocketAddr, path::Path};

use figment::{
    Figment,
    providers::{Env, Format, Serialized, Toml},
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use common::{CommonSettings, SourceSettings};
pub use control_plane::ControlPlaneSettings;
pub use gateway::{GatewaySettings, UpstreamSettings};

/// Environment variable naming the optional TOML settings file.
pub const CONFIG_FILE_ENV: &str = "MCP_GATEWAY_CONFIG";

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Readable lines for a terminal.
    Human,
    /// One JSON object per line, for log pipelines.
    Json,
}

/// Every setting of both daemons, by section. Serialised flat (the sections' keys side by
/// side, as in the TOML file and the environment); loaded section by section from the same
/// flat keys, so that a wrong value's error names its key.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Settings {
    /// Read by both daemons.
    #[serde(flatten)]
    pub common: CommonSettings,
    /// The egress rules of user-configured sources; read by both daemons.
    #[serde(flatten)]
    pub sources: SourceSettings,
    /// Read by the control plane only.
    #[serde(flatten)]
    pub control_plane: ControlPlaneSettings,
    /// Read by the gateway only.
    #[serde(flatten)]
    pub gateway: GatewaySettings,
    /// The SaaS APIs' base URLs; read by the gateway only.
    #[serde(flatten)]
    pub upstreams: UpstreamSettings,
}

/// A setting that is missing or wrong; the message names the setting and what it must be.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The file, an environment value or a type was wrong.
    #[error("cannot load settings: {0}")]
    Load(#[from] Box<figment::Error>),
    /// A value loaded but is not acceptable.
    #[error("invalid setting {name}: {reason}")]
    Invalid {
        /// Environment name of the setting.
        name: &'static str,
        /// What is wrong and what would be right.
        reason: String,
    },
}

impl Settings {
    /// Loads defaults, then the TOML file at `file` (or at `$MCP_GATEWAY_CONFIG`), then the
    /// environment. A named file that does not exist is an error, not a silent default.
    pub fn load(file: Option<&Path>) -> Result<Self, SettingsError> {
        let file = file
            .map(Path::to_path_buf)
            .or_else(|| std::env::var_os(CONFIG_FILE_ENV).map(Into::into));
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        if let Some(path) = file {
            if !path.is_file() {
                return Err(SettingsError::Invalid {
                    name: CONFIG_FILE_ENV,
                    reason: format!("settings file {} does not exist", path.display()),
                });
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        let figment = figment
            // The seed's alias first, so that `JWT_SECRET` wins when both are set.
            .merge(
                Env::raw()
                    .only(&["JWT_SECRET_KEY"])
                    .map(|_| "jwt_secret".into()),
            )
            .merge(Env::raw().filter(|key| key != "jwt_secret_key"));
        // Each section takes its own keys from the one flat dictionary (serde's `flatten`
        // would lose the key from a wrong value's error).
        let mut settings = Settings {
            common: section(&figment)?,
            sources: section(&figment)?,
            control_plane: section(&figment)?,
            gateway: section(&figment)?,
            upstreams: section(&figment)?,
        };
        settings.common.database_url =
            normalise_database_url(settings.common.database_url.expose_secret());
        Ok(settings)
    }

    /// Checks what the control plane reads before it starts.
    pub fn validate_control_plane(&self) -> Result<(), SettingsError> {
        self.common.validate()?;
        self.control_plane.validate()?;
        self.common.keyring()?;
        self.sources.validate()
    }

    /// Checks what the gateway reads before it starts.
    pub fn validate_gateway(&self) -> Result<(), SettingsError> {
        self.common.validate()?;
        self.common.keyring()?;
        self.gateway.validate()?;
        self.sources.validate()?;
        self.upstreams.validate()
    }
}

/// One section's keys out of the flat dictionary; the others' keys are ignored.
fn section<T: serde::de::DeserializeOwned>(figment: &Figment) -> Result<T, SettingsError> {
    Ok(figment.extract().map_err(Box::new)?)
}

/// An optional listen address: empty is none.
pub fn listen_address(
    name: &'static str,
    value: &str,
) -> Result<Option<SocketAddr>, SettingsError> {
    match value.trim() {
        "" => Ok(None),
        addr => addr.parse().map(Some).map_err(|_| {
            invalid(
                name,
                &format!("{addr:?} is not an address such as 127.0.0.1:9101 (empty: off)"),
            )
        }),
    }
}

fn invalid(name: &'static str, reason: &str) -> SettingsError {
    SettingsError::Invalid {
        name,
        reason: reason.to_owned(),
    }
}

/// `scheme://host[:port]` with nothing after it, as browsers send in `Origin`.
fn is_origin(value: &str) -> bool {
    match url::Url::parse(value) {
        Ok(url) => {
            matches!(url.scheme(), "http" | "https")
                && url.host_str().is_some()
                && url.path() == "/"
                && !value.ends_with('/')
                && url.query().is_none()
                && url.fragment().is_none()
                && url.username().is_empty()
        }
        Err(_) => false,
    }
}

fn normalise_database_url(url: &str) -> SecretString {
    for prefix in ["postgresql+asyncpg://", "postgres+asyncpg://"] {
        if let Some(rest) = url.strip_prefix(prefix) {
            return SecretString::from(format!("postgresql://{rest}"));
        }
    }
    SecretString::from(url.to_owned())
}

/// Accepts `"a, b"` (environment) as well as `["a", "b"]` (TOML).
fn comma_list<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum List {
        One(String),
        Many(Vec<String>),
    }
    let items = match List::deserialize(deserializer)? {
        List::One(text) => text.split(',').map(str::to_owned).collect(),
        List::Many(items) => items,
    };
    Ok(items
        .into_iter()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect())
}

/// Like [`comma_list`], for secrets: the values never reach a `Debug` output.
fn comma_secrets<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<SecretString>, D::Error> {
    Ok(comma_list(deserializer)?
        .into_iter()
        .map(SecretString::from)
        .collect())
}

fn serialize_secrets<S: Serializer>(secrets: &[SecretString], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(secrets.iter().map(ExposeSecret::expose_secret))
}

// Defaults are fed to figment through serde; secrets go in as they are and are never printed,
// because `SecretString`'s `Debug` is redacted.
fn serialize_secret<S: Serializer>(secret: &SecretString, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(secret.expose_secret())
}

fn serialize_opt_secret<S: Serializer>(
    secret: &Option<SecretString>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match secret {
        Some(secret) => s.serialize_some(secret.expose_secret()),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
// `figment::Jail` closures return figment's own (large) error type.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;
    use figment::Jail;

    /// 32 bytes, base64.
    const TEST_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

    #[test]
    fn the_pool_and_the_secrets_key_are_checked_at_start() {
        Jail::expect_with(|jail| {
            jail.set_env("JWT_SECRET", "x".repeat(32));
            let err = Settings::load(None)
                .unwrap()
                .validate_control_plane()
                .unwrap_err();
            assert!(err.to_string().contains("SECRETS_KEY"), "{err}");
            jail.set_env("SECRETS_KEY", "c2hvcnQ=");
            let err = Settings::load(None)
                .unwrap()
                .validate_control_plane()
                .unwrap_err();
            assert!(err.to_string().contains("32 random bytes"), "{err}");
            jail.set_env("SECRETS_KEY", TEST_KEY);
            jail.set_env(
                "MCP_GATEWAY_URL_POOLS",
                "https://mcp1.example.com,https://mcp1.example.com/x",
            );
            let err = Settings::load(None)
                .unwrap()
                .validate_control_plane()
                .unwrap_err();
            assert!(
                err.to_string().contains("MCP_GATEWAY_URL_POOLS") && err.to_string().contains("/x"),
                "{err}"
            );
            jail.set_env(
                "MCP_GATEWAY_URL_POOLS",
                "https://mcp1.example.com, https://*.mcp.example.com",
            );
            jail.set_env("SECRETS_OLD_KEYS", format!("{TEST_KEY},{TEST_KEY}"));
            let settings = Settings::load(None).unwrap();
            settings.validate_control_plane().expect("valid");
            assert!(
                !format!("{settings:?}").contains(TEST_KEY),
                "keys never show in Debug output"
            );
            Ok(())
        });
    }

    #[test]
    fn upstream_urls_must_be_http_urls_and_the_snowflake_override_is_optional() {
        Jail::expect_with(|jail| {
            jail.set_env("JWT_SECRET", "x".repeat(32));
            jail.set_env("SECRETS_KEY", TEST_KEY);
            Settings::load(None)
                .unwrap()
                .validate_gateway()
                .expect("defaults are valid");
            jail.set_env("GATEWAY_UPSTREAM_CALLS_PER_SERVER", "0");
            let err = Settings::load(None)
                .unwrap()
                .validate_gateway()
                .unwrap_err();
            assert!(
                err.to_string()
                    .contains("GATEWAY_UPSTREAM_CALLS_PER_SERVER"),
                "{err}"
            );
            jail.set_env("GATEWAY_UPSTREAM_CALLS_PER_SERVER", "8");
            jail.set_env("SNOWFLAKE_BASE_URL", "http://127.0.0.1:9000");
            Settings::load(None)
                .unwrap()
                .validate_gateway()
                .expect("an override is valid");
            for (name, value) in [
                ("SNOWFLAKE_BASE_URL", "snowflake"),
                ("BOX_API_URL", "ftp://box"),
            ] {
                jail.set_env(name, value);
                let err = Settings::load(None)
                    .unwrap()
                    .validate_gateway()
                    .unwrap_err();
                assert!(err.to_string().contains(name), "{err}");
                jail.set_env(name, "https://ok.example");
            }
            Ok(())
        });
    }

    #[test]
    fn each_daemon_validates_what_it_reads() {
        Jail::expect_with(|jail| {
            jail.set_env("JWT_SECRET", "x".repeat(32));
            jail.set_env("SECRETS_KEY", TEST_KEY);
            // The gateway sends a Snowflake PAT only to hosts on these suffixes.
            jail.set_env("SNOWFLAKE_ALLOWED_HOST_SUFFIXES", "com");
            let err = Settings::load(None)
                .unwrap()
                .validate_gateway()
                .unwrap_err();
            assert!(
                err.to_string().contains("SNOWFLAKE_ALLOWED_HOST_SUFFIXES"),
                "{err}"
            );
            jail.set_env("SNOWFLAKE_ALLOWED_HOST_SUFFIXES", ".snowflakecomputing.com");
            // Remote MCP servers are listed as hosts, each with a port or not; not as URLs.
            for bad in [
                "127.0.0.1:0",
                "127.0.0.1:99999",
                "http://intranet",
                "::1",
                "[::1]:x",
            ] {
                jail.set_env("MCP_ALLOWED_HOSTS", bad);
                let err = Settings::load(None)
                    .unwrap()
                    .validate_gateway()
                    .unwrap_err();
                assert!(err.to_string().contains("MCP_ALLOWED_HOSTS"), "{err}");
            }
            jail.set_env(
                "MCP_ALLOWED_HOSTS",
                "127.0.0.1, localhost,[::1],10.0.0.5:8080,[fd00::1]:9000",
            );
            // Only the control plane reads the request timeout.
            jail.set_env("REQUEST_TIMEOUT_SECS", "0");
            let settings = Settings::load(None).unwrap();
            settings.validate_gateway().expect("not the gateway's");
            let err = settings.validate_control_plane().unwrap_err();
            assert!(err.to_string().contains("REQUEST_TIMEOUT_SECS"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn defaults_then_file_then_environment() {
        Jail::expect_with(|jail| {
            jail.create_file("gw.toml", "bcrypt_cost = 5\nlog_level = \"debug\"\ncors_allowed_origins = [\"https://a.example\"]")?;
            jail.set_env("BCRYPT_COST", "6");
            let settings = Settings::load(Some(Path::new("gw.toml"))).expect("loads");
            assert_eq!(
                settings.control_plane.bcrypt_cost, 6,
                "environment overrides the file"
            );
            assert_eq!(
                settings.common.log_level, "debug",
                "file overrides the default"
            );
            assert_eq!(
                settings.control_plane.cors_allowed_origins,
                ["https://a.example"]
            );
            assert_eq!(settings.control_plane.jwt_ttl_secs, 3600, "default stays");
            Ok(())
        });
    }

    #[test]
    fn flat_keys_land_in_their_sections_from_the_file_and_the_environment() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "gw.toml",
                "gateway_max_results = 7\ngateway_sessions = true\n\
                 gateway_allowed_origins = [\"https://chatgpt.com\"]\n\
                 signup_enabled = false\nmax_body_bytes = 2048\n\
                 database_max_connections = 3\nlog_format = \"json\"\n\
                 mcp_allowed_hosts = [\"localhost\"]\n\
                 upstream_connect_timeout_secs = 9",
            )?;
            let settings = Settings::load(Some(Path::new("gw.toml"))).expect("loads");
            assert_eq!(settings.gateway.max_results, 7);
            assert!(settings.gateway.sessions);
            assert_eq!(settings.gateway.allowed_origins, ["https://chatgpt.com"]);
            assert!(!settings.control_plane.signup_enabled);
            assert_eq!(settings.control_plane.max_body_bytes, 2048);
            assert_eq!(settings.common.database_max_connections, 3);
            assert_eq!(settings.common.log_format, LogFormat::Json);
            assert_eq!(settings.sources.mcp_allowed_hosts, ["localhost"]);
            assert_eq!(settings.upstreams.connect_timeout_secs, 9);

            // Numbers, booleans and comma lists from the environment, over the file.
            jail.set_env("GATEWAY_MAX_RESULTS", "11");
            jail.set_env("GATEWAY_SESSIONS", "false");
            jail.set_env(
                "GATEWAY_ALLOWED_ORIGINS",
                "https://a.example, https://b.example",
            );
            jail.set_env("GATEWAY_ADDR", "0.0.0.0:9000");
            jail.set_env("SIGNUP_ENABLED", "true");
            jail.set_env("MAX_BODY_BYTES", "4096");
            jail.set_env("CONTROL_PLANE_ADDR", "0.0.0.0:9001");
            jail.set_env("DATABASE_MAX_CONNECTIONS", "4");
            jail.set_env("LOG_FORMAT", "human");
            jail.set_env("MCP_ALLOWED_HOSTS", "127.0.0.1,intranet");
            jail.set_env("UPSTREAM_CONNECT_TIMEOUT_SECS", "2");
            let settings = Settings::load(Some(Path::new("gw.toml"))).expect("loads");
            assert_eq!(settings.gateway.max_results, 11);
            assert!(!settings.gateway.sessions);
            assert_eq!(
                settings.gateway.allowed_origins,
                ["https://a.example", "https://b.example"]
            );
            assert_eq!(
                settings.gateway.addr,
                SocketAddr::from(([0, 0, 0, 0], 9000))
            );
            assert!(settings.control_plane.signup_enabled);
            assert_eq!(settings.control_plane.max_body_bytes, 4096);
            assert_eq!(
                settings.control_plane.addr,
                SocketAddr::from(([0, 0, 0, 0], 9001))
            );
            assert_eq!(settings.common.database_max_connections, 4);
            assert_eq!(settings.common.log_format, LogFormat::Human);
            assert_eq!(
                settings.sources.mcp_allowed_hosts,
                ["127.0.0.1", "intranet"]
            );
            assert_eq!(settings.upstreams.connect_timeout_secs, 2);
            // Untouched keys keep their defaults, section by section.
            assert_eq!(settings.gateway.resync_secs, 60);
            assert_eq!(settings.control_plane.bcrypt_cost, 12);
            assert_eq!(settings.common.http_header_timeout_secs, 15);
            Ok(())
        });
    }

    #[test]
    fn a_wrong_value_is_named_in_every_section() {
        Jail::expect_with(|jail| {
            for (name, key) in [
                ("GATEWAY_MAX_RESULTS", "gateway_max_results"),
                ("BCRYPT_COST", "bcrypt_cost"),
                ("DATABASE_MAX_CONNECTIONS", "database_max_connections"),
                (
                    "UPSTREAM_CONNECT_TIMEOUT_SECS",
                    "upstream_connect_timeout_secs",
                ),
            ] {
                jail.set_env(name, "many");
                let err = Settings::load(None).unwrap_err();
                assert!(err.to_string().contains(name), "{key}: {err}");
                jail.set_env(name, "5");
            }
            Ok(())
        });
    }

    #[test]
    fn seed_variable_names_work_as_they_are() {
        Jail::expect_with(|jail| {
            jail.set_env(
                "DATABASE_URL",
                "postgresql+asyncpg://u:p@db:5432/mcp_server",
            );
            jail.set_env("JWT_SECRET_KEY", "k".repeat(40));
            jail.set_env(
                "MCP_GATEWAY_URL_POOLS",
                "https://mcp1.example.com,https://mcp2.example.com",
            );
            jail.set_env(
                "CORS_ALLOWED_ORIGINS",
                "https://a.example, https://b.example",
            );
            let settings = Settings::load(None).expect("loads");
            assert_eq!(
                settings.common.database_url.expose_secret(),
                "postgresql://u:p@db:5432/mcp_server"
            );
            assert_eq!(
                settings
                    .control_plane
                    .jwt_secret
                    .as_ref()
                    .map(|s| s.expose_secret().len()),
                Some(40)
            );
            assert_eq!(
                settings.control_plane.mcp_gateway_url_pools,
                "https://mcp1.example.com,https://mcp2.example.com"
            );
            assert_eq!(
                settings.control_plane.cors_allowed_origins,
                ["https://a.example", "https://b.example"]
            );
            let mut settings = settings;
            settings.common.secrets_key = Some(SecretString::from(TEST_KEY));
            settings.validate_control_plane().expect("valid");
            Ok(())
        });
    }

    #[test]
    fn jwt_secret_wins_over_its_alias() {
        Jail::expect_with(|jail| {
            jail.set_env("JWT_SECRET_KEY", "a".repeat(40));
            jail.set_env("JWT_SECRET", "b".repeat(40));
            let settings = Settings::load(None).expect("loads");
            assert_eq!(
                settings
                    .control_plane
                    .jwt_secret
                    .expect("set")
                    .expose_secret(),
                "b".repeat(40)
            );
            Ok(())
        });
    }

    #[test]
    fn missing_or_short_jwt_secret_is_named() {
        Jail::expect_with(|jail| {
            let err = Settings::load(None)
                .unwrap()
                .validate_control_plane()
                .unwrap_err();
            assert!(err.to_string().contains("JWT_SECRET"), "{err}");
            jail.set_env("JWT_SECRET", "short");
            let err = Settings::load(None)
                .unwrap()
                .validate_control_plane()
                .unwrap_err();
            assert!(err.to_string().contains("32 bytes"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn a_named_settings_file_that_is_missing_is_an_error() {
        Jail::expect_with(|_| {
            let err = Settings::load(Some(Path::new("nope.toml"))).unwrap_err();
            assert!(err.to_string().contains("nope.toml"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn bad_values_are_refused_with_their_name() {
        Jail::expect_with(|jail| {
            jail.set_env("JWT_SECRET", "x".repeat(32));
            jail.set_env("SECRETS_KEY", TEST_KEY);
            jail.set_env(
                "CORS_ALLOWED_ORIGINS",
                "https://ok.example,https://bad.example/path",
            );
            let err = Settings::load(None)
                .unwrap()
                .validate_control_plane()
                .unwrap_err();
            assert!(err.to_string().contains("CORS_ALLOWED_ORIGINS"), "{err}");
            jail.set_env("CORS_ALLOWED_ORIGINS", "");
            jail.set_env("BCRYPT_COST", "40");
            let err = Settings::load(None)
                .unwrap()
                .validate_control_plane()
                .unwrap_err();
            assert!(err.to_string().contains("BCRYPT_COST"), "{err}");
            jail.set_env("BCRYPT_COST", "twelve");
            assert!(Settings::load(None).is_err());
            Ok(())
        });
    }

    #[test]
    fn a_bad_database_url_is_refused_without_echoing_it() {
        Jail::expect_with(|jail| {
            jail.set_env("JWT_SECRET", "x".repeat(32));
            jail.set_env("SECRETS_KEY", TEST_KEY);
            jail.set_env("DATABASE_URL", "mysql://user:hunter2@db/x");
            let err = Settings::load(None)
                .unwrap()
                .validate_control_plane()
                .unwrap_err();
            assert!(err.to_string().contains("DATABASE_URL"), "{err}");
            assert!(!err.to_string().contains("hunter2"), "{err}");
            Ok(())
        });
    }
}
