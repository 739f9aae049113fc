//! A change made through the control plane is served by a running gateway within a second.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use sqlx::PgPool;

use crate::helpers::{call, eventually, spawn_stack};

const LIMIT: Duration = Duration::from_secs(1);

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn creating_deleting_restoring_and_reassigning_show_up_within_a_second(pool: PgPool) {
    let stack = spawn_stack(pool.clone(), pool, |_| {}).await;
    eventually(Duration::from_secs(5), "first snapshot", || async {
        stack.store.load().is_some()
    })
    .await;
    let ada = stack.user("ada@example.com").await;
    let first = stack.files(&ada, "1").await;
    let second = stack.files(&ada, "2").await;

    let (id, host) = stack.server(&ada, "s", &[&first]).await;
    eventually(LIMIT, "created", || stack.serves(&host)).await;

    let (status, _) = stack
        .call(Method::DELETE, &format!("/mcp-servers/{id}"), &ada, None)
        .await;
    assert!(status.is_success());
    eventually(LIMIT, "soft-deleted", || async {
        !stack.serves(&host).await
    })
    .await;

    let (_, restored) = stack
        .call(
            Method::POST,
            &format!("/mcp-servers/{id}/restore"),
            &ada,
            None,
        )
        .await;
    let host = restored["endpoint"]
        .as_str()
        .unwrap()
        .trim_start_matches("https://")
        .to_owned();
    eventually(LIMIT, "restored", || stack.serves(&host)).await;

    stack
        .call(
            Method::PUT,
            &format!("/mcp-servers/{id}"),
            &ada,
            Some(json!({"source_ids": [second]})),
        )
        .await;
    let client = stack.client(&host).await;
    eventually(LIMIT, "sources reassigned", || async {
        let results = call(&client, "search", json!({"query": "q"}))
            .await
            .structured_content
            .unwrap_or_default();
        results["results"].as_array().is_some_and(|r| {
            !r.is_empty()
                && r.iter()
                    .all(|x| x["id"].as_str().unwrap().contains(&second))
        })
    })
    .await;

    stack
        .call(
            Method::PUT,
            &format!("/mcp-servers/{id}"),
            &ada,
            Some(json!({"name": "renamed"})),
        )
        .await;
    eventually(LIMIT, "renamed", || async {
        let fresh = stack.client(&host).await;
        let name = fresh
            .peer_info()
            .and_then(|i| i.server_info.as_ref().map(|s| s.name.clone()));
        fresh.cancel().await.ok();
        name.as_deref() == Some("renamed")
    })
    .await;

    stack
        .call(Method::DELETE, &format!("/sources/{second}"), &ada, None)
        .await;
    eventually(LIMIT, "source deleted", || async {
        let results = call(&client, "search", json!({"query": "q"}))
            .await
            .structured_content
            .unwrap_or_default();
        results["results"].as_array().is_some_and(Vec::is_empty)
    })
    .await;
}
