//! OAuth clients: registered ones and those known by a metadata document.

use sqlx::PgExecutor;

/// A client as stored (registered, or known by its metadata document).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClientRow {
    pub client_id: String,
    pub kind: String,
    pub client_name: String,
    pub redirect_uris: Vec<String>,
}

/// Stores a newly registered client.
pub async fn insert_client(
    db: impl PgExecutor<'_>,
    client_id: &str,
    client_name: &str,
    redirect_uris: &[String],
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into oauth_clients (client_id, kind, client_name, redirect_uris) \
         values ($1, 'registered', $2, $3)",
    )
    .bind(client_id)
    .bind(client_name)
    .bind(redirect_uris)
    .execute(db)
    .await?;
    Ok(())
}

/// Records (or refreshes) a client known by its metadata document.
pub async fn upsert_document_client(
    db: impl PgExecutor<'_>,
    client_id: &str,
    client_name: &str,
    redirect_uris: &[String],
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into oauth_clients (client_id, kind, client_name, redirect_uris) \
         values ($1, 'metadata_document', $2, $3) \
         on conflict (client_id) do update set client_name = excluded.client_name, \
             redirect_uris = excluded.redirect_uris, last_used_at = now() \
         where oauth_clients.kind = 'metadata_document'",
    )
    .bind(client_id)
    .bind(client_name)
    .bind(redirect_uris)
    .execute(db)
    .await?;
    Ok(())
}

/// A registered client by id (reading it is not a use: see [`touch_client`]).
pub async fn registered_client(
    db: impl PgExecutor<'_>,
    client_id: &str,
) -> Result<Option<ClientRow>, sqlx::Error> {
    sqlx::query_as(
        "select client_id, kind, client_name, redirect_uris from oauth_clients \
         where client_id = $1 and kind = 'registered'",
    )
    .bind(client_id)
    .fetch_optional(db)
    .await
}

/// Notes a real use of a client (a consent approved), which keeps it from the idle purge.
pub async fn touch_client(db: impl PgExecutor<'_>, client_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("update oauth_clients set last_used_at = now() where client_id = $1")
        .bind(client_id)
        .execute(db)
        .await?;
    Ok(())
}

/// Deletes registered clients that have no grant and were not used for `idle_days`.
pub async fn purge_idle_clients(
    db: impl PgExecutor<'_>,
    idle_days: i32,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "delete from oauth_clients c where c.last_used_at < now() - make_interval(days => $1) \
         and not exists (select 1 from oauth_grants g where g.client_id = c.client_id)",
    )
    .bind(idle_days)
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}
