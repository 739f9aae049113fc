//! The gateway's view of the configuration: every live MCP server by routing host, with its
//! sources and their decrypted credentials. A snapshot is immutable; a new one is built aside
//! and swapped in atomically, so a request never sees a half-loaded state.
//!
//! It stays current through `LISTEN mcp_config` (the control plane's triggers name the changed
//! servers; only those are re-read), a full reload after every listener reconnect and on a
//! timer. Every notification waiting is taken before each patch and queued newest first
//! (see [`Pending`]): a burst of changes costs a few swaps and the newest change never waits
//! behind the burst; a queue naming many servers (or everything) is one full reload instead.
//! The host maps are persistent (structurally shared), so a patch costs what changed, not
//! what is served. When Postgres is unreachable the last good snapshot keeps serving and is marked
//! stale; loading is retried with backoff. Until a first snapshot has loaded, there is none.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    sync::{
        Arc, OnceLock,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use arc_swap::ArcSwapOption;
use chrono::{DateTime, Utc};
use futures::FutureExt;
use jsonwebtoken::DecodingKey;
use serde_json::{Map, Value};
use shared::{
    access_key::{self, KeyHash},
    crypto::Keyring,
    model::{
        SourceRules, SourceType,
        source_config::{SourceConfig, describe_problems},
    },
    oauth::canonical_resource,
};
use sqlx::{PgConnection, PgPool, postgres::PgListener};
use uuid::Uuid;

use crate::sources::SourceError;

/// Channel the control plane notifies on.
pub const CHANNEL: &str = "mcp_config";
/// The notification that the OAuth signing keys changed (others name servers).
const SIGNING_KEYS_CHANGED: &str = "signing_keys";
/// The notification that anything may have changed.
const EVERYTHING_CHANGED: &str = "*";
/// A batch naming more servers than this is applied as one full reload (one query for all,
/// instead of a long `= any($1)` list and as many map updates).
pub const FULL_RELOAD_AT: usize = 10_000;

/// A source as the gateway serves it: its configuration parsed once, when loaded.
#[derive(Debug)]
pub struct ServedSource {
    pub id: Uuid,
    pub source_type: SourceType,
    /// Ready to call, or why not (each call then fails with the reason instead of the whole
    /// server going down).
    pub config: Result<SourceConfig, Broken>,
}

/// Why a loaded source cannot be called.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Broken {
    /// Its secrets were sealed with a key this gateway does not have.
    Undecryptable,
    /// Its stored settings break the rules (e.g. a Snowflake host no longer allowed).
    Invalid(String),
}

impl std::fmt::Display for Broken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Undecryptable => f.write_str(
                "its credentials cannot be decrypted by this gateway (check SECRETS_KEY / SECRETS_OLD_KEYS)",
            ),
            Self::Invalid(reason) => f.write_str(reason),
        }
    }
}

impl ServedSource {
    /// Parses a source's stored settings and decrypted secrets (or the reason they could not
    /// be decrypted) by the deployment's source `rules`.
    pub fn parse(
        id: Uuid,
        source_type: SourceType,
        metadata: &Map<String, Value>,
        secrets: Result<Map<String, Value>, Broken>,
        rules: &SourceRules,
    ) -> Self {
        let config = secrets.and_then(|secrets| {
            SourceConfig::parse(source_type, metadata, &secrets, rules)
                .map_err(|problems| Broken::Invalid(describe_problems(&problems)))
        });
        Self {
            id,
            source_type,
            config,
        }
    }

    /// The configuration, or why the source cannot be called.
    pub fn ready(&self) -> Result<&SourceConfig, SourceError> {
        self.config
            .as_ref()
            .map_err(|broken| SourceError::Unusable(broken.to_string()))
    }
}

/// An access key a server accepts (revoked keys are not loaded).
#[derive(Debug, Clone)]
pub struct ServedKey {
    pub id: Uuid,
    /// SHA-256 of the key.
    pub hash: KeyHash,
    pub expires_at: Option<DateTime<Utc>>,
}

/// A live MCP server.
#[derive(Debug)]
pub struct ServedServer {
    pub id: Uuid,
    pub name: String,
    /// Routing key (the same text as the snapshot's key for it).
    pub host: Arc<str>,
    /// `scheme://host[:port]`, the server's own origin.
    pub endpoint: String,
    /// Answers agents without a key.
    pub public: bool,
    /// The canonical `mcp_url`, worked out on first use: only OAuth calls need it, and a
    /// million URL parses would add a second to every full load.
    resource: OnceLock<String>,
    pub keys: Vec<ServedKey>,
    /// Live OAuth grants; a token is accepted only while its grant is here.
    pub grants: HashSet<Uuid>,
    pub sources: Vec<Arc<ServedSource>>,
}

impl ServedServer {
    /// The id of the unexpired key whose hash is `hash`. Every key is compared (in constant
    /// time), so the answer's timing says nothing about which key came close.
    pub fn key(&self, hash: &KeyHash, now: DateTime<Utc>) -> Option<Uuid> {
        let mut found = None;
        for key in &self.keys {
            if access_key::same(&key.hash, hash) && key.expires_at.is_none_or(|at| at > now) {
                found = Some(key.id);
            }
        }
        found
    }

    /// The server's `mcp_url` in canonical form: the audience its OAuth tokens must name.
    pub fn resource(&self) -> &str {
        self.resource.get_or_init(|| {
            canonical_resource(&format!("{}/mcp", self.endpoint)).unwrap_or_default()
        })
    }

    /// The source with this id, if this server has it.
    pub fn source(&self, id: Uuid) -> Option<&Arc<ServedSource>> {
        self.sources.iter().find(|s| s.id == id)
    }
}

/// The public keys OAuth access tokens are verified with, by key id.
#[derive(Default, Clone)]
pub struct VerifyingKeys(HashMap<String, DecodingKey>);

impl VerifyingKeys {
    /// The key with this id.
    pub fn get(&self, kid: &str) -> Option<&DecodingKey> {
        self.0.get(kid)
    }
}

impl std::fmt::Debug for VerifyingKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}

/// One immutable configuration.
#[derive(Debug, Default, Clone)]
pub struct Snapshot {
    // Persistent maps: a patched copy shares every untouched entry with its base.
    by_host: imbl::HashMap<Arc<str>, Arc<ServedServer>>,
    host_of: imbl::HashMap<Uuid, Arc<str>>,
    /// Public halves of the OAuth signing keys.
    pub verifying_keys: Arc<VerifyingKeys>,
    /// Increases with every swap.
    pub version: u64,
}

impl Snapshot {
    /// The server behind a routing host.
    pub fn server(&self, host: &str) -> Option<&Arc<ServedServer>> {
        self.by_host.get(host)
    }

    /// Every server served.
    pub fn servers(&self) -> impl Iterator<Item = &Arc<ServedServer>> {
        self.by_host.values()
    }

    /// How many servers are served.
    pub fn len(&self) -> usize {
        self.by_host.len()
    }

    /// Whether no server is served.
    pub fn is_empty(&self) -> bool {
        self.by_host.is_empty()
    }

    /// A snapshot of `servers` (all different), its two maps built side by side.
    fn of(version: u64, verifying_keys: VerifyingKeys, servers: Vec<ServedServer>) -> Self {
        let servers: Vec<Arc<ServedServer>> = servers.into_iter().map(Arc::new).collect();
        let (by_host, host_of) = std::thread::scope(|scope| {
            let host_of = scope.spawn(|| {
                servers
                    .iter()
                    .map(|server| (server.id, Arc::clone(&server.host)))
                    .collect::<imbl::HashMap<_, _>>()
            });
            let mut by_host = imbl::HashMap::new();
            let mut second_on_host = Vec::new();
            for server in &servers {
                if by_host.contains_key(&server.host) {
                    second_on_host.push(server.id);
                } else {
                    by_host.insert(Arc::clone(&server.host), Arc::clone(server));
                }
            }
            let mut host_of = host_of.join().expect("mapping ids does not panic");
            for id in second_on_host {
                tracing::error!(server_id = %id, "two live servers on one host; keeping the first");
                host_of.remove(&id);
            }
            (by_host, host_of)
        });
        Self {
            by_host,
            host_of,
            verifying_keys: Arc::new(verifying_keys),
            version,
        }
    }

    fn insert(&mut self, server: ServedServer) {
        self.remove(server.id);
        // Should the database ever hand one host to two servers, the first stays (the partial
        // unique index makes this impossible for live servers).
        if self.by_host.contains_key(&server.host) {
            tracing::error!(host = %server.host, server_id = %server.id, "two live servers on one host; keeping the first");
            return;
        }
        self.host_of.insert(server.id, Arc::clone(&server.host));
        self.by_host
            .insert(Arc::clone(&server.host), Arc::new(server));
    }

    fn remove(&mut self, id: Uuid) {
        if let Some(host) = self.host_of.remove(&id) {
            self.by_host.remove(&host);
        }
    }
}

/// Shared holder of the current snapshot and its health.
#[derive(Debug, Default)]
pub struct SnapshotStore {
    current: ArcSwapOption<Snapshot>,
    stale: AtomicBool,
    /// Milliseconds since the Unix epoch of the last successful load or update.
    refreshed_at_ms: AtomicU64,
}

impl SnapshotStore {
    /// The current snapshot; `None` until the first load.
    pub fn load(&self) -> Option<Arc<Snapshot>> {
        self.current.load_full()
    }

    /// Whether the database could not be read at the last attempt.
    pub fn is_stale(&self) -> bool {
        self.stale.load(Ordering::Relaxed)
    }

    /// Seconds since the snapshot was last known to be current.
    pub fn age_secs(&self) -> f64 {
        let then = self.refreshed_at_ms.load(Ordering::Relaxed);
        (now_ms().saturating_sub(then)) as f64 / 1000.0
    }

    fn publish(&self, snapshot: Snapshot) {
        self.current.store(Some(Arc::new(snapshot)));
        self.fresh();
    }

    fn fresh(&self) {
        self.stale.store(false, Ordering::Relaxed);
        self.refreshed_at_ms.store(now_ms(), Ordering::Relaxed);
    }

    fn mark_stale(&self) {
        self.stale.store(true, Ordering::Relaxed);
    }
}

fn now_ms() -> u64 {
    u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0)
}

/// Reads snapshots from Postgres.
pub struct Loader {
    pub pool: PgPool,
    pub keyring: Arc<Keyring>,
    /// The deployment's source rules: a source they refuse loads as broken.
    pub rules: Arc<SourceRules>,
}

#[derive(sqlx::FromRow)]
struct Row {
    server_id: Uuid,
    name: String,
    endpoint: String,
    endpoint_host: String,
    public: bool,
    source_id: Option<Uuid>,
    source_type: Option<String>,
    /// As text: parsed with the rest of the source, on every core (see [`parse_sources`]).
    source_metadata: Option<String>,
    secrets: Option<Vec<u8>>,
    secrets_key_id: Option<String>,
}

#[derive(sqlx::FromRow)]
struct KeyRow {
    server_id: Uuid,
    id: Uuid,
    key_hash: Vec<u8>,
    expires_at: Option<DateTime<Utc>>,
}

/// The gateway's reads of the configuration. Those that read servers come in two forms, for
/// every live server and for a list of them (`$1`): one statement with `$1 is null or id =
/// any($1)` gets a generic plan after a few runs that scans every server, so each patch would
/// cost O(servers) instead of O(changed).
mod sql {
    #[derive(Clone, Copy)]
    pub struct Scoped {
        pub all: &'static str,
        pub some: &'static str,
    }

    /// `$select` filtered by `$where_clause` (and, for `some`, by `$id = any($1)`), then `$rest`.
    macro_rules! scoped {
        ($select:literal, $where_clause:literal, $id:literal, $rest:literal) => {
            Scoped {
                all: concat!($select, " where ", $where_clause, $rest),
                some: concat!(
                    $select,
                    " where ",
                    $where_clause,
                    " and ",
                    $id,
                    " = any($1)",
                    $rest
                ),
            }
        };
    }

    pub const SERVERS: Scoped = scoped!(
        "select s.id as server_id, s.name, s.endpoint, s.endpoint_host, s.public, \
                src.id as source_id, src.type as source_type, src.source_metadata::text as source_metadata, src.secrets, \
                src.secrets_key_id \
         from mcp_servers s \
         left join mcp_server_sources l on l.server_id = s.id \
         left join sources src on src.id = l.source_id",
        "s.deleted_at is null",
        "s.id",
        " order by s.id, l.created_at, l.source_id"
    );

    pub const KEYS: Scoped = scoped!(
        "select k.server_id, k.id, k.key_hash, k.expires_at from mcp_server_keys k \
         join mcp_servers s on s.id = k.server_id",
        "k.revoked_at is null and s.deleted_at is null",
        "k.server_id",
        ""
    );

    pub const GRANTS: Scoped = scoped!(
        "select g.server_id, g.id from oauth_grants g join mcp_servers s on s.id = g.server_id",
        "s.deleted_at is null",
        "g.server_id",
        ""
    );

    pub const CONSISTENT_READ: &str = "begin isolation level repeatable read, read only";
    pub const NO_JIT: &str = "set local jit = off";

    /// The public halves of the signing keys (the gateway's role can read no more).
    pub const VERIFYING_KEYS: &str = "select kid, public_key from oauth_signing_keys";
}

/// `query` over every live server, or only those in `ids`.
fn scoped<'a, O>(
    query: sql::Scoped,
    ids: Option<&'a [Uuid]>,
) -> sqlx::query::QueryAs<'a, sqlx::Postgres, O, sqlx::postgres::PgArguments>
where
    O: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>,
{
    match ids {
        None => sqlx::query_as(query.all),
        Some(ids) => sqlx::query_as(query.some).bind(ids),
    }
}

impl Loader {
    /// Every live server, or only those in `ids` (deleted ones are simply absent).
    async fn servers(
        &self,
        db: &mut PgConnection,
        ids: Option<&[Uuid]>,
    ) -> Result<Vec<ServedServer>, sqlx::Error> {
        let rows: Vec<Row> = scoped(sql::SERVERS, ids).fetch_all(&mut *db).await?;
        let keys = Self::keys(db, ids).await?;
        let grants = Self::grants(db, ids).await?;
        let (keyring, rules) = (Arc::clone(&self.keyring), Arc::clone(&self.rules));
        // CPU work (a full load decrypts and parses every source): off the async workers.
        Ok(
            tokio::task::spawn_blocking(move || assemble(rows, keys, grants, &keyring, &rules))
                .await
                .expect("assembling servers does not panic"),
        )
    }

    /// Live OAuth grants of live servers (all, or those in `ids`), by server.
    async fn grants(
        db: &mut PgConnection,
        ids: Option<&[Uuid]>,
    ) -> Result<HashMap<Uuid, HashSet<Uuid>>, sqlx::Error> {
        let rows: Vec<(Uuid, Uuid)> = scoped(sql::GRANTS, ids).fetch_all(db).await?;
        let mut grants: HashMap<Uuid, HashSet<Uuid>> = HashMap::new();
        for (server_id, id) in rows {
            grants.entry(server_id).or_default().insert(id);
        }
        Ok(grants)
    }

    /// The public halves of the OAuth signing keys (the gateway's role can read no more).
    async fn verifying_keys(db: &mut PgConnection) -> Result<VerifyingKeys, sqlx::Error> {
        let rows: Vec<(String, Vec<u8>)> =
            sqlx::query_as(sql::VERIFYING_KEYS).fetch_all(db).await?;
        Ok(VerifyingKeys(
            rows.into_iter()
                .filter(|(_, public)| public.len() == 32)
                .map(|(kid, public)| (kid, DecodingKey::from_ed_der(&public)))
                .collect(),
        ))
    }

    /// Unrevoked keys of live servers (all, or those in `ids`), by server. Expired ones are
    /// loaded too: expiry is checked on each request, so a key stops working on the second.
    async fn keys(
        db: &mut PgConnection,
        ids: Option<&[Uuid]>,
    ) -> Result<HashMap<Uuid, Vec<ServedKey>>, sqlx::Error> {
        let rows: Vec<KeyRow> = scoped(sql::KEYS, ids).fetch_all(db).await?;
        let mut keys: HashMap<Uuid, Vec<ServedKey>> = HashMap::new();
        for row in rows {
            let Ok(hash) = KeyHash::try_from(row.key_hash.as_slice()) else {
                continue;
            };
            keys.entry(row.server_id).or_default().push(ServedKey {
                id: row.id,
                hash,
                expires_at: row.expires_at,
            });
        }
        Ok(keys)
    }

    /// A complete snapshot.
    pub async fn full(&self, version: u64) -> Result<Snapshot, sqlx::Error> {
        let mut db = self.reading().await?;
        // Compiling the plan of a full load costs more than it saves.
        sqlx::query(sql::NO_JIT).execute(&mut *db).await?;
        let verifying_keys = Self::verifying_keys(&mut db).await?;
        let servers = self.servers(&mut db, None).await?;
        db.commit().await?;
        Ok(
            tokio::task::spawn_blocking(move || Snapshot::of(version, verifying_keys, servers))
                .await
                .expect("building a snapshot does not panic"),
        )
    }

    /// A transaction that reads one consistent state (servers, keys and grants as of one
    /// moment).
    async fn reading(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
        self.pool.begin_with(sql::CONSISTENT_READ).await
    }

    /// `base` with the servers in `ids` re-read (added, changed or removed), and the signing
    /// keys re-read when `keys_changed`.
    pub async fn patch(
        &self,
        base: &Snapshot,
        ids: &[Uuid],
        keys_changed: bool,
    ) -> Result<Snapshot, sqlx::Error> {
        let mut db = self.reading().await?;
        let fresh = self.servers(&mut db, Some(ids)).await?;
        let mut next = base.clone();
        next.version = base.version + 1;
        if keys_changed {
            next.verifying_keys = Arc::new(Self::verifying_keys(&mut db).await?);
        }
        db.commit().await?;
        for id in ids {
            next.remove(*id);
        }
        for server in fresh {
            next.insert(server);
        }
        Ok(next)
    }
}

/// Servers from their rows (ordered by server), with their keys and grants.
fn assemble(
    mut rows: Vec<Row>,
    mut keys: HashMap<Uuid, Vec<ServedKey>>,
    mut grants: HashMap<Uuid, HashSet<Uuid>>,
    keyring: &Keyring,
    rules: &SourceRules,
) -> Vec<ServedServer> {
    let sources = parse_sources(&mut rows, keyring, rules);
    let mut servers: Vec<ServedServer> = Vec::new();
    for mut row in rows {
        if servers.last().is_none_or(|s| s.id != row.server_id) {
            servers.push(ServedServer {
                id: row.server_id,
                name: std::mem::take(&mut row.name),
                host: Arc::from(row.endpoint_host.as_str()),
                endpoint: std::mem::take(&mut row.endpoint),
                public: row.public,
                resource: OnceLock::new(),
                keys: keys.remove(&row.server_id).unwrap_or_default(),
                grants: grants.remove(&row.server_id).unwrap_or_default(),
                sources: Vec::new(),
            });
        }
        let server = servers.last_mut().expect("pushed above");
        if let Some(Some(source)) = row.source_id.and_then(|id| sources.get(&id)) {
            server.sources.push(Arc::clone(source));
        }
    }
    servers
}

/// Sources parsed on one thread below this many, on every core above.
const PARALLEL_PARSE_AT: usize = 4096;

/// Each distinct source of `rows` decrypted and parsed once (a source on many servers is held
/// once), by id; `None` for one that cannot be served at all. A full load is mostly this work,
/// so a large one is spread over every core.
fn parse_sources(
    rows: &mut [Row],
    keyring: &Keyring,
    rules: &SourceRules,
) -> HashMap<Uuid, Option<Arc<ServedSource>>> {
    let mut seen = HashSet::new();
    let mut firsts: Vec<&mut Row> = rows
        .iter_mut()
        .filter(|row| row.source_id.is_some_and(|id| seen.insert(id)))
        .collect();
    let parse = |chunk: &mut [&mut Row]| -> Vec<(Uuid, Option<Arc<ServedSource>>)> {
        chunk
            .iter_mut()
            .filter_map(|row| {
                let id = row.source_id?;
                Some((id, source(row, keyring, rules).map(Arc::new)))
            })
            .collect()
    };
    if firsts.len() < PARALLEL_PARSE_AT {
        return parse(&mut firsts).into_iter().collect();
    }
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let chunk = firsts.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let parts: Vec<_> = firsts
            .chunks_mut(chunk)
            .map(|part| scope.spawn(|| parse(part)))
            .collect();
        parts
            .into_iter()
            .flat_map(|part| part.join().expect("parsing sources does not panic"))
            .collect()
    })
}

/// The source of a row, taking its settings out of it.
fn source(row: &mut Row, keyring: &Keyring, rules: &SourceRules) -> Option<ServedSource> {
    let id = row.source_id?;
    let Some(source_type) = row.source_type.as_deref().and_then(SourceType::parse) else {
        tracing::error!(source_id = %id, "unknown source type in the database; skipped");
        return None;
    };
    let metadata = row
        .source_metadata
        .take()
        .and_then(|text| serde_json::from_str::<Map<String, Value>>(&text).ok())
        .unwrap_or_default();
    let secrets = match (&row.secrets, &row.secrets_key_id) {
        (Some(sealed), Some(key_id)) => keyring.open_source(id, sealed, key_id).map_err(|err| {
            tracing::error!(source_id = %id, error = %err, "cannot decrypt source secrets");
            Broken::Undecryptable
        }),
        _ => Ok(Map::new()),
    };
    let source = ServedSource::parse(id, source_type, &metadata, secrets, rules);
    if let Err(Broken::Invalid(reason)) = &source.config {
        tracing::warn!(source_id = %id, %reason, "source settings are unusable; its calls fail with the reason");
    }
    Some(source)
}

/// Keeps `store` current until the process ends: first load (retrying), then LISTEN.
pub async fn keep_current(store: Arc<SnapshotStore>, loader: Loader, resync: Duration) {
    let mut backoff = Backoff::default();
    loop {
        match follow(&store, &loader, resync).await {
            Ok(()) => backoff = Backoff::default(),
            Err(err) => {
                store.mark_stale();
                let wait = backoff.next();
                tracing::warn!(error = %err, retry_in_ms = wait.as_millis() as u64, stale = store.load().is_some(),
                    "configuration database unreachable; serving the last snapshot");
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// One listener session: listen, load everything, then apply notifications as they come and
/// reload everything on the timer. Returns on any database error (the caller backs off).
async fn follow(
    store: &SnapshotStore,
    loader: &Loader,
    resync: Duration,
) -> Result<(), sqlx::Error> {
    let mut listener = PgListener::connect_with(&loader.pool).await?;
    // Listening starts before the full load, so no change can fall between the two.
    listener.listen(CHANNEL).await?;
    reload(store, loader, "connect").await?;
    let mut timer = tokio::time::interval_at(tokio::time::Instant::now() + resync, resync);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut pending = Pending::default();
    loop {
        if pending.is_empty() {
            tokio::select! {
                notification = listener.try_recv() => match notification? {
                    Some(notification) => pending.add(notification.payload()),
                    None => return lost(),
                },
                _ = timer.tick() => {
                    reload(store, loader, "resync").await?;
                    continue;
                }
            }
        }
        // Everything already waiting joins the queue before the next patch, at its front.
        while let Some(more) = listener.try_recv().now_or_never() {
            match more? {
                Some(notification) => pending.add(notification.payload()),
                None => return lost(),
            }
        }
        apply_next(store, loader, &mut pending).await?;
    }
}

/// The listener's connection dropped: changes may have been missed, so the caller reconnects
/// and reloads everything.
fn lost() -> Result<(), sqlx::Error> {
    tracing::warn!("LISTEN connection lost; reconnecting and reloading");
    Ok(())
}

/// Loads everything; `reason` labels the reload in the metrics.
async fn reload(
    store: &SnapshotStore,
    loader: &Loader,
    reason: &'static str,
) -> Result<(), sqlx::Error> {
    metrics::counter!("config_full_reloads_total", "reason" => reason).increment(1);
    let started = Instant::now();
    let version = store.load().map_or(1, |s| s.version + 1);
    let snapshot = loader.full(version).await?;
    tracing::info!(
        servers = snapshot.len(),
        version,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "configuration loaded"
    );
    store.publish(snapshot);
    Ok(())
}

/// Changes notified and not yet applied. A payload is `signing_keys`, `*` (anything), or
/// server ids separated by commas; any of them may end in `@` and the milliseconds since the
/// epoch of the transaction that sent it (for the lag metric).
///
/// Servers queue newest first and are applied [`PATCH_CHUNK`] at a time, so a change made
/// during a long burst (a rotation re-sealing every source) waits for one chunk, not for the
/// burst; a queue longer than [`full_reload_at`] is one full reload instead.
#[derive(Debug, Default)]
pub struct Pending {
    order: VecDeque<Uuid>,
    queued: HashSet<Uuid>,
    everything: bool,
    signing_keys: bool,
    /// When the oldest change waiting was made (ms since the epoch), if it said.
    oldest_ms: Option<i64>,
}

/// Servers re-read per patch at most: a patch of this many takes tens of milliseconds, and
/// fewer, larger patches drain a burst sooner than many small ones.
pub const PATCH_CHUNK: usize = 2_000;

/// Past this many servers waiting (half of those served, at least [`FULL_RELOAD_AT`]), one
/// full reload is cheaper than patches.
fn full_reload_at(served: usize) -> usize {
    FULL_RELOAD_AT.max(served / 2)
}

impl Pending {
    /// Adds one notification's payload.
    pub fn add(&mut self, payload: &str) {
        let (body, at) = match payload.rsplit_once('@') {
            Some((body, at)) => (body, at.parse::<i64>().ok()),
            None => (payload, None),
        };
        if let Some(at) = at {
            self.oldest_ms = Some(self.oldest_ms.map_or(at, |oldest| oldest.min(at)));
        }
        match body {
            SIGNING_KEYS_CHANGED => self.signing_keys = true,
            EVERYTHING_CHANGED => self.everything = true,
            ids => {
                for id in ids.split(',') {
                    match id.parse() {
                        Ok(id) => {
                            if self.queued.insert(id) {
                                self.order.push_front(id);
                            }
                        }
                        Err(_) => {
                            tracing::warn!("unreadable change notification; reloading everything");
                            self.everything = true;
                        }
                    }
                }
            }
        }
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty() && !self.everything && !self.signing_keys
    }

    /// Whether what waits is better applied as one full reload.
    pub fn needs_full_reload(&self, served: usize) -> bool {
        self.everything || self.order.len() > full_reload_at(served)
    }

    /// The next servers to re-read, newest first.
    fn take_chunk(&mut self) -> Vec<Uuid> {
        let n = self.order.len().min(PATCH_CHUNK);
        let chunk: Vec<Uuid> = self.order.drain(..n).collect();
        for id in &chunk {
            self.queued.remove(id);
        }
        chunk
    }

    fn clear(&mut self) {
        let oldest_ms = self.oldest_ms;
        *self = Self::default();
        self.oldest_ms = oldest_ms;
    }
}

/// Applies the next chunk of `pending` (or everything at once), then, if nothing is left,
/// records how long the oldest change waited.
async fn apply_next(
    store: &SnapshotStore,
    loader: &Loader,
    pending: &mut Pending,
) -> Result<(), sqlx::Error> {
    match store.load() {
        Some(base) if !pending.needs_full_reload(base.len()) => {
            let ids = pending.take_chunk();
            let keys_changed = std::mem::take(&mut pending.signing_keys);
            metrics::histogram!("config_patch_servers").record(ids.len() as f64);
            let next = loader.patch(&base, &ids, keys_changed).await?;
            tracing::debug!(
                changed = ids.len(),
                waiting = pending.order.len(),
                version = next.version,
                "configuration updated"
            );
            store.publish(next);
        }
        _ => {
            pending.clear();
            reload(store, loader, "burst").await?;
        }
    }
    if pending.is_empty()
        && let Some(oldest) = pending.oldest_ms.take()
    {
        let lag_ms = chrono::Utc::now()
            .timestamp_millis()
            .saturating_sub(oldest)
            .max(0);
        metrics::histogram!("config_notification_lag_seconds").record(lag_ms as f64 / 1000.0);
    }
    Ok(())
}

/// Exponential backoff from 100 ms to 10 s.
#[derive(Debug)]
struct Backoff(Duration);

impl Default for Backoff {
    fn default() -> Self {
        Self(Duration::from_millis(100))
    }
}

impl Backoff {
    fn next(&mut self) -> Duration {
        let now = self.0;
        self.0 = (self.0 * 2).min(Duration::from_secs(10));
        now
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "6f2c1c9e-3b7a-4d0e-9a51-0c8f3e2d1b4a";
    const B: &str = "0b8e4f6a-9c2d-4e1f-8a3b-5d7c9e1f2a4b";

    #[test]
    fn payloads_queue_servers_newest_first_once_each() {
        let mut pending = Pending::default();
        pending.add(&format!("{A}@1000"));
        pending.add(&format!("{B},{A}@900"));
        assert_eq!(
            pending.order,
            [B.parse::<Uuid>().unwrap(), A.parse().unwrap()]
        );
        assert_eq!(pending.oldest_ms, Some(900));
        assert!(!pending.needs_full_reload(0));
        assert_eq!(pending.take_chunk().len(), 2);
        assert!(pending.is_empty());
    }

    #[test]
    fn old_payloads_keys_everything_and_garbage() {
        let mut pending = Pending::default();
        pending.add(A);
        assert_eq!(pending.order.len(), 1);
        assert_eq!(pending.oldest_ms, None);
        pending.add("signing_keys@5");
        assert!(pending.signing_keys && !pending.needs_full_reload(0));
        pending.add("not-a-uuid");
        assert!(
            pending.needs_full_reload(0),
            "unreadable: reload everything"
        );
        let mut pending = Pending::default();
        pending.add("*@7");
        assert!(pending.needs_full_reload(1_000_000));
    }

    #[test]
    fn a_long_queue_is_one_full_reload() {
        let mut pending = Pending::default();
        for _ in 0..=FULL_RELOAD_AT {
            pending.add(&Uuid::new_v4().to_string());
        }
        assert!(pending.needs_full_reload(100));
        assert!(
            !pending.needs_full_reload(4 * FULL_RELOAD_AT),
            "under half of those served"
        );
        assert_eq!(pending.take_chunk().len(), PATCH_CHUNK);
    }
}
