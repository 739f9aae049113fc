//! The settings only the control plane reads: its listeners, sessions and signin limits, the
//! endpoint pool and per-user quotas, retention of the records it prunes, and the OAuth
//! authorization server it runs. The field names are the environment names in lower case.

use std::net::SocketAddr;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::{SettingsError, comma_list, invalid, is_origin, listen_address, serialize_opt_secret};

/// Read by the control plane only; checked by [`ControlPlaneSettings::validate`] when it starts.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct ControlPlaneSettings {
    /// Address the control-plane REST API listens on (`CONTROL_PLANE_ADDR`).
    #[serde(rename = "control_plane_addr")]
    pub addr: SocketAddr,
    /// Address of the Prometheus `/metrics` listener (`CONTROL_PLANE_METRICS_ADDR`); empty: none.
    #[serde(rename = "control_plane_metrics_addr")]
    pub metrics_addr: String,
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
    /// Seconds a request may take before it is answered 503 (the gateway's calls are bounded
    /// by `GATEWAY_SOURCE_TIMEOUT_MS` instead).
    pub request_timeout_secs: u64,
    /// Comma-separated endpoint URLs that MCP servers are given (seed name). An entry may be a
    /// wildcard such as `https://*.mcp.example.com`.
    pub mcp_gateway_url_pools: String,
    /// Seconds before an endpoint freed by one user can be given to another user.
    pub endpoint_cooldown_secs: u64,
    /// Most live MCP servers one organization may have (the name predates organizations; a
    /// personal organization is one account's). Endpoints it freed that are still cooling down
    /// count too, so no organization can hold more than this many fixed endpoints.
    pub max_servers_per_user: u32,
    /// Most sources one organization may have.
    pub max_sources_per_user: u32,
    /// Most fixed pool endpoints one organization may hold, live or still reserved for it by
    /// the cooldown; never more than all but one of the fixed entries, so one organization
    /// cannot lock everyone else out of a fixed pool. Beyond it, servers get wildcard names (if
    /// any).
    pub fixed_endpoints_per_user: u32,
    /// Most team organizations one account may create (its personal one aside), so pool shares,
    /// which are per organization, cannot be multiplied at will.
    pub max_organizations_per_user: u32,
    /// Days tool-call audit records are kept (the control plane prunes them).
    pub audit_retention_days: u32,
    /// Days control-plane activity records are kept.
    pub activity_retention_days: u32,
    /// Lifetime of an OAuth access token.
    pub oauth_access_token_ttl_secs: u64,
    /// Lifetime of an OAuth refresh token (each use rotates it).
    pub oauth_refresh_token_ttl_secs: u64,
    /// Hosts whose client ID metadata documents may be fetched over plain `http://` and from
    /// loopback or private addresses (local development and tests only).
    #[serde(deserialize_with = "comma_list")]
    pub oauth_cimd_allow_http_hosts: Vec<String>,
    /// Client registrations (`POST /oauth/register`) allowed per hour from one client address
    /// (IPv6: per /64).
    pub oauth_registrations_per_hour_per_client: u32,
    /// Requests to `/oauth/authorize` (pages and forms) allowed per minute from one client
    /// address (IPv6: per /64), in bursts of as many.
    pub oauth_authorize_requests_per_minute_per_client: u32,
    /// Client ID metadata documents not yet cached that one client address (IPv6: per /64) may
    /// have fetched per minute, in bursts of as many.
    pub oauth_document_fetches_per_minute_per_client: u32,
}

impl Default for ControlPlaneSettings {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            metrics_addr: "127.0.0.1:9101".to_owned(),
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
            mcp_gateway_url_pools: String::new(),
            endpoint_cooldown_secs: 24 * 60 * 60,
            max_servers_per_user: 25,
            max_sources_per_user: 200,
            fixed_endpoints_per_user: 2,
            max_organizations_per_user: 10,
            audit_retention_days: 30,
            activity_retention_days: 90,
            oauth_access_token_ttl_secs: 3600,
            oauth_refresh_token_ttl_secs: 30 * 24 * 60 * 60,
            oauth_cimd_allow_http_hosts: Vec::new(),
            // Hosted agents (ChatGPT, Claude) register from a few shared addresses.
            oauth_registrations_per_hour_per_client: 300,
            // A person's connection takes four requests; offices share an address.
            oauth_authorize_requests_per_minute_per_client: 60,
            // A person meets one new client at a time.
            oauth_document_fetches_per_minute_per_client: 10,
        }
    }
}

impl ControlPlaneSettings {
    /// Checks the control plane's own settings.
    pub fn validate(&self) -> Result<(), SettingsError> {
        self.validate_sessions()?;
        if self.max_body_bytes < 1024 {
            return Err(invalid("MAX_BODY_BYTES", "must be at least 1024"));
        }
        if self.request_timeout_secs == 0 {
            return Err(invalid("REQUEST_TIMEOUT_SECS", "must be at least 1"));
        }
        self.endpoint_pool()?;
        for (name, value) in [
            ("MAX_SERVERS_PER_USER", self.max_servers_per_user),
            ("MAX_SOURCES_PER_USER", self.max_sources_per_user),
            ("FIXED_ENDPOINTS_PER_USER", self.fixed_endpoints_per_user),
            (
                "MAX_ORGANIZATIONS_PER_USER",
                self.max_organizations_per_user,
            ),
            ("AUDIT_RETENTION_DAYS", self.audit_retention_days),
            ("ACTIVITY_RETENTION_DAYS", self.activity_retention_days),
        ] {
            if value == 0 {
                return Err(invalid(name, "must be at least 1"));
            }
        }
        listen_address("CONTROL_PLANE_METRICS_ADDR", &self.metrics_addr)?;
        self.validate_oauth()?;
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

    /// The parsed endpoint pool.
    pub fn endpoint_pool(&self) -> Result<crate::model::EndpointPool, SettingsError> {
        crate::model::EndpointPool::parse(&self.mcp_gateway_url_pools).map_err(|reason| {
            SettingsError::Invalid {
                name: "MCP_GATEWAY_URL_POOLS",
                reason,
            }
        })
    }

    /// Session tokens, passwords and the signin limits.
    fn validate_sessions(&self) -> Result<(), SettingsError> {
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
        Ok(())
    }

    /// The OAuth authorization server's token lifetimes and limits.
    fn validate_oauth(&self) -> Result<(), SettingsError> {
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
        for (name, value) in [
            (
                "OAUTH_REGISTRATIONS_PER_HOUR_PER_CLIENT",
                self.oauth_registrations_per_hour_per_client,
            ),
            (
                "OAUTH_AUTHORIZE_REQUESTS_PER_MINUTE_PER_CLIENT",
                self.oauth_authorize_requests_per_minute_per_client,
            ),
            (
                "OAUTH_DOCUMENT_FETCHES_PER_MINUTE_PER_CLIENT",
                self.oauth_document_fetches_per_minute_per_client,
            ),
        ] {
            if value == 0 {
                return Err(invalid(name, "must be at least 1"));
            }
        }
        Ok(())
    }
}
