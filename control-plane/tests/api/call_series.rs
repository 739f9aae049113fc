//! `GET /mcp-servers/{id}/calls/series`: calls per hour or day by outcome, and error classes.

use reqwest::{Method, StatusCode};
use serde_json::Value;
use sqlx::PgPool;

use crate::helpers::{assert_error, spawn_app};

/// Records a call of `server` at `at` with `status` (and `error_class`).
async fn record(pool: &PgPool, server: &str, at: &str, status: &str, class: Option<&str>) {
    sqlx::query(
        "insert into tool_calls (server_id, called_at, tool, argument, status, error_class, \
         result_count, duration_ms) values ($1::uuid, $2::timestamptz, 'search', 'q', $3, $4, 0, 5)",
    )
    .bind(server)
    .bind(at)
    .bind(status)
    .bind(class)
    .execute(pool)
    .await
    .unwrap();
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn calls_are_counted_per_bucket_and_outcome_with_empty_buckets_kept(pool: PgPool) {
    let app = spawn_app(pool).await;
    let token = app.user_token("ada@example.com").await;
    let server = app.server(&token, "Research", &[]).await;
    let id = server["id"].as_str().unwrap();
    record(&app.pool, id, "2026-03-01T10:05:00Z", "ok", None).await;
    record(
        &app.pool,
        id,
        "2026-03-01T10:59:59Z",
        "partial",
        Some("source_failed"),
    )
    .await;
    record(
        &app.pool,
        id,
        "2026-03-01T12:00:00Z",
        "error",
        Some("all_sources_failed"),
    )
    .await;
    record(
        &app.pool,
        id,
        "2026-03-01T12:30:00Z",
        "error",
        Some("all_sources_failed"),
    )
    .await;
    record(&app.pool, id, "2026-03-01T13:00:00Z", "ok", None).await; // `to` is exclusive

    let path = format!(
        "/api/v1/mcp-servers/{id}/calls/series?bucket=hour&from=2026-03-01T10:30:00Z&to=2026-03-01T13:00:00Z"
    );
    let body: Value = app.json(Method::GET, &path, &token).await;
    let buckets = body["buckets"].as_array().expect("buckets");
    let seen: Vec<(String, i64, i64, i64)> = buckets
        .iter()
        .map(|b| {
            let n = |k: &str| b[k].as_i64().unwrap();
            (
                b["start"].as_str().unwrap().to_owned(),
                n("ok"),
                n("partial"),
                n("error"),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("2026-03-01T10:00:00Z".to_owned(), 0, 1, 0),
            ("2026-03-01T11:00:00Z".to_owned(), 0, 0, 0),
            ("2026-03-01T12:00:00Z".to_owned(), 0, 0, 2),
        ]
    );
    assert_eq!(body["bucket"], "hour");
    assert_eq!(
        body["error_classes"][0]["error_class"],
        "all_sources_failed"
    );
    assert_eq!(body["error_classes"][0]["calls"], 2);
    assert_eq!(body["error_classes"][1]["error_class"], "source_failed");

    let path = format!(
        "/api/v1/mcp-servers/{id}/calls/series?bucket=day&from=2026-02-28T00:00:00Z&to=2026-03-02T00:00:00Z"
    );
    let body: Value = app.json(Method::GET, &path, &token).await;
    let days = body["buckets"].as_array().unwrap();
    assert_eq!(days.len(), 2);
    assert_eq!(
        (days[1]["ok"].as_i64(), days[1]["error"].as_i64()),
        (Some(2), Some(2))
    );
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn a_bad_window_or_bucket_is_a_clear_4xx_and_another_users_server_is_404(pool: PgPool) {
    let app = spawn_app(pool).await;
    let token = app.user_token("ada@example.com").await;
    let server = app.server(&token, "Research", &[]).await;
    let id = server["id"].as_str().unwrap();
    let base = format!("/api/v1/mcp-servers/{id}/calls/series");
    for query in [
        "?from=2026-03-02T00:00:00Z&to=2026-03-01T00:00:00Z",
        "?from=2026-01-01T00:00:00Z&to=2026-06-01T00:00:00Z",
    ] {
        let response = app
            .send(Method::GET, &format!("{base}{query}"), &token)
            .await;
        assert_error(
            response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        )
        .await;
    }
    let response = app
        .send(Method::GET, &format!("{base}?bucket=minute"), &token)
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let default = app.json(Method::GET, &base, &token).await;
    assert_eq!(
        default["buckets"].as_array().unwrap().len(),
        25,
        "24 hours, both ends' buckets"
    );

    let mallory = app.user_token("mallory@example.com").await;
    let response = app.send(Method::GET, &base, &mallory).await;
    assert_error(response, StatusCode::NOT_FOUND, "not_found").await;
}
