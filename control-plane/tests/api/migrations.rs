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

/// The last migration before organizations, and the organizations migration.
const BEFORE_ORGANIZATIONS: i64 = 20261207000011;
const ORGANIZATIONS: i64 = 20261208000012;

/// What one account owns in the schema before organizations.
struct OldAccount {
    user: uuid::Uuid,
    source: uuid::Uuid,
    server: uuid::Uuid,
    key: uuid::Uuid,
    grant: uuid::Uuid,
}

/// Writes, with the schema's own SQL before organizations, an account with a source, a server
/// using it, a soft-deleted server (an endpoint release), an access key, an OAuth client with a
/// grant and a refresh token, a call through the grant, one through the key, and an activity
/// record.
async fn old_account(pool: &PgPool, name: &str) -> OldAccount {
    let user = user(pool, &format!("{name}@example.com")).await;
    let source: uuid::Uuid = sqlx::query_scalar(
        "insert into sources (user_id, type, source_metadata) values ($1, 'box', '{\"subject_id\": \"42\"}') returning id",
    )
    .bind(user)
    .fetch_one(pool)
    .await
    .unwrap();
    let server_sql = "insert into mcp_servers (user_id, name, endpoint, endpoint_host) \
                      values ($1, $2, 'https://' || $3, $3) returning id";
    let server: uuid::Uuid = sqlx::query_scalar(server_sql)
        .bind(user)
        .bind(format!("{name}'s server"))
        .bind(format!("{name}.mcp.example.com"))
        .fetch_one(pool)
        .await
        .unwrap();
    let released: uuid::Uuid = sqlx::query_scalar(server_sql)
        .bind(user)
        .bind(format!("{name}'s old server"))
        .bind(format!("{name}-old.mcp.example.com"))
        .fetch_one(pool)
        .await
        .unwrap();
    sqlx::query("update mcp_servers set deleted_at = now() where id = $1")
        .bind(released)
        .execute(pool)
        .await
        .unwrap();
    sqlx::query(
        "insert into mcp_server_sources (server_id, source_id, user_id) values ($1, $2, $3)",
    )
    .bind(server)
    .bind(source)
    .bind(user)
    .execute(pool)
    .await
    .unwrap();
    let key: uuid::Uuid = sqlx::query_scalar(
        "insert into mcp_server_keys (server_id, user_id, name, prefix, key_hash) \
         values ($1, $2, 'script', 'mcpk_abc', sha256(gen_random_uuid()::text::bytea)) returning id",
    )
    .bind(server)
    .bind(user)
    .fetch_one(pool)
    .await
    .unwrap();
    let client = format!("client-of-{name}");
    sqlx::query(
        "insert into oauth_clients (client_id, kind, client_name, redirect_uris) \
         values ($1, 'registered', 'Agent', array['http://127.0.0.1:9/callback'])",
    )
    .bind(&client)
    .execute(pool)
    .await
    .unwrap();
    let grant: uuid::Uuid = sqlx::query_scalar(
        "insert into oauth_grants (user_id, server_id, client_id, redirect_uri, scope) \
         values ($1, $2, $3, 'http://127.0.0.1:9/callback', 'mcp') returning id",
    )
    .bind(user)
    .bind(server)
    .bind(&client)
    .fetch_one(pool)
    .await
    .unwrap();
    sqlx::query(
        "insert into oauth_refresh_tokens (token_hash, grant_id, resource, expires_at) \
         values (sha256(gen_random_uuid()::text::bytea), $1, 'https://x.example.com/mcp', now() + interval '1 day')",
    )
    .bind(grant)
    .execute(pool)
    .await
    .unwrap();
    for (key_id, grant_id) in [(None, Some(grant)), (Some(key), None)] {
        sqlx::query(
            "insert into tool_calls (server_id, key_id, grant_id, called_at, tool, argument, status, result_count, duration_ms) \
             values ($1, $2, $3, now(), 'search', 'budget', 'ok', 1, 5)",
        )
        .bind(server)
        .bind(key_id)
        .bind(grant_id)
        .execute(pool)
        .await
        .unwrap();
    }
    sqlx::query(
        "insert into activity (actor_kind, actor_id, user_id, action, server_id) \
         values ('user', $1, $1, 'server_create', $2)",
    )
    .bind(user)
    .bind(server)
    .execute(pool)
    .await
    .unwrap();
    OldAccount {
        user,
        source,
        server,
        key,
        grant,
    }
}

/// Every row of the tables the organizations migration changes, as JSON (without `updated_at`,
/// which the rows' own trigger moves when the migration rewrites them).
async fn old_rows(pool: &PgPool) -> Vec<String> {
    let mut rows = Vec::new();
    for (table, order) in [
        ("users", "id"),
        ("sources", "id"),
        ("mcp_servers", "id"),
        ("mcp_server_sources", "server_id, source_id"),
        ("mcp_server_keys", "id"),
        ("oauth_grants", "id"),
        ("oauth_refresh_tokens", "token_hash"),
        ("tool_calls", "id"),
        ("activity", "id"),
        ("endpoint_releases", "endpoint_host"),
    ] {
        // Table names and orders are this function's own constants.
        let json: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "select json_agg(to_jsonb(t) - 'updated_at' order by {order})::text from {table} t"
        )))
        .fetch_one(pool)
        .await
        .unwrap();
        rows.push(format!("{table}: {}", json.expect("rows")));
    }
    rows
}

/// Which of `user_id` and `organization_id` a table has.
async fn owner_columns(pool: &PgPool, table: &str) -> Vec<String> {
    sqlx::query_scalar(
        "select column_name::text from information_schema.columns \
         where table_schema = 'public' and table_name = $1 \
           and column_name in ('user_id', 'organization_id') order by 1",
    )
    .bind(table)
    .fetch_all(pool)
    .await
    .unwrap()
}

/// Counts the rows that `sql` (with `$1`) finds.
async fn count(pool: &PgPool, sql: &str, bind: uuid::Uuid) -> i64 {
    // `sql` is one of the tests' own constants.
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "select count(*) from ({sql}) t"
    )))
    .bind(bind)
    .fetch_one(pool)
    .await
    .unwrap()
}

#[sqlx::test(migrations = false)]
async fn upgrading_moves_each_accounts_objects_into_its_personal_organization_and_undoing_restores_them(
    pool: PgPool,
) {
    assert!(
        MIGRATOR.version_exists(BEFORE_ORGANIZATIONS) && MIGRATOR.version_exists(ORGANIZATIONS)
    );
    MIGRATOR
        .run_to(BEFORE_ORGANIZATIONS, &pool)
        .await
        .expect("the schema before organizations");
    assert_eq!(owner_columns(&pool, "sources").await, ["user_id"]);
    let accounts = [
        old_account(&pool, "ada").await,
        old_account(&pool, "bob").await,
    ];
    let before = old_rows(&pool).await;

    MIGRATOR
        .run(&pool)
        .await
        .expect("the organizations migration applies");

    for account in &accounts {
        let personal: uuid::Uuid =
            sqlx::query_scalar("select id from organizations where personal_user_id = $1")
                .bind(account.user)
                .fetch_one(&pool)
                .await
                .expect("a personal organization");
        let members: Vec<(uuid::Uuid, String)> = sqlx::query_as(
            "select user_id, role from organization_members where organization_id = $1",
        )
        .bind(personal)
        .fetch_all(&pool)
        .await
        .unwrap();
        assert_eq!(
            members,
            [(account.user, "owner".to_owned())],
            "its account, as owner"
        );
        let in_personal = [
            (
                "select 1 from sources where id = $1 and organization_id = $2",
                account.source,
            ),
            (
                "select 1 from mcp_servers where id = $1 and organization_id = $2",
                account.server,
            ),
            (
                "select 1 from mcp_server_sources where server_id = $1 and organization_id = $2",
                account.server,
            ),
            (
                "select 1 from mcp_server_keys where id = $1 and organization_id = $2",
                account.key,
            ),
            (
                "select 1 from oauth_grants where id = $1 and organization_id = $2",
                account.grant,
            ),
        ];
        for (sql, id) in in_personal {
            let found: Option<i32> = sqlx::query_scalar(sql)
                .bind(id)
                .bind(personal)
                .fetch_optional(&pool)
                .await
                .unwrap();
            assert_eq!(found, Some(1), "{sql} for {id}");
        }
        let everything_in_personal = [
            "select 1 from sources s join organizations o on o.id = s.organization_id where o.personal_user_id = $1",
            "select 1 from mcp_servers s join organizations o on o.id = s.organization_id where o.personal_user_id = $1",
            "select 1 from endpoint_releases r join organizations o on o.id = r.organization_id where o.personal_user_id = $1",
            "select 1 from activity a join organizations o on o.id = a.organization_id where o.personal_user_id = $1",
        ];
        for (sql, expected) in everything_in_personal.into_iter().zip([1, 2, 1, 1]) {
            assert_eq!(count(&pool, sql, account.user).await, expected, "{sql}");
        }
        let created_by: Option<uuid::Uuid> =
            sqlx::query_scalar("select created_by from mcp_server_keys where id = $1")
                .bind(account.key)
                .fetch_one(&pool)
                .await
                .unwrap();
        assert_eq!(created_by, Some(account.user), "a key remembers its maker");
        let (grant_user, grant_server): (uuid::Uuid, uuid::Uuid) =
            sqlx::query_as("select user_id, server_id from oauth_grants where id = $1")
                .bind(account.grant)
                .fetch_one(&pool)
                .await
                .unwrap();
        assert_eq!((grant_user, grant_server), (account.user, account.server));
        let callers: Vec<(Option<uuid::Uuid>, Option<uuid::Uuid>)> = sqlx::query_as(
            "select grant_id, user_id from tool_calls where server_id = $1 order by grant_id nulls last",
        )
        .bind(account.server)
        .fetch_all(&pool)
        .await
        .unwrap();
        assert_eq!(
            callers,
            [(Some(account.grant), Some(account.user)), (None, None)],
            "a call through a grant is its person's; one through a key is nobody's"
        );
        assert_eq!(
            count(
                &pool,
                "select 1 from oauth_refresh_tokens where grant_id = $1",
                account.grant
            )
            .await,
            1,
            "the agent stays connected"
        );
    }
    let organizations: i64 = sqlx::query_scalar("select count(*) from organizations")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        organizations, 2,
        "one personal organization per account, no more"
    );

    MIGRATOR
        .undo(&pool, BEFORE_ORGANIZATIONS)
        .await
        .expect("the organizations migration reverts");

    for table in [
        "sources",
        "mcp_servers",
        "mcp_server_sources",
        "mcp_server_keys",
        "endpoint_releases",
        "oauth_grants",
        "activity",
    ] {
        assert_eq!(owner_columns(&pool, table).await, ["user_id"], "{table}");
    }
    assert!(owner_columns(&pool, "tool_calls").await.is_empty());
    assert_eq!(old_rows(&pool).await, before, "the same rows, as they were");
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn undoing_organizations_gives_a_team_organizations_objects_to_its_earliest_owner_and_drops_other_members_grants(
    pool: PgPool,
) {
    let (first_owner, later_owner, admin) = (
        user(&pool, "first@example.com").await,
        user(&pool, "later@example.com").await,
        user(&pool, "admin@example.com").await,
    );
    let team: uuid::Uuid = sqlx::query_scalar(
        "insert into organizations (name, slug) values ('Contoso', 'contoso') returning id",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    // The later owner's id may sort first: the earliest membership decides, not the id.
    for (member, role, joined) in [
        (later_owner, "owner", "2 hours"),
        (first_owner, "owner", "3 hours"),
        (admin, "admin", "4 hours"),
    ] {
        sqlx::query(
            "insert into organization_members (organization_id, user_id, role, created_at) \
             values ($1, $2, $3, now() - $4::interval)",
        )
        .bind(team)
        .bind(member)
        .bind(role)
        .bind(joined)
        .execute(&pool)
        .await
        .unwrap();
    }
    let source: uuid::Uuid = sqlx::query_scalar(
        "insert into sources (organization_id, type) values ($1, 'box') returning id",
    )
    .bind(team)
    .fetch_one(&pool)
    .await
    .unwrap();
    let server: uuid::Uuid = sqlx::query_scalar(
        "insert into mcp_servers (organization_id, name, endpoint, endpoint_host) \
         values ($1, 'Team', 'https://team.example.com', 'team.example.com') returning id",
    )
    .bind(team)
    .fetch_one(&pool)
    .await
    .unwrap();
    sqlx::query("insert into mcp_server_sources (server_id, source_id, organization_id) values ($1, $2, $3)")
        .bind(server)
        .bind(source)
        .bind(team)
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query(
        "insert into mcp_server_keys (server_id, organization_id, created_by, name, prefix, key_hash) \
         values ($1, $2, $3, 'script', 'mcpk_abc', sha256('k'::bytea))",
    )
    .bind(server)
    .bind(team)
    .bind(admin)
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query(
        "insert into oauth_clients (client_id, kind, client_name, redirect_uris) \
         values ('agent', 'registered', 'Agent', array['http://127.0.0.1:9/callback'])",
    )
    .execute(&pool)
    .await
    .unwrap();
    // The admin and the first owner connect the same client: two grants the old shape cannot hold.
    let grant_sql = "insert into oauth_grants (organization_id, user_id, server_id, client_id, redirect_uri, scope) \
                     values ($1, $2, $3, 'agent', 'http://127.0.0.1:9/callback', 'mcp') returning id";
    let mut grants = Vec::new();
    for member in [admin, first_owner] {
        let grant: uuid::Uuid = sqlx::query_scalar(grant_sql)
            .bind(team)
            .bind(member)
            .bind(server)
            .fetch_one(&pool)
            .await
            .unwrap();
        grants.push(grant);
    }
    let (admin_grant, owner_grant) = (grants[0], grants[1]);
    sqlx::query(
        "insert into oauth_refresh_tokens (token_hash, grant_id, resource, expires_at) \
         values (sha256('r'::bytea), $1, 'https://team.example.com/mcp', now() + interval '1 day')",
    )
    .bind(admin_grant)
    .execute(&pool)
    .await
    .unwrap();
    let personal_server: uuid::Uuid = sqlx::query_scalar(
        "insert into mcp_servers (organization_id, name, endpoint, endpoint_host) \
         values ((select id from organizations where personal_user_id = $1), 'Mine', 'https://mine.example.com', 'mine.example.com') returning id",
    )
    .bind(admin)
    .fetch_one(&pool)
    .await
    .unwrap();

    MIGRATOR
        .undo(&pool, BEFORE_ORGANIZATIONS)
        .await
        .expect("the organizations migration reverts");

    for (sql, id) in [
        ("select user_id from sources where id = $1", source),
        ("select user_id from mcp_servers where id = $1", server),
        (
            "select user_id from mcp_server_sources where server_id = $1",
            server,
        ),
        (
            "select user_id from mcp_server_keys where server_id = $1",
            server,
        ),
    ] {
        let owner: uuid::Uuid = sqlx::query_scalar(sql)
            .bind(id)
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(owner, first_owner, "{sql}: the earliest owner's");
    }
    let remaining: Vec<(uuid::Uuid, uuid::Uuid)> =
        sqlx::query_as("select id, user_id from oauth_grants where server_id = $1")
            .bind(server)
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        remaining,
        [(owner_grant, first_owner)],
        "only the owner's grant survives"
    );
    assert_eq!(
        count(
            &pool,
            "select 1 from oauth_refresh_tokens where grant_id = $1",
            admin_grant
        )
        .await,
        0,
        "the admin's agent is disconnected"
    );
    let mine: uuid::Uuid = sqlx::query_scalar("select user_id from mcp_servers where id = $1")
        .bind(personal_server)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        mine, admin,
        "a personal organization's server returns to its account"
    );

    MIGRATOR.run(&pool).await.expect("and applies again");
}
