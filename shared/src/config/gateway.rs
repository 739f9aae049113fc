//! The settings only the gateway reads: its listeners, snapshot resync, limits on calls and
//! results ([`GatewaySettings`], environment names `GATEWAY_*`), and where it reaches the
//! upstream SaaS APIs ([`UpstreamSettings`]: national clouds, forward proxies, offline fakes).

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::{SettingsError, comma_list, invalid, is_origin, listen_address};

/// Read by the gateway only; checked by [`GatewaySettings::validate`] when it starts. Each
/// field's environment name is `GATEWAY_` and its name in upper case.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct GatewaySettings {
    /// Address the gateway's MCP endpoint listens on.
    #[serde(rename = "gateway_addr")]
    pub addr: SocketAddr,
    /// Seconds between full reloads of the configuration snapshot (changes arrive at once
    /// through LISTEN/NOTIFY; this is the safety net).
    #[serde(rename = "gateway_resync_secs")]
    pub resync_secs: u64,
    /// Milliseconds each source gets to answer a search or fetch.
    #[serde(rename = "gateway_source_timeout_ms")]
    pub source_timeout_ms: u64,
    /// Most results one `search` returns, merged fairly across sources.
    #[serde(rename = "gateway_max_results")]
    pub max_results: usize,
    /// Route by `X-Forwarded-Host` (only behind a proxy that sets it).
    #[serde(rename = "gateway_trust_forwarded_host")]
    pub trust_forwarded_host: bool,
    /// Take a caller's address from the last `X-Forwarded-For` hop (only behind a proxy that
    /// sets it); public servers count their rate limit per address.
    #[serde(rename = "gateway_trust_forwarded_for")]
    pub trust_forwarded_for: bool,
    /// Upstream calls one server may have in flight at once, per gateway replica, whoever
    /// makes them; further calls wait (within their deadline).
    #[serde(rename = "gateway_upstream_calls_per_server")]
    pub upstream_calls_per_server: usize,
    /// Browser origins allowed besides each server's own, comma-separated.
    #[serde(rename = "gateway_allowed_origins", deserialize_with = "comma_list")]
    pub allowed_origins: Vec<String>,
    /// Requests per minute one access key, OAuth grant, or client address of a public server
    /// may make.
    #[serde(rename = "gateway_key_requests_per_minute")]
    pub key_requests_per_minute: u32,
    /// Tool-call audit records waiting to be written at most; beyond, records are dropped (and
    /// counted) so that a slow database never slows a tool call.
    #[serde(rename = "gateway_audit_buffer")]
    pub audit_buffer: usize,
    /// Address of the gateway's Prometheus `/metrics` listener; empty: none.
    #[serde(rename = "gateway_metrics_addr")]
    pub metrics_addr: String,
    /// Seconds a stopping gateway keeps accepting requests (unready, answering with
    /// `Connection: close`) before it closes its listener.
    #[serde(rename = "gateway_drain_secs")]
    pub drain_secs: u64,
    /// Keep MCP sessions in memory (then a client must stick to one replica). Off by default:
    /// every request is answered on its own, by any replica.
    #[serde(rename = "gateway_sessions")]
    pub sessions: bool,
}

impl Default for GatewaySettings {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 8081)),
            resync_secs: 60,
            source_timeout_ms: 8000,
            max_results: 20,
            trust_forwarded_host: false,
            trust_forwarded_for: false,
            upstream_calls_per_server: 32,
            allowed_origins: Vec::new(),
            key_requests_per_minute: 600,
            audit_buffer: 10_000,
            metrics_addr: "127.0.0.1:9102".to_owned(),
            drain_secs: 5,
            sessions: false,
        }
    }
}

impl GatewaySettings {
    /// Checks the gateway's own settings.
    pub fn validate(&self) -> Result<(), SettingsError> {
        if self.resync_secs == 0 {
            return Err(invalid("GATEWAY_RESYNC_SECS", "must be at least 1"));
        }
        if self.source_timeout_ms < 100 {
            return Err(invalid("GATEWAY_SOURCE_TIMEOUT_MS", "must be at least 100"));
        }
        if !(1..=200).contains(&self.max_results) {
            return Err(invalid("GATEWAY_MAX_RESULTS", "must be between 1 and 200"));
        }
        if self.key_requests_per_minute == 0 {
            return Err(invalid(
                "GATEWAY_KEY_REQUESTS_PER_MINUTE",
                "must be at least 1",
            ));
        }
        if self.drain_secs > 300 {
            return Err(invalid("GATEWAY_DRAIN_SECS", "must be at most 300"));
        }
        if !(1..=10_000).contains(&self.upstream_calls_per_server) {
            return Err(invalid(
                "GATEWAY_UPSTREAM_CALLS_PER_SERVER",
                "must be between 1 and 10000",
            ));
        }
        if self.audit_buffer < 100 {
            return Err(invalid("GATEWAY_AUDIT_BUFFER", "must be at least 100"));
        }
        listen_address("GATEWAY_METRICS_ADDR", &self.metrics_addr)?;
        for origin in &self.allowed_origins {
            if !is_origin(origin) {
                return Err(invalid(
                    "GATEWAY_ALLOWED_ORIGINS",
                    &format!("{origin:?} is not an origin such as https://chatgpt.com"),
                ));
            }
        }
        Ok(())
    }
}

/// Where the gateway's source handlers reach the SaaS APIs. Read by the gateway only; checked
/// by [`UpstreamSettings::validate`] when it starts.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct UpstreamSettings {
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
    /// Seconds to establish a connection to an upstream (`UPSTREAM_CONNECT_TIMEOUT_SECS`).
    #[serde(rename = "upstream_connect_timeout_secs")]
    pub connect_timeout_secs: u64,
}

impl Default for UpstreamSettings {
    fn default() -> Self {
        Self {
            graph_base_url: "https://graph.microsoft.com/v1.0".to_owned(),
            microsoft_login_url: "https://login.microsoftonline.com".to_owned(),
            box_api_url: "https://api.box.com/2.0".to_owned(),
            box_token_url: "https://api.box.com/oauth2/token".to_owned(),
            snowflake_base_url: String::new(),
            connect_timeout_secs: 5,
        }
    }
}

impl UpstreamSettings {
    /// Every base URL is an http(s) URL; the Snowflake override may be empty.
    pub fn validate(&self) -> Result<(), SettingsError> {
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
        Ok(())
    }
}
