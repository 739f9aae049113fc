//! Signin attempts are limited per email and per client address.

use reqwest::StatusCode;
use sqlx::PgPool;

use crate::helpers::{PASSWORD, assert_error, spawn_app_with};

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn too_many_signins_for_one_email_are_429_with_retry_after(pool: PgPool) {
    let app = spawn_app_with(pool, |s| {
        s.signin_attempts_per_minute_per_email = 3;
        s.signin_attempts_per_minute_per_client = 100;
    })
    .await;
    app.signup("ada@example.com", PASSWORD).await;

    for _ in 0..3 {
        assert_eq!(
            app.signin("ada@example.com", "wrong password")
                .await
                .status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let limited = app.signin("ADA@example.com", PASSWORD).await;
    let retry_after: u64 = limited
        .headers()
        .get("retry-after")
        .expect("Retry-After")
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    let body = assert_error(limited, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    assert_eq!(body["error"]["retry_after_secs"], retry_after);

    // Another account from the same client is not affected by this email's limit.
    app.signup("bob@example.com", PASSWORD).await;
    assert_eq!(
        app.signin("bob@example.com", PASSWORD).await.status(),
        StatusCode::OK
    );
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn too_many_signins_from_one_client_are_429(pool: PgPool) {
    let app = spawn_app_with(pool, |s| {
        s.signin_attempts_per_minute_per_client = 4;
        s.signin_attempts_per_minute_per_email = 100;
    })
    .await;
    for i in 0..4 {
        let response = app.signin(&format!("user{i}@example.com"), PASSWORD).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let limited = app.signin("someone-else@example.com", PASSWORD).await;
    assert!(limited.headers().contains_key("retry-after"));
    assert_error(limited, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn behind_a_trusted_proxy_the_forwarded_client_is_limited(pool: PgPool) {
    let app = spawn_app_with(pool, |s| {
        s.signin_attempts_per_minute_per_client = 2;
        s.trust_forwarded_for = true;
    })
    .await;
    let signin = |client: &'static str, email: &'static str| {
        app.request(reqwest::Method::POST, "/api/v1/signin")
            .header("x-forwarded-for", format!("198.51.100.7, {client}"))
            .json(&serde_json::json!({"email": email, "password": PASSWORD}))
            .send()
    };
    for email in ["a@example.com", "b@example.com"] {
        assert_eq!(
            signin("203.0.113.1", email).await.unwrap().status(),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        signin("203.0.113.1", "c@example.com")
            .await
            .unwrap()
            .status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        signin("203.0.113.2", "d@example.com")
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED,
        "another client has its own budget"
    );
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn signups_share_the_client_budget(pool: PgPool) {
    let app = spawn_app_with(pool, |s| s.signin_attempts_per_minute_per_client = 2).await;
    for i in 0..2 {
        assert_eq!(
            app.signup(&format!("u{i}@example.com"), PASSWORD)
                .await
                .status(),
            StatusCode::CREATED
        );
    }
    assert_error(
        app.signup("u3@example.com", PASSWORD).await,
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
    )
    .await;
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn guessing_the_current_password_is_limited(pool: PgPool) {
    let app = spawn_app_with(pool, |s| s.signin_attempts_per_minute_per_email = 3).await;
    let token = app.user_token("ada@example.com").await; // one attempt spent by signing in
    for _ in 0..2 {
        let wrong = app
            .authed(reqwest::Method::PUT, "/api/v1/me/password", &token)
            .json(&serde_json::json!({"current_password": "guess guess", "new_password": "whatever123"}))
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
    }
    let limited = app
        .authed(reqwest::Method::PUT, "/api/v1/me/password", &token)
        .json(&serde_json::json!({"current_password": PASSWORD, "new_password": "whatever123"}))
        .send()
        .await
        .unwrap();
    assert_error(limited, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
}
