//! The control plane: the REST API that owns users, data sources, MCP servers and the endpoint
//! pool. `main.rs` parses the command line; everything else lives here so tests can build the
//! same application.

pub mod activity;
pub mod auth;
pub mod cli;
pub mod console;
pub mod db;
pub mod domain;
pub mod endpoints;
pub mod error;
pub mod extract;
pub mod oauth;
pub mod openapi;
pub mod orgs;
pub mod routes;
pub mod session;
pub mod startup;
pub mod state;
pub mod web;

pub use startup::Application;
