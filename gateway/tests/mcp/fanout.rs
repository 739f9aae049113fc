//! What one server may cost upstreams: its calls in flight are bounded per replica, whoever
//! makes them, and a search covers at most `MAX_SOURCES_PER_SERVER` sources.

use std::time::Duration;

use gateway::tools::fanout::MAX_SOURCES_PER_SERVER;
use serde_json::json;
use sqlx::PgPool;

use crate::{
    fake::counted,
    helpers::{call, eventually, spawn_stack},
};

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn a_server_keeps_at_most_its_share_of_upstream_calls_in_flight(pool: PgPool) {
    let stack = spawn_stack(pool.clone(), pool, |s| {
        s.gateway.upstream_calls_per_server = 2;
        s.gateway.source_timeout_ms = 5000;
    })
    .await;
    let ada = stack.user("ada@example.com").await;
    let mut sources = Vec::new();
    for _ in 0..6 {
        sources.push(stack.files(&ada, "7701").await);
    }
    let sources: Vec<&str> = sources.iter().map(String::as_str).collect();
    let (_, host) = stack.server(&ada, "wide", &sources).await;
    eventually(Duration::from_secs(1), "served", || stack.serves(&host)).await;
    let client = stack.client(&host).await;

    // Two searches at once: twelve upstream calls, two at a time.
    let (first, second) = tokio::join!(
        call(&client, "search", json!({"query": "q"})),
        call(&client, "search", json!({"query": "q"})),
    );
    assert_ne!(first.is_error, Some(true), "{first:?}");
    assert_ne!(second.is_error, Some(true), "{second:?}");
    assert_eq!(counted("7701"), (12, 2), "(calls, most in flight)");
    client.cancel().await.unwrap();
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn a_search_covers_at_most_the_source_cap(pool: PgPool) {
    let stack = spawn_stack(pool.clone(), pool.clone(), |s| {
        s.gateway.upstream_calls_per_server = 64;
        s.gateway.source_timeout_ms = 5000;
    })
    .await;
    let ada = stack.user("ada@example.com").await;
    let mut sources = Vec::new();
    for _ in 0..=MAX_SOURCES_PER_SERVER {
        sources.push(stack.files(&ada, "7702").await);
    }
    let (first, extra) = sources.split_at(MAX_SOURCES_PER_SERVER);
    let first: Vec<&str> = first.iter().map(String::as_str).collect();
    let (id, host) = stack.server(&ada, "widest", &first).await;
    // One more than the control plane allows, linked behind its back.
    sqlx::query(
        "insert into mcp_server_sources (server_id, source_id, organization_id) \
         select $1::uuid, $2::uuid, organization_id from mcp_servers where id = $1::uuid",
    )
    .bind(&id)
    .bind(&extra[0])
    .execute(&pool)
    .await
    .unwrap();
    eventually(
        Duration::from_secs(2),
        "served with every source",
        || async {
            let snapshot = stack.store.load();
            let server = snapshot.as_ref().and_then(|s| s.server(&host).cloned());
            server.is_some_and(|s| s.sources.len() > MAX_SOURCES_PER_SERVER)
        },
    )
    .await;
    let client = stack.client(&host).await;

    let found = call(&client, "search", json!({"query": "q"})).await;
    assert_ne!(found.is_error, Some(true), "{found:?}");
    assert_eq!(counted("7702").0, MAX_SOURCES_PER_SERVER);
    client.cancel().await.unwrap();
}
