//! PostgreSQL databases read through a least-privilege role (`postgres`).
//!
//! search: each configured table is searched with full-text search over its text columns
//! (`websearch_to_tsquery('simple', query)`, so agents' natural queries work, ranked by
//! `ts_rank`), the tables concurrently, each for a fair share of the results, merged taking
//! turns. fetch: one row by id, its text the configured text columns, every other column as
//! metadata (each value cut to a few KiB in the database).
//!
//! The agent's query and ids only ever travel as bind parameters: the SQL text of every
//! statement is built from the validated source settings alone (identifiers quoted), see
//! [`search_sql`] and [`fetch_sql`].
//!
//! Sessions: read-only (`default_transaction_read_only`) with a statement timeout below the
//! source deadline, both set as connection options, so no statement can run without them.
//! Each source gets two small pools per gateway (one for searches, one for fetches), connected
//! lazily to an address checked when the pools are made (the name is resolved once, so a later
//! DNS answer cannot move them elsewhere): allowed by `POSTGRES_ALLOWED_HOSTS` for the port,
//! and not the product's own database (`DATABASE_URL`'s server), whatever the list says. Pools
//! are kept by source id with a fingerprint of the connection settings (a changed setting gets
//! new pools) and closed when the source leaves the snapshot ([`SourceHandler::retain`]).
//!
//! Answers are bounded whatever the server does (it may be hostile: any server on an allowed
//! host can pose as PostgreSQL): rows are read as a stream, at most the rows asked for (a
//! further row means the server ignored `LIMIT`: reading stops there and the connection is
//! closed, not drained), and every pool reaches its server through a [`relay`] that cuts a
//! connection whose answer to one statement passes a byte budget ([`SEARCH_ANSWER_BYTES`] per
//! table searched, [`FETCH_ROW_BYTES`] per fetch; legitimate answers stay far below them). The
//! relay is what bounds a single oversized row: sqlx reads each wire message whole, so no cap
//! above it could (see the relay's notes).
//!
//! Connection failures: to an address only the list allows (loopback, private, link-local),
//! refused, reset, timed out and "not PostgreSQL" are one and the same reason, so a tenant
//! cannot use a source to tell a closed port from an open one running something else. To a
//! public address they keep their own reasons, which help set a source up.
//!
//! Result ids: `postgres:<source uuid>:<schema.table>/<row id, percent-encoded>`.

mod relay;

use std::{
    collections::{HashMap, HashSet},
    hash::{Hash, Hasher},
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex},
    time::Duration,
};

use futures::TryStreamExt;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use secrecy::ExposeSecret;
use serde_json::Value;
use shared::{
    egress::is_public,
    hosts::{HostList, PRODUCT_DATABASE, ProductDatabase},
    model::source::{
        PostgresConfig, SslMode,
        postgres::{Table, tables::row_url},
    },
};
use sqlx::{
    PgPool,
    pool::PoolConnection,
    postgres::{PgConnectOptions, PgPoolOptions, PgSslMode},
};
use uuid::Uuid;

use crate::{
    snapshot::ServedSource,
    sources::{BoxFuture, Document, Hit, Lifecycle, SourceError, SourceHandler, merge_fairly},
};

/// Search connections per source per gateway: a search over many tables shares them.
const POOL_SIZE: u32 = 4;
/// Fetch connections per source per gateway.
const FETCH_POOL_SIZE: u32 = 2;
/// Most bytes the server may send in answer to one table's search statement: 200 results (the
/// most `GATEWAY_MAX_RESULTS` allows) of a 4 KiB id and a 512-character title take under half.
pub const SEARCH_ANSWER_BYTES: usize = 2 * 1024 * 1024;
/// Most bytes the server may send in answer to one fetch: the text (600,000 characters, at
/// most 2.4 MB in UTF-8) and hundreds of metadata values cut at 4,096 characters fit.
pub const FETCH_ROW_BYTES: usize = 16 * 1024 * 1024;
/// An idle connection is closed after this long.
const IDLE: Duration = Duration::from_secs(60);
/// A connection is replaced after this long (picks up server-side role changes).
const LIFETIME: Duration = Duration::from_secs(30 * 60);
/// Longest title read, in characters (the tools cut it further, in bytes).
const TITLE_CHARS: usize = 512;
/// Longest text read, in characters: more than the tools keep, so a cut text is marked cut.
const TEXT_CHARS: usize = 600_000;
/// Longest metadata value read, in characters.
const METADATA_VALUE_CHARS: usize = 4096;
/// Matches of one table ranked at most, per search.
const CANDIDATES: usize = 1000;
/// The text search configuration: `simple` stems nothing, so it suits any language; the
/// README's index uses the same one (it must, to be used).
const TS_CONFIG: &str = "simple";

/// Row ids are percent-encoded in result ids: everything but unreserved characters.
const ROW_ID: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The `postgres` handler.
pub struct Postgres {
    /// `POSTGRES_ALLOWED_HOSTS`: the addresses connections may go to.
    hosts: HostList,
    /// The server `DATABASE_URL` names: never connected to for a source.
    product_database: Option<ProductDatabase>,
    /// Set on every session, below the source deadline, so the server stops a slow statement
    /// itself rather than running on after the gateway gave up on it.
    statement_timeout: Duration,
    pools: Mutex<HashMap<Uuid, Arc<Pooled>>>,
}

struct Pooled {
    /// Of the connection settings the pool was made with.
    fingerprint: u64,
    search: Lane,
    fetch: Lane,
    /// The type of each table's id column (`schema.table` → `bigint`), read from the catalog
    /// on the first fetch, so a fetch compares the id in the column's own type (its index
    /// serves it) rather than as text.
    id_types: Mutex<HashMap<String, String>>,
}

/// A pool and the relay its connections go through, with the byte budget of one answer.
struct Lane {
    pool: PgPool,
    relay: relay::Relay,
    budget: usize,
    statement_timeout: Duration,
    /// The server's address is allowed only because `POSTGRES_ALLOWED_HOSTS` lists it (not
    /// public): connection failures then all read the same.
    listed_only: bool,
}

impl Postgres {
    /// A handler connecting where `hosts` allow, with statements cut after a share of the
    /// source deadline.
    pub fn new(hosts: HostList, source_timeout: Duration) -> Self {
        Self {
            hosts,
            product_database: None,
            statement_timeout: statement_timeout(source_timeout),
            pools: Mutex::default(),
        }
    }

    /// The same, never connecting to `product_database` (the server `DATABASE_URL` names).
    pub fn refusing(mut self, product_database: Option<ProductDatabase>) -> Self {
        self.product_database = product_database;
        self
    }

    /// How many sources have a pool now.
    pub fn pools(&self) -> usize {
        self.pools.lock().expect("pools lock").len()
    }

    async fn search(
        &self,
        source: &ServedSource,
        config: &PostgresConfig,
        query: &str,
        limit: usize,
    ) -> Result<Vec<Hit>, SourceError> {
        let pooled = self.pool(source.id, config).await?;
        // NUL cannot travel in a text parameter and means nothing in a query.
        let query = query.replace('\0', " ");
        let tables = distinct(&config.tables);
        let share = limit.div_ceil(tables.len().max(1)).max(1);
        let searches = tables
            .iter()
            .map(|table| search_table(&pooled.search, table, &query, share));
        let outcomes = futures::future::join_all(searches).await;

        let mut lists = Vec::with_capacity(outcomes.len());
        let mut failures = Vec::new();
        for (table, outcome) in tables.iter().zip(outcomes) {
            match outcome {
                Ok(hits) => lists.push(hits),
                // Connecting failed: the same for every table, so said once.
                Err(Failure::Source(error)) => return Err(error),
                Err(Failure::Table(error)) => failures.push((table.qualified(), error)),
                Err(Failure::BadValue) => failures.push((
                    table.qualified(),
                    SourceError::BadResponse(
                        "the database refused the query's value (SQLSTATE class 22)".to_owned(),
                    ),
                )),
            }
        }
        if lists.is_empty() {
            return Err(all_tables_failed(failures));
        }
        for (table, error) in &failures {
            tracing::warn!(source_id = %source.id, table = %table, %error, "table search failed; the other tables' results are returned");
        }
        Ok(merge_fairly(lists, limit))
    }

    async fn fetch(
        &self,
        source: &ServedSource,
        config: &PostgresConfig,
        upstream_id: &str,
    ) -> Result<Document, SourceError> {
        let (table, row_id) = parse_id(config, upstream_id).ok_or(SourceError::NotFound)?;
        let pooled = self.pool(source.id, config).await?;
        let failed = |failure: Failure| match failure {
            Failure::Source(error) => error,
            Failure::Table(error) => in_table(&table.qualified(), error),
            Failure::BadValue => SourceError::NotFound,
        };
        let id_type = id_type(&pooled, table)
            .await
            .map_err(failed)?
            .ok_or_else(|| {
                SourceError::Unusable(format!(
                    "table {}: the table or its id column does not exist",
                    table.qualified()
                ))
            })?;
        // Audited: the text is built from validated, quoted identifiers and the id column's
        // type as the catalog names it (format_type quotes what needs it).
        let sql = fetch_sql(table, &id_type);
        let statement = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(&row_id)
            .bind(&table.text_columns);
        // A connection of its own: the catalog read's may have been closed.
        let mut conn = pooled.fetch.acquire().await.map_err(failed)?;
        let row: Option<(Option<String>, Option<String>, Option<Value>)> = pooled
            .fetch
            .rows(&mut conn, statement, 1)
            .await
            .map_err(failed)?
            .pop();
        let (title, text, metadata) = row.ok_or(SourceError::NotFound)?;
        let mut metadata = match metadata {
            Some(Value::Object(map)) => map,
            _ => serde_json::Map::new(),
        };
        metadata.insert("table".to_owned(), table.qualified().into());
        Ok(Document {
            title: title
                .filter(|t| !t.is_empty())
                .unwrap_or_else(|| row_id.clone()),
            text: text.unwrap_or_default(),
            url: url_of(table, &row_id),
            metadata: Value::Object(metadata),
        })
    }

    /// The source's pool: the one made for these connection settings, or a new one (the
    /// host resolved and checked now).
    async fn pool(
        &self,
        source_id: Uuid,
        config: &PostgresConfig,
    ) -> Result<Arc<Pooled>, SourceError> {
        let fingerprint = fingerprint(config);
        let cached = |pools: &HashMap<Uuid, Arc<Pooled>>| {
            pools
                .get(&source_id)
                .filter(|p| p.fingerprint == fingerprint)
                .cloned()
        };
        if let Some(pooled) = cached(&self.pools.lock().expect("pools lock")) {
            return Ok(pooled);
        }
        let address = self.address(&config.host, config.port).await?;
        let lane = |size, budget| self.lane(config, address, size, budget);
        let (search, fetch) = (
            lane(POOL_SIZE, SEARCH_ANSWER_BYTES)?,
            lane(FETCH_POOL_SIZE, FETCH_ROW_BYTES)?,
        );
        let (replaced, pooled) = {
            let mut pools = self.pools.lock().expect("pools lock");
            if let Some(pooled) = cached(&pools) {
                // Another call made one meanwhile; ours has no connection yet.
                return Ok(pooled);
            }
            let pooled = Arc::new(Pooled {
                fingerprint,
                search,
                fetch,
                id_types: Mutex::default(),
            });
            (pools.insert(source_id, pooled.clone()), pooled)
        };
        if let Some(old) = replaced {
            close(old);
        }
        Ok(pooled)
    }

    /// A lazily connected pool of `size` to `address` through a relay cutting answers past
    /// `budget` bytes.
    fn lane(
        &self,
        config: &PostgresConfig,
        address: IpAddr,
        size: u32,
        budget: usize,
    ) -> Result<Lane, SourceError> {
        let upstream = SocketAddr::new(address, config.port);
        let relay = relay::Relay::start(config.port, upstream, budget, self.statement_timeout)
            .map_err(|err| {
                tracing::error!(%err, "cannot open a relay socket for a postgres source");
                SourceError::Unreachable("the gateway cannot open a local relay socket".to_owned())
            })?;
        let options = session_options(config, address, self.statement_timeout).socket(relay.dir());
        let pool = PgPoolOptions::new()
            .max_connections(size)
            .min_connections(0)
            .idle_timeout(IDLE)
            .max_lifetime(LIFETIME)
            .acquire_timeout(self.statement_timeout)
            .connect_lazy_with(options);
        Ok(Lane {
            pool,
            relay,
            budget,
            statement_timeout: self.statement_timeout,
            listed_only: !is_public(address),
        })
    }

    /// The first address `host` resolves to that `POSTGRES_ALLOWED_HOSTS` allows for `port`
    /// (public, or in a listed block): checked here, at connect time, not only as written at
    /// creation. A name with any address at the product's own database is refused outright.
    async fn address(&self, host: &str, port: u16) -> Result<IpAddr, SourceError> {
        let unresolved = || SourceError::Unreachable(format!("cannot resolve host {host}"));
        let addresses: Vec<IpAddr> = tokio::net::lookup_host((host, port))
            .await
            .map_err(|_| unresolved())?
            .map(|address| address.ip())
            .collect();
        if let Some(db) = &self.product_database
            && addresses.iter().any(|ip| db.is_at(*ip, port))
        {
            return Err(SourceError::Unusable(format!(
                "host {host} port {port} {PRODUCT_DATABASE}"
            )));
        }
        if let Some(allowed) = addresses
            .iter()
            .find(|ip| self.hosts.allows_address(**ip, port))
        {
            return Ok(*allowed);
        }
        if !addresses.is_empty() {
            Err(SourceError::Unusable(format!(
                "host {host} resolves to an address POSTGRES_ALLOWED_HOSTS does not allow \
                 for port {port} (loopback, private and link-local addresses must be listed)"
            )))
        } else {
            Err(unresolved())
        }
    }
}

impl SourceHandler<PostgresConfig> for Postgres {
    fn search<'a>(
        &'a self,
        source: &'a ServedSource,
        config: &'a PostgresConfig,
        query: &'a str,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<Hit>, SourceError>> {
        Box::pin(Postgres::search(self, source, config, query, limit))
    }

    fn fetch<'a>(
        &'a self,
        source: &'a ServedSource,
        config: &'a PostgresConfig,
        upstream_id: &'a str,
    ) -> BoxFuture<'a, Result<Document, SourceError>> {
        Box::pin(Postgres::fetch(self, source, config, upstream_id))
    }
}

impl Lifecycle for Postgres {
    fn holds_any(&self) -> bool {
        self.pools() > 0
    }

    /// Closes the pools of sources no longer served.
    fn retain(&self, live: &HashSet<Uuid>) {
        let gone: Vec<Arc<Pooled>> = self
            .pools
            .lock()
            .expect("pools lock")
            .extract_if(|id, _| !live.contains(id))
            .map(|(_, pooled)| pooled)
            .collect();
        for pooled in gone {
            close(pooled);
        }
    }
}

/// Closes a source's pools in the background: connections in use finish their statement
/// first; the relays go with the last reference.
fn close(pooled: Arc<Pooled>) {
    tokio::spawn(async move {
        pooled.search.pool.close().await;
        pooled.fetch.pool.close().await;
    });
}

/// The statement timeout for a source deadline: four fifths of it, so the server's own
/// cancellation (a typed error) normally comes before the gateway's deadline.
pub fn statement_timeout(source_timeout: Duration) -> Duration {
    (source_timeout * 4 / 5).max(Duration::from_millis(50))
}

/// A table listed twice is searched once, with its first settings.
fn distinct(tables: &[Table]) -> Vec<&Table> {
    let mut seen = HashSet::new();
    tables
        .iter()
        .filter(|t| seen.insert((t.schema.as_str(), t.name.as_str())))
        .collect()
}

/// The connection options of a source's sessions, to `address` (already checked): read-only
/// and with the statement timeout as session defaults, so they hold for every statement.
pub fn session_options(
    config: &PostgresConfig,
    address: IpAddr,
    statement_timeout: Duration,
) -> PgConnectOptions {
    PgConnectOptions::new_without_pgpass()
        .host(&address.to_string())
        .port(config.port)
        .database(&config.database)
        .username(&config.user)
        .password(config.password.expose_secret())
        .ssl_mode(match config.sslmode {
            SslMode::Disable => PgSslMode::Disable,
            SslMode::Prefer => PgSslMode::Prefer,
            SslMode::Require => PgSslMode::Require,
        })
        .application_name("mcp-gateway")
        .options([
            ("default_transaction_read_only", "on".to_owned()),
            (
                "statement_timeout",
                format!("{}ms", statement_timeout.as_millis()),
            ),
            (
                "idle_in_transaction_session_timeout",
                format!("{}ms", statement_timeout.as_millis()),
            ),
        ])
}

/// Of the settings a pool is made with (the password included: a new one needs new
/// connections). Kept in memory only.
fn fingerprint(config: &PostgresConfig) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (
        &config.host,
        config.port,
        &config.database,
        &config.user,
        config.password.expose_secret(),
        config.sslmode,
    )
        .hash(&mut hasher);
    hasher.finish()
}

/// `"name"`, with quotes inside doubled (validated identifiers have none; this is the rule
/// anyway).
fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

fn relation(table: &Table) -> String {
    format!("{}.{}", quote(&table.schema), quote(&table.name))
}

/// The searched document of a row: its text columns joined with spaces. Written with
/// immutable operators only (`||`, `coalesce`), so an expression index on the same text
/// (see [`index_sql`]) can serve the search.
fn document(table: &Table) -> String {
    let columns: Vec<String> = table
        .text_columns
        .iter()
        .map(|c| format!("coalesce({}::text, '')", quote(c)))
        .collect();
    format!(
        "to_tsvector('{TS_CONFIG}', {})",
        columns.join(" || ' ' || ")
    )
}

/// The statement that searches one table: `$1` the query, `$2` the limit. The matches are
/// ranked among the first [`CANDIDATES`] the index yields: ranking re-reads each row's text,
/// so a query matching much of a large table would otherwise cost a pass over all of it.
pub fn search_sql(table: &Table) -> String {
    let document = document(table);
    format!(
        "select id, title from (\
           select {id}::text as id, left({title}::text, {TITLE_CHARS}) as title, {document} as document \
           from {relation} \
           where {document} @@ websearch_to_tsquery('{TS_CONFIG}', $1) and {id} is not null \
           limit {CANDIDATES}) as matches \
         order by ts_rank(document, websearch_to_tsquery('{TS_CONFIG}', $1)) desc limit $2",
        id = quote(&table.id_column),
        title = quote(&table.title_column),
        relation = relation(table),
    )
}

/// The type of a table's id column as the catalog writes it (`bigint`, `text`,
/// `character varying(20)`), remembered per pool; `None` when the table or column is missing.
async fn id_type(pooled: &Pooled, table: &Table) -> Result<Option<String>, Failure> {
    let name = table.qualified();
    if let Some(known) = pooled.id_types.lock().expect("id types lock").get(&name) {
        return Ok(Some(known.clone()));
    }
    let statement = sqlx::query_as(
        "select format_type(a.atttypid, a.atttypmod) from pg_attribute a \
         where a.attrelid = to_regclass($1) and a.attname = $2 and a.attnum > 0 \
           and not a.attisdropped",
    )
    .bind(relation(table))
    .bind(&table.id_column);
    let mut conn = pooled.fetch.acquire().await?;
    let found: Option<String> = pooled
        .fetch
        .rows(&mut conn, statement, 1)
        .await?
        .pop()
        .map(|(found,)| found);
    if let Some(found) = &found {
        pooled
            .id_types
            .lock()
            .expect("id types lock")
            .insert(name, found.clone());
    }
    Ok(found)
}

/// The statement that reads one row: `$1` the row id (as text, cast to the id column's type
/// `id_type`, so the column's index serves it), `$2` the text columns (left out of the
/// metadata). Title, text and metadata values are cut in the database, so a huge row is never
/// read whole.
pub fn fetch_sql(table: &Table, id_type: &str) -> String {
    let text: Vec<String> = table
        .text_columns
        .iter()
        .map(|c| format!("r.{}::text", quote(c)))
        .collect();
    format!(
        "select left(r.{title}::text, {TITLE_CHARS}), left(concat_ws(E'\\n\\n', {text}), {TEXT_CHARS}), \
         (select jsonb_object_agg(key, case when length(value::text) > {METADATA_VALUE_CHARS} \
            then to_jsonb(left(value::text, {METADATA_VALUE_CHARS}) || '…') else value end) \
          from jsonb_each(to_jsonb(r) - $2::text[])) \
         from {relation} r where r.{id} = $1::text::{id_type} limit 1",
        title = quote(&table.title_column),
        text = text.join(", "),
        id = quote(&table.id_column),
        relation = relation(table),
    )
}

/// The index that makes [`search_sql`] fast on a large table (the README recommends it).
pub fn index_sql(table: &Table) -> String {
    format!(
        "create index on {} using gin (({}))",
        relation(table),
        document(table)
    )
}

async fn search_table(
    lane: &Lane,
    table: &Table,
    query: &str,
    limit: usize,
) -> Result<Vec<Hit>, Failure> {
    let mut conn = lane.acquire().await?;
    // Audited: the text is built from validated, quoted identifiers only.
    let statement = sqlx::query_as(sqlx::AssertSqlSafe(search_sql(table)))
        .bind(query)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX));
    let rows: Vec<(String, Option<String>)> = lane.rows(&mut conn, statement, limit).await?;
    Ok(rows
        .into_iter()
        .map(|(row_id, title)| Hit {
            upstream_id: format!(
                "{}/{}",
                table.qualified(),
                utf8_percent_encode(&row_id, ROW_ID)
            ),
            title: title
                .filter(|t| !t.is_empty())
                .unwrap_or_else(|| row_id.clone()),
            url: url_of(table, &row_id),
        })
        .collect())
}

fn url_of(table: &Table, row_id: &str) -> String {
    table
        .url_template
        .as_deref()
        .map(|template| row_url(template, row_id))
        .unwrap_or_default()
}

/// The table and row id of `schema.table/<percent-encoded id>`; `None` when the table is not
/// one of the source's or the id does not decode.
fn parse_id<'a>(config: &'a PostgresConfig, upstream_id: &str) -> Option<(&'a Table, String)> {
    let (name, encoded) = upstream_id.split_once('/')?;
    let table = config.tables.iter().find(|t| t.qualified() == name)?;
    let row_id = percent_decode_str(encoded).decode_utf8().ok()?.into_owned();
    // A text value cannot hold NUL; such an id names no row.
    (!row_id.is_empty() && !row_id.contains('\0')).then_some((table, row_id))
}

/// Whether a failure concerns the whole source (connecting) or one table.
enum Failure {
    Source(SourceError),
    Table(SourceError),
    /// The server refused a parameter's value (SQLSTATE class 22, data exception): for a
    /// fetch, an id the id column's type cannot hold, so no row.
    BadValue,
}

/// What every connection-level failure to an address only the list allows reads as.
const NO_SERVER: &str =
    "cannot connect to the database server (nothing answering as PostgreSQL at this host and port)";

impl Lane {
    /// A connection, or why none. To an address only the list allows, every failure before a
    /// session (refused, reset, timed out, an answer that is not PostgreSQL's) is one reason;
    /// the server's own refusals (authentication, no such database) stay distinct.
    async fn acquire(&self) -> Result<PoolConnection<sqlx::Postgres>, Failure> {
        self.pool.acquire().await.map_err(|err| match err {
            sqlx::Error::Database(_) => classify(&err, self.statement_timeout),
            _ if self.listed_only => {
                Failure::Source(SourceError::Unreachable(NO_SERVER.to_owned()))
            }
            _ => classify(&err, self.statement_timeout),
        })
    }

    /// The rows of `statement` on `conn`, at most `most`: a further row means the server
    /// ignored the statement's `LIMIT`, so reading stops and the connection is closed rather
    /// than drained or reused (the rows read are returned). A connection the relay cut for
    /// answering more than the budget is reported as too large.
    async fn rows<'q, Row>(
        &self,
        conn: &mut PoolConnection<sqlx::Postgres>,
        statement: sqlx::query::QueryAs<'q, sqlx::Postgres, Row, sqlx::postgres::PgArguments>,
        most: usize,
    ) -> Result<Vec<Row>, Failure>
    where
        Row: Send + Unpin + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + 'q,
    {
        let cuts = self.relay.cuts();
        let mut rows = Vec::new();
        let mut stream = statement.fetch(&mut **conn);
        let finished = loop {
            match stream.try_next().await {
                Ok(None) => break Ok(true),
                Ok(Some(_)) if rows.len() == most => break Ok(false),
                Ok(Some(row)) => rows.push(row),
                Err(err) => break Err(err),
            }
        };
        drop(stream);
        match finished {
            Ok(true) => Ok(rows),
            Ok(false) => {
                tracing::warn!(
                    rows = most,
                    "the database server sent more rows than asked for; the connection is closed"
                );
                conn.close_on_drop();
                Ok(rows)
            }
            Err(err) => {
                // The server's own error leaves the session usable; anything else (a cut,
                // an undecodable row) may leave unread data that reuse would drain.
                if !matches!(err, sqlx::Error::Database(_)) {
                    conn.close_on_drop();
                }
                Err(self.failed(&err, cuts))
            }
        }
    }

    /// A statement's failure: the relay's cut (its count moved past `cuts`) as too large, the
    /// rest as [`classify`] says.
    fn failed(&self, err: &sqlx::Error, cuts: u64) -> Failure {
        if self.relay.cuts() > cuts && matches!(err, sqlx::Error::Io(_) | sqlx::Error::Protocol(_))
        {
            return Failure::Table(SourceError::TooLarge(self.budget));
        }
        if is_data_exception(err) {
            return Failure::BadValue;
        }
        classify(err, self.statement_timeout)
    }
}

fn is_data_exception(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.code().is_some_and(|c| c.starts_with("22")))
}

/// A database error as a short, typed reason. The server's own message is never passed on:
/// it can quote values (a row's content, a setting).
fn classify(err: &sqlx::Error, statement_timeout: Duration) -> Failure {
    use Failure::{Source, Table};
    match err {
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            match code.as_ref() {
                "28P01" | "28000" => Source(SourceError::Authentication(
                    "authentication failed (check user and password)".to_owned(),
                )),
                "3D000" => Source(SourceError::Unusable("database does not exist".to_owned())),
                "53300" => Source(SourceError::Throttled(
                    "the server has too many connections".to_owned(),
                )),
                "57P01" | "57P02" | "57P03" => Source(SourceError::Unreachable(
                    "the server is shutting down or starting".to_owned(),
                )),
                "57014" => Table(SourceError::TimedOut(statement_timeout)),
                "42501" => Table(SourceError::Unusable(
                    "permission denied (the source's role may not read it)".to_owned(),
                )),
                "42P01" | "3F000" => {
                    Table(SourceError::Unusable("table does not exist".to_owned()))
                }
                "42703" => Table(SourceError::Unusable(
                    "a configured column does not exist".to_owned(),
                )),
                "42883" | "42804" => Table(SourceError::Unusable(
                    "a configured column cannot be read as text".to_owned(),
                )),
                _ => Table(SourceError::BadResponse(format!(
                    "database error (SQLSTATE {code})"
                ))),
            }
        }
        sqlx::Error::Io(_) => Source(SourceError::Unreachable(
            "cannot connect to the database server".to_owned(),
        )),
        sqlx::Error::Tls(_) => Source(SourceError::Unreachable(
            "TLS with the database server failed (check sslmode)".to_owned(),
        )),
        sqlx::Error::PoolTimedOut => Source(SourceError::TimedOut(statement_timeout)),
        sqlx::Error::PoolClosed => Source(SourceError::Unreachable(
            "the source's connections are closing".to_owned(),
        )),
        _ => Source(SourceError::BadResponse(
            "unexpected answer from the database server".to_owned(),
        )),
    }
}

/// A table's failure, the table named.
fn in_table(table: &str, error: SourceError) -> SourceError {
    match error {
        SourceError::Unusable(reason) => SourceError::Unusable(format!("table {table}: {reason}")),
        SourceError::BadResponse(reason) => {
            SourceError::BadResponse(format!("table {table}: {reason}"))
        }
        other => other,
    }
}

/// Every table failed: the first failure's class, every table's reason.
fn all_tables_failed(failures: Vec<(String, SourceError)>) -> SourceError {
    let reasons = failures
        .iter()
        .map(|(table, error)| format!("table {table}: {error}"))
        .collect::<Vec<_>>()
        .join("; ");
    match failures.into_iter().next() {
        Some((_, SourceError::Unusable(_))) | None => SourceError::Unusable(reasons),
        Some((_, SourceError::TimedOut(after))) => SourceError::TimedOut(after),
        Some(_) => SourceError::BadResponse(reasons),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Table {
        Table {
            schema: "public".to_owned(),
            name: "Docs".to_owned(),
            id_column: "id".to_owned(),
            title_column: "title".to_owned(),
            text_columns: vec!["title".to_owned(), "body".to_owned()],
            url_template: Some("https://x.example/d/{id}".to_owned()),
        }
    }

    #[test]
    fn statements_quote_identifiers_and_take_input_as_parameters() {
        let sql = search_sql(&table());
        assert!(sql.contains(r#"from "public"."Docs""#), "{sql}");
        assert!(sql.contains("websearch_to_tsquery('simple', $1)"), "{sql}");
        assert!(sql.ends_with("limit $2"), "{sql}");
        assert!(sql.contains("limit 1000) as matches"), "{sql}");
        let sql = fetch_sql(&table(), "bigint");
        assert!(sql.contains(r#"r."id" = $1::text::bigint"#), "{sql}");
        assert!(index_sql(&table()).contains(&document(&table())));
    }

    #[tokio::test]
    async fn a_name_resolving_to_the_products_database_is_refused_at_connect_time() {
        // `localhost` listed, as `./dev up` does: the name passes the list, its address is the
        // product's database (as after a DNS change), so the handler refuses to connect.
        let hosts = HostList::parse(&[
            "localhost".to_owned(),
            "127.0.0.0/8".to_owned(),
            "::1".to_owned(),
        ])
        .unwrap();
        let product = ProductDatabase::resolve("postgres://postgres@127.0.0.1:54329/mcp_gateway");
        let handler = Postgres::new(hosts, Duration::from_secs(1)).refusing(product);
        let refused = handler.address("localhost", 54329).await.unwrap_err();
        assert!(
            matches!(&refused, SourceError::Unusable(reason) if reason.contains("this product's own database")),
            "{refused:?}"
        );
        assert!(
            handler.address("127.0.0.1", 54330).await.is_ok(),
            "another port"
        );
    }

    #[test]
    fn ids_round_trip_any_row_id() {
        let config = PostgresConfig {
            host: "db.example.com".to_owned(),
            port: 5432,
            database: "crm".to_owned(),
            user: "reader".to_owned(),
            password: secrecy::SecretString::from("pw".to_owned()),
            sslmode: SslMode::Require,
            tables: vec![table()],
        };
        for row_id in ["42", "a/b c", "'; drop table x; --", "ünï\\code%2F", "x:y"] {
            let upstream = format!("public.Docs/{}", utf8_percent_encode(row_id, ROW_ID));
            let (table, decoded) = parse_id(&config, &upstream).expect("parses");
            assert_eq!(table.qualified(), "public.Docs");
            assert_eq!(decoded, row_id);
        }
        for unknown in [
            "public.docs/1",
            "public.Users/1",
            "public.Docs/",
            "public.Docs/a%00b",
        ] {
            assert!(parse_id(&config, unknown).is_none(), "{unknown}");
        }
    }
}
