//! End-to-end tests of the gateway: the real control plane and the real gateway on port 0,
//! one PostgreSQL database per test, and rmcp's own client over streamable HTTP.

mod all_sources;
mod box_files;
mod fake;
mod helpers;

mod lifecycle;
mod outage;
mod outlook;
mod propagation;
mod protocol;
mod snowflake;
mod tools;
mod upstreams;
