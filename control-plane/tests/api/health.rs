//! `/api/v1/checks`, `/healthz` and `/readyz`, with the database up and down.

use reqwest::{Method, StatusCode};
use serde_json::Value;
use sqlx::PgPool;

use crate::helpers::{JWT_SECRET, PASSWORD, assert_error, claims, sign, spawn_app, spawn_app_with};

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn checks_report_uptime_and_database_and_counts_for_admins(pool: PgPool) {
    let app = spawn_app(pool).await;
    let anonymous: Value = app
        .request(Method::GET, "/api/v1/checks")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(anonymous["status"], "ok");
    assert_eq!(anonymous["database"]["reachable"], true);
    assert!(anonymous["database"]["latency_ms"].as_f64().unwrap() >= 0.0);
    assert!(anonymous["uptime_secs"].is_u64());
    assert!(
        anonymous.get("counts").is_none(),
        "counts are for administrators"
    );
    assert!(anonymous.get("endpoint_pool").is_none());

    app.user_token("admin@example.com").await;
    app.grant_admin("admin@example.com").await;
    let admin = app.token_for("admin@example.com", PASSWORD).await;
    let report: Value = app
        .authed(Method::GET, "/api/v1/checks", &admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(report["counts"]["users"], 1);
    assert_eq!(report["counts"]["mcp_servers"], 0);
    assert_eq!(report["endpoint_pool"]["total"], 3);
    assert_eq!(report["endpoint_pool"]["free"], 3);
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn probes_answer_while_the_database_is_up(pool: PgPool) {
    let app = spawn_app(pool).await;
    for path in ["/healthz", "/readyz"] {
        let response = app.request(Method::GET, path).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
    }
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn an_unreachable_database_is_503_not_500(pool: PgPool) {
    // A pool pointing at a port where nothing listens stands in for a database outage.
    let dead = sqlx::postgres::PgPoolOptions::new()
        .acquire_timeout(std::time::Duration::from_millis(500))
        .connect_lazy("postgres://nobody@127.0.0.1:1/none")
        .unwrap();
    drop(pool);
    let app = spawn_app_with(dead, |_| {}).await;

    assert_eq!(
        app.request(Method::GET, "/healthz")
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK,
        "the process is alive"
    );
    let ready = app.request(Method::GET, "/readyz").send().await.unwrap();
    assert!(ready.headers().contains_key("retry-after"));
    assert_error(
        ready,
        StatusCode::SERVICE_UNAVAILABLE,
        "database_unavailable",
    )
    .await;
    // Even with a token (which cannot be checked now), the report answers 200 "degraded".
    let checks: Value = app
        .request(Method::GET, "/api/v1/checks")
        .bearer_auth(sign(
            &claims(&uuid::Uuid::new_v4().to_string(), 600),
            JWT_SECRET,
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(checks["status"], "degraded");
    assert_eq!(checks["database"]["reachable"], false);
    assert_error(
        app.signup("ada@example.com", PASSWORD).await,
        StatusCode::SERVICE_UNAVAILABLE,
        "database_unavailable",
    )
    .await;
    assert_error(
        app.signin("ada@example.com", PASSWORD).await,
        StatusCode::SERVICE_UNAVAILABLE,
        "database_unavailable",
    )
    .await;
}
