//! The tool-call audit log as its owner sees it through the control plane, and the gateway's
//! metrics listener.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::helpers::{Stack, call, eventually, spawn_stack};

/// The server's calls, newest first, once `n` are recorded.
async fn calls(stack: &Stack, token: &str, server: &str, n: usize) -> Vec<Value> {
    let path = format!("/mcp-servers/{server}/calls");
    eventually(Duration::from_secs(2), "calls recorded", || async {
        let (_, page) = stack.call(Method::GET, &path, token, None).await;
        page["total"].as_u64() == Some(n as u64)
    })
    .await;
    let (_, page) = stack.call(Method::GET, &path, token, None).await;
    page["items"].as_array().unwrap().clone()
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn every_call_is_recorded_with_its_outcome_per_source(pool: PgPool) {
    let stack = spawn_stack(pool.clone(), pool, |_| {}).await;
    let ada = stack.user("ada@example.com").await;
    let good = stack.files(&ada, "7").await;
    let broken = stack.files(&ada, "500").await;
    let (mixed_id, mixed) = stack.server(&ada, "mixed", &[&good, &broken]).await;
    let (failing_id, failing) = stack.server(&ada, "failing", &[&broken]).await;
    eventually(Duration::from_secs(1), "served", || async {
        stack.serves(&mixed).await && stack.serves(&failing).await
    })
    .await;
    let (_, keys) = stack
        .call(
            Method::GET,
            &format!("/mcp-servers/{mixed_id}/keys"),
            &ada,
            None,
        )
        .await;
    let key_id = keys["items"][0]["id"].clone();

    let client = stack.client(&mixed).await;
    let found = call(&client, "search", json!({"query": "budget"})).await;
    let first_id = found.structured_content.unwrap()["results"][0]["id"].clone();
    call(&client, "fetch", json!({"id": first_id})).await;
    call(
        &client,
        "fetch",
        json!({"id": "box:00000000-0000-0000-0000-000000000000:x"}),
    )
    .await;
    call(&client, "search", json!({"query": ""})).await;
    client.cancel().await.unwrap();

    let recorded = calls(&stack, &ada, &mixed_id, 4).await;
    let (invalid, missing, fetched, searched) =
        (&recorded[0], &recorded[1], &recorded[2], &recorded[3]);
    assert_eq!(searched["tool"], "search");
    assert_eq!(searched["argument"], "budget");
    assert_eq!(
        searched["status"], "partial",
        "one source failed: {searched}"
    );
    assert_eq!(searched["key_id"], key_id);
    assert_eq!(searched["result_count"], 3);
    let outcomes: Vec<(&str, &str)> = searched["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["source_id"].as_str().unwrap(),
                s["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(outcomes.contains(&(good.as_str(), "ok")), "{outcomes:?}");
    assert!(
        outcomes.contains(&(broken.as_str(), "error")),
        "{outcomes:?}"
    );
    assert!(searched["sources"][0]["latency_ms"].is_u64());
    assert_eq!(
        (fetched["tool"].as_str(), fetched["status"].as_str()),
        (Some("fetch"), Some("ok"))
    );
    assert_eq!(fetched["argument"], first_id);
    assert_eq!(missing["status"], "error");
    assert_eq!(missing["error_class"], "not_found");
    assert_eq!(invalid["error_class"], "invalid_arguments");

    let client = stack.client(&failing).await;
    call(&client, "search", json!({"query": "q"})).await;
    client.cancel().await.unwrap();
    let recorded = calls(&stack, &ada, &failing_id, 1).await;
    assert_eq!(recorded[0]["status"], "error");
    assert_eq!(recorded[0]["error_class"], "all_sources_failed");

    let (status, summary) = stack
        .call(
            Method::GET,
            &format!("/mcp-servers/{mixed_id}/calls/summary"),
            &ada,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(summary["calls"], 4);
    assert_eq!(summary["partial"], 1);

    // The other user sees none of it.
    let bob = stack.user("bob@example.com").await;
    let (status, _) = stack
        .call(
            Method::GET,
            &format!("/mcp-servers/{mixed_id}/calls"),
            &bob,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn the_metrics_listener_exposes_the_gateway_series(pool: PgPool) {
    let stack = spawn_stack(pool.clone(), pool, |_| {}).await;
    let ada = stack.user("ada@example.com").await;
    let files = stack.files(&ada, "1").await;
    let (_, host) = stack.server(&ada, "s", &[&files]).await;
    eventually(Duration::from_secs(1), "served", || stack.serves(&host)).await;
    let client = stack.client(&host).await;
    call(&client, "search", json!({"query": "q"})).await;
    client.cancel().await.unwrap();
    let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}});
    stack.raw_with_key(&host, None, &list).await;

    let url = format!("http://127.0.0.1:{}/metrics", stack.metrics_port.unwrap());
    let scrape = || async {
        stack
            .http
            .get(&url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    eventually(Duration::from_secs(2), "audit written", || async {
        scrape().await.contains("audit_records_written_total")
    })
    .await;
    let text = scrape().await;
    for series in [
        "http_requests_total{route=\"/mcp\"",
        "http_request_duration_seconds_bucket{",
        "tool_calls_total{tool=\"search\",outcome=\"ok\"}",
        "tool_call_duration_seconds_bucket{",
        "upstream_calls_total{source_type=\"box\",outcome=\"ok\"}",
        "upstream_call_duration_seconds_bucket{source_type=\"box\"",
        "gateway_auth_failures_total{reason=\"missing\"}",
        "snapshot_version ",
        "snapshot_age_seconds ",
        "snapshot_stale 0",
        "audit_records_written_total",
    ] {
        assert!(text.contains(series), "{series} in\n{text}");
    }
}
