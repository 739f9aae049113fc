//! Test support shared by both daemons' test suites and the gateway's benches (the `testing`
//! feature, turned on by their `[dev-dependencies]` only): the settings they start from.

mod settings;

pub use settings::{JWT_SECRET, SECRETS_KEY, settings, settings_at};
