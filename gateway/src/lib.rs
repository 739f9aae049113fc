//! The gateway: the MCP data plane. Serves `search` and `fetch` for every live MCP server on its
//! own domain, from an in-memory snapshot of the configuration kept current from Postgres.
//!
//! Its modules are stages that point one way, each importing only those listed after it:
//! - [`startup`] builds and runs everything;
//! - [`ingress`]: the HTTP edge, host routing, credentials and rate budgets, admission;
//! - [`mcp`]: the MCP server rmcp drives, and the context a call carries;
//! - [`tools`]: `search` and `fetch`, the fan-out over a server's sources, result ids;
//! - [`sources`]: one handler per source type, calling the upstream APIs;
//! - [`observe`]: the audit log of calls and the metrics;
//! - [`snapshot`]: the configuration in memory, loaded and followed from Postgres;
//! - [`caps`], [`types`], `sql`: what every stage shares (answer caps, the values that travel
//!   between stages, SQL helpers).

pub mod caps;
pub mod ingress;
pub mod mcp;
pub mod observe;
pub mod snapshot;
pub mod sources;
mod sql;
pub mod startup;
pub mod tools;
pub mod types;

pub use startup::Application;
