//! Access keys at the gateway: every MCP request needs a key of the server behind the Host;
//! revocation and expiry take effect within a second; public servers need none; each key, and
//! each client address of a public server, has a rate limit; uses are recorded in batches.

use std::time::Duration;

use chrono::Utc;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::helpers::{Stack, eventually, spawn_stack};

fn list() -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}})
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn every_request_needs_a_key_of_this_server(pool: PgPool) {
    let stack = spawn_stack(pool.clone(), pool, |_| {}).await;
    let ada = stack.user("ada@example.com").await;
    let files = stack.files(&ada, "1").await;
    let (first_id, first) = stack.server(&ada, "first", &[&files]).await;
    let (_, second) = stack.server(&ada, "second", &[&files]).await;
    eventually(Duration::from_secs(1), "served", || async {
        stack.serves(&first).await && stack.serves(&second).await
    })
    .await;

    let missing = stack.raw_with_key(&first, None, &list()).await;
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    // The challenge points OAuth clients to the server's protected resource metadata.
    assert_eq!(
        missing.headers()["www-authenticate"],
        format!(
            "Bearer resource_metadata=\"https://{first}/.well-known/oauth-protected-resource/mcp\", scope=\"mcp\""
        )
    );
    assert_eq!(
        missing.json::<Value>().await.unwrap()["error"]["code"],
        "key_required"
    );
    let unknown = shared::access_key::generate().key;
    let second_key = stack.key_of(&second).unwrap();
    for wrong in [unknown.as_str(), "not-a-key", second_key.as_str()] {
        let refused = stack.raw_with_key(&first, Some(wrong), &list()).await;
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED, "{wrong}");
        assert!(
            refused.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .contains("error=\"invalid_token\"")
        );
        assert_eq!(
            refused.json::<Value>().await.unwrap()["error"]["code"],
            "invalid_key"
        );
    }
    let key = stack.key_of(&first).unwrap();
    let basic = stack
        .http
        .post(stack.mcp_url())
        .header("host", &first)
        .header("authorization", format!("Basic {key}"))
        .header("accept", "application/json, text/event-stream")
        .json(&list())
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), StatusCode::UNAUTHORIZED, "only Bearer");
    assert_eq!(
        stack.raw(&first, &list()).await.status(),
        StatusCode::OK,
        "the server's own key"
    );

    // Revoked: refused within a second.
    let keys_path = format!("/mcp-servers/{first_id}/keys");
    let (_, listed) = stack.call(Method::GET, &keys_path, &ada, None).await;
    let key_id = listed["items"][0]["id"].as_str().unwrap().to_owned();
    let (status, _) = stack
        .call(Method::DELETE, &format!("{keys_path}/{key_id}"), &ada, None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let took = eventually(Duration::from_secs(1), "revoked key refused", || async {
        stack.raw(&first, &list()).await.status() == StatusCode::UNAUTHORIZED
    })
    .await;
    eprintln!("revocation took effect after {took:?}");

    // Expired: refused from the expiry on, with no change notification at all.
    let expires = Utc::now() + chrono::Duration::milliseconds(1500);
    let (status, created) = stack
        .call(
            Method::POST,
            &keys_path,
            &ada,
            Some(json!({"name": "short", "expires_at": expires.to_rfc3339()})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let short = created["key"].as_str().unwrap().to_owned();
    eventually(Duration::from_secs(1), "new key accepted", || async {
        stack
            .raw_with_key(&first, Some(&short), &list())
            .await
            .status()
            == StatusCode::OK
    })
    .await;
    let wait = (expires - Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(wait + Duration::from_millis(50)).await;
    assert_eq!(
        stack
            .raw_with_key(&first, Some(&short), &list())
            .await
            .status(),
        StatusCode::UNAUTHORIZED,
        "expired"
    );

    // Public: no key needed.
    let (status, _) = stack
        .call(
            Method::PUT,
            &format!("/mcp-servers/{first_id}"),
            &ada,
            Some(json!({"public": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    eventually(Duration::from_secs(1), "public server open", || async {
        stack.raw_with_key(&first, None, &list()).await.status() == StatusCode::OK
    })
    .await;
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn each_key_has_a_rate_limit(pool: PgPool) {
    let stack = spawn_stack(pool.clone(), pool, |s| {
        s.gateway.key_requests_per_minute = 3;
    })
    .await;
    let ada = stack.user("ada@example.com").await;
    let files = stack.files(&ada, "1").await;
    let (id, host) = stack.server(&ada, "s", &[&files]).await;
    eventually(Duration::from_secs(1), "served", || stack.serves(&host)).await;
    // `serves` used one request of the budget.
    for _ in 0..2 {
        assert_eq!(stack.raw(&host, &list()).await.status(), StatusCode::OK);
    }
    let limited = stack.raw(&host, &list()).await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=20).contains(&retry_after), "{retry_after}");
    assert_eq!(
        limited.json::<Value>().await.unwrap()["error"]["code"],
        "rate_limited"
    );
    let other = stack.key(&ada, &id).await;
    eventually(
        Duration::from_secs(1),
        "another key has its own budget",
        || async {
            stack
                .raw_with_key(&host, Some(&other), &list())
                .await
                .status()
                == StatusCode::OK
        },
    )
    .await;
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn key_use_is_recorded_in_batches(pool: PgPool) {
    let mut stack = spawn_stack(pool.clone(), pool.clone(), |_| {}).await;
    let ada = stack.user("ada@example.com").await;
    let files = stack.files(&ada, "1").await;
    let (id, host) = stack.server(&ada, "s", &[&files]).await;
    eventually(Duration::from_secs(1), "served", || stack.serves(&host)).await;
    for _ in 0..20 {
        stack.raw(&host, &list()).await;
    }
    let rows: i64 = sqlx::query_scalar("select count(*) from mcp_server_key_usage")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(rows, 0, "no write per request");
    // The batch is written on its period and at shutdown.
    stack.stop_gateway.take().unwrap().send(()).unwrap();
    (&mut stack.gateway_task).await.unwrap().unwrap();
    let (_, listed) = stack
        .call(Method::GET, &format!("/mcp-servers/{id}/keys"), &ada, None)
        .await;
    let used = listed["items"][0]["last_used_at"]
        .as_str()
        .expect("recorded");
    let used: chrono::DateTime<Utc> = used.parse().unwrap();
    assert!(Utc::now() - used < chrono::Duration::seconds(10));
}

/// A `tools/list` to `host` without a key, sent from the local address `from` (any 127.x
/// address reaches the gateway on Linux), with an `X-Forwarded-For` header if given.
async fn anonymous_list(
    stack: &Stack,
    host: &str,
    from: &str,
    forwarded_for: Option<&str>,
) -> StatusCode {
    let client = reqwest::Client::builder()
        .local_address(from.parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap();
    let mut request = client
        .post(stack.mcp_url())
        .header("host", host)
        .header("accept", "application/json, text/event-stream")
        .json(&list());
    if let Some(forwarded_for) = forwarded_for {
        request = request.header("x-forwarded-for", forwarded_for);
    }
    request.send().await.expect("gateway answers").status()
}

/// A public server with one source; returns its host once it is served without a key.
async fn public_server(stack: &Stack) -> String {
    let ada = stack.user("ada@example.com").await;
    let files = stack.files(&ada, "1").await;
    let (id, host) = stack.server_without_key(&ada, "open", &[&files]).await;
    let (status, _) = stack
        .call(
            Method::PUT,
            &format!("/mcp-servers/{id}"),
            &ada,
            Some(json!({"public": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // Polled from an address of its own, so that no test client's budget is spent.
    eventually(Duration::from_secs(1), "public server open", || async {
        anonymous_list(stack, &host, "127.0.0.9", None).await == StatusCode::OK
    })
    .await;
    host
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn a_public_server_counts_each_client_address_on_its_own(pool: PgPool) {
    let stack = spawn_stack(pool.clone(), pool, |s| {
        s.gateway.key_requests_per_minute = 3;
    })
    .await;
    let host = public_server(&stack).await;

    for _ in 0..3 {
        assert_eq!(
            anonymous_list(&stack, &host, "127.0.0.1", None).await,
            StatusCode::OK
        );
    }
    assert_eq!(
        anonymous_list(&stack, &host, "127.0.0.1", None).await,
        StatusCode::TOO_MANY_REQUESTS,
        "the first client has used its budget"
    );
    assert_eq!(
        anonymous_list(&stack, &host, "127.0.0.2", None).await,
        StatusCode::OK,
        "another client still has all of its own"
    );
    // Without the trust setting, a forwarded address is the client's word and counts nothing.
    assert_eq!(
        anonymous_list(&stack, &host, "127.0.0.1", Some("203.0.113.7")).await,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn behind_a_trusted_proxy_the_last_forwarded_hop_is_the_client(pool: PgPool) {
    let stack = spawn_stack(pool.clone(), pool, |s| {
        s.gateway.key_requests_per_minute = 2;
        s.gateway.trust_forwarded_for = true;
    })
    .await;
    let host = public_server(&stack).await;

    // Every request comes from the proxy's address; the proxy appends the client's.
    let (first, second) = (Some("198.51.100.1"), Some("203.0.113.9, 198.51.100.2"));
    for _ in 0..2 {
        assert_eq!(
            anonymous_list(&stack, &host, "127.0.0.1", first).await,
            StatusCode::OK
        );
    }
    assert_eq!(
        anonymous_list(&stack, &host, "127.0.0.1", first).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        anonymous_list(&stack, &host, "127.0.0.1", second).await,
        StatusCode::OK,
        "another client behind the same proxy has its own budget"
    );
    // A client cannot pick its budget by prepending hops: only the last one counts.
    assert_eq!(
        anonymous_list(&stack, &host, "127.0.0.1", Some("192.0.2.55, 198.51.100.1")).await,
        StatusCode::TOO_MANY_REQUESTS
    );
}
