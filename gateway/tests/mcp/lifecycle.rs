//! Graceful shutdown.

use std::time::Duration;

use serde_json::json;
use sqlx::PgPool;

use crate::helpers::{call, eventually, spawn_stack};

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn shutdown_lets_calls_in_flight_finish_then_stops(pool: PgPool) {
    let mut stack = spawn_stack(pool.clone(), pool, |s| s.gateway.source_timeout_ms = 800).await;
    let ada = stack.user("ada@example.com").await;
    let good = stack.files(&ada, "1").await;
    let slow = stack.files(&ada, "999").await;
    let (_, host) = stack.server(&ada, "s", &[&good, &slow]).await;
    eventually(Duration::from_secs(1), "served", || stack.serves(&host)).await;
    let client = stack.client(&host).await;

    // A call that takes ~800 ms (the slow source runs into its deadline)...
    let in_flight =
        tokio::spawn(async move { call(&client, "search", json!({"query": "q"})).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
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
