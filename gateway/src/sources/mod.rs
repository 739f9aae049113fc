//! What a source type must do (`SourceHandler`), the registry of handlers by type, and the
//! fan-out of a search over a server's sources: concurrent, each under a deadline, merged
//! fairly, capped.

use std::{
    collections::{HashMap, HashSet},
    fmt,
    future::Future,
    pin::Pin,
    sync::Arc,
    time::Duration,
};

use serde_json::Value;
use shared::model::{SourceOutcome, SourceType, UpstreamErrorClass};

use uuid::Uuid;

use crate::snapshot::{ServedSource, SnapshotStore};

pub mod box_files;
pub mod mcp;
pub mod outlook;
pub mod postgres;
pub mod snowflake;
pub mod upstream;

/// A boxed future, so handlers can live behind `dyn`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One search hit from an upstream.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// The upstream's own id (goes into the result id after the source uuid).
    pub upstream_id: String,
    pub title: String,
    pub url: String,
}

/// A fetched document.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub title: String,
    pub text: String,
    pub url: String,
    pub metadata: Value,
}

/// Why a source call failed, by class: a short reason safe to show an agent and log (never a
/// secret, token or upstream body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceError {
    /// The item does not exist (fetch).
    NotFound,
    /// The source did not answer within the tool call's deadline.
    TimedOut(Duration),
    /// The upstream's answer was longer than this many bytes; reading stopped there.
    TooLarge(usize),
    /// The upstream refused the source's credentials, e.g. `authentication failed
    /// (invalid_client)`.
    Authentication(String),
    /// The upstream still asked us to slow down after the retries.
    Throttled(String),
    /// No connection to the upstream.
    Unreachable(String),
    /// An answer we cannot use (an error status, malformed JSON, a missing field).
    BadResponse(String),
    /// The source cannot be called as configured (nothing was sent).
    Unusable(String),
}

impl SourceError {
    /// A handler was handed a source of another type (the registry maps types to handlers,
    /// so this is a wiring mistake, reported rather than panicked on).
    pub fn wrong_type() -> Self {
        Self::Unusable("source settings are of another type".to_owned())
    }

    /// The outcome's name in metrics and the audit log.
    pub fn outcome(&self) -> SourceOutcome {
        match self {
            Self::NotFound => SourceOutcome::NotFound,
            Self::TimedOut(_) => SourceOutcome::Timeout,
            _ => SourceOutcome::Error,
        }
    }

    /// The class recorded in the audit log.
    pub fn class(&self) -> UpstreamErrorClass {
        match self {
            Self::NotFound => UpstreamErrorClass::NotFound,
            Self::TimedOut(_) => UpstreamErrorClass::Timeout,
            Self::TooLarge(_) | Self::BadResponse(_) => UpstreamErrorClass::BadResponse,
            Self::Authentication(_) => UpstreamErrorClass::Authentication,
            Self::Throttled(_) => UpstreamErrorClass::Throttled,
            Self::Unreachable(_) => UpstreamErrorClass::Unreachable,
            Self::Unusable(_) => UpstreamErrorClass::Configuration,
        }
    }
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotFound => f.write_str("not found"),
            Self::TimedOut(after) => write!(f, "timed out after {} ms", after.as_millis()),
            Self::TooLarge(limit) if limit % (1024 * 1024) == 0 => write!(
                f,
                "upstream answer too large (over {} MiB); not read further",
                limit / (1024 * 1024)
            ),
            Self::TooLarge(limit) => write!(
                f,
                "upstream answer too large (over {} KiB); not read further",
                limit / 1024
            ),
            Self::Authentication(reason)
            | Self::Throttled(reason)
            | Self::Unreachable(reason)
            | Self::BadResponse(reason)
            | Self::Unusable(reason) => f.write_str(reason),
        }
    }
}

/// One source type's upstream calls.
pub trait SourceHandler: Send + Sync {
    /// Up to `limit` hits for `query`.
    fn search<'a>(
        &'a self,
        source: &'a ServedSource,
        query: &'a str,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<Hit>, SourceError>>;

    /// The item with the upstream id.
    fn fetch<'a>(
        &'a self,
        source: &'a ServedSource,
        upstream_id: &'a str,
    ) -> BoxFuture<'a, Result<Document, SourceError>>;

    /// Told the ids of the sources served (and usable) after the snapshot changed, so a
    /// handler that keeps something per source (connections) lets go of the others.
    fn retain(&self, _live: &HashSet<Uuid>) {}

    /// Whether the handler keeps anything per source now (then [`Self::retain`] is worth the
    /// walk over every served server that works out the live set).
    fn holds_any(&self) -> bool {
        false
    }
}

/// Implements [`SourceHandler`] for a handler type with two inherent async methods,
/// `search(source, query, limit)` and `fetch(source, upstream_id)` by the given names.
#[macro_export]
macro_rules! source_handler {
    ($handler:ty, search: $search:ident, fetch: $fetch:ident) => {
        impl $crate::sources::SourceHandler for $handler {
            fn search<'a>(
                &'a self,
                source: &'a $crate::snapshot::ServedSource,
                query: &'a str,
                limit: usize,
            ) -> $crate::sources::BoxFuture<
                'a,
                Result<Vec<$crate::sources::Hit>, $crate::sources::SourceError>,
            > {
                Box::pin(self.$search(source, query, limit))
            }

            fn fetch<'a>(
                &'a self,
                source: &'a $crate::snapshot::ServedSource,
                upstream_id: &'a str,
            ) -> $crate::sources::BoxFuture<
                'a,
                Result<$crate::sources::Document, $crate::sources::SourceError>,
            > {
                Box::pin(self.$fetch(source, upstream_id))
            }
        }
    };
}

/// Handlers by source type.
#[derive(Clone, Default)]
pub struct Registry {
    handlers: HashMap<SourceType, Arc<dyn SourceHandler>>,
}

impl Registry {
    /// Registers (or replaces) the handler of a type.
    #[must_use]
    pub fn with(mut self, source_type: SourceType, handler: Arc<dyn SourceHandler>) -> Self {
        self.handlers.insert(source_type, handler);
        self
    }

    fn handler(&self, source_type: SourceType) -> Result<&Arc<dyn SourceHandler>, SourceError> {
        self.handlers.get(&source_type).ok_or_else(|| {
            SourceError::Unusable(format!(
                "{} sources are not supported by this gateway yet",
                source_type.as_str()
            ))
        })
    }

    /// Tells every handler which sources are served now ([`SourceHandler::retain`]).
    pub fn retain(&self, live: &HashSet<Uuid>) {
        for handler in self.handlers.values() {
            handler.retain(live);
        }
    }

    /// Whether any handler keeps something per source.
    pub fn holds_any(&self) -> bool {
        self.handlers.values().any(|handler| handler.holds_any())
    }

    /// Calls `search` on one source, under `deadline`.
    pub async fn search(
        &self,
        source: &ServedSource,
        query: &str,
        limit: usize,
        deadline: Duration,
    ) -> Result<Vec<Hit>, SourceError> {
        let handler = self.handler(source.source_type)?;
        source.ready()?;
        measured(source, deadline, handler.search(source, query, limit)).await
    }

    /// Calls `fetch` on one source, under `deadline`.
    pub async fn fetch(
        &self,
        source: &ServedSource,
        upstream_id: &str,
        deadline: Duration,
    ) -> Result<Document, SourceError> {
        let handler = self.handler(source.source_type)?;
        source.ready()?;
        measured(source, deadline, handler.fetch(source, upstream_id)).await
    }
}

/// Runs one upstream call under `deadline` and counts it by source type and outcome.
async fn measured<T>(
    source: &ServedSource,
    deadline: Duration,
    call: BoxFuture<'_, Result<T, SourceError>>,
) -> Result<T, SourceError> {
    let started = std::time::Instant::now();
    let result = match tokio::time::timeout(deadline, call).await {
        Ok(result) => result,
        Err(_) => Err(SourceError::TimedOut(deadline)),
    };
    let outcome = result
        .as_ref()
        .map_or_else(SourceError::outcome, |_| SourceOutcome::Ok);
    crate::meters::upstream_call(source.source_type, outcome, started.elapsed());
    result
}

/// The handlers of every source type, with upstream URLs from the settings.
pub fn registry(settings: &shared::Settings) -> anyhow::Result<Registry> {
    let http = upstream::client(Duration::from_secs(settings.upstreams.connect_timeout_secs));
    let outlook = outlook::Outlook::new(
        http.clone(),
        &settings.upstreams.graph_base_url,
        &settings.upstreams.microsoft_login_url,
    )?;
    let files = box_files::BoxFiles::new(
        http.clone(),
        &settings.upstreams.box_api_url,
        &settings.upstreams.box_token_url,
    )?;
    let rules = shared::model::SourceRules::for_deployment(settings);
    let mcp = mcp::Mcp::new(
        Duration::from_secs(settings.upstreams.connect_timeout_secs),
        Duration::from_millis(settings.gateway.source_timeout_ms),
        &rules.mcp_allowed_hosts,
    )?;
    let snowflake = snowflake::Snowflake::new(
        http,
        &settings.upstreams.snowflake_base_url,
        Arc::new(settings.common.keyring()?),
    )?;
    let postgres = postgres::Postgres::new(
        rules.postgres_hosts,
        Duration::from_millis(settings.gateway.source_timeout_ms),
    )
    .refusing(rules.product_database);
    Ok(Registry::default()
        .with(SourceType::Outlook, Arc::new(outlook))
        .with(SourceType::Box, Arc::new(files))
        .with(SourceType::Snowflake, Arc::new(snowflake))
        .with(SourceType::Postgres, Arc::new(postgres))
        .with(SourceType::Mcp, Arc::new(mcp)))
}

/// How often the snapshot is checked for a change that may have removed sources.
const RETAIN_EVERY: Duration = Duration::from_secs(1);

/// Tells the handlers which sources are served whenever the snapshot changed (checked every
/// second: one atomic load when nothing changed), until the task is stopped. The walk over
/// every served server (a million in a large deployment) runs only while some handler holds
/// something, and off the async workers.
pub async fn retain_served(store: Arc<SnapshotStore>, registry: Registry) {
    let mut seen = None;
    let mut tick = tokio::time::interval(RETAIN_EVERY);
    loop {
        tick.tick().await;
        let Some(snapshot) = store.load() else {
            continue;
        };
        if seen == Some(snapshot.version) || !registry.holds_any() {
            continue;
        }
        seen = Some(snapshot.version);
        let walk = tokio::task::spawn_blocking(move || {
            snapshot
                .servers()
                .flat_map(|server| server.sources.iter())
                .filter(|source| source.config.is_ok())
                .map(|source| source.id)
                .collect::<HashSet<Uuid>>()
        });
        if let Ok(live) = walk.await {
            registry.retain(&live);
        }
    }
}

/// Interleaves per-source result lists (first of each, then second of each, ...) so that no
/// source can crowd out the others, and stops at `cap`.
pub fn merge_fairly<T>(lists: Vec<Vec<T>>, cap: usize) -> Vec<T> {
    let mut iters: Vec<_> = lists.into_iter().map(Vec::into_iter).collect();
    let mut merged = Vec::new();
    while merged.len() < cap {
        let before = merged.len();
        for iter in &mut iters {
            if merged.len() == cap {
                break;
            }
            if let Some(item) = iter.next() {
                merged.push(item);
            }
        }
        if merged.len() == before {
            break;
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::merge_fairly;

    #[test]
    fn merging_takes_turns_and_caps() {
        let merged = merge_fairly(vec![vec![1, 2, 3, 4, 5, 6], vec![10], vec![20, 21]], 6);
        assert_eq!(merged, [1, 10, 20, 2, 21, 3]);
        assert_eq!(merge_fairly(vec![vec![1, 2], vec![]], 10), [1, 2]);
        assert!(merge_fairly::<u8>(vec![], 5).is_empty());
    }
}
