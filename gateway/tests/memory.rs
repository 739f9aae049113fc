//! What an oversized upstream answer costs the gateway in memory, measured as the growth of
//! this process's resident set (a binary of its own, so no other test allocates while it is
//! measured). The upstream is a hand-written streaming server that generates its 50 MiB body
//! chunk by chunk, so the only large allocations in the process are the gateway's own.

#[path = "mcp/fake.rs"]
mod fake;
#[path = "mcp/helpers.rs"]
#[allow(dead_code)]
mod helpers;
#[path = "mcp/rss.rs"]
mod rss;

use std::time::Duration;

use axum::{
    Json, Router,
    body::Body,
    extract::Path,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::{
    helpers::{eventually, spawn_real_stack},
    rss::peak_growth,
};

/// The upstream body: 50 MiB.
const BODY_BYTES: usize = 50 * 1024 * 1024;
/// Most the gateway's resident set may grow while it handles one such answer.
const MAX_GROWTH_BYTES: u64 = 64 * 1024 * 1024;
const CHUNK: usize = 64 * 1024;

/// `{"value": [{"id": "m1", "subject": "aaaa…"}]}`, about `BODY_BYTES` long, generated as it
/// is sent (chunked: no `Content-Length`, so only reading tells its size).
fn huge_json() -> Body {
    let head = br#"{"value": [{"id": "m1", "webLink": "https://outlook/1", "subject": ""#.to_vec();
    let tail = br#""}]}"#.to_vec();
    let filler = (0..BODY_BYTES / CHUNK).map(|_| vec![b'a'; CHUNK]);
    let chunks = std::iter::once(head)
        .chain(filler)
        .chain(std::iter::once(tail));
    Body::from_stream(futures::stream::iter(
        chunks.map(Ok::<_, std::convert::Infallible>),
    ))
}

/// Microsoft login and Graph: a token for anyone; the mailbox `huge@…` answers 200 with the
/// huge body, `broken@…` answers 500 with it.
async fn graph() -> String {
    let app = Router::new()
        .route(
            "/{tenant}/oauth2/v2.0/token",
            post(|| async {
                Json(json!({"token_type": "Bearer", "expires_in": 3599, "access_token": "t"}))
            }),
        )
        .route(
            "/v1.0/users/{mailbox}/messages",
            get(|Path(mailbox): Path<String>| async move {
                let status = if mailbox.starts_with("broken") {
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    StatusCode::OK
                };
                Response::builder()
                    .status(status)
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(huge_json())
                    .unwrap()
                    .into_response()
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    origin
}

fn search() -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "search", "arguments": {"query": "budget"}}})
}

fn mailbox(user: &str) -> Value {
    json!({"type": "outlook", "source_metadata": {"tenant_id": "contoso.onmicrosoft.com",
        "client_id": "11111111-2222-3333-4444-555555555555", "client_secret": "s", "user_id": user}})
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn a_50_mib_upstream_answer_grows_the_gateway_by_less_than_64_mib(pool: PgPool) {
    let graph = graph().await;
    let stack = spawn_real_stack(pool, |s| {
        s.upstreams.graph_base_url = format!("{graph}/v1.0");
        s.upstreams.microsoft_login_url = graph.clone();
        // Time enough to read all of it, were it read.
        s.gateway.source_timeout_ms = 60_000;
    })
    .await;
    let ada = stack.user("ada@example.com").await;
    // The error body is not worth reading past its start: the reason is the status alone.
    let cases = [
        ("huge@contoso.com", "200", "too large"),
        ("broken@contoso.com", "500", "HTTP 500"),
    ];
    for (user, case, expected) in cases {
        let source = stack.source(&ada, mailbox(user)).await;
        let (_, host) = stack.server(&ada, case, &[&source]).await;
        eventually(Duration::from_secs(2), "served", || stack.serves(&host)).await;

        let (answer, growth) = peak_growth(async {
            let response = stack.raw(&host, &search()).await;
            let bytes = response.bytes().await.unwrap();
            (
                bytes.len(),
                serde_json::from_slice::<Value>(&bytes).unwrap(),
            )
        })
        .await;
        let ((size, answer), mib) = (answer, growth as f64 / 1024.0 / 1024.0);
        eprintln!(
            "HTTP {case} with a 50 MiB body: MCP response {size} bytes, peak growth {mib:.1} MiB"
        );

        assert!(
            growth < MAX_GROWTH_BYTES,
            "HTTP {case}: the resident set grew by {mib:.1} MiB"
        );
        let result = &answer["result"];
        assert_eq!(result["isError"], true, "{case}");
        let reason = result["content"][0]["text"].as_str().unwrap();
        assert!(reason.contains(expected), "{case}: {reason}");
    }
}
