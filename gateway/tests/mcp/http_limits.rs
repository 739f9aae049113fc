//! What the gateway does with clients that misbehave at the HTTP level (issue 13, findings 7
//! to 9): slow headers are cut, request ids are kept only when short and plain, early
//! refusals close the connection openly, and malformed JSON-RPC gets a JSON-RPC error.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{call, eventually, spawn_stack};

/// Sends a request line and then one header every 300 ms until the server closes the
/// connection; returns how long it stayed open (at most `limit`).
pub async fn slow_headers(port: u16, limit: Duration) -> Duration {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let started = Instant::now();
    stream
        .write_all(b"POST /mcp HTTP/1.1\r\nHost: mcp1.example.com\r\n")
        .await
        .unwrap();
    let mut buffer = [0u8; 1024];
    let mut n = 0;
    while started.elapsed() < limit {
        if stream
            .write_all(format!("X-Slow-{n}: 1\r\n").as_bytes())
            .await
            .is_err()
        {
            break;
        }
        n += 1;
        match tokio::time::timeout(Duration::from_millis(300), stream.read(&mut buffer)).await {
            Ok(Ok(0) | Err(_)) => break,
            // The server answered (408 or similar) before closing: keep reading until EOF.
            Ok(Ok(_)) => continue,
            Err(_) => {}
        }
    }
    started.elapsed()
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn a_client_sending_headers_slowly_is_cut_off_in_time(pool: PgPool) {
    let stack = spawn_stack(pool.clone(), pool, |s| {
        s.common.http_header_timeout_secs = 1;
    })
    .await;
    let open = slow_headers(stack.gateway_port, Duration::from_secs(10)).await;
    assert!(
        open < Duration::from_secs(3),
        "the connection stayed open {open:?}"
    );
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn a_long_or_strange_request_id_is_replaced_and_a_short_one_kept(pool: PgPool) {
    let stack = spawn_stack(pool.clone(), pool, |_| {}).await;
    let get = |id: String| {
        let http = stack.http.clone();
        let url = format!("http://127.0.0.1:{}/healthz", stack.gateway_port);
        async move {
            let response = http
                .get(url)
                .header("x-request-id", id)
                .send()
                .await
                .unwrap();
            response.headers()["x-request-id"]
                .to_str()
                .unwrap()
                .to_owned()
        }
    };
    let long = "a".repeat(10_000);
    let replaced = get(long.clone()).await;
    assert_ne!(replaced, long);
    assert_eq!(replaced.len(), 36, "a new UUID: {replaced}");
    assert_ne!(
        get("bad id with spaces".to_owned()).await,
        "bad id with spaces"
    );
    assert_eq!(get("trace-42:a/b".to_owned()).await, "trace-42:a/b");
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn early_refusals_say_the_connection_closes(pool: PgPool) {
    let stack = spawn_stack(pool.clone(), pool, |_| {}).await;
    let token = stack.user("ada@example.com").await;
    let (_, host) = stack.server_without_key(&token, "s", &[]).await;
    eventually(Duration::from_secs(2), "served", || async {
        stack.raw_with_key(&host, None, &json!({})).await.status() != StatusCode::NOT_FOUND
    })
    .await;
    let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}});
    for (host, expected) in [
        (host.as_str(), StatusCode::UNAUTHORIZED),
        ("nobody.example.com", StatusCode::NOT_FOUND),
    ] {
        let response = stack.raw_with_key(host, None, &list).await;
        assert_eq!(response.status(), expected);
        assert_eq!(response.headers()["connection"], "close", "{host}");
    }
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn malformed_json_rpc_gets_a_json_rpc_error_not_a_plain_text_415(pool: PgPool) {
    let stack = spawn_stack(pool.clone(), pool, |_| {}).await;
    let token = stack.user("ada@example.com").await;
    let files = stack.files(&token, "1").await;
    let (_, host) = stack.server(&token, "s", &[&files]).await;
    eventually(Duration::from_secs(2), "served", || stack.serves(&host)).await;
    for (body, code) in [
        (
            json!([{"jsonrpc": "2.0", "id": 1, "method": "tools/list"}]),
            -32600,
        ),
        (
            json!({"jsonrpc": "2.0", "id": null, "method": "tools/list"}),
            -32600,
        ),
        (
            json!({"jsonrpc": "2.0", "id": 1.5, "method": "tools/list"}),
            -32600,
        ),
        (
            json!({"jsonrpc": "2.0", "id": true, "method": "tools/list"}),
            -32600,
        ),
        (json!({"id": 1, "method": "tools/list"}), -32600),
    ] {
        let response = stack.raw(&host, &body).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json")
        );
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["error"]["code"], code, "{body}");
        assert_eq!(answer["jsonrpc"], "2.0");
    }
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    let response = stack
        .http
        .post(stack.mcp_url())
        .header("host", &host)
        .bearer_auth(stack.key_of(&host).unwrap())
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(deep)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn the_query_limit_counts_characters_as_its_message_says(pool: PgPool) {
    let stack = spawn_stack(pool.clone(), pool, |_| {}).await;
    let token = stack.user("ada@example.com").await;
    let files = stack.files(&token, "1").await;
    let (_, host) = stack.server(&token, "s", &[&files]).await;
    eventually(Duration::from_secs(2), "served", || stack.serves(&host)).await;
    let client = stack.client(&host).await;
    // 1,000 characters of three bytes each: within the limit.
    let found = call(&client, "search", json!({"query": "€".repeat(1000)})).await;
    assert_ne!(found.is_error, Some(true), "{found:?}");
    let refused = call(&client, "search", json!({"query": "€".repeat(1001)})).await;
    assert_eq!(refused.is_error, Some(true));
    client.cancel().await.unwrap();
}
