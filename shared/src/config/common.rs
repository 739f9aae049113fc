//! The settings both daemons read: the database, logging, HTTP connection limits, the secrets
//! keyring and the control plane's public origin ([`CommonSettings`]); and the deployment's
//! egress rules for user-configured source hosts ([`SourceSettings`]), which the control plane
//! checks input against and the gateway checks again when it loads and connects.

use crate::{
    hosts::{HostList, ProductDatabase},
    model::SourceRules,
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::{
    LogFormat, SettingsError, comma_list, comma_secrets, invalid, is_origin, serialize_opt_secret,
    serialize_secret, serialize_secrets,
};

/// Read by both daemons; each checks it with [`CommonSettings::validate`] before it starts.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct CommonSettings {
    /// Postgres URL. `postgresql+asyncpg://` (the seed's form) is accepted as `postgresql://`.
    #[serde(serialize_with = "serialize_secret")]
    pub database_url: SecretString,
    /// Upper bound of pooled connections per daemon.
    pub database_max_connections: u32,
    /// How long a request waits for a pooled connection before it is answered 503.
    pub database_acquire_timeout_secs: u64,
    /// Name the daemon reports to Postgres (`pg_stat_activity.application_name`).
    pub database_application_name: String,
    /// `human` or `json`.
    pub log_format: LogFormat,
    /// Default log filter when `RUST_LOG` is not set.
    pub log_level: String,
    /// Seconds a client has to send a request's line and headers; a keep-alive connection idle
    /// this long is closed too.
    pub http_header_timeout_secs: u64,
    /// 32 random bytes, base64: encrypts source secrets at rest (the control plane seals, the
    /// gateway opens).
    #[serde(serialize_with = "serialize_opt_secret")]
    pub secrets_key: Option<SecretString>,
    /// Earlier `SECRETS_KEY`s, comma-separated: they still decrypt until
    /// `control-plane secrets rotate` has re-encrypted everything under the current key.
    #[serde(
        deserialize_with = "comma_secrets",
        serialize_with = "serialize_secrets"
    )]
    pub secrets_old_keys: Vec<SecretString>,
    /// The control plane's public origin: the OAuth issuer, and where agents' browsers are
    /// sent to sign in. The gateways accept only tokens it issued.
    pub control_plane_public_url: String,
}

impl Default for CommonSettings {
    fn default() -> Self {
        Self {
            database_url: SecretString::from("postgres://localhost:5432/mcp_gateway"),
            database_max_connections: 10,
            database_acquire_timeout_secs: 5,
            database_application_name: "mcp-gateway".to_owned(),
            log_format: LogFormat::Human,
            // Postgres notices such as "relation already exists, skipping" are not news.
            log_level: "info,sqlx::postgres::notice=warn".to_owned(),
            http_header_timeout_secs: 15,
            secrets_key: None,
            secrets_old_keys: Vec::new(),
            control_plane_public_url: "http://127.0.0.1:8080".to_owned(),
        }
    }
}

impl CommonSettings {
    /// Checks the part both daemons depend on, but for the keyring: each daemon builds it
    /// ([`CommonSettings::keyring`]) after checking its own section, so that a missing
    /// `JWT_SECRET` is reported before a missing `SECRETS_KEY`.
    pub fn validate(&self) -> Result<(), SettingsError> {
        if !is_origin(&self.control_plane_public_url) {
            return Err(invalid(
                "CONTROL_PLANE_PUBLIC_URL",
                &format!(
                    "{:?} is not an origin such as https://mcp-admin.example.com (no path, no trailing slash)",
                    self.control_plane_public_url
                ),
            ));
        }
        if self.database_max_connections == 0 {
            return Err(invalid("DATABASE_MAX_CONNECTIONS", "must be at least 1"));
        }
        if !(1..=600).contains(&self.http_header_timeout_secs) {
            return Err(invalid(
                "HTTP_HEADER_TIMEOUT_SECS",
                "must be between 1 and 600",
            ));
        }
        let url = self.database_url.expose_secret();
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(invalid("DATABASE_URL", "is not a postgres:// URL"));
        }
        url.parse::<sqlx::postgres::PgConnectOptions>()
            // The parser's message may quote the URL, password included: say only what is wrong.
            .map_err(|_| invalid("DATABASE_URL", "is not a postgres:// URL"))?;
        Ok(())
    }

    /// The secrets keyring: `SECRETS_KEY` encrypts, it and `SECRETS_OLD_KEYS` decrypt.
    pub fn keyring(&self) -> Result<crate::crypto::Keyring, SettingsError> {
        let current = self.secrets_key.as_ref().ok_or_else(|| {
            invalid("SECRETS_KEY", "is not set; give it 32 random bytes in base64 (for example `openssl rand -base64 32`)")
        })?;
        let bad = |name: &'static str| {
            move |err: crate::crypto::CryptoError| invalid(name, &err.to_string())
        };
        let current = crate::crypto::SecretKey::from_base64(current, "SECRETS_KEY")
            .map_err(bad("SECRETS_KEY"))?;
        let old = self
            .secrets_old_keys
            .iter()
            .map(|k| crate::crypto::SecretKey::from_base64(k, "SECRETS_OLD_KEYS"))
            .collect::<Result<Vec<_>, _>>()
            .map_err(bad("SECRETS_OLD_KEYS"))?;
        Ok(crate::crypto::Keyring::new(current, old))
    }
}

/// Where user-configured sources may point. Both daemons read it (as
/// [`crate::model::SourceRules`]): the control plane refuses input outside it, the gateway stops
/// serving a stored source outside it and checks resolved addresses when it connects. So both
/// validate it, with [`SourceSettings::validate`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct SourceSettings {
    /// Host suffixes a Snowflake `account_url` must end with (the gateway sends the source's
    /// token only there).
    #[serde(deserialize_with = "comma_list")]
    pub snowflake_allowed_host_suffixes: Vec<String>,
    /// Hosts a `postgres` source may connect to: names, IP addresses, CIDR blocks, each for any
    /// port or with `:port` for that one only (`db.internal:5432`, `10.0.0.0/24:5432`,
    /// `[fd00::5]:5432`). Empty: no `postgres` source can be created (a database host is a way
    /// into the operator's network, so the operator opts in). Loopback, private and link-local
    /// addresses a name resolves to are refused unless an entry covers them. The product's own
    /// database (`DATABASE_URL`'s server) is refused whatever the list says.
    #[serde(deserialize_with = "comma_list")]
    pub postgres_allowed_hosts: Vec<String>,
    /// Hosts a `postgres` source may reach without TLS (`sslmode` `disable` or `prefer`), in
    /// the same form.
    #[serde(deserialize_with = "comma_list")]
    pub postgres_allow_insecure_hosts: Vec<String>,
    /// Hosts a remote MCP server (`mcp` source) may be reached at beyond public DNS names over
    /// https: these may be IP literals or single-label names, use plain http and resolve to
    /// loopback, private or link-local addresses. Empty by default.
    #[serde(deserialize_with = "comma_list")]
    pub mcp_allowed_hosts: Vec<String>,
}

impl Default for SourceSettings {
    fn default() -> Self {
        Self {
            snowflake_allowed_host_suffixes: vec![".snowflakecomputing.com".to_owned()],
            postgres_allowed_hosts: Vec::new(),
            postgres_allow_insecure_hosts: Vec::new(),
            mcp_allowed_hosts: Vec::new(),
        }
    }
}

impl SourceSettings {
    /// Checks the egress rules (both daemons).
    pub fn validate(&self) -> Result<(), SettingsError> {
        if self
            .snowflake_allowed_host_suffixes
            .iter()
            .any(|s| !s.starts_with('.') || s.len() < 4)
        {
            return Err(invalid(
                "SNOWFLAKE_ALLOWED_HOST_SUFFIXES",
                "entries must start with a dot, like .snowflakecomputing.com",
            ));
        }
        for (name, entries) in [
            ("POSTGRES_ALLOWED_HOSTS", &self.postgres_allowed_hosts),
            (
                "POSTGRES_ALLOW_INSECURE_HOSTS",
                &self.postgres_allow_insecure_hosts,
            ),
        ] {
            crate::hosts::HostList::parse(entries).map_err(|problem| invalid(name, &problem))?;
        }
        self.validate_mcp_allowed_hosts()
    }

    /// Entries are host names or IP addresses (IPv6 in brackets), each with a port or not.
    fn validate_mcp_allowed_hosts(&self) -> Result<(), SettingsError> {
        for entry in &self.mcp_allowed_hosts {
            let entry = entry.trim();
            let (host, port) = match entry.rsplit_once(':') {
                Some((host, port)) if !port.contains(']') => (host, Some(port)),
                _ => (entry, None),
            };
            let port_ok =
                port.is_none_or(|p| !p.starts_with('0') && p.parse::<u16>().is_ok_and(|p| p > 0));
            let ok = if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
                v6.parse::<std::net::Ipv6Addr>().is_ok()
            } else {
                !host.is_empty()
                    && host.len() <= 253
                    && host.split('.').all(|label| {
                        !label.is_empty()
                            && label.len() <= 63
                            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                    })
            };
            if !ok || !port_ok {
                return Err(invalid(
                    "MCP_ALLOWED_HOSTS",
                    &format!(
                        "{entry:?} is not a host name or IP address (IPv6 in brackets), \
                         optionally with :port"
                    ),
                ));
            }
        }
        Ok(())
    }
}

impl SourceRules {
    /// The rules the deployment's settings give.
    pub fn from_settings(settings: &SourceSettings) -> Self {
        // Settings are validated when loaded, so the lists parse; a list that did not would
        // allow nothing.
        let hosts = |entries: &[String]| HostList::parse(entries).unwrap_or_default();
        Self {
            snowflake_suffixes: settings.snowflake_allowed_host_suffixes.clone(),
            postgres_hosts: hosts(&settings.postgres_allowed_hosts),
            postgres_insecure_hosts: hosts(&settings.postgres_allow_insecure_hosts),
            mcp_allowed_hosts: settings
                .mcp_allowed_hosts
                .iter()
                .map(|h| h.trim().to_ascii_lowercase())
                .filter(|h| !h.is_empty())
                .collect(),
            product_database: None,
        }
    }

    /// The rules a daemon applies: the deployment's settings, and the product's own database
    /// (its host resolved now) kept out of reach of `postgres` sources.
    pub fn for_deployment(settings: &super::Settings) -> Self {
        use secrecy::ExposeSecret;
        Self {
            product_database: ProductDatabase::resolve(
                settings.common.database_url.expose_secret(),
            ),
            ..Self::from_settings(&settings.sources)
        }
    }
}
