//! Types both daemons agree on: source types and their metadata, and the endpoint pool.

pub mod calls;
pub mod endpoint;
pub mod source;

pub use calls::{CallStatus, SourceOutcome, Tool, UpstreamErrorClass};
pub use endpoint::{EndpointPool, PoolEntry, routing_key};
pub use source::{FieldProblem, SourceConfig, SourceRules, SourceType, ValidatedMetadata};

/// Most sources one MCP server may have: the control plane refuses more, and the gateway
/// searches no more than this many (one search costs an upstream call per source).
pub const MAX_SOURCES_PER_SERVER: usize = 100;
