//! Forged, expired and revoked session tokens are all 401.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::helpers::{JWT_SECRET, assert_error, claims, sign, spawn_app};

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn forged_and_expired_tokens_are_401(pool: PgPool) {
    let app = spawn_app(pool).await;
    let real = app.user_token("ada@example.com").await;
    let me: Value = app.me(&real).await.json().await.unwrap();
    let sub = me["id"].as_str().unwrap();

    let sanity = sign(&claims(sub, 600), JWT_SECRET);
    assert_eq!(
        app.me(&sanity).await.status(),
        StatusCode::OK,
        "a well-made token works, so the refusals below are meaningful"
    );

    let payload = b64(claims(sub, 600).to_string().as_bytes());
    let alg_none = format!("{}.{payload}.", b64(br#"{"alg":"none","typ":"JWT"}"#));
    let mut no_exp = claims(sub, 600);
    no_exp.as_object_mut().unwrap().remove("exp");
    let mut other_issuer = claims(sub, 600);
    other_issuer["iss"] = json!("someone-else");
    let mut tampered = real.split('.').map(str::to_owned).collect::<Vec<_>>();
    tampered[1] = b64(claims(uuid::Uuid::new_v4().to_string().as_str(), 600)
        .to_string()
        .as_bytes());
    let hs512 = jsonwebtoken::encode(
        &Header::new(Algorithm::HS512),
        &claims(sub, 600),
        &EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap();

    let forgeries = [
        ("alg none", alg_none),
        (
            "another key",
            sign(&claims(sub, 600), "a-completely-different-key-of-32-bytes!"),
        ),
        ("no exp", sign(&no_exp, JWT_SECRET)),
        ("past exp", sign(&claims(sub, -3600), JWT_SECRET)),
        ("other issuer", sign(&other_issuer, JWT_SECRET)),
        (
            "unknown user",
            sign(&claims(&uuid::Uuid::new_v4().to_string(), 600), JWT_SECRET),
        ),
        ("tampered payload", tampered.join(".")),
        ("other algorithm", hs512),
        ("garbage", "not.a.token".to_owned()),
        ("empty", String::new()),
    ];
    for (what, token) in forgeries {
        let response = app
            .authed(Method::GET, "/api/v1/me", &token)
            .send()
            .await
            .unwrap();
        assert_eq!(
            response
                .headers()
                .get("www-authenticate")
                .map(|v| v.to_str().unwrap()),
            Some("Bearer"),
            "{what}"
        );
        assert_error(response, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    }

    let missing = app.request(Method::GET, "/api/v1/me").send().await.unwrap();
    assert_error(missing, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    let wrong_scheme = app
        .request(Method::GET, "/api/v1/me")
        .header("authorization", format!("Basic {real}"))
        .send()
        .await
        .unwrap();
    assert_error(wrong_scheme, StatusCode::UNAUTHORIZED, "unauthenticated").await;
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn a_signed_out_token_stays_dead_and_other_sessions_live_on(pool: PgPool) {
    let app = spawn_app(pool).await;
    let first = app.user_token("ada@example.com").await;
    let second = app
        .token_for("ada@example.com", crate::helpers::PASSWORD)
        .await;

    assert_eq!(
        app.authed(Method::POST, "/api/v1/signout", &first)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NO_CONTENT
    );
    for _ in 0..2 {
        assert_error(
            app.me(&first).await,
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        )
        .await;
        let replay = app
            .authed(Method::POST, "/api/v1/signout", &first)
            .send()
            .await
            .unwrap();
        assert_error(replay, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    }
    assert_eq!(
        app.me(&second).await.status(),
        StatusCode::OK,
        "signout ends one session only"
    );
}
