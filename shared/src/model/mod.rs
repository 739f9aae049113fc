//! Types both daemons agree on: source types and their metadata, and the endpoint pool.

pub mod endpoint;
pub mod source;

pub use endpoint::{EndpointPool, PoolEntry, routing_key};
pub use source::{FieldProblem, SourceType, ValidatedMetadata};
