//! `/api/v1/sources`: validation per type, write-only secrets encrypted at rest, key rotation.

use reqwest::{Method, StatusCode};
use secrecy::SecretString;
use serde_json::{Value, json};
use shared::crypto::{Keyring, SecretKey};
use sqlx::PgPool;

use crate::helpers::{SECRETS_KEY, assert_error, box_source, outlook, spawn_app, spawn_app_with};

const SECRET: &str = "super-secret-value-4711";

async fn raw_row(pool: &PgPool, id: &str) -> (String, Vec<u8>, String) {
    sqlx::query_as(
        "select source_metadata::text, secrets, secrets_key_id from sources where id = $1::uuid",
    )
    .bind(id)
    .fetch_one(pool)
    .await
    .unwrap()
}

fn keyring(current: &str, old: &[&str]) -> Keyring {
    let key =
        |k: &str| SecretKey::from_base64(&SecretString::from(k.to_owned()), "SECRETS_KEY").unwrap();
    Keyring::new(key(current), old.iter().map(|k| key(k)).collect())
}

fn stored_secret(pool_row: &(String, Vec<u8>, String), id: &str, ring: &Keyring) -> Value {
    let secrets = ring
        .open_source(id.parse().unwrap(), &pool_row.1, &pool_row.2)
        .expect("decrypts");
    Value::Object(secrets)
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn source_crud_round_trip(pool: PgPool) {
    let app = spawn_app(pool).await;
    let token = app.user_token("ada@example.com").await;

    let created = app
        .send_json(Method::POST, "/api/v1/sources", &token, &outlook(SECRET))
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let created: Value = created.json().await.unwrap();
    assert_eq!(created["type"], "outlook");
    assert_eq!(created["secrets"], json!({"client_secret": true}));
    assert_eq!(created["source_metadata"]["user_id"], "ada@contoso.com");
    let id = created["id"].as_str().unwrap();

    let second = app.source(&token, &box_source()).await;
    let list: Value = app
        .json(Method::GET, "/api/v1/sources?limit=1", &token)
        .await;
    assert_eq!(list["total"], 2);
    assert_eq!(list["items"][0]["id"], second.as_str(), "newest first");

    let fetched: Value = app
        .json(Method::GET, &format!("/api/v1/sources/{id}"), &token)
        .await;
    assert_eq!(fetched, created);

    let mut changed = outlook(SECRET);
    changed["source_metadata"]["user_id"] = json!("bob@contoso.com");
    let updated: Value = app
        .send_json(
            Method::PUT,
            &format!("/api/v1/sources/{id}"),
            &token,
            &changed,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(updated["source_metadata"]["user_id"], "bob@contoso.com");

    assert_eq!(
        app.send(Method::DELETE, &format!("/api/v1/sources/{id}"), &token)
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_error(
        app.send(Method::GET, &format!("/api/v1/sources/{id}"), &token)
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_error(
        app.send(Method::DELETE, &format!("/api/v1/sources/{id}"), &token)
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_error(
        app.send(Method::GET, "/api/v1/sources/not-a-uuid", &token)
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_id",
    )
    .await;
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn secrets_are_encrypted_at_rest_and_never_returned(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let token = app.user_token("ada@example.com").await;
    let created = app
        .send_json(Method::POST, "/api/v1/sources", &token, &outlook(SECRET))
        .await
        .text()
        .await
        .unwrap();
    assert!(!created.contains(SECRET));
    let id = serde_json::from_str::<Value>(&created).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let row = raw_row(&pool, &id).await;
    assert!(
        !row.0.contains(SECRET) && !row.0.contains("client_secret"),
        "metadata column holds no secret: {}",
        row.0
    );
    assert!(
        !row.1.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()),
        "ciphertext holds no clear secret"
    );
    let dump: String = sqlx::query_scalar("select row_to_json(s)::text from sources s")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(!dump.contains(SECRET));
    assert_eq!(
        stored_secret(&row, &id, &keyring(SECRETS_KEY, &[])),
        json!({"client_secret": SECRET})
    );

    for path in [
        format!("/api/v1/sources/{id}"),
        "/api/v1/sources".to_owned(),
    ] {
        let text = app
            .send(Method::GET, &path, &token)
            .await
            .text()
            .await
            .unwrap();
        assert!(!text.contains(SECRET), "{path}");
    }
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn an_update_without_the_secret_keeps_it_and_with_it_replaces_it(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let token = app.user_token("ada@example.com").await;
    let id = app.source(&token, &outlook(SECRET)).await;
    let ring = keyring(SECRETS_KEY, &[]);

    let mut without = outlook(SECRET);
    without["source_metadata"]
        .as_object_mut()
        .unwrap()
        .remove("client_secret");
    let kept = app
        .send_json(
            Method::PUT,
            &format!("/api/v1/sources/{id}"),
            &token,
            &without,
        )
        .await;
    assert_eq!(kept.status(), StatusCode::OK);
    assert_eq!(
        stored_secret(&raw_row(&pool, &id).await, &id, &ring),
        json!({"client_secret": SECRET})
    );

    let replaced = app
        .send_json(
            Method::PUT,
            &format!("/api/v1/sources/{id}"),
            &token,
            &outlook("a-new-secret"),
        )
        .await;
    assert_eq!(replaced.status(), StatusCode::OK);
    assert_eq!(
        stored_secret(&raw_row(&pool, &id).await, &id, &ring),
        json!({"client_secret": "a-new-secret"})
    );

    // Changing the type does not carry a secret over: the new type's secret is required.
    let mut to_box = box_source();
    to_box["source_metadata"]
        .as_object_mut()
        .unwrap()
        .remove("client_secret");
    let body = assert_error(
        app.send_json(
            Method::PUT,
            &format!("/api/v1/sources/{id}"),
            &token,
            &to_box,
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(
        body["error"]["fields"][0]["field"],
        "source_metadata.client_secret"
    );
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn rotation_reseals_every_secret_under_the_new_key(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let token = app.user_token("ada@example.com").await;
    let ids = [
        app.source(&token, &outlook(SECRET)).await,
        app.source(&token, &box_source()).await,
    ];
    let new_key = "bmV3LXNlY3JldHMta2V5LW9mLTMyLWJ5dGVzISEhISE=";
    let old_id = raw_row(&pool, &ids[0]).await.2;

    let rotated = control_plane::cli::rotate_secrets(&pool, &keyring(new_key, &[SECRETS_KEY]))
        .await
        .unwrap();
    assert_eq!(rotated, 2);
    let only_new = keyring(new_key, &[]);
    for id in &ids {
        let row = raw_row(&pool, id).await;
        assert_eq!(row.2, only_new.current().id());
        assert_ne!(row.2, old_id);
        stored_secret(&row, id, &only_new);
    }
    assert_eq!(
        stored_secret(&raw_row(&pool, &ids[0]).await, &ids[0], &only_new),
        json!({"client_secret": SECRET})
    );
    let again = control_plane::cli::rotate_secrets(&pool, &keyring(new_key, &[SECRETS_KEY]))
        .await
        .unwrap();
    assert_eq!(again, 0, "a second run has nothing to do");
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn each_source_type_names_its_bad_fields(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let token = app.user_token("ada@example.com").await;
    let cases = [
        (
            json!({"type": "dropbox", "source_metadata": {}}),
            vec!["type"],
        ),
        (
            json!({"type": "outlook", "source_metadata": {"tenant_id": "bad tenant", "client_id": "nope", "user_id": "../../admin"}}),
            vec![
                "source_metadata.tenant_id",
                "source_metadata.client_id",
                "source_metadata.client_secret",
                "source_metadata.user_id",
            ],
        ),
        (
            json!({"type": "box", "source_metadata": {"client_id": "abc", "client_secret": "s", "subject_type": "admin", "subject_id": "12a", "colour": "red"}}),
            vec![
                "source_metadata.colour",
                "source_metadata.subject_type",
                "source_metadata.subject_id",
            ],
        ),
        (
            json!({"type": "snowflake", "source_metadata": {"account_url": "https://evil.example.com", "pat": "p", "search_service": "ONLY.TWO"}}),
            vec![
                "source_metadata.account_url",
                "source_metadata.search_service",
            ],
        ),
        (
            json!({"type": "snowflake", "source_metadata": {"account_url": "http://x.snowflakecomputing.com", "pat": 5, "search_service": "D.S.X", "title_column": "T;drop"}}),
            vec![
                "source_metadata.account_url",
                "source_metadata.pat",
                "source_metadata.title_column",
            ],
        ),
    ];
    for (body, fields) in cases {
        let response = app
            .send_json(Method::POST, "/api/v1/sources", &token, &body)
            .await;
        let error = assert_error(
            response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        )
        .await;
        let named: Vec<&str> = error["error"]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["field"].as_str().unwrap())
            .collect();
        assert_eq!(named, fields, "{body}");
    }
    let ok = json!({"type": "snowflake", "source_metadata": {"account_url": "https://org-acct.snowflakecomputing.com", "pat": "p", "search_service": "DB.SCHEMA.SVC"}});
    let created: Value = app
        .send_json(Method::POST, "/api/v1/sources", &token, &ok)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        created["source_metadata"]["text_column"], "CHUNK",
        "documented defaults are stored"
    );
    assert_eq!(created["secrets"], json!({"pat": true}));
    let count: i64 = sqlx::query_scalar("select count(*) from sources")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(count, 1, "refused sources were not stored");
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn an_account_has_at_most_max_sources_per_user_sources(pool: PgPool) {
    let app = spawn_app_with(pool, |s| s.control_plane.max_sources_per_user = 2).await;
    let token = app.user_token("ada@example.com").await;
    app.source(&token, &box_source()).await;
    app.source(&token, &box_source()).await;
    let third = app
        .send_json(Method::POST, "/api/v1/sources", &token, &box_source())
        .await;
    assert_error(third, StatusCode::CONFLICT, "source_limit_reached").await;
    // Another account is not affected.
    let bob = app.user_token("bob@example.com").await;
    app.source(&bob, &box_source()).await;
}
