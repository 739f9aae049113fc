//! Every statement the gateway runs on its own database (the configuration it serves), in one
//! place. (The `postgres` and `snowflake` sources query their upstreams: that SQL is theirs.)
//!
//! The reads of the configuration that read servers come in two forms, for every live server
//! and for a list of them (`$1`): one statement with `$1 is null or id = any($1)` gets a
//! generic plan after a few runs that scans every server, so each patch would cost
//! O(servers) instead of O(changed).

use uuid::Uuid;

/// A read of every live server (`all`) or of those in `$1` (`some`).
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

/// Live servers, one row per source they have (or one without a source), ordered by server.
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

/// The unrevoked access keys of live servers.
pub const KEYS: Scoped = scoped!(
    "select k.server_id, k.id, k.key_hash, k.expires_at from mcp_server_keys k \
     join mcp_servers s on s.id = k.server_id",
    "k.revoked_at is null and s.deleted_at is null",
    "k.server_id",
    ""
);

/// The live OAuth grants of live servers.
pub const GRANTS: Scoped = scoped!(
    "select g.server_id, g.id, g.user_id from oauth_grants g join mcp_servers s on s.id = g.server_id",
    "s.deleted_at is null",
    "g.server_id",
    ""
);

/// Opens a transaction that reads one consistent state.
pub const CONSISTENT_READ: &str = "begin isolation level repeatable read, read only";
/// For a full load: compiling its plan costs more than it saves.
pub const NO_JIT: &str = "set local jit = off";

/// The public halves of the signing keys (the gateway's role can read no more).
pub const VERIFYING_KEYS: &str = "select kid, public_key from oauth_signing_keys";

/// The audit writer's transactions are committed asynchronously (the audit log is
/// best-effort by design; a database crash may lose its last fraction of a second).
pub const ASYNC_COMMIT: &str = "set local synchronous_commit = off";

/// A batch of tool-call records as column arrays; records of servers deleted meanwhile are
/// skipped.
pub const INSERT_TOOL_CALLS: &str = "\
    insert into tool_calls (server_id, key_id, grant_id, user_id, called_at, tool, argument, \
                            status, error_class, result_count, duration_ms, sources) \
    select u.server_id, u.key_id, u.grant_id, u.user_id, u.called_at, u.tool, u.argument, \
           u.status, u.error_class, u.result_count, u.duration_ms, u.sources::json \
    from unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::timestamptz[], $5::text[], $6::text[], \
                $7::text[], $8::text[], $9::int4[], $10::int4[], $11::text[], $12::uuid[]) \
         as u(server_id, key_id, grant_id, called_at, tool, argument, status, error_class, \
              result_count, duration_ms, sources, user_id) \
    where exists (select 1 from mcp_servers s where s.id = u.server_id)";

/// The last use of each key in `$1` at the time in `$2` (newer times win); keys deleted
/// meanwhile are skipped.
pub const RECORD_KEY_USES: &str = "\
    insert into mcp_server_key_usage (key_id, last_used_at) \
    select u.key_id, u.at from unnest($1::uuid[], $2::timestamptz[]) as u(key_id, at) \
    where exists (select 1 from mcp_server_keys k where k.id = u.key_id) \
    on conflict (key_id) do update \
    set last_used_at = greatest(mcp_server_key_usage.last_used_at, excluded.last_used_at)";

/// `query` over every live server, or only those in `ids`.
pub fn scoped<'a, O>(
    query: Scoped,
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
