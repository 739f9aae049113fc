//! HTTP-level tests of the control plane against a real PostgreSQL (a fresh database per test,
//! created by `#[sqlx::test]` from `DATABASE_URL`; `./dev test` starts a server when unset).

mod helpers;

mod account;
mod activity;
mod admin;
mod browser;
mod call_series;
mod console;
mod console_browser;
mod console_org_browser;
mod console_orgs;
mod console_scale;
mod health;
mod http_limits;
mod isolation;
mod keys;
mod malformed;
mod migrations;
mod notify;
mod oauth_pages;
mod openapi;
mod org_matrix;
mod organizations;
mod origin;
mod postgres_sources;
mod rate_limit;
mod servers;
mod source_types;
mod sources;
mod tls;
mod tokens;
