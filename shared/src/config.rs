//! Settings for both daemons, loaded with figment: built-in defaults, then an optional TOML
//! file, then the environment. Environment names are the field names in upper case
//! (`DATABASE_URL`, `BCRYPT_COST`, ...); the seed's names work as they are, including the alias
//! `JWT_SECRET_KEY` for `JWT_SECRET`. Every setting is listed with its default in the README.

use std::{net::SocketAddr, path::Path};

use figment::{
    Figment,
    providers::{Env, Format, Serialized, Toml},
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

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

/// Every setting of both daemons. Each daemon reads the part it needs; `validate_*` methods
/// check the parts a daemon depends on before it starts.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    // --- common -----------------------------------------------------------------------------
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
    /// this long is closed too (both daemons).
    pub http_header_timeout_secs: u64,
    /// Comma-separated endpoint URLs that MCP servers are given (seed name). An entry may be a
    /// wildcard such as `https://*.mcp.example.com`.
    pub mcp_gateway_url_pools: String,
    /// 32 random bytes, base64: encrypts source secrets at rest.
    #[serde(serialize_with = "serialize_opt_secret")]
    pub secrets_key: Option<SecretString>,
    /// Earlier `SECRETS_KEY`s, comma-separated: they still decrypt until
    /// `control-plane secrets rotate` has re-encrypted everything under the current key.
    #[serde(
        deserialize_with = "comma_secrets",
        serialize_with = "serialize_secrets"
    )]
    pub secrets_old_keys: Vec<SecretString>,

    // --- control plane ----------------------------------------------------------------------
    /// Address the control-plane REST API listens on.
    pub control_plane_addr: SocketAddr,
    /// HS256 signing key for session tokens, at least 32 bytes. Alias: `JWT_SECRET_KEY`.
    #[serde(serialize_with = "serialize_opt_secret")]
    pub jwt_secret: Option<SecretString>,
    /// Lifetime of a session token.
    pub jwt_ttl_secs: u64,
    /// bcrypt work factor (4 to 31); every step doubles the cost of a signin.
    pub bcrypt_cost: u32,
    /// Whether the session cookie carries `Secure` (sent over HTTPS only).
    pub cookie_secure: bool,
    /// Browser origins allowed by CORS, comma-separated. `*` allows any origin, but then
    /// without credentials.
    #[serde(deserialize_with = "comma_list")]
    pub cors_allowed_origins: Vec<String>,
    /// Whether `POST /signup` is open to anyone.
    pub signup_enabled: bool,
    /// Signin attempts allowed per minute from one client address.
    pub signin_attempts_per_minute_per_client: u32,
    /// Failed signins allowed per minute for one email address from one client address
    /// (failures only: a stranger's failures never spend another address's budget).
    pub signin_attempts_per_minute_per_email: u32,
    /// Failed signins allowed per hour for one email address from all client addresses
    /// together; beyond it, each address gets one try a minute for that email (so a correct
    /// password from an address that has not failed still gets through).
    pub signin_failures_per_hour_per_email: u32,
    /// Take the client address from `X-Forwarded-For` (only behind a proxy that sets it).
    pub trust_forwarded_for: bool,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// Seconds a request may take before it is answered 503.
    pub request_timeout_secs: u64,
    /// Seconds before an endpoint freed by one user can be given to another user.
    pub endpoint_cooldown_secs: u64,
    /// Most live MCP servers one user may have. Endpoints a user freed that are still cooling
    /// down count too, so no account can hold more than this many fixed endpoints.
    pub max_servers_per_user: u32,
    /// Most sources one user may have.
    pub max_sources_per_user: u32,
    /// Most fixed pool endpoints one user may hold, live or still reserved for them by the
    /// cooldown; never more than all but one of the fixed entries, so one account cannot lock
    /// everyone else out of a fixed pool. Beyond it, servers get wildcard names (if any).
    pub fixed_endpoints_per_user: u32,
    /// Days tool-call audit records are kept.
    pub audit_retention_days: u32,
    /// Days control-plane activity records are kept.
    pub activity_retention_days: u32,
    /// Address of the control plane's Prometheus `/metrics` listener; empty: none.
    pub control_plane_metrics_addr: String,
    /// Host suffixes a Snowflake `account_url` must end with.
    #[serde(deserialize_with = "comma_list")]
    pub snowflake_allowed_host_suffixes: Vec<String>,
    /// Hosts a `postgres` source may connect to: names, IP addresses, CIDR blocks. Empty: no
    /// `postgres` source can be created (a database host is a way into the operator's
    /// network, so the operator opts in). Loopback, private and link-local addresses a name
    /// resolves to are refused unless an entry covers them.
    #[serde(deserialize_with = "comma_list")]
    pub postgres_allowed_hosts: Vec<String>,
    /// Hosts a `postgres` source may reach without TLS (`sslmode` `disable` or `prefer`).
    #[serde(deserialize_with = "comma_list")]
    pub postgres_allow_insecure_hosts: Vec<String>,
    /// Hosts a remote MCP server (`mcp` source) may be reached at beyond public DNS names over
    /// https: these may be IP literals or single-label names, use plain http and resolve to
    /// loopback, private or link-local addresses. Empty by default.
    #[serde(deserialize_with = "comma_list")]
    pub mcp_allowed_hosts: Vec<String>,

    // --- OAuth (the control plane issues, the gateways verify) -------------------------------
    /// The control plane's public origin: the OAuth issuer, and where agents' browsers are
    /// sent to sign in. Both daemons read it (gateways accept only tokens it issued).
    pub control_plane_public_url: String,
    /// Lifetime of an OAuth access token.
    pub oauth_access_token_ttl_secs: u64,
    /// Lifetime of an OAuth refresh token (each use rotates it).
    pub oauth_refresh_token_ttl_secs: u64,
    /// Hosts whose client ID metadata documents may be fetched over plain `http://` and from
    /// loopback or private addresses (local development and tests only).
    #[serde(deserialize_with = "comma_list")]
    pub oauth_cimd_allow_http_hosts: Vec<String>,
    /// Client registrations (`POST /oauth/register`) allowed per hour from one client address.
    pub oauth_registrations_per_hour_per_client: u32,

    // --- gateway ----------------------------------------------------------------------------
    /// Address the gateway's MCP endpoint listens on.
    pub gateway_addr: SocketAddr,
    /// Seconds between full reloads of the configuration snapshot (changes arrive at once
    /// through LISTEN/NOTIFY; this is the safety net).
    pub gateway_resync_secs: u64,
    /// Milliseconds each source gets to answer a search or fetch.
    pub gateway_source_timeout_ms: u64,
    /// Most results one `search` returns, merged fairly across sources.
    pub gateway_max_results: usize,
    /// Route by `X-Forwarded-Host` (only behind a proxy that sets it).
    pub gateway_trust_forwarded_host: bool,
    /// Take a caller's address from the last `X-Forwarded-For` hop (only behind a proxy that
    /// sets it); public servers count their rate limit per address.
    pub gateway_trust_forwarded_for: bool,
    /// Upstream calls one server may have in flight at once, per gateway replica, whoever
    /// makes them; further calls wait (within their deadline).
    pub gateway_upstream_calls_per_server: usize,
    /// Browser origins allowed besides each server's own, comma-separated.
    #[serde(deserialize_with = "comma_list")]
    pub gateway_allowed_origins: Vec<String>,
    /// Requests per minute one access key, OAuth grant, or client address of a public server
    /// may make.
    pub gateway_key_requests_per_minute: u32,
    /// Tool-call audit records waiting to be written at most; beyond, records are dropped (and
    /// counted) so that a slow database never slows a tool call.
    pub gateway_audit_buffer: usize,
    /// Address of the gateway's Prometheus `/metrics` listener; empty: none.
    pub gateway_metrics_addr: String,
    /// Seconds a stopping gateway keeps accepting requests (unready, answering with
    /// `Connection: close`) before it closes its listener.
    pub gateway_drain_secs: u64,
    /// Keep MCP sessions in memory (then a client must stick to one replica). Off by default:
    /// every request is answered on its own, by any replica.
    pub gateway_sessions: bool,

    // --- upstream APIs (deployment settings: national clouds, offline tests) ---------------
    /// Microsoft Graph API base URL.
    pub graph_base_url: String,
    /// Microsoft identity platform (token endpoint) base URL.
    pub microsoft_login_url: String,
    /// Box API base URL.
    pub box_api_url: String,
    /// Box token endpoint.
    pub box_token_url: String,
    /// Where Snowflake calls go instead of each source's `account_url` (a forward proxy or an
    /// offline fake). Empty (the default): the account URL.
    pub snowflake_base_url: String,
    /// Seconds to establish a connection to an upstream.
    pub upstream_connect_timeout_secs: u64,
}

impl Default for Settings {
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
            mcp_gateway_url_pools: String::new(),
            secrets_key: None,
            secrets_old_keys: Vec::new(),
            control_plane_addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            jwt_secret: None,
            jwt_ttl_secs: 3600,
            bcrypt_cost: 12,
            cookie_secure: true,
            cors_allowed_origins: Vec::new(),
            signup_enabled: true,
            signin_attempts_per_minute_per_client: 30,
            signin_attempts_per_minute_per_email: 10,
            signin_failures_per_hour_per_email: 100,
            trust_forwarded_for: false,
            max_body_bytes: 64 * 1024,
            request_timeout_secs: 30,
            endpoint_cooldown_secs: 24 * 60 * 60,
            max_servers_per_user: 25,
            max_sources_per_user: 200,
            fixed_endpoints_per_user: 2,
            snowflake_allowed_host_suffixes: vec![".snowflakecomputing.com".to_owned()],
            postgres_allowed_hosts: Vec::new(),
            postgres_allow_insecure_hosts: Vec::new(),
            mcp_allowed_hosts: Vec::new(),
            audit_retention_days: 30,
            activity_retention_days: 90,
            control_plane_public_url: "http://127.0.0.1:8080".to_owned(),
            oauth_access_token_ttl_secs: 3600,
            oauth_refresh_token_ttl_secs: 30 * 24 * 60 * 60,
            oauth_cimd_allow_http_hosts: Vec::new(),
            // Hosted agents (ChatGPT, Claude) register from a few shared addresses.
            oauth_registrations_per_hour_per_client: 300,
            control_plane_metrics_addr: "127.0.0.1:9101".to_owned(),
            gateway_addr: SocketAddr::from(([127, 0, 0, 1], 8081)),
            gateway_resync_secs: 60,
            gateway_source_timeout_ms: 8000,
            gateway_max_results: 20,
            gateway_trust_forwarded_host: false,
            gateway_trust_forwarded_for: false,
            gateway_upstream_calls_per_server: 32,
            gateway_allowed_origins: Vec::new(),
            gateway_sessions: false,
            gateway_drain_secs: 5,
            gateway_key_requests_per_minute: 600,
            gateway_audit_buffer: 10_000,
            gateway_metrics_addr: "127.0.0.1:9102".to_owned(),
            graph_base_url: "https://graph.microsoft.com/v1.0".to_owned(),
            microsoft_login_url: "https://login.microsoftonline.com".to_owned(),
            box_api_url: "https://api.box.com/2.0".to_owned(),
            box_token_url: "https://api.box.com/oauth2/token".to_owned(),
            snowflake_base_url: String::new(),
            upstream_connect_timeout_secs: 5,
        }
    }
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
        let mut settings: Settings = figment.extract().map_err(Box::new)?;
        settings.database_url = normalise_database_url(settings.database_url.expose_secret());
        Ok(settings)
    }

    /// Checks what the control plane needs before it starts.
    pub fn validate_control_plane(&self) -> Result<(), SettingsError> {
        self.validate_common()?;
        match &self.jwt_secret {
            None => {
                return Err(invalid(
                    "JWT_SECRET",
                    "is not set; give it at least 32 random bytes (for example `openssl rand -base64 48`)",
                ));
            }
            Some(secret) if secret.expose_secret().len() < 32 => {
                return Err(invalid("JWT_SECRET", "is shorter than 32 bytes"));
            }
            Some(_) => {}
        }
        if !(4..=31).contains(&self.bcrypt_cost) {
            return Err(invalid("BCRYPT_COST", "must be between 4 and 31"));
        }
        if self.jwt_ttl_secs < 60 {
            return Err(invalid("JWT_TTL_SECS", "must be at least 60"));
        }
        if self.signin_attempts_per_minute_per_client == 0
            || self.signin_attempts_per_minute_per_email == 0
        {
            return Err(invalid(
                "SIGNIN_ATTEMPTS_PER_MINUTE_PER_*",
                "must be at least 1",
            ));
        }
        if self.signin_failures_per_hour_per_email == 0 {
            return Err(invalid(
                "SIGNIN_FAILURES_PER_HOUR_PER_EMAIL",
                "must be at least 1",
            ));
        }
        if self.max_body_bytes < 1024 {
            return Err(invalid("MAX_BODY_BYTES", "must be at least 1024"));
        }
        self.keyring()?;
        self.endpoint_pool()?;
        if self.max_servers_per_user == 0 {
            return Err(invalid("MAX_SERVERS_PER_USER", "must be at least 1"));
        }
        if self.max_sources_per_user == 0 {
            return Err(invalid("MAX_SOURCES_PER_USER", "must be at least 1"));
        }
        if self.fixed_endpoints_per_user == 0 {
            return Err(invalid("FIXED_ENDPOINTS_PER_USER", "must be at least 1"));
        }
        if self.audit_retention_days == 0 {
            return Err(invalid("AUDIT_RETENTION_DAYS", "must be at least 1"));
        }
        if self.activity_retention_days == 0 {
            return Err(invalid("ACTIVITY_RETENTION_DAYS", "must be at least 1"));
        }
        listen_address(
            "CONTROL_PLANE_METRICS_ADDR",
            &self.control_plane_metrics_addr,
        )?;
        self.validate_snowflake_suffixes()?;
        self.validate_postgres_hosts()?;
        self.validate_mcp_allowed_hosts()?;
        // Only the control plane bounds a request's time (the gateway's calls are bounded by
        // GATEWAY_SOURCE_TIMEOUT_MS).
        if self.request_timeout_secs == 0 {
            return Err(invalid("REQUEST_TIMEOUT_SECS", "must be at least 1"));
        }
        if !(60..=86_400).contains(&self.oauth_access_token_ttl_secs) {
            return Err(invalid(
                "OAUTH_ACCESS_TOKEN_TTL_SECS",
                "must be between 60 and 86400",
            ));
        }
        if self.oauth_refresh_token_ttl_secs < self.oauth_access_token_ttl_secs {
            return Err(invalid(
                "OAUTH_REFRESH_TOKEN_TTL_SECS",
                "must be at least OAUTH_ACCESS_TOKEN_TTL_SECS",
            ));
        }
        if self.oauth_registrations_per_hour_per_client == 0 {
            return Err(invalid(
                "OAUTH_REGISTRATIONS_PER_HOUR_PER_CLIENT",
                "must be at least 1",
            ));
        }
        for origin in &self.cors_allowed_origins {
            if origin != "*" && !is_origin(origin) {
                return Err(invalid(
                    "CORS_ALLOWED_ORIGINS",
                    &format!("{origin:?} is not an origin such as https://console.example.com"),
                ));
            }
        }
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

    /// The parsed endpoint pool.
    pub fn endpoint_pool(&self) -> Result<crate::model::EndpointPool, SettingsError> {
        crate::model::EndpointPool::parse(&self.mcp_gateway_url_pools).map_err(|reason| {
            SettingsError::Invalid {
                name: "MCP_GATEWAY_URL_POOLS",
                reason,
            }
        })
    }

    /// Checks what the gateway needs before it starts.
    pub fn validate_gateway(&self) -> Result<(), SettingsError> {
        self.validate_common()?;
        self.keyring()?;
        if self.gateway_resync_secs == 0 {
            return Err(invalid("GATEWAY_RESYNC_SECS", "must be at least 1"));
        }
        if self.gateway_source_timeout_ms < 100 {
            return Err(invalid("GATEWAY_SOURCE_TIMEOUT_MS", "must be at least 100"));
        }
        if !(1..=200).contains(&self.gateway_max_results) {
            return Err(invalid("GATEWAY_MAX_RESULTS", "must be between 1 and 200"));
        }
        if self.gateway_key_requests_per_minute == 0 {
            return Err(invalid(
                "GATEWAY_KEY_REQUESTS_PER_MINUTE",
                "must be at least 1",
            ));
        }
        if self.gateway_drain_secs > 300 {
            return Err(invalid("GATEWAY_DRAIN_SECS", "must be at most 300"));
        }
        if !(1..=10_000).contains(&self.gateway_upstream_calls_per_server) {
            return Err(invalid(
                "GATEWAY_UPSTREAM_CALLS_PER_SERVER",
                "must be between 1 and 10000",
            ));
        }
        if self.gateway_audit_buffer < 100 {
            return Err(invalid("GATEWAY_AUDIT_BUFFER", "must be at least 100"));
        }
        listen_address("GATEWAY_METRICS_ADDR", &self.gateway_metrics_addr)?;
        // The gateway checks every Snowflake source's host against them when loading it.
        self.validate_snowflake_suffixes()?;
        self.validate_postgres_hosts()?;
        self.validate_mcp_allowed_hosts()?;
        for (name, value) in [
            ("GRAPH_BASE_URL", &self.graph_base_url),
            ("MICROSOFT_LOGIN_URL", &self.microsoft_login_url),
            ("BOX_API_URL", &self.box_api_url),
            ("BOX_TOKEN_URL", &self.box_token_url),
            ("SNOWFLAKE_BASE_URL", &self.snowflake_base_url),
        ] {
            if name == "SNOWFLAKE_BASE_URL" && value.is_empty() {
                continue;
            }
            match url::Url::parse(value) {
                Ok(url) if matches!(url.scheme(), "http" | "https") && url.host_str().is_some() => {
                }
                _ => return Err(invalid(name, &format!("{value:?} is not an http(s) URL"))),
            }
        }
        for origin in &self.gateway_allowed_origins {
            if !is_origin(origin) {
                return Err(invalid(
                    "GATEWAY_ALLOWED_ORIGINS",
                    &format!("{origin:?} is not an origin such as https://chatgpt.com"),
                ));
            }
        }
        Ok(())
    }

    /// Both daemons read the list: the control plane on input, the gateway at load and when
    /// it connects. Entries are host names or IP addresses (IPv6 in brackets), no ports.
    fn validate_mcp_allowed_hosts(&self) -> Result<(), SettingsError> {
        for host in &self.mcp_allowed_hosts {
            let host = host.trim();
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
            if !ok {
                return Err(invalid(
                    "MCP_ALLOWED_HOSTS",
                    &format!(
                        "{host:?} is not a host name or IP address (IPv6 in brackets, no port)"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Both daemons read the suffixes: the control plane on input, the gateway at load.
    fn validate_snowflake_suffixes(&self) -> Result<(), SettingsError> {
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
        Ok(())
    }

    /// Both daemons read the host lists: the control plane on input, the gateway at load and
    /// at connect time.
    fn validate_postgres_hosts(&self) -> Result<(), SettingsError> {
        for (name, entries) in [
            ("POSTGRES_ALLOWED_HOSTS", &self.postgres_allowed_hosts),
            (
                "POSTGRES_ALLOW_INSECURE_HOSTS",
                &self.postgres_allow_insecure_hosts,
            ),
        ] {
            crate::model::postgres::HostList::parse(entries)
                .map_err(|problem| invalid(name, &problem))?;
        }
        Ok(())
    }

    fn validate_common(&self) -> Result<(), SettingsError> {
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
            // Remote MCP servers may be reached only at hosts, not URLs or ports.
            for bad in ["127.0.0.1:8080", "http://intranet", "::1"] {
                jail.set_env("MCP_ALLOWED_HOSTS", bad);
                let err = Settings::load(None)
                    .unwrap()
                    .validate_gateway()
                    .unwrap_err();
                assert!(err.to_string().contains("MCP_ALLOWED_HOSTS"), "{err}");
            }
            jail.set_env("MCP_ALLOWED_HOSTS", "127.0.0.1, localhost,[::1]");
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
            assert_eq!(settings.bcrypt_cost, 6, "environment overrides the file");
            assert_eq!(settings.log_level, "debug", "file overrides the default");
            assert_eq!(settings.cors_allowed_origins, ["https://a.example"]);
            assert_eq!(settings.jwt_ttl_secs, 3600, "default stays");
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
                settings.database_url.expose_secret(),
                "postgresql://u:p@db:5432/mcp_server"
            );
            assert_eq!(
                settings
                    .jwt_secret
                    .as_ref()
                    .map(|s| s.expose_secret().len()),
                Some(40)
            );
            assert_eq!(
                settings.mcp_gateway_url_pools,
                "https://mcp1.example.com,https://mcp2.example.com"
            );
            assert_eq!(
                settings.cors_allowed_origins,
                ["https://a.example", "https://b.example"]
            );
            Settings {
                secrets_key: Some(SecretString::from(TEST_KEY)),
                ..settings
            }
            .validate_control_plane()
            .expect("valid");
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
                settings.jwt_secret.expect("set").expose_secret(),
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
