//! Signin attempts are limited per client address; failures per (email, client address) and,
//! more loosely, per email.

use reqwest::StatusCode;
use sqlx::PgPool;

use crate::helpers::{PASSWORD, TestApp, assert_error, spawn_app_with};

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn too_many_signins_for_one_email_are_429_with_retry_after(pool: PgPool) {
    let app = spawn_app_with(pool, |s| {
        s.control_plane.signin_attempts_per_minute_per_email = 3;
        s.control_plane.signin_attempts_per_minute_per_client = 100;
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

/// A signin from `client` (behind a trusted proxy); the status.
async fn signin_from(app: &TestApp, client: &str, email: &str, password: &str) -> StatusCode {
    app.request(reqwest::Method::POST, "/api/v1/signin")
        .header("x-forwarded-for", client)
        .json(&serde_json::json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
        .status()
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn a_stranger_s_wrong_passwords_do_not_lock_the_owner_out_from_another_address(pool: PgPool) {
    let app = spawn_app_with(pool, |s| s.control_plane.trust_forwarded_for = true).await;
    app.signup("ada@example.com", PASSWORD).await;

    // The default budget is 10 failures a minute for one email from one address.
    for _ in 0..10 {
        assert_eq!(
            signin_from(&app, "203.0.113.66", "ada@example.com", "guess guess").await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        signin_from(&app, "203.0.113.66", "ada@example.com", PASSWORD).await,
        StatusCode::TOO_MANY_REQUESTS,
        "the guessing address is refused, even with the right password"
    );
    assert_eq!(
        signin_from(&app, "198.51.100.1", "ada@example.com", PASSWORD).await,
        StatusCode::OK,
        "the owner signs in from their own address"
    );
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn successful_signins_spend_nothing_of_the_email_budget(pool: PgPool) {
    let app = spawn_app_with(pool, |s| {
        s.control_plane.signin_attempts_per_minute_per_email = 2;
    })
    .await;
    app.signup("ada@example.com", PASSWORD).await;
    for _ in 0..5 {
        assert_eq!(
            app.signin("ada@example.com", PASSWORD).await.status(),
            StatusCode::OK
        );
    }
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn past_the_email_wide_cap_each_address_gets_one_try_and_the_right_password_works(
    pool: PgPool,
) {
    let app = spawn_app_with(pool, |s| {
        s.control_plane.trust_forwarded_for = true;
        s.control_plane.signin_failures_per_hour_per_email = 3;
    })
    .await;
    app.signup("ada@example.com", PASSWORD).await;
    for client in ["203.0.113.1", "203.0.113.2", "203.0.113.3"] {
        assert_eq!(
            signin_from(&app, client, "ada@example.com", "guess guess").await,
            StatusCode::UNAUTHORIZED
        );
    }
    // Guessing spread over addresses: an address that failed waits, a new one gets one try.
    assert_eq!(
        signin_from(&app, "203.0.113.1", "ada@example.com", "guess again").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        signin_from(&app, "203.0.113.4", "ada@example.com", "guess again").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        signin_from(&app, "203.0.113.4", "ada@example.com", PASSWORD).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        signin_from(&app, "198.51.100.1", "ada@example.com", PASSWORD).await,
        StatusCode::OK,
        "an address that has not failed signs in"
    );
    assert_eq!(
        signin_from(&app, "203.0.113.1", "bob@example.com", "guess guess").await,
        StatusCode::UNAUTHORIZED,
        "other emails are not affected"
    );
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn too_many_signins_from_one_client_are_429(pool: PgPool) {
    let app = spawn_app_with(pool, |s| {
        s.control_plane.signin_attempts_per_minute_per_client = 4;
        s.control_plane.signin_attempts_per_minute_per_email = 100;
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
        s.control_plane.signin_attempts_per_minute_per_client = 2;
        s.control_plane.trust_forwarded_for = true;
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
    let app = spawn_app_with(pool, |s| {
        s.control_plane.signin_attempts_per_minute_per_client = 2;
    })
    .await;
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
    let app = spawn_app_with(pool, |s| {
        s.control_plane.signin_attempts_per_minute_per_email = 3;
    })
    .await;
    let token = app.user_token("ada@example.com").await; // a successful signin spends nothing
    for _ in 0..3 {
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
