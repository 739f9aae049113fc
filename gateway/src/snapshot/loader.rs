//! Reading snapshots from Postgres: a full load or a patch of some servers, each in one
//! consistent read-only transaction; then decrypting and parsing every source once, off the
//! async workers (on every core for a large load).

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, OnceLock},
};

use chrono::{DateTime, Utc};
use jsonwebtoken::DecodingKey;
use serde_json::{Map, Value};
use shared::{
    access_key::KeyHash,
    crypto::Keyring,
    model::{SourceRules, SourceType},
};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::{Broken, ServedKey, ServedServer, ServedSource, Snapshot, VerifyingKeys};
use crate::sql::{self, scoped};

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
    ) -> Result<HashMap<Uuid, HashMap<Uuid, Uuid>>, sqlx::Error> {
        let rows: Vec<(Uuid, Uuid, Uuid)> = scoped(sql::GRANTS, ids).fetch_all(db).await?;
        let mut grants: HashMap<Uuid, HashMap<Uuid, Uuid>> = HashMap::new();
        for (server_id, id, user_id) in rows {
            grants.entry(server_id).or_default().insert(id, user_id);
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
    mut grants: HashMap<Uuid, HashMap<Uuid, Uuid>>,
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
