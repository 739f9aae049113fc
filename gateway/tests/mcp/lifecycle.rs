//! Graceful shutdown.

use std::time::Duration;

use serde_json::json;
use sqlx::PgPool;

use rmcp::model::CallToolResult;
use tokio::task::JoinHandle;

use crate::helpers::{Stack, call, eventually, registry, settings, spawn_stack};

/// A stack whose sources get 800 ms, and a `search` in flight for 200 ms on a server of Box
/// sources with the given subjects (the fake answers subject `999` too late: that source runs
/// into its deadline, so the call takes ~800 ms).
async fn call_in_flight(pool: PgPool, subjects: &[&str]) -> (Stack, JoinHandle<CallToolResult>) {
    let stack = spawn_stack(pool.clone(), pool, |s| s.gateway.source_timeout_ms = 800).await;
    let ada = stack.user("ada@example.com").await;
    let mut sources = Vec::new();
    for subject in subjects {
        sources.push(stack.files(&ada, subject).await);
    }
    let sources: Vec<&str> = sources.iter().map(String::as_str).collect();
    let (_, host) = stack.server(&ada, "s", &sources).await;
    eventually(Duration::from_secs(1), "served", || stack.serves(&host)).await;
    let client = stack.client(&host).await;
    let in_flight =
        tokio::spawn(async move { call(&client, "search", json!({"query": "q"})).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    (stack, in_flight)
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn shutdown_lets_calls_in_flight_finish_then_stops(pool: PgPool) {
    // A call that takes ~800 ms (one source runs into its deadline)...
    let (mut stack, in_flight) = call_in_flight(pool, &["1", "999"]).await;
    // ...is still answered when the gateway is told to stop meanwhile.
    stack.stop_gateway.take().unwrap().send(()).unwrap();
    let result = tokio::time::timeout(Duration::from_secs(5), in_flight)
        .await
        .expect("answered")
        .unwrap();
    assert_eq!(
        result.structured_content.unwrap()["results"]
            .as_array()
            .unwrap()
            .len(),
        3
    );

    tokio::time::timeout(Duration::from_secs(5), &mut stack.gateway_task)
        .await
        .expect("stops")
        .unwrap()
        .unwrap();
    let refused = stack
        .http
        .get(format!("http://127.0.0.1:{}/healthz", stack.gateway_port))
        .send()
        .await;
    assert!(refused.is_err(), "no longer listening");
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn a_call_in_flight_at_the_stop_is_audited_before_the_gateway_ends(pool: PgPool) {
    let (mut stack, in_flight) = call_in_flight(pool.clone(), &["999"]).await;
    // Stopped while the call waits for its slow source: the call finishes first, then the
    // audit writer stores its record, and only then does the gateway end.
    stack.stop_gateway.take().unwrap().send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), &mut stack.gateway_task)
        .await
        .expect("stops")
        .unwrap()
        .unwrap();
    in_flight.await.unwrap();
    let recorded: Vec<String> = sqlx::query_scalar("select tool from tool_calls")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(recorded, ["search"], "recorded before the gateway ended");
    let used: i64 = sqlx::query_scalar("select count(*) from mcp_server_key_usage")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(used, 1, "key usage flushed before the gateway ended");
}

/// Sessions of this database still listening for configuration changes.
async fn listeners(pool: &PgPool) -> i64 {
    sqlx::query_scalar(
        "select count(*) from pg_stat_activity \
         where datname = current_database() and query ilike 'listen%'",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn a_gateway_dropped_without_running_leaves_no_task_behind(pool: PgPool) {
    let app = gateway::Application::build(&settings(), pool.clone(), registry())
        .await
        .expect("gateway");
    let store = app.store();
    eventually(Duration::from_secs(2), "loaded", || async {
        store.load().is_some()
    })
    .await;
    assert_eq!(listeners(&pool).await, 1, "the snapshot keeper listens");

    drop(app);

    eventually(
        Duration::from_secs(2),
        "the keeper stopped listening",
        || async { listeners(&pool).await == 0 },
    )
    .await;
}
