//! Test support shared by both daemons' test suites and the gateway's benches (the `testing`
//! feature, turned on by their `[dev-dependencies]` only): the settings they start from and a
//! client of the control plane's REST API, and local fakes of the upstream SaaS APIs.

mod api;
mod settings;
pub mod upstreams;

pub use api::{Api, PASSWORD, host, id};

pub use settings::{JWT_SECRET, SECRETS_KEY, settings, settings_at};
