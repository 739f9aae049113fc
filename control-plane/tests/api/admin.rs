//! Administrator-only routes and making an administrator without SQL.

use reqwest::{Method, StatusCode};
use serde_json::Value;
use sqlx::PgPool;

use crate::helpers::{PASSWORD, assert_error, spawn_app};

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn listing_users_is_for_admins_only(pool: PgPool) {
    let app = spawn_app(pool).await;
    let user = app.user_token("user@example.com").await;
    app.user_token("admin@example.com").await;

    let refused = app
        .authed(Method::GET, "/api/v1/users", &user)
        .send()
        .await
        .unwrap();
    assert_error(refused, StatusCode::FORBIDDEN, "admin_required").await;
    let anonymous = app
        .request(Method::GET, "/api/v1/users")
        .send()
        .await
        .unwrap();
    assert_error(anonymous, StatusCode::UNAUTHORIZED, "unauthenticated").await;

    app.grant_admin("Admin@Example.com").await;
    let admin = app.token_for("admin@example.com", PASSWORD).await;
    let listed = app
        .authed(Method::GET, "/api/v1/users?limit=1", &admin)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), StatusCode::OK);
    let page: Value = listed.json().await.unwrap();
    assert_eq!(page["total"], 2);
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(
        page["items"][0]["email"], "user@example.com",
        "oldest first"
    );
    assert!(page["items"][0].get("hashed_password").is_none());

    let bad_limit = app
        .authed(Method::GET, "/api/v1/users?limit=0", &admin)
        .send()
        .await
        .unwrap();
    assert_error(
        bad_limit,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    let bad_query = app
        .authed(Method::GET, "/api/v1/users?limit=ten", &admin)
        .send()
        .await
        .unwrap();
    assert_error(bad_query, StatusCode::BAD_REQUEST, "invalid_query").await;
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn a_role_change_applies_to_existing_tokens_at_once(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let token = app.user_token("ada@example.com").await;
    app.grant_admin("ada@example.com").await;
    assert_eq!(
        app.authed(Method::GET, "/api/v1/users", &token)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    control_plane::cli::set_role(&pool, "ada@example.com", false)
        .await
        .unwrap();
    assert_eq!(
        app.authed(Method::GET, "/api/v1/users", &token)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::FORBIDDEN
    );
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn granting_admin_to_an_unknown_email_says_so(pool: PgPool) {
    let err = control_plane::cli::set_role(&pool, "ghost@example.com", true)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("ghost@example.com"), "{err}");
}

/// The operator's command itself: `control-plane admin grant EMAIL` against this test's database.
#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn the_admin_grant_command_makes_an_admin(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    app.user_token("ada@example.com").await;
    let database: String = sqlx::query_scalar("select current_database()")
        .fetch_one(&pool)
        .await
        .unwrap();
    let mut url = url::Url::parse(&std::env::var("DATABASE_URL").unwrap()).unwrap();
    url.set_path(&database);

    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_control-plane"))
        .args(["admin", "grant", "ada@example.com"])
        .env("DATABASE_URL", url.as_str())
        .env_remove("MCP_GATEWAY_CONFIG")
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let role: String = sqlx::query_scalar("select role from users")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(role, "admin");
}
