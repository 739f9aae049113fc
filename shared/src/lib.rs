//! Code both daemons agree on: settings, telemetry, the database pool and migrator, and
//! graceful shutdown. Model types shared by the control plane and the gateway live here too.

pub mod access_key;
pub mod background;
pub mod client;
pub mod config;
pub mod crypto;
pub mod db;
pub mod egress;
pub mod hosts;
pub mod log_writer;
pub mod model;
pub mod oauth;
pub mod prometheus;
pub mod request_id;
pub mod serve;
pub mod shutdown;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;

pub use config::{LogFormat, Settings, SettingsError};
