//! What a source type must do (`SourceHandler`), the registry with one handler per type, and
//! the fair merge of per-source results. One `match` on the typed configuration hands each
//! handler its own settings.

use std::{collections::HashSet, future::Future, pin::Pin, sync::Arc, time::Duration};

use shared::model::{
    SourceOutcome, SourceType,
    source::{BoxConfig, McpConfig, OutlookConfig, PostgresConfig, SnowflakeConfig, SourceConfig},
};
use uuid::Uuid;

use crate::snapshot::{ServedSource, SnapshotStore};
pub use crate::types::{Document, Hit, SourceError};

pub mod box_files;
pub mod mcp;
pub mod outlook;
pub mod postgres;
pub mod snowflake;
pub mod upstream;

/// A boxed future, so handlers can live behind `dyn`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One source type's upstream calls, each handed the source and its own typed settings `C`
/// (the registry's one `match` on [`SourceConfig`] picks the handler and the settings).
pub trait SourceHandler<C>: Lifecycle {
    /// Up to `limit` hits for `query`.
    fn search<'a>(
        &'a self,
        source: &'a ServedSource,
        config: &'a C,
        query: &'a str,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<Hit>, SourceError>>;

    /// The item with the upstream id.
    fn fetch<'a>(
        &'a self,
        source: &'a ServedSource,
        config: &'a C,
        upstream_id: &'a str,
    ) -> BoxFuture<'a, Result<Document, SourceError>>;
}

/// What a handler keeps per source, if anything (connections), and how it lets go of it.
pub trait Lifecycle: Send + Sync {
    /// Told the ids of the sources served (and usable) after the snapshot changed, so a
    /// handler that keeps something per source lets go of the others.
    fn retain(&self, _live: &HashSet<Uuid>) {}

    /// Whether the handler keeps anything per source now (then [`Self::retain`] is worth the
    /// walk over every served server that works out the live set).
    fn holds_any(&self) -> bool {
        false
    }
}

/// Implements [`SourceHandler`] (and an empty [`Lifecycle`]) for a handler type with two
/// inherent async methods, `search(source, config, query, limit)` and
/// `fetch(source, config, upstream_id)`, by the given names.
#[macro_export]
macro_rules! source_handler {
    ($handler:ty, $config:ty, search: $search:ident, fetch: $fetch:ident) => {
        impl $crate::sources::Lifecycle for $handler {}

        impl $crate::sources::SourceHandler<$config> for $handler {
            fn search<'a>(
                &'a self,
                source: &'a $crate::snapshot::ServedSource,
                config: &'a $config,
                query: &'a str,
                limit: usize,
            ) -> $crate::sources::BoxFuture<
                'a,
                Result<Vec<$crate::types::Hit>, $crate::types::SourceError>,
            > {
                Box::pin(self.$search(source, config, query, limit))
            }

            fn fetch<'a>(
                &'a self,
                source: &'a $crate::snapshot::ServedSource,
                config: &'a $config,
                upstream_id: &'a str,
            ) -> $crate::sources::BoxFuture<
                'a,
                Result<$crate::types::Document, $crate::types::SourceError>,
            > {
                Box::pin(self.$fetch(source, config, upstream_id))
            }
        }
    };
}

/// The handler of every source type: one field per type, so a type without a handler does not
/// compile. Tests swap a field for a fake.
#[derive(Clone)]
pub struct Registry {
    pub outlook: Arc<dyn SourceHandler<OutlookConfig>>,
    pub box_files: Arc<dyn SourceHandler<BoxConfig>>,
    pub snowflake: Arc<dyn SourceHandler<SnowflakeConfig>>,
    pub postgres: Arc<dyn SourceHandler<PostgresConfig>>,
    pub mcp: Arc<dyn SourceHandler<McpConfig>>,
}

impl Registry {
    /// The handlers of every source type, with upstream URLs from the settings.
    pub fn new(settings: &shared::Settings) -> anyhow::Result<Self> {
        let http = upstream::client(Duration::from_secs(settings.upstreams.connect_timeout_secs));
        let rules = shared::model::SourceRules::for_deployment(settings);
        let source_timeout = Duration::from_millis(settings.gateway.source_timeout_ms);
        Ok(Self {
            outlook: Arc::new(outlook::Outlook::new(
                http.clone(),
                &settings.upstreams.graph_base_url,
                &settings.upstreams.microsoft_login_url,
            )?),
            box_files: Arc::new(box_files::BoxFiles::new(
                http.clone(),
                &settings.upstreams.box_api_url,
                &settings.upstreams.box_token_url,
            )?),
            snowflake: Arc::new(snowflake::Snowflake::new(
                http,
                &settings.upstreams.snowflake_base_url,
                Arc::new(settings.common.keyring()?),
            )?),
            postgres: Arc::new(
                postgres::Postgres::new(rules.postgres_hosts, source_timeout)
                    .refusing(rules.product_database),
            ),
            mcp: Arc::new(mcp::Mcp::new(
                Duration::from_secs(settings.upstreams.connect_timeout_secs),
                source_timeout,
                &rules.mcp_allowed_hosts,
            )?),
        })
    }

    /// Every handler, for what they all do alike (a field left out here does not compile).
    fn lifecycles(&self) -> [&dyn Lifecycle; SourceType::ALL.len()] {
        let Self {
            outlook,
            box_files,
            snowflake,
            postgres,
            mcp,
        } = self;
        [&**outlook, &**box_files, &**snowflake, &**postgres, &**mcp]
    }

    /// Tells every handler which sources are served now ([`Lifecycle::retain`]).
    pub fn retain(&self, live: &HashSet<Uuid>) {
        for handler in self.lifecycles() {
            handler.retain(live);
        }
    }

    /// Whether any handler keeps something per source.
    pub fn holds_any(&self) -> bool {
        self.lifecycles().iter().any(|handler| handler.holds_any())
    }

    /// Calls `search` on one source, under `deadline`.
    pub async fn search(
        &self,
        source: &ServedSource,
        query: &str,
        limit: usize,
        deadline: Duration,
    ) -> Result<Vec<Hit>, SourceError> {
        let call = match source.ready()? {
            SourceConfig::Outlook(c) => self.outlook.search(source, c, query, limit),
            SourceConfig::Box(c) => self.box_files.search(source, c, query, limit),
            SourceConfig::Snowflake(c) => self.snowflake.search(source, c, query, limit),
            SourceConfig::Postgres(c) => self.postgres.search(source, c, query, limit),
            SourceConfig::Mcp(c) => self.mcp.search(source, c, query, limit),
        };
        measured(source, deadline, call).await
    }

    /// Calls `fetch` on one source, under `deadline`.
    pub async fn fetch(
        &self,
        source: &ServedSource,
        upstream_id: &str,
        deadline: Duration,
    ) -> Result<Document, SourceError> {
        let call = match source.ready()? {
            SourceConfig::Outlook(c) => self.outlook.fetch(source, c, upstream_id),
            SourceConfig::Box(c) => self.box_files.fetch(source, c, upstream_id),
            SourceConfig::Snowflake(c) => self.snowflake.fetch(source, c, upstream_id),
            SourceConfig::Postgres(c) => self.postgres.fetch(source, c, upstream_id),
            SourceConfig::Mcp(c) => self.mcp.fetch(source, c, upstream_id),
        };
        measured(source, deadline, call).await
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
    crate::observe::meters::upstream_call(source.source_type, outcome, started.elapsed());
    result
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
