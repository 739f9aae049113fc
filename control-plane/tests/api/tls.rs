//! The on-demand TLS `ask` check and the metrics listener.

use reqwest::{Method, StatusCode};
use sqlx::PgPool;

use crate::helpers::{assert_error, spawn_app_with};

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn certificates_only_for_pool_domains(pool: PgPool) {
    let app = spawn_app_with(pool, |s| {
        s.control_plane.mcp_gateway_url_pools =
            "https://mcp1.example.com,https://*.agents.example.com".to_owned();
    })
    .await;
    let ask = |domain: &str| {
        app.request(Method::GET, &format!("/api/v1/tls/ask?domain={domain}"))
            .send()
    };
    for yes in ["mcp1.example.com", "MCP1.example.com."] {
        let response = ask(yes).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{yes}");
    }
    for no in [
        "evil.example",
        "example.com",
        "mcp2.example.com",
        "a.b.agents.example.com",
        // Under the wildcard, but no server holds it: no certificate (CA rate limits).
        "random123.agents.example.com",
    ] {
        assert_error(ask(no).await.unwrap(), StatusCode::NOT_FOUND, "not_found").await;
    }
    assert_error(
        app.request(Method::GET, "/api/v1/tls/ask")
            .send()
            .await
            .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;

    // A server on a generated wildcard name makes that name eligible. (The first server
    // takes the fixed endpoint, the second one a wildcard name.)
    let token = app.user_token("ada@example.com").await;
    app.server(&token, "fixed", &[]).await;
    let generated = app.server(&token, "generated", &[]).await;
    let host = generated["endpoint"]
        .as_str()
        .unwrap()
        .trim_start_matches("https://")
        .to_owned();
    assert!(host.ends_with(".agents.example.com"), "{host}");
    assert_eq!(ask(&host).await.unwrap().status(), StatusCode::OK);
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn the_metrics_listener_exposes_the_series(pool: PgPool) {
    let app = spawn_app_with(pool, |s| {
        s.control_plane.signin_attempts_per_minute_per_email = 2;
    })
    .await;
    app.user_token("ada@example.com").await;
    // Two failures spend the email's budget (successes count nothing); the third is refused.
    for _ in 0..3 {
        app.signin("ada@example.com", "wrong password!").await;
    }
    let text = app
        .client
        .get(&app.metrics)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for series in [
        "http_requests_total{",
        "http_request_duration_seconds_bucket{",
        "route=\"/api/v1/signin\"",
        "signin_failures_total",
        "rate_limit_rejections_total{limiter=\"signin\"}",
        "endpoint_pool_fixed_total",
        "endpoint_pool_fixed_used",
    ] {
        assert!(text.contains(series), "{series} in\n{text}");
    }
}
