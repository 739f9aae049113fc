//! What the daemon logs at the default level never contains a password, a hash or a token.
//!
//! A binary of its own: the test listens through a subscriber set for its thread, and tracing
//! caches per call site whether anyone listens. In the shared `api` binary, another test hitting
//! the same call site (`signed in`) while this one installed its subscriber could leave the
//! site cached as unheard, and the test failed now and then with the line missing.

#[path = "api/helpers.rs"]
#[allow(dead_code, unused_imports)]
mod helpers;

use reqwest::{Method, StatusCode};
use serde_json::json;
use sqlx::PgPool;

use crate::helpers::spawn_app;

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn no_password_hash_or_token_is_logged_at_the_default_level(pool: PgPool) {
    for format in [shared::LogFormat::Human, shared::LogFormat::Json] {
        // SAFETY of the test's premise: RUST_LOG would override the default level.
        assert!(
            std::env::var_os("RUST_LOG").is_none(),
            "run this test without RUST_LOG"
        );
        let captured = shared::telemetry::CapturedLogs::default();
        let subscriber = shared::telemetry::subscriber(
            format,
            &shared::Settings::default().common.log_level,
            captured.clone(),
        );
        let _guard = tracing::subscriber::set_default(subscriber);
        tracing::callsite::rebuild_interest_cache();

        let app = spawn_app(pool.clone()).await;
        let (email, password, new_password) = (
            format!("{format:?}@example.com").to_lowercase(),
            "first secret pass",
            "second secret pass",
        );
        assert_eq!(
            app.signup(&email, password).await.status(),
            StatusCode::CREATED
        );
        app.signin(&email, "wrong secret pass").await;
        app.signin("nobody@example.com", "unknown user pass").await;
        let token = app.token_for(&email, password).await;
        app.post_json(
            "/api/v1/signin",
            &json!({"email": email, "password": 98765432}),
        )
        .await;
        let changed = app
            .authed(Method::PUT, "/api/v1/me/password", &token)
            .json(&json!({"current_password": password, "new_password": new_password}))
            .send()
            .await
            .unwrap();
        let fresh: serde_json::Value = changed.json().await.unwrap();
        let fresh = fresh["access_token"].as_str().unwrap().to_owned();
        app.me(&token).await; // revoked token, refused
        // An invitation link: its token travels in paths (the API's and the console's).
        let api = app.api();
        let org = api
            .organization(&fresh, &format!("logs-{format:?}").to_lowercase())
            .await;
        let invitation = api
            .invite(&fresh, &org, "invited@example.com", "member")
            .await;
        for path in [
            format!("/api/v1/invitations/{invitation}"),
            format!("/invitations/{invitation}"),
        ] {
            app.request(Method::GET, &path).send().await.unwrap();
        }
        let (refused, _) = api.accept(&fresh, &invitation).await;
        assert_eq!(refused, StatusCode::FORBIDDEN, "another email than invited");
        app.authed(Method::POST, "/api/v1/signout", &fresh)
            .send()
            .await
            .unwrap();
        let hash: String = sqlx::query_scalar("select hashed_password from users where email = $1")
            .bind(&email)
            .fetch_one(&pool)
            .await
            .unwrap();

        let logs = captured.contents();
        assert!(
            logs.contains("signed in") && logs.contains("password changed"),
            "the flow was logged: {logs}"
        );
        for secret in [
            password,
            new_password,
            "wrong secret pass",
            "unknown user pass",
            "98765432",
            &hash,
            &hash[7..],
            &token,
            &fresh,
            &invitation,
            &invitation["mcpinv_".len()..],
            crate::helpers::JWT_SECRET,
        ] {
            assert!(
                !logs.contains(secret),
                "{format:?} logs contain a secret ({secret}):\n{logs}"
            );
        }
        // Token pieces (header, payload, signature) are not logged either.
        for piece in token.split('.').chain(fresh.split('.')) {
            assert!(
                !logs.contains(piece),
                "{format:?} logs contain part of a token"
            );
        }
    }
}
