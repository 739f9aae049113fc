//! The Postgres pool and the one migration set of the product.

use std::time::Duration;

use secrecy::ExposeSecret;
use sqlx::{
    ConnectOptions, PgPool,
    migrate::Migrator,
    postgres::{PgConnectOptions, PgPoolOptions},
};

use crate::Settings;

/// Every migration under `migrations/` at the workspace root, embedded at compile time.
pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

/// Connection options from the settings. Statements are logged at debug level only: at the
/// default level the log carries no SQL, and bound values are never logged at all.
pub fn connect_options(settings: &Settings) -> Result<PgConnectOptions, sqlx::Error> {
    let options: PgConnectOptions = settings.common.database_url.expose_secret().parse()?;
    Ok(options
        .application_name(&settings.common.database_application_name)
        .log_statements(log::LevelFilter::Debug)
        .log_slow_statements(log::LevelFilter::Warn, Duration::from_secs(1)))
}

/// A lazily connecting pool: a daemon starts (and reports not-ready) while the database is
/// still coming up, instead of crashing in a restart loop.
pub fn pool(settings: &Settings) -> Result<PgPool, sqlx::Error> {
    Ok(PgPoolOptions::new()
        .max_connections(settings.common.database_max_connections)
        .acquire_timeout(Duration::from_secs(
            settings.common.database_acquire_timeout_secs,
        ))
        .connect_lazy_with(connect_options(settings)?))
}
