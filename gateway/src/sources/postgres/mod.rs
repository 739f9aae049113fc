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

mod pools;
mod relay;
mod sql;

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
    time::Duration,
};

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use serde_json::Value;
use shared::{
    hosts::{HostList, ProductDatabase},
    model::source::{
        PostgresConfig,
        postgres::{Table, tables::row_url},
    },
};
use uuid::Uuid;

use crate::{
    snapshot::ServedSource,
    sources::{BoxFuture, Document, Hit, Lifecycle, SourceError, SourceHandler, merge_fairly},
};
use pools::{Failure, Lane, Pooled, close};
pub use pools::{session_options, statement_timeout};
use sql::relation;
pub use sql::{fetch_sql, index_sql, search_sql};

/// Most bytes the server may send in answer to one table's search statement: 200 results (the
/// most `GATEWAY_MAX_RESULTS` allows) of a 4 KiB id and a 512-character title take under half.
pub const SEARCH_ANSWER_BYTES: usize = 2 * 1024 * 1024;
/// Most bytes the server may send in answer to one fetch: the text (600,000 characters, at
/// most 2.4 MB in UTF-8) and hundreds of metadata values cut at 4,096 characters fit.
pub const FETCH_ROW_BYTES: usize = 16 * 1024 * 1024;

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

/// A table listed twice is searched once, with its first settings.
fn distinct(tables: &[Table]) -> Vec<&Table> {
    let mut seen = HashSet::new();
    tables
        .iter()
        .filter(|t| seen.insert((t.schema.as_str(), t.name.as_str())))
        .collect()
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
    use super::sql::document;
    use super::*;
    use shared::model::source::SslMode;

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
