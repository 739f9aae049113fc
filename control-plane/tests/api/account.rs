//! Signup, signin, me, password change, signout and account deletion through the HTTP API.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::helpers::{PASSWORD, assert_error, spawn_app, spawn_app_with};

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn signup_signin_me_signout_round_trip(pool: PgPool) {
    let app = spawn_app(pool).await;

    let created = app.signup("  Ada@Example.com ", PASSWORD).await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let user: Value = created.json().await.unwrap();
    assert_eq!(
        user["email"], "ada@example.com",
        "email is trimmed and lower-cased"
    );
    assert_eq!(user["role"], "user");
    assert!(user.get("hashed_password").is_none() && user.get("password").is_none());

    let signin = app.signin("ADA@example.com", PASSWORD).await;
    assert_eq!(signin.status(), StatusCode::OK);
    let cookie = signin
        .headers()
        .get("set-cookie")
        .expect("cookie set")
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cookie.starts_with("mcpgw_session="), "{cookie}");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    let body: Value = signin.json().await.unwrap();
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 3600);
    let token = body["access_token"].as_str().unwrap();

    let me = app.me(token).await;
    assert_eq!(me.status(), StatusCode::OK);
    let me: Value = me.json().await.unwrap();
    assert_eq!(me["id"], user["id"]);

    let signout = app
        .authed(Method::POST, "/api/v1/signout", token)
        .send()
        .await
        .unwrap();
    assert_eq!(signout.status(), StatusCode::NO_CONTENT);
    let cleared = signout
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    assert_error(
        app.me(token).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn the_session_cookie_authenticates_like_the_bearer_token(pool: PgPool) {
    let app = spawn_app(pool).await;
    let token = app.user_token("ada@example.com").await;
    let me = app
        .request(Method::GET, "/api/v1/me")
        .header("cookie", format!("mcpgw_session={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::OK);
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn cookie_is_secure_when_configured(pool: PgPool) {
    let app = spawn_app_with(pool, |s| s.control_plane.cookie_secure = true).await;
    app.signup("ada@example.com", PASSWORD).await;
    let signin = app.signin("ada@example.com", PASSWORD).await;
    let cookie = signin
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(cookie.contains("Secure"), "{cookie}");
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn signing_up_a_taken_email_answers_like_a_new_account_and_changes_nothing(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let first = app.signup("ada@example.com", PASSWORD).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();

    let again = app.signup("ADA@Example.COM", "another password").await;
    assert_eq!(
        again.status(),
        StatusCode::CREATED,
        "no 409 that would tell"
    );
    let again: Value = again.json().await.unwrap();
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&again), keys(&first), "the same shape");
    assert_eq!(
        (&again["email"], &again["role"]),
        (&first["email"], &first["role"])
    );
    assert_ne!(again["id"], first["id"], "an id that belongs to no account");

    // The account and its password are untouched.
    let users: i64 = sqlx::query_scalar("select count(*) from users")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(users, 1);
    assert_eq!(
        app.signin("ada@example.com", "another password")
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.signin("ada@example.com", PASSWORD).await.status(),
        StatusCode::OK
    );
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn password_length_is_8_to_72_bytes(pool: PgPool) {
    let app = spawn_app(pool).await;
    let cases = [
        ("a".repeat(7), false),
        ("a".repeat(8), true),
        ("a".repeat(72), true),
        ("a".repeat(73), false),
        ("é".repeat(36), true),  // 72 bytes
        ("é".repeat(37), false), // 74 bytes, 37 characters
    ];
    for (i, (password, accepted)) in cases.iter().enumerate() {
        let email = format!("user{i}@example.com");
        let response = app.signup(&email, password).await;
        if *accepted {
            assert_eq!(
                response.status(),
                StatusCode::CREATED,
                "{} bytes",
                password.len()
            );
            app.token_for(&email, password).await;
        } else {
            let body = assert_error(
                response,
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
            )
            .await;
            assert_eq!(body["error"]["fields"][0]["field"], "password");
        }
    }
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn a_72_byte_password_is_not_matched_by_a_longer_one(pool: PgPool) {
    let app = spawn_app(pool).await;
    let password = "p".repeat(72);
    app.signup("ada@example.com", &password).await;
    let longer = format!("{password}extra");
    assert_error(
        app.signin("ada@example.com", &longer).await,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    )
    .await;
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn invalid_emails_are_422_naming_the_field(pool: PgPool) {
    let app = spawn_app(pool).await;
    for email in ["", "not-an-email", "a@b", "a@@example.com"] {
        let body = assert_error(
            app.signup(email, "x").await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        )
        .await;
        let fields: Vec<&str> = body["error"]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["field"].as_str().unwrap())
            .collect();
        assert_eq!(
            fields,
            ["email", "password"],
            "both bad fields are named for {email:?}"
        );
    }
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn wrong_password_and_unknown_email_look_the_same(pool: PgPool) {
    let app = spawn_app(pool).await;
    app.signup("ada@example.com", PASSWORD).await;

    let wrong = app.signin("ada@example.com", "wrong password").await;
    let unknown = app.signin("nobody@example.com", PASSWORD).await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
    let wrong: Value = wrong.json().await.unwrap();
    let unknown: Value = unknown.json().await.unwrap();
    assert_eq!(wrong, unknown, "same body");
    assert_eq!(wrong["error"]["code"], "invalid_credentials");
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn password_change_needs_the_current_password_and_revokes_older_tokens(pool: PgPool) {
    let app = spawn_app(pool).await;
    let old = app.user_token("ada@example.com").await;
    let other_session = app.token_for("ada@example.com", PASSWORD).await;

    let refused = app
        .authed(Method::PUT, "/api/v1/me/password", &old)
        .json(&json!({"current_password": "not it at all", "new_password": "a new passphrase"}))
        .send()
        .await
        .unwrap();
    assert_error(refused, StatusCode::FORBIDDEN, "wrong_password").await;
    let too_short = app
        .authed(Method::PUT, "/api/v1/me/password", &old)
        .json(&json!({"current_password": PASSWORD, "new_password": "short"}))
        .send()
        .await
        .unwrap();
    assert_error(
        too_short,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(
        app.me(&old).await.status(),
        StatusCode::OK,
        "failed attempts change nothing"
    );

    let changed = app
        .authed(Method::PUT, "/api/v1/me/password", &old)
        .json(&json!({"current_password": PASSWORD, "new_password": "a new passphrase"}))
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), StatusCode::OK);
    let fresh: Value = changed.json().await.unwrap();
    let fresh = fresh["access_token"].as_str().unwrap();

    assert_error(
        app.me(&old).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    assert_error(
        app.me(&other_session).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    assert_eq!(
        app.me(fresh).await.status(),
        StatusCode::OK,
        "the returned token works"
    );
    assert_error(
        app.signin("ada@example.com", PASSWORD).await,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    )
    .await;
    app.token_for("ada@example.com", "a new passphrase").await;
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn deleting_the_account_removes_its_sources_and_servers(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let token = app.user_token("ada@example.com").await;
    let bystander = app.user_token("bob@example.com").await;
    let me: Value = app.me(&token).await.json().await.unwrap();
    let bob: Value = app.me(&bystander).await.json().await.unwrap();
    for (owner, host) in [(&me["id"], "a.example.com"), (&bob["id"], "b.example.com")] {
        let owner = uuid::Uuid::parse_str(owner.as_str().unwrap()).unwrap();
        let source: uuid::Uuid = sqlx::query_scalar(
            "insert into sources (organization_id, type) values ((select id from organizations where personal_user_id = $1), 'box') returning id",
        )
        .bind(owner)
        .fetch_one(&pool)
        .await
        .unwrap();
        let server: uuid::Uuid = sqlx::query_scalar("insert into mcp_servers (organization_id, name, endpoint, endpoint_host) values ((select id from organizations where personal_user_id = $1), 's', $2, $3) returning id")
            .bind(owner).bind(format!("https://{host}")).bind(host).fetch_one(&pool).await.unwrap();
        sqlx::query(
            "insert into mcp_server_sources (server_id, source_id, organization_id) values ($1, $2, (select id from organizations where personal_user_id = $3))",
        )
        .bind(server)
        .bind(source)
        .bind(owner)
        .execute(&pool)
        .await
        .unwrap();
    }

    let deleted = app
        .authed(Method::DELETE, "/api/v1/me", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);

    let count = |table: &'static str| {
        let pool = pool.clone();
        async move {
            let sql = match table {
                "users" => "select count(*) from users",
                "sources" => "select count(*) from sources",
                "mcp_servers" => "select count(*) from mcp_servers",
                _ => "select count(*) from mcp_server_sources",
            };
            sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    assert_eq!(count("users").await, 1, "only the bystander is left");
    assert_eq!(count("sources").await, 1);
    assert_eq!(count("mcp_servers").await, 1);
    assert_eq!(count("links").await, 1);
    assert_error(
        app.me(&token).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    assert_eq!(app.me(&bystander).await.status(), StatusCode::OK);
    assert_error(
        app.signin("ada@example.com", PASSWORD).await,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    )
    .await;
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn signup_can_be_closed(pool: PgPool) {
    let app = spawn_app_with(pool, |s| s.control_plane.signup_enabled = false).await;
    assert_error(
        app.signup("ada@example.com", PASSWORD).await,
        StatusCode::FORBIDDEN,
        "signup_disabled",
    )
    .await;
}
