//! The OAuth endpoints under abuse: registrations are limited per client address (IPv6 per
//! /64); only a real use keeps a registration from the idle purge.

use reqwest::StatusCode;
use serde_json::json;
use sqlx::PgPool;

use crate::{
    helpers::{Stack, spawn_oauth_stack},
    oauth_flow::{CALLBACK, EMAIL, authorize_url, consent, owner_with_server, param, pkce, usual},
    oauth_refusals::browser_at,
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
