//! HTTP and JSON-RPC edges: unknown host, foreign Origin, malformed JSON, unknown tool,
//! oversized body, sessions.

use std::time::Duration;

use reqwest::StatusCode;
use rmcp::model::CallToolRequestParams;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::helpers::{Stack, eventually, spawn_stack};

/// A served server of one source (its host), and a `tools/list` request.
async fn served_with_list(stack: &Stack) -> (String, Value) {
    let ada = stack.user("ada@example.com").await;
    let files = stack.files(&ada, "1").await;
    let (_, host) = stack.server(&ada, "s", &[&files]).await;
    eventually(Duration::from_secs(1), "served", || stack.serves(&host)).await;
    let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}});
    (host, list)
}

/// A POST of `body` to `host`'s `/mcp` from a browser page on `origin`, with `key` if any.
fn from_origin(
    stack: &Stack,
    host: &str,
    origin: &str,
    key: Option<&str>,
    body: &Value,
) -> reqwest::RequestBuilder {
    let request = stack
        .http
        .post(stack.mcp_url())
        .header("host", host)
        .header("origin", origin)
        .header("accept", "application/json, text/event-stream")
        .json(body);
    match key {
        Some(key) => request.bearer_auth(key),
        None => request,
    }
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn protocol_edges_get_clear_answers(pool: PgPool) {
    let stack = spawn_stack(pool.clone(), pool, |_| {}).await;
    let (host, list) = served_with_list(&stack).await;
    let key = stack.key_of(&host).unwrap();

    let unknown = stack.raw("nobody.example.com", &list).await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        unknown.json::<Value>().await.unwrap()["error"]["code"],
        "unknown_host"
    );
    assert_eq!(
        stack
            .raw_with_key(&format!("{}:443", host.to_uppercase()), Some(&key), &list)
            .await
            .status(),
        StatusCode::OK,
        "routing ignores case and port"
    );
    assert_eq!(
        stack
            .raw_with_key(&format!("{host}."), Some(&key), &list)
            .await
            .status(),
        StatusCode::OK,
        "and a trailing dot"
    );

    let post = |origin| from_origin(&stack, &host, origin, Some(&key), &list).send();
    let foreign = post("https://evil.example").await.unwrap();
    assert_eq!(foreign.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        foreign.json::<Value>().await.unwrap()["error"]["code"],
        "forbidden_origin"
    );
    assert_eq!(
        post("https://mcp1.example.com").await.unwrap().status(),
        StatusCode::OK,
        "the server's own origin"
    );

    let malformed = stack
        .http
        .post(stack.mcp_url())
        .header("host", &host)
        .header("content-type", "application/json")
        .bearer_auth(&key)
        .header("accept", "application/json, text/event-stream")
        .body("{\"jsonrpc\": \"2.0\", ")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        malformed.json::<Value>().await.unwrap()["error"]["code"],
        -32700
    );

    let huge = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "search", "arguments": {"query": "x".repeat(300_000)}}});
    assert_eq!(
        stack.raw(&host, &huge).await.status(),
        StatusCode::PAYLOAD_TOO_LARGE
    );

    let client = stack.client(&host).await;
    let err = client
        .call_tool(CallToolRequestParams::new("delete_everything"))
        .await
        .unwrap_err();
    assert!(format!("{err:?}").contains("-32602"), "{err:?}");

    let probe = stack
        .http
        .get(format!("http://127.0.0.1:{}/readyz", stack.gateway_port))
        .send()
        .await
        .unwrap();
    assert_eq!(probe.status(), StatusCode::OK);
    let other_path = stack
        .http
        .get(format!("http://127.0.0.1:{}/nope", stack.gateway_port))
        .header("host", &host)
        .send()
        .await
        .unwrap();
    assert_eq!(other_path.status(), StatusCode::NOT_FOUND);
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn with_sessions_a_session_is_bound_to_its_host(pool: PgPool) {
    let stack = spawn_stack(pool.clone(), pool, |s| s.gateway.sessions = true).await;
    let ada = stack.user("ada@example.com").await;
    let files = stack.files(&ada, "1").await;
    let (_, first) = stack.server(&ada, "one", &[&files]).await;
    let (_, second) = stack.server(&ada, "two", &[&files]).await;
    // Both servers and both keys loaded (a key arrives in its own change notification).
    eventually(Duration::from_secs(1), "served", || async {
        stack.store.load().is_some_and(|s| {
            [&first, &second]
                .iter()
                .all(|host| s.server(host).is_some_and(|server| server.keys.len() == 1))
        })
    })
    .await;

    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    let created = stack.raw(&first, &init).await;
    assert_eq!(created.status(), StatusCode::OK);
    let session = created
        .headers()
        .get("mcp-session-id")
        .expect("a session id")
        .to_str()
        .unwrap()
        .to_owned();

    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}});
    let elsewhere = stack
        .http
        .post(stack.mcp_url())
        .header("host", &second)
        .bearer_auth(stack.key_of(&second).unwrap())
        .header("mcp-session-id", &session)
        .header("accept", "application/json, text/event-stream")
        .json(&list)
        .send()
        .await
        .unwrap();
    assert_eq!(elsewhere.status(), StatusCode::NOT_FOUND);

    // The rmcp client works end to end in session mode too.
    let client = stack.client(&first).await;
    let tools = client.list_all_tools().await.unwrap();
    assert_eq!(tools.len(), 2);
}

/// A browser-based MCP client on an origin `GATEWAY_ALLOWED_ORIGINS` lists can work: its
/// preflight is answered, and its answers (the 401 challenge included) are readable with the
/// headers it needs. Other origins get no CORS header, and without the setting none is sent.
#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn browser_clients_on_allowed_origins_get_cors(pool: PgPool) {
    const ALLOWED: &str = "https://inspector.example";
    let stack = spawn_stack(pool.clone(), pool, |settings| {
        settings.gateway.allowed_origins = vec![ALLOWED.to_owned()];
    })
    .await;
    let ada = stack.user("ada@example.com").await;
    let files = stack.files(&ada, "1").await;
    let (_, host) = stack.server(&ada, "s", &[&files]).await;
    eventually(Duration::from_secs(1), "served", || stack.serves(&host)).await;
    let key = stack.key_of(&host).unwrap();
    let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}});

    let preflight = |origin: &'static str| {
        stack
            .http
            .request(reqwest::Method::OPTIONS, stack.mcp_url())
            .header("host", &host)
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, content-type, mcp-protocol-version",
            )
            .send()
    };
    let answered = preflight("https://INSPECTOR.example").await.unwrap();
    assert!(answered.status().is_success(), "{}", answered.status());
    let headers = answered.headers();
    assert_eq!(
        headers["access-control-allow-origin"],
        "https://INSPECTOR.example"
    );
    let allowed = headers["access-control-allow-headers"].to_str().unwrap();
    for name in [
        "authorization",
        "content-type",
        "mcp-protocol-version",
        "mcp-session-id",
    ] {
        assert!(allowed.contains(name), "{name} in {allowed}");
    }
    assert!(
        headers["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .contains("POST")
    );
    let refused = preflight("https://evil.example").await.unwrap();
    assert!(
        !refused
            .headers()
            .contains_key("access-control-allow-origin")
    );

    let post = |key| from_origin(&stack, &host, ALLOWED, key, &list).send();
    let served = post(Some(&key)).await.unwrap();
    assert_eq!(served.status(), StatusCode::OK);
    assert_eq!(served.headers()["access-control-allow-origin"], ALLOWED);
    let challenged = post(None).await.unwrap();
    assert_eq!(challenged.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(challenged.headers()["access-control-allow-origin"], ALLOWED);
    let exposed = challenged.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap();
    assert!(exposed.contains("www-authenticate"), "{exposed}");
    assert!(exposed.contains("mcp-session-id"), "{exposed}");
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn without_allowed_origins_no_cors_header_is_sent(pool: PgPool) {
    let stack = spawn_stack(pool.clone(), pool, |_| {}).await;
    let (host, list) = served_with_list(&stack).await;
    let key = stack.key_of(&host).unwrap();
    let served = from_origin(&stack, &host, "https://mcp1.example.com", Some(&key), &list)
        .send()
        .await
        .unwrap();
    assert_eq!(served.status(), StatusCode::OK, "the server's own origin");
    assert!(
        served
            .headers()
            .keys()
            .all(|name| !name.as_str().starts_with("access-control-") && name != "vary"),
        "{:?}",
        served.headers()
    );
}
