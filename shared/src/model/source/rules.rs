//! The deployment's rules a source's settings are checked against.

use crate::hosts::{HostList, ProductDatabase};

/// The deployment's rules a source's settings are checked against: where a source may send its
/// credentials or connect. The control plane applies them to input and the gateway again at
/// load, so a source that leaves the allowed set stops being served.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceRules {
    /// `SNOWFLAKE_ALLOWED_HOST_SUFFIXES`: the hosts a Snowflake account URL may name.
    pub snowflake_suffixes: Vec<String>,
    /// `POSTGRES_ALLOWED_HOSTS`: the hosts a `postgres` source may connect to.
    pub postgres_hosts: HostList,
    /// `POSTGRES_ALLOW_INSECURE_HOSTS`: the hosts a `postgres` source may reach without TLS
    /// (`sslmode` `disable` or `prefer`).
    pub postgres_insecure_hosts: HostList,
    /// `MCP_ALLOWED_HOSTS` (lowercase): the hosts a remote MCP server's URL may name beyond
    /// public DNS names, over http too, and at any address they resolve to.
    pub mcp_allowed_hosts: Vec<String>,
    /// The server `DATABASE_URL` names, which no `postgres` source may point at (`None`: no
    /// such check, as in tests of the rules alone).
    pub product_database: Option<ProductDatabase>,
}

impl SourceRules {
    /// The rules the deployment's settings give.
    pub fn from_settings(settings: &crate::config::SourceSettings) -> Self {
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
    pub fn for_deployment(settings: &crate::Settings) -> Self {
        use secrecy::ExposeSecret;
        Self {
            product_database: ProductDatabase::resolve(
                settings.common.database_url.expose_secret(),
            ),
            ..Self::from_settings(&settings.sources)
        }
    }
}
