//! A `postgres` source's connections: two small pools per source (searches, fetches), each
//! through a relay with a byte budget, to an address checked once when the pools are made, with
//! read-only sessions under a statement timeout; and what a failed statement means.

use std::{
    collections::HashMap,
    hash::{Hash, Hasher},
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex},
    time::Duration,
};

use futures::TryStreamExt;

use secrecy::ExposeSecret;
use shared::{
    egress::is_public,
    hosts::PRODUCT_DATABASE,
    model::source::{PostgresConfig, SslMode},
};
use sqlx::{
    PgPool,
    pool::PoolConnection,
    postgres::{PgConnectOptions, PgPoolOptions, PgSslMode},
};
use uuid::Uuid;

use super::{FETCH_ROW_BYTES, Postgres, SEARCH_ANSWER_BYTES, relay};
use crate::sources::SourceError;

/// Search connections per source per gateway: a search over many tables shares them.
pub(super) const POOL_SIZE: u32 = 4;

/// Fetch connections per source per gateway.
pub(super) const FETCH_POOL_SIZE: u32 = 2;

/// An idle connection is closed after this long.
pub(super) const IDLE: Duration = Duration::from_secs(60);

/// A connection is replaced after this long (picks up server-side role changes).
pub(super) const LIFETIME: Duration = Duration::from_secs(30 * 60);

pub(super) struct Pooled {
    /// Of the connection settings the pool was made with.
    pub(super) fingerprint: u64,
    pub(super) search: Lane,
    pub(super) fetch: Lane,
    /// The type of each table's id column (`schema.table` → `bigint`), read from the catalog
    /// on the first fetch, so a fetch compares the id in the column's own type (its index
    /// serves it) rather than as text.
    pub(super) id_types: Mutex<HashMap<String, String>>,
}

/// A pool and the relay its connections go through, with the byte budget of one answer.
pub(super) struct Lane {
    pub(super) pool: PgPool,
    pub(super) relay: relay::Relay,
    pub(super) budget: usize,
    pub(super) statement_timeout: Duration,
    /// The server's address is allowed only because `POSTGRES_ALLOWED_HOSTS` lists it (not
    /// public): connection failures then all read the same.
    pub(super) listed_only: bool,
}

/// Closes a source's pools in the background: connections in use finish their statement
/// first; the relays go with the last reference.
pub(super) fn close(pooled: Arc<Pooled>) {
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
pub(super) fn fingerprint(config: &PostgresConfig) -> u64 {
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

/// Whether a failure concerns the whole source (connecting) or one table.
pub(super) enum Failure {
    Source(SourceError),
    Table(SourceError),
    /// The server refused a parameter's value (SQLSTATE class 22, data exception): for a
    /// fetch, an id the id column's type cannot hold, so no row.
    BadValue,
}

/// What every connection-level failure to an address only the list allows reads as.
pub(super) const NO_SERVER: &str =
    "cannot connect to the database server (nothing answering as PostgreSQL at this host and port)";

impl Lane {
    /// A connection, or why none. To an address only the list allows, every failure before a
    /// session (refused, reset, timed out, an answer that is not PostgreSQL's) is one reason;
    /// the server's own refusals (authentication, no such database) stay distinct.
    pub(super) async fn acquire(&self) -> Result<PoolConnection<sqlx::Postgres>, Failure> {
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
    pub(super) async fn rows<'q, Row>(
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
    pub(super) fn failed(&self, err: &sqlx::Error, cuts: u64) -> Failure {
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

pub(super) fn is_data_exception(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.code().is_some_and(|c| c.starts_with("22")))
}

/// A database error as a short, typed reason. The server's own message is never passed on:
/// it can quote values (a row's content, a setting).
pub(super) fn classify(err: &sqlx::Error, statement_timeout: Duration) -> Failure {
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

impl Postgres {
    /// The source's pool: the one made for these connection settings, or a new one (the
    /// host resolved and checked now).
    pub(super) async fn pool(
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
    pub(super) fn lane(
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
    pub(super) async fn address(&self, host: &str, port: u16) -> Result<IpAddr, SourceError> {
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
