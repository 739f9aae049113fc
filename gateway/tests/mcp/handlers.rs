//! What the handler tests (Outlook, Box, Snowflake against their fakes) share: a served source
//! built from settings and secrets, and the short reason of a failed call.

use std::time::Duration;

use gateway::{snapshot::ServedSource, sources::Registry};
use serde_json::Value;
use shared::model::SourceType;

/// A source as the snapshot would serve it (parsed with the default Snowflake host suffixes),
/// with a fresh id.
pub fn served(source_type: SourceType, metadata: &Value, secrets: &Value) -> ServedSource {
    ServedSource::parse(
        uuid::Uuid::new_v4(),
        source_type,
        metadata.as_object().expect("an object"),
        Ok(secrets.as_object().expect("an object").clone()),
        &shared::model::SourceRules::from_settings(&shared::config::SourceSettings::default()),
    )
}

/// The reason a search failed (panics if it succeeded).
pub async fn search_error(
    registry: &Registry,
    source: &ServedSource,
    query: &str,
    limit: usize,
    deadline: Duration,
) -> String {
    registry
        .search(source, query, limit, deadline)
        .await
        .expect_err("the search fails")
        .to_string()
}

/// The reason a fetch failed (panics if it succeeded).
pub async fn fetch_error(
    registry: &Registry,
    source: &ServedSource,
    id: &str,
    deadline: Duration,
) -> String {
    registry
        .fetch(source, id, deadline)
        .await
        .expect_err("the fetch fails")
        .to_string()
}
