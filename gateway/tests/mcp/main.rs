//! End-to-end tests of the gateway: the real control plane and the real gateway on port 0,
//! one PostgreSQL database per test, and rmcp's own client over streamable HTTP.

mod access;
mod all_sources;
mod audit;
mod box_files;
mod burst;
mod caps;
mod failure_classes;
mod fake;
mod fanout;
mod handlers;
mod helpers;
mod http_limits;

mod least_privilege;
mod lifecycle;
mod mcp_source;
mod oauth;
mod oauth_flow;
mod oauth_limits;
mod oauth_refusals;
mod organizations;
mod outage;
mod outlook;
mod postgres;
mod propagation;
mod protocol;
mod rolling_restart;
mod snowflake;
mod source_types;
mod tools;
