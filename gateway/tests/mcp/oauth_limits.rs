//! The OAuth endpoints under abuse: a flood of slow client metadata documents leaves real
//! document clients working; `/oauth/authorize` and registrations are limited per client
//! address (IPv6 per /64); only a real use keeps a registration from the idle purge.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::response::IntoResponse;
use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::json;
use sqlx::PgPool;

use crate::{
    helpers::{Stack, spawn_oauth_stack},
    oauth_flow::{CALLBACK, EMAIL, authorize_url, consent, owner_with_server, param, pkce, usual},
    oauth_refusals::{browser_at, document, document_server},
};

/// The status of an authorization request for `resource` naming `client_id`, from `client`.
async fn ask(
    stack: &Stack,
    client: &reqwest::Client,
    client_id: &str,
    resource: &str,
) -> StatusCode {
    let p = pkce();
    let url = authorize_url(&stack.origin, &usual(client_id, &p, resource));
    client.get(url).send().await.unwrap().status()
}

/// A good document that counts how often it is fetched; returns its URL.
async fn counted_document(fetches: Arc<AtomicUsize>) -> String {
    document_server(move |own| {
        let fetches = fetches.clone();
        async move {
            fetches.fetch_add(1, Ordering::SeqCst);
            axum::Json(document(&own)).into_response()
        }
    })
    .await
}

/// A person authorizes `client_id` on `resource`: the callback carries a code.
async fn authorizes(stack: &Stack, client_id: &str, resource: &str) {
    let p = pkce();
    let callback = consent(
        &stack.origin,
        &authorize_url(&stack.origin, &usual(client_id, &p, resource)),
        EMAIL,
    )
    .await;
    assert!(param(&callback, "code").is_some(), "{callback}");
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn a_flood_of_slow_documents_leaves_cached_and_new_document_clients_working(pool: PgPool) {
    let stack = spawn_oauth_stack(pool, |s| {
        s.control_plane.trust_forwarded_for = true;
        s.control_plane.oauth_cimd_allow_http_hosts = vec!["127.0.0.1".to_owned()];
    })
    .await;
    let (_, _, mcp_url) = owner_with_server(&stack, EMAIL).await;
    let (cached_fetches, fresh_fetches) = (Arc::default(), Arc::default());
    let cached = counted_document(Arc::clone(&cached_fetches)).await;
    let fresh = counted_document(Arc::clone(&fresh_fetches)).await;
    authorizes(&stack, &cached, &mcp_url).await;

    // 1,001 new client_id URLs that fail at once, from 21 addresses: not one pushes the
    // cached good document out.
    let failing = futures::stream::iter(0..1001).map(|i| {
        let (stack, mcp_url) = (&stack, &mcp_url);
        async move {
            let client = browser_at(&format!("198.51.100.{}", i / 50));
            ask(stack, &client, &format!("https://10.0.0.1/doc{i}"), mcp_url).await
        }
    });
    let answers: Vec<StatusCode> = failing.buffer_unordered(16).collect().await;
    assert!(answers.iter().all(|s| *s == StatusCode::BAD_REQUEST));

    // Slow documents (never answered within the fetch deadline), 10 a second from five
    // addresses, each a new URL.
    let slow = document_server(|_| async {
        tokio::time::sleep(Duration::from_secs(60)).await;
        StatusCode::NO_CONTENT.into_response()
    })
    .await;
    {
        let (origin, mcp_url) = (stack.origin.clone(), mcp_url.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            for i in 0..30 {
                tick.tick().await;
                let client = browser_at(&format!("203.0.113.{}", i % 5));
                let p = pkce();
                let url = authorize_url(&origin, &usual(&format!("{slow}?n={i}"), &p, &mcp_url));
                tokio::spawn(async move { client.get(url).send().await });
            }
        });
    }
    // Two seconds in, every place the flood can take is taken.
    tokio::time::sleep(Duration::from_secs(2)).await;
    tokio::join!(
        authorizes(&stack, &cached, &mcp_url),
        authorizes(&stack, &fresh, &mcp_url),
    );
    assert_eq!(
        cached_fetches.load(Ordering::SeqCst),
        1,
        "the cached document was used, not fetched again"
    );
    assert_eq!(fresh_fetches.load(Ordering::SeqCst), 1);
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn authorization_requests_are_limited_per_address_and_ipv6_per_64(pool: PgPool) {
    let stack = spawn_oauth_stack(pool, |s| {
        s.control_plane.trust_forwarded_for = true;
        s.control_plane
            .oauth_authorize_requests_per_minute_per_client = 2;
    })
    .await;
    let resource = "https://mcp2.example.com/mcp";
    for address in ["2001:db8:5:6::1", "2001:db8:5:6:ffff::2"] {
        assert_eq!(
            ask(&stack, &browser_at(address), "no-such-client", resource).await,
            StatusCode::BAD_REQUEST
        );
    }
    let refused = browser_at("2001:db8:5:6::3")
        .get(format!("{}/oauth/authorize", stack.origin))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.headers().contains_key("retry-after"));
    assert!(refused.text().await.unwrap().contains("Too many"));
    assert_eq!(
        ask(
            &stack,
            &browser_at("2001:db8:5:7::1"),
            "no-such-client",
            resource
        )
        .await,
        StatusCode::BAD_REQUEST,
        "the next /64 has its own budget"
    );
}

/// Registers a client from `address`; the response.
async fn register_from(stack: &Stack, address: &str) -> reqwest::Response {
    browser_at(address)
        .post(format!("{}/oauth/register", stack.origin))
        .json(&json!({"client_name": "Agent", "redirect_uris": [CALLBACK]}))
        .send()
        .await
        .unwrap()
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn registrations_are_counted_per_ipv6_64(pool: PgPool) {
    let stack = spawn_oauth_stack(pool, |s| {
        s.control_plane.trust_forwarded_for = true;
        s.control_plane.oauth_registrations_per_hour_per_client = 1;
    })
    .await;
    assert_eq!(
        register_from(&stack, "2001:db8:1:2::1").await.status(),
        StatusCode::CREATED
    );
    let refused = register_from(&stack, "2001:db8:1:2:ffff::9").await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.headers().contains_key("retry-after"));
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "slow_down");
    assert_eq!(
        register_from(&stack, "2001:db8:1:3::1").await.status(),
        StatusCode::CREATED,
        "the next /64 has its own budget"
    );
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn only_a_real_use_keeps_a_registration_from_the_idle_purge(pool: PgPool) {
    let stack = spawn_oauth_stack(pool.clone(), |_| {}).await;
    let (_, _, mcp_url) = owner_with_server(&stack, EMAIL).await;
    let mut ids = Vec::new();
    for _ in 0..2 {
        let created: serde_json::Value = register_from(&stack, "192.0.2.1")
            .await
            .json()
            .await
            .unwrap();
        ids.push(created["client_id"].as_str().unwrap().to_owned());
    }
    let (named, approved) = (&ids[0], &ids[1]);
    sqlx::query("update oauth_clients set last_used_at = now() - interval '40 days'")
        .execute(&pool)
        .await
        .unwrap();

    // Anyone can send a request naming a client: it shows a page, and is no use of it.
    let browser = reqwest::Client::new();
    assert_eq!(ask(&stack, &browser, named, &mcp_url).await, StatusCode::OK);
    // An approved consent is.
    authorizes(&stack, approved, &mcp_url).await;
    let recent: bool = sqlx::query_scalar(
        "select last_used_at > now() - interval '1 minute' from oauth_clients where client_id = $1",
    )
    .bind(approved)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(recent, "the approval counts as a use");

    let purged = control_plane::db::oauth::purge_idle_clients(
        &pool,
        control_plane::oauth::clients::IDLE_CLIENT_DAYS,
    )
    .await
    .unwrap();
    assert_eq!(purged, 1);
    let left: Vec<String> = sqlx::query_scalar("select client_id from oauth_clients")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(&left, std::slice::from_ref(approved));
}
