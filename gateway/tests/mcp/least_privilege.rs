//! The gateway works as the least-privilege role of `deploy/postgres/gateway-role.sql`, and that
//! role cannot change the configuration or read the users.

use std::time::Duration;

use serde_json::json;
use sqlx::{PgPool, postgres::PgPoolOptions};

use crate::helpers::{call, eventually, spawn_stack};

const ROLE_SQL: &str = include_str!("../../../deploy/postgres/gateway-role.sql");

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn the_gateway_role_reads_configuration_and_appends_audit_only(pool: PgPool) {
    sqlx::raw_sql(ROLE_SQL)
        .execute(&pool)
        .await
        .expect("role script applies");
    sqlx::raw_sql(ROLE_SQL)
        .execute(&pool)
        .await
        .expect("and again (idempotent)");
    sqlx::query("alter role mcp_gateway password 'gateway-test-password'")
        .execute(&pool)
        .await
        .unwrap();
    let options = (*pool.connect_options())
        .clone()
        .username("mcp_gateway")
        .password("gateway-test-password");
    let gateway_pool = PgPoolOptions::new()
        .max_connections(5)
        .connect_with(options)
        .await
        .expect("the role can connect");

    let mut stack = spawn_stack(pool.clone(), gateway_pool.clone(), |_| {}).await;
    let ada = stack.user("ada@example.com").await;
    let files = stack.files(&ada, "1").await;
    let (_, host) = stack.server(&ada, "s", &[&files]).await;
    eventually(Duration::from_secs(1), "served as mcp_gateway", || {
        stack.serves(&host)
    })
    .await;
    let client = stack.client(&host).await;
    let found = call(&client, "search", json!({"query": "q"})).await;
    assert_ne!(found.is_error, Some(true), "{found:?}");
    client.cancel().await.unwrap();
    eventually(Duration::from_secs(2), "audit record appended", || async {
        sqlx::query_scalar::<_, i64>("select count(*) from tool_calls")
            .fetch_one(&pool)
            .await
            .unwrap()
            == 1
    })
    .await;
    stack.stop_gateway.take().unwrap().send(()).unwrap();
    (&mut stack.gateway_task).await.unwrap().unwrap();
    let used: i64 = sqlx::query_scalar("select count(*) from mcp_server_key_usage")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(used, 1, "key usage recorded as mcp_gateway");

    for forbidden in [
        "update sources set source_metadata = '{}'",
        "delete from mcp_server_sources",
        "insert into mcp_servers (organization_id, name, endpoint, endpoint_host) \
         select organization_id, 'x', 'https://x.example.com', 'x.example.com' from mcp_servers limit 1",
        "update mcp_server_keys set revoked_at = null",
        "select email from users",
        "select * from revoked_tokens",
        "select private_key from oauth_signing_keys",
        "select * from oauth_refresh_tokens",
        "select * from oauth_codes",
        "delete from oauth_grants",
        "insert into oauth_signing_keys (kid, public_key, private_key, private_key_key_id) \
         values ('x', '\\x00', '\\x00', 'x')",
        "delete from tool_calls",
        "update tool_calls set status = 'ok'",
        "create table intruder (id int)",
    ] {
        let err = sqlx::query(forbidden)
            .execute(&gateway_pool)
            .await
            .expect_err(forbidden);
        assert!(
            err.to_string().contains("permission denied"),
            "{forbidden}: {err}"
        );
    }
}
