//! Cookie-authenticated writes from a foreign origin are refused; CORS follows the settings.

use reqwest::{Method, StatusCode};
use serde_json::json;
use sqlx::PgPool;

use crate::helpers::{PASSWORD, assert_error, spawn_app, spawn_app_with};

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn cookie_writes_from_a_foreign_origin_are_403(pool: PgPool) {
    let app = spawn_app(pool).await;
    let token = app.user_token("ada@example.com").await;
    let cookie = format!("mcpgw_session={token}");
    let host = app.address.trim_start_matches("http://").to_owned();

    let change = |origin: Option<String>| {
        let mut request = app
            .request(Method::PUT, "/api/v1/me/password")
            .header("cookie", &cookie)
            .json(&json!({"current_password": PASSWORD, "new_password": PASSWORD}));
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        request.send()
    };
    let foreign = change(Some("https://evil.example".to_owned()))
        .await
        .unwrap();
    assert_error(foreign, StatusCode::FORBIDDEN, "cross_origin_request").await;
    let signout = app
        .request(Method::POST, "/api/v1/signout")
        .header("cookie", &cookie)
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_error(signout, StatusCode::FORBIDDEN, "cross_origin_request").await;
    let delete = app
        .request(Method::DELETE, "/api/v1/me")
        .header("cookie", &cookie)
        .header("origin", "null")
        .send()
        .await
        .unwrap();
    assert_error(delete, StatusCode::FORBIDDEN, "cross_origin_request").await;
    assert_eq!(
        app.me(&token).await.status(),
        StatusCode::OK,
        "nothing happened: the token still works"
    );

    let read = app
        .request(Method::GET, "/api/v1/me")
        .header("cookie", &cookie)
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(
        read.status(),
        StatusCode::OK,
        "reads are not state-changing (CORS keeps the answer from the page)"
    );
    let same_origin = change(Some(format!("http://{host}"))).await.unwrap();
    assert_eq!(same_origin.status(), StatusCode::OK, "same origin is fine");
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn bearer_requests_are_not_subject_to_the_origin_rule(pool: PgPool) {
    let app = spawn_app(pool).await;
    let token = app.user_token("ada@example.com").await;
    let response = app
        .authed(Method::POST, "/api/v1/signout", &token)
        .header("origin", "https://tool.example")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn listed_origins_may_use_cookies_and_get_cors_with_credentials(pool: PgPool) {
    let app = spawn_app_with(pool, |s| {
        s.control_plane.cors_allowed_origins = vec!["https://console.example.com".to_owned()];
    })
    .await;
    let token = app.user_token("ada@example.com").await;

    let preflight = app
        .request(Method::OPTIONS, "/api/v1/me/password")
        .header("origin", "https://console.example.com")
        .header("access-control-request-method", "PUT")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success());
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        "https://console.example.com"
    );
    assert_eq!(
        preflight.headers()["access-control-allow-credentials"],
        "true"
    );

    let write = app
        .request(Method::POST, "/api/v1/signout")
        .header("cookie", format!("mcpgw_session={token}"))
        .header("origin", "https://console.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(write.status(), StatusCode::NO_CONTENT);

    let other = app
        .request(Method::GET, "/api/v1/checks")
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(
        !other.headers().contains_key("access-control-allow-origin"),
        "unlisted origins get no CORS grant"
    );
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn a_wildcard_origin_never_comes_with_credentials(pool: PgPool) {
    let app = spawn_app_with(pool, |s| {
        s.control_plane.cors_allowed_origins = vec!["*".to_owned()];
    })
    .await;
    let response = app
        .request(Method::GET, "/api/v1/checks")
        .header("origin", "https://any.example")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
    assert!(
        !response
            .headers()
            .contains_key("access-control-allow-credentials")
    );
}
