//! The migration set applies, reverts completely, and applies again; the schema enforces the
//! integrity rules on its own.

use shared::db::MIGRATOR;
use sqlx::PgPool;

async fn table_names(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar(
        "select table_name::text from information_schema.tables \
         where table_schema = 'public' and table_name <> '_sqlx_migrations' order by 1",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

#[sqlx::test(migrations = false)]
async fn migrations_apply_revert_and_apply_again(pool: PgPool) {
    MIGRATOR.run(&pool).await.expect("first apply");
    let applied = table_names(&pool).await;
    assert_eq!(
        applied,
        [
            "activity",
            "endpoint_releases",
            "mcp_server_key_usage",
            "mcp_server_keys",
            "mcp_server_members",
            "mcp_server_sources",
            "mcp_servers",
            "oauth_clients",
            "oauth_codes",
            "oauth_grants",
            "oauth_refresh_tokens",
            "oauth_signing_keys",
            "organization_invitations",
            "organization_members",
            "organizations",
            "revoked_tokens",
            "sources",
            "tool_calls",
            "users"
        ]
    );

    MIGRATOR.undo(&pool, 0).await.expect("revert all");
    assert!(
        table_names(&pool).await.is_empty(),
        "every table is dropped"
    );
    let functions: i64 =
        sqlx::query_scalar("select count(*) from pg_proc p join pg_namespace n on n.oid = p.pronamespace where n.nspname = 'public'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(functions, 0, "every trigger function is dropped");

    MIGRATOR.run(&pool).await.expect("second apply");
    assert_eq!(table_names(&pool).await, applied);
}

async fn user(pool: &PgPool, email: &str) -> uuid::Uuid {
    sqlx::query_scalar(
        "insert into users (email, hashed_password) values ($1, '$2b$04$x') returning id",
    )
    .bind(email)
    .fetch_one(pool)
    .await
    .unwrap()
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn schema_refuses_a_link_between_organizations(pool: PgPool) {
    let (a, b) = (
        user(&pool, "a@example.com").await,
        user(&pool, "b@example.com").await,
    );
    let source: uuid::Uuid =
        sqlx::query_scalar("insert into sources (organization_id, type) values ((select id from organizations where personal_user_id = $1), 'box') returning id")
            .bind(a)
            .fetch_one(&pool)
            .await
            .unwrap();
    let server: uuid::Uuid = sqlx::query_scalar(
        "insert into mcp_servers (organization_id, name, endpoint, endpoint_host) values ((select id from organizations where personal_user_id = $1), 's', 'https://m.example.com', 'm.example.com') returning id",
    )
    .bind(b)
    .fetch_one(&pool)
    .await
    .unwrap();
    for owner in [a, b] {
        let linked = sqlx::query(
            "insert into mcp_server_sources (server_id, source_id, organization_id) values ($1, $2, (select id from organizations where personal_user_id = $3))",
        )
        .bind(server)
        .bind(source)
        .bind(owner)
        .execute(&pool)
        .await;
        assert!(
            linked.is_err(),
            "a cross-organization link is refused whatever organization_id says"
        );
    }
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn schema_allows_one_live_server_per_endpoint(pool: PgPool) {
    let a = user(&pool, "a@example.com").await;
    let insert = "insert into mcp_servers (organization_id, name, endpoint, endpoint_host) values ((select id from organizations where personal_user_id = $1), 's', 'https://m.example.com', 'm.example.com') returning id";
    let first: uuid::Uuid = sqlx::query_scalar(insert)
        .bind(a)
        .fetch_one(&pool)
        .await
        .unwrap();
    let second = sqlx::query_scalar::<_, uuid::Uuid>(insert)
        .bind(a)
        .fetch_one(&pool)
        .await;
    let err = second.expect_err("a second live server on the endpoint is refused");
    assert_eq!(
        err.as_database_error().and_then(|e| e.constraint()),
        Some("mcp_servers_live_endpoint_key")
    );

    sqlx::query("update mcp_servers set deleted_at = now() where id = $1")
        .bind(first)
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query_scalar::<_, uuid::Uuid>(insert)
        .bind(a)
        .fetch_one(&pool)
        .await
        .expect("allowed once the first is soft-deleted");
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn emails_are_unique_regardless_of_case_and_updated_at_is_maintained(pool: PgPool) {
    let id = user(&pool, "a@example.com").await;
    let dup = sqlx::query(
        "insert into users (email, hashed_password) values ('A@EXAMPLE.COM', '$2b$04$x')",
    )
    .execute(&pool)
    .await;
    assert!(dup.is_err(), "upper-case duplicate is refused");

    let before: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("select updated_at from users where id = $1")
            .bind(id)
            .fetch_one(&pool)
            .await
            .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    sqlx::query("update users set role = 'admin' where id = $1")
        .bind(id)
        .execute(&pool)
        .await
        .unwrap();
    let after: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("select updated_at from users where id = $1")
            .bind(id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(after > before, "the trigger moves updated_at");

    let bad_role = sqlx::query("update users set role = 'root' where id = $1")
        .bind(id)
        .execute(&pool)
        .await;
    assert!(bad_role.is_err(), "roles are user or admin");
}
