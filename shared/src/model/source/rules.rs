//! The deployment's rules a source's settings are checked against.

use crate::hosts::{HostList, ProductDatabase};

// Built from the deployment's settings in `crate::config` (settings sit above the
// model: they parse into its types).

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
