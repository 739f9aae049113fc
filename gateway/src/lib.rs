//! The gateway: the MCP data plane. Serves `search` and `fetch` for every live MCP server on its
//! own domain, from an in-memory snapshot of the configuration kept current from Postgres.

pub mod access;
pub mod admission;
pub mod audit;
pub mod caps;
pub mod client;
pub mod context;
pub mod edge;
pub mod error;
pub mod fanout;
pub mod http;
pub mod ids;
pub mod jsonrpc;
pub mod mcp;
pub mod meters;
pub mod oauth;
pub mod routing;
pub mod sessions;
pub mod snapshot;
pub mod sources;
mod sql;
pub mod startup;
pub mod tools;
pub mod types;

pub use startup::Application;
